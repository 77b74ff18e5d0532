"""The sequence-number scenarios: the reset on every KalshiNR Logon and its gap policy (kalshi/seq-nr/01..03),
KalshiRT's ResendRequest, retention, restart continuity and counterparty SequenceReset
(kalshi/seq-rt/01..04), and PossDup copies of fills (kalshi/seq-all/01). Gaps are made by dropping fill
reports (of an order the client was asked to rest) or, for a client that takes no instructions, the
simulator's heartbeats. Shared parts: ``conformance.scenarios.session``."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from decimal import Decimal

from conformance.markets import SESSION_TICKER
from conformance.model import Evidence, Finding, ScenarioResult, Verdict
from conformance.profile import Profile
from conformance.scenarios import Context, HarnessError, judge, scenario
from conformance.scenarios.session import (
    SLACK, RECONNECT_WAIT, ACK_WAIT, RECONCILE_WAIT, CLOSE_MARK, TEST_REQUEST_MARK, current_connection, logged_on,
    watch, call_simulator, act, heartbeat_of, resting_order, state_probe, result, no_logon, placed_order, state_after,
    cum_qty_of, connection_at, fault_made,
)
from conformance.transcript import (
    Msg, connection_end, first_mark, from_client, logons, messages, stopped_by_runner, to_client,
)
from fixengine.kalshi.facts import SessionType

# Timeline marks (prefixes of FaultMark.what).
LOGOUT_MARK = "logout: the simulator logs the session out"
DROP_FILL_MARK = "drop_outbound: the fill report"
DROP_NEXT_MARK = "drop_outbound: the next message"
AFTER_MARK = "test_request CONF-AFTER: is the session still up"
DUPLICATE_MARK = "duplicate_next: the fill report, with a 43=Y copy"
RESTART_MARK = "restart: the client is stopped and started"
FORGET_MARK = "forget_inbound from"


# --- kalshi/seq-nr/01 --------------------------------------------------------------------------------


@scenario("kalshi/seq-nr/01")
async def reset_every_logon(ctx: Context) -> None:
    if not await logged_on(ctx):
        return
    conn = current_connection(ctx.evidence)
    if not await act(ctx, f"{CLOSE_MARK} {conn}", ctx.sim.faults.close, ctx.key.key_id):
        return
    if not await logged_on(ctx, after=conn, timeout=RECONNECT_WAIT):
        return
    conn = current_connection(ctx.evidence)
    await act(ctx, f"{LOGOUT_MARK} (connection {conn})", ctx.sim.logout, ctx.key.key_id, "Session ended by the exchange")
    await logged_on(ctx, after=conn, timeout=RECONNECT_WAIT)


@judge("kalshi/seq-nr/01")
def _seq_nr_01(evidence: Evidence, profile: Profile) -> ScenarioResult:
    sid = "kalshi/seq-nr/01"
    msgs = messages(evidence)
    sent = logons(msgs)
    if not sent:
        return no_logon(sid)
    findings = []
    for logon in sent:
        if logon.get(141) != "Y" or logon.get(34) != "1":
            findings.append(Finding(f"141=Y and 34=1 on {logon.wire.session}",
                                    f"141={logon.get(141, '(absent)')} 34={logon.get(34)}", logon.index))
    for m in from_client(msgs):
        if m.type in ("2", "4"):
            findings.append(Finding(f"no 35={m.type} on {m.wire.session}", f"35={m.type}", m.index))
    measured = {"logons": float(len(sent))}
    if findings:
        return result(sid, Verdict.FAIL, f"expected {findings[0].expected}, seen {findings[0].seen}", findings, measured)
    if len(sent) < 3:
        return result(sid, Verdict.INCONCLUSIVE, f"only {len(sent)} Logon(s): the client did not log on again after "
                                                  f"each disconnect within {RECONNECT_WAIT:g} s", (), measured)
    return result(sid, Verdict.PASS, f"all {len(sent)} Logons reset (141=Y, 34=1)", (), measured)


# --- kalshi/seq-nr/02 --------------------------------------------------------------------------------


async def _make_gap(ctx: Context, count: int) -> float | None:
    """Drop ``count`` fill reports (of an order the client rests) or, for a client that takes no
    instructions, the simulator's next ``count`` messages (heartbeats). The simulator's next message
    (its heartbeat, within HeartBtInt) shows the client the gap. When the drop was made (None: the
    client was gone before it could be)."""
    order_id = await resting_order(ctx, str(count + 1))
    key = ctx.key.key_id
    if order_id is not None:
        if not await act(ctx, f"{DROP_FILL_MARK} x{count} (order {order_id})", ctx.sim.faults.drop_outbound, key, count):
            return None
        for _ in range(count):
            await asyncio.to_thread(ctx.sim.admin.add_fill, order_id, "1", True)
        spent = 5.0
    else:
        if not await act(ctx, f"{DROP_NEXT_MARK} x{count}", ctx.sim.faults.drop_outbound, key, count):
            return None
        spent = count * heartbeat_of(ctx.evidence) + SLACK + 5
    dropped = ctx.evidence.faults[-1].at
    done: list[bool] = []
    if not await call_simulator(ctx, lambda: done.append(ctx.sim.faults.wait_spent(key, spent))):
        return None
    if not done[0]:
        raise HarnessError(f"the simulator had not dropped {count} message(s) within {spent:g} s")
    return dropped


async def _still_up(ctx: Context) -> None:
    """A TestRequest after the recovery: answered, the session carried on."""
    if not ctx.client_running:
        return
    if not await act(ctx, AFTER_MARK, ctx.sim.faults.test_request, ctx.key.key_id, "CONF-AFTER"):
        return
    await ctx.wait_for(lambda ev: _answered_after(ev) or not ctx.client_running, heartbeat_of(ctx.evidence) + SLACK)


def _answered_after(evidence: Evidence) -> bool:
    return any(m.get(112) == "CONF-AFTER" for m in from_client(messages(evidence), "0"))


def _gap_seen(evidence: Evidence, prefixes: tuple[str, ...] = (DROP_FILL_MARK, DROP_NEXT_MARK)) -> float:
    """When the client saw the gap (the message after the lost ones), else when it was made."""
    gap = _gap(evidence, messages(evidence), prefixes)
    if gap is None:
        return time.time()
    return gap.reveal.at if gap.reveal is not None else gap.mark_at


def _reconciled(evidence: Evidence, after: float) -> bool:
    return any(r.at >= after and r.method == "GET" and ("/portfolio/orders" in r.path or "/portfolio/fills" in r.path)
               for r in evidence.rest)


@scenario("kalshi/seq-nr/02")
async def nr_gap(ctx: Context) -> None:
    if not await logged_on(ctx):
        return
    conn = current_connection(ctx.evidence)
    if await _make_gap(ctx, 1) is None:
        return
    if not await logged_on(ctx, after=conn, timeout=2 * heartbeat_of(ctx.evidence) + SLACK + RECONNECT_WAIT):
        return
    seen = _gap_seen(ctx.evidence)
    await ctx.wait_for(lambda ev: _reconciled(ev, seen) or not ctx.client_running, RECONCILE_WAIT)
    await state_probe(ctx, Decimal(1) if first_mark(ctx.evidence, DROP_FILL_MARK) is not None else None)


@dataclass(frozen=True)
class _Gap:
    connection: int
    dropped_fill: bool  # the dropped message was a fill report (else whatever came next)
    mark_at: float
    reveal: Msg | None  # the first message after the drop: it shows the client the gap
    missing: tuple[int, int] | None  # the MsgSeqNums the client never got


def _gap(evidence: Evidence, msgs: list[Msg], prefixes: tuple[str, ...] = (DROP_FILL_MARK, DROP_NEXT_MARK)
         ) -> _Gap | None:
    """The gap the driver made (its mark begins with one of ``prefixes``) as the wire shows it."""
    found = [made for p in prefixes if (made := fault_made(evidence, p)) is not None]
    mark = min(found, key=lambda m: m.at) if found else None
    if mark is None:
        return None
    conn = connection_at(msgs, mark.at)
    before = [m for m in to_client(msgs) if m.connection == conn and m.at <= mark.at and m.seq is not None]
    after = [m for m in to_client(msgs, after=mark.at) if m.connection == conn and m.seq is not None]
    reveal = next((m for m in after if before and m.seq > before[-1].seq + 1), None)  # type: ignore[operator]
    missing = (before[-1].seq + 1, reveal.seq - 1) if reveal is not None and before else None  # type: ignore[operator]
    # A fill report that still arrived (not as a replay) means a heartbeat was dropped in its place.
    fill = mark.what.startswith(DROP_FILL_MARK) and not any(
        m.type == "8" and m.get(150) == "F" and m.get(43) != "Y" for m in after)
    return _Gap(conn, fill, mark.at, reveal, missing)


@judge("kalshi/seq-nr/02")
def _seq_nr_02(evidence: Evidence, profile: Profile) -> ScenarioResult:
    return _nr_gap_policy("kalshi/seq-nr/02", evidence, _gap(evidence, messages(evidence)))


def _nr_gap_policy(sid: str, evidence: Evidence, gap: _Gap | None) -> ScenarioResult:
    """KalshiNR's gap policy after ``gap``: no 35=2, leave within HeartBtInt, a reset Logon, REST
    reconciliation before new orders, and the state (when probed) with the fill that was lost."""
    msgs = messages(evidence)
    if not logons(msgs):
        return no_logon(sid)
    if gap is None:
        return result(sid, Verdict.INCONCLUSIVE, "no gap was made")
    if gap.reveal is None:
        return result(sid, Verdict.INCONCLUSIVE, "no message after the lost one reached the client")
    heartbeat = heartbeat_of(evidence)
    seen = gap.reveal.at
    findings, measured = [], {}
    for m in from_client(msgs, after=gap.mark_at):
        if m.type == "2" or (m.type == "3" and m.get(45) == str(gap.missing[0] if gap.missing else "")):
            what = "a ResendRequest (35=2)" if m.type == "2" else "a Reject (35=3) of the lost message"
            findings.append(Finding("no ResendRequest (35=2) and no Reject (35=3) of the lost message on KalshiNR",
                                    what, m.index))
    end = connection_end(evidence, gap.connection)
    logout = next((m for m in from_client(msgs, "5", seen) if m.connection == gap.connection), None)
    left = min(t for t in (logout.at if logout else None, end[0] if end else None, float("inf")) if t is not None)
    if left == float("inf"):
        findings.append(Finding("a Logout or a disconnect after the gap", "the session went on"))
    else:
        measured["left_after_gap_s"] = left - seen
        if left - seen > heartbeat + SLACK:
            findings.append(Finding(f"a Logout or disconnect within HeartBtInt ({heartbeat:g} s) of the gap",
                                    f"after {left - seen:.1f} s"))
    again = [m for m in logons(msgs) if m.connection > gap.connection]
    if not again:
        findings.append(Finding("a reset Logon after the gap", "none"))
    else:
        measured["logon_after_gap_s"] = again[0].at - seen
        if again[0].get(141) != "Y" or again[0].get(34) != "1":
            findings.append(Finding("141=Y and 34=1", f"141={again[0].get(141, '(absent)')} 34={again[0].get(34)}",
                                    again[0].index))
        reconciliations = [r for r in evidence.rest if r.at >= seen and r.method == "GET"
                           and ("/portfolio/orders" in r.path or "/portfolio/fills" in r.path)]
        orders_after = [m for m in from_client(msgs, "D", seen)
                        if not gap.dropped_fill or m.get(55) == SESSION_TICKER]
        if not reconciliations:
            findings.append(Finding("reconciliation over REST (GET /portfolio/orders or /portfolio/fills)", "none"))
        else:
            measured["reconciled_after_gap_s"] = reconciliations[0].at - seen
            if orders_after and orders_after[0].at < reconciliations[0].at:
                findings.append(Finding("no new order before reconciling", "a 35=D first", orders_after[0].index))
    order = placed_order(evidence)
    state = state_after(evidence, seen)
    note = ""
    if gap.dropped_fill and order is not None and state is not None:
        cum = cum_qty_of(state, order)
        if cum != Decimal(1):
            findings.append(Finding("the dropped fill in the client's state (CumQty 1)", f"CumQty {cum}"))
    elif gap.dropped_fill:
        note = " (the client's state was not probed)"
    elif first_mark(evidence, DROP_NEXT_MARK) is not None:
        note = " (the dropped message was not a fill: the client takes no instructions)"
    if findings:
        return result(sid, Verdict.FAIL, f"NR gap policy: expected {findings[0].expected}, seen {findings[0].seen}",
                       findings, measured)
    return result(sid, Verdict.PASS, f"no ResendRequest; reset Logon and REST reconciliation after the gap{note}",
                   (), measured)


# --- kalshi/seq-rt/01 --------------------------------------------------------------------------------


def _replayed(evidence: Evidence, after: float) -> bool:
    """The simulator answered a ResendRequest sent after ``after`` (PossDup copies or a GapFill)."""
    msgs = messages(evidence)
    asked = from_client(msgs, "2", after)
    return bool(asked) and any(m.get(43) == "Y" or m.type == "4" for m in to_client(msgs, after=asked[0].at))


@scenario("kalshi/seq-rt/01")
async def rt_gap(ctx: Context) -> None:
    if not await logged_on(ctx):
        return
    heartbeat = heartbeat_of(ctx.evidence)
    dropped = await _make_gap(ctx, 2)
    if dropped is None:
        return
    if await ctx.wait_for(lambda ev: _replayed(ev, dropped) or not ctx.client_running, 2 * heartbeat + SLACK + 5):
        await watch(ctx, SLACK + 1)  # the rest of the replay; a second ResendRequest would come now
        await _still_up(ctx)
    await state_probe(ctx, Decimal(2) if first_mark(ctx.evidence, DROP_FILL_MARK) is not None else None)


@judge("kalshi/seq-rt/01")
def _seq_rt_01(evidence: Evidence, profile: Profile) -> ScenarioResult:
    sid = "kalshi/seq-rt/01"
    msgs = messages(evidence)
    if not logons(msgs):
        return no_logon(sid)
    gap = _gap(evidence, msgs)
    if gap is None:
        return result(sid, Verdict.INCONCLUSIVE, "no gap was made")
    if gap.reveal is None or gap.missing is None:
        return result(sid, Verdict.INCONCLUSIVE, "no message after the dropped ones reached the client")
    first, last = gap.missing
    findings, measured = [], {}
    requests = [m for m in from_client(msgs, "2", gap.mark_at) if m.connection == gap.connection]
    if len(requests) != 1:
        findings.append(Finding("exactly one ResendRequest (35=2)", f"{len(requests)}",
                                requests[1].index if len(requests) > 1 else None))
    if requests:
        r = requests[0]
        measured["resend_request_after_gap_ms"] = (r.at - gap.reveal.at) * 1000
        if r.get(7) != str(first) or r.get(16) not in (str(last), "0"):
            findings.append(Finding(f"7={first} and 16={last} or 0", f"7={r.get(7)} 16={r.get(16)}", r.index))
    for m in from_client(msgs, "3", gap.mark_at):
        findings.append(Finding("no Reject (35=3) of the replay or the GapFill", f"35=3 58={m.get(58, '')}", m.index))
    if requests and fault_made(evidence, AFTER_MARK) is not None and not _answered_after(evidence):
        findings.append(Finding("the session going on after the replay (a TestRequest answered)", "no answer"))
    order, state = placed_order(evidence), state_after(evidence, gap.reveal.at)
    note = ""
    if gap.dropped_fill and order is not None and state is not None:
        cum = cum_qty_of(state, order)
        if cum != Decimal(2):
            findings.append(Finding("both replayed fills applied once (CumQty 2)", f"CumQty {cum}"))
    else:
        note = " (the client's state was not probed)" if gap.dropped_fill else \
            " (the dropped messages were not fills: the client takes no instructions)"
    if findings:
        return result(sid, Verdict.FAIL, f"RT gap: expected {findings[0].expected}, seen {findings[0].seen}",
                       findings, measured)
    return result(sid, Verdict.PASS, f"one ResendRequest for {first}..{last}, replay and GapFill taken{note}",
                   (), measured)


# --- kalshi/seq-rt/03 --------------------------------------------------------------------------------


@scenario("kalshi/seq-rt/03")
async def rt_restart(ctx: Context) -> None:
    if not await logged_on(ctx):
        return
    before = time.time()
    if await resting_order(ctx, "1") is None:
        return
    order = next((m for m in from_client(messages(ctx.evidence), "D", before)), None)
    if order is None or order.seq is None:
        return
    conn = current_connection(ctx.evidence)
    ctx.fault(RESTART_MARK)
    await ctx.stop_client()
    await ctx.start_client()
    if not await logged_on(ctx, after=conn):
        return
    if not await act(ctx, f"{FORGET_MARK} {order.seq}", ctx.sim.faults.forget_inbound, ctx.key.key_id, order.seq):
        return
    forgot = first_mark(ctx.evidence, FORGET_MARK).at  # type: ignore[union-attr]
    # The client's next message is too high: the simulator asks for the rest again (35=2). Ask for
    # one at once rather than wait for the client's heartbeat.
    if not await act(ctx, f"{TEST_REQUEST_MARK} CONF-RESEND", ctx.sim.faults.test_request, ctx.key.key_id,
                      "CONF-RESEND"):
        return
    resent = lambda ev: any(m.get(43) == "Y" or m.type == "4" for m in from_client(messages(ev), after=forgot))  # noqa: E731
    if await ctx.wait_for(lambda ev: resent(ev) or not ctx.client_running, 2 * heartbeat_of(ctx.evidence) + SLACK + 5):
        await watch(ctx, SLACK + 1)  # the rest of the resend
        await _still_up(ctx)


@judge("kalshi/seq-rt/03")
def _seq_rt_03(evidence: Evidence, profile: Profile) -> ScenarioResult:
    sid = "kalshi/seq-rt/03"
    msgs = messages(evidence)
    if not logons(msgs):
        return no_logon(sid)
    session = profile.session(SessionType.RT.value)
    if session is not None and session.logon.reset_seq_num:
        return result(sid, Verdict.NA, "the profile's KalshiRT session resets its numbers on every Logon (141=Y)")
    restart, forgot = first_mark(evidence, RESTART_MARK), fault_made(evidence, FORGET_MARK)
    if restart is None:
        return result(sid, Verdict.INCONCLUSIVE, "the client did not place the order it was asked to, so no "
                                                  "restart was made")
    if forgot is None:
        return result(sid, Verdict.INCONCLUSIVE, "the client did not log on again after its restart")
    from_seq = int(forgot.what.rsplit(" ", 1)[-1])
    findings, measured = [], {}
    new_logon = next((m for m in logons(msgs) if m.at > restart.at), None)
    assert new_logon is not None
    old = [m for m in from_client(msgs) if m.connection < new_logon.connection and m.seq is not None]
    expected = old[-1].seq + 1 if old else 1  # type: ignore[operator]
    if new_logon.get(141) == "Y" or new_logon.seq != expected:
        findings.append(Finding(f"no 141=Y and 34={expected} (the persisted next number)",
                                f"141={new_logon.get(141, '(absent)')} 34={new_logon.get(34)}", new_logon.index))
    placed = {m.get(11) for m in from_client(msgs, "D") if m.at < restart.at}
    covered: set[int] = set()
    for m in from_client(msgs, after=forgot.at):
        if m.connection != new_logon.connection:
            continue
        if m.type == "4" and m.get(123) == "Y" and m.seq is not None and (m.get(36) or "").isdigit():
            covered |= set(range(m.seq, int(m.get(36))))  # type: ignore[arg-type]
        elif m.get(43) == "Y" and m.seq is not None:
            covered.add(m.seq)
            if 122 not in m.fields:
                findings.append(Finding("122 (OrigSendingTime) on a PossDup copy", "no 122", m.index))
    if from_seq not in covered:
        findings.append(Finding(f"MsgSeqNum {from_seq} (the order) sent again as a 43=Y copy", "it was not"))
    for m in from_client(msgs, "D", restart.at):
        if m.get(43) != "Y":
            what = "the same ClOrdID" if m.get(11) in placed else "a new ClOrdID"
            findings.append(Finding("no order sent again as a new order", f"35=D with {what}, no 43=Y", m.index))
    if fault_made(evidence, AFTER_MARK) is not None and not _answered_after(evidence):
        findings.append(Finding("the session going on after the resend (a TestRequest answered)", "no answer"))
    resends = [m for m in from_client(msgs, after=forgot.at) if m.get(43) == "Y" or m.type == "4"]
    if resends:
        measured["resend_answered_after_ms"] = (resends[0].at - forgot.at) * 1000
    if findings:
        return result(sid, Verdict.FAIL, f"RT restart: expected {findings[0].expected}, seen {findings[0].seen}",
                       findings, measured)
    return result(sid, Verdict.PASS, "the sequence continued across the restart and the resend came from the store "
                                      "as PossDup copies and GapFills", (), measured)


# --- kalshi/seq-all/01 -------------------------------------------------------------------------------


@scenario("kalshi/seq-all/01")
async def poss_dup_fill(ctx: Context) -> None:
    if not await logged_on(ctx):
        return
    order_id = await resting_order(ctx, "2")
    if order_id is None:
        return
    key = ctx.key.key_id
    if not await act(ctx, f"{DUPLICATE_MARK} (order {order_id})", ctx.sim.faults.duplicate_next, key):
        return
    await asyncio.to_thread(ctx.sim.admin.add_fill, order_id, "1", True)
    if not await call_simulator(ctx, ctx.sim.faults.wait_spent, key, 5.0):
        return
    mark = first_mark(ctx.evidence, DUPLICATE_MARK)
    assert mark is not None
    both = lambda ev: len([m for m in to_client(messages(ev), "8", mark.at) if m.get(150) == "F"]) >= 2  # noqa: E731
    await ctx.wait_for(lambda ev: both(ev) or not ctx.client_running, ACK_WAIT)
    await watch(ctx, SLACK)  # what the client does about the copy, if anything
    await state_probe(ctx)


@judge("kalshi/seq-all/01")
def _seq_all_01(evidence: Evidence, profile: Profile) -> ScenarioResult:
    sid = "kalshi/seq-all/01"
    msgs = messages(evidence)
    if not logons(msgs):
        return no_logon(sid)
    mark = fault_made(evidence, DUPLICATE_MARK)
    if mark is None:
        return result(sid, Verdict.INCONCLUSIVE, "the client did not rest the order it was asked to, so no fill "
                                                  "could be duplicated")
    fills = [m for m in to_client(msgs, "8", mark.at) if m.get(150) == "F"]
    copy = next((m for m in fills if m.get(43) == "Y"), None)
    if copy is None:
        return result(sid, Verdict.INCONCLUSIVE, "the PossDup copy of the fill did not reach the client")
    conn = copy.connection
    findings = []
    for m in from_client(msgs, after=mark.at):
        if m.connection == conn and m.type in ("3", "2"):
            findings.append(Finding("the copy ignored: no Reject or ResendRequest", f"35={m.type}", m.index))
    end = connection_end(evidence, conn)
    if end is not None and end[1] and not stopped_by_runner(evidence, end[0]):
        findings.append(Finding("the session kept up after the copy", "the client closed it"))
    order, state = placed_order(evidence), state_after(evidence, copy.at)
    if order is not None and state is not None:
        cum = cum_qty_of(state, order)
        if cum != Decimal(1):
            findings.append(Finding("the fill counted once (CumQty 1)", f"CumQty {cum}"))
    if findings:
        return result(sid, Verdict.FAIL, f"PossDup fill: expected {findings[0].expected}, seen {findings[0].seen}",
                       findings)
    if state is None:
        return result(sid, Verdict.INCONCLUSIVE, "the session took the copy quietly, but the client's state was not "
                                                  "reported, so a double count cannot be ruled out")
    return result(sid, Verdict.PASS, "the PossDup copy of the fill was not counted again")



# --- kalshi/seq-nr/03 (optional) ---------------------------------------------------------------------

GARBLE_MARK = "bad_checksum_next: the simulator's next message goes out with a wrong CheckSum"


@scenario("kalshi/seq-nr/03")
async def nr_garbled(ctx: Context) -> None:
    if not await logged_on(ctx):
        return
    conn, key = current_connection(ctx.evidence), ctx.key.key_id
    heartbeat = heartbeat_of(ctx.evidence)
    if not await act(ctx, GARBLE_MARK, ctx.sim.faults.bad_checksum_next, key):
        return
    spent = heartbeat + SLACK + 5  # the next message is the simulator's heartbeat, within HeartBtInt
    done: list[bool] = []
    if not await call_simulator(ctx, lambda: done.append(ctx.sim.faults.wait_spent(key, spent))):
        return
    if not done[0]:
        raise HarnessError(f"the simulator had sent no message within {spent:g} s to garble")
    if not await logged_on(ctx, after=conn, timeout=2 * heartbeat + SLACK + RECONNECT_WAIT):
        return
    seen = _gap_seen(ctx.evidence, (GARBLE_MARK,))
    await ctx.wait_for(lambda ev: _reconciled(ev, seen) or not ctx.client_running, RECONCILE_WAIT)


@judge("kalshi/seq-nr/03")
def _seq_nr_03(evidence: Evidence, profile: Profile) -> ScenarioResult:
    return _nr_gap_policy("kalshi/seq-nr/03", evidence, _gap(evidence, messages(evidence), (GARBLE_MARK,)))


# --- kalshi/seq-rt/02 (optional) ---------------------------------------------------------------------

RETENTION_MARK = "shorten_retention 0: every ResendRequest falls outside the retention window"


@scenario("kalshi/seq-rt/02")
async def rt_beyond_retention(ctx: Context) -> None:
    if not await logged_on(ctx):
        return
    conn = current_connection(ctx.evidence)
    await act(ctx, RETENTION_MARK, ctx.sim.faults.shorten_retention, ctx.key.key_id, 0)
    if await _make_gap(ctx, 1) is None:
        return
    reset = lambda ev: any(m.get(141) == "Y" for m in logons(messages(ev)) if m.connection > conn)  # noqa: E731
    if await ctx.wait_for(lambda ev: reset(ev) or not ctx.client_running,
                          2 * heartbeat_of(ctx.evidence) + SLACK + RECONNECT_WAIT):
        seen = _gap_seen(ctx.evidence)
        await ctx.wait_for(lambda ev: _reconciled(ev, seen) or not ctx.client_running, RECONCILE_WAIT)


@judge("kalshi/seq-rt/02")
def _seq_rt_02(evidence: Evidence, profile: Profile) -> ScenarioResult:
    sid = "kalshi/seq-rt/02"
    msgs = messages(evidence)
    if not logons(msgs):
        return no_logon(sid)
    gap = _gap(evidence, msgs)
    if gap is None or gap.reveal is None:
        return result(sid, Verdict.INCONCLUSIVE, "no gap reached the client")
    asked = [m for m in from_client(msgs, "2", gap.mark_at) if m.connection == gap.connection]
    if not asked:
        return result(sid, Verdict.INCONCLUSIVE, "the client sent no ResendRequest, so the refusal of one was "
                                                  "never seen (kalshi/seq-rt/01 judges the request itself)")
    refused = next((m for m in to_client(msgs, "3", asked[0].at) if m.connection == gap.connection), None)
    if refused is None:
        return result(sid, Verdict.INCONCLUSIVE, "the simulator's Reject of the ResendRequest is not in the evidence")
    findings, measured = [], {}
    for m in asked[1:]:
        findings.append(Finding("no second ResendRequest after the Reject", "35=2 again", m.index))
    again = [m for m in logons(msgs) if m.connection > gap.connection]
    if not again:
        findings.append(Finding("a Logon with 141=Y after the refused resend", "none"))
    else:
        measured["reset_logon_after_reject_s"] = again[0].at - refused.at
        if again[0].get(141) != "Y" or again[0].get(34) != "1":
            findings.append(Finding("141=Y and 34=1", f"141={again[0].get(141, '(absent)')} 34={again[0].get(34)}",
                                    again[0].index))
    if not _reconciled(evidence, refused.at):
        findings.append(Finding("reconciliation over REST after the refused resend", "none"))
    if findings:
        return result(sid, Verdict.FAIL, f"resend beyond retention: expected {findings[0].expected}, seen "
                                          f"{findings[0].seen}", findings, measured)
    return result(sid, Verdict.PASS, "one ResendRequest; after its Reject a reset Logon and REST reconciliation",
                   (), measured)


# --- kalshi/seq-rt/04 (optional) ---------------------------------------------------------------------

GAP_FILL_MARK = "sequence_reset: GapFill (123=Y)"
RESET_MARK = "sequence_reset: Reset (123=N)"
RESET_PROBES = ((GAP_FILL_MARK, True, "CONF-SR-1"), (RESET_MARK, False, "CONF-SR-2"))


@scenario("kalshi/seq-rt/04")
async def counterparty_reset(ctx: Context) -> None:
    if not await logged_on(ctx):
        return
    key, heartbeat = ctx.key.key_id, heartbeat_of(ctx.evidence)
    for mark, gap_fill, probe in RESET_PROBES:
        if not await act(ctx, mark, ctx.sim.faults.sequence_reset, key, gap_fill):
            return
        if not await act(ctx, f"{TEST_REQUEST_MARK} {probe}", ctx.sim.faults.test_request, key, probe):
            return
        answered = lambda ev, p=probe: any(m.get(112) == p for m in from_client(messages(ev), "0"))  # noqa: E731
        if not await ctx.wait_for(lambda ev: answered(ev) or not ctx.client_running, heartbeat + SLACK):
            return
    reset = first_mark(ctx.evidence, RESET_MARK)
    assert reset is not None
    await ctx.wait_for(lambda ev: _reconciled(ev, reset.at) or not ctx.client_running, RECONCILE_WAIT)


@judge("kalshi/seq-rt/04")
def _seq_rt_04(evidence: Evidence, profile: Profile) -> ScenarioResult:
    sid = "kalshi/seq-rt/04"
    msgs = messages(evidence)
    if not logons(msgs):
        return no_logon(sid)
    findings, measured = [], {}
    for mark_text, _, probe in RESET_PROBES:
        mark = fault_made(evidence, mark_text)
        if mark is None:
            return result(sid, Verdict.INCONCLUSIVE, f"no {mark_text[len('sequence_reset: '):]} was sent")
        sent = next(iter(to_client(msgs, "4", mark.at)), None)
        answer = next((m for m in from_client(msgs, "0", mark.at) if m.get(112) == probe), None)
        until = answer.at if answer is not None else evidence.ended or float("inf")
        for m in from_client(msgs, after=mark.at):
            if m.at <= until and m.type in ("2", "3"):
                findings.append(Finding(f"no 35={m.type} after a SequenceReset", f"35={m.type}", m.index))
        if answer is None:
            findings.append(Finding(f"the session going on at 36={sent.get(36) if sent else '?'} (TestRequest {probe} "
                                    "answered)", "no answer"))
    reset = first_mark(evidence, RESET_MARK)
    assert reset is not None
    calls = [r for r in evidence.rest if r.at >= reset.at and r.method == "GET"
             and ("/portfolio/orders" in r.path or "/portfolio/fills" in r.path)]
    if not calls:
        findings.append(Finding("reconciliation over REST after a Reset over unseen messages", "none"))
    else:
        measured["reconciled_after_reset_s"] = calls[0].at - reset.at
    if findings:
        return result(sid, Verdict.FAIL, f"counterparty SequenceReset: expected {findings[0].expected}, seen "
                                          f"{findings[0].seen}", findings, measured)
    return result(sid, Verdict.PASS, "GapFill and Reset applied without a Reject or ResendRequest; reconciled "
                                      "after the Reset", (), measured)
