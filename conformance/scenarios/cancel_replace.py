"""Cancel, replace and mass cancel (spec §10.4-10.6, §11.7): kalshi/cxl/01 ... 03, kalshi/mc/01 and 02.

The orders rest on ``CONF-ORD`` (nothing fills them) or on the scripted ``CONF-CXL-REJECT`` and
``CONF-RACE`` (``simulator.scripted``). Judges decide from the evidence alone.
"""

from __future__ import annotations

from conformance.model import Evidence, Finding, ScenarioResult, Verdict
from conformance.profile import Profile
from conformance.scenarios import Context, judge, scenario
from conformance.scenarios.order_driving import (
    ORD,
    Placed,
    answered,
    begin,
    cancel,
    instruct,
    observe,
    place,
    replace,
    state,
    until,
)
from conformance.scenarios.order_evidence import (
    NO_STATE,
    failed,
    unwired,
    Msg,
    complaints,
    current_cl_ord_id,
    decimal,
    finding,
    instructed,
    order_in,
    orders_on,
    received,
    reports_for,
    request_problems,
    result,
    sent,
    state_after,
    wire,
)

CXL_REJECT, RACE = "CONF-CXL-REJECT", "CONF-RACE"
MASS_CANCEL_BODY = frozenset({11, 530, 60})  # ClOrdID, MassCancelRequestType, and TransactTime FIX asks for
HEADER_TRAILER = frozenset({8, 9, 10, 34, 35, 43, 49, 52, 56, 57, 97, 115, 122, 128, 142, 143, 1128, 1129})
MIN_BACKOFF = 0.5  # seconds: a request refused with 380=8 and sent again sooner was not backed off


def _order_requests(msgs: list[Msg], order: Msg, *types: str) -> list[Msg]:
    """The client's cancels and replaces (of ``types``) of ``order``, in order: those naming in 41 a
    ClOrdID the order or a request on it had, or its OrderID in 37."""
    ids = {order.get(11)}
    order_ids = {r.get(37) for r in reports_for(msgs, [order.get(11, "") or ""], "8") if r.get(37) not in (None, "NONE")}
    out = []
    for m in sent(msgs, "F", "G"):
        if m.at >= order.at and (m.get(41) in ids or m.get(37) in order_ids):
            ids.add(m.get(11))
            if m.type in types:
                out.append(m)
    return out


def _used_before(msgs: list[Msg], request: Msg) -> set[str]:
    return {m.get(11, "") or "" for m in sent(msgs, "D", "F", "G", "q") if m.index < request.index}


# --- kalshi/cxl/01 ---------------------------------------------------------------------------------


@scenario("kalshi/cxl/01")
async def cancel_request(ctx: Context) -> None:
    if not await begin(ctx):
        return
    order = await place(ctx, ORD, "0.11")
    if order is None or await answered(ctx, order.request, ("0",)) is None:
        return
    amend = await replace(ctx, order, price="0.12")  # so that the latest ClOrdID is not the first
    if amend is not None:
        await answered(ctx, amend, ("5",))
    request = await cancel(ctx, order)
    if request is not None:
        await answered(ctx, request, ("4",))
    await state(ctx)


@judge("kalshi/cxl/01")
def _(evidence: Evidence, profile: Profile) -> ScenarioResult:
    sid = "kalshi/cxl/01"
    msgs = wire(evidence)
    if (early := unwired(sid, msgs)) is not None:
        return early
    orders = orders_on(msgs, ORD)
    cancels = [(d, f) for d in orders for f in _order_requests(msgs, d, "F")]
    if not cancels:
        return result(sid, Verdict.INCONCLUSIVE, "the client sent no OrderCancelRequest for its order")
    order, request = cancels[0]
    findings = [finding("a cancel as Kalshi takes it (P7)", p, request, "P7")
                for p in request_problems(msgs, request, _used_before(msgs, request))]
    latest = current_cl_ord_id(msgs, order.get(11, "") or "", request.at)
    if request.get(41) != latest:
        findings.append(finding(f"41={latest}, the order's latest ClOrdID", f"41={request.get(41)}", request))
    for tag, name in ((54, "Side"), (55, "Symbol")):
        if request.get(tag) != order.get(tag):
            findings.append(finding(f"{tag}={order.get(tag)}, the order's {name}", f"{tag}={request.get(tag)}", request))
    if findings:
        return failed(sid, findings, "the cancel request is wrong")
    canceled = next((m for m in reports_for(msgs, [request.get(11, "") or ""], "8") if m.get(150) == "4"), None)
    if canceled is None:
        return result(sid, Verdict.INCONCLUSIVE, "the order's cancel (150=4) never reached the client")
    book = state_after(evidence, canceled.at)
    if book is not None:
        held = order_in(book, [order.get(11, "") or "", latest, request.get(11, "") or ""], canceled.get(37))
        if held is None or held.status != "canceled":
            return failed(sid, [finding("the order canceled in the client's state",
                                       "not in its book" if held is None else f"status {held.status}", canceled)],
                         "the client's book does not close the order")
    replaced = " after a replace" if latest != order.get(11) else ""
    return result(sid, Verdict.PASS, f"the cancel named the latest ClOrdID{replaced}; the order closed"
                  + ("" if book is not None else NO_STATE))


# --- kalshi/cxl/02 ---------------------------------------------------------------------------------


@scenario("kalshi/cxl/02")
async def replace_chain(ctx: Context) -> None:
    if not await begin(ctx):
        return
    order = await place(ctx, ORD, "0.13", time_in_force="day")
    if order is None or await answered(ctx, order.request, ("0",)) is None:
        return
    for change in ({"quantity": "2"}, {"price": "0.14"}):
        amend = await replace(ctx, order, **change)
        if amend is None or await answered(ctx, amend, ("5",)) is None:
            break
    await state(ctx)
    request = await cancel(ctx, order)  # leave nothing resting
    if request is not None:
        await answered(ctx, request, ("4",))


@judge("kalshi/cxl/02")
def _(evidence: Evidence, profile: Profile) -> ScenarioResult:
    sid = "kalshi/cxl/02"
    msgs = wire(evidence)
    if (early := unwired(sid, msgs)) is not None:
        return early
    chains = [(d, _order_requests(msgs, d, "G")) for d in orders_on(msgs, ORD)]
    chains = [(d, gs) for d, gs in chains if gs]
    if not chains:
        return result(sid, Verdict.INCONCLUSIVE, "the client sent no OrderCancelReplaceRequest")
    order, amends = chains[0]
    asks = instructed(evidence, "replace")
    findings: list[Finding] = []
    total = decimal(order.get(38))
    previous = order.get(11)
    accepted = 0
    for n, amend in enumerate(amends):
        findings += [finding("a replace as Kalshi takes it (P7, P8)", p, amend, "P8" if "44=" in p or "38=" in p else "P7")
                     for p in request_problems(msgs, amend, _used_before(msgs, amend))]
        if amend.get(41) != previous:
            findings.append(finding(f"41={previous}: the ClOrdID of the last accepted change", f"41={amend.get(41)}",
                                    amend))
        ask = asks[n] if n < len(asks) else None
        wanted = decimal(str(ask.body["quantity"])) if ask is not None and "quantity" in ask.body else total
        if wanted is not None and decimal(amend.get(38)) != wanted:
            findings.append(finding(f"38={wanted}: the new total quantity", f"38={amend.get(38)}", amend))
        if amend.get(59) is not None and amend.get(59) != order.get(59):
            findings.append(finding(f"no 59, or 59={order.get(59)}: the order's expiry kept",
                                    f"59={amend.get(59)}", amend))
        done = next((m for m in reports_for(msgs, [amend.get(11, "") or ""], "8", "9") if m.get(150) == "5"
                     or m.type == "9"), None)
        if done is None or done.type == "9":
            break  # refused or unanswered: the chain goes on from the same ClOrdID, if at all
        accepted += 1
        previous, total = amend.get(11), decimal(done.get(38)) or wanted
    if findings:
        return failed(sid, findings, "the replace chain is broken")
    if accepted < 2:
        return result(sid, Verdict.INCONCLUSIVE, f"{accepted} replace(s) accepted: the chain needs two")
    last = reports_for(msgs, [previous or ""], "8")
    book = state_after(evidence, last[-1].at) if last else None
    if book is not None:
        held = order_in(book, [order.get(11, "") or "", previous or ""])
        if held is not None and held.cl_ord_id not in (previous, None) and held.status in ("new", "partially_filled"):
            return failed(sid, [finding(f"the client's order under ClOrdID {previous} after the second 150=5",
                                       f"cl_ord_id {held.cl_ord_id}", last[-1])], "the new ClOrdID not adopted")
    return result(sid, Verdict.PASS, "two replaces chained by ClOrdID, each with the new total, the expiry kept"
                  + ("" if book is not None else NO_STATE))


# --- kalshi/cxl/03 (optional) ----------------------------------------------------------------------


@scenario("kalshi/cxl/03")
async def cancel_rejects_and_race(ctx: Context) -> None:
    if not await begin(ctx):
        return
    order = await place(ctx, CXL_REJECT, "0.15")
    if order is not None and await answered(ctx, order.request, ("0",)) is not None:
        for n in range(6):  # 102 = 0, 1, 2, 6, 18, 99 in turn, to cancels and replaces alike
            request = await (cancel(ctx, order) if n % 2 == 0 else replace(ctx, order, price="0.16"))
            if request is None or await answered(ctx, request, msg_types=("9",)) is None:
                break
        await state(ctx)
    raced = await place(ctx, RACE, "0.17")
    if raced is not None and await answered(ctx, raced.request, ("0",)) is not None:
        request = await cancel(ctx, raced)
        if request is not None:
            await answered(ctx, request, msg_types=("9",))
        await state(ctx)


@judge("kalshi/cxl/03")
def _(evidence: Evidence, profile: Profile) -> ScenarioResult:
    sid = "kalshi/cxl/03"
    msgs = wire(evidence)
    if (early := unwired(sid, msgs)) is not None:
        return early
    findings: list[Finding] = []
    checked = 0
    refused = [m for d in orders_on(msgs, CXL_REJECT) for m in reports_for(msgs, [d.get(11, "") or ""], "9")]
    if refused:
        order = orders_on(msgs, CXL_REJECT)[0]
        book = state_after(evidence, refused[-1].at)
        if book is not None:
            checked += 1
            held = order_in(book, [order.get(11, "") or ""], refused[-1].get(37))
            if held is None or held.status not in ("new", "pending_cancel", "pending_replace") \
                    or held.leaves_qty != decimal(order.get(38)) or held.cl_ord_id not in (order.get(11), None):
                seen = "not in its book" if held is None else \
                    f"status {held.status}, leaves {held.leaves_qty}, cl_ord_id {held.cl_ord_id}"
                findings.append(finding(f"after {len(refused)} refusals (35=9) the order as it was: new, leaves "
                                        f"{order.get(38)}, ClOrdID {order.get(11)}", seen, refused[-1]))
    raced = orders_on(msgs, RACE)
    if raced:
        fills = [m for m in reports_for(msgs, [raced[0].get(11, "") or ""], "8") if m.get(39) == "2"]
        too_late = reports_for(msgs, [raced[0].get(11, "") or ""], "9")
        book = state_after(evidence, too_late[-1].at) if fills and too_late else None
        if book is not None:
            checked += 1
            held = order_in(book, [raced[0].get(11, "") or ""], fills[0].get(37))
            if held is None or held.status != "filled":
                findings.append(finding("the order filled during its pending cancel ends filled",
                                        "not in its book" if held is None else f"status {held.status}", too_late[-1]))
    findings += [finding("no 35=3 or 35=j from the client", m.describe(), m) for m in complaints(msgs)]
    if findings:
        return failed(sid, findings, "a refusal or a race changed the client's order")
    if checked < 2:
        return result(sid, Verdict.INCONCLUSIVE, "the client's state after the refusals and after the race is "
                      "needed (it reported " + ("one of them)" if checked else "neither)"))
    return result(sid, Verdict.PASS, f"{len(refused)} refusals left the order as it was; the raced order ended "
                  "filled")


# --- kalshi/mc/01 and 02 (optional) ----------------------------------------------------------------


async def _two_resting(ctx: Context) -> list[Placed]:
    resting = []
    for price in ("0.05", "0.06"):
        order = await place(ctx, ORD, price)
        if order is not None and await answered(ctx, order.request, ("0",)) is not None:
            resting.append(order)
    return resting


@scenario("kalshi/mc/01")
async def mass_cancel(ctx: Context) -> None:
    if not await begin(ctx):
        return
    resting = await _two_resting(ctx)
    if not resting:
        return
    mark = len(ctx.evidence.messages)
    if await instruct(ctx, "mass_cancel") is None:
        return
    ids = [o.cl_ord_id for o in resting]
    await until(ctx, lambda msgs: any(m.index >= mark for m in received(msgs, "r")) and all(
        any(r.get(150) == "4" and r.index >= mark for r in reports_for(msgs, [cl], "8")) for cl in ids), 10.0)
    await state(ctx)


@judge("kalshi/mc/01")
def _(evidence: Evidence, profile: Profile) -> ScenarioResult:
    sid = "kalshi/mc/01"
    msgs = wire(evidence)
    if (early := unwired(sid, msgs)) is not None:
        return early
    requests = sent(msgs, "q")
    if not requests:
        return result(sid, Verdict.INCONCLUSIVE, "the client sent no OrderMassCancelRequest")
    findings = []
    for q in requests:
        extra = sorted(set(q.fields) - MASS_CANCEL_BODY - HEADER_TRAILER)
        if extra:
            findings.append(finding("35=q with 11 and 530=6 only", f"also {', '.join(f'{t}={q.get(t)}' for t in extra)}",
                                    q))
        if q.get(530) != "6":
            findings.append(finding("530=6 (cancel for the session)", f"530={q.get(530)}", q))
        if q.session != "KalshiNR":
            findings.append(finding("35=q on KalshiNR only (P10)", f"on {q.session}", q, "P10"))
    if findings:
        return failed(sid, findings, "the mass cancel request is wrong")
    report = next((m for m in received(msgs, "r") if m.at > requests[0].at), None)
    if report is None:
        return result(sid, Verdict.INCONCLUSIVE, "no OrderMassCancelReport reached the client")
    book = state_after(evidence, max([report.at] + [m.at for m in received(msgs, "8") if m.get(150) == "4"]))
    if book is None:
        return result(sid, Verdict.PASS, "35=q carried 11 and 530=6 only" + NO_STATE) if report.get(531) == "6" \
            else result(sid, Verdict.INCONCLUSIVE, f"the mass cancel was refused (531={report.get(531)})")
    live = [o for o in book.orders or [] if o.status in ("new", "partially_filled", "pending_new")]
    if live:
        return failed(sid, [finding("no open order left in the client's book after 35=r 531=6",
                                   ", ".join(f"{o.cl_ord_id} {o.status}" for o in live), report)],
                     "orders the mass cancel ended are still open")
    return result(sid, Verdict.PASS, "35=q carried 11 and 530=6 only; the client's book has no open order after it")


@scenario("kalshi/mc/02")
async def mass_cancel_limits(ctx: Context) -> None:
    if not await begin(ctx):
        return
    await _two_resting(ctx)
    mark = len(ctx.evidence.messages)
    if await instruct(ctx, "mass_cancel") is None:
        return
    await until(ctx, lambda msgs: any(m.index >= mark for m in received(msgs, "r")), 10.0)
    ctx.fault("rate_limit 1: a second 35=q within 1 s is answered 35=j 380=8")
    ctx.sim.faults.rate_limit(ctx.key.key_id, 1)
    await instruct(ctx, "mass_cancel")
    await observe(ctx)


@judge("kalshi/mc/02")
def _(evidence: Evidence, profile: Profile) -> ScenarioResult:
    sid = "kalshi/mc/02"
    msgs = wire(evidence)
    if (early := unwired(sid, msgs)) is not None:
        return early
    requests = sent(msgs, "q")
    findings = [finding("35=q on KalshiNR only (P10)", f"on {q.session}", q, "P10") for q in requests
                if q.session != "KalshiNR"]
    for before, q in zip(requests, requests[1:]):
        if q.at - before.at < 1.0:
            findings.append(finding("at most one 35=q a second (P10)", f"{q.at - before.at:.3f} s after the last",
                                    q, "P10"))
    limited = [j for j in received(msgs, "j") if j.get(380) == "8" and j.get(372) == "q"]
    for j in limited:
        again = next((q for q in requests if q.at > j.at), None)
        asked = [a for a in instructed(evidence, "mass_cancel") if a.at > j.at]
        if again is not None and not asked and again.at - j.at < MIN_BACKOFF:
            findings.append(finding(f"a mass cancel refused with 380=8 tried again only after a backoff "
                                    f"(>= {MIN_BACKOFF} s)", f"{again.at - j.at:.3f} s later", again))
    if findings:
        return failed(sid, findings, "mass cancel limits not kept")
    asks = instructed(evidence, "mass_cancel")
    if len(asks) < 2 or asks[1].answer is None:
        return result(sid, Verdict.INCONCLUSIVE, "the client did not answer the second mass cancel instruction")
    how = "refused by the client itself" if not asks[1].ok else "sent, refused by the exchange and not repeated" \
        if limited else "sent after a second"
    return result(sid, Verdict.PASS, f"the second mass cancel within 1 s was {how}")
