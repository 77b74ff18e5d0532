"""The simulator's exchange core: Kalshi's matching engine as a pure, deterministic state machine.

Like h11, this module does no I/O: no sockets, no threads, no clock. Each method takes the request
and the current time (``now``, an aware datetime) and returns the events that happened, in order;
the FIX layer turns them into ExecutionReports and OrderCancelRejects (ExecIDs are its job).

Kalshi runs one book per market, on the YES contract (spec §10.1): ``WireSide.BUY_YES`` bids for YES
at the YES price, ``WireSide.SELL_YES`` offers YES, which is buying NO at 1 - price. Orders match
with price-time priority, at the resting (maker) order's price.

Money (spec §10.1: every order is fully cash-collateralised):

* Accepting an order reserves its full cost: p per contract to buy YES at p, 1 - p to sell YES at p.
  Cancels and expiries release the reservation of the unfilled quantity.
* A fill spends the reserved amount at the fill price (a taker's price improvement goes back to its
  balance). Each contract traded is funded by exactly $1: p from the YES buyer, 1 - p from the seller.
* Positions are net YES contracts (negative = NO). A fill that reduces an account's absolute position
  nets a YES against a NO and returns $1 per pair to the balance.
* The taker pays ceil_to_cent(0.07 x qty x p x (1 - p)) per fill; makers pay nothing.

Hence, at every moment: sum(balances) + sum(reserved) + $1 x open interest (the YES contracts held,
which equals the NO contracts held) + fees collected == the cash the accounts started with.

Simulator choices where Kalshi's documents are silent:

* The balance check covers the order's full cost plus the taker fees of the fills it would make now,
  so balances never go negative. Post-only, FOK and max-cost cancels are Accepted then Canceled.
* MaxExecutionCost compares the cost of the fills available now plus the unfilled rest at the limit
  price with 21009; over it, the order is cancelled without fills (Text ``MAX_COST_EXCEEDED``).
* FOK is atomic: without full volume (whatever the reason, self-trade included) nothing happens.
* A GTD order already past its ExpireTime is IOC; its remainder is cancelled IMMEDIATE_OR_CANCELLED.
* Cancels and replaces must name the order's current ClOrdID; an open order named by an older one is
  unknown (102=1). A closed order named by any ClOrdID it had is too late (102=0).
* Replaces are refused while the market is paused (99 TRADING_PAUSED), when a post-only order would
  cross (99 POST_ONLY_CROSS), and when taker-at-cross STP would stop the amended order (18
  SELF_CROSS_ATTEMPT, as Kalshi documents). MaxExecutionCost only applies on entry.
* The whole exchange pauses too (``pause``, spec §7.5): a trading pause refuses new orders (103=2)
  and amends with TRADING_PAUSED, an exchange pause cancels as well, with EXCHANGE_PAUSED. Resting
  orders stay, but for those entered with CancelOrderOnPause, cancelled as the pause begins.
* Closing a market ends its orders with ``Expired`` (text MARKET_CLOSED): §11.2 reports close-cancels
  like expiries (150=4 normally, 150=C with 21012), so the FIX layer decides the same way for both.
* Settling a market (an operator action) closes it first, so its open orders end the same way; then
  each YES contract pays the settlement price ($1 on yes, $0 on no, the value on scalar), each NO
  contract the rest of $1, and every position in the market goes to zero (``Settled``). Payouts are
  rounded down to $0.0001 and the remainder charged as a fee (spec §15), collected with the others.

One file on purpose (875 lines): the book, the balance checks and the fills share the cash invariant
above; the operator actions at the end (fills against the house, settlement) could move out once a
second caller needs them.
"""

from __future__ import annotations

import bisect
import heapq
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, time, timedelta, timezone
from decimal import ROUND_CEILING, ROUND_DOWN, Decimal
from enum import Enum, IntEnum
from typing import Literal, Union
from zoneinfo import ZoneInfo

from fixengine.orders.reports import OrdStatus, RejectCode
from fixengine.orders.requests import SelfTradePrevention, TimeInForce
from fixengine.kalshi.maintenance import PauseKind
from fixengine.kalshi.prices import CENT, ONE, TICK, PriceError, WireSide, check_price, check_quantity

ZERO = Decimal(0)
NEW_YORK = ZoneInfo("America/New_York")
TAKER_FEE_RATE = Decimal("0.07")

# Texts Kalshi does not document; simulator choices.
MAX_COST_EXCEEDED = "MAX_COST_EXCEEDED"  # MaxExecutionCost (21009) cannot be met: order cancelled, no fills
ORDER_EXPIRED = "ORDER_EXPIRED"  # DAY / GTD deadline reached
MARKET_CLOSED = "MARKET_CLOSED"  # resting order ended because its market closed
ADMIN_CANCELED = "ADMIN_CANCELED"  # cancelled by the simulator's operator (Exchange.cancel_order)


class UnknownError(ValueError):
    """An operator action named an order or market the exchange does not know."""


class OrdRejReason(IntEnum):
    """OrdRejReason (103) values the exchange uses (spec §11.3)."""

    UNKNOWN_SYMBOL = 1
    EXCHANGE_CLOSED = 2
    ORDER_EXCEEDS_LIMIT = 3
    DUPLICATE_ORDER = 6
    UNSUPPORTED_ORDER_CHARACTERISTIC = 11
    UNKNOWN_ACCOUNT = 15


class CxlRejReason(IntEnum):
    """CxlRejReason (102) values the exchange uses (spec §11.7)."""

    TOO_LATE_TO_CANCEL = 0
    UNKNOWN_ORDER = 1
    BROKER = 2
    DUPLICATE_CL_ORD_ID = 6
    INVALID_PRICE_INCREMENT = 18  # Kalshi uses it for SELF_CROSS_ATTEMPT on replace
    OTHER = 99


SettlementResult = Literal["yes", "no", "scalar"]


class MarketStatus(str, Enum):
    OPEN = "open"
    CLOSED = "closed"
    PAUSED = "paused"


@dataclass(frozen=True, slots=True)
class MarketConfig:
    ticker: str
    status: MarketStatus = MarketStatus.OPEN
    tick: Decimal = CENT  # the price grid, dollars

    def __post_init__(self) -> None:
        if not ZERO < self.tick < ONE or ONE % self.tick != 0:
            raise ValueError(f"tick {self.tick} must divide $1")

    def on_grid(self, price: Decimal) -> bool:
        try:
            check_price(price)
        except PriceError:
            return False
        return price % self.tick == 0


@dataclass(slots=True)
class AccountState:
    """An account's cash (free ``balance`` plus ``reserved`` for open orders) and net YES positions."""

    account_id: str
    balance: Decimal
    positions: dict[str, Decimal] = field(default_factory=dict)
    reserved: Decimal = ZERO

    def copy(self) -> AccountState:
        return replace(self, positions=dict(self.positions))


@dataclass(frozen=True, slots=True)
class OrderSpec:
    """A NewOrderSingle as the exchange sees it; prices are YES prices in dollars."""

    account_id: str
    session_id: str
    cl_ord_id: str
    ticker: str
    side: WireSide
    yes_price: Decimal
    quantity: Decimal
    time_in_force: TimeInForce = TimeInForce.GTC
    expire_time: datetime | None = None
    post_only: bool = False
    self_trade_prevention: SelfTradePrevention | None = None  # None: TAKER_AT_CROSS
    max_execution_cost: Decimal | None = None  # dollars
    cancel_on_pause: bool = False


@dataclass(frozen=True, slots=True)
class OrderSnapshot:
    """An order's state at the moment of an event."""

    order_id: str
    account_id: str
    session_id: str
    cl_ord_id: str  # the ClOrdID of the last request that changed the order
    ticker: str
    side: WireSide
    yes_price: Decimal
    quantity: Decimal  # current total quantity (OrderQty)
    cum_qty: Decimal
    leaves_qty: Decimal
    avg_yes_price: Decimal | None  # None before the first fill
    status: OrdStatus
    time_in_force: TimeInForce
    expires_at: datetime | None  # DAY: next 23:59:59.999 New York time; GTD: ExpireTime
    post_only: bool
    self_trade_prevention: SelfTradePrevention
    cancel_on_pause: bool
    sequence: int  # time priority: lower is earlier


# --- events ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Accepted:
    """The order is live (emitted before any of its fills)."""

    order: OrderSnapshot


@dataclass(frozen=True, slots=True)
class Rejected:
    spec: OrderSpec
    text: str  # a RejectCode value
    ord_rej_reason: int


@dataclass(frozen=True, slots=True)
class Traded:
    trade_id: str
    ticker: str
    yes_price: Decimal  # the maker's price
    quantity: Decimal
    taker: OrderSnapshot  # both after this fill
    maker: OrderSnapshot
    taker_fee: Decimal
    maker_fee: Decimal


@dataclass(frozen=True, slots=True)
class Canceled:
    order: OrderSnapshot
    cl_ord_id: str  # the cancel's (or replace's) ClOrdID; the order's own for exchange-initiated cancels
    orig_cl_ord_id: str | None  # set when a client request cancelled it
    text: str | None  # None when the client asked


@dataclass(frozen=True, slots=True)
class Replaced:
    order: OrderSnapshot  # with the new ClOrdID, price and quantity
    orig_cl_ord_id: str


@dataclass(frozen=True, slots=True)
class CancelRefused:
    account_id: str
    cl_ord_id: str
    orig_cl_ord_id: str
    order_id: str | None
    reason: int  # CxlRejReason (102)
    text: str
    response_to: Literal["cancel", "replace"]
    order: OrderSnapshot | None = None  # the order, unchanged (for OrdStatus on 35=9)


@dataclass(frozen=True, slots=True)
class Expired:
    order: OrderSnapshot
    text: str  # ORDER_EXPIRED or MARKET_CLOSED


@dataclass(frozen=True, slots=True)
class PositionMoved:
    account_id: str
    ticker: str
    net_yes: Decimal  # after the fill; negative = NO held


@dataclass(frozen=True, slots=True)
class Settled:
    """A market settled: the account's position paid out (``payout`` dollars) and closed."""

    account_id: str
    ticker: str
    result: SettlementResult
    net_yes: Decimal  # the position settled; negative = NO held
    payout: Decimal  # dollars credited: the settlement price per YES contract (the rest per NO), less ``fee``
    fee: Decimal = ZERO  # what rounding the payout down to $0.0001 kept


@dataclass(frozen=True, slots=True)
class MarketSettled:
    """A market settled on ``result`` (before the accounts' ``Settled`` events)."""

    ticker: str
    result: SettlementResult
    settlement_price: Decimal  # what a YES contract pays, dollars: 1 on yes, 0 on no


Event = Union[
    Accepted, Rejected, Traded, Canceled, Replaced, CancelRefused, Expired, PositionMoved, MarketSettled, Settled
]


# --- arithmetic --------------------------------------------------------------------------------


def cost_per_contract(side: WireSide, yes_price: Decimal) -> Decimal:
    """What one contract costs the given side at a YES price: p to buy YES, 1 - p to buy NO."""
    return yes_price if side is WireSide.BUY_YES else ONE - yes_price


def taker_fee(quantity: Decimal, yes_price: Decimal) -> Decimal:
    """Kalshi's taker fee for one fill, rounded up to the cent."""
    return (TAKER_FEE_RATE * quantity * yes_price * (ONE - yes_price)).quantize(CENT, rounding=ROUND_CEILING)


def day_deadline(now: datetime) -> datetime:
    """When a DAY order entered at ``now`` expires: the next 23:59:59.999 America/New_York, in UTC."""
    local = now.astimezone(NEW_YORK)
    end_of_day = time(23, 59, 59, 999000)
    deadline = datetime.combine(local.date(), end_of_day, tzinfo=NEW_YORK)
    if deadline <= now:
        deadline = datetime.combine(local.date() + timedelta(days=1), end_of_day, tzinfo=NEW_YORK)
    return deadline.astimezone(timezone.utc)


def _settlement_price(result: str, price: Decimal | None) -> Decimal:
    """What a YES contract pays on ``result``; ``price`` only for scalar (0 to 1, at most 4 decimals)."""
    if result not in ("yes", "no", "scalar"):
        raise ValueError(f"result {result!r} must be 'yes', 'no' or 'scalar'")
    if result != "scalar":
        if price is not None:
            raise ValueError(f"a price is given only for a scalar result, not for {result!r}")
        return ONE if result == "yes" else ZERO
    if price is None or not price.is_finite() or not ZERO <= price <= ONE or price != price.quantize(TICK):
        raise ValueError(f"a scalar result needs a price of $0 to $1 with at most 4 decimals, not {price}")
    return price


def _require_aware(now: datetime) -> None:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be a time-zone aware datetime")


# --- orders and books --------------------------------------------------------------------------


@dataclass(eq=False, slots=True)
class _Order:
    """The exchange's mutable record of one order."""

    spec: OrderSpec
    order_id: str
    cl_ord_id: str
    yes_price: Decimal
    quantity: Decimal
    leaves_qty: Decimal
    sequence: int
    expires_at: datetime | None
    cum_qty: Decimal = ZERO
    notional: Decimal = ZERO  # sum of fill qty x YES price
    status: OrdStatus = OrdStatus.NEW
    resting: bool = False

    @property
    def is_open(self) -> bool:
        return self.status in (OrdStatus.NEW, OrdStatus.PARTIALLY_FILLED)

    @property
    def account_id(self) -> str:
        return self.spec.account_id

    @property
    def side(self) -> WireSide:
        return self.spec.side

    @property
    def stp(self) -> SelfTradePrevention:
        return self.spec.self_trade_prevention or SelfTradePrevention.TAKER_AT_CROSS

    @property
    def reservation(self) -> Decimal:
        return self.leaves_qty * cost_per_contract(self.side, self.yes_price)

    def snapshot(self) -> OrderSnapshot:
        s = self.spec
        return OrderSnapshot(
            order_id=self.order_id, account_id=s.account_id, session_id=s.session_id, cl_ord_id=self.cl_ord_id,
            ticker=s.ticker, side=s.side, yes_price=self.yes_price, quantity=self.quantity, cum_qty=self.cum_qty,
            leaves_qty=self.leaves_qty, avg_yes_price=self.notional / self.cum_qty if self.cum_qty else None,
            status=self.status, time_in_force=s.time_in_force, expires_at=self.expires_at, post_only=s.post_only,
            self_trade_prevention=self.stp, cancel_on_pause=s.cancel_on_pause, sequence=self.sequence,
        )


def _priority(order: _Order) -> tuple[Decimal, int]:
    """Sort key: best price first (highest bid, lowest offer), then earliest arrival."""
    price = -order.yes_price if order.side is WireSide.BUY_YES else order.yes_price
    return (price, order.sequence)


class Book:
    """One market's resting orders, bids and offers each in price-time priority. Beside each side,
    its orders' sort keys (``_priority``), so that an insert or a search is a bisection over plain
    tuples rather than a key call per comparison, and a crossing search stops at the first price
    that does not cross."""

    def __init__(self) -> None:
        self._bids: list[_Order] = []
        self._offers: list[_Order] = []
        self._bid_keys: list[tuple[Decimal, int]] = []
        self._offer_keys: list[tuple[Decimal, int]] = []

    def _side(self, side: WireSide) -> tuple[list[_Order], list[tuple[Decimal, int]]]:
        return (self._bids, self._bid_keys) if side is WireSide.BUY_YES else (self._offers, self._offer_keys)

    def add(self, order: _Order) -> None:
        orders, keys = self._side(order.side)
        key = _priority(order)
        at = bisect.bisect_right(keys, key)
        keys.insert(at, key)
        orders.insert(at, order)
        order.resting = True

    def remove(self, order: _Order) -> None:
        """(Before its price or sequence changes: its key finds it.)"""
        orders, keys = self._side(order.side)
        at = bisect.bisect_left(keys, _priority(order))
        if at >= len(orders) or orders[at] is not order:  # not where its key says: look for it
            at = next(i for i, o in enumerate(orders) if o is order)
        del keys[at], orders[at]
        order.resting = False

    def crossing(self, side: WireSide, yes_price: Decimal) -> list[_Order]:
        """The resting orders an incoming ``side`` order at ``yes_price`` would meet, best first."""
        if side is WireSide.BUY_YES:  # offers at or under the price: a prefix of the offers
            return self._offers[:bisect.bisect_right(self._offer_keys, (yes_price, sys.maxsize))]
        return self._bids[:bisect.bisect_right(self._bid_keys, (-yes_price, sys.maxsize))]

    @property
    def bids(self) -> list[_Order]:
        return list(self._bids)

    @property
    def offers(self) -> list[_Order]:
        return list(self._offers)

    def best_bid(self) -> Decimal | None:
        return self._bids[0].yes_price if self._bids else None

    def best_offer(self) -> Decimal | None:
        return self._offers[0].yes_price if self._offers else None


@dataclass(slots=True)
class _Plan:
    """What matching an order would do, worked out before anything changes (FOK, post-only, costs)."""

    steps: list[tuple[_Order, Decimal | None]]  # (maker, qty) fills; (own maker, None) STP-maker cancels
    filled: Decimal
    crosses: bool  # any resting order crosses the limit (post-only)
    self_cross: bool  # stopped at the account's own order (STP taker-at-cross)

    def fees(self) -> Decimal:
        return sum((taker_fee(q, m.yes_price) for m, q in self.steps if q is not None), ZERO)

    def cost(self, side: WireSide) -> Decimal:
        return sum((q * cost_per_contract(side, m.yes_price) for m, q in self.steps if q is not None), ZERO)


# --- the exchange ------------------------------------------------------------------------------


class Exchange:
    """Markets, accounts and their orders; every method returns the events it caused, in order.

    Orders whose DAY/GTD deadline has passed expire at the start of every call (``Expired`` events
    come first), so a stale order never trades; ``expire(now)`` does only that.
    """

    def __init__(self, markets: Iterable[MarketConfig], accounts: Iterable[AccountState]) -> None:
        self._markets = {m.ticker: m for m in markets}
        self._books = {ticker: Book() for ticker in self._markets}
        self._accounts = {a.account_id: a.copy() for a in accounts}
        self._orders: dict[str, _Order] = {}
        self._open: dict[str, _Order] = {}  # order_id -> open order, in arrival order
        self._by_cl_ord_id: dict[tuple[str, str], _Order] = {}  # (account, any ClOrdID it had) -> latest order
        # (deadline, creation number, order id) of orders that can expire: expiry costs O(log n)
        # per order, not a scan of every open order on every call.
        self._deadlines: list[tuple[datetime, int, str]] = []
        self._order_counter = 0
        self._trade_counter = 0
        self._sequence = 0
        self._fill_counter = 0  # operator fills (fill_against)
        self._settled: dict[str, SettlementResult] = {}
        self.fees_collected = ZERO
        self.paused: PauseKind | None = None  # the whole exchange (``pause``); markets also pause one by one

    # queries

    def market(self, ticker: str) -> MarketConfig:
        return self._markets[ticker]

    def markets(self) -> list[MarketConfig]:
        return list(self._markets.values())

    def account(self, account_id: str) -> AccountState:
        return self._accounts[account_id].copy()

    def accounts(self) -> list[AccountState]:
        return [a.copy() for a in self._accounts.values()]

    def order(self, order_id: str) -> OrderSnapshot:
        return self._orders[order_id].snapshot()

    def open_orders(self, account_id: str | None = None) -> list[OrderSnapshot]:
        return [o.snapshot() for o in self._open.values() if account_id in (None, o.account_id)]

    def bids(self, ticker: str) -> list[OrderSnapshot]:
        return [o.snapshot() for o in self._books[ticker].bids]

    def offers(self, ticker: str) -> list[OrderSnapshot]:
        return [o.snapshot() for o in self._books[ticker].offers]

    def best_bid(self, ticker: str) -> Decimal | None:
        return self._books[ticker].best_bid()

    def best_offer(self, ticker: str) -> Decimal | None:
        return self._books[ticker].best_offer()

    # order entry

    def submit(self, spec: OrderSpec, now: datetime) -> list[Event]:
        """A NewOrderSingle: validate, reserve, match, then rest or cancel the remainder."""
        events = self.expire(now)
        problem = self._validate(spec)
        if problem is not None:
            events.append(Rejected(spec, problem[0].value, problem[1]))
            return events
        tif = spec.time_in_force
        immediate = tif in (TimeInForce.IOC, TimeInForce.FOK) or (
            tif is TimeInForce.GTD and spec.expire_time is not None and spec.expire_time <= now
        )
        plan = self._plan(spec.account_id, spec.ticker, spec.side, spec.yes_price, spec.quantity,
                          spec.self_trade_prevention or SelfTradePrevention.TAKER_AT_CROSS)
        unfilled_cost = (spec.quantity - plan.filled) * cost_per_contract(spec.side, spec.yes_price)
        cancel_text: str | None = None
        if spec.post_only and plan.crosses:
            cancel_text = RejectCode.POST_ONLY_CROSS.value
        elif tif is TimeInForce.FOK and plan.filled < spec.quantity:
            cancel_text = RejectCode.FOK_INSUFFICIENT_VOLUME.value
        elif spec.max_execution_cost is not None and plan.cost(spec.side) + unfilled_cost > spec.max_execution_cost:
            cancel_text = MAX_COST_EXCEEDED
        account = self._accounts[spec.account_id]
        required = spec.quantity * cost_per_contract(spec.side, spec.yes_price)
        if cancel_text is None:
            required += plan.fees()
        if account.balance < required:
            events.append(Rejected(spec, RejectCode.INSUFFICIENT_BALANCE.value, OrdRejReason.ORDER_EXCEEDS_LIMIT))
            return events

        order = self._new_order(spec, now)
        events.append(Accepted(order.snapshot()))
        if cancel_text is not None:
            self._end(order, OrdStatus.CANCELED)
            events.append(Canceled(order.snapshot(), order.cl_ord_id, None, cancel_text))
            return events
        self._execute(order, plan, events)
        self._settle_remainder(order, plan, immediate, events)
        return events

    def cancel(self, account_id: str, orig_cl_ord_id: str, cl_ord_id: str, now: datetime) -> list[Event]:
        """An OrderCancelRequest: cancel the whole remaining quantity (allowed while paused, but
        in an exchange pause)."""
        events = self.expire(now)
        found = self._find(account_id, orig_cl_ord_id, cl_ord_id, "cancel")
        if isinstance(found, CancelRefused):
            events.append(found)
            return events
        if self.paused is not None and self.paused.refuses_cancels:
            events.append(CancelRefused(account_id, cl_ord_id, orig_cl_ord_id, found.order_id, CxlRejReason.OTHER,
                                        self.paused.text, "cancel", found.snapshot()))
            return events
        self._rename(found, cl_ord_id)
        self._end(found, OrdStatus.CANCELED)
        events.append(Canceled(found.snapshot(), cl_ord_id, orig_cl_ord_id, None))
        return events

    def replace(
        self,
        account_id: str,
        orig_cl_ord_id: str,
        cl_ord_id: str,
        quantity: Decimal | None,
        yes_price: Decimal | None,
        now: datetime,
    ) -> list[Event]:
        """An OrderCancelReplaceRequest: new total ``quantity`` and/or new ``yes_price``."""
        events = self.expire(now)
        found = self._find(account_id, orig_cl_ord_id, cl_ord_id, "replace")
        if isinstance(found, CancelRefused):
            events.append(found)
            return events
        order = found

        def refuse(reason: CxlRejReason, text: str) -> list[Event]:
            events.append(CancelRefused(account_id, cl_ord_id, orig_cl_ord_id, order.order_id, reason, text,
                                         "replace", order.snapshot()))
            return events

        if self.paused is not None:
            return refuse(CxlRejReason.OTHER, self.paused.text)
        market = self._markets[order.spec.ticker]
        if market.status is not MarketStatus.OPEN:
            paused = market.status is MarketStatus.PAUSED
            text = RejectCode.TRADING_PAUSED if paused else RejectCode.MARKET_ALREADY_CLOSED
            return refuse(CxlRejReason.OTHER, text.value)
        new_price = order.yes_price if yes_price is None else yes_price
        if not market.on_grid(new_price):
            return refuse(CxlRejReason.OTHER, RejectCode.INVALID_PRICE.value)
        new_qty = order.quantity if quantity is None else quantity
        try:
            check_quantity(new_qty)
        except PriceError:
            return refuse(CxlRejReason.BROKER, RejectCode.INVALID_AMEND_QTY_FOR_ORDER.value)
        if new_qty < order.cum_qty:
            return refuse(CxlRejReason.BROKER, RejectCode.INVALID_AMEND_QTY_FOR_ORDER.value)
        if new_qty == order.cum_qty:  # nothing left to trade: the amend cancels the order
            self._rename(order, cl_ord_id)
            order.quantity = new_qty
            self._end(order, OrdStatus.CANCELED)
            events.append(Canceled(order.snapshot(), cl_ord_id, orig_cl_ord_id, None))
            return events

        new_leaves = new_qty - order.cum_qty
        plan = self._plan(account_id, order.spec.ticker, order.side, new_price, new_leaves, order.stp)
        if plan.crosses and order.spec.post_only:
            return refuse(CxlRejReason.OTHER, RejectCode.POST_ONLY_CROSS.value)
        if plan.self_cross:
            return refuse(CxlRejReason.INVALID_PRICE_INCREMENT, RejectCode.SELF_CROSS_ATTEMPT.value)
        account = self._accounts[account_id]
        extra = new_leaves * cost_per_contract(order.side, new_price) - order.reservation
        if account.balance < extra + plan.fees():
            return refuse(CxlRejReason.OTHER, RejectCode.INSUFFICIENT_BALANCE.value)

        keeps_priority = new_price == order.yes_price and new_qty <= order.quantity
        account.balance -= extra
        account.reserved += extra
        if not keeps_priority:
            self._books[order.spec.ticker].remove(order)
            order.sequence = self._next_sequence()
        self._rename(order, cl_ord_id)
        order.yes_price, order.quantity, order.leaves_qty = new_price, new_qty, new_leaves
        events.append(Replaced(order.snapshot(), orig_cl_ord_id))
        self._execute(order, plan, events)
        self._settle_remainder(order, plan, False, events)
        return events

    def mass_cancel(self, session_id: str, now: datetime) -> list[Event]:
        """OrderMassCancelRequest (530=6): cancel every open order entered on ``session_id``."""
        events = self.expire(now)
        for order in [o for o in self._open.values() if o.spec.session_id == session_id]:
            self._end(order, OrdStatus.CANCELED)
            events.append(Canceled(order.snapshot(), order.cl_ord_id, None, None))
        return events

    def cancel_session_orders(self, session_id: str, now: datetime) -> list[Event]:
        """CancelOrdersOnDisconnect: the session went away; same effect as a mass cancel."""
        return self.mass_cancel(session_id, now)

    def expire(self, now: datetime) -> list[Event]:
        """End DAY/GTD orders whose deadline is at or before ``now``, releasing their collateral."""
        _require_aware(now)
        due: list[_Order] = []
        while self._deadlines and self._deadlines[0][0] <= now:
            _, _, order_id = heapq.heappop(self._deadlines)
            order = self._open.get(order_id)
            if order is not None and order.expires_at is not None and order.expires_at <= now:
                due.append(order)
        events: list[Event] = []
        for order in sorted(due, key=lambda o: int(o.order_id[1:])):  # in arrival order
            self._end(order, OrdStatus.EXPIRED)
            events.append(Expired(order.snapshot(), ORDER_EXPIRED))
        return events

    def set_market_status(self, ticker: str, status: MarketStatus, now: datetime) -> list[Event]:
        """Open, pause or close a market. Pausing cancels cancel-on-pause orders; closing ends all."""
        events = self.expire(now)
        self._markets[ticker] = replace(self._markets[ticker], status=status)
        for order in [o for o in self._open.values() if o.spec.ticker == ticker]:
            if status is MarketStatus.PAUSED and order.spec.cancel_on_pause:
                self._end(order, OrdStatus.CANCELED)
                events.append(Canceled(order.snapshot(), order.cl_ord_id, None, RejectCode.TRADING_PAUSED.value))
            elif status is MarketStatus.CLOSED:
                self._end(order, OrdStatus.EXPIRED)
                events.append(Expired(order.snapshot(), MARKET_CLOSED))
        return events

    def pause(self, kind: PauseKind | None, now: datetime) -> list[Event]:
        """Pause the whole exchange (``kind``: a trading or an exchange pause) or open it again
        (None). As a pause begins, the orders entered with CancelOrderOnPause are cancelled."""
        events = self.expire(now)
        beginning = self.paused is None and kind is not None
        self.paused = kind
        if kind is not None and beginning:
            for order in [o for o in self._open.values() if o.spec.cancel_on_pause]:
                self._end(order, OrdStatus.CANCELED)
                events.append(Canceled(order.snapshot(), order.cl_ord_id, None, kind.text))
        return events

    # operator actions (the simulator's admin calls; no client asked for them)

    def open_account(self, account_id: str, balance: Decimal) -> None:
        """Add an account (e.g. the house account, for ``fill_against``); it must not exist yet."""
        if account_id in self._accounts:
            raise ValueError(f"account {account_id!r} already exists")
        if not balance.is_finite() or balance < 0:
            raise ValueError(f"balance {balance} must be a non-negative number of dollars")
        self._accounts[account_id] = AccountState(account_id, balance)

    def settlement(self, ticker: str) -> SettlementResult | None:
        """The result a market settled with, or None while it is unsettled."""
        return self._settled.get(ticker)

    def cancel_order(self, order_id: str, now: datetime, text: str = ADMIN_CANCELED) -> list[Event]:
        """Cancel an open order by its order id, as the exchange itself would (no client request)."""
        events = self.expire(now)
        order = self._open_order(order_id)
        self._end(order, OrdStatus.CANCELED)
        events.append(Canceled(order.snapshot(), order.cl_ord_id, None, text))
        return events

    def fill_against(self, order_id: str, quantity: Decimal, counterparty: str, now: datetime) -> list[Event]:
        """Fill ``quantity`` of an open order at its own price against ``counterparty``, which takes
        it with an order of its own (Accepted, then Traded: the order is the maker)."""
        events = self.expire(now)
        maker = self._open_order(order_id)
        try:
            check_quantity(quantity)
        except PriceError as exc:
            raise ValueError(str(exc)) from None
        if quantity > maker.leaves_qty:
            raise ValueError(f"quantity {quantity} is more than the order's open {maker.leaves_qty}")
        if counterparty not in self._accounts:
            raise ValueError(f"counterparty account {counterparty!r} does not exist")
        if counterparty == maker.account_id:
            raise ValueError("an order cannot be filled against its own account")
        side = WireSide.SELL_YES if maker.side is WireSide.BUY_YES else WireSide.BUY_YES
        self._fill_counter += 1
        spec = OrderSpec(counterparty, "", f"fill-{self._fill_counter}", maker.spec.ticker, side,
                         maker.yes_price, quantity, TimeInForce.IOC)
        needed = quantity * cost_per_contract(side, maker.yes_price) + taker_fee(quantity, maker.yes_price)
        if self._accounts[counterparty].balance < needed:
            raise ValueError(f"counterparty account {counterparty!r} cannot pay ${needed} for the fill")
        taker = self._new_order(spec, now)
        events.append(Accepted(taker.snapshot()))
        self._fill(taker, maker, quantity, events)
        return events

    def settle_market(self, ticker: str, result: SettlementResult, now: datetime,
                      price: Decimal | None = None) -> list[Event]:
        """Settle a market on ``result``: close it (its open orders end, ``Expired`` MARKET_CLOSED),
        pay each YES contract ``price`` dollars ($1 on yes, $0 on no: given only for scalar, at most 4
        decimals) and each NO contract the rest of $1, rounded down to $0.0001 (the remainder is a
        fee), and zero every position in it. Settling is final."""
        if ticker not in self._markets:
            raise UnknownError(f"unknown market {ticker!r}")
        yes_pays = _settlement_price(result, price)
        if ticker in self._settled:
            raise ValueError(f"market {ticker} already settled ({self._settled[ticker]})")
        events = self.set_market_status(ticker, MarketStatus.CLOSED, now)
        self._settled[ticker] = result
        events.append(MarketSettled(ticker, result, yes_pays))
        for account in self._accounts.values():
            net = account.positions.get(ticker, ZERO)
            if net == 0:
                continue
            owed = net * yes_pays if net > 0 else -net * (ONE - yes_pays)
            payout = owed.quantize(TICK, rounding=ROUND_DOWN)
            account.balance += payout
            self.fees_collected += owed - payout
            account.positions[ticker] = ZERO
            events.append(Settled(account.account_id, ticker, result, net, payout, owed - payout))
            events.append(PositionMoved(account.account_id, ticker, ZERO))
        return events

    def _open_order(self, order_id: str) -> _Order:
        order = self._orders.get(order_id)
        if order is None:
            raise UnknownError(f"unknown order {order_id!r}")
        if not order.is_open:
            raise ValueError(f"order {order_id} is no longer open (status {order.status.name})")
        return order

    # internals

    def _validate(self, spec: OrderSpec) -> tuple[RejectCode, int] | None:
        if self.paused is not None:
            return RejectCode(self.paused.text), OrdRejReason.EXCHANGE_CLOSED
        market = self._markets.get(spec.ticker)
        if market is None:
            return RejectCode.MARKET_NOT_FOUND, OrdRejReason.UNKNOWN_SYMBOL
        if market.status is MarketStatus.CLOSED:
            return RejectCode.MARKET_ALREADY_CLOSED, OrdRejReason.EXCHANGE_CLOSED
        if market.status is MarketStatus.PAUSED:
            return RejectCode.TRADING_PAUSED, OrdRejReason.EXCHANGE_CLOSED
        if spec.account_id not in self._accounts:
            return RejectCode.CUSTOMER_ACCOUNT_NOT_FOUND, OrdRejReason.UNKNOWN_ACCOUNT
        if self._open_with_cl_ord_id(spec.account_id, spec.cl_ord_id):
            return RejectCode.ORDER_ALREADY_EXISTS, OrdRejReason.DUPLICATE_ORDER
        invalid = RejectCode.INVALID_ORDER, OrdRejReason.UNSUPPORTED_ORDER_CHARACTERISTIC
        try:
            check_quantity(spec.quantity)
        except PriceError:
            return invalid
        gtd = spec.time_in_force is TimeInForce.GTD
        if (
            not market.on_grid(spec.yes_price)
            or gtd != (spec.expire_time is not None)
            or (spec.expire_time is not None and spec.expire_time.utcoffset() is None)
            or (spec.post_only and spec.time_in_force in (TimeInForce.IOC, TimeInForce.FOK))
            or (spec.max_execution_cost is not None and not spec.max_execution_cost > 0)
        ):
            return invalid
        return None

    def _open_with_cl_ord_id(self, account_id: str, cl_ord_id: str) -> bool:
        order = self._by_cl_ord_id.get((account_id, cl_ord_id))
        return order is not None and order.is_open and order.cl_ord_id == cl_ord_id

    def _find(
        self, account_id: str, orig_cl_ord_id: str, cl_ord_id: str, response_to: Literal["cancel", "replace"]
    ) -> _Order | CancelRefused:
        """The open order a cancel/replace names by its current ClOrdID, or the CancelRefused to send."""
        order = self._by_cl_ord_id.get((account_id, orig_cl_ord_id))
        if order is None or (order.is_open and order.cl_ord_id != orig_cl_ord_id):
            return CancelRefused(account_id, cl_ord_id, orig_cl_ord_id, None, CxlRejReason.UNKNOWN_ORDER,
                                  RejectCode.ORDER_NOT_FOUND.value, response_to)
        if not order.is_open:
            filled = order.status is OrdStatus.FILLED
            text = RejectCode.CANNOT_UPDATE_FILLED_ORDER if filled else RejectCode.ORDER_NOT_FOUND
            return CancelRefused(account_id, cl_ord_id, orig_cl_ord_id, order.order_id,
                                  CxlRejReason.TOO_LATE_TO_CANCEL, text.value, response_to, order.snapshot())
        if self._open_with_cl_ord_id(account_id, cl_ord_id):
            return CancelRefused(account_id, cl_ord_id, orig_cl_ord_id, order.order_id,
                                  CxlRejReason.DUPLICATE_CL_ORD_ID, RejectCode.ORDER_ALREADY_EXISTS.value,
                                  response_to, order.snapshot())
        return order

    def _next_sequence(self) -> int:
        self._sequence += 1
        return self._sequence

    def _new_order(self, spec: OrderSpec, now: datetime) -> _Order:
        self._order_counter += 1
        expires_at = day_deadline(now) if spec.time_in_force is TimeInForce.DAY else spec.expire_time
        order = _Order(spec=spec, order_id=f"O{self._order_counter}", cl_ord_id=spec.cl_ord_id,
                       yes_price=spec.yes_price, quantity=spec.quantity, leaves_qty=spec.quantity,
                       sequence=self._next_sequence(), expires_at=expires_at)
        account = self._accounts[spec.account_id]
        account.balance -= order.reservation
        account.reserved += order.reservation
        self._orders[order.order_id] = order
        self._open[order.order_id] = order
        self._by_cl_ord_id[(spec.account_id, spec.cl_ord_id)] = order
        if expires_at is not None:
            heapq.heappush(self._deadlines, (expires_at, self._order_counter, order.order_id))
        return order

    def _rename(self, order: _Order, cl_ord_id: str) -> None:
        order.cl_ord_id = cl_ord_id
        self._by_cl_ord_id[(order.account_id, cl_ord_id)] = order

    def _end(self, order: _Order, status: OrdStatus) -> None:
        """Close an order (cancelled, expired or filled), releasing what is still reserved for it."""
        account = self._accounts[order.account_id]
        account.balance += order.reservation
        account.reserved -= order.reservation
        order.leaves_qty = ZERO
        order.status = status
        if order.resting:
            self._books[order.spec.ticker].remove(order)
        del self._open[order.order_id]

    def _plan(
        self, account_id: str, ticker: str, side: WireSide, yes_price: Decimal, quantity: Decimal,
        stp: SelfTradePrevention,
    ) -> _Plan:
        crossing = self._books[ticker].crossing(side, yes_price)
        steps: list[tuple[_Order, Decimal | None]] = []
        remaining = quantity
        self_cross = False
        for maker in crossing:
            if remaining == 0:
                break
            if maker.account_id == account_id:
                if stp is SelfTradePrevention.MAKER:
                    steps.append((maker, None))
                    continue
                self_cross = True
                break
            fill = min(remaining, maker.leaves_qty)
            steps.append((maker, fill))
            remaining -= fill
        return _Plan(steps, quantity - remaining, bool(crossing), self_cross)

    def _execute(self, taker: _Order, plan: _Plan, events: list[Event]) -> None:
        for maker, quantity in plan.steps:
            if quantity is None:
                self._end(maker, OrdStatus.CANCELED)
                text = RejectCode.MAKER_CANCEL_FOR_SELF_TRADE_PREVENTION.value
                events.append(Canceled(maker.snapshot(), maker.cl_ord_id, None, text))
            else:
                self._fill(taker, maker, quantity, events)

    def _settle_remainder(self, order: _Order, plan: _Plan, immediate: bool, events: list[Event]) -> None:
        """After matching: rest what is left, or cancel it (self-trade prevention, IOC)."""
        if not order.is_open:
            return
        if plan.self_cross:
            text = RejectCode.TAKER_CANCEL_FOR_SELF_TRADE_PREVENTION.value
        elif immediate:
            text = RejectCode.IMMEDIATE_OR_CANCELLED.value
        else:
            if not order.resting:
                self._books[order.spec.ticker].add(order)
            return
        self._end(order, OrdStatus.CANCELED)
        events.append(Canceled(order.snapshot(), order.cl_ord_id, None, text))

    def _fill(self, taker: _Order, maker: _Order, quantity: Decimal, events: list[Event]) -> None:
        price = maker.yes_price
        fee = taker_fee(quantity, price)
        for order in (taker, maker):
            account = self._accounts[order.account_id]
            reserved = quantity * cost_per_contract(order.side, order.yes_price)
            account.reserved -= reserved
            account.balance += reserved - quantity * cost_per_contract(order.side, price)  # price improvement
            order.cum_qty += quantity
            order.leaves_qty -= quantity
            order.notional += quantity * price
            order.status = OrdStatus.PARTIALLY_FILLED if order.leaves_qty else OrdStatus.FILLED
            if not order.leaves_qty:
                if order.resting:
                    self._books[order.spec.ticker].remove(order)
                del self._open[order.order_id]
        self._accounts[taker.account_id].balance -= fee
        self.fees_collected += fee
        self._trade_counter += 1
        events.append(Traded(f"T{self._trade_counter}", taker.spec.ticker, price, quantity, taker.snapshot(),
                             maker.snapshot(), fee, ZERO))
        for order in (taker, maker):
            delta = quantity if order.side is WireSide.BUY_YES else -quantity
            events.append(self._move_position(order.account_id, order.spec.ticker, delta))

    def _move_position(self, account_id: str, ticker: str, delta: Decimal) -> PositionMoved:
        """Add ``delta`` YES contracts; YES netted against NO returns $1 per pair."""
        account = self._accounts[account_id]
        before = account.positions.get(ticker, ZERO)
        if before * delta < 0:
            account.balance += min(abs(before), abs(delta))
        account.positions[ticker] = before + delta
        return PositionMoved(account_id, ticker, before + delta)
