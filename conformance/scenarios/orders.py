"""Order entry and rejects (spec §10-11, §18): kalshi/ord/01 ... kalshi/ord/07.

Each driver makes the client trade a scenario market (``order_driving``; the scripts are
``simulator.scripted``'s) and each judge decides from the evidence alone: PASS on positive evidence
only, INCONCLUSIVE when what would decide is not there (no order sent, no state reported).
"""

from __future__ import annotations

from decimal import Decimal

from conformance.model import Evidence, Finding, ScenarioResult, Verdict
from conformance.profile import Profile
from conformance.scenarios import Context, judge, scenario
from conformance.scenarios.order_driving import (
    ANSWER_TIMEOUT,
    FILL,
    ORD,
    SETTLE_TIME,
    STP,
    YESNO,
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
    answers_to,
    chain,
    complaints,
    decimal,
    dropped_after,
    finding,
    flag,
    instructed,
    order_in,
    orders_on,
    reports_for,
    request_problems,
    result,
    same_terms,
    sent,
    state_after,
    wire,
)

PARTIAL, FILLS = "CONF-PARTIAL", "CONF-FILLS"
UNAVAILABLE = "CONF-UNAVAILABLE"
SESSION_REJECT, BUSINESS_REJECT = "CONF-SESSION-REJECT", "CONF-BUSINESS-REJECT"
REJECT_PREFIX = "CONF-REJECT-"
# kalshi/ord/04's rejects, each the Text of a CONF-REJECT-<TEXT> market, with the 103 Kalshi gives it.
REJECTS: tuple[tuple[str, str], ...] = (
    ("INSUFFICIENT_BALANCE", "3"), ("MARKET_NOT_FOUND", "1"), ("MARKET_ALREADY_CLOSED", "2"),
    ("ORDER_ALREADY_EXISTS", "6"), ("INVALID_ORDER", "11"), ("TRADING_PAUSED", "2"),
)
LOOP = 2  # sending a rejected order again this many times by itself is a loop
UNKNOWN_OUTCOME_WAIT = 20.0  # how long kalshi/ord/05 gives the client to retry or reconcile


def _resent(evidence: Evidence, msgs: list[Msg], request: Msg, after: float) -> list[Msg]:
    """Sendings of ``request``'s order after ``after`` that no instruction asked for: the same
    ticker, side, quantity and price, under any ClOrdID."""
    again = [m for m in orders_on(msgs, request.get(55, "") or "") if m.at > after and same_terms(m, request)]
    asked_again = [a for a in instructed(evidence, "place", ticker=request.get(55)) if a.at > after]
    return again[len(asked_again):]


# --- kalshi/ord/01 ---------------------------------------------------------------------------------


@scenario("kalshi/ord/01")
async def new_order_single(ctx: Context) -> None:
    if not await begin(ctx):
        return
    resting = await place(ctx, ORD, "0.10")
    if resting is not None:
        await answered(ctx, resting.request, ("0", "8"))
    taking = await place(ctx, FILL, "0.20")
    if taking is not None:
        await answered(ctx, taking.request, ("F", "8"))
    if resting is not None:
        request = await cancel(ctx, resting)  # and the client speaks again after both acknowledgements
        if request is not None:
            await answered(ctx, request, ("4",))
    await state(ctx)


def _acknowledgement(msgs: list[Msg], request: Msg) -> Msg | None:
    """The first report to the client about ``request`` that is not a pending one (150=A)."""
    return next((m for m in answers_to(msgs, request) if m.type == "8" and m.get(150) != "A"), None)


@judge("kalshi/ord/01")
def _(evidence: Evidence, profile: Profile) -> ScenarioResult:
    sid = "kalshi/ord/01"
    msgs = wire(evidence)
    if (early := unwired(sid, msgs)) is not None:
        return early
    findings: list[Finding] = []
    used: set[str] = set()
    for request in sent(msgs, "D", "F", "G"):
        for problem in request_problems(msgs, request, used):
            findings.append(finding("every order request as Kalshi takes it (P7, P8, 59/126)", problem, request,
                                    "P8" if "44=" in problem or "38=" in problem or "40=" in problem else "P7"))
        used.add(request.get(11, "") or "")
    for complaint in complaints(msgs):
        findings.append(finding("no Reject (35=3) or BusinessMessageReject (35=j) from the client",
                                complaint.describe(), complaint))
    if findings:
        return failed(sid, findings, "an order request or the answer to one went wrong")
    orders = sent(msgs, "D")
    if not orders:
        return result(sid, Verdict.INCONCLUSIVE, "the client sent no NewOrderSingle")
    acks = [(d, _acknowledgement(msgs, d)) for d in orders]
    separate = [(d, a) for d, a in acks if a is not None and a.get(150) == "0" and a.get(39) == "0"]
    # A merged acknowledgement: the first report is a Trade (21026=Y: the New comes first, then a Trade).
    merged = [(d, a) for d, a in acks if a is not None and (a.get(150) == "F" or (
        flag(msgs, d.connection, 21026) and any(m.get(150) == "F" for m in answers_to(msgs, d))))]
    if not separate or not merged:
        missing = "a resting order's New (150=0/39=0)" if not separate else "an order that traded at once"
        return result(sid, Verdict.INCONCLUSIVE, f"no acknowledgement of {missing} reached the client")
    last = max(separate[0][1].at, merged[0][1].at)
    connection = merged[0][0].connection
    if not alive_after(msgs, connection, last):
        logout = dropped_after(msgs, connection, last)
        if logout is not None:
            return failed(sid, [finding("the session stays up after the acknowledgements", "the client logged out",
                                       logout)], "the client left")
        return result(sid, Verdict.INCONCLUSIVE, "the client sent nothing after the acknowledgements")
    book = state_after(evidence, last)
    if book is not None:
        for request, ack, wanted in ((*separate[0], {"new"}), (*merged[0], {"filled", "partially_filled"})):
            order = order_in(book, chain(msgs, request.get(11, "") or ""), ack.get(37))
            if order is None or order.status not in wanted | {"canceled", "pending_cancel"}:
                seen = "not in its book" if order is None else f"status {order.status}"
                findings.append(finding(f"the order {request.get(11)} {' or '.join(sorted(wanted))} in the client's "
                                        "state", seen, ack))
        if findings:
            return failed(sid, findings, "the client's book does not follow the acknowledgements")
    return result(sid, Verdict.PASS, "orders well formed; a separate New and a New folded into a Trade both "
                  "taken without a complaint" + ("" if book is not None else NO_STATE))


# --- kalshi/ord/02 ---------------------------------------------------------------------------------


@scenario("kalshi/ord/02")
async def yes_no_price(ctx: Context) -> None:
    if not await begin(ctx):
        return
    order = await place(ctx, YESNO, "0.30", contract="no")
    if order is not None:
        await answered(ctx, order.request)
        request = await cancel(ctx, order)
        if request is not None:
            await answered(ctx, request, ("4",))


@judge("kalshi/ord/02")
def _(evidence: Evidence, profile: Profile) -> ScenarioResult:
    sid = "kalshi/ord/02"
    msgs = wire(evidence)
    if (early := unwired(sid, msgs)) is not None:
        return early
    asks = instructed(evidence, "place", ticker=YESNO, contract="no")
    if not asks:
        return result(sid, Verdict.INCONCLUSIVE, f"the client was not asked to buy NO on {YESNO}")
    ask = asks[0]
    if not ask.ok:
        why = "no answer" if ask.answer is None else f"refused: {ask.answer.error}"
        return result(sid, Verdict.INCONCLUSIVE, f"the client did not take the instruction ({why})")
    orders = [d for d in orders_on(msgs, YESNO) if d.at >= ask.at]
    if not orders:
        return result(sid, Verdict.INCONCLUSIVE, f"the client sent no NewOrderSingle on {YESNO}")
    order = orders[0]
    dollars = flag(msgs, order.connection, 21005)
    yes = Decimal(1) - Decimal(str(ask.body.get("price")))
    wanted = yes if dollars else yes * 100
    shown = f"{wanted:.4f}" if dollars else str(int(wanted))
    findings = []
    if order.get(54) != "2":
        findings.append(finding("54=2: buying NO is selling YES", f"54={order.get(54)}", order))
    price = decimal(order.get(44))
    if price != wanted or (dollars and price != price.quantize(Decimal("0.0001"))) or (
            not dollars and price != price.to_integral_value()):
        findings.append(finding(f"44={shown}: the YES price, 1 - 0.30 ({'dollars, 21005=Y' if dollars else 'cents'})",
                                f"44={order.get(44)}", order))
    if decimal(order.get(38)) != decimal(str(ask.body.get("quantity"))):
        findings.append(finding(f"38={ask.body.get('quantity')}, the quantity asked", f"38={order.get(38)}", order))
    if findings:
        return failed(sid, findings, "buy NO at 30 cents went out wrong")
    return result(sid, Verdict.PASS, f"buy NO at 30 cents sent as 54=2 44={order.get(44)}")


# --- kalshi/ord/03 ---------------------------------------------------------------------------------


@scenario("kalshi/ord/03")
async def fills(ctx: Context) -> None:
    if not await begin(ctx):
        return
    order = await place(ctx, FILLS, "0.40", quantity="2")
    if order is None:
        return
    cl = order.cl_ord_id
    await until(ctx, lambda msgs: any(m.get(39) == "2" for m in reports_for(msgs, [cl], "8")), 2 * ANSWER_TIMEOUT)
    await state(ctx)


@judge("kalshi/ord/03")
def _(evidence: Evidence, profile: Profile) -> ScenarioResult:
    sid = "kalshi/ord/03"
    msgs = wire(evidence)
    if (early := unwired(sid, msgs)) is not None:
        return early
    orders = orders_on(msgs, FILLS)
    if not orders:
        return result(sid, Verdict.INCONCLUSIVE, f"the client sent no order on {FILLS}")
    order = orders[0]
    ids = chain(msgs, order.get(11, "") or "")
    trades = [m for m in reports_for(msgs, ids, "8") if m.get(150) == "F"]
    if not trades:
        return result(sid, Verdict.INCONCLUSIVE, "no fill reached the client")
    executions = {m.get(17): decimal(m.get(32)) or Decimal(0) for m in trades}
    shards = {(m.get(17) or "").count(";") for m in trades}
    last = trades[-1]
    cum, leaves = sum(executions.values(), Decimal(0)), decimal(last.get(151))
    book = state_after(evidence, last.at)
    if book is None:
        return result(sid, Verdict.INCONCLUSIVE, "the client reported no state after its fills: CumQty and "
                      "LeavesQty in its book cannot be seen")
    held = order_in(book, ids, last.get(37))
    if held is None:
        return failed(sid, [finding(f"the order {order.get(11)} in the client's state", "not there", last)],
                     "the filled order is missing")
    findings = []
    if held.cum_qty != cum:
        two = " (two fills on two shards with ExecIDs c;e and c;e;1 are two executions)" if len(shards) > 1 else ""
        findings.append(finding(f"CumQty {cum}, the fills' LastQty summed once per ExecID{two}",
                                f"cum_qty {held.cum_qty}", last))
    if leaves is not None and held.leaves_qty != leaves:
        findings.append(finding(f"LeavesQty {leaves}, as the last report", f"leaves_qty {held.leaves_qty}", last))
    if last.get(39) == "2" and held.status != "filled":
        findings.append(finding("status filled (39=2 on the last report)", f"status {held.status}", last))
    long, short = decimal(last.get(704)), decimal(last.get(705))
    ticker = order.get(55) or ""
    if book.positions is not None and ticker in book.positions and long is not None and short is not None:
        if book.positions[ticker] != long - short:
            findings.append(finding(f"position {long - short} (704 - 705 of the last Trade report)",
                                    f"position {book.positions[ticker]}", last))
    if findings:
        return failed(sid, findings, "the client's book does not add up the fills")
    return result(sid, Verdict.PASS, f"CumQty {cum} and LeavesQty {leaves} right after {len(executions)} fills "
                  f"on {len(shards)} shard(s)")


# --- kalshi/ord/04 ---------------------------------------------------------------------------------


@scenario("kalshi/ord/04")
async def rejects_mapped(ctx: Context) -> None:
    if not await begin(ctx):
        return
    for text, _ in REJECTS:
        order = await place(ctx, REJECT_PREFIX + text, "0.30")
        if order is not None:
            await answered(ctx, order.request, ("8",))
    await observe(ctx)  # a loop would show now
    await state(ctx)


@judge("kalshi/ord/04")
def _(evidence: Evidence, profile: Profile) -> ScenarioResult:
    sid = "kalshi/ord/04"
    msgs = wire(evidence)
    if (early := unwired(sid, msgs)) is not None:
        return early
    findings: list[Finding] = []
    seen: list[tuple[str, Msg, Msg]] = []  # (text, the order, its reject)
    for text, code in REJECTS:
        orders = orders_on(msgs, REJECT_PREFIX + text)
        if not orders:
            continue
        reject = next((m for m in answers_to(msgs, orders[0]) if m.type == "8" and m.get(150) == "8"), None)
        if reject is None:
            continue
        seen.append((text, orders[0], reject))
        again = _resent(evidence, msgs, orders[0], reject.at)
        if len(again) >= LOOP:
            findings.append(finding(f"the order rejected with {text} not sent again by itself",
                                    f"sent {len(again)} more times", again[-1]))
    for complaint in complaints(msgs):
        findings.append(finding("no 35=3 or 35=j from the client about the rejects", complaint.describe(), complaint))
    if not seen:
        return result(sid, Verdict.INCONCLUSIVE, "no order of the client was rejected")
    book = state_after(evidence, max(r.at for _, _, r in seen))
    if book is not None:
        for text, order, reject in seen:
            held = order_in(book, [order.get(11, "") or ""])
            if held is None or held.status != "rejected":
                findings.append(finding(f"the order rejected with {text} rejected in the client's state",
                                        "not in its book" if held is None else f"status {held.status}", reject))
            elif text.lower() not in (held.reason or "").lower():
                findings.append(finding(f"the reason {text} shown", f"reason {held.reason!r}", reject))
    if findings:
        return failed(sid, findings, "rejects not handled as final")
    if len(seen) < len(REJECTS):
        missing = ", ".join(t for t, _ in REJECTS if t not in {s for s, _, _ in seen})
        return result(sid, Verdict.INCONCLUSIVE, f"no order rejected with {missing}")
    return result(sid, Verdict.PASS, f"{len(seen)} rejects each final, none sent again"
                  + ("" if book is not None else NO_STATE))


# --- kalshi/ord/05 ---------------------------------------------------------------------------------


@scenario("kalshi/ord/05")
async def unknown_outcome(ctx: Context) -> None:
    if not await begin(ctx):
        return
    order = await place(ctx, UNAVAILABLE, "0.20")
    if order is None:
        return
    reject = await answered(ctx, order.request, ("8",))
    if reject is None:
        return
    cl, after = order.cl_ord_id, reject.index

    def settled(msgs: list[Msg]) -> bool:  # retried, or sent again under a new ClOrdID
        return any(m.index > after for m in orders_on(msgs, UNAVAILABLE))

    await ctx.wait_for(lambda ev: settled(wire(ev)) or _reconciled(ev, reject.at), UNKNOWN_OUTCOME_WAIT)
    await observe(ctx)
    await state(ctx)
    # Leave nothing resting: the client's own cancel if it knows the order, else nothing.
    if takes_instructions(ctx) and any(m.get(150) == "8" and m.get(58) == "ORDER_ALREADY_EXISTS"
                                       for m in reports_for(wire(ctx.evidence), [cl], "8")):
        await instruct(ctx, "cancel", order=order.key)


def _reconciled(evidence: Evidence, after: float) -> bool:
    """The client read its orders over REST after ``after``."""
    return any(c.method == "GET" and "/portfolio/orders" in c.path and c.at > after and c.status < 400
               for c in evidence.rest)


@judge("kalshi/ord/05")
def _(evidence: Evidence, profile: Profile) -> ScenarioResult:
    sid = "kalshi/ord/05"
    msgs = wire(evidence)
    if (early := unwired(sid, msgs)) is not None:
        return early
    unavailable = [(d, r) for d in orders_on(msgs, UNAVAILABLE) for r in answers_to(msgs, d)
                   if r.type == "8" and r.get(58) == "EXCHANGE_UNAVAILABLE"]
    if not unavailable:
        return result(sid, Verdict.INCONCLUSIVE, "no order of the client was answered EXCHANGE_UNAVAILABLE")
    order, reject = unavailable[0]
    cl = order.get(11)
    later_orders = [m for m in orders_on(msgs, UNAVAILABLE) if m.at > reject.at]
    duplicates = [m for m in _resent(evidence, msgs, order, reject.at) if m.get(11) != cl]
    if duplicates:
        return failed(sid, [finding(f"the order sent again only with 11={cl} (its outcome is unknown: it may rest)",
                                   f"sent again as 11={duplicates[0].get(11)}", duplicates[0])],
                     "a second order under a new ClOrdID")
    retried = next((m for m in later_orders if m.get(11) == cl), None)
    reconciled = _reconciled(evidence, reject.at)
    book = state_after(evidence, reject.at)
    held = order_in(book, [cl or ""]) if book is not None else None
    if held is not None and held.status == "rejected" and (retried is not None or reconciled):
        return failed(sid, [finding("the order kept as live or unknown: it rests on the exchange",
                                   f"status {held.status} after {'the retry' if retried else 'reconciling'}", reject)],
                     "the unknown outcome settled as a reject")
    if retried is not None:
        return result(sid, Verdict.PASS, f"the order sent again with the same ClOrdID {cl}")
    if reconciled:
        return result(sid, Verdict.PASS, "the client read its orders over REST after the unknown outcome")
    return result(sid, Verdict.INCONCLUSIVE, "the client neither sent the order again with its ClOrdID nor read "
                  "its orders over REST within the scenario")


# --- kalshi/ord/06 ---------------------------------------------------------------------------------


@scenario("kalshi/ord/06")
async def request_rejects(ctx: Context) -> None:
    if not await begin(ctx):
        return
    for ticker in (SESSION_REJECT, BUSINESS_REJECT):
        order = await place(ctx, ticker, "0.30")
        if order is not None:
            await answered(ctx, order.request, msg_types=("3", "j"))
    await observe(ctx)
    await state(ctx)


@judge("kalshi/ord/06")
def _(evidence: Evidence, profile: Profile) -> ScenarioResult:
    sid = "kalshi/ord/06"
    msgs = wire(evidence)
    if (early := unwired(sid, msgs)) is not None:
        return early
    findings: list[Finding] = []
    seen: list[tuple[Msg, Msg]] = []
    for ticker, kind in ((SESSION_REJECT, "3"), (BUSINESS_REJECT, "j")):
        orders = orders_on(msgs, ticker)
        if not orders:
            continue
        reject = next((m for m in answers_to(msgs, orders[0]) if m.type == kind), None)
        if reject is None:
            continue
        seen.append((orders[0], reject))
        again = _resent(evidence, msgs, orders[0], reject.at)
        if again:
            findings.append(finding(f"the request rejected by 35={kind} not sent again by itself",
                                    f"sent again {len(again)} time(s)", again[0]))
        retry = next((m for m in sent(msgs, "D") if m.at > reject.at and m.get(11) == orders[0].get(11)), None)
        if retry is not None and not again:
            findings.append(finding(f"the request rejected by 35={kind} not resent", "resent with its ClOrdID", retry))
    for complaint in complaints(msgs):
        findings.append(finding("no 35=3 or 35=j from the client", complaint.describe(), complaint))
    if not seen:
        return result(sid, Verdict.INCONCLUSIVE, "no order of the client was answered by 35=3 or 35=j")
    book = state_after(evidence, max(r.at for _, r in seen))
    if book is not None:
        for order, reject in seen:
            held = order_in(book, [order.get(11, "") or ""])
            if held is None or held.status != "rejected":
                findings.append(finding(f"the request refused by 35={reject.type} (45={reject.get(45)}) failed in "
                                        "the client's state", "not in its book" if held is None
                                        else f"status {held.status}", reject))
    if findings:
        return failed(sid, findings, "a refused request was not failed")
    if len(seen) < 2:
        kind = "session Reject (35=3)" if all(r.type != "3" for _, r in seen) else "BusinessMessageReject (35=j)"
        return result(sid, Verdict.INCONCLUSIVE, f"no order of the client was answered by a {kind}")
    return result(sid, Verdict.PASS, "both refused requests failed and not sent again"
                  + ("" if book is not None else NO_STATE))


# --- kalshi/ord/07 (optional) ----------------------------------------------------------------------

# What kalshi/ord/07 asks for, and the final states its judge accepts in the client's state.
_UNASKED: tuple[tuple[str, str, str, frozenset[str]], ...] = (
    # (label, ticker, time in force, final statuses)
    ("an IOC's remainder", PARTIAL, "ioc", frozenset({"canceled"})),
    ("a FOK without enough volume", PARTIAL, "fok", frozenset({"canceled"})),
    ("a Day order on a closing market", "CONF-EXPIRE", "day", frozenset({"canceled", "expired"})),
)


@scenario("kalshi/ord/07")
async def unasked_endings(ctx: Context) -> None:
    if not await begin(ctx) or not takes_instructions(ctx):
        return
    for _, ticker, tif, _ in _UNASKED:
        order = await place(ctx, ticker, "0.40", quantity="2", time_in_force=tif)
        if order is not None:
            await answered(ctx, order.request, ("4", "C"))
    # Self-trade prevention (taker at cross, Kalshi's default): the client's sell meets its own buy.
    maker = await place(ctx, STP, "0.40")
    if maker is not None:
        await answered(ctx, maker.request, ("0",))
        taker = await place(ctx, STP, "0.40", side="sell")
        if taker is not None:
            await answered(ctx, taker.request, ("4",))
        request = await cancel(ctx, maker)
        if request is not None:
            await answered(ctx, request, ("4",))
    await observe(ctx, SETTLE_TIME)
    await state(ctx)


@judge("kalshi/ord/07")
def _(evidence: Evidence, profile: Profile) -> ScenarioResult:
    sid = "kalshi/ord/07"
    msgs = wire(evidence)
    if (early := unwired(sid, msgs)) is not None:
        return early
    ended: list[tuple[str, Msg, Msg, frozenset[str]]] = []  # (label, order, its end, statuses)
    for label, ticker, tif, finals in _UNASKED:
        wanted = {"ioc": "3", "fok": "4", "day": "0"}[tif]
        for order in orders_on(msgs, ticker):
            if order.get(59) == wanted:
                end = next((m for m in answers_to(msgs, order) if m.type == "8" and m.get(150) in ("4", "C")
                            or (m.type == "8" and m.get(39) in ("4", "C"))), None)
                if end is not None:
                    ended.append((label, order, end, finals))
                break
    stp = [m for m in orders_on(msgs, STP) if m.get(54) == "2"]
    for order in stp[:1]:
        end = next((m for m in answers_to(msgs, order) if m.type == "8" and m.get(150) == "4"), None)
        if end is not None:
            ended.append(("a self-trade taker", order, end, frozenset({"canceled"})))
    findings = [finding("no 35=3 or 35=9 sent back about exchange-made endings", m.describe(), m)
                for m in complaints(msgs) + sent(msgs, "9")]
    if findings:
        return failed(sid, findings, "the client answered the exchange's cancels")
    if not ended:
        return result(sid, Verdict.INCONCLUSIVE, "no order of the client was ended by the exchange")
    book = state_after(evidence, max(end.at for _, _, end, _ in ended))
    if book is None:
        return result(sid, Verdict.INCONCLUSIVE, "the client reported no state after the endings")
    for label, order, end, finals in ended:
        held = order_in(book, chain(msgs, order.get(11, "") or ""), end.get(37))
        if held is None or held.status not in finals:
            findings.append(finding(f"{label} ended {' or '.join(sorted(finals))} in the client's state",
                                    "not in its book" if held is None else f"status {held.status}", end))
        elif held.cum_qty != (decimal(end.get(14)) or Decimal(0)):
            findings.append(finding(f"{label}: CumQty {end.get(14)}", f"cum_qty {held.cum_qty}", end))
    if findings:
        return failed(sid, findings, "an exchange-made ending not in the client's book")
    if len(ended) < len(_UNASKED) + 1:
        return result(sid, Verdict.INCONCLUSIVE, f"only {len(ended)} of {len(_UNASKED) + 1} endings were seen; "
                      "those were right")
    return result(sid, Verdict.PASS, f"{len(ended)} exchange-made endings right in the client's state")
