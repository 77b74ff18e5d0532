"""What the session-layer scenarios share (``logon``, ``heartbeat``, ``sequence``): their timing, the
marks they leave on the timeline, and the helpers their drivers and judges are built from.

Drivers act through the simulator's faults and wait on the recorded wire; judges read the evidence
alone. Every window is stated against HeartBtInt H, the 108 of the client's first Logon, with
``SLACK`` for a timer that is checked once a second (QuickFIX's is); every wait is bounded. The marks
a driver leaves on the timeline (``Evidence.faults``) are what its judge keys on: each starts with one
of the ``*_MARK`` prefixes of its module.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

from conformance.instructions import Answer, read_answer
from conformance.markets import SESSION_TICKER
from conformance.model import Evidence, FaultMark, Finding, ScenarioResult, Verdict
from conformance.scenarios import Context
from conformance.transcript import Msg, connection_end, messages, to_client
from simulator.faults import FaultError

# Timing (seconds).
SLACK = 1.0  # a timer checked once a second may act up to this late
RECONNECT_WAIT = 30.0  # for the client to come back after the simulator ended its connection
INSTRUCT_TIMEOUT = 20.0  # for an answer to an instruction (a client may wait for its book first)
ACK_WAIT = 10.0  # for the exchange's answer to an order on the wire
RECONCILE_WAIT = 20.0  # for REST reconciliation after a reset Logon
STATE_RETRY = 1.0  # between state questions while a client is still applying what it reconciled
ENDED_WAIT = 1.0  # for the record of a connection's end to arrive after a fault found it gone
STORM = 0.5  # two connection attempts closer than this are a reconnect storm
HEARTBEAT_TOLERANCE = 1.1  # a gap of 1.1 x H (plus SLACK) between the client's messages is still on time

# Timeline marks (prefixes of FaultMark.what) more than one area uses.
CLOSE_MARK = "close: the simulator closes connection"
TEST_REQUEST_MARK = "test_request"
NOT_DONE_MARK = "not done, the client is not connected:"


# --- driver helpers ----------------------------------------------------------------------------------


def latest_accepted(evidence: Evidence, after: int = 0) -> Msg | None:
    """The simulator's Logon answer on the newest connection numbered above ``after``."""
    found = [m for m in to_client(messages(evidence), "A") if m.connection > after]
    return found[-1] if found else None


def current_connection(evidence: Evidence) -> int:
    reply = latest_accepted(evidence)
    return reply.connection if reply is not None else 0


async def logged_on(ctx: Context, after: int = 0, timeout: float | None = None) -> bool:
    """Until the client is logged on on a connection numbered above ``after`` (False: it was not in
    time, or its process ended)."""
    await ctx.wait_for(lambda ev: latest_accepted(ev, after) is not None or not ctx.client_running,
                       ctx.connect_timeout if timeout is None else timeout)
    return latest_accepted(ctx.evidence, after) is not None


async def watch(ctx: Context, seconds: float) -> None:
    """Let ``seconds`` pass with the client running (an observation window, not a synchronisation)."""
    await ctx.wait_for(lambda ev: not ctx.client_running, seconds)


async def call_simulator(ctx: Context, action: Callable[..., Any], *args: Any) -> bool:
    """Call the simulator off the loop (faults may take QuickFIX's locks). False when the fault could
    not be made because the client is not connected (its doing: the judge decides); a fault refused
    while the client is connected is the harness's failure (``FaultError`` goes on: ERROR)."""
    try:
        await asyncio.to_thread(action, *args)
    except FaultError as exc:
        conn = current_connection(ctx.evidence)
        gone = lambda ev: conn == 0 or connection_end(ev, conn) is not None  # noqa: E731
        if not await ctx.wait_for(gone, ENDED_WAIT):  # the end of the connection may still be on its way
            raise
        ctx.fault(f"{NOT_DONE_MARK} {exc}")
        return False
    return True


async def act(ctx: Context, mark: str, action: Callable[..., Any], *args: Any) -> bool:
    """Mark the timeline, then call the simulator (``call_simulator``)."""
    ctx.fault(mark)
    return await call_simulator(ctx, action, *args)


def heartbeat_of(evidence: Evidence) -> float:
    return evidence.heartbeat_interval or 30.0


def order_ack(evidence: Evidence, after: float) -> Msg | None:
    """The exchange's New (150=0) for an order on the session ticker, sent after ``after``."""
    for m in to_client(messages(evidence), "8", after):
        if m.get(55) == SESSION_TICKER and m.get(150) == "0" and m.get(37) not in (None, "NONE"):
            return m
    return None


async def resting_order(ctx: Context, quantity: str) -> str | None:
    """Have the client rest a buy on the session ticker that nothing fills; its OrderID (37), or None
    when the client takes no instructions or the order was not acknowledged."""
    if "instructions" not in ctx.profile.features:
        return None
    before = time.time()
    answer = await ctx.instruct({"action": "place", "ticker": SESSION_TICKER, "side": "buy", "contract": "yes",
                                 "price": "0.10", "quantity": quantity, "time_in_force": "gtc"}, INSTRUCT_TIMEOUT)
    if answer is None or not answer.ok:
        return None
    await ctx.wait_for(lambda ev: order_ack(ev, before) is not None, ACK_WAIT)
    ack = order_ack(ctx.evidence, before)
    return ack.get(37) if ack is not None else None


async def state_probe(ctx: Context, cum_qty: Decimal | None = None) -> None:
    """Ask the client for its state (when it reports one). With ``cum_qty``: ask again, once the
    client's REST calls have paused, until the placed order shows it or ``RECONCILE_WAIT`` passes
    (a client may still be applying what it reconciled)."""
    if "state" not in ctx.profile.features:
        return
    deadline = time.monotonic() + RECONCILE_WAIT
    while ctx.client_running:
        answer = await ctx.instruct({"action": "state"}, INSTRUCT_TIMEOUT)
        order = placed_order(ctx.evidence)
        if cum_qty is None or answer is None or order is None or cum_qty_of(answer, order) == cum_qty:
            return
        if time.monotonic() >= deadline:
            return
        calls = len(ctx.evidence.rest)
        await ctx.wait_for(lambda ev, n=calls: len(ev.rest) > n or not ctx.client_running, STATE_RETRY)


# --- judge helpers -----------------------------------------------------------------------------------


def result(scenario_id: str, verdict: Verdict, reason: str, findings: Iterable[Finding] = (),
            measured: dict[str, float] | None = None) -> ScenarioResult:
    return ScenarioResult(scenario_id, verdict, reason, tuple(findings),
                          tuple((k, round(v, 3)) for k, v in (measured or {}).items()))


def no_logon(scenario_id: str) -> ScenarioResult:
    return result(scenario_id, Verdict.INCONCLUSIVE,
                   "the client never logged on, so there was nothing to observe")


def answers_of(evidence: Evidence) -> dict[str, tuple[float, Answer]]:
    found: dict[str, tuple[float, Answer]] = {}
    for said in evidence.client:
        answer = read_answer(said.line)
        if answer is not None:
            found.setdefault(answer.id, (said.at, answer))
    return found


def instructions_sent(evidence: Evidence) -> list[tuple[float, dict[str, Any]]]:
    out = []
    for sent in evidence.instructions:
        try:
            out.append((sent.at, json.loads(sent.line)))
        except ValueError:
            continue
    return out


def placed_order(evidence: Evidence) -> str | None:
    """The client's key of the order the driver had it place (its answer to the first ``place``)."""
    answers = answers_of(evidence)
    for _, data in instructions_sent(evidence):
        if data.get("action") == "place" and (got := answers.get(data.get("id", ""))) is not None and got[1].ok:
            return got[1].order
    return None


def state_after(evidence: Evidence, after: float) -> Answer | None:
    """The client's last answer to a ``state`` instruction sent after ``after``."""
    answers = answers_of(evidence)
    found = None
    for at, data in instructions_sent(evidence):
        if data.get("action") == "state" and at >= after and (got := answers.get(data.get("id", ""))) is not None:
            if got[1].ok and got[1].orders is not None:
                found = got[1]
    return found


def cum_qty_of(state: Answer, order: str) -> Decimal | None:
    for o in state.orders or []:
        if o.order == order:
            return o.cum_qty
    return None


def connection_at(msgs: list[Msg], at: float) -> int:
    """The connection the client was logged on at ``at`` (the newest accepted before it)."""
    replies = [m for m in to_client(msgs, "A") if m.at <= at]
    return replies[-1].connection if replies else 0


def fault_made(evidence: Evidence, prefix: str) -> FaultMark | None:
    """The driver's first mark starting with ``prefix``, if the fault was made (not followed by a
    "not done" mark: the client was gone)."""
    for i, mark in enumerate(evidence.faults):
        if mark.what.startswith(prefix):
            following = evidence.faults[i + 1:i + 2]
            return None if following and following[0].what.startswith(NOT_DONE_MARK) else mark
    return None


def masked(value: str) -> bool:
    return bool(value) and set(value) == {"*"}
