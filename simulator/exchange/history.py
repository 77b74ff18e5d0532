"""What Kalshi's REST portfolio API shows that the matching engine does not keep: when each order was
created and last changed, what its fills cost, every fill of every account, each position's cost
basis and P&L, settlements, and each market's last trade and its trading over the last day.

The ``Venue`` feeds ``History.record`` every call's events, with the time they happened, under its
lock. Records are immutable, so a copy of an account's containers is a consistent snapshot of it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

from fixengine.kalshi.prices import ONE, WireSide
from simulator.exchange.matching import (
    Accepted,
    Canceled,
    Event,
    Expired,
    MarketSettled,
    OrderSnapshot,
    PositionMoved,
    Replaced,
    Settled,
    SettlementResult,
    Traded,
    cost_per_contract,
)

ZERO = Decimal(0)
MICRO = Decimal("0.000001")  # Kalshi's portfolio figures carry up to 6 decimals
DAY = timedelta(days=1)  # the window of a market's volume_24h_fp and previous_price_dollars


@dataclass(frozen=True, slots=True)
class OrderRecord:
    """An order as REST shows it: its latest state plus what the matching engine does not keep."""

    seq: int  # creation order across the whole exchange (cursors)
    order: OrderSnapshot  # latest state
    client_order_id: str  # the ClOrdID the order was entered with
    initial_quantity: Decimal
    created_time: datetime
    last_update_time: datetime
    taker_fill_cost: Decimal = ZERO
    maker_fill_cost: Decimal = ZERO
    taker_fees: Decimal = ZERO
    maker_fees: Decimal = ZERO


@dataclass(frozen=True, slots=True)
class FillRecord:
    """One account's side of one trade (``trade_id`` is Kalshi's ``fill_id``)."""

    seq: int
    trade_id: str
    order_id: str
    ticker: str
    side: WireSide
    quantity: Decimal
    yes_price: Decimal
    is_taker: bool
    fee: Decimal
    created_time: datetime


@dataclass(frozen=True, slots=True)
class PositionRecord:
    """An account's position in one market, with Kalshi's cost and P&L figures (fees apart)."""

    ticker: str
    net_yes: Decimal = ZERO  # negative = NO held
    exposure: Decimal = ZERO  # cost basis of what is held now
    total_traded: Decimal = ZERO  # everything paid for contracts in this market
    traded_count: Decimal = ZERO  # contracts bought, YES and NO
    realized_pnl: Decimal = ZERO
    fees_paid: Decimal = ZERO
    last_updated: datetime | None = None


@dataclass(frozen=True, slots=True)
class SettlementRecord:
    seq: int
    ticker: str
    result: SettlementResult
    yes_count: Decimal
    no_count: Decimal
    yes_total_cost: Decimal
    no_total_cost: Decimal
    revenue: Decimal  # dollars paid out
    fee_cost: Decimal  # fees paid on the position, the settlement's rounding fee included
    settled_time: datetime
    value: Decimal = ONE  # what a YES contract paid, dollars


@dataclass(frozen=True, slots=True)
class MarketActivity:
    last_price: Decimal | None = None  # YES price of the last trade
    volume: Decimal = ZERO  # contracts traded
    settled_time: datetime | None = None
    settlement_price: Decimal | None = None  # what a YES contract paid, dollars


def after_fill(
    position: PositionRecord, side: WireSide, yes_price: Decimal, quantity: Decimal, fee: Decimal, now: datetime
) -> PositionRecord:
    """The position after one fill. Buying the side already held adds to the cost basis; buying the
    other side nets pairs off ($1 each) and realises their profit against their share of the basis."""
    price = cost_per_contract(side, yes_price)  # what one contract of the bought side cost
    delta = quantity if side is WireSide.BUY_YES else -quantity
    held = abs(position.net_yes)
    exposure, realized = position.exposure, position.realized_pnl
    if position.net_yes * delta < 0:
        closed = min(held, quantity)
        basis = exposure if closed == held else (exposure * closed / held).quantize(MICRO, ROUND_HALF_EVEN)
        realized += closed * (ONE - price) - basis
        exposure -= basis
        exposure += (quantity - closed) * price  # past flat: a position on the other side opens
    else:
        exposure += quantity * price
    return replace(
        position, net_yes=position.net_yes + delta, exposure=exposure, realized_pnl=realized,
        total_traded=position.total_traded + quantity * price, traded_count=position.traded_count + quantity,
        fees_paid=position.fees_paid + fee,
        last_updated=now,
    )


def after_settlement(position: PositionRecord, payout: Decimal, now: datetime) -> PositionRecord:
    return replace(position, net_yes=ZERO, exposure=ZERO, realized_pnl=position.realized_pnl + payout - position.exposure,
                   last_updated=now)


@dataclass(slots=True)
class AccountHistory:
    orders: dict[str, OrderRecord] = field(default_factory=dict)  # by order id, in creation order
    fills: list[FillRecord] = field(default_factory=list)
    positions: dict[str, PositionRecord] = field(default_factory=dict)  # by ticker
    settlements: list[SettlementRecord] = field(default_factory=list)
    updated: datetime | None = None  # the last event that touched the account (balance updated_ts)


class History:
    """Every account's orders, fills, positions and settlements, and each market's activity."""

    def __init__(self, listed_time: datetime | None = None) -> None:
        self._accounts: dict[str, AccountHistory] = {}
        self.markets: dict[str, MarketActivity] = {}
        self._seq = 0
        self.listed_time = listed_time  # every market is listed when the exchange starts
        self._last_day: dict[str, deque[tuple[datetime, Decimal, Decimal]]] = {}  # (time, quantity, YES price)
        self._day_old_price: dict[str, Decimal] = {}  # the last trade that left the window

    def day(self, ticker: str, now: datetime) -> tuple[Decimal, Decimal | None]:
        """Contracts traded in ``ticker`` in the day up to ``now``, and the YES price of its last
        trade a day before ``now`` (None: it had not traded then)."""
        volume, previous = ZERO, self._day_old_price.get(ticker)
        for at, quantity, price in self._last_day.get(ticker, ()):
            if at > now - DAY:
                volume += quantity
            else:
                previous = price
        return volume, previous

    def account(self, account_id: str) -> AccountHistory:
        """The account's history (live: copy what you keep while the venue's lock is held)."""
        return self._accounts.get(account_id) or AccountHistory()

    def record(self, events: Iterable[Event], now: datetime) -> None:
        for event in events:
            if isinstance(event, Accepted):
                o = event.order
                self._order_changed(o, now, created=True)
            elif isinstance(event, (Canceled, Expired, Replaced)):
                self._order_changed(event.order, now)
            elif isinstance(event, Traded):
                self._traded(event, now)
            elif isinstance(event, PositionMoved):
                history = self._of(event.account_id)
                position = history.positions.get(event.ticker) or PositionRecord(event.ticker)
                # The exchange's figure is the truth; after_fill/after_settlement agree with it.
                history.positions[event.ticker] = replace(position, net_yes=event.net_yes, last_updated=now)
            elif isinstance(event, MarketSettled):
                activity = self.markets.get(event.ticker) or MarketActivity()
                self.markets[event.ticker] = replace(activity, settled_time=now, settlement_price=event.settlement_price)
            elif isinstance(event, Settled):
                self._settled(event, now)

    def _of(self, account_id: str) -> AccountHistory:
        return self._accounts.setdefault(account_id, AccountHistory())

    def _next(self) -> int:
        self._seq += 1
        return self._seq

    def _order_changed(self, order: OrderSnapshot, now: datetime, created: bool = False, **costs: Decimal) -> None:
        history = self._of(order.account_id)
        history.updated = now
        record = history.orders.get(order.order_id)
        if created or record is None:
            history.orders[order.order_id] = OrderRecord(
                self._next(), order, order.cl_ord_id, order.quantity, now, now, **costs
            )
            return
        added = {name: getattr(record, name) + value for name, value in costs.items()}
        history.orders[order.order_id] = replace(record, order=order, last_update_time=now, **added)

    def _traded(self, event: Traded, now: datetime) -> None:
        activity = self.markets.get(event.ticker) or MarketActivity()
        self.markets[event.ticker] = replace(activity, last_price=event.yes_price, volume=activity.volume + event.quantity)
        recent = self._last_day.setdefault(event.ticker, deque())
        recent.append((now, event.quantity, event.yes_price))
        while recent[0][0] <= now - DAY:  # forget what no window can reach again, but its price
            self._day_old_price[event.ticker] = recent.popleft()[2]
        for order, is_taker, fee in ((event.taker, True, event.taker_fee), (event.maker, False, event.maker_fee)):
            cost = event.quantity * cost_per_contract(order.side, event.yes_price)
            role = "taker" if is_taker else "maker"
            self._order_changed(order, now, **{f"{role}_fill_cost": cost, f"{role}_fees": fee})
            history = self._of(order.account_id)
            history.fills.append(FillRecord(
                self._next(), event.trade_id, order.order_id, event.ticker, order.side, event.quantity,
                event.yes_price, is_taker, fee, now,
            ))
            position = history.positions.get(event.ticker) or PositionRecord(event.ticker)
            history.positions[event.ticker] = after_fill(position, order.side, event.yes_price, event.quantity, fee, now)

    def _settled(self, event: Settled, now: datetime) -> None:
        history = self._of(event.account_id)
        history.updated = now
        position = history.positions.get(event.ticker) or PositionRecord(event.ticker, net_yes=event.net_yes)
        long = event.net_yes > 0
        history.settlements.append(SettlementRecord(
            self._next(), event.ticker, event.result,
            yes_count=event.net_yes if long else ZERO,
            no_count=ZERO if long else -event.net_yes,
            yes_total_cost=position.exposure if long else ZERO,
            no_total_cost=ZERO if long else position.exposure,
            revenue=event.payout, fee_cost=position.fees_paid + event.fee, settled_time=now,
            value=self._settlement_price(event),
        ))
        history.positions[event.ticker] = after_settlement(position, event.payout, now)

    def _settlement_price(self, event: Settled) -> Decimal:
        activity = self.markets.get(event.ticker)
        if activity is not None and activity.settlement_price is not None:
            return activity.settlement_price
        return ONE if event.result == "yes" else ZERO
