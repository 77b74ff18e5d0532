"""The exchange behind the simulator's FIX sessions: requests in, reports out.

One lock serialises every call into the matching engine (QuickFIX's thread, the expiry timer, the
REST API's reads and the operator's admin calls); messages are sent by the caller after the lock is
released, so no QuickFIX session lock is ever taken while holding it. Every call's events also go
to the ``History`` (what the REST API shows), under the same lock, with the time they happened.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Literal, TypeVar

from fixengine.errors import FixEngineError
from fixengine.fix.tags import (
    CANCEL_ORDERS_ON_DISCONNECT,
    CL_ORD_ID,
    MSG_NEW_ORDER_SINGLE,
    MSG_ORDER_CANCEL_REPLACE_REQUEST,
    MSG_ORDER_CANCEL_REQUEST,
    MSG_ORDER_MASS_CANCEL_REQUEST,
    ORDER_QTY,
    ORIG_CL_ORD_ID,
    PRICE,
    SIDE,
    SYMBOL,
)
from fixengine.kalshi.facts import ORDER_ENTRY, SessionType
from fixengine.kalshi.prices import WireSide
from fixengine.kalshi.prices import PriceError, parse_price
from simulator.config import SeedOrder
from simulator.exchange.history import History
from simulator.exchange.matching import AccountState, Event, Exchange, MarketConfig, Rejected
from simulator.fix.order_reports import (
    Outgoing,
    ReportWriter,
    RequestError,
    SessionFlags,
    mass_cancel_report,
    parse_new_order,
)


T = TypeVar("T")


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Venue:
    def __init__(self, markets: list[MarketConfig], accounts: list[AccountState], clock: Callable[[], datetime] = _utcnow):
        self.exchange = Exchange(markets, accounts)
        self.history = History()
        self._writer = ReportWriter()
        self._flags: dict[str, SessionFlags] = {}
        self._cancel_on_disconnect: set[str] = set()
        self._lock = threading.Lock()
        self._clock = clock

    def seed(self, orders: "Iterable[SeedOrder]") -> None:
        """Place the configured resting orders; a seed the exchange refuses is a config error."""
        from simulator.exchange.matching import OrderSpec

        with self._lock:
            now = self._clock()
            for i, seed in enumerate(orders):
                side = WireSide.BUY_YES if seed.side == "buy_yes" else WireSide.SELL_YES
                spec = OrderSpec(seed.account, "seed", f"seed-{i}", seed.ticker, side, seed.price, seed.quantity)
                events = self.exchange.submit(spec, now)
                self.history.record(events, now)
                for event in events:
                    if isinstance(event, Rejected):
                        raise FixEngineError(f"seed_order[{i}] ({seed.ticker}): the exchange refused it: {event.text}")

    def logged_on(self, session_id: str, logon_flags: Mapping[int, str]) -> None:
        with self._lock:
            self._flags[session_id] = SessionFlags.from_logon(logon_flags)
            if logon_flags.get(CANCEL_ORDERS_ON_DISCONNECT) == "Y":
                self._cancel_on_disconnect.add(session_id)
            else:
                self._cancel_on_disconnect.discard(session_id)

    def logged_out(self, session_id: str) -> list[Outgoing]:
        """CancelOrdersOnDisconnect (8013): the session's orders go when it does."""
        with self._lock:
            if session_id not in self._cancel_on_disconnect:
                return []
            now = self._clock()
            events = self.exchange.cancel_session_orders(session_id, now)
            self.history.record(events, now)
            return self._writer.write(events, self._flags, now, session_id)

    def expire(self) -> list[Outgoing]:
        with self._lock:
            return self._expire_locked(self._clock())

    def _expire_locked(self, now: datetime) -> list[Outgoing]:
        events = self.exchange.expire(now)
        self.history.record(events, now)
        return self._writer.write(events, self._flags, now, "") if events else []

    def handle(self, session_id: str, session_type: SessionType, account_id: str, msg_type: str,
               fields: Mapping[int, str], fixt: bool) -> list[Outgoing]:
        """One order-entry request; the messages that answer it (to this and other sessions)."""
        if session_type not in ORDER_ENTRY:
            raise UnsupportedHere(f"{msg_type} is not accepted on {session_type.value}")
        with self._lock:
            now = self._clock()
            flags = self._flags.get(session_id, SessionFlags())
            if msg_type == MSG_NEW_ORDER_SINGLE:
                try:
                    spec = parse_new_order(fields, account_id, session_id, flags.use_dollars)
                except RequestError as exc:
                    return self._writer.write([_malformed(fields, session_id, account_id, str(exc))], self._flags, now, session_id)
                events = self.exchange.submit(spec, now)
            elif msg_type == MSG_ORDER_CANCEL_REQUEST:
                orig, cl = fields.get(ORIG_CL_ORD_ID, ""), fields.get(CL_ORD_ID, "")
                events = self.exchange.cancel(account_id, orig, cl, now)
            elif msg_type == MSG_ORDER_CANCEL_REPLACE_REQUEST:
                try:
                    quantity = Decimal(fields[ORDER_QTY]) if fields.get(ORDER_QTY) else None
                    price = parse_price(fields[PRICE], flags.use_dollars) if fields.get(PRICE) else None
                except (InvalidOperation, PriceError):
                    quantity, price = Decimal(-1), None  # the exchange refuses it as an invalid amend
                orig, cl = fields.get(ORIG_CL_ORD_ID, ""), fields.get(CL_ORD_ID, "")
                events = self.exchange.replace(account_id, orig, cl, quantity, price, now)
            elif msg_type == MSG_ORDER_MASS_CANCEL_REQUEST:
                if session_type is not SessionType.NR:
                    raise UnsupportedHere("mass cancel is only available on KalshiNR")
                events = self.exchange.mass_cancel(session_id, now)
                self.history.record(events, now)
                report = mass_cancel_report(fields.get(CL_ORD_ID, ""), session_id, len(events), fixt)
                return [report, *self._writer.write(events, self._flags, now, session_id)]
            else:
                raise UnsupportedHere(f"message type {msg_type} is not supported")
            self.history.record(events, now)
            return self._writer.write(events, self._flags, now, session_id)

    def read(self, reader: Callable[[Exchange, History, datetime], T]) -> T:
        """Run ``reader`` on the exchange and its history, consistently (under the lock), at ``now``."""
        with self._lock:
            return reader(self.exchange, self.history, self._clock())

    # Operator actions: they change the exchange behind the clients' backs, so their own events
    # are recorded (the REST API shows them) but never written to a FIX session. Orders found due
    # to expire on the way are not the operator's doing: their reports come back in ``due``, to be
    # sent whether or not the action itself could be done.

    def cancel_order(self, order_id: str) -> OperatorOutcome:
        """Cancel an open order by its order id (an error if unknown or no longer open)."""
        return self._silently(lambda now: self.exchange.cancel_order(order_id, now))

    def fill_order(self, order_id: str, quantity: Decimal, counterparty: str, counterparty_balance: Decimal
                   ) -> OperatorOutcome:
        """Fill part of an open order at its price against ``counterparty`` (opened with
        ``counterparty_balance`` if the exchange does not know it yet)."""
        def fill(now: datetime) -> list[Event]:
            try:
                self.exchange.account(counterparty)
            except KeyError:
                self.exchange.open_account(counterparty, counterparty_balance)
            return self.exchange.fill_against(order_id, quantity, counterparty, now)
        return self._silently(fill)

    def settle_market(self, ticker: str, result: Literal["yes", "no"]) -> OperatorOutcome:
        """Settle a market: its open orders end, winners are paid $1 a contract, positions go to zero."""
        return self._silently(lambda now: self.exchange.settle_market(ticker, result, now))

    def _silently(self, change: Callable[[datetime], list[Event]]) -> OperatorOutcome:
        with self._lock:
            now = self._clock()
            due = self._expire_locked(now)
            try:
                events = change(now)
            except ValueError as exc:  # the exchange refused, having changed nothing
                return OperatorOutcome([], due, exc)
            self.history.record(events, now)
            return OperatorOutcome(events, due, None)


@dataclass(frozen=True, slots=True)
class OperatorOutcome:
    events: list[Event]  # what the action did (never sent on FIX)
    due: list[Outgoing]  # reports of orders that expired meanwhile: send them
    error: ValueError | None  # why the exchange refused the action (``UnknownError``: unknown item)


class UnsupportedHere(Exception):
    """Answered with BusinessMessageReject 380=3 (unsupported message type)."""


def _malformed(fields: Mapping[int, str], session_id: str, account_id: str, text: str) -> Rejected:
    """A NewOrderSingle the exchange cannot read at all is rejected like an invalid order."""
    from fixengine.kalshi.prices import WireSide
    from simulator.exchange.matching import OrderSpec

    side = WireSide.SELL_YES if fields.get(SIDE) == "2" else WireSide.BUY_YES
    cl_ord_id, ticker = fields.get(CL_ORD_ID, ""), fields.get(SYMBOL, "")
    spec = OrderSpec(account_id, session_id, cl_ord_id, ticker, side, Decimal("0.5"), Decimal(0))
    return Rejected(spec, text, 11)
