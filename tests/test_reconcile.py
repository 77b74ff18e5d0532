"""The reconciler as a pure function: a book, a REST snapshot, and what it finds and heals."""

from __future__ import annotations

from decimal import Decimal as D

from fixengine.orders.book import OrderBook, Status
from fixengine.orders.reports import ExecType, ExecutionReport, Fill, OrdStatus
from fixengine.orders.requests import NewOrder
from fixengine.kalshi.prices import Action, Contract, WireSide
from fixengine.reconcile.compare import HEAL_PREFIX, Kind, Severity, reconcile
from fixengine.rest.models import Settlement
from tests.helpers.reconcile import ACCOUNT, NOW, TICKER, rest_fill, rest_order, snapshot


def placed(book: OrderBook, cl: str, quantity: str = "5", price: str = "0.40", *, acked: bool = True) -> str:
    order = NewOrder.create(ticker=TICKER, action=Action.BUY, contract=Contract.YES, quantity=D(quantity),
                            price=D(price), client_order_id=cl)
    book.submit(order, ACCOUNT)
    if acked:
        book.apply(ExecutionReport(f"1;{cl}", ExecType.NEW, OrdStatus.NEW, f"O-{cl}", cl, None, TICKER,
                                   WireSide.BUY_YES, D(quantity), D(0), D(quantity), D(price)))
    return cl


def heal(book: OrderBook, findings) -> None:
    """What the engine does with the heals (after journaling them)."""
    for item in findings.heals:
        book.heal(item)


def test_a_book_that_agrees_is_clean_and_untouched() -> None:
    book = OrderBook()
    placed(book, "a")
    findings = reconcile(book, ACCOUNT, snapshot([rest_order("a")]))
    assert findings.clean and findings.discrepancies == [] and findings.heals == []


def test_missed_fills_are_healed_once_and_the_position_follows() -> None:
    book = OrderBook()
    placed(book, "a")
    snap = snapshot([rest_order("a", filled="3.00", remaining="2.00")],
                    [rest_fill("a", "T1", "1.00", at=1), rest_fill("a", "T2", "2.00", at=2)], {TICKER: D(3)})
    before = book.order("a")
    findings = reconcile(book, ACCOUNT, snap)
    assert book.order("a") == before  # reconcile itself changes nothing
    # a healed fill leaves the position alone (a later report may have counted it already); the
    # position is then the exchange's
    assert [d.kind for d in findings.discrepancies] == [Kind.FILL_MISSED, Kind.FILL_MISSED, Kind.POSITION_SET]
    assert all(d.healed for d in findings.discrepancies) and findings.clean
    assert [d.severity for d in findings.discrepancies] == [Severity.WARNING, Severity.WARNING, Severity.INFO]
    assert all(h.exec_id.startswith(HEAL_PREFIX) for h in findings.heals if isinstance(h, ExecutionReport))
    heal(book, findings)
    order = book.order("a")
    assert (order.status, order.cum_qty, order.leaves_qty) == (Status.PARTIALLY_FILLED, D(3), D(2))
    assert book.position(ACCOUNT, TICKER) == D(3)
    assert reconcile(book, ACCOUNT, snap).discrepancies == []  # healed for good
    # The exchange's own report of T1 (another ExecID) arriving later is the same fill: ignored.
    late = ExecutionReport("7;7", ExecType.TRADE, OrdStatus.PARTIALLY_FILLED, "O-a", "a", None, TICKER,
                           WireSide.BUY_YES, D(5), D(1), D(4), D("0.40"),
                           fill=Fill("7;7", "T1", D("0.40"), D(1), D(0), False))
    assert book.apply(late) == [] and book.order("a").cum_qty == D(3)


def test_a_cancel_done_elsewhere_is_healed() -> None:
    book = OrderBook()
    placed(book, "a")
    findings = reconcile(book, ACCOUNT, snapshot([rest_order("a", status="canceled", remaining="0.00")]))
    assert [(d.kind, d.healed) for d in findings.discrepancies] == [(Kind.CANCELED_ELSEWHERE, True)]
    heal(book, findings)
    assert book.order("a").status is Status.CANCELED and book.order("a").leaves_qty == 0


def test_an_ack_never_read_and_an_order_never_received_are_both_settled() -> None:
    book = OrderBook()
    placed(book, "seen", acked=False)
    placed(book, "lost", acked=False)
    book.mark_unconfirmed()  # as after a restart: outcome unknown
    findings = reconcile(book, ACCOUNT, snapshot([rest_order("seen", order_id="O-77")]))
    assert sorted((d.kind, d.client_order_id) for d in findings.discrepancies) == [
        (Kind.ACK_MISSED, "seen"), (Kind.NEVER_RECEIVED, "lost"),
    ]
    heal(book, findings)
    assert (book.order("seen").status, book.order("seen").order_id) == (Status.NEW, "O-77")
    assert not book.order("seen").outcome_unknown
    assert book.order("lost").status is Status.REJECTED and book.order("lost").order_id is None


def test_an_order_placed_elsewhere_is_reported_not_adopted() -> None:
    book = OrderBook()
    findings = reconcile(book, ACCOUNT, snapshot([rest_order("web", order_id="O-web")]))
    [found] = findings.discrepancies
    assert (found.kind, found.severity, found.healed, found.order_id) == (Kind.UNKNOWN_ORDER, Severity.ERROR, False, "O-web")
    assert not findings.clean and findings.heals == []


def test_with_a_listener_or_drop_copy_an_order_entered_elsewhere_is_adopted_with_its_fills() -> None:
    """The engine sees the account's other keys' orders: one it missed is external, not unexplained."""
    book = OrderBook()
    rest = [rest_order("web", filled="2.00", remaining="3.00", order_id="O-web"),
            rest_order("gone", status="canceled", filled="0", remaining="0", order_id="O-gone")]
    findings = reconcile(book, ACCOUNT, snapshot(rest, [rest_fill("web", "T1", "2.00")], positions={TICKER: D(2)}),
                         adopt_external=True)
    assert findings.clean, [d.describe() for d in findings.unexplained]
    assert [d.kind for d in findings.discrepancies if d.order_id == "O-web"] == [Kind.EXTERNAL_ORDER, Kind.FILL_MISSED]
    heal(book, findings)
    web, gone = book.order("external:O-web"), book.order("external:O-gone")
    assert (web.external, web.account, web.status, web.cum_qty, web.leaves_qty) == (True, ACCOUNT, Status.PARTIALLY_FILLED, D(2), D(3))
    assert (gone.external, gone.status) == (True, Status.CANCELED)
    assert reconcile(book, ACCOUNT, snapshot(rest, [rest_fill("web", "T1", "2.00")], positions={TICKER: D(2)}),
                     adopt_external=True).discrepancies == []  # adopted once, for good


def test_quantities_fills_cannot_explain_are_reported() -> None:
    book = OrderBook()
    placed(book, "a")
    findings = reconcile(book, ACCOUNT, snapshot([rest_order("a", filled="2.00", remaining="3.00")], positions={TICKER: D(2)}))
    kinds = {d.kind for d in findings.unexplained}
    assert Kind.ORDER_MISMATCH in kinds and Kind.POSITION_MISMATCH in kinds and findings.heals == []


def test_a_live_order_the_exchange_does_not_know_is_reported() -> None:
    book = OrderBook()
    placed(book, "a")
    [found] = reconcile(book, ACCOUNT, snapshot(missing={"O-a"})).discrepancies
    assert (found.kind, found.healed) == (Kind.ORDER_MISSING, False) and "404" in found.detail


def test_a_settlement_closes_the_position() -> None:
    book = OrderBook()
    placed(book, "a")
    book.apply(ExecutionReport("2;2", ExecType.TRADE, OrdStatus.FILLED, "O-a", "a", None, TICKER, WireSide.BUY_YES,
                               D(5), D(5), D(0), D("0.40"), fill=Fill("2;2", "T9", D("0.40"), D(5), D(0), False),
                               long_qty=D(5), short_qty=D(0)))
    settlement = Settlement.model_validate({
        "ticker": TICKER, "market_result": "yes", "yes_count_fp": "5.00", "no_count_fp": "0.00",
        "yes_total_cost_dollars": "2.0000", "no_total_cost_dollars": "0.0000", "revenue": 500,
        "fee_cost": "0.0000", "settled_time": NOW.isoformat(),
    })
    findings = reconcile(book, ACCOUNT, snapshot([rest_order("a", status="executed", filled="5.00", remaining="0.00")],
                                                 positions={}, settlements=[settlement]))
    assert [(d.kind, d.healed) for d in findings.discrepancies] == [(Kind.SETTLED, True)]
    heal(book, findings)
    assert book.position(ACCOUNT, TICKER) == 0


def test_a_position_no_settlement_explains_is_reported() -> None:
    book = OrderBook()
    findings = reconcile(book, ACCOUNT, snapshot(positions={TICKER: D(-4)}))
    [found] = findings.discrepancies
    assert (found.kind, found.severity, found.healed) == (Kind.POSITION_MISMATCH, Severity.ERROR, False)
    assert "-4" in found.detail


def test_heals_are_journaled_as_reconciled_and_replay_into_the_same_book(tmp_path) -> None:
    from fixengine.orders.journal import Journal, Reconciled, rebuild_book

    journal = Journal(tmp_path / "journal.log")
    order = NewOrder.create(ticker=TICKER, action=Action.BUY, contract=Contract.YES, quantity=D(5), price=D("0.40"),
                            client_order_id="a")
    journal.record_new(order, ACCOUNT)
    book = OrderBook()
    book.submit(order, ACCOUNT)
    settlement = Settlement.model_validate({
        "ticker": "OTHER-1", "market_result": "no", "yes_count_fp": "0.00", "no_count_fp": "2.00",
        "yes_total_cost_dollars": "0", "no_total_cost_dollars": "1.2000", "revenue": 200, "fee_cost": "0",
        "settled_time": NOW.isoformat(),
    })
    book.positions[(ACCOUNT, "OTHER-1")] = D(-2)  # held before the engine last stopped
    findings = reconcile(book, ACCOUNT, snapshot(
        [rest_order("a", filled="1.00", remaining="4.00")], [rest_fill("a", "T1", "1.00")], {TICKER: D(1)}, [settlement],
    ))
    assert findings.clean and len(findings.heals) == 4  # ack, fill, its position, settlement
    for item in findings.heals:
        journal.record_reconciled(item)
        book.heal(item)
    journal.commit()
    assert sum(isinstance(e, Reconciled) for e in journal.replay()) == 4
    rebuilt = rebuild_book(journal)
    assert rebuilt.order("a") == book.order("a") and rebuilt.position(ACCOUNT, TICKER) == D(1)
    assert rebuilt.has_trade("O-a", "T1")
    journal.close()


def test_a_lost_cancel_and_a_replace_whose_answer_was_lost_are_settled_once_old_enough() -> None:
    book = OrderBook()
    placed(book, "a")
    placed(book, "b")
    book.cancel("a", "a-cancel")
    book.replace("b", "b-replace")
    snap = snapshot([rest_order("a"), rest_order("b", price="0.45")])
    in_flight = reconcile(book, ACCOUNT, snap, settled_requests=set())
    assert [d.kind for d in in_flight.discrepancies] == [Kind.REPLACE_MISSED]  # its new price proves it; the cancel may still come
    findings = reconcile(book, ACCOUNT, snap, settled_requests={"a-cancel", "b-replace"})
    assert sorted((d.kind, d.client_order_id) for d in findings.discrepancies) == [
        (Kind.REPLACE_MISSED, "b"), (Kind.REQUEST_LOST, "a"),
    ]
    heal(book, findings)
    a, b = book.order("a"), book.order("b")
    assert (a.status, a.pending) == (Status.NEW, None)  # can be cancelled again
    assert (b.status, b.pending, b.yes_price, b.cl_ord_id) == (Status.NEW, None, D("0.45"), "b-replace")
    assert reconcile(book, ACCOUNT, snap, settled_requests=None).discrepancies == []


def test_a_replace_then_a_cancel_both_unread_are_healed_as_both() -> None:
    """Found by tests/test_crash_random.py (nr-rest, seed 37): a price replace, then a mass
    cancel, and the engine killed before either answer was read. The exchange shows the order
    canceled at the new price with nothing remaining: the replace's size is not in the snapshot,
    so the replace keeps the size the book knows, and the cancel follows as its own heal."""
    book = OrderBook()
    placed(book, "a", quantity="7")
    book.replace("a", "a-replace")
    snap = snapshot([rest_order("a", status="canceled", filled="0.00", remaining="0.00", price="0.32")])
    findings = reconcile(book, ACCOUNT, snap, settled_requests={"a-replace"})
    assert [d.kind for d in findings.discrepancies] == [Kind.REPLACE_MISSED, Kind.CANCELED_ELSEWHERE]
    heal(book, findings)
    order = book.order("a")
    assert (order.status, order.yes_price, order.cum_qty, order.leaves_qty) == (Status.CANCELED, D("0.32"), D(0), D(0))
    assert reconcile(book, ACCOUNT, snap).discrepancies == []


def test_a_replace_then_fills_at_the_new_price_are_healed_in_that_order() -> None:
    book = OrderBook()
    placed(book, "a")
    book.replace("a", "a-replace")
    snap = snapshot([rest_order("a", status="executed", filled="5.00", remaining="0.00", price="0.56")],
                    [rest_fill("a", "T1", "5.00", price="0.55")], {TICKER: D(5)})
    findings = reconcile(book, ACCOUNT, snap, settled_requests=set())  # the new price proves it, settled or not
    assert [d.kind for d in findings.discrepancies] == [Kind.REPLACE_MISSED, Kind.FILL_MISSED, Kind.POSITION_SET]
    assert findings.clean
    heal(book, findings)
    order = book.order("a")
    assert (order.status, order.yes_price, order.cum_qty, order.pending) == (Status.FILLED, D("0.56"), D(5), None)
