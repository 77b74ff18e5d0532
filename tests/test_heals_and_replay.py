"""Reports, heals, retries and restarts compose: no fill is counted twice, no order is left
pending for ever, and the journal replays into exactly the live book. Each test pins one defect an
independent crash test found (the journal entry numbers in its names are from those runs)."""

from __future__ import annotations

import logging
from decimal import Decimal as D

import pytest

from fixengine.orders.book import BookError, OrderFilled, Status
from fixengine.orders.journal import Journal, Marked, rebuild_book, replay_book
from fixengine.orders.reports import ExecType, ExecutionReport, Fill, OrdStatus, Reason, RejectCode
from fixengine.orders.requests import NewOrder
from fixengine.kalshi.prices import Action, Contract, WireSide
from fixengine.reconcile.compare import Kind, reconcile
from tests.helpers.journal import assert_journal_replays
from tests.helpers.reconcile import ACCOUNT, TICKER, rest_fill, rest_order, snapshot


class Venue:
    """Kalshi's reports for the orders of one account in one market, numbered as Kalshi numbers
    them, with the position after each trade (704/705) as Kalshi sends it."""

    def __init__(self) -> None:
        self.clock = 0
        self.position = D(0)

    def report(self, cl: str, exec_type: ExecType, status: OrdStatus, qty: str, cum: str, leaves: str, *,
               fill: tuple[str, str] | None = None, order_id: str | None = None, reason: Reason | None = None,
               price: str = "0.40") -> ExecutionReport:
        self.clock += 1
        trade = None
        if fill is not None:
            trade_id, size = fill
            trade = Fill(f"{self.clock};1", trade_id, D(price), D(size), D("0.01"), False)
            self.position += D(size)
        return ExecutionReport(
            f"{self.clock};1", exec_type, status, f"O-{cl}" if order_id is None else order_id, cl, None, TICKER,
            WireSide.BUY_YES, D(qty), D(cum), D(leaves), D(price), fill=trade,
            long_qty=self.position if trade else None, short_qty=D(0) if trade else None, reason=reason,
        )


def new_order(cl: str, qty: str = "14") -> NewOrder:
    return NewOrder.create(ticker=TICKER, action=Action.BUY, contract=Contract.YES, quantity=D(qty),
                           price=D("0.40"), client_order_id=cl)


class Engine:
    """What the engine does with a journal and a book: journal first, then change the book."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self.book = rebuild_book(journal)

    def submit(self, cl: str, qty: str = "14") -> None:
        self.journal.record_new(new_order(cl, qty), ACCOUNT)
        self.book.submit(new_order(cl, qty), ACCOUNT)

    def cancel(self, key: str, cl: str) -> None:
        self.book.cancel(key, cl)
        self.journal.record_cancel(key, cl)

    def replace(self, key: str, cl: str, qty: str) -> None:
        self.book.replace(key, cl, D(qty))
        self.journal.record_replace(key, cl, D(qty))

    def receive(self, *reports: ExecutionReport) -> list:
        events = []
        for report in reports:
            if self.journal.record_report(report):
                self.journal.commit()
                events += self.book.apply(report)
        return events

    def reconcile(self, snap, settled=None):
        findings = reconcile(self.book, ACCOUNT, snap, settled)
        events = []
        for heal in findings.heals:
            self.journal.record_reconciled(heal)
        self.journal.commit()
        for heal in findings.heals:
            events += self.book.heal(heal)
        return findings, events

    def restart(self) -> None:
        self.journal.commit()
        self.book = rebuild_book(self.journal)


@pytest.fixture
def engine(tmp_path):
    journal = Journal(tmp_path / "journal.log")
    e = Engine(journal)
    yield e
    assert_journal_replays(journal, e.book)  # every test here: the journal replays into the live book
    journal.close()


# --- 1: a missed fill counted twice ------------------------------------------------------------


def test_a_missed_fill_that_a_later_report_already_counted_is_not_counted_again(engine) -> None:
    """O3783: reports set cum 7, then 8 (the 8 includes missed fill T736); the heal of T736 must
    not make it 9."""
    v = Venue()
    engine.submit("o3783")
    engine.receive(v.report("o3783", ExecType.NEW, OrdStatus.NEW, "14", "0", "14"),
                   v.report("o3783", ExecType.TRADE, OrdStatus.PARTIALLY_FILLED, "14", "7", "7", fill=("T735", "7")))
    v.position += 1  # T736: on the exchange, its report lost
    engine.replace("o3783", "o3783-2", "14")
    replaced = v.report("o3783-2", ExecType.REPLACED, OrdStatus.PARTIALLY_FILLED, "14", "8", "6", order_id="O-o3783")
    engine.receive(replaced)
    snap = snapshot([rest_order("o3783", filled="8", remaining="6")],
                    [rest_fill("o3783", "T735", "7", at=1), rest_fill("o3783", "T736", "1", at=2)], {TICKER: D(8)})
    findings, events = engine.reconcile(snap)
    # the position follows the exchange's (the Replaced report carried none)
    assert [d.kind for d in findings.discrepancies] == [Kind.FILL_MISSED, Kind.POSITION_SET] and findings.clean
    order = engine.book.order("o3783")
    assert (order.cum_qty, order.leaves_qty, order.status) == (D(8), D(6), Status.PARTIALLY_FILLED)
    assert [e.fill.trade_id for e in events if isinstance(e, OrderFilled)] == ["T736"]  # a fill, with its fee
    assert engine.book.position(ACCOUNT, TICKER) == D(8)
    assert reconcile(engine.book, ACCOUNT, snap).discrepancies == []


def test_a_terminal_book_order_resting_on_the_exchange_is_reported(engine) -> None:
    """An order FILLED in the book while the exchange has it resting: reported, never skipped."""
    v = Venue()
    engine.submit("done", "18")
    engine.receive(v.report("done", ExecType.TRADE, OrdStatus.FILLED, "18", "18", "0", fill=("T1", "18")))
    findings, _ = engine.reconcile(snapshot([rest_order("done", filled="16", remaining="2")],
                                            [rest_fill("done", "T1", "16")], {TICKER: D(18)}))
    assert [(d.kind, d.healed) for d in findings.discrepancies] == [(Kind.ORDER_MISMATCH, False)]


# --- 2 and 9: positions double counted, or fills of a finished order never healed -------------


def test_heals_of_fills_a_report_already_counted_leave_its_absolute_position_alone(engine) -> None:
    """A Trade report set the position equal to the exchange's; thirteen heals of fills it already
    counted moved it by 29 more."""
    v = Venue()
    engine.submit("p")
    engine.receive(v.report("p", ExecType.NEW, OrdStatus.NEW, "14", "0", "14"))
    for n in range(13):  # fills the session never reported ...
        v.position += 1
    engine.receive(v.report("p", ExecType.TRADE, OrdStatus.FILLED, "14", "14", "0", fill=("T99", "1")))  # ... counted here
    fills = [rest_fill("p", f"T{n}", "1", at=n) for n in range(13)] + [rest_fill("p", "T99", "1", at=20)]
    findings, _ = engine.reconcile(snapshot([rest_order("p", status="executed", filled="14", remaining="0")], fills,
                                            {TICKER: D(14)}))
    assert findings.clean and len(findings.heals) == 13
    assert engine.book.position(ACCOUNT, TICKER) == D(14)
    assert engine.book.order("p").cum_qty == D(14)


def test_fills_of_an_order_cancelled_before_reconciliation_are_healed_as_fills(engine) -> None:
    """Fills made while the session was down, then a cancel (allowed while held): the Canceled
    report (cum 9) ends the order; its nine missed fills still reach the book, fees and position."""
    v = Venue()
    engine.submit("c")
    engine.receive(v.report("c", ExecType.NEW, OrdStatus.NEW, "14", "0", "14"))
    v.position += 9  # filled while away
    engine.cancel("c", "c-x")
    engine.receive(v.report("c-x", ExecType.CANCELED, OrdStatus.CANCELED, "9", "9", "0", order_id="O-c"))
    assert engine.book.order("c").status is Status.CANCELED and engine.book.position(ACCOUNT, TICKER) == 0
    fills = [rest_fill("c", f"T{n}", "1", at=n) for n in range(9)]
    findings, events = engine.reconcile(snapshot([], fills, {TICKER: D(9)}))
    assert findings.clean
    assert len([e for e in events if isinstance(e, OrderFilled)]) == 9
    assert engine.book.order("c").status is Status.CANCELED and engine.book.order("c").cum_qty == D(9)
    assert engine.book.position(ACCOUNT, TICKER) == D(9)
    assert all(engine.book.has_trade("O-c", f"T{n}") for n in range(9))


# --- 3: a lost quantity-only replace -------------------------------------------------------------


def test_a_lost_replace_of_the_quantity_alone_is_healed_without_a_mismatch(engine) -> None:
    v = Venue()
    engine.submit("q", "7")
    engine.receive(v.report("q", ExecType.NEW, OrdStatus.NEW, "7", "0", "7"))
    engine.replace("q", "q-2", "15")  # its answer was lost in the kill
    engine.restart()
    findings, _ = engine.reconcile(snapshot([rest_order("q", remaining="15")], positions={}))
    assert [d.kind for d in findings.discrepancies] == [Kind.REPLACE_MISSED] and findings.clean
    order = engine.book.order("q")
    assert (order.quantity, order.leaves_qty, order.pending, order.cl_ord_id) == (D(15), D(15), None, "q-2")


def test_a_replace_still_in_flight_is_not_judged_by_an_older_snapshot(engine) -> None:
    v = Venue()
    engine.submit("q", "7")
    engine.receive(v.report("q", ExecType.NEW, OrdStatus.NEW, "7", "0", "7"))
    engine.replace("q", "q-2", "15")
    findings, _ = engine.reconcile(snapshot([rest_order("q", remaining="7")]), settled=set())
    assert findings.discrepancies == [] and engine.book.order("q").pending == "q-2"


# --- 4: pending_new for ever ---------------------------------------------------------------------


def test_an_order_whose_pending_new_was_read_and_new_lost_is_acknowledged(engine) -> None:
    v = Venue()
    engine.submit("pn")
    engine.receive(v.report("pn", ExecType.PENDING_NEW, OrdStatus.PENDING_NEW, "14", "0", "14"))
    assert engine.book.order("pn").order_id == "O-pn"
    findings, _ = engine.reconcile(snapshot([rest_order("pn", remaining="14")]))
    assert [d.kind for d in findings.discrepancies] == [Kind.ACK_MISSED] and findings.clean
    assert engine.book.order("pn").status is Status.NEW


# --- 5: a never-sent order with a pending cancel ------------------------------------------------


def test_an_order_never_sent_with_a_cancel_never_sent_is_settled_as_never_received(engine) -> None:
    engine.submit("ghost")
    engine.cancel("ghost", "ghost-x")
    engine.restart()
    findings, _ = engine.reconcile(snapshot())
    assert [d.kind for d in findings.discrepancies] == [Kind.NEVER_RECEIVED] and findings.clean
    order = engine.book.order("ghost")
    assert (order.status, order.pending, order.outcome_unknown) == (Status.REJECTED, None, False)


def test_an_order_sent_after_the_snapshot_is_not_declared_never_received(engine) -> None:
    engine.submit("fresh")
    findings, _ = engine.reconcile(snapshot(), settled=set())  # sent a moment ago: in flight
    assert findings.discrepancies == [] and engine.book.order("fresh").status is Status.PENDING_NEW


# --- 6: outcome_unknown survives REJECTED, and a retry then creates an untracked order ---------


def test_an_order_rejected_by_reconciliation_is_no_longer_retryable(engine) -> None:
    engine.submit("u")
    engine.restart()
    assert engine.book.order("u").outcome_unknown and engine.book.order("u").retryable
    engine.reconcile(snapshot())
    order = engine.book.order("u")
    assert order.status is Status.REJECTED and not order.outcome_unknown and not order.retryable
    with pytest.raises(BookError):
        engine.book.submit(new_order("u"), ACCOUNT)


@pytest.mark.parametrize("how", ["canceled", "rejected", "filled"])
def test_every_terminal_report_clears_outcome_unknown(engine, how) -> None:
    v = Venue()
    engine.submit("t")
    engine.restart()
    report = {
        "canceled": v.report("t", ExecType.CANCELED, OrdStatus.CANCELED, "14", "0", "0"),
        "rejected": v.report("t", ExecType.REJECTED, OrdStatus.REJECTED, "14", "0", "0", order_id=""),
        "filled": v.report("t", ExecType.TRADE, OrdStatus.FILLED, "14", "14", "0", fill=("T1", "14")),
    }[how]
    engine.receive(report)
    assert engine.book.order("t").status.terminal and not engine.book.order("t").outcome_unknown


def test_a_retry_that_creates_a_second_exchange_order_is_tracked(engine) -> None:
    """Kalshi refuses a duplicate ClOrdID only while the first order is open: a retry after an
    unknown outcome can create a second order when the first had already ended. Both are tracked."""
    v = Venue()
    engine.submit("twice")
    engine.restart()  # outcome unknown: the user retries with the same ClOrdID
    engine.book.submit(new_order("twice"), ACCOUNT)
    engine.receive(v.report("twice", ExecType.NEW, OrdStatus.NEW, "14", "0", "14", order_id="O-second"))
    # the first one's reports arrive after all (resent): an IOC that filled 3 and was cancelled
    engine.receive(v.report("twice", ExecType.TRADE, OrdStatus.CANCELED, "3", "3", "0", fill=("T1", "3"), order_id="O-first"))
    second, first = engine.book.order("twice"), engine.book.order("twice@O-first")
    assert (second.order_id, second.status, second.cum_qty) == ("O-second", Status.NEW, D(0))
    assert (first.order_id, first.status, first.cum_qty) == ("O-first", Status.CANCELED, D(3))


# --- 7: the journal replays into another book, and then the engine cannot start -----------------


def test_a_restart_mark_is_journaled_so_replay_agrees_with_the_live_book(engine) -> None:
    """The ack was lost; after a restart the retry is answered ORDER_ALREADY_EXISTS: live, the
    order is NEW (it was outcome-unknown); replayed, it must be NEW too, and a later cancel must
    not stop the next start."""
    v = Venue()
    engine.submit("dup")
    engine.restart()
    engine.book.submit(new_order("dup"), ACCOUNT)  # the retry (no new intent: the first is journaled)
    engine.receive(v.report("dup", ExecType.REJECTED, OrdStatus.REJECTED, "14", "0", "0", order_id="",
                            reason=Reason(RejectCode.ORDER_ALREADY_EXISTS, 6, "ORDER_ALREADY_EXISTS")))
    assert engine.book.order("dup").status is Status.NEW
    engine.cancel("dup", "dup-x")
    engine.restart()  # would raise BookError: order dup is rejected; nothing to change
    assert engine.book.order("dup").pending == "dup-x"


def test_a_journal_entry_the_book_refuses_is_logged_and_skipped_not_fatal(tmp_path, caplog) -> None:
    journal = Journal(tmp_path / "old.log")
    journal.record_new(new_order("x"), ACCOUNT)
    journal.record_report(Venue().report("x", ExecType.REJECTED, OrdStatus.REJECTED, "14", "0", "0", order_id=""))
    journal.record_cancel("x", "x-cancel")  # written by a version whose book disagreed
    journal.commit()
    with caplog.at_level(logging.ERROR, logger="fixengine.journal"):
        book = rebuild_book(journal)
    assert book.order("x").status is Status.REJECTED
    assert "entry 3 (CancelIntent)" in caplog.text and "skipped" in caplog.text
    journal.close()


def test_marks_replay_at_the_point_they_were_made(engine) -> None:
    v = Venue()
    engine.submit("m")
    engine.receive(v.report("m", ExecType.NEW, OrdStatus.NEW, "14", "0", "14"))
    engine.journal.mark(engine.book, Marked("stale", ACCOUNT))
    assert engine.book.order("m").unconfirmed
    assert replay_book(engine.journal).order("m").unconfirmed
    engine.journal.mark(engine.book, Marked("confirmed", ACCOUNT))
    assert not replay_book(engine.journal).order("m").unconfirmed


def test_a_resent_pending_report_does_not_undo_what_followed_it(engine) -> None:
    v = Venue()
    engine.submit("r")
    pending = v.report("r", ExecType.PENDING_NEW, OrdStatus.PENDING_NEW, "14", "0", "14")
    pending = ExecutionReport("-1;-1", *[getattr(pending, f) for f in (
        "exec_type", "ord_status", "order_id", "cl_ord_id", "orig_cl_ord_id", "ticker", "side", "order_qty",
        "cum_qty", "leaves_qty")])
    engine.receive(pending, v.report("r", ExecType.NEW, OrdStatus.NEW, "14", "0", "14"), pending)
    assert engine.book.order("r").status is Status.NEW


def test_an_order_given_up_as_never_received_that_rest_shows_later_is_acknowledged(engine) -> None:
    engine.submit("slow")
    engine.reconcile(snapshot())  # not on the exchange as far as REST showed then
    findings, _ = engine.reconcile(snapshot([rest_order("slow", remaining="14")]))
    assert [d.kind for d in findings.discrepancies] == [Kind.ACK_MISSED] and findings.clean
    assert engine.book.order("slow").status is Status.NEW and engine.book.order("slow").order_id == "O-slow"


def test_an_ack_arriving_after_reconciliation_gave_the_order_up_revives_it(engine) -> None:
    v = Venue()
    engine.submit("late")
    engine.reconcile(snapshot())  # not (yet) on the exchange, as far as REST shows
    assert engine.book.order("late").status is Status.REJECTED
    engine.receive(v.report("late", ExecType.NEW, OrdStatus.NEW, "14", "0", "14"))
    assert engine.book.order("late").status is Status.NEW and engine.book.order("late").order_id == "O-late"

