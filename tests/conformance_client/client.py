"""The reference client: its session, its book, REST reconciliation, and the runner's instructions.

After every Logon new orders wait until the book is reconciled over REST (``GET /portfolio/orders``
and ``GET /portfolio/fills``, signed as rest-spec.md §2.1 says, through ``fixengine.rest.KalshiRest``):
on KalshiNR what was missed while down is never resent. An order rejected EXCHANGE_UNAVAILABLE has
an unknown outcome: it is looked for over REST and, if the exchange does not have it, sent again
under the same ClOrdID (at most ``UNKNOWN_OUTCOME_RETRIES`` times); never under a new one.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from decimal import Decimal
from typing import Any

from conformance.clients.env import ClientEnv
from conformance.clients.stdio import Refused
from conformance.instructions import Instruction
from fixengine.errors import RestError
from fixengine.fix import tags as t
from fixengine.kalshi.facts import SessionType
from fixengine.kalshi.prices import Action, Contract, PriceError, check_price, check_quantity, format_price, to_yes_book
from fixengine.kalshi.signing import load_private_key
from fixengine.orders.wire import first_values
from fixengine.rest import KalshiRest
from fixengine.session.reconnect import Backoff
from tests.conformance_client import wire
from tests.conformance_client.book import TERMINAL, UNKNOWN_OUTCOME, Book, Order
from tests.conformance_client.session import Fields, Session

log = logging.getLogger("conformance_client")

READY_WAIT_S = 15.0  # how long an instruction waits for the logon and the reconciliation after it
UNKNOWN_OUTCOME_RETRIES = 3
RECONCILE_BACKOFF = Backoff(initial=0.5, cap=10.0)
_TIME_IN_FORCE = {"day": "0", "gtc": "1", "ioc": "3", "fok": "4"}


class ReferenceClient:
    def __init__(self, env: ClientEnv, faults: frozenset[str]):
        self.env, self.faults = env, faults
        private_key = load_private_key(file=env.private_key_file)
        self.book = Book()
        self.session = Session(env, private_key, faults, self)
        self.rest = KalshiRest(env.rest_url, env.key_id, private_key) if env.rest_url else None
        self.confirmed = asyncio.Event()  # the book is reconciled since the last Logon: new orders may go
        self.reported = asyncio.Event()  # set (and cleared) as each application message is applied
        self._sent: dict[int, str] = {}  # MsgSeqNum of a request on this connection -> its ClOrdID
        self._retries: dict[str, int] = {}  # order key -> resends after an unknown outcome
        self._tasks: set[asyncio.Task[None]] = set()

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self.rest is not None:
            await self.rest.aclose()

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- what the session says ---------------------------------------------------------------

    def on_logged_on(self) -> None:
        self._sent.clear()
        if self.rest is None:
            log.warning("no KALSHI_REST_URL: the book cannot be reconciled after this Logon")
            self.confirmed.set()
        else:
            self._spawn(self._reconcile_after_logon())

    def on_logged_out(self) -> None:
        self.confirmed.clear()  # reports may be missed until the next Logon is reconciled

    def on_application(self, msg_type: str, fields: Fields, poss_dup: bool) -> None:
        self.reported.set()  # wakes an instruction waiting for its order's request in flight
        self.reported = asyncio.Event()
        f = first_values(fields)
        if msg_type == "8":
            order = self.book.apply_report(f, poss_dup, apply_possdup_again="double-count-possdup" in self.faults)
            if order is not None and f.get(t.EXEC_TYPE) == "8" and UNKNOWN_OUTCOME in (f.get(t.TEXT) or ""):
                self._on_unknown_outcome(order)
        elif msg_type == "9":
            self.book.apply_cancel_reject(f)
        elif msg_type == "j":
            ref = f.get(t.REF_SEQ_NUM, "")
            cl_ord_id = f.get(t.BUSINESS_REJECT_REF_ID) or self._sent.get(int(ref) if ref.isdigit() else -1)
            if cl_ord_id:
                self.book.refused(cl_ord_id, f.get(t.TEXT, "business reject"))
        elif msg_type == "r":
            log.info("mass cancel answered: %s", f.get(t.MASS_CANCEL_RESPONSE))

    def on_session_reject(self, ref_seq_num: int | None, text: str) -> None:
        cl_ord_id = self._sent.get(ref_seq_num) if ref_seq_num is not None else None
        log.warning("session Reject of our message %s: %s", ref_seq_num, text)
        if cl_ord_id is not None:
            self.book.refused(cl_ord_id, text or "session reject")

    # --- reconciliation and unknown outcomes ---------------------------------------------------

    async def _reconcile_after_logon(self) -> None:
        attempt = 0
        while self.session.logged_on.is_set():
            try:
                await self._reconcile()
                self.confirmed.set()
                return
            except RestError as exc:
                log.warning("reconciliation failed (%s); trying again", exc)
            await asyncio.sleep(RECONCILE_BACKOFF.delay(attempt, 0.5))
            attempt += 1

    async def _reconcile(self) -> None:
        assert self.rest is not None
        orders, fills = await self.rest.orders(), await self.rest.fills()
        missing = self.book.reconcile(orders, fills)
        log.info("reconciled over REST: %d orders, %d fills; %d of ours unknown to the exchange",
                 len(orders), len(fills), len(missing))
        for key in missing:
            order = self.book.orders[key]
            if order.unknown_outcome:
                self._resend_same(order)
            else:  # sent, never acknowledged, not on the exchange: it never arrived
                order.status, order.reason = "rejected", "not on the exchange after reconnecting"

    def _on_unknown_outcome(self, order: Order) -> None:
        if "new-clordid-on-unknown" in self.faults:
            if self._retries.get(order.key, 0) >= UNKNOWN_OUTCOME_RETRIES:
                return  # the fault is the new ClOrdID, not a flood
            self._retries[order.key] = self._retries.get(order.key, 0) + 1
            cl_ord_id = str(uuid.uuid4())
            log.warning("order %s: outcome unknown; sending it again as %s", order.key, cl_ord_id)
            self.book.new_cl_ord_id(order.key, cl_ord_id)
            self._send("D", wire.new_order(order, cl_ord_id), cl_ord_id)
        elif self.rest is not None:
            log.warning("order %s: outcome unknown; reconciling", order.key)
            self._spawn(self._settle_unknown(order))
        else:
            self._resend_same(order)

    async def _settle_unknown(self, order: Order) -> None:
        try:
            await self._reconcile()  # finds it on the exchange, or sends it again with its ClOrdID
        except RestError as exc:
            log.warning("order %s: cannot reconcile (%s); sending it again with the same ClOrdID", order.key, exc)
            if order.unknown_outcome:
                self._resend_same(order)

    def _resend_same(self, order: Order) -> None:
        tries = self._retries.get(order.key, 0)
        if tries >= UNKNOWN_OUTCOME_RETRIES:
            order.status, order.unknown_outcome = "rejected", False
            log.error("order %s: outcome still unknown after %d retries; given up", order.key, tries)
            return
        self._retries[order.key] = tries + 1
        log.warning("order %s: not on the exchange; sending it again with the same ClOrdID", order.key)
        try:
            self._send("D", wire.new_order(order, order.cl_ord_id), order.cl_ord_id)
        except Refused:  # not logged on: the reconciliation after the next Logon settles it
            log.warning("order %s: not sent again: not logged on", order.key)

    def _send(self, msg_type: str, fields: Fields, cl_ord_id: str) -> int:
        seq = self.session.send(msg_type, fields)
        if seq is None:
            raise Refused(f"not logged on to {self.env.target}")
        self._sent[seq] = cl_ord_id
        return seq

    # --- instructions --------------------------------------------------------------------------

    async def handle(self, i: Instruction) -> dict[str, Any]:
        if i.action == "state":
            return {"orders": [o.state() for o in self.book.orders.values()], "positions": dict(self.book.positions)}
        if i.action in ("create_group", "reset_group", "delete_group", "trigger_group"):
            raise Refused("order groups are not supported by the reference client")
        await self._ready(confirmed=i.action in ("place", "replace"))
        if i.action == "place":
            return self._place(i)
        if i.action == "mass_cancel":
            if self.env.target != SessionType.NR.value:
                raise Refused("mass cancel is KalshiNR only")
            cl_ord_id = str(uuid.uuid4())
            self._send("q", wire.mass_cancel(cl_ord_id), cl_ord_id)
            return {}
        order = self.book.orders.get(i.order or "")
        if order is None:
            raise Refused(f"no order {i.order!r}")
        deadline = asyncio.get_running_loop().time() + READY_WAIT_S
        while order.pending is not None and order.status not in TERMINAL:  # queued behind it, as at an OMS
            if not await _any_set((self.reported,), deadline - asyncio.get_running_loop().time()):
                break
            order = self.book.orders[order.key]
        if order.status in TERMINAL or order.pending is not None:
            raise Refused(f"order {order.key} is {order.status}")
        cl_ord_id = str(uuid.uuid4())
        if i.action == "cancel":
            self._send("F", wire.cancel(order, cl_ord_id), cl_ord_id)
            self.book.requested(order.key, cl_ord_id, "pending_cancel")
        else:
            quantity = order.quantity if i.quantity is None else _checked(check_quantity, i.quantity)
            if quantity < order.cum_qty:
                raise Refused(f"quantity {quantity} is below the {order.cum_qty} already filled")
            price = order.yes_price if i.price is None else to_yes_book(
                Action.BUY, Contract(order.contract), _checked(check_price, i.price)).yes_price
            _in_cents(price)
            self._send("G", wire.replace(order, cl_ord_id, quantity, price), cl_ord_id)
            self.book.requested(order.key, cl_ord_id, "pending_replace")
        return {"order": order.key}

    def _place(self, i: Instruction) -> dict[str, Any]:
        if i.ticker is None or i.side is None or i.contract is None or i.price is None or i.quantity is None:
            raise Refused("place needs ticker, side, contract, price and quantity")
        quote = to_yes_book(Action(i.side), Contract(i.contract), _checked(check_price, i.price))
        _in_cents(quote.yes_price)
        key = str(uuid.uuid4())
        order = Order(key=key, ticker=i.ticker, contract=i.contract, side=quote.side.value,
                      quantity=_checked(check_quantity, i.quantity), yes_price=quote.yes_price,
                      time_in_force=_TIME_IN_FORCE[i.time_in_force or "gtc"], cl_ord_id=key)
        self.book.add(order)
        try:
            self._send("D", wire.new_order(order, key), key)
        except Refused:
            del self.book.orders[key]
            raise
        return {"order": key}

    async def _ready(self, *, confirmed: bool) -> None:
        """Until logged on (and, for new orders, reconciled since); ``Refused`` after ``READY_WAIT_S``
        or as soon as the Logon is refused for good."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + READY_WAIT_S
        while True:
            if self.session.refused_for_good is not None:
                raise Refused(f"Logon refused for good: {self.session.refused_for_good}")
            logged_on = self.session.logged_on.is_set()
            if logged_on and (not confirmed or self.confirmed.is_set()):
                return
            awaited = self.confirmed if logged_on else self.session.logged_on
            if not await _any_set((awaited, self.session.gave_up), deadline - loop.time()):
                why = "the book is not reconciled yet" if logged_on else "not logged on"
                raise Refused(f"{why} after {READY_WAIT_S:g}s")


async def _any_set(events: tuple[asyncio.Event, ...], timeout: float) -> bool:
    """Whether one of ``events`` is set within ``timeout`` seconds."""
    if timeout <= 0:
        return False
    waits = [asyncio.ensure_future(event.wait()) for event in events]
    done, pending = await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    for wait in pending:
        wait.cancel()
    return bool(done)


def _checked(check: Any, value: Decimal) -> Decimal:
    """``check_price`` or ``check_quantity``, refusing with its message."""
    try:
        checked: Decimal = check(value)
    except PriceError as exc:
        raise Refused(str(exc)) from None
    return checked


def _in_cents(yes_price: Decimal) -> None:
    """This client sends prices in cents (no 21005): a subpenny price is refused before sending."""
    try:
        format_price(yes_price, use_dollars=False)
    except PriceError as exc:
        raise Refused(str(exc)) from None
