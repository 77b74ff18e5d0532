"""The reference client's order book: pure, fed what it sent, what came back and what REST says.

An order is known by its first ClOrdID (its key); cancels and replaces add ClOrdIDs to it. Filled
quantity is the sum of the fills applied (LastQty of each Trade report), so a fill applied twice
shows in ``cum_qty``: execution reports are applied once per ExecID (pending reports, ExecID
``-1;-1``, are never deduplicated), and a PossDup copy of one already seen is ignored, unless the
``double-count-possdup`` fault says otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from fixengine.fix import tags as t
from fixengine.orders.reports import PENDING_EXEC_ID
from fixengine.rest.models import RestFill, RestOrder

ZERO = Decimal(0)
UNKNOWN_OUTCOME = "EXCHANGE_UNAVAILABLE"  # a reject whose order may well be on the exchange (§11.4)
TERMINAL = frozenset({"filled", "canceled", "rejected", "expired"})
_STATUS = {"0": "new", "1": "partially_filled", "2": "filled", "4": "canceled", "6": "pending_cancel",
           "8": "rejected", "A": "pending_new", "C": "expired", "E": "pending_replace"}
_REST_STATUS = {"canceled": "canceled", "executed": "filled"}


@dataclass
class Order:
    key: str  # the first ClOrdID
    ticker: str
    contract: str  # yes or no: what the instructions' prices are of
    side: str  # 54: 1 buys YES, 2 sells YES
    quantity: Decimal  # OrderQty (38), the total
    yes_price: Decimal  # dollars
    time_in_force: str  # 59
    cl_ord_id: str  # the latest ClOrdID the exchange accepted
    status: str = "pending_new"
    order_id: str | None = None
    cum_qty: Decimal = ZERO
    reason: str | None = None
    pending: str | None = None  # ClOrdID of a cancel or replace in flight
    before_pending: str | None = None  # the status to go back to when that request is refused
    unknown_outcome: bool = False  # rejected EXCHANGE_UNAVAILABLE: reconcile, or retry the same ClOrdID

    @property
    def leaves_qty(self) -> Decimal:
        return ZERO if self.status in TERMINAL else max(self.quantity - self.cum_qty, ZERO)

    def state(self) -> dict[str, object]:
        """As the ``state`` answer reports it (``conformance.instructions.StateOrder``)."""
        return {"order": self.key, "order_id": self.order_id, "cl_ord_id": self.cl_ord_id, "ticker": self.ticker,
                "status": self.status, "cum_qty": self.cum_qty, "leaves_qty": self.leaves_qty, "reason": self.reason}


def _order_id(f: Mapping[int, str]) -> str | None:
    """OrderID (37), or None where Kalshi has none to give (a reject carries "NONE")."""
    value = f.get(t.ORDER_ID, "")
    return None if value in ("", "NONE") else value


def _working(order: Order) -> str:
    return "partially_filled" if order.cum_qty > 0 else "new"


@dataclass
class Book:
    orders: dict[str, Order] = field(default_factory=dict)
    positions: dict[str, Decimal] = field(default_factory=dict)  # ticker -> net YES
    keys: dict[str, str] = field(default_factory=dict)  # every ClOrdID used -> order key
    by_order_id: dict[str, str] = field(default_factory=dict)
    seen: set[str] = field(default_factory=set)  # ExecIDs applied

    # --- what the client sent ----------------------------------------------------------------

    def add(self, order: Order) -> None:
        self.orders[order.key] = order
        self.keys[order.key] = order.key

    def new_cl_ord_id(self, key: str, cl_ord_id: str) -> None:
        """The order is sent again under another ClOrdID (what the ``new-clordid-on-unknown`` fault does)."""
        order = self.orders[key]
        self.keys[cl_ord_id] = key
        order.cl_ord_id, order.unknown_outcome, order.status, order.reason = cl_ord_id, False, "pending_new", None

    def requested(self, key: str, cl_ord_id: str, status: str) -> None:
        """A cancel (``pending_cancel``) or replace (``pending_replace``) went out as ``cl_ord_id``."""
        order = self.orders[key]
        self.keys[cl_ord_id] = key
        order.pending, order.before_pending, order.status = cl_ord_id, order.status, status

    def refused(self, cl_ord_id: str, text: str) -> None:
        """A request was refused before the exchange took it (35=3 or 35=j naming it)."""
        order = self.order_for(cl_ord_id)
        if order is None:
            return
        if order.pending == cl_ord_id:
            order.status, order.pending = order.before_pending or _working(order), None
        elif order.order_id is None and order.status not in TERMINAL:
            order.status = "rejected"
        order.reason = text

    def order_for(self, *cl_ord_ids: str | None, order_id: str | None = None) -> Order | None:
        if order_id and order_id in self.by_order_id:
            return self.orders[self.by_order_id[order_id]]
        for cl in cl_ord_ids:
            if cl is not None and cl in self.keys:
                return self.orders[self.keys[cl]]
        return None

    # --- what the exchange said --------------------------------------------------------------

    def apply_report(self, f: Mapping[int, str], poss_dup: bool, *, apply_possdup_again: bool = False) -> Order | None:
        """An ExecutionReport (35=8); the order it changed, or None (a duplicate, or not ours)."""
        exec_id = f.get(t.EXEC_ID, "")
        if exec_id != PENDING_EXEC_ID:
            if exec_id in self.seen and not (poss_dup and apply_possdup_again):
                return None
            self.seen.add(exec_id)
        order_id = _order_id(f)
        order = self.order_for(f.get(t.CL_ORD_ID), f.get(t.ORIG_CL_ORD_ID), order_id=order_id)
        if order is None:
            return None
        if order_id is not None:
            order.order_id = order_id
            self.by_order_id[order_id] = order.key
        exec_type, text = f.get(t.EXEC_TYPE), f.get(t.TEXT) or None
        if exec_type == "F":
            filled = Decimal(f.get(t.LAST_QTY, "0"))
            order.cum_qty += filled
            self.positions[order.ticker] = self.positions.get(order.ticker, ZERO) + (filled if order.side == "1" else -filled)
        if f.get(t.ORDER_QTY):
            order.quantity = Decimal(f[t.ORDER_QTY])
        if order.pending is not None and exec_type in ("4", "5", "C"):  # the request in flight is settled
            if f.get(t.CL_ORD_ID) == order.pending:
                order.cl_ord_id = order.pending
            order.pending = None
        if exec_type == "5" and f.get(t.PRICE):
            order.yes_price = Decimal(f[t.PRICE]) / 100
        if exec_type == "8" and text is not None and UNKNOWN_OUTCOME in text:
            order.unknown_outcome, order.reason = True, text  # not terminal: its outcome is unknown
            return order
        status = _STATUS.get(f.get(t.ORD_STATUS, ""))
        order.status = status if status is not None else _working(order)
        if exec_type in ("8", "4", "C") and text:
            order.reason = text
        return order

    def apply_cancel_reject(self, f: Mapping[int, str]) -> Order | None:
        """An OrderCancelReject (35=9): the order is as it was before the request."""
        order = self.order_for(f.get(t.CL_ORD_ID), f.get(t.ORIG_CL_ORD_ID), order_id=_order_id(f))
        if order is None:
            return None
        status = _STATUS.get(f.get(t.ORD_STATUS, ""))
        order.status = status if status in TERMINAL else (order.before_pending or _working(order))
        order.pending, order.reason = None, f.get(t.TEXT) or order.reason
        return order

    def reconcile(self, rest_orders: Iterable[RestOrder], rest_fills: Iterable[RestFill]) -> list[str]:
        """Take the exchange's word (REST) for every order of ours it knows, and its fills for the
        positions. Returns the keys of orders sent that the exchange does not know."""
        known: set[str] = set()
        for rest in rest_orders:
            order = self.order_for(rest.client_order_id or None, order_id=rest.order_id)
            if order is None:
                continue
            known.add(order.key)
            order.order_id = rest.order_id
            self.by_order_id[rest.order_id] = order.key
            order.cum_qty = rest.fill_count_fp
            if rest.status == "resting":
                order.quantity = rest.fill_count_fp + rest.remaining_count_fp
            order.status = _REST_STATUS.get(rest.status) or _working(order)
            order.pending, order.unknown_outcome = None, False
        positions: dict[str, Decimal] = {}
        for fill in rest_fills:
            signed = fill.count_fp if fill.book_side == "bid" else -fill.count_fp
            positions[fill.ticker] = positions.get(fill.ticker, ZERO) + signed
        self.positions = positions
        return [o.key for o in self.orders.values() if o.key not in known and o.order_id is None
                and o.status not in TERMINAL]
