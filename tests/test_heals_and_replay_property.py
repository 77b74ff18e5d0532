"""Random interleavings of requests, reports (delivered, late or lost), reconciliations, retries and
restarts, with what else Kalshi does: orders entered elsewhere (another key of the account, seen as
on a listener), order-group cancels, drop-copy replays of everything sent so far, and the market's
settlement. After every step the journal replays into exactly the live book, and once everything
is delivered and reconciled the book equals the exchange, with no fill counted twice and no
replayed report or settlement changing anything a second time."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal as D

from hypothesis import example, given, settings
from hypothesis import strategies as st

from fixengine.orders.book import EXTERNAL_PREFIX, BookError
from fixengine.orders.journal import Journal, rebuild_book
from fixengine.orders.reports import ExecType, ExecutionReport, Fill, OrdStatus, Reason, RejectCode
from fixengine.orders.requests import NewOrder
from fixengine.orders.settlement import MarketResult, SettlementParty, SettlementReport
from fixengine.kalshi.prices import Action, Contract, WireSide
from fixengine.reconcile.compare import Snapshot, reconcile
from fixengine.rest.models import RestFill
from fixengine.rest.models import RestOrder, Settlement
from tests.helpers.journal import assert_journal_replays
from tests.helpers.reconcile import ACCOUNT, NOW, TICKER

PRICE = D("0.40")


@dataclass
class ExchangeOrder:
    order_id: str
    cl_ord_id: str  # the latest request's
    quantity: D
    entered_as: str = ""  # the entering ClOrdID (REST's client_order_id)
    cum: D = D(0)
    status: str = "resting"  # resting | canceled | executed
    fills: list[tuple[str, D, int]] = field(default_factory=list)  # trade_id, size, time


Sent = ExecutionReport | SettlementReport


class FakeAccountExchange:
    """One account's orders on Kalshi, and the reports it sends in order (some never arrive). Every
    persistent one is kept for drop copy (``log``), as Kalshi keeps them for KalshiDC."""

    def __init__(self) -> None:
        self.orders: dict[str, ExchangeOrder] = {}  # order_id ->
        self.position = D(0)
        self.outbox: list[Sent] = []
        self.log: list[Sent] = []
        self.clock = 0
        self.settlement: SettlementReport | None = None

    def _send(self, report: Sent) -> None:
        self.outbox.append(report)
        if not (isinstance(report, ExecutionReport) and report.exec_type is ExecType.REJECTED):
            self.log.append(report)  # drop copy replays no rejects

    def _tick(self) -> int:
        self.clock += 1
        return self.clock

    def _report(self, o: ExchangeOrder, exec_type: ExecType, status: OrdStatus, *, cl: str | None = None,
                orig: str | None = None, fill: Fill | None = None, reason: Reason | None = None,
                order_id: str | None = None) -> None:
        leaves = o.quantity - o.cum if o.status == "resting" else D(0)
        self._send(ExecutionReport(
            f"{self._tick()};1", exec_type, status, o.order_id if order_id is None else order_id, cl or o.cl_ord_id,
            orig, TICKER, WireSide.BUY_YES, o.quantity, o.cum, leaves, PRICE, fill=fill,
            long_qty=self.position if fill else None, short_qty=D(0) if fill else None, reason=reason,
            account=ACCOUNT,  # the account of the session it arrives on, as the engine reads every report
        ))

    def open_with(self, cl: str) -> ExchangeOrder | None:
        return next((o for o in self.orders.values() if o.cl_ord_id == cl and o.status == "resting"), None)

    def new(self, cl: str, quantity: D) -> None:
        if self.settlement is not None:  # the market is closed
            closed = ExchangeOrder("", cl, quantity, status="canceled")
            self._report(closed, ExecType.REJECTED, OrdStatus.REJECTED, order_id="",
                         reason=Reason(RejectCode.MARKET_ALREADY_CLOSED, 7, "MARKET_ALREADY_CLOSED"))
            return
        if self.open_with(cl) is not None:  # Kalshi refuses a duplicate ClOrdID while the first is open
            dup = ExchangeOrder("", cl, quantity, status="canceled")
            self._report(dup, ExecType.REJECTED, OrdStatus.REJECTED, order_id="",
                         reason=Reason(RejectCode.ORDER_ALREADY_EXISTS, 6, "ORDER_ALREADY_EXISTS"))
            return
        o = ExchangeOrder(f"O{len(self.orders) + 1}", cl, quantity, entered_as=cl)
        self.orders[o.order_id] = o
        self._report(o, ExecType.NEW, OrdStatus.NEW)

    def fill(self, order_id: str, size: D) -> None:
        o = self.orders[order_id]
        size = min(size, o.quantity - o.cum)
        if o.status != "resting" or size <= 0:
            return
        o.cum += size
        self.position += size
        trade_id = f"T{self._tick()}"
        o.fills.append((trade_id, size, self.clock))
        if o.cum == o.quantity:
            o.status = "executed"
        fill = Fill(f"{self.clock}f", trade_id, PRICE, size, D("0.01"), False)
        self._report(o, ExecType.TRADE, OrdStatus.FILLED if o.status == "executed" else OrdStatus.PARTIALLY_FILLED,
                     fill=fill)

    def cancel(self, cl: str, orig: str) -> None:
        o = self.open_with(orig)
        if o is None:
            return  # (the cancel reject is not what this test is about)
        o.status = "canceled"
        o.cl_ord_id = cl
        self._report(o, ExecType.CANCELED, OrdStatus.CANCELED, cl=cl, orig=orig)

    def elsewhere(self, n: int, quantity: D) -> None:
        """An order another key of the account enters (the engine sees its reports, as on a listener)."""
        if self.settlement is None:
            o = ExchangeOrder(f"O{len(self.orders) + 1}", f"web-{n}", quantity, entered_as=f"web-{n}")
            self.orders[o.order_id] = o
            self._report(o, ExecType.NEW, OrdStatus.NEW)

    def group_cancel(self, order_id: str) -> None:
        """The order's group triggered: the exchange cancels it (Text ORDER_GROUP_CANCEL)."""
        o = self.orders[order_id]
        o.status = "canceled"
        self._report(o, ExecType.CANCELED, OrdStatus.CANCELED,
                     reason=Reason(RejectCode.ORDER_GROUP_CANCEL, None, "ORDER_GROUP_CANCEL"))

    def settle(self) -> None:
        """The market settles YES: resting orders end (no report, as on Kalshi), the position is
        paid $1 a contract (35=UMS), and nothing trades there again."""
        if self.settlement is not None:
            return
        for o in self.orders.values():
            if o.status == "resting":
                o.status = "canceled"
        party = SettlementParty(ACCOUNT, 24, self.position, D(0), self.position, D(0))
        self.settlement = SettlementReport(ACCOUNT, f"settle-{self._tick()}", TICKER, date(2026, 11, 30), MarketResult.YES,
                                           D(1), (party,))
        self._send(self.settlement)
        self.position = D(0)

    def snapshot(self) -> Snapshot:
        orders = [RestOrder.model_validate({
            "order_id": o.order_id, "client_order_id": o.entered_as, "ticker": TICKER, "status": o.status,
            "outcome_side": "yes", "book_side": "bid", "yes_price_dollars": str(PRICE),
            "initial_count_fp": str(o.quantity), "fill_count_fp": str(o.cum),
            "remaining_count_fp": str(o.quantity - o.cum if o.status == "resting" else 0),
        }) for o in self.orders.values()]
        fills = [RestFill.model_validate({
            "fill_id": t, "trade_id": t, "order_id": o.order_id, "ticker": TICKER, "outcome_side": "yes",
            "book_side": "bid", "count_fp": str(size), "yes_price_dollars": str(PRICE), "is_taker": False,
            "fee_cost": "0.01", "created_time": (NOW + timedelta(seconds=at)).isoformat(),
        }) for o in self.orders.values() for t, size, at in o.fills]
        settlements = [Settlement.model_validate({
            "ticker": TICKER, "market_result": "yes", "yes_count_fp": str(self.settlement.net_yes), "no_count_fp": "0",
            "yes_total_cost_dollars": "0", "no_total_cost_dollars": "0", "revenue": int(self.settlement.payout * 100),
            "fee_cost": "0", "settled_time": (NOW + timedelta(seconds=self.clock)).isoformat(),
        })] if self.settlement is not None else []
        return Snapshot(NOW + timedelta(seconds=self.clock), orders, fills, {TICKER: self.position} if self.position else {},
                        settlements)


class Trader:
    """The engine's part: journal first, then the book; a restart rebuilds from the journal."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self.book = rebuild_book(journal)
        self.n = 0

    def submit(self, quantity: D) -> str:
        self.n += 1
        cl = f"c{self.n}"
        order = NewOrder.create(ticker=TICKER, action=Action.BUY, contract=Contract.YES, quantity=quantity,
                                price=PRICE, client_order_id=cl)
        self.journal.record_new(order, ACCOUNT)
        self.book.submit(order, ACCOUNT)
        return cl

    def retry(self, key: str) -> bool:
        order = self.book.order(key)
        if not order.retryable:
            return False
        self.book.submit(NewOrder.create(ticker=TICKER, action=Action.BUY, contract=Contract.YES,
                                         quantity=order.quantity, price=PRICE, client_order_id=key), ACCOUNT)
        return True

    def cancel(self, key: str) -> str | None:
        self.n += 1
        cl = f"x{self.n}"
        try:
            self.book.cancel(key, cl)
        except BookError:
            return None
        self.journal.record_cancel(key, cl)
        return cl

    def receive(self, report: Sent) -> None:
        if self.journal.record_report(report):
            self.journal.commit()
            self.book.apply(report)

    def reconcile(self, snapshot: Snapshot):
        findings = reconcile(self.book, ACCOUNT, snapshot, adopt_external=True)
        for heal in findings.heals:
            self.journal.record_reconciled(heal)
        self.journal.commit()
        for heal in findings.heals:
            self.book.heal(heal)
        return findings

    def restart(self) -> None:
        self.journal.commit()
        self.book = rebuild_book(self.journal)


steps = st.lists(
    st.tuples(
        st.sampled_from(["submit", "submit_lost", "fill", "cancel", "cancel_lost", "cancel_elsewhere", "deliver",
                         "deliver", "deliver", "lose", "reconcile", "restart", "retry", "elsewhere", "group_cancel",
                         "replay", "settle"]),
        st.integers(0, 30),
    ),
    max_size=40,
)


@settings(max_examples=400, deadline=None)
@given(script=steps)
# Found by CI: an order entered elsewhere whose report is lost, then another under the same ClOrdID
# (reconciliation took the second, already adopted, for the first).
@example(script=[("elsewhere", 0), ("lose", 0), ("elsewhere", 0)])
def test_any_interleaving_replays_and_ends_equal_to_the_exchange(tmp_path_factory, script) -> None:
    journal = Journal(tmp_path_factory.mktemp("j") / "journal.log")
    x, t = FakeAccountExchange(), Trader(journal)
    keys: list[str] = []
    for step, n in script:
        live = [k for k in keys if not t.book.order(k).status.terminal]
        resting = [o for o in x.orders.values() if o.status == "resting"]
        if step in ("submit", "submit_lost"):
            quantity = D(n % 7 + 1)
            key = t.submit(quantity)
            keys.append(key)
            if step == "submit":
                x.new(key, quantity)
        elif step == "fill" and resting:
            x.fill(resting[n % len(resting)].order_id, D(n % 4 + 1))
        elif step in ("cancel", "cancel_lost") and live:
            key = live[n % len(live)]
            orig = t.book.order(key).cl_ord_id
            cl = t.cancel(key)
            if cl is not None and step == "cancel":
                x.cancel(cl, orig)
        elif step == "cancel_elsewhere" and resting:
            o = resting[n % len(resting)]
            x.cancel(f"web-{n}", o.cl_ord_id)
        elif step == "deliver" and x.outbox:
            t.receive(x.outbox.pop(0))
        elif step == "lose" and x.outbox:
            x.outbox.pop(0)
        elif step == "reconcile":
            t.reconcile(x.snapshot())
        elif step == "restart":
            t.restart()
        elif step == "retry" and keys:
            key = keys[n % len(keys)]
            if t.retry(key):
                x.new(key, t.book.order(key).quantity)
        elif step == "elsewhere":
            x.elsewhere(n, D(n % 5 + 1))
        elif step == "group_cancel" and resting:
            x.group_cancel(resting[n % len(resting)].order_id)
        elif step == "replay" and x.log:
            for report in x.log[n % len(x.log):]:  # a drop-copy replay: what was seen changes nothing
                t.receive(report)
        elif step == "settle" and n % 3 == 0:
            x.settle()
        assert_journal_replays(journal, t.book)

    while x.outbox:  # everything still on the wire arrives (late, after any heal) ...
        t.receive(x.outbox.pop(0))
    findings = t.reconcile(x.snapshot())  # ... and one reconciliation settles the rest
    assert findings.clean, [d.describe() for d in findings.unexplained]
    assert_journal_replays(journal, t.book)
    assert reconcile(t.book, ACCOUNT, x.snapshot()).discrepancies == []  # nothing left to heal
    by_order_id = {o.order_id: o for o in t.book.orders.values() if o.order_id}
    for o in x.orders.values():
        ours = by_order_id[o.order_id]
        assert ours.cum_qty == o.cum, (o, ours)
        assert ours.status.terminal == (o.status != "resting"), (o, ours)
    assert t.book.position(ACCOUNT, TICKER) == x.position
    assert t.book._trades == {(o.order_id, tid) for o in x.orders.values() for tid, _, _ in o.fills}
    for o in x.orders.values():  # orders entered elsewhere are the account's external orders
        assert by_order_id[o.order_id].external == o.entered_as.startswith("web-"), (o, by_order_id[o.order_id])
        assert by_order_id[o.order_id].key.startswith(EXTERNAL_PREFIX) == o.entered_as.startswith("web-")
    # A settlement report counts once, however often it came; missed, REST's settlement zeroed the position.
    settled = t.book.settlement(ACCOUNT, TICKER)
    assert t.book.cash(ACCOUNT) == (x.settlement.payout if settled is not None and x.settlement is not None else D(0))
    for report in x.log:  # a replay of everything after the end changes nothing
        t.receive(report)
    assert reconcile(t.book, ACCOUNT, x.snapshot(), adopt_external=True).discrepancies == []
    journal.close()
