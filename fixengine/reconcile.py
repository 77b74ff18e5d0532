"""Reconciliation: the engine's book against what Kalshi's REST API says, as a pure comparison.

``reconcile(book, account, snapshot)`` does no I/O. It matches the account's orders (by order_id,
then client_order_id), its fills (by order_id and trade_id) and its positions against a REST
``Snapshot`` and returns ``Findings``: typed discrepancies with a severity, and the heals for the
ones it can explain, as reports to journal and apply (``Heal``). What it cannot explain it reports
and leaves alone: a human decides.

Explained, healed (Kalshi spec §6, §12):
- an order the exchange acknowledged whose ack we never read (a reset logon lost it);
- an order the exchange never received (journaled, then the process or the session died);
- fills we never heard of (a gap on a session without retransmission, or a fill behind our back);
- a cancel done elsewhere (the web app, another client, the exchange);
- a settled market: the position goes to zero;
- a cancel or replace whose answer was lost (it happened: applied) or that never arrived (the
  order is as it was), once it is old enough that the exchange has certainly seen it
  (``settled_requests``; a request still in flight is left alone).
Not explained, reported: a resting order the book does not know, an order whose quantities or
price disagree beyond its fills, a live order the exchange does not know, a position that still
differs after the heals.

Healing reports carry ExecIDs starting ``rec:`` so that they are told apart in the journal and can
never collide with the exchange's own (``clock;event``).
"""

from __future__ import annotations

import copy
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import Enum

from fixengine.orders.book import Order, OrderBook, Status
from fixengine.orders.reports import (
    CancelReject,
    CxlRejResponseTo,
    ExecType,
    ExecutionReport,
    Fill,
    OrdStatus,
    PositionFix,
    Reason,
    RejectCode,
)
from fixengine.rest.models import Fill as RestFill
from fixengine.rest.models import Order as RestOrder
from fixengine.rest.models import Settlement

ZERO = Decimal(0)
HEAL_PREFIX = "rec:"


class Severity(str, Enum):
    INFO = "info"  # healed, nothing to do
    WARNING = "warning"  # healed, but someone should know (e.g. a cancel done elsewhere)
    ERROR = "error"  # not explained: the book is left as it was


class Kind(str, Enum):
    ACK_MISSED = "ack_missed"
    REPLACE_MISSED = "replace_missed"  # the replace happened; its answer was lost
    REQUEST_LOST = "request_lost"  # a cancel or replace that never reached the exchange
    NEVER_RECEIVED = "never_received"
    FILL_MISSED = "fill_missed"
    CANCELED_ELSEWHERE = "canceled_elsewhere"
    SETTLED = "settled"
    UNKNOWN_ORDER = "unknown_order"  # resting on the exchange, not in the book
    ORDER_MISMATCH = "order_mismatch"
    ORDER_MISSING = "order_missing"  # live in the book, unknown to the exchange
    POSITION_MISMATCH = "position_mismatch"


@dataclass(frozen=True, slots=True)
class Discrepancy:
    kind: Kind
    severity: Severity
    ticker: str
    detail: str
    order_id: str | None = None
    client_order_id: str | None = None
    healed: bool = False

    def describe(self) -> str:
        who = self.order_id or self.client_order_id or self.ticker
        state = "healed" if self.healed else "NOT healed"
        return f"{self.severity.value}: {self.kind.value} {who}: {self.detail} ({state})"


Heal = ExecutionReport | CancelReject | PositionFix


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One account as Kalshi's REST API showed it, ``as_of`` (``/exchange/user_data_timestamp``).

    ``orders``: every resting order, plus those the book holds live that are no longer resting
    (fetched one by one); ``missing``: order_ids the exchange answered 404 for. ``fills`` and
    ``settlements`` since the checkpoint."""

    as_of: datetime
    orders: Sequence[RestOrder]
    fills: Sequence[RestFill]
    positions: dict[str, Decimal]  # ticker -> position_fp
    settlements: Sequence[Settlement] = ()
    missing: frozenset[str] = frozenset()
    balance: Decimal | None = None  # dollars; shown, not compared (FIX carries no absolute cash)


@dataclass
class Findings:
    discrepancies: list[Discrepancy] = field(default_factory=list)
    heals: list[Heal] = field(default_factory=list)
    balance: Decimal | None = None  # the account's cash on the exchange (dollars), for the record

    @property
    def clean(self) -> bool:
        """Nothing left unexplained (healed findings are fine)."""
        return not self.unexplained

    @property
    def unexplained(self) -> list[Discrepancy]:
        return [d for d in self.discrepancies if not d.healed]


def reconcile(book: OrderBook, account: str, snapshot: Snapshot, settled_requests: Collection[str] | None = None) -> Findings:
    """Compare ``account``'s part of ``book`` with ``snapshot``; ``book`` is not changed.

    ``settled_requests``: ClOrdIDs of pending cancels/replaces sent long enough before the snapshot
    that the exchange has answered them; None: every pending one (the engine is not running)."""
    work = copy.deepcopy(book)  # heals are tried on a copy, so positions are compared after them
    findings = Findings(balance=snapshot.balance)
    mine = [o for o in work.orders.values() if o.account == account]
    by_order_id = {o.order_id: o for o in mine if o.order_id}
    by_client_id: dict[str, Order] = {}
    for o in mine:
        by_client_id[o.key] = o
        by_client_id[o.cl_ord_id] = o
    fills_by_order: dict[str, list[RestFill]] = {}
    for f in sorted(snapshot.fills, key=lambda f: f.created_time):
        fills_by_order.setdefault(f.order_id, []).append(f)

    matched: set[str] = set()
    for rest in snapshot.orders:
        ours = by_order_id.get(rest.order_id) or by_client_id.get(rest.client_order_id or "")
        if ours is None:
            if rest.status == "resting":
                findings.discrepancies.append(Discrepancy(
                    Kind.UNKNOWN_ORDER, Severity.ERROR, rest.ticker,
                    f"resting {rest.remaining_count_fp} @ {rest.yes_price_dollars} (YES), placed outside this engine",
                    rest.order_id, rest.client_order_id or None,
                ))
            continue
        matched.add(ours.key)
        _order(work, ours.key, rest, fills_by_order.get(rest.order_id, []), findings)
        _pending(work, ours.key, rest, settled_requests, findings)

    for order in mine:
        if order.key in matched or order.status.terminal:
            continue
        if order.order_id is None and order.status is Status.PENDING_NEW:
            _never_received(work, order, findings)
        elif order.order_id is not None:
            why = "the exchange does not know it (404)" if order.order_id in snapshot.missing else "not in the snapshot"
            findings.discrepancies.append(Discrepancy(
                Kind.ORDER_MISSING, Severity.ERROR, order.ticker, f"{order.status.value} in the book; {why}",
                order.order_id, order.key,
            ))

    _positions(work, account, snapshot, findings)
    return findings


# --- orders ---------------------------------------------------------------------------------------


def _order(work: OrderBook, key: str, rest: RestOrder, fills: list[RestFill], findings: Findings) -> None:
    order = work.order(key)
    if order.status.terminal:
        return
    if order.order_id is None:
        # acknowledged as entered; its fills (below) and a cancel follow as their own heals
        _heal(work, findings, _report(order, rest, ExecType.NEW, OrdStatus.NEW, ZERO, leaves=order.quantity),
              Discrepancy(Kind.ACK_MISSED, Severity.INFO, rest.ticker, "acknowledged by the exchange; the ack was never read",
                          rest.order_id, order.key, healed=True))
        order = work.order(key)
    if order.status is Status.PENDING_REPLACE and order.pending is not None and rest.yes_price_dollars != order.yes_price:
        # The exchange has the new price: the replace happened (before any fill at that price).
        _heal(work, findings, _replaced(order, rest, order.cum_qty, _total(rest) - order.cum_qty), _replace_missed(order, rest))
    for fill in fills:
        if work.has_trade(rest.order_id, fill.trade_id):
            continue
        order = work.order(key)
        cum = order.cum_qty + fill.count_fp
        leaves = max(ZERO, order.leaves_qty - fill.count_fp)
        status = OrdStatus.FILLED if leaves == 0 else OrdStatus.PARTIALLY_FILLED
        report = _report(order, rest, ExecType.TRADE, status, cum, leaves=leaves, fill=Fill(
            exec_id=f"{HEAL_PREFIX}{rest.order_id}:{fill.trade_id}", trade_id=fill.trade_id, yes_price=fill.yes_price_dollars,
            quantity=fill.count_fp, fee=fill.fee_cost, aggressor=fill.is_taker,
        ))
        _heal(work, findings, report, Discrepancy(
            Kind.FILL_MISSED, Severity.WARNING, rest.ticker, f"fill {fill.trade_id}: {fill.count_fp} @ {fill.yes_price_dollars}",
            rest.order_id, order.key, healed=True,
        ))
    order = work.order(key)
    if order.status.terminal:
        return
    if rest.status == "canceled":
        _heal(work, findings, _report(order, rest, ExecType.CANCELED, OrdStatus.CANCELED, order.cum_qty, leaves=ZERO),
              Discrepancy(Kind.CANCELED_ELSEWHERE, Severity.WARNING, rest.ticker,
                          f"canceled on the exchange with {rest.fill_count_fp} filled", rest.order_id, order.key, healed=True))
        order = work.order(key)
    if order.cum_qty != rest.fill_count_fp or (rest.status == "resting" and order.leaves_qty != rest.remaining_count_fp):
        findings.discrepancies.append(Discrepancy(
            Kind.ORDER_MISMATCH, Severity.ERROR, rest.ticker,
            f"book filled {order.cum_qty} leaving {order.leaves_qty}; exchange {rest.status}, filled "
            f"{rest.fill_count_fp} leaving {rest.remaining_count_fp} (fills missing from the snapshot?)",
            rest.order_id, order.key,
        ))
    elif order.yes_price != rest.yes_price_dollars and order.pending is None:
        findings.discrepancies.append(Discrepancy(
            Kind.ORDER_MISMATCH, Severity.ERROR, rest.ticker,
            f"book price {order.yes_price}, exchange {rest.yes_price_dollars} (YES)", rest.order_id, order.key,
        ))


def _pending(work: OrderBook, key: str, rest: RestOrder, settled: Collection[str] | None, findings: Findings) -> None:
    """A cancel or replace still pending in the book on an order the exchange shows resting."""
    order = work.order(key)
    if order.pending is None or order.status.terminal or rest.status != "resting":
        return
    if settled is not None and order.pending not in settled:
        return  # still in flight: its answer may be on its way
    replaced = order.status is Status.PENDING_REPLACE and (
        rest.yes_price_dollars != order.yes_price or rest.fill_count_fp + rest.remaining_count_fp != order.quantity
    )
    if replaced:
        heal: Heal = _replaced(order, rest, rest.fill_count_fp, rest.remaining_count_fp)
        finding = _replace_missed(order, rest)
    else:
        what = "cancel" if order.status is Status.PENDING_CANCEL else "replace"
        heal = CancelReject(
            cl_ord_id=order.pending, orig_cl_ord_id=order.cl_ord_id, order_id=rest.order_id, ord_status=None,
            response_to=CxlRejResponseTo.CANCEL if what == "cancel" else CxlRejResponseTo.REPLACE,
            reason=Reason(RejectCode.OTHER, None, f"the {what} never reached the exchange (reconciliation)"),
        )
        finding = Discrepancy(Kind.REQUEST_LOST, Severity.WARNING, rest.ticker,
                              f"the {what} {order.pending} never reached the exchange: the order is as it was",
                              rest.order_id, order.key, healed=True)
    _heal(work, findings, heal, finding)


def _total(rest: RestOrder) -> Decimal:
    return rest.fill_count_fp + rest.remaining_count_fp


def _replaced(order: Order, rest: RestOrder, cum: Decimal, leaves: Decimal) -> ExecutionReport:
    """The Replaced report we never read: the pending ClOrdID, the exchange's price and size."""
    assert order.pending is not None
    return ExecutionReport(
        exec_id=f"{HEAL_PREFIX}{rest.order_id}:{order.pending}", exec_type=ExecType.REPLACED,
        ord_status=OrdStatus.PARTIALLY_FILLED if cum else OrdStatus.NEW, order_id=rest.order_id,
        cl_ord_id=order.pending, orig_cl_ord_id=order.cl_ord_id, ticker=order.ticker, side=order.side,
        order_qty=cum + leaves, cum_qty=cum, leaves_qty=leaves, yes_price=rest.yes_price_dollars,
    )


def _replace_missed(order: Order, rest: RestOrder) -> Discrepancy:
    return Discrepancy(Kind.REPLACE_MISSED, Severity.INFO, rest.ticker,
                       f"replaced to {_total(rest)} @ {rest.yes_price_dollars} (YES); the answer was never read",
                       rest.order_id, order.key, healed=True)


def _never_received(work: OrderBook, order: Order, findings: Findings) -> None:
    report = ExecutionReport(
        exec_id=f"{HEAL_PREFIX}{order.key}:absent", exec_type=ExecType.REJECTED, ord_status=OrdStatus.REJECTED,
        order_id="", cl_ord_id=order.cl_ord_id, orig_cl_ord_id=None, ticker=order.ticker, side=order.side,
        order_qty=order.quantity, cum_qty=ZERO, leaves_qty=ZERO,
        reason=Reason(RejectCode.OTHER, None, "not on the exchange (reconciliation): it never arrived"),
    )
    _heal(work, findings, report, Discrepancy(
        Kind.NEVER_RECEIVED, Severity.WARNING, order.ticker, "sent (or about to be) but not on the exchange: rejected",
        None, order.key, healed=True,
    ))


def _report(order: Order, rest: RestOrder, exec_type: ExecType, status: OrdStatus, cum: Decimal, *,
            leaves: Decimal | None = None, fill: Fill | None = None) -> ExecutionReport:
    if leaves is None:
        leaves = rest.remaining_count_fp
    suffix = fill.exec_id if fill is not None else f"{HEAL_PREFIX}{rest.order_id}:{exec_type.name.lower()}"
    return ExecutionReport(
        exec_id=suffix, exec_type=exec_type, ord_status=status, order_id=rest.order_id, cl_ord_id=order.cl_ord_id,
        orig_cl_ord_id=None, ticker=order.ticker, side=order.side, order_qty=cum + leaves, cum_qty=cum,
        leaves_qty=leaves, yes_price=rest.yes_price_dollars, fill=fill,
    )


def _heal(work: OrderBook, findings: Findings, heal: Heal, finding: Discrepancy) -> None:
    work.heal(heal)
    findings.heals.append(heal)
    findings.discrepancies.append(finding)


# --- positions ------------------------------------------------------------------------------------


def _positions(work: OrderBook, account: str, snapshot: Snapshot, findings: Findings) -> None:
    settled = {s.ticker for s in snapshot.settlements}
    tickers = {t for (a, t) in work.positions if a == account} | set(snapshot.positions)
    for ticker in sorted(tickers):
        ours, theirs = work.position(account, ticker), snapshot.positions.get(ticker, ZERO)
        if ours == theirs:
            continue
        if ticker in settled and theirs == 0:
            _heal(work, findings, PositionFix(account, ticker, ZERO), Discrepancy(
                Kind.SETTLED, Severity.INFO, ticker, f"market settled: position {ours} closed", healed=True,
            ))
            continue
        findings.discrepancies.append(Discrepancy(
            Kind.POSITION_MISMATCH, Severity.ERROR, ticker, f"book {ours} vs exchange {theirs} (YES contracts, net)",
        ))


__all__ = ["HEAL_PREFIX", "Discrepancy", "Findings", "Heal", "Kind", "PositionFix", "Severity", "Snapshot", "reconcile"]
