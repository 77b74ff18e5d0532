"""Operator calls that change the exchange behind the clients' backs, so that tests can check that
an engine's reconciler notices (through the REST API) what its FIX sessions never told it.

    sim.admin.cancel_order("O7")                 # the order is cancelled; no ExecutionReport
    sim.admin.add_fill("O7", Decimal("2"))       # 2 contracts fill against the house; no report
    sim.admin.settle_market("KXTEST-1", "yes")   # orders end, winners paid $1, positions zeroed
    sim.admin.settle_market("KXTEST-2", "scalar", "0.306")  # a YES contract pays $0.306, a NO $0.694
    sim.admin.enter_order(account, "KXTEST-1", "buy_yes", "0.40")  # as from another session: listeners see it

None of them sends anything on FIX but the settlement reports (35=UMS) to the sessions entitled, and
``enter_order``'s reports to the account's listener sessions.
(Orders that were due to expire anyway still get their reports.) The same calls are served over
HTTP under ``/admin`` on the REST port (``rest_api``).

Pauses are the exception, as on Kalshi, where the clients see them (``simulator.maintenance``):

    sim.admin.pause("trading")                   # or "exchange"; CancelOrderOnPause orders cancelled, reported
    sim.admin.resume()
    sim.admin.move_clock("2026-03-12T07:00:00Z") # the maintenance calendar: the weekly window begins
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Literal

from fixengine.errors import FixEngineError
from simulator.config import HOUSE_ACCOUNT
from fixengine.kalshi.prices import WireSide
from simulator.exchange.matching import (
    Accepted, Canceled, Event, Exchange, OrderSnapshot, OrderSpec, Rejected, Settled, Traded, UnknownError,
)
from simulator.fix.order_reports import Outgoing
from simulator.exchange.venue import OperatorOutcome, Venue
from simulator.maintenance import Maintenance


OPERATOR_SESSION = "operator"  # enter_order's orders: a session of the account no client holds


class AdminError(FixEngineError):
    """An admin call that cannot be done; ``not_found``: it named an unknown order or market."""

    def __init__(self, message: str, not_found: bool = False):
        super().__init__(message)
        self.not_found = not_found


class Admin:
    """The simulator's admin calls (``Simulator.admin``)."""

    def __init__(self, venue: Venue, send: Callable[[list[Outgoing]], None], house_balance: Decimal,
                 maintenance: Maintenance | None = None):
        self._venue = venue
        self._send = send
        self._house_balance = house_balance
        self._maintenance = maintenance
        self._entered = 0  # numbers enter_order's ClOrdIDs

    def pause(self, kind: str) -> None:
        """Pause the exchange: "trading" (new orders and amends refused) or "exchange" (cancels
        too), until ``resume``."""
        self._pauses(lambda m: m.pause(kind))

    def resume(self) -> None:
        """End the operator's pause."""
        self._pauses(lambda m: m.resume())

    def move_clock(self, to: datetime | str) -> None:
        """Set the maintenance calendar's clock to ``to`` (aware; ISO 8601 text is read)."""
        if isinstance(to, str):
            try:
                to = datetime.fromisoformat(to)
            except ValueError:
                raise AdminError(f"to {to!r} is not an ISO 8601 time, e.g. 2026-03-12T07:00:00+00:00") from None
        self._pauses(lambda m: m.move_clock(to))

    def _pauses(self, action: Callable[[Maintenance], None]) -> None:
        if self._maintenance is None:
            raise AdminError("this simulator has no pauses to change")
        try:
            action(self._maintenance)
        except ValueError as exc:
            raise AdminError(str(exc)) from None

    def cancel_order(self, order_id: str) -> OrderSnapshot:
        """Cancel an open order by its order id (FIX tag 37), as if the exchange had; the client's
        FIX session is not told. Returns the order as cancelled."""
        events = self._run(lambda: self._venue.cancel_order(order_id))
        return next(e.order for e in events if isinstance(e, Canceled) and e.order.order_id == order_id)

    def add_fill(self, order_id: str, quantity: Decimal | str, report: bool = False) -> OrderSnapshot:
        """Fill ``quantity`` contracts of an open order at its limit price against the house
        account (the order is the maker; the house pays the taker fee). The client's FIX session
        is not told, unless ``report``: then it gets the fill report (35=8 150=F) a trade on the
        book would send. Returns the order after the fill."""
        amount = parse_quantity(quantity)
        events = self._run(lambda: self._venue.fill_order(order_id, amount, HOUSE_ACCOUNT, self._house_balance, report))
        return next(e.maker for e in events if isinstance(e, Traded))

    def enter_order(self, account_id: str, ticker: str, side: Literal["buy_yes", "sell_yes"], price: Decimal | str,
                    quantity: Decimal | str = "1") -> OrderSnapshot:
        """Enter a GTC order (YES ``price``, dollars) for ``account_id`` as from another session of
        it that no client holds: its reports reach the account's listener sessions and its drop-copy
        log, as those of an order entered elsewhere do. Returns the order as entered."""
        amount = parse_quantity(quantity)
        try:
            yes_price = price if isinstance(price, Decimal) else Decimal(price)
        except (InvalidOperation, TypeError):
            raise AdminError(f"price {price!r} is not a number of dollars") from None
        wire_side = WireSide.BUY_YES if side == "buy_yes" else WireSide.SELL_YES
        self._entered += 1
        spec = OrderSpec(account_id, OPERATOR_SESSION, f"operator-{self._entered}", ticker, wire_side, yes_price, amount)
        events: list[Event] = []

        def submit(ex: Exchange, now: datetime) -> list[Event]:
            events.extend(ex.submit(spec, now))
            return events
        self._send(self._venue.reported(submit))
        entered = next((e.order for e in events if isinstance(e, Accepted)), None)
        if entered is None:
            refused = next((e.text for e in events if isinstance(e, Rejected)), "refused")
            raise AdminError(f"the exchange refused the order: {refused}")
        return entered

    def settle_market(self, ticker: str, result: Literal["yes", "no", "scalar"],
                      price: Decimal | str | None = None) -> list[Settled]:
        """Settle a market on ``result`` ("yes", "no", or "scalar" with ``price``: what a YES
        contract pays, dollars): its open orders end (their sessions are not told), each YES
        contract pays $1, $0 or ``price``, each NO contract the rest, every position in it goes to
        zero, and it trades no more. The sessions entitled get settlement reports (35=UMS).
        Returns one ``Settled`` per account that held a position."""
        try:
            value = None if price is None else price if isinstance(price, Decimal) else Decimal(price)
        except (InvalidOperation, TypeError):
            raise AdminError(f"price {price!r} is not a number of dollars") from None
        events = self._run(lambda: self._venue.settle_market(ticker, result, value))
        return [e for e in events if isinstance(e, Settled)]

    def _run(self, action: Callable[[], OperatorOutcome]) -> list[Event]:
        outcome = action()
        self._send(outcome.due + outcome.reports)
        if outcome.error is not None:
            raise AdminError(str(outcome.error), not_found=isinstance(outcome.error, UnknownError))
        return outcome.events


def parse_quantity(quantity: Decimal | str) -> Decimal:
    try:
        amount = quantity if isinstance(quantity, Decimal) else Decimal(quantity)
    except (InvalidOperation, TypeError):
        raise AdminError(f"quantity {quantity!r} is not a number of contracts") from None
    if not amount.is_finite():
        raise AdminError(f"quantity {quantity!r} is not a number of contracts")
    return amount
