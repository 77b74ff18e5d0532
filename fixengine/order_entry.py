"""Order entry: requests in, journal first, then the wire; reports in, journal first, then the book.

Runs in the asyncio loop only (one writer). ``send`` hands a message to QuickFIX; ``publish`` hands
what changed to the engine's event subscribers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone

from fixengine.config import SessionConfig
from fixengine.errors import FixEngineError, SessionUnavailable
from fixengine.framing import parse
from fixengine.kalshi import ORDER_ENTRY, SessionType
from fixengine.orders.book import BookError, Order, OrderBook
from fixengine.orders.journal import DuplicateClOrdID, Journal, rebuild_book
from fixengine.orders.reports import Reason
from fixengine.orders.requests import CancelOrder, InvalidOrder, NewOrder, ReplaceOrder, new_cl_ord_id
from fixengine.orders.wire import (
    Fields,
    OrderRef,
    ReportError,
    cancel_fields,
    first_values,
    mass_cancel_fields,
    new_order_fields,
    parse_cancel_reject,
    parse_execution_report,
    replace_fields,
)
from fixengine.prices import PriceError

log = logging.getLogger("fixengine.orders")

MASS_CANCEL_MIN_INTERVAL_S = 1.0  # Kalshi: at most one mass cancel per second (spec §8, §10.6)

Send = Callable[[SessionConfig, str, Fields], bool]


class RateLimited(FixEngineError):
    """Refused before sending: it would break one of Kalshi's rate limits."""


@dataclass(frozen=True, slots=True)
class BusinessRejected:
    """BusinessMessageReject (35=j): refused before the exchange saw it (rate limit, listener ...)."""

    session: str
    ref_msg_type: str | None
    ref_id: str | None  # BusinessRejectRefID (379), e.g. the ClOrdID
    reason: Reason


@dataclass(frozen=True, slots=True)
class MassCancelDone:
    """OrderMassCancelReport (35=r): 531=6 means every order of the session was cancelled."""

    session: str
    cl_ord_id: str
    accepted: bool
    reason: Reason | None


@dataclass(frozen=True, slots=True)
class ReportUnreadable:
    """A report we could not read: kept in the message log, shown here, never silently dropped."""

    session: str
    raw: str
    error: str


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class OrderEntry:
    def __init__(
        self,
        journal: Journal,
        sessions: dict[str, SessionConfig],
        send: Send,
        publish: Callable[[object], None],
        is_logged_on: Callable[[str], bool],
    ):
        self.journal = journal
        self.book: OrderBook = rebuild_book(journal)
        self._sessions = sessions
        self._send = send
        self._publish = publish
        self._is_logged_on = is_logged_on
        self._last_mass_cancel: dict[str, float] = {}

    # --- requests -----------------------------------------------------------------------------

    def _session(self, name: str, *, allowed: frozenset[SessionType] = ORDER_ENTRY) -> SessionConfig:
        s = self._sessions.get(name)
        if s is None:
            raise FixEngineError(f"no session named {name!r}; configured: {', '.join(self._sessions)}")
        if s.session_type not in allowed:
            kinds = ", ".join(sorted(t.value for t in allowed))
            raise InvalidOrder([f"session: {name} is {s.session_type.value}; this needs {kinds}"])
        if s.logon.listener:
            raise InvalidOrder([f"session: {name} is a listener (read-only) session"])
        if not self._is_logged_on(name):
            raise SessionUnavailable(f"session {name} is not logged on")
        return s

    def _transmit(self, session: SessionConfig, msg_type: str, fields: Fields) -> None:
        if not self._send(session, msg_type, fields):
            raise SessionUnavailable(f"session {session.name} could not send: not logged on")

    def submit(self, session_name: str, order: NewOrder) -> Order:
        s = self._session(session_name)
        if order.expires_in_past():
            raise InvalidOrder(["expire_time: is in the past"])
        try:
            fields = new_order_fields(order, use_dollars=s.logon.use_dollars, now=_utcnow())
        except PriceError as exc:
            raise InvalidOrder([f"price: {exc}"]) from None
        retry = order.client_order_id in self.book.orders and self.book.order(order.client_order_id).outcome_unknown
        if not retry:
            try:
                self.journal.record_new(order, s.api_key_id)  # written before it is sent
            except DuplicateClOrdID as exc:
                raise InvalidOrder([f"client_order_id: {exc}"]) from None
        placed = self.book.submit(order, s.api_key_id)
        self._transmit(s, "D", fields)
        return placed

    def _ref(self, order: Order) -> OrderRef:
        return OrderRef(order.cl_ord_id, order.order_id, order.ticker, order.side, order.quantity, order.yes_price)

    def cancel(self, session_name: str, request: CancelOrder) -> Order:
        s = self._session(session_name)
        try:
            order = self.book.order(request.order)
            ref = self._ref(order)
            self.book.cancel(order.key, request.client_order_id)  # checks the order can be cancelled
        except BookError as exc:
            raise InvalidOrder([f"order: {exc}"]) from None
        self.journal.record_cancel(order.key, request.client_order_id)
        self._transmit(s, "F", cancel_fields(ref, request.client_order_id, now=_utcnow()))
        return self.book.order(order.key)

    def replace(self, session_name: str, request: ReplaceOrder) -> Order:
        s = self._session(session_name)
        try:
            order = self.book.order(request.order)
            yes_price = None if request.price is None else self.book.yes_price_for(order.key, request.price)
            fields = replace_fields(
                self._ref(order),
                request.client_order_id,
                quantity=request.quantity,
                yes_price=yes_price,
                time_in_force=request.time_in_force,
                expire_time=request.expire_time,
                use_dollars=s.logon.use_dollars,
                now=_utcnow(),
            )
            self.book.replace(order.key, request.client_order_id, request.quantity)
        except BookError as exc:
            raise InvalidOrder([f"order: {exc}"]) from None
        except PriceError as exc:
            raise InvalidOrder([f"price: {exc}"]) from None
        self.journal.record_replace(order.key, request.client_order_id, request.quantity)
        self._transmit(s, "G", fields)
        return self.book.order(order.key)

    def mass_cancel(self, session_name: str) -> str:
        s = self._session(session_name, allowed=frozenset({SessionType.NR}))
        now = time.monotonic()
        last = self._last_mass_cancel.get(session_name)
        if last is not None and now - last < MASS_CANCEL_MIN_INTERVAL_S:
            raise RateLimited(
                f"mass cancel on {session_name}: Kalshi allows one per second; "
                f"the last was {now - last:.2f}s ago"
            )
        cl_ord_id = new_cl_ord_id()
        self._transmit(s, "q", mass_cancel_fields(cl_ord_id, now=_utcnow()))
        self._last_mass_cancel[session_name] = now
        return cl_ord_id

    # --- reports ------------------------------------------------------------------------------

    def on_message(self, session_name: str, msg_type: str, raw: str) -> None:
        s = self._sessions[session_name]
        fields = parse(raw.encode("latin-1"))
        try:
            if msg_type == "8":
                report = parse_execution_report(fields, use_dollars=s.logon.use_dollars)
            elif msg_type == "9":
                report = parse_cancel_reject(fields)
            elif msg_type == "j":
                self._publish(self._business_reject(session_name, fields))
                return
            elif msg_type == "r":
                self._publish(self._mass_cancel_report(session_name, fields))
                return
            else:
                log.info("%s: application message %s not handled", session_name, msg_type)
                return
        except ReportError as exc:
            log.error("%s: unreadable report (%s): %s", session_name, exc, raw.replace("\x01", "|"))
            self._publish(ReportUnreadable(session_name, raw, str(exc)))
            return
        if self.journal.record_report(report):  # written before it changes the book
            for event in self.book.apply(report):
                self._publish(event)

    @staticmethod
    def _business_reject(session: str, fields: list[tuple[int, str]]) -> BusinessRejected:
        f = first_values(fields)
        number = int(f[380]) if f.get(380, "").isdigit() else None
        return BusinessRejected(session, f.get(372), f.get(379), Reason.of(f.get(58), number))

    @staticmethod
    def _mass_cancel_report(session: str, fields: list[tuple[int, str]]) -> MassCancelDone:
        f = first_values(fields)
        accepted = f.get(531) == "6"
        reason = None if accepted else Reason.of(f.get(58), int(f[532]) if f.get(532, "").isdigit() else None)
        return MassCancelDone(session, f.get(11, ""), accepted, reason)
