"""Kalshi's features beyond plain order entry: dictionary drift (kalshi/drift/01), order groups
(kalshi/og/01, 02), drop copy (kalshi/dc/01, 02), listener sessions (kalshi/lst/01), settlement
reports (kalshi/ums/01), CancelOrdersOnDisconnect (kalshi/cod/01) and the weekly maintenance
(kalshi/maint/01).

Drivers use the simulator's faults (``drift_next_order``, ``refuse_next_event_resend``,
``refuse_next_logon``), its operator (``admin.enter_order``, ``admin.settle_market``) and its pauses
(``maintenance``); judges decide from the evidence alone, fault marks included.
"""

from __future__ import annotations

import asyncio
import uuid

from conformance.model import Evidence, ScenarioResult, Verdict
from conformance.profile import Profile
from conformance.scenarios import Context, judge, scenario
from conformance.scenarios.order_driving import (
    ANSWER_TIMEOUT,
    FILL,
    ORD,
    OWN_ORDER_TIMEOUT,
    SETTLE,
    answered,
    begin,
    cancel,
    instruct,
    observe,
    place,
    state,
    takes_instructions,
    until,
)
from conformance.scenarios.order_evidence import (
    NO_STATE,
    failed,
    unwired,
    Msg,
    alive_after,
    asked,
    complaints,
    dropped_after,
    finding,
    flag,
    instructed,
    order_in,
    orders_on,
    received,
    reports_for,
    result,
    sent,
    state_after,
    wire,
)
from simulator.scripted import UNDEFINED_TAG

GROUP_LIMIT = 2  # contracts: kalshi/og/02 fills 3 to trigger it
MAINTENANCE_TEXT = "Kalshi is in its weekly maintenance window; try again after it ends"
MAINTENANCE_REFUSALS = 2  # Logons refused while the window lasts
PAUSE_MARK, RESUME_MARK = "pause trading", "resume trading"


def _account(ctx: Context) -> str:
    """The exchange account the client's key trades for."""
    return ctx.sim.accounts[ctx.key.key_id].owner


def _marked(evidence: Evidence, prefix: str) -> float | None:
    """When the driver noted a fault starting with ``prefix`` (the first such mark)."""
    return next((f.at for f in evidence.faults if f.what.startswith(prefix)), None)


# --- kalshi/drift/01 -------------------------------------------------------------------------------


@scenario("kalshi/drift/01")
async def drift(ctx: Context) -> None:
    if not await begin(ctx):
        return
    ctx.fault(f"drift_next_order: 30, 715, 21030, 21031, 1057 and {UNDEFINED_TAG} on the next order's reports, "
              "then one unsolicited 35=UMS")
    ctx.sim.faults.drift_next_order(ctx.key.key_id)
    mark = len(ctx.evidence.messages)
    order = await place(ctx, ORD, "0.15") if takes_instructions(ctx) else None
    if not await until(ctx, lambda msgs: any(m.index >= mark for m in received(msgs, "UMS")),
                       ANSWER_TIMEOUT if order is not None else OWN_ORDER_TIMEOUT):
        return
    if order is not None:
        request = await cancel(ctx, order)  # the client keeps trading on the session
        if request is not None:
            await answered(ctx, request, ("4",))
    ums = next(m for m in received(wire(ctx.evidence), "UMS") if m.index >= mark)
    await until(ctx, lambda msgs: alive_after(msgs, ums.connection, ums.at), 2.5 * (ctx.evidence.heartbeat_interval or 30))


@judge("kalshi/drift/01")
def _(evidence: Evidence, profile: Profile) -> ScenarioResult:
    sid = "kalshi/drift/01"
    msgs = wire(evidence)
    if (early := unwired(sid, msgs)) is not None:
        return early
    drifted = [m for m in received(msgs) if m.get(UNDEFINED_TAG) is not None or m.type == "UMS"]
    if not drifted:
        return result(sid, Verdict.INCONCLUSIVE, "no report with unknown fields and no unsolicited 35=UMS reached "
                      "the client (it sent no order)")
    first, last = drifted[0], drifted[-1]
    findings = [finding("no 35=3 or 35=j about unknown fields or messages (P13)", m.describe(), m, "P13")
                for m in complaints(msgs, first.at - 1e-9)]
    if findings:
        return failed(sid, findings, "the client did not tolerate Kalshi's newer fields")
    if not alive_after(msgs, last.connection, last.at):
        # It spoke no more: a Logout of its own then is leaving (the runner's stop comes after it spoke).
        logout = dropped_after(msgs, last.connection, first.at - 1e-9)
        if logout is not None:
            return failed(sid, [finding("the session stays up", "the client logged out", logout)],
                         "the client left after Kalshi's newer fields")
        return result(sid, Verdict.INCONCLUSIVE, "the client sent nothing after the unknown fields: whether the "
                      "session stayed up cannot be seen")
    kinds = sorted({"reports with unknown fields" if m.type == "8" else "an unsolicited 35=UMS" for m in drifted})
    return result(sid, Verdict.PASS, f"{' and '.join(kinds)} taken without a complaint; the session stayed up")


# --- kalshi/og/01 and 02 (optional) ----------------------------------------------------------------


def _groups(msgs: list[Msg]) -> list[tuple[Msg, str | None]]:
    """Each Create the client sent (20131=1) and the group ID the simulator gave it (UOH 20130)."""
    out = []
    for create in sent(msgs, "UOG"):
        if create.get(20131) != "1":
            continue
        answer = next((m for m in received(msgs, "UOH") if m.at >= create.at and m.connection == create.connection),
                      None)
        out.append((create, answer.get(20130) if answer is not None else None))
    return out


@scenario("kalshi/og/01")
async def group_lifecycle(ctx: Context) -> None:
    if not await begin(ctx):
        return
    created = await instruct(ctx, "create_group", contracts_limit=5)
    if created is None or not created.ok or created.group_id is None:
        return
    member = await place(ctx, ORD, "0.02", order_group_id=created.group_id)
    if member is not None:
        await answered(ctx, member.request, ("0", "8"))
    for action in ("reset_group", "delete_group"):  # Delete cancels the member
        mark = len(ctx.evidence.messages)
        if await instruct(ctx, action, group_id=created.group_id) is not None:
            await until(ctx, lambda msgs: any(m.index >= mark for m in received(msgs, "UOH", "j", "3")), ANSWER_TIMEOUT)


@judge("kalshi/og/01")
def _(evidence: Evidence, profile: Profile) -> ScenarioResult:
    sid = "kalshi/og/01"
    msgs = wire(evidence)
    if (early := unwired(sid, msgs)) is not None:
        return early
    groups = _groups(msgs)
    if not groups:
        return result(sid, Verdict.INCONCLUSIVE, "the client created no order group (35=UOG 20131=1)")
    create, group_id = groups[0]
    findings = []
    if create.get(20130) is not None:
        findings.append(finding("no 20130 on a Create: the exchange makes the group ID", f"20130={create.get(20130)}",
                                create))
    if create.get(20132) is None:
        findings.append(finding("20132, the contracts limit, on a Create", "none", create))
    if group_id is None:
        return failed(sid, findings, "the Create is wrong") if findings else \
            result(sid, Verdict.INCONCLUSIVE, "the group was never confirmed (no 35=UOH)")
    members = [d for d in sent(msgs, "D") if d.at > create.at and d.get(526) is not None]
    for d in members:
        if d.get(526) != group_id:
            findings.append(finding(f"526={group_id}, the group's ID", f"526={d.get(526)}", d))
    later = [m for m in sent(msgs, "UOG") if m.at > create.at and m.get(20131) != "1"]
    for m in later:
        if m.get(20130) != group_id:
            findings.append(finding(f"20130={group_id}", f"20130={m.get(20130)}", m))
        if m.get(79) != create.get(79):
            findings.append(finding(f"79={create.get(79) or '(none)'}, as on the Create", f"79={m.get(79) or '(none)'}", m))
    if findings:
        return failed(sid, findings, "the group's requests do not hang together")
    if not members or not later:
        return result(sid, Verdict.INCONCLUSIVE, "the client sent " + ("no member order" if not members
                                                                        else "no Reset, Update or Delete"))
    return result(sid, Verdict.PASS, f"Create without 20130; {len(members)} member order(s) with 526 = the group; "
                  f"{len(later)} later request(s) with its ID and 79")


@scenario("kalshi/og/02")
async def group_trigger(ctx: Context) -> None:
    if not await begin(ctx) or not takes_instructions(ctx):
        return
    created = await instruct(ctx, "create_group", contracts_limit=GROUP_LIMIT)
    if created is None or not created.ok or created.group_id is None:
        return
    group = created.group_id
    resting = await place(ctx, ORD, "0.02", order_group_id=group)
    if resting is not None:
        await answered(ctx, resting.request, ("0",))
    taking = await place(ctx, FILL, "0.20", quantity=str(GROUP_LIMIT + 1), order_group_id=group)  # past the limit
    if taking is not None and resting is not None:
        await until(ctx, lambda msgs: any(m.get(58) == "ORDER_GROUP_CANCEL"
                                          for m in reports_for(msgs, [resting.cl_ord_id], "8")), ANSWER_TIMEOUT)
    await place(ctx, ORD, "0.02", order_group_id=group)  # triggered: the client should hold it
    mark = len(ctx.evidence.messages)
    if await instruct(ctx, "reset_group", group_id=group) is not None:
        await until(ctx, lambda msgs: any(m.index >= mark for m in received(msgs, "UOH", "j", "3")), ANSWER_TIMEOUT)
    for unknown in (str(uuid.UUID(int=ctx.rng.getrandbits(128), version=4)), "not-a-uuid"):
        mark = len(ctx.evidence.messages)
        answer = await instruct(ctx, "reset_group", group_id=unknown)
        if answer is not None and answer.ok:
            await until(ctx, lambda msgs: any(m.index >= mark for m in received(msgs, "UOH", "j", "3")), ANSWER_TIMEOUT)
    await observe(ctx)
    await state(ctx)


@judge("kalshi/og/02")
def _(evidence: Evidence, profile: Profile) -> ScenarioResult:
    sid = "kalshi/og/02"
    msgs = wire(evidence)
    if (early := unwired(sid, msgs)) is not None:
        return early
    groups = [(c, g) for c, g in _groups(msgs) if g is not None]
    if not groups:
        return result(sid, Verdict.INCONCLUSIVE, "no order group of the client was confirmed")
    _, group_id = groups[0]
    cancels = [m for m in received(msgs, "8") if m.get(58) == "ORDER_GROUP_CANCEL"]
    if not cancels:
        return result(sid, Verdict.INCONCLUSIVE, "the group never triggered (no member canceled ORDER_GROUP_CANCEL)")
    triggered = cancels[0].at
    reset = next((m for m in sent(msgs, "UOG") if m.at > triggered and m.get(20131) == "2"
                  and m.get(20130) == group_id), None)
    findings = [finding("no member order between the trigger and a Reset", d.describe(), d)
                for d in sent(msgs, "D") if d.get(526) == group_id and d.at > triggered
                and (reset is None or d.at < reset.at)]
    refusals = [m for m in received(msgs, "j", "3") if m.get(372) == "UOG"]
    for refusal in refusals:
        request = next((m for m in sent(msgs, "UOG") if m.connection == refusal.connection and m.get(34) == refusal.get(45)),
                       None)
        if request is None:
            continue
        again = [m for m in sent(msgs, "UOG") if m.at > refusal.at and m.get(20130) == request.get(20130)
                 and m.get(20131) == request.get(20131)]
        if len(again) > len([a for a in asked(evidence) if a.at > refusal.at and a.body.get("group_id") == request.get(20130)]):
            findings.append(finding(f"the refused group request (35={refusal.type}) not sent again by itself",
                                    f"sent {len(again)} more time(s)", again[-1]))
    if findings:
        return failed(sid, findings, "the triggered group was not respected")
    book = state_after(evidence, cancels[-1].at)
    if book is None:
        return result(sid, Verdict.INCONCLUSIVE, "the client reported no state after the trigger")
    for canceled in cancels:
        held = order_in(book, [canceled.get(11, "") or ""], canceled.get(37))
        if held is None or held.status != "canceled":
            findings.append(finding("the member canceled by ORDER_GROUP_CANCEL canceled in the client's state",
                                    "not in its book" if held is None else f"status {held.status}", canceled))
    if findings:
        return failed(sid, findings, "the group's cancels are not in the client's book")
    return result(sid, Verdict.PASS, f"{len(cancels)} member(s) canceled by the trigger; no member order until the "
                  f"Reset; {len(refusals)} refused group request(s) not repeated")


# --- kalshi/dc/01, kalshi/dc/02, kalshi/lst/01 (optional) ------------------------------------------


async def _activity(ctx: Context, count: int = 2) -> None:
    """Orders of the client's account entered elsewhere: reports for drop copy and listeners."""
    for n in range(count):
        ctx.fault(f"enter_order: a resting order of the account, entered on another session ({n + 1}/{count})")
        await asyncio.to_thread(ctx.sim.admin.enter_order, _account(ctx), ORD, "buy_yes", f"0.0{n + 1}")


def _shard(exec_id: str | None) -> str:
    parts = (exec_id or "").split(";")
    return parts[2] if len(parts) > 2 else "0"


@scenario("kalshi/dc/01")
async def drop_copy_replay(ctx: Context) -> None:
    await _activity(ctx)
    if not await begin(ctx):
        return
    await until(ctx, lambda msgs: bool(received(msgs, "U2", "U3")), OWN_ORDER_TIMEOUT)
    await state(ctx)


@judge("kalshi/dc/01")
def _(evidence: Evidence, profile: Profile) -> ScenarioResult:
    sid = "kalshi/dc/01"
    msgs = wire(evidence)
    if (early := unwired(sid, msgs)) is not None:
        return early
    findings = []
    for logon in sent(msgs, "A"):
        if logon.session == "KalshiDC" and logon.get(141) != "Y":
            findings.append(finding("141=Y on a KalshiDC Logon", f"141={logon.get(141) or '(none)'}", logon))
    requests = sent(msgs, "U1")
    for u1 in requests:
        begin_id, end_id = u1.get(21001), u1.get(21002)
        if end_id is not None and _shard(begin_id) != _shard(end_id):
            findings.append(finding("21001 and 21002 on one shard", f"21001={begin_id} 21002={end_id}", u1))
    done = []
    for u2 in received(msgs, "U2"):
        u1 = next((m for m in requests if m.connection == u2.connection and m.get(34) == u2.get(45)), None)
        if u1 is None:
            continue
        count = len([m for m in received(msgs, "8") if m.connection == u2.connection and u1.at < m.at < u2.at])
        done.append((u1, u2, count))
        if str(count) != u2.get(21003):
            findings.append(finding(f"21003 = the {count} reports replayed", f"21003={u2.get(21003)}", u2))
    findings += [finding("no 35=3 or 35=j from the client", m.describe(), m) for m in complaints(msgs)]
    if findings:
        return failed(sid, findings, "drop-copy replay mishandled")
    if not done:
        return result(sid, Verdict.INCONCLUSIVE, "no replay completed (no U1 answered by U2)")
    book = state_after(evidence, done[-1][1].at)
    replayed = {m.get(17): m for m in received(msgs, "8") if any(u1.at < m.at < u2.at for u1, u2, _ in done)}
    if book is None:
        return result(sid, Verdict.INCONCLUSIVE, f"{len(replayed)} reports replayed; the client reported no state to "
                      "show them merged")
    for report in replayed.values():
        if report.get(150) == "0" and order_in(book, [report.get(11, "") or ""], report.get(37)) is None:
            findings.append(finding("each replayed order in the client's state, once", "not in its book", report))
    if findings:
        return failed(sid, findings, "replayed reports not merged")
    return result(sid, Verdict.PASS, f"{len(done)} replay(s) on one shard each, {len(replayed)} reports merged")


@scenario("kalshi/dc/02")
async def drop_copy_rejects(ctx: Context) -> None:
    await _activity(ctx, 1)
    ctx.fault("refuse_next_event_resend 3: the next U1 gets U3 21004=3 (BeginExecID too old)")
    ctx.sim.faults.refuse_next_event_resend(ctx.key.key_id, 3)
    if not await begin(ctx):
        return
    if not await until(ctx, lambda msgs: bool(received(msgs, "U3")), OWN_ORDER_TIMEOUT):
        return
    ctx.fault("refuse_next_event_resend 1: the next U1 gets U3 21004=1 (rate limited)")
    ctx.sim.faults.refuse_next_event_resend(ctx.key.key_id, 1)
    await until(ctx, lambda msgs: len(received(msgs, "U3")) >= 2, OWN_ORDER_TIMEOUT)
    await observe(ctx)


@judge("kalshi/dc/02")
def _(evidence: Evidence, profile: Profile) -> ScenarioResult:
    sid = "kalshi/dc/02"
    msgs = wire(evidence)
    if (early := unwired(sid, msgs)) is not None:
        return early
    rejects = received(msgs, "U3")
    if not rejects:
        return result(sid, Verdict.INCONCLUSIVE, "no U1 of the client was refused (it sent none)")
    requests = sent(msgs, "U1")
    findings = []
    for u3 in rejects:
        u1 = next((m for m in requests if m.connection == u3.connection and m.get(34) == u3.get(45)), None)
        after = [m for m in requests if m.at > u3.at]
        same = [m for m in after if u1 is not None and m.get(21001) == u1.get(21001) and m.get(21002) == u1.get(21002)]
        if u3.get(21004) == "3" and same:
            findings.append(finding("after 21004=3 (too old) a narrower U1 or REST, not the same range",
                                    "the same range again", same[0]))
        if u3.get(21004) == "1" and after and after[0].at - u3.at < 1.0:
            findings.append(finding("after 21004=1 (rate limited) a wait before the next U1",
                                    f"{after[0].at - u3.at:.3f} s later", after[0]))
        if len(same) >= 2:
            findings.append(finding("a refused U1 not repeated in a loop", f"repeated {len(same)} times", same[-1]))
    if findings:
        return failed(sid, findings, "drop-copy refusals not heeded")
    rest = [c for c in evidence.rest if c.at > rejects[0].at and "/portfolio/" in c.path]
    moved = [m for m in requests if m.at > rejects[0].at]
    if not rest and not moved:
        return result(sid, Verdict.INCONCLUSIVE, "after the refusal the client neither narrowed its request nor read "
                      "REST within the scenario")
    return result(sid, Verdict.PASS, "refused replays narrowed or replaced by REST, and paced"
                  + (f" ({len(rest)} REST reads)" if rest else ""))


@scenario("kalshi/lst/01")
async def listener(ctx: Context) -> None:
    if not await begin(ctx):
        return
    await _activity(ctx)
    await until(ctx, lambda msgs: len(received(msgs, "8")) >= 2, ANSWER_TIMEOUT)
    await observe(ctx)
    await state(ctx)


@judge("kalshi/lst/01")
def _(evidence: Evidence, profile: Profile) -> ScenarioResult:
    sid = "kalshi/lst/01"
    msgs = wire(evidence)
    if (early := unwired(sid, msgs)) is not None:
        return early
    logon = sent(msgs, "A")[0]
    findings = []
    if logon.get(20126) != "Y":
        return result(sid, Verdict.INCONCLUSIVE, "the client's Logon did not ask for a listener session (20126=Y)")
    if logon.get(21011) != "Y":
        findings.append(finding("21011=Y with 20126=Y", f"21011={logon.get(21011) or '(none)'}", logon))
    if logon.get(8013) == "Y":
        findings.append(finding("no 8013=Y on a listener", "8013=Y", logon))
    findings += [finding("no D, F, G or q on a listener session (P14)", m.describe(), m, "P14")
                 for m in sent(msgs, "D", "F", "G", "q")]
    findings += [finding("no 35=3 or 35=j from the client", m.describe(), m) for m in complaints(msgs)]
    if findings:
        return failed(sid, findings, "the listener session was not read-only")
    reports = received(msgs, "8")
    if not reports:
        return result(sid, Verdict.INCONCLUSIVE, "no report reached the listener")
    return result(sid, Verdict.PASS, f"a read-only listener: {len(reports)} reports read, nothing sent back")


# --- kalshi/ums/01 (optional) ----------------------------------------------------------------------


@scenario("kalshi/ums/01")
async def settlement(ctx: Context) -> None:
    if not await begin(ctx):
        return
    order = await place(ctx, SETTLE, "0.40")
    if order is None or await answered(ctx, order.request, ("F",)) is None:
        return
    ctx.fault(f"settle_market {SETTLE} yes")
    await asyncio.to_thread(ctx.sim.admin.settle_market, SETTLE, "yes")
    if await until(ctx, lambda msgs: any(m.get(893) in (None, "Y") for m in received(msgs, "UMS")), ANSWER_TIMEOUT):
        await state(ctx)


@judge("kalshi/ums/01")
def _(evidence: Evidence, profile: Profile) -> ScenarioResult:
    sid = "kalshi/ums/01"
    msgs = wire(evidence)
    if (early := unwired(sid, msgs)) is not None:
        return early
    pages = received(msgs, "UMS")
    if not pages:
        return result(sid, Verdict.INCONCLUSIVE, "no settlement report reached the client")
    findings = [finding("no 35=3 or 35=j about a settlement report", m.describe(), m)
                for m in complaints(msgs, pages[0].at - 1e-9)]
    if findings:
        return failed(sid, findings, "the client refused a settlement report")
    last = next((m for m in pages if m.get(893) in (None, "Y")), None)
    if last is None:
        return result(sid, Verdict.INCONCLUSIVE, "the last page (893=Y) never came")
    ticker = last.get(55) or ""
    book = state_after(evidence, last.at)
    if book is None:
        return result(sid, Verdict.INCONCLUSIVE, "the client reported no state after the settlement")
    held = (book.positions or {}).get(ticker)
    if held is not None and held != 0:
        return failed(sid, [finding(f"no position left in {ticker} after it settled", f"position {held}", last)],
                     "the settled position is still open")
    return result(sid, Verdict.PASS, f"{len(pages)} settlement page(s) taken; the position in {ticker} closed")


# --- kalshi/cod/01 (optional) ----------------------------------------------------------------------


@scenario("kalshi/cod/01")
async def cancel_on_disconnect(ctx: Context) -> None:
    if not await begin(ctx):
        return
    order = await place(ctx, ORD, "0.04")
    if order is None or await answered(ctx, order.request, ("0",)) is None:
        return
    ctx.fault("stop_client: a graceful Logout; with 8013=Y the venue cancels the session's orders")
    await ctx.stop_client()
    await ctx.start_client()
    if not await until(ctx, lambda msgs: len(received(msgs, "A")) >= 2, ctx.connect_timeout):
        return
    await observe(ctx)  # the client learns what happened: REST, or its own rule
    await state(ctx)
    later = await place(ctx, ORD, "0.03")  # quoting again
    if later is not None:
        await answered(ctx, later.request, ("0", "8"))


@judge("kalshi/cod/01")
def _(evidence: Evidence, profile: Profile) -> ScenarioResult:
    sid = "kalshi/cod/01"
    msgs = wire(evidence)
    if (early := unwired(sid, msgs)) is not None:
        return early
    logons = sent(msgs, "A")
    if not flag(msgs, logons[0].connection, 8013):
        return result(sid, Verdict.INCONCLUSIVE, "the client's Logon had no 8013=Y: the venue cancels nothing")
    replies = received(msgs, "A")
    if len(replies) < 2:
        return result(sid, Verdict.INCONCLUSIVE, "the client did not log on again after its Logout")
    first, back = replies[0].connection, replies[1].at
    resting = [d for d in orders_on(msgs, ORD) if d.connection == first
               and any(m.get(150) == "0" for m in reports_for(msgs, [d.get(11, "") or ""], "8"))
               and not any(m.get(39) in ("2", "4", "C") for m in reports_for(msgs, [d.get(11, "") or ""], "8"))]
    if not resting:
        return result(sid, Verdict.INCONCLUSIVE, "no order was resting when the client logged out")
    read = next((c.at for c in evidence.rest if c.at > back and "/portfolio/orders" in c.path and c.status < 400), None)
    quoted = next((d.at for d in sent(msgs, "D") if d.at > back), None)
    book = state_after(evidence, back)
    if book is not None:
        live = [d for d in resting if (o := order_in(book, [d.get(11, "") or ""])) is not None
                and o.status in ("new", "partially_filled")]
        if live:
            return failed(sid, [finding("the orders the venue canceled on the Logout not live in the client's book",
                                       f"{len(live)} still {order_in(book, [live[0].get(11, '') or ''])}", live[0])],
                         "canceled orders still live")
    if quoted is not None and (read is None or read > quoted) and book is None:
        return failed(sid, [finding("the canceled orders settled (REST or state) before quoting again",
                                   "a new order first", next(d for d in sent(msgs, "D") if d.at > back))],
                     "quoting before learning of the cancels")
    if book is not None:
        return result(sid, Verdict.PASS, f"{len(resting)} order(s) canceled on the Logout shown canceled after the "
                      "Logon")
    if read is not None:
        return result(sid, Verdict.PASS, "the client read its orders over REST after logging on again, before quoting")
    return result(sid, Verdict.INCONCLUSIVE, "neither a state nor a REST read after the Logon shows what the client "
                  "made of the cancels")


# --- kalshi/maint/01 (optional) --------------------------------------------------------------------


@scenario("kalshi/maint/01", exclusive=True)  # an exchange-wide pause: every session would see it
async def maintenance(ctx: Context) -> None:
    if not await begin(ctx):
        return
    resting = await place(ctx, ORD, "0.03")
    if resting is None or await answered(ctx, resting.request, ("0",)) is None:
        return
    ctx.fault(PAUSE_MARK)
    await asyncio.to_thread(ctx.sim.maintenance.pause, "trading")
    try:
        refused = await place(ctx, ORD, "0.02")  # refused with TRADING_PAUSED, or held by the client
        if refused is not None:
            await answered(ctx, refused.request, ("8",))
        await observe(ctx)
        ctx.fault(f"logout and refuse_next_logon x{MAINTENANCE_REFUSALS}: the session dropped for the window")
        ctx.sim.faults.refuse_next_logon(ctx.key.key_id, MAINTENANCE_TEXT, MAINTENANCE_REFUSALS)
        await asyncio.to_thread(ctx.sim.logout, ctx.key.key_id, MAINTENANCE_TEXT)
        await until(ctx, lambda msgs: sum(1 for m in received(msgs, "5") if m.get(58) == MAINTENANCE_TEXT)
                    >= MAINTENANCE_REFUSALS + 1, ctx.connect_timeout)
    finally:
        ctx.fault(RESUME_MARK)
        await asyncio.to_thread(ctx.sim.maintenance.resume)
        ctx.sim.faults.clear(ctx.key.key_id)
    if await until(ctx, lambda msgs: len(received(msgs, "A")) >= 2, ctx.connect_timeout):
        await state(ctx)


@judge("kalshi/maint/01")
def _(evidence: Evidence, profile: Profile) -> ScenarioResult:
    sid = "kalshi/maint/01"
    msgs = wire(evidence)
    if (early := unwired(sid, msgs)) is not None:
        return early
    paused, resumed = _marked(evidence, PAUSE_MARK), _marked(evidence, RESUME_MARK)
    if paused is None:
        return result(sid, Verdict.INCONCLUSIVE, "the pause never began (no resting order to keep)")
    end = resumed if resumed is not None else float("inf")
    during = [d for d in sent(msgs, "D") if paused < d.at < end]
    asks = [a for a in instructed(evidence, "place") if paused < a.at < end]
    findings = []
    if len(during) > len(asks):
        findings.append(finding(f"at most one new order per instruction in the pause ({len(asks)})",
                                f"{len(during)} sent", during[-1]))
    replies = [m for m in received(msgs, "A") if m.at > paused]
    if not replies:
        return failed(sid, findings, "orders sent in the pause") if findings else \
            result(sid, Verdict.INCONCLUSIVE, "the client did not log on again after the window")
    again = next(m for m in sent(msgs, "A") if m.connection == replies[0].connection)
    if again.session in ("KalshiNR", "KalshiDC") and (again.get(141) != "Y" or again.get(34) != "1"):
        findings.append(finding("141=Y and 34=1 on the Logon after the window (no retransmission here)",
                                f"141={again.get(141) or '(none)'} 34={again.get(34)}", again))
    if again.session == "KalshiRT" and again.get(141) == "Y":
        findings.append(finding("KalshiRT logs on again without 141=Y, its sequence kept", "141=Y", again))
    book = state_after(evidence, replies[0].at)
    resting = [d for d in sent(msgs, "D") if d.at < paused and d.get(21006) != "Y"
               and any(m.get(150) == "0" for m in reports_for(msgs, [d.get(11, "") or ""], "8"))]
    if book is not None:
        for d in resting:
            held = order_in(book, [d.get(11, "") or ""])
            if held is None or held.status not in ("new", "partially_filled"):
                findings.append(finding("a resting order entered without 21006=Y kept through the window",
                                        "not in its book" if held is None else f"status {held.status}", d))
    if findings:
        return failed(sid, findings, "the maintenance window was not handled")
    return result(sid, Verdict.PASS, "no order stream in the pause; logged on again as its session type wants"
                  + ("; resting orders kept" if book is not None else NO_STATE))

