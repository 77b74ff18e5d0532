"""The exchange behind the simulator's FIX sessions: requests in, reports out.

One lock serialises every call into the matching engine (QuickFIX's thread, and the expiry timer);
messages are sent by the caller after the lock is released, so no QuickFIX session lock is ever
taken while holding it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation

from fixengine.errors import FixEngineError
from fixengine.kalshi import ORDER_ENTRY, SessionType
from fixengine.prices import WireSide
from fixengine.prices import PriceError, parse_price
from simulator.config import SeedOrder
from simulator.matching import AccountState, Exchange, MarketConfig, Rejected
from simulator.order_reports import (
    Outgoing,
    ReportWriter,
    RequestError,
    SessionFlags,
    mass_cancel_report,
    parse_new_order,
)


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Venue:
    def __init__(self, markets: list[MarketConfig], accounts: list[AccountState], clock: Callable[[], datetime] = _utcnow):
        self.exchange = Exchange(markets, accounts)
        self._writer = ReportWriter()
        self._flags: dict[str, SessionFlags] = {}
        self._cancel_on_disconnect: set[str] = set()
        self._lock = threading.Lock()
        self._clock = clock

    def seed(self, orders: "Iterable[SeedOrder]") -> None:
        """Place the configured resting orders; a seed the exchange refuses is a config error."""
        from simulator.matching import OrderSpec

        with self._lock:
            now = self._clock()
            for i, seed in enumerate(orders):
                side = WireSide.BUY_YES if seed.side == "buy_yes" else WireSide.SELL_YES
                spec = OrderSpec(seed.account, "seed", f"seed-{i}", seed.ticker, side, seed.price, seed.quantity)
                for event in self.exchange.submit(spec, now):
                    if isinstance(event, Rejected):
                        raise FixEngineError(f"seed_order[{i}] ({seed.ticker}): the exchange refused it: {event.text}")

    def logged_on(self, session_id: str, logon_flags: Mapping[int, str]) -> None:
        with self._lock:
            self._flags[session_id] = SessionFlags.from_logon(logon_flags)
            if logon_flags.get(8013) == "Y":
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
            return self._writer.write(events, self._flags, now, session_id)

    def expire(self) -> list[Outgoing]:
        with self._lock:
            now = self._clock()
            events = self.exchange.expire(now)
            return self._writer.write(events, self._flags, now, "") if events else []

    def handle(self, session_id: str, session_type: SessionType, account_id: str, msg_type: str,
               fields: Mapping[int, str], fixt: bool) -> list[Outgoing]:
        """One order-entry request; the messages that answer it (to this and other sessions)."""
        if session_type not in ORDER_ENTRY:
            raise UnsupportedHere(f"{msg_type} is not accepted on {session_type.value}")
        with self._lock:
            now = self._clock()
            flags = self._flags.get(session_id, SessionFlags())
            if msg_type == "D":
                try:
                    spec = parse_new_order(fields, account_id, session_id, flags.use_dollars)
                except RequestError as exc:
                    return self._writer.write([_malformed(fields, session_id, account_id, str(exc))], self._flags, now, session_id)
                events = self.exchange.submit(spec, now)
            elif msg_type == "F":
                events = self.exchange.cancel(account_id, fields.get(41, ""), fields.get(11, ""), now)
            elif msg_type == "G":
                try:
                    quantity = Decimal(fields[38]) if fields.get(38) else None
                    price = parse_price(fields[44], flags.use_dollars) if fields.get(44) else None
                except (InvalidOperation, PriceError):
                    quantity, price = Decimal(-1), None  # the exchange refuses it as an invalid amend
                events = self.exchange.replace(account_id, fields.get(41, ""), fields.get(11, ""), quantity, price, now)
            elif msg_type == "q":
                if session_type is not SessionType.NR:
                    raise UnsupportedHere("mass cancel is only available on KalshiNR")
                events = self.exchange.mass_cancel(session_id, now)
                report = mass_cancel_report(fields.get(11, ""), session_id, len(events), fixt)
                return [report, *self._writer.write(events, self._flags, now, session_id)]
            else:
                raise UnsupportedHere(f"message type {msg_type} is not supported")
            return self._writer.write(events, self._flags, now, session_id)


class UnsupportedHere(Exception):
    """Answered with BusinessMessageReject 380=3 (unsupported message type)."""


def _malformed(fields: Mapping[int, str], session_id: str, account_id: str, text: str) -> Rejected:
    """A NewOrderSingle the exchange cannot read at all is rejected like an invalid order."""
    from fixengine.prices import WireSide
    from simulator.matching import OrderSpec

    side = WireSide.SELL_YES if fields.get(54) == "2" else WireSide.BUY_YES
    spec = OrderSpec(account_id, session_id, fields.get(11, ""), fields.get(55, ""), side, Decimal("0.5"), Decimal(0))
    return Rejected(spec, text, 11)
