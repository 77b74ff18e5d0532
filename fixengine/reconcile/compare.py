"""Reconciliation: the engine's book against what Kalshi's REST API says, as a pure comparison.

``reconcile(book, account, snapshot)`` does no I/O. It matches the account's orders (by order_id,
then client_order_id), its fills (by order_id and trade_id) and its positions against a REST
``Snapshot`` and returns ``Findings``: typed discrepancies with a severity, and the heals for the
ones it can explain, as reports to journal and apply (``Heal``). What it cannot explain it reports
and leaves alone: a human decides.

Explained, healed (Kalshi spec §6, §12):
- an order the exchange acknowledged whose ack we never read (a reset logon lost it), also one
  whose PendingNew we read;
- an order the exchange never received (journaled, then the process or the session died), also
  one with a cancel or replace that never went out either; judged only once it was sent long
  enough before the snapshot (a request in flight is left alone);
- fills we never heard of (a gap on a session without retransmission, or a fill behind our back),
  also of orders that ended since; each heal carries the cumulative quantity as of its fill, so a
  report that already counted it is not counted again; where fills were healed the position is
  set to the exchange's (Trade reports carry positions absolutely, heals could not add to them);
- a cancel done elsewhere (the web app, another client, the exchange);
- a settled market whose settlement report (35=UMS) never came (the session does not take them,
  or it was lost): the position goes to zero (one that came has zeroed it already);
- a cancel or replace whose answer was lost (it happened: applied) or that never arrived (the
  order is as it was), once it is old enough that the exchange has certainly seen it
  (``settled_requests``; a request still in flight is left alone).
- with ``adopt_external`` (the engine has a listener or drop-copy session of the account, so orders
  entered by its other keys are expected): an order the book does not know is adopted as an
  external order, as its reports would have made it, then its fills and cancel are healed.
Not explained, reported: a resting order the book does not know (without ``adopt_external``), an order whose quantities or
price disagree beyond its fills (finished in the book, resting on the exchange included), a live
order the exchange does not know, a position that differs where no fill was missed.

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

from fixengine.orders.book import EXTERNAL_PREFIX, Order, OrderBook, Status
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
from fixengine.kalshi.prices import WireSide
from fixengine.rest.models import RestFill, RestOrder, Settlement

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
    EXTERNAL_ORDER = "external_order"  # entered by another key or session of the account: adopted
    ORDER_MISMATCH = "order_mismatch"
    ORDER_MISSING = "order_missing"  # live in the book, unknown to the exchange
    POSITION_MISMATCH = "position_mismatch"
    POSITION_SET = "position_set"  # set to the exchange's where fills were healed


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


def reconcile(book: OrderBook, account: str, snapshot: Snapshot, settled_requests: Collection[str] | None = None,
              *, adopt_external: bool = False) -> Findings:
    """Compare ``account``'s part of ``book`` with ``snapshot``; ``book`` is not changed.

    ``settled_requests``: ClOrdIDs of unanswered requests (new orders, cancels, replaces) sent long
    enough before the snapshot that the exchange has seen them; None: every one (the engine is not
    running). A request still in flight is never judged by a snapshot older than it."""
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
    settled = _Settled(settled_requests)
    healed_fills: set[str] = set()  # tickers whose position the missed fills moved

    matched: set[str] = set()
    for rest in snapshot.orders:
        ours = by_order_id.get(rest.order_id)
        if ours is None:
            # By ClOrdID only an order the exchange has not numbered yet: one with another OrderID
            # is another exchange order under the same ClOrdID (a web order, another key's, a twin).
            ours = by_client_id.get(rest.client_order_id or "")
            if ours is not None and ours.order_id not in (None, rest.order_id):
                ours = None
        if ours is None and adopt_external:
            ours = _adopt(work, findings, account, rest)
        if ours is None:
            if rest.status == "resting":
                findings.discrepancies.append(Discrepancy(
                    Kind.UNKNOWN_ORDER, Severity.ERROR, rest.ticker,
                    f"resting {rest.remaining_count_fp} @ {rest.yes_price_dollars} (YES), placed outside this engine",
                    rest.order_id, rest.client_order_id or None,
                ))
            continue
        matched.add(ours.key)
        _order(work, ours.key, rest, fills_by_order.get(rest.order_id, []), settled, findings, healed_fills)

    for order in mine:
        if order.key in matched:
            continue
        if order.status.terminal:
            # Not resting on the exchange either; fills it had that no report brought are still fills.
            fills = fills_by_order.get(order.order_id, []) if order.order_id else []
            _fills(work, order.key, order.order_id or "", fills, order.cum_qty, findings, healed_fills)
        elif order.order_id is None:
            if settled(order.key):
                _never_received(work, order, findings)
        else:
            why = "the exchange does not know it (404)" if order.order_id in snapshot.missing else "not in the snapshot"
            findings.discrepancies.append(Discrepancy(
                Kind.ORDER_MISSING, Severity.ERROR, order.ticker, f"{order.status.value} in the book; {why}",
                order.order_id, order.key,
            ))

    _positions(work, account, snapshot, healed_fills, findings)
    return findings


class _Settled:
    """Whether an unanswered request is old enough for the snapshot to show its outcome."""

    def __init__(self, settled: Collection[str] | None):
        self._settled = settled

    def __call__(self, cl_ord_id: str | None) -> bool:
        return cl_ord_id is not None and (self._settled is None or cl_ord_id in self._settled)


# --- orders ---------------------------------------------------------------------------------------


def _never_acknowledged(order: Order) -> bool:
    return order.order_id is None or Status.PENDING_NEW in (order.status, order.resting_status)


def _order(work: OrderBook, key: str, rest: RestOrder, fills: list[RestFill], settled: _Settled,
           findings: Findings, healed_fills: set[str]) -> None:
    order = work.order(key)
    # Never acknowledged: live, or given up as never received (rejected without an OrderID) when
    # it was on its way after all; the exchange is right, the order lives.
    given_up = order.status is Status.REJECTED and order.order_id is None
    if (not order.status.terminal or given_up) and _never_acknowledged(order):
        # acknowledged as entered; its fills (below) and a cancel follow as their own heals
        _heal(work, findings, _report(order, rest, ExecType.NEW, OrdStatus.NEW, ZERO, leaves=order.quantity),
              Discrepancy(Kind.ACK_MISSED, Severity.INFO, rest.ticker, "acknowledged by the exchange; the ack was never read",
                          rest.order_id, order.key, healed=True))
        order = work.order(key)
    if order.status is Status.PENDING_REPLACE and order.pending is not None:
        # The exchange shows the new price (proof at once) or, once the replace has settled, the
        # new size: the replace happened and its answer was lost (fills after it follow as heals).
        new_size = rest.status == "resting" and settled(order.pending) and _total(rest) != order.quantity
        if rest.yes_price_dollars != order.yes_price or new_size:
            # An order no longer resting shows no size (nothing remains): the replace keeps the size
            # the book knows, and the order's end (a cancel, its fills) follows as its own heals.
            leaves = max(ZERO, _total(rest) - order.cum_qty) if rest.status == "resting" else order.leaves_qty
            _heal(work, findings, _replaced(order, rest, order.cum_qty, leaves), _replace_missed(order, rest))
    total = _total(rest) if rest.status == "resting" else (rest.fill_count_fp if rest.status == "executed" else None)
    _fills(work, key, rest.order_id, fills, rest.fill_count_fp, findings, healed_fills, total=total, rest=rest)
    order = work.order(key)
    if not order.status.terminal and rest.status == "canceled":
        ours = order.status is Status.PENDING_CANCEL
        _heal(work, findings, _report(order, rest, ExecType.CANCELED, OrdStatus.CANCELED, rest.fill_count_fp, leaves=ZERO,
                                      cl_ord_id=order.pending if ours else None),
              Discrepancy(Kind.CANCELED_ELSEWHERE, Severity.INFO if ours else Severity.WARNING, rest.ticker,
                          "our cancel happened; its answer was never read" if ours
                          else f"canceled on the exchange with {rest.fill_count_fp} filled", rest.order_id, order.key, healed=True))
    _pending(work, key, rest, settled, findings)
    order = work.order(key)
    in_flight = order.pending is not None and not settled(order.pending)
    if order.status.terminal and rest.status == "resting":
        findings.discrepancies.append(Discrepancy(
            Kind.ORDER_MISMATCH, Severity.ERROR, rest.ticker,
            f"{order.status.value} in the book (filled {order.cum_qty}); resting on the exchange, filled "
            f"{rest.fill_count_fp} leaving {rest.remaining_count_fp}", rest.order_id, order.key,
        ))
    elif order.cum_qty != rest.fill_count_fp or (
        rest.status == "resting" and not in_flight and order.leaves_qty != rest.remaining_count_fp
    ):
        findings.discrepancies.append(Discrepancy(
            Kind.ORDER_MISMATCH, Severity.ERROR, rest.ticker,
            f"book filled {order.cum_qty} leaving {order.leaves_qty}; exchange {rest.status}, filled "
            f"{rest.fill_count_fp} leaving {rest.remaining_count_fp} (fills missing from the snapshot?)",
            rest.order_id, order.key,
        ))
    elif order.yes_price != rest.yes_price_dollars and rest.status == "resting" and not in_flight:
        findings.discrepancies.append(Discrepancy(
            Kind.ORDER_MISMATCH, Severity.ERROR, rest.ticker,
            f"book price {order.yes_price}, exchange {rest.yes_price_dollars} (YES)", rest.order_id, order.key,
        ))


def _fills(work: OrderBook, key: str, order_id: str, fills: list[RestFill], filled: Decimal, findings: Findings,
           healed_fills: set[str], *, total: Decimal | None = None, rest: RestOrder | None = None) -> None:
    """Heal the fills of ``key`` that no report brought. ``filled`` is the order's filled quantity
    on the exchange now; each heal carries the cumulative quantity as of its fill (``filled`` less
    the fills after it), so a FIX report that already counted it is not counted again."""
    after = ZERO
    cum_at: list[Decimal] = []
    for fill in reversed(fills):
        cum_at.append(filled - after)
        after += fill.count_fp
    cum_at.reverse()
    for fill, cum in zip(fills, cum_at):
        if work.has_trade(order_id, fill.trade_id):
            continue
        order = work.order(key)
        size = total if total is not None else order.quantity
        leaves = max(ZERO, size - cum)
        status = OrdStatus.FILLED if leaves == 0 else OrdStatus.PARTIALLY_FILLED
        report = ExecutionReport(
            exec_id=f"{HEAL_PREFIX}{order_id}:{fill.trade_id}", exec_type=ExecType.TRADE, ord_status=status,
            order_id=order_id, cl_ord_id=order.cl_ord_id, orig_cl_ord_id=None, ticker=order.ticker, side=order.side,
            order_qty=cum + leaves, cum_qty=cum, leaves_qty=leaves,
            yes_price=rest.yes_price_dollars if rest is not None else order.yes_price,
            fill=Fill(exec_id=f"{HEAL_PREFIX}{order_id}:{fill.trade_id}", trade_id=fill.trade_id,
                      yes_price=fill.yes_price_dollars, quantity=fill.count_fp, fee=fill.fee_cost, aggressor=fill.is_taker),
        )
        _heal(work, findings, report, Discrepancy(
            Kind.FILL_MISSED, Severity.WARNING, order.ticker, f"fill {fill.trade_id}: {fill.count_fp} @ {fill.yes_price_dollars}",
            order_id, order.key, healed=True,
        ))
        healed_fills.add(order.ticker)


def _pending(work: OrderBook, key: str, rest: RestOrder, settled: _Settled, findings: Findings) -> None:
    """A cancel or replace still pending in the book, settled, on an order the exchange shows
    resting as it was: the request never reached the exchange."""
    order = work.order(key)
    if order.pending is None or order.status.terminal or rest.status != "resting" or not settled(order.pending):
        return
    what = "cancel" if order.status is Status.PENDING_CANCEL else "replace"
    heal = CancelReject(
        cl_ord_id=order.pending, orig_cl_ord_id=order.cl_ord_id, order_id=rest.order_id, ord_status=None,
        response_to=CxlRejResponseTo.CANCEL if what == "cancel" else CxlRejResponseTo.REPLACE,
        reason=Reason(RejectCode.OTHER, None, f"the {what} never reached the exchange (reconciliation)"),
    )
    _heal(work, findings, heal, Discrepancy(Kind.REQUEST_LOST, Severity.WARNING, rest.ticker,
                                            f"the {what} {order.pending} never reached the exchange: the order is as it was",
                                            rest.order_id, order.key, healed=True))


def _adopt(work: OrderBook, findings: Findings, account: str, rest: RestOrder) -> Order:
    """An order of the account entered elsewhere that no report of ours showed: acknowledged as
    entered (so the book adopts it as external); its fills and its end are healed after this."""
    side = WireSide.BUY_YES if rest.book_side == "bid" else WireSide.SELL_YES
    ack = ExecutionReport(
        exec_id=f"{HEAL_PREFIX}{rest.order_id}:external", exec_type=ExecType.NEW, ord_status=OrdStatus.NEW,
        order_id=rest.order_id, cl_ord_id=rest.client_order_id, orig_cl_ord_id=None, ticker=rest.ticker, side=side,
        order_qty=_total(rest), cum_qty=ZERO, leaves_qty=_total(rest), yes_price=rest.yes_price_dollars, account=account,
    )
    _heal(work, findings, ack, Discrepancy(Kind.EXTERNAL_ORDER, Severity.INFO, rest.ticker,
                                           f"{rest.status}, entered elsewhere (another key or session of the account)",
                                           rest.order_id, rest.client_order_id or None, healed=True))
    return work.order(f"{EXTERNAL_PREFIX}{rest.order_id}")


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
    size = f"{_total(rest)} " if rest.status == "resting" else ""  # an order that ended shows no size
    return Discrepancy(Kind.REPLACE_MISSED, Severity.INFO, rest.ticker,
                       f"replaced to {size}@ {rest.yes_price_dollars} (YES); the answer was never read",
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
            leaves: Decimal, cl_ord_id: str | None = None) -> ExecutionReport:
    return ExecutionReport(
        exec_id=f"{HEAL_PREFIX}{rest.order_id}:{exec_type.name.lower()}", exec_type=exec_type, ord_status=status,
        order_id=rest.order_id, cl_ord_id=cl_ord_id or order.cl_ord_id, orig_cl_ord_id=None, ticker=order.ticker,
        side=order.side, order_qty=cum + leaves, cum_qty=cum, leaves_qty=leaves, yes_price=rest.yes_price_dollars,
    )


def _heal(work: OrderBook, findings: Findings, heal: Heal, finding: Discrepancy) -> None:
    work.heal(heal)
    findings.heals.append(heal)
    findings.discrepancies.append(finding)


# --- positions ------------------------------------------------------------------------------------


def _positions(work: OrderBook, account: str, snapshot: Snapshot, healed_fills: set[str], findings: Findings) -> None:
    """Positions after the heals. A healed fill leaves the position alone (a later FIX report may
    already have counted it: Trade reports carry the position after the trade, 704/705), so where
    fills were healed the position is the exchange's, which is at least as recent as every report."""
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
        if ticker in healed_fills:
            _heal(work, findings, PositionFix(account, ticker, theirs), Discrepancy(
                Kind.POSITION_SET, Severity.INFO, ticker, f"position {ours} -> {theirs}, the exchange's after missed fills",
                healed=True,
            ))
            continue
        findings.discrepancies.append(Discrepancy(
            Kind.POSITION_MISMATCH, Severity.ERROR, ticker, f"book {ours} vs exchange {theirs} (YES contracts, net)",
        ))


__all__ = ["HEAL_PREFIX", "Discrepancy", "Findings", "Heal", "Kind", "PositionFix", "Severity", "Snapshot", "reconcile"]
