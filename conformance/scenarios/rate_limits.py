"""Rate limits (spec §8, §18.2): kalshi/rl/01 (380=8 handling) and kalshi/rl/02 (the tier's budget).

kalshi/rl/01 uses the simulator's ``rate_limit`` fault: the client's next three write requests are
answered 35=j 380=8 and never reach the exchange. Judges decide from the evidence alone.
"""

from __future__ import annotations

import asyncio
from collections import deque

from conformance.model import Evidence, Finding, ScenarioResult, Verdict
from conformance.profile import Profile
from conformance.scenarios import Context, judge, scenario
from conformance.scenarios.order_driving import (
    ORD,
    OWN_ORDER_TIMEOUT,
    answered,
    begin,
    instruct,
    observe,
    place,
    state,
    takes_instructions,
    until,
)
from conformance.scenarios.order_evidence import (
    WRITES,
    Msg,
    OPEN_STATUSES,
    asked,
    finding,
    logged_on,
    order_in,
    received,
    reports_for,
    result,
    same_terms,
    sent,
    state_after,
    wire,
)
from fixengine.kalshi.facts import DEFAULT_REQUEST_COST, write_capacity

LIMITED = 3  # write requests the simulator refuses with 380=8
MIN_BACKOFF = 0.5  # seconds: a refused request sent again sooner was not backed off
BURST = 5  # more writes than this in a second that no instruction asked for, after a 380=8, is a burst
RETRY_WATCH = 3.0  # how long the driver watches for a retry after each refusal
ORDERS = 200  # kalshi/rl/02 asks for this many orders at once


def _unwired(scenario_id: str, msgs: list[Msg]) -> ScenarioResult | None:
    if not logged_on(msgs):
        return result(scenario_id, Verdict.INCONCLUSIVE, "the client never logged on")
    return None


def _fail(scenario_id: str, findings: list[Finding], what: str) -> ScenarioResult:
    return result(scenario_id, Verdict.FAIL, f"{what}: {findings[0].expected.rstrip('.')}", findings)


def limited(msgs: list[Msg]) -> list[tuple[Msg, Msg]]:
    """(the client's request, the 35=j 380=8 that refused it), in order."""
    out = []
    for j in received(msgs, "j"):
        if j.get(380) != "8":
            continue
        request = next((m for m in sent(msgs, *WRITES) if m.connection == j.connection and m.at <= j.at
                        and (m.get(34) == j.get(45) or (j.get(379) is not None and m.get(11) == j.get(379)))), None)
        if request is not None:
            out.append((request, j))
    return out


# --- kalshi/rl/01 ----------------------------------------------------------------------------------


@scenario("kalshi/rl/01")
async def rate_limited(ctx: Context) -> None:
    if not await begin(ctx):
        return
    ctx.fault(f"rate_limit {LIMITED}: the next {LIMITED} write requests get 35=j 380=8")
    ctx.sim.faults.rate_limit(ctx.key.key_id, LIMITED)
    if not takes_instructions(ctx):  # the client's own writes meet the limit
        await until(ctx, lambda msgs: len(limited(msgs)) >= LIMITED, OWN_ORDER_TIMEOUT)
        await observe(ctx, RETRY_WATCH)
        return
    for price in ("0.07", "0.08", "0.09"):
        if len(limited(wire(ctx.evidence))) >= LIMITED:
            break  # its own retries used the refusals up
        order = await place(ctx, ORD, price)
        if order is not None:
            await answered(ctx, order.request, msg_types=("8", "j"))
            await observe(ctx, RETRY_WATCH)  # a retry, and when, is the evidence
    after = await place(ctx, ORD, "0.10")  # the limit is spent: this one reaches the exchange
    if after is not None:
        await answered(ctx, after.request, ("0", "8"))
    await state(ctx)


@judge("kalshi/rl/01")
def _(evidence: Evidence, profile: Profile) -> ScenarioResult:
    sid = "kalshi/rl/01"
    msgs = wire(evidence)
    if (early := _unwired(sid, msgs)) is not None:
        return early
    refused = limited(msgs)
    if not refused:
        return result(sid, Verdict.INCONCLUSIVE, "no request of the client was refused with 380=8")
    instructions = [a.at for a in asked(evidence) if a.action in ("place", "cancel", "replace", "mass_cancel")]
    findings: list[Finding] = []
    retried: list[Msg] = []
    for request, j in refused:
        again = next((m for m in sent(msgs, request.type) if m.at > j.at and (
            m.get(11) == request.get(11) or (request.type == "D" and same_terms(m, request)))), None)
        if again is None or any(j.at < at < again.at for at in instructions):
            continue  # not sent again, or sent again because the runner asked
        retried.append(again)
        if again.at - j.at < MIN_BACKOFF:
            findings.append(finding(f"a request refused with 380=8 sent again only after a backoff (>= {MIN_BACKOFF} s)",
                                    f"sent again {again.at - j.at:.3f} s later", again))
    window: deque[float] = deque()
    for m in sent(msgs, *WRITES):
        if m.at <= refused[0][1].at:
            continue
        window.append(m.at)
        while window[0] <= m.at - 1.0:
            window.popleft()
        asked_then = sum(1 for at in instructions if m.at - 1.0 < at <= m.at)
        if len(window) - asked_then > BURST:
            findings.append(finding(f"no burst after 380=8 (at most {BURST} writes a second by itself)",
                                    f"{len(window)} writes in a second", m))
            break
    book = state_after(evidence, refused[-1][1].at)
    if book is not None:
        for request, j in refused:
            if request.type != "D":
                continue
            accepted = [r for r in reports_for(msgs, [request.get(11, "") or ""], "8") if r.get(150) in ("0", "F")]
            held = order_in(book, [request.get(11, "") or ""])
            if not accepted and held is not None and held.status in OPEN_STATUSES:
                findings.append(finding("the refused order not open in the client's book (it never reached the "
                                        "exchange)", f"status {held.status}", j))
    if findings:
        return _fail(sid, findings, "380=8 not handled as a request never applied")
    if book is not None:
        return result(sid, Verdict.PASS, f"{len(refused)} refused requests treated as not applied"
                      + (f"; {len(retried)} retried after a backoff" if retried else ", none retried at once"))
    accepted_retry = [m for m in retried if any(r.get(150) in ("0", "F") for r in reports_for(msgs, [m.get(11) or ""], "8"))]
    if accepted_retry:
        return result(sid, Verdict.PASS, f"{len(accepted_retry)} refused request(s) sent again after a backoff and "
                      "accepted (no state reported)")
    return result(sid, Verdict.INCONCLUSIVE, "no state reported and no refused request sent again: whether the "
                  "client kept a phantom order cannot be seen")


# --- kalshi/rl/02 (optional) -----------------------------------------------------------------------


@scenario("kalshi/rl/02")
async def tier_budget(ctx: Context) -> None:
    if not await begin(ctx):
        return
    await asyncio.gather(*(instruct(ctx, "place", ticker=ORD, side="buy", contract="yes", price="0.01",
                                    quantity="1", time_in_force="gtc") for _ in range(ORDERS)))
    await until(ctx, lambda msgs: len(sent(msgs, "D")) >= ORDERS, 30.0)
    await observe(ctx, 1.5)  # the budget's window passes before the clean-up's own write
    if "mass_cancel" in ctx.profile.features:
        await instruct(ctx, "mass_cancel")  # leave nothing resting


@judge("kalshi/rl/02")
def _(evidence: Evidence, profile: Profile) -> ScenarioResult:
    sid = "kalshi/rl/02"
    msgs = wire(evidence)
    if (early := _unwired(sid, msgs)) is not None:
        return early
    writes = sent(msgs, *WRITES)
    if len(writes) < ORDERS:
        return result(sid, Verdict.INCONCLUSIVE, f"the client sent {len(writes)} write requests of the {ORDERS} asked")
    capacity = write_capacity(profile.tier)
    window: deque[float] = deque()
    busiest = 0
    for m in writes:
        window.append(m.at)
        while window[0] <= m.at - 1.0:
            window.popleft()
        busiest = max(busiest, len(window))
        if len(window) * DEFAULT_REQUEST_COST > capacity:
            return _fail(sid, [finding(f"writes within {capacity} tokens a second ({profile.tier}, "
                                       f"{DEFAULT_REQUEST_COST} a message)", f"{len(window)} in a second", m, "P11")],
                         "the tier's Write budget was exceeded")
    return result(sid, Verdict.PASS, f"{len(writes)} writes, at most {busiest} in any second",
                  measured=(("busiest_second_writes", float(busiest)),))
