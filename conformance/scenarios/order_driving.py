"""The steps the order scenarios' drivers share: start the client and wait for its Logon, make it
place, cancel and replace (an instruction, or for a client that takes none, its own order on the
scenario's market), wait for the simulator's answer, ask for its state. Every wait is bounded; a
step the client does not do returns None and the driver goes on, so the judge says INCONCLUSIVE.

Markets (``conformance.markets`` lists them all): ``CONF-ORD`` (plain: orders rest; buys only, at 20
cents or less, so that scenarios sharing it never trade with each other), ``CONF-YESNO``
(kalshi/ord/02), ``CONF-STP`` (kalshi/ord/07) and the scripted markets of ``simulator.scripted``.
Registers no scenario.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from conformance import markets
from conformance.instructions import Answer
from conformance.scenarios import Context
from conformance.scenarios.order_evidence import Msg, logged_on, received, sent, wire

ORD, YESNO, STP = markets.ORDER_TICKER, markets.YES_NO_TICKER, markets.SELF_TRADE_TICKER
FILL = "CONF-FILL"  # the house meets every order: it fills at once (simulator.scripted)
SETTLE = "CONF-SETTLE"  # as CONF-FILL; kalshi/ums/01 settles it during the run
INSTRUCTION_TIMEOUT = 30.0  # the engine's client waits up to 15 s for its book to be confirmed
ANSWER_TIMEOUT = 10.0  # for the simulator's answer to a request to reach the client
OWN_ORDER_TIMEOUT = 60.0  # for a client that takes no instructions to trade a scenario market itself
SETTLE_TIME = 3.0  # how long a driver watches for what a client does by itself after an answer
STATE_SETTLE = 1.0  # how long after the last report a driver asks for the client's state


def takes_instructions(ctx: Context) -> bool:
    return "instructions" in ctx.profile.features


@dataclass(frozen=True, slots=True)
class Placed:
    """An order the client sent: its key in the client (the instruction's answer, else its
    ClOrdID) and its NewOrderSingle."""

    key: str
    request: Msg

    @property
    def cl_ord_id(self) -> str:
        return self.request.get(11, "") or ""


async def until(ctx: Context, condition: Callable[[list[Msg]], bool], timeout: float) -> bool:
    """Until ``condition`` holds on the wire so far."""
    return await ctx.wait_for(lambda evidence: condition(wire(evidence)), timeout)


async def observe(ctx: Context, seconds: float = SETTLE_TIME) -> None:
    """Watch the client for ``seconds`` (what it does by itself is the evidence)."""
    await ctx.wait_for(lambda evidence: False, seconds)


async def begin(ctx: Context) -> bool:
    """True once the client (the runner started it) has logged on: a Logon went each way."""
    return await until(ctx, logged_on, ctx.connect_timeout)


def _mark(ctx: Context) -> int:
    return len(ctx.evidence.messages)


async def _next_request(ctx: Context, mark: int, msg_type: str, ticker: str | None, timeout: float) -> Msg | None:
    """The client's first ``msg_type`` (on ``ticker``) sent after message ``mark``."""
    def found(msgs: list[Msg]) -> Msg | None:
        return next((m for m in sent(msgs, msg_type) if m.index >= mark and (ticker is None or m.get(55) == ticker)),
                    None)
    await until(ctx, lambda msgs: found(msgs) is not None, timeout)
    return found(wire(ctx.evidence))


async def instruct(ctx: Context, action: str, **fields: Any) -> Answer | None:
    """One instruction (fields that are None left out); the client's answer, None without one."""
    body = {"action": action, **{k: v for k, v in fields.items() if v is not None}}
    return await ctx.instruct(body, INSTRUCTION_TIMEOUT)


async def place(ctx: Context, ticker: str, price: str, *, quantity: str = "1", side: str = "buy",
                contract: str = "yes", time_in_force: str = "gtc", order_group_id: str | None = None) -> Placed | None:
    """Have the client send a NewOrderSingle on ``ticker``: by instruction, or (a client that takes
    none) by waiting for one of its own there."""
    mark = _mark(ctx)
    if not takes_instructions(ctx):
        request = await _next_request(ctx, mark, "D", ticker, OWN_ORDER_TIMEOUT)
        return None if request is None else Placed(request.get(11, "") or "", request)
    answer = await instruct(ctx, "place", ticker=ticker, side=side, contract=contract, price=price,
                            quantity=quantity, time_in_force=time_in_force, order_group_id=order_group_id)
    if answer is None or not answer.ok:
        return None
    request = await _next_request(ctx, mark, "D", ticker, ANSWER_TIMEOUT)
    return None if request is None else Placed(answer.order or request.get(11, "") or "", request)


async def cancel(ctx: Context, order: Placed) -> Msg | None:
    """Have the client cancel ``order``; its OrderCancelRequest, None if it sent none."""
    mark = _mark(ctx)
    answer = await instruct(ctx, "cancel", order=order.key)
    if answer is None or not answer.ok:
        return None
    return await _next_request(ctx, mark, "F", None, ANSWER_TIMEOUT)


async def replace(ctx: Context, order: Placed, *, quantity: str | None = None, price: str | None = None) -> Msg | None:
    """Have the client amend ``order`` (``quantity``: the new total); its 35=G, None if none."""
    mark = _mark(ctx)
    answer = await instruct(ctx, "replace", order=order.key, quantity=quantity, price=price)
    if answer is None or not answer.ok:
        return None
    return await _next_request(ctx, mark, "G", None, ANSWER_TIMEOUT)


async def answered(ctx: Context, request: Msg, exec_types: Sequence[str] = (), timeout: float = ANSWER_TIMEOUT,
                   msg_types: Sequence[str] = ("8", "9", "3", "j")) -> Msg | None:
    """The simulator's answer to ``request`` reaching the client: a report naming its 11 (with
    ``exec_types``, when given), a 35=9, or a 35=3/35=j naming its 34 or its 11."""
    cl, seq = request.get(11), request.get(34)

    def found(msgs: list[Msg]) -> Msg | None:
        for m in received(msgs, *msg_types):
            if m.index <= request.index:
                continue
            if m.type == "8" and m.get(11) == cl and (not exec_types or m.get(150) in exec_types):
                return m
            if m.type == "9" and m.get(11) == cl:
                return m
            if m.type in ("3", "j") and m.connection == request.connection and (m.get(45) == seq or m.get(379) == cl):
                return m
        return None
    await until(ctx, lambda msgs: found(msgs) is not None, timeout)
    return found(wire(ctx.evidence))


async def state(ctx: Context, settle: float = STATE_SETTLE) -> Answer | None:
    """The client's book, when its profile says it reports it, asked ``settle`` seconds after the
    last report reached it (its reading of the socket is its own business)."""
    if "state" not in ctx.profile.features or not takes_instructions(ctx):
        return None
    await observe(ctx, settle)
    return await instruct(ctx, "state")
