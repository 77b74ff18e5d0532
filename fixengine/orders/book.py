"""The order book: a pure state machine fed requests and reports, producing order events.

No I/O and no clock: the engine journals what it feeds in and feeds it in the asyncio loop (one
writer); a restart feeds the journal back in and gets the same book. Written in the manner of h11:
``submit`` / ``cancel`` / ``replace`` record intents, ``apply`` consumes what the exchange said and
returns what changed.

An order is known by the ClOrdID it was submitted with (its ``key``); cancels and replaces add
ClOrdIDs to its chain, and Kalshi's OrderID (37) is learnt from the first report.

One file on purpose (over 400 lines): every transition shares the invariants above (quantities
only move forward, a fill counts once), and splitting the machine would split what must be read
together.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum

from fixengine._evolve import evolve
from fixengine._event import _StampedLater
from fixengine.errors import BookError
from fixengine.orders.reports import (
    BusinessReject,
    CancelReject,
    CxlRejResponseTo,
    ExecType,
    ExecutionReport,
    Fill,
    OrdStatus,
    PositionFix,
    Reason,
    RejectCode,
    exec_position,
)
from fixengine.orders.requests import NewOrder
from fixengine.orders.settlement import Ledger, MarketSettled, SettledMarket, SettlementReport
from fixengine.kalshi.prices import Action, Contract, WireSide, to_yes_book

ZERO = Decimal(0)
EXTERNAL_PREFIX = "external:"  # the key of an order entered elsewhere: external:OrderID


class Status(str, Enum):
    PENDING_NEW = "pending_new"
    NEW = "new"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    PENDING_CANCEL = "pending_cancel"
    PENDING_REPLACE = "pending_replace"
    CANCELED = "canceled"
    REJECTED = "rejected"
    EXPIRED = "expired"

    @property
    def terminal(self) -> bool:
        return self in (Status.FILLED, Status.CANCELED, Status.REJECTED, Status.EXPIRED)


@dataclass(frozen=True, slots=True)
class Order:
    """One order as the engine knows it. Immutable: every change makes a new snapshot."""

    key: str  # the ClOrdID it was submitted with
    account: str  # the API key (SenderCompID) it trades for; positions are per account
    ticker: str
    action: Action  # as the user asked: buy/sell YES/NO
    contract: Contract
    side: WireSide  # as the YES book sees it
    yes_price: Decimal
    quantity: Decimal  # OrderQty as last reported (or requested)
    cl_ord_id: str  # the latest ClOrdID the exchange accepted
    status: Status = Status.PENDING_NEW
    order_id: str | None = None
    cum_qty: Decimal = ZERO
    leaves_qty: Decimal = ZERO
    avg_yes_price: Decimal | None = None
    pending: str | None = None  # ClOrdID of a cancel/replace in flight
    resting_status: Status | None = None  # what the order was before the cancel/replace request
    reason: Reason | None = None  # why it was rejected or cancelled by the exchange
    outcome_unknown: bool = False  # EXCHANGE_UNAVAILABLE: reconcile, or retry with the same ClOrdID
    unconfirmed: bool = False  # reports for it may have been missed (reset logon): until its next report or reconciliation
    order_group_id: str | None = None  # the order group it joined (526): its ORDER_GROUP_CANCEL names the group
    external: bool = False  # entered elsewhere (another key or session of the account): known from its reports

    @property
    def unanswered(self) -> tuple[str, ...]:
        """ClOrdIDs of its requests the exchange has not answered yet: a cancel or replace in
        flight, and the order itself while it has no OrderID."""
        requests = (self.pending,) if self.pending is not None else ()
        return requests + (self.key,) if self.order_id is None and not self.status.terminal else requests

    @property
    def retryable(self) -> bool:
        """Sent, never heard of, fate unknown: the one state in which the same ClOrdID may be sent
        again (Kalshi refuses it while the first is open; the book tracks whichever it gets)."""
        return self.outcome_unknown and self.status is Status.PENDING_NEW and self.order_id is None


# --- what the book tells its owner -----------------------------------------------------------
# The book knows neither the session a report came on nor the time: it returns its events with
# ``session`` and ``at`` unset, and whoever publishes them stamps both (see fixengine._event).


@dataclass(frozen=True, slots=True)
class OrderEvent(_StampedLater):
    """Something happened to an order; ``order`` is its snapshot after the change."""

    order: Order

    def describe(self) -> str:
        o = self.order
        price = o.yes_price if o.contract.value == "yes" else 1 - o.yes_price
        what = f"{o.action.value} {o.quantity} {o.contract.value.upper()} {o.ticker} @ {price}"
        text = f"{type(self).__name__.removeprefix('Order').lower()}: {what}, {o.status.value}, filled {o.cum_qty}"
        return text + (f" ({o.reason.text})" if o.reason is not None and o.reason.text else "")


@dataclass(frozen=True, slots=True)
class OrderAccepted(OrderEvent):
    pass


@dataclass(frozen=True, slots=True)
class OrderFilled(OrderEvent):
    fill: Fill

    def describe(self) -> str:
        f = self.fill
        who = "taker" if f.aggressor else "maker"
        return OrderEvent.describe(self) + f"; fill {f.quantity} at YES {f.yes_price} as {who}, fee ${f.fee}"


@dataclass(frozen=True, slots=True)
class OrderCanceled(OrderEvent):
    pass


@dataclass(frozen=True, slots=True)
class OrderReplaced(OrderEvent):
    pass


@dataclass(frozen=True, slots=True)
class OrderRejected(OrderEvent):
    pass


@dataclass(frozen=True, slots=True)
class OrderExpired(OrderEvent):
    pass


@dataclass(frozen=True, slots=True)
class OrderPending(OrderEvent):
    """The exchange acknowledged a request it has not finished (PendingNew/Cancel/Replace)."""


@dataclass(frozen=True, slots=True)
class CancelRejected(OrderEvent):
    reject: CancelReject


@dataclass(frozen=True, slots=True)
class PositionChanged(_StampedLater):
    """The account's net position in a market changed (a fill, or reconciliation said so)."""

    account: str
    ticker: str
    net_yes: Decimal  # contracts: positive = long YES, negative = long NO

    def describe(self) -> str:
        held = f"{self.net_yes} YES" if self.net_yes >= 0 else f"{-self.net_yes} NO"
        return f"position in {self.ticker}: {held}"


@dataclass(frozen=True, slots=True)
class UnmatchedReport(_StampedLater):
    """A report for no order this book knows (placed elsewhere, or lost from the journal)."""

    report: ExecutionReport | CancelReject

    def describe(self) -> str:
        r = self.report
        what = "execution report" if isinstance(r, ExecutionReport) else "cancel reject"
        order = f" (OrderID {r.order_id})" if r.order_id else ""
        return f"{what} for an order this book does not know: ClOrdID {r.cl_ord_id}{order}"


BookEvent = OrderEvent | PositionChanged | UnmatchedReport | MarketSettled


_STATUS_OF = {
    OrdStatus.NEW: Status.NEW,
    OrdStatus.PARTIALLY_FILLED: Status.PARTIALLY_FILLED,
    OrdStatus.FILLED: Status.FILLED,
    OrdStatus.CANCELED: Status.CANCELED,
    OrdStatus.PENDING_CANCEL: Status.PENDING_CANCEL,
    OrdStatus.REJECTED: Status.REJECTED,
    OrdStatus.PENDING_NEW: Status.PENDING_NEW,
    OrdStatus.EXPIRED: Status.EXPIRED,
    OrdStatus.PENDING_REPLACE: Status.PENDING_REPLACE,
}


_TRADE_FINAL = {OrdStatus.FILLED: Status.FILLED, OrdStatus.CANCELED: Status.CANCELED, OrdStatus.EXPIRED: Status.EXPIRED}


def _working_status(cum_qty: Decimal) -> Status:
    return Status.PARTIALLY_FILLED if cum_qty > 0 else Status.NEW


# What the exchange reports under a replace's ClOrdID only once the replace is done (its PendingReplace
# comes under that ClOrdID too, before).
_AFTER_A_REPLACE = frozenset({ExecType.TRADE, ExecType.CANCELED, ExecType.EXPIRED})


def _quantities(order: Order, r: ExecutionReport, *, terminal: bool = False) -> dict[str, Decimal | None]:
    """The order's quantities after report ``r``. CumQty only grows on the exchange, so a report
    that says less than the book knows (a heal, or a fill counted by an earlier report) is older
    news: the book keeps what it has."""
    if r.cum_qty < order.cum_qty:
        return dict(quantity=order.quantity, cum_qty=order.cum_qty, leaves_qty=order.leaves_qty,
                    avg_yes_price=order.avg_yes_price)
    return dict(
        quantity=r.order_qty,
        cum_qty=r.cum_qty,
        leaves_qty=ZERO if terminal else r.leaves_qty,
        avg_yes_price=r.avg_yes_price if r.avg_yes_price is not None else order.avg_yes_price,
    )


def _revives(order: Order, r: ExecutionReport) -> bool:
    """A report proving that an order the book gave up as never received is on the exchange
    (reconciliation rejected it before its ack arrived): the exchange is right, the order lives."""
    return (order.status is Status.REJECTED and order.order_id is None and bool(r.order_id)
            and r.exec_type is not ExecType.REJECTED)


@dataclass
class OrderBook:
    orders: dict[str, Order] = field(default_factory=dict)
    positions: dict[tuple[str, str], Decimal] = field(default_factory=dict)  # (account, ticker) -> net YES
    _keys: dict[str, str] = field(default_factory=dict)  # every ClOrdID ever used -> order key
    _by_order_id: dict[str, str] = field(default_factory=dict)
    _seen: set[tuple[int, str]] = field(default_factory=set)  # (shard, ExecID) applied
    # (OrderID, TrdMatchID) of fills applied: a fill healed by reconciliation and then resent by
    # the exchange under its own ExecID is still one fill
    _trades: set[tuple[str, str]] = field(default_factory=set)
    # (account, shard) -> the latest ExecID applied: where a drop-copy replay starts (fixengine.orders.drop_copy)
    last_exec_ids: dict[tuple[str, int], str] = field(default_factory=dict)
    # cash the reports moved and markets settled (35=UMS), per account: fixengine.orders.settlement
    ledger: Ledger = field(default_factory=Ledger)

    # --- intents (journaled by the engine before they are sent) ------------------------------

    def submit(self, request: NewOrder, account: str = "") -> Order:
        cl_ord_id = request.client_order_id
        if cl_ord_id in self._keys:
            existing = self.orders[self._keys[cl_ord_id]]
            if existing.key == cl_ord_id and existing.retryable:
                return existing  # a retry after an unknown outcome reuses the ClOrdID
            raise BookError(f"client_order_id {cl_ord_id} was used before; ClOrdIDs are unique forever")
        quote = request.yes_quote
        order = Order(
            key=cl_ord_id,
            account=account,
            ticker=request.ticker,
            action=request.action,
            contract=request.contract,
            side=quote.side,
            yes_price=quote.yes_price,
            quantity=request.quantity,
            cl_ord_id=cl_ord_id,
            leaves_qty=request.quantity,
            order_group_id=request.order_group_id,
        )
        self._keys[cl_ord_id] = cl_ord_id
        self.orders[cl_ord_id] = order
        return order

    def _live(self, key: str) -> Order:
        order = self.orders.get(self._keys.get(key, key))
        if order is None:
            raise BookError(f"no order {key}")
        if order.status.terminal:
            raise BookError(f"order {key} is {order.status.value}; nothing to change")
        if order.pending is not None:
            raise BookError(f"order {key} already has a cancel/replace in flight ({order.pending})")
        return order

    def _request_change(self, key: str, cl_ord_id: str, status: Status) -> Order:
        order = self._live(key)
        if cl_ord_id in self._keys:
            raise BookError(f"client_order_id {cl_ord_id} was used before; ClOrdIDs are unique forever")
        self._keys[cl_ord_id] = order.key
        changed = evolve(order, pending=cl_ord_id, resting_status=order.status, status=status)
        self.orders[order.key] = changed
        return changed

    def cancel(self, key: str, cl_ord_id: str) -> Order:
        return self._request_change(key, cl_ord_id, Status.PENDING_CANCEL)

    def replace(self, key: str, cl_ord_id: str, quantity: Decimal | None = None) -> Order:
        order = self._live(key)
        if quantity is not None and quantity < order.cum_qty:
            raise BookError(f"quantity {quantity} is below the {order.cum_qty} already filled")
        return self._request_change(key, cl_ord_id, Status.PENDING_REPLACE)

    # --- what the exchange said ---------------------------------------------------------------

    def key_for(self, report: ExecutionReport | CancelReject) -> str | None:
        if report.order_id and report.order_id in self._by_order_id:
            return self._by_order_id[report.order_id]
        for cl in (report.cl_ord_id, report.orig_cl_ord_id):
            if cl is not None and cl in self._keys:
                return self._keys[cl]
        return None

    def _twin(self, order: Order, report: ExecutionReport) -> str:
        """A report of a second exchange order under an order's first ClOrdID: Kalshi refuses a
        duplicate ClOrdID only while the first order is open, so a retry after an unknown outcome
        can create one when the first had already ended. Tracked as an order of its own."""
        key = f"{order.key}@{report.order_id}"
        self.orders[key] = evolve(order, key=key, order_id=report.order_id, status=Status.PENDING_NEW,
                                   quantity=report.order_qty, cum_qty=ZERO, leaves_qty=report.order_qty,
                                   avg_yes_price=None, pending=None, resting_status=None, reason=None,
                                   outcome_unknown=False, unconfirmed=False)
        self._by_order_id[report.order_id] = key
        return key

    def _note_exec_id(self, account: str, exec_id: str) -> None:
        position = exec_position(exec_id)
        if position is None:
            return
        latest = self.last_exec_ids.get((account, position[0]))
        if latest is None or position > (exec_position(latest) or position):
            self.last_exec_ids[(account, position[0])] = exec_id

    def _adopt(self, r: ExecutionReport) -> str:
        """An order of the account entered elsewhere (another key, a listener's or drop copy's view):
        tracked from its first report, as the YES book sees it, under ``external:OrderID``."""
        key = f"{EXTERNAL_PREFIX}{r.order_id}"
        action = Action.BUY if r.side is WireSide.BUY_YES else Action.SELL
        yes_price = r.yes_price if r.yes_price is not None else (r.avg_yes_price or ZERO)
        self.orders[key] = Order(key=key, account=r.account or "", ticker=r.ticker, action=action, contract=Contract.YES,
                                 side=r.side, yes_price=yes_price, quantity=r.order_qty, cl_ord_id=r.cl_ord_id,
                                 order_id=r.order_id, leaves_qty=r.order_qty, external=True)
        self._by_order_id[r.order_id] = key
        return key

    def apply(self, report: ExecutionReport | CancelReject | BusinessReject | SettlementReport, *,
              heal: bool = False) -> list[BookEvent]:
        """Apply one report; return what changed. A report seen before changes nothing.

        Reports and heals compose without double counting: quantities are absolute and only move
        forward (a report older than what the book knows keeps the book's quantities), a fill is
        counted once by its TrdMatchID whoever reports it, and a fill is recorded even on an order
        already terminal (its report was lost and a heal brings it later). A heal (``heal=True``,
        from reconciliation) leaves positions alone: the exchange's own position is set with it."""
        if isinstance(report, CancelReject):
            return self._apply_cancel_reject(report)
        if isinstance(report, BusinessReject):
            return self._apply_business_reject(report)
        if isinstance(report, SettlementReport):
            return self._apply_settlement(report)
        key = report.dedupe_key
        if key is not None:
            if key in self._seen:
                return []
            self._seen.add(key)
            if report.account is not None:
                self._note_exec_id(report.account, report.exec_id)
        trade = (report.order_id, report.fill.trade_id) if report.fill is not None and report.fill.trade_id else None
        if trade is not None:
            if trade in self._trades:
                return []
            self._trades.add(trade)
        order_key = self.key_for(report)
        if order_key is None:
            if report.account is None or not report.order_id or report.exec_type is ExecType.REJECTED:
                return [UnmatchedReport(report)]
            order_key = self._adopt(report)
        before = self.orders[order_key]
        if before.order_id and report.order_id and report.order_id != before.order_id and report.exec_type is not ExecType.REJECTED:
            order_key = self._twin(before, report)
            before = self.orders[order_key]
        events: list[BookEvent] = []
        if before.status.terminal and not _revives(before, report):
            if report.fill is None:
                return []  # terminal states absorb: nothing after Filled/Canceled/Rejected/Expired ...
            # ... but a fill that happened is a fill: recorded, the order stays as it ended
            order = evolve(before, **_quantities(before, report, terminal=True))
            events.append(OrderFilled(order, report.fill))
        else:
            # news of it: current again, and no longer of unknown outcome; its OrderID, unless this
            # is a reject (an order refused, or of unknown outcome, has no OrderID to go by)
            learnt = report.order_id if report.exec_type is not ExecType.REJECTED else None
            order = evolve(before, order_id=before.order_id or learnt or None, unconfirmed=False, outcome_unknown=False)
            order = self._transition(order, report, events, was_unknown=before.outcome_unknown)
        if order.order_id is not None:
            self._by_order_id[order.order_id] = order_key
        self.orders[order_key] = order
        if report.fill is not None and not heal:
            events.extend(self._position_after(order, report))
            if report.fill.balance_change is not None:  # counted once: a fill seen before returned above
                self.ledger.credit(order.account, report.fill.balance_change)
        return events

    def _transition(self, order: Order, r: ExecutionReport, events: list[BookEvent], was_unknown: bool) -> Order:
        if order.status is Status.PENDING_REPLACE and r.cl_ord_id == order.pending and r.exec_type in _AFTER_A_REPLACE:
            # A fill, cancel or expiry under the replace's ClOrdID: the replace happened on the
            # exchange and its own answer was lost. The order is the replaced one from here on.
            order = evolve(order, cl_ord_id=r.cl_ord_id, status=order.resting_status or order.status, pending=None,
                           resting_status=None, yes_price=r.yes_price if r.yes_price is not None else order.yes_price)
        quantities = _quantities(order, r)
        cum = quantities["cum_qty"]
        t = r.exec_type
        if t is ExecType.PENDING_NEW:
            if order.status is Status.PENDING_NEW:  # a resent PendingNew must not undo the New after it
                events.append(OrderPending(order))
        elif t is ExecType.NEW:
            order = evolve(order, **quantities, status=_working_status(cum) if order.pending is None else order.status)
            if order.pending is not None:
                order = evolve(order, resting_status=_working_status(cum))
            events.append(OrderAccepted(order))
        elif t is ExecType.TRADE:
            # A Trade may carry the final state: Filled, or Canceled for the rest of an IOC.
            status = _TRADE_FINAL.get(r.ord_status) or (
                Status.FILLED if quantities["leaves_qty"] == 0 else Status.PARTIALLY_FILLED
            )
            if order.pending is not None and not status.terminal:
                # a cancel/replace is still in flight: keep that status, remember the fill
                order = evolve(order, **quantities, resting_status=status)
            else:
                order = evolve(order, **quantities, status=status, pending=None, resting_status=None)
            assert r.fill is not None, "a Trade report carries its fill"
            events.append(OrderFilled(order, r.fill))
        elif t is ExecType.CANCELED:
            quantities["leaves_qty"] = ZERO
            order = evolve(order, **quantities, status=Status.CANCELED, pending=None, resting_status=None, reason=r.reason)
            events.append(OrderCanceled(order))
        elif t is ExecType.EXPIRED:
            quantities["leaves_qty"] = ZERO
            order = evolve(order, **quantities, status=Status.EXPIRED, pending=None, resting_status=None, reason=r.reason)
            events.append(OrderExpired(order))
        elif t is ExecType.REPLACED:
            order = evolve(
                order,
                **quantities,
                cl_ord_id=r.cl_ord_id,
                yes_price=r.yes_price if r.yes_price is not None else order.yes_price,
                status=Status.FILLED if quantities["leaves_qty"] == 0 else _working_status(cum),
                pending=None,
                resting_status=None,
            )
            events.append(OrderReplaced(order))
        elif t in (ExecType.PENDING_CANCEL, ExecType.PENDING_REPLACE):
            if order.pending is not None:  # only while a request is in flight (not a resent copy)
                order = evolve(order, status=_STATUS_OF.get(r.ord_status, order.status))
                events.append(OrderPending(order))
        elif t is ExecType.REJECTED:
            unknown = r.reason is not None and r.reason.code.outcome_unknown
            exists = r.reason is not None and r.reason.code is RejectCode.ORDER_ALREADY_EXISTS
            if order.order_id is not None:
                # The exchange acknowledged this order: a reject can only be of a retry of it
                # (ORDER_ALREADY_EXISTS) and changes nothing.
                return evolve(order, outcome_unknown=False)
            if exists and was_unknown and order.status is Status.PENDING_NEW:
                # A retry of an order whose first send had an unknown outcome: the exchange has it
                # (open). It lives; its reports (or reconciliation) tell the rest.
                order = evolve(order, status=Status.NEW, reason=r.reason, unconfirmed=True)
            elif unknown:
                # Not known to be dead: keep it pending; a retry may reuse the ClOrdID.
                order = evolve(order, status=Status.PENDING_NEW, outcome_unknown=True, reason=r.reason)
            else:
                order = evolve(order, status=Status.REJECTED, leaves_qty=ZERO, pending=None, resting_status=None,
                                reason=r.reason)
            events.append(OrderRejected(order))
        return order

    def _apply_cancel_reject(self, reject: CancelReject) -> list[BookEvent]:
        order_key = self.key_for(reject)
        if order_key is None:
            return [UnmatchedReport(reject)]
        order = self.orders[order_key]
        if order.pending == reject.cl_ord_id:
            # The cancel/replace failed: the order is as it was before the request.
            order = evolve(order, status=order.resting_status or order.status, pending=None, resting_status=None)
            self.orders[order_key] = order
        return [CancelRejected(order, reject)]

    def _apply_business_reject(self, reject: BusinessReject) -> list[BookEvent]:
        order_key = self._keys.get(reject.cl_ord_id)
        if order_key is None:
            return []  # not an order request of ours (the engine publishes the reject itself)
        order = self.orders[order_key]
        if reject.ref_msg_type == "D":
            if order.order_id is not None or Status.PENDING_NEW not in (order.status, order.resting_status):
                return []  # the exchange has it after all: its reports decide
            order = evolve(order, status=Status.REJECTED, leaves_qty=ZERO, reason=reject.reason, outcome_unknown=False,
                            pending=None, resting_status=None)
            self.orders[order_key] = order
            return [OrderRejected(order)]
        response_to = CxlRejResponseTo.CANCEL if reject.ref_msg_type == "F" else CxlRejResponseTo.REPLACE
        return self._apply_cancel_reject(
            CancelReject(reject.cl_ord_id, order.cl_ord_id, order.order_id, None, response_to, reject.reason)
        )

    def _apply_settlement(self, report: SettlementReport) -> list[BookEvent]:
        """A settlement report: the account's position in the market is closed, the payout credited.
        A page applied before (its 20105) changes nothing; the pages of a batch add up."""
        settled = self.ledger.settle(report)
        if settled is None:
            return []
        return [*self.set_position(report.account, report.ticker, ZERO), settled]

    def _position_after(self, order: Order, r: ExecutionReport) -> list[BookEvent]:
        assert r.fill is not None
        if r.long_qty is not None and r.short_qty is not None:
            net = r.long_qty - r.short_qty  # Kalshi's own position after the trade
        else:
            change = r.fill.quantity if order.side is WireSide.BUY_YES else -r.fill.quantity
            net = self.positions.get((order.account, order.ticker), ZERO) + change
        if self.positions.get((order.account, order.ticker)) == net:
            return []
        self.positions[(order.account, order.ticker)] = net
        return [PositionChanged(order.account, order.ticker, net)]

    # --- views ----------------------------------------------------------------------------------

    def yes_price_for(self, key: str, price: Decimal) -> Decimal:
        """A new price for an order, given in its own contract (as ``ReplaceOrder.price``), on the YES book."""
        order = self.order(key)
        return to_yes_book(order.action, order.contract, price).yes_price

    def order(self, key: str) -> Order:
        found = self.orders.get(self._keys.get(key, key))
        if found is None:
            raise BookError(f"no order {key}")
        return found

    def mark_unconfirmed(self, keys: Iterable[str] | None = None) -> list[Order]:
        """Orders still waiting for their first report (all, or those of ``keys``) become
        outcome-unknown: after a restart, or when a send may not have reached the exchange."""
        marked = []
        candidates = self.orders.items() if keys is None else [(k, self.orders[k]) for k in keys if k in self.orders]
        for key, order in candidates:
            if order.status is Status.PENDING_NEW and order.order_id is None and not order.outcome_unknown:
                self.orders[key] = evolve(order, outcome_unknown=True)
                marked.append(self.orders[key])
        return marked

    def mark_stale(self, account: str) -> list[Order]:
        """Reports for ``account`` may have been lost (a logon with sequence reset after a gap or a
        disconnect): its live orders become unconfirmed; those never acknowledged, outcome-unknown."""
        marked = []
        for key, order in self.orders.items():
            if order.account != account or order.status.terminal:
                continue
            if order.status is Status.PENDING_NEW and order.order_id is None:
                self.orders[key] = evolve(order, outcome_unknown=True)
            else:
                self.orders[key] = evolve(order, unconfirmed=True)
            marked.append(self.orders[key])
        return marked

    def confirm(self, account: str) -> None:
        """The account's orders are known to be right again (reconciled)."""
        for key, order in self.orders.items():
            if order.account == account and order.unconfirmed:
                self.orders[key] = evolve(order, unconfirmed=False)

    def heal(self, heal: ExecutionReport | CancelReject | PositionFix) -> list[BookEvent]:
        """Apply a heal from reconciliation (``fixengine.reconcile``)."""
        if isinstance(heal, PositionFix):
            return self.set_position(heal.account, heal.ticker, heal.net_yes)
        return self.apply(heal, heal=True)

    def has_trade(self, order_id: str, trade_id: str) -> bool:
        """Whether the fill ``trade_id`` (TrdMatchID, REST trade_id) of ``order_id`` is in the book."""
        return (order_id, trade_id) in self._trades

    def set_position(self, account: str, ticker: str, net_yes: Decimal) -> list[BookEvent]:
        """Reconciliation: the exchange says so (e.g. a settlement no report brought), or a settlement report."""
        if self.positions.get((account, ticker), ZERO) == net_yes:
            return []
        self.positions[(account, ticker)] = net_yes
        return [PositionChanged(account, ticker, net_yes)]

    def position(self, account: str, ticker: str) -> Decimal:
        """Net YES contracts the account holds in the market (negative: NO)."""
        return self.positions.get((account, ticker), ZERO)

    def cash(self, account: str) -> Decimal:
        """Dollars the account's reports moved since the journal began: fills' balance changes (1704
        BALANCE) and settlement payouts. Not its balance, which FIX never reports."""
        return self.ledger.cash.get(account, ZERO)

    def settlement(self, account: str, ticker: str) -> SettledMarket | None:
        """The account's settlement of the market as its settlement reports said (pages summed), if any came."""
        return self.ledger.settled.get((account, ticker))

    def open_orders(self) -> Iterable[Order]:
        return (o for o in self.orders.values() if not o.status.terminal)
