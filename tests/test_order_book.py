"""The order book as a pure state machine: fed requests and reports, no sockets (h11 style)."""

from __future__ import annotations

import dataclasses
from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fixengine.orders.book import (
    BookError,
    CancelRejected,
    OrderAccepted,
    OrderBook,
    OrderCanceled,
    OrderFilled,
    OrderRejected,
    OrderReplaced,
    PositionChanged,
    Status,
    UnmatchedReport,
)
from fixengine.orders.reports import (
    CancelReject,
    CxlRejResponseTo,
    ExecType,
    OrdStatus,
    Reason,
    RejectCode,
)
from fixengine.orders.requests import NewOrder
from fixengine.kalshi.prices import Action, Contract, WireSide
from tests.helpers.orders import book_order
from tests.helpers.reports import FakeExchange


def test_new_partial_full_fill_and_position() -> None:
    book, x = OrderBook(), FakeExchange("c1", D(10))
    assert book.submit(book_order()).status is Status.PENDING_NEW
    [accepted] = book.apply(x.new())
    assert isinstance(accepted, OrderAccepted) and accepted.order.status is Status.NEW
    assert accepted.order.order_id == "O-1"
    filled, position = book.apply(x.trade(D(4)))
    assert isinstance(filled, OrderFilled) and filled.order.status is Status.PARTIALLY_FILLED
    assert (filled.order.cum_qty, filled.order.leaves_qty) == (D(4), D(6))
    assert position == PositionChanged("", "HIGHNY-23DEC31", D(4))
    events = book.apply(x.trade(D(6)))
    assert events[0].order.status is Status.FILLED and book.position("", "HIGHNY-23DEC31") == D(10)


def test_new_folded_into_first_trade() -> None:
    """Without 21026 Kalshi sends no New before an immediate fill: the Trade acknowledges."""
    book, x = OrderBook(), FakeExchange("c1", D(5))
    book.submit(book_order(qty="5"))
    [filled, _] = book.apply(x.trade(D(5)))
    assert filled.order.status is Status.FILLED and filled.order.order_id == "O-1"


def test_buying_no_is_selling_yes_on_the_book_and_shortens_the_position() -> None:
    book = OrderBook()
    request = NewOrder.create(ticker="HIGHNY-23DEC31", action=Action.BUY, contract=Contract.NO,
                              quantity=D(3), price=D("0.55"), client_order_id="n1")
    placed = book.submit(request)
    assert (placed.side, placed.yes_price) == (WireSide.SELL_YES, D("0.45"))
    x = FakeExchange("n1", D(3), side=WireSide.SELL_YES)
    book.apply(x.new())
    book.apply(x.trade(D(3)))
    assert book.position("", "HIGHNY-23DEC31") == D(-3)


def test_cancel_lifecycle() -> None:
    book, x = OrderBook(), FakeExchange("c1", D(10))
    book.submit(book_order())
    book.apply(x.new())
    assert book.cancel("c1", "k1").status is Status.PENDING_CANCEL
    [canceled] = book.apply(x.canceled("k1"))
    assert isinstance(canceled, OrderCanceled)
    assert canceled.order.status is Status.CANCELED and canceled.order.leaves_qty == 0
    with pytest.raises(BookError, match="is canceled"):
        book.cancel("c1", "k2")


def test_cancel_reject_leaves_the_order_as_it_was() -> None:
    book, x = OrderBook(), FakeExchange("c1", D(10))
    book.submit(book_order())
    book.apply(x.new())
    book.apply(x.trade(D(2)))
    book.cancel("c1", "k1")
    reject = CancelReject("k1", "c1", "O-1", OrdStatus.PARTIALLY_FILLED, CxlRejResponseTo.CANCEL, Reason.of("ORDER_AMEND_IN_PROGRESS", 2))
    [event] = book.apply(reject)
    assert isinstance(event, CancelRejected) and event.order.status is Status.PARTIALLY_FILLED
    assert event.order.pending is None and event.reject.reason.code is RejectCode.ORDER_AMEND_IN_PROGRESS


def test_replace_changes_price_quantity_and_the_current_clordid() -> None:
    book, x = OrderBook(), FakeExchange("c1", D(10))
    book.submit(book_order())
    book.apply(x.new())
    book.apply(x.trade(D(2)))
    book.replace("c1", "r1", D(8))
    [replaced] = book.apply(x.replaced("r1", D(8), D("0.47")))
    assert isinstance(replaced, OrderReplaced)
    o = replaced.order
    assert (o.cl_ord_id, o.quantity, o.yes_price, o.status) == ("r1", D(8), D("0.47"), Status.PARTIALLY_FILLED)
    assert (o.cum_qty, o.leaves_qty) == (D(2), D(6))
    assert book.order("r1") is book.order("c1")  # any ClOrdID of the chain finds the order


def test_a_report_under_the_replaces_clordid_shows_the_replace_happened() -> None:
    """Found by tests/test_crash_random.py (nr-rest, seed 41): the Replaced report was lost to a
    kill, and the next report for the order (here its cancel) came under the replace's ClOrdID
    at the new price. The book takes the replace as done, then the cancel."""
    book, x = OrderBook(), FakeExchange("c1", D(2))
    book.submit(book_order(qty="2"))
    book.apply(x.new())
    book.replace("c1", "r1")
    x.cl_ord_id = "r1"  # the exchange replaced it; that answer never arrives
    [canceled] = book.apply(x.report(ExecType.CANCELED, OrdStatus.CANCELED, leaves=D(0), price=D("0.72")))
    o = canceled.order
    assert isinstance(canceled, OrderCanceled)
    assert (o.status, o.cl_ord_id, o.yes_price, o.pending, o.resting_status) == (Status.CANCELED, "r1", D("0.72"), None, None)


def test_a_fill_under_the_replaces_clordid_ends_the_pending_replace() -> None:
    book, x = OrderBook(), FakeExchange("c1", D(5))
    book.submit(book_order(qty="5"))
    book.apply(x.new())
    book.replace("c1", "r1")
    x.cl_ord_id = "r1"
    [o] = [e.order for e in book.apply(x.trade(D(2), price=D("0.47"))) if isinstance(e, OrderFilled)]
    assert (o.status, o.cl_ord_id, o.pending, o.cum_qty, o.leaves_qty) == (Status.PARTIALLY_FILLED, "r1", None, D(2), D(3))
    book.cancel("c1", "x1")  # a live order again: it may be cancelled


def test_replace_below_filled_is_refused_before_sending() -> None:
    book, x = OrderBook(), FakeExchange("c1", D(10))
    book.submit(book_order())
    book.apply(x.trade(D(4)))
    with pytest.raises(BookError, match="below the 4 already filled"):
        book.replace("c1", "r1", D(3))


def test_reject_is_terminal_and_typed() -> None:
    book, x = OrderBook(), FakeExchange("c1", D(10))
    book.submit(book_order())
    [rejected] = book.apply(x.report(ExecType.REJECTED, OrdStatus.REJECTED, leaves=D(0), reason=Reason.of("INSUFFICIENT_BALANCE", 3)))
    assert isinstance(rejected, OrderRejected) and rejected.order.status is Status.REJECTED
    assert rejected.order.reason == Reason(RejectCode.INSUFFICIENT_BALANCE, 3, "INSUFFICIENT_BALANCE")


def test_unknown_outcome_allows_a_retry_with_the_same_clordid() -> None:
    book, x = OrderBook(), FakeExchange("c1", D(10))
    book.submit(book_order())
    [event] = book.apply(x.report(ExecType.REJECTED, OrdStatus.REJECTED, leaves=D(0), reason=Reason.of("EXCHANGE_UNAVAILABLE", 99)))
    assert event.order.outcome_unknown and event.order.status is Status.PENDING_NEW
    again = book.submit(book_order())  # same ClOrdID: allowed, the same order
    assert again.key == "c1"
    book.apply(x.new())
    assert book.order("c1").status is Status.NEW and not book.order("c1").outcome_unknown


def test_stale_marks_live_orders_of_one_account_until_news_or_confirmation() -> None:
    book, live, done = OrderBook(), FakeExchange("live", D(10)), FakeExchange("done", D(1), shard=1)
    book.submit(book_order("live"), "acct")
    book.submit(book_order("sent"), "acct")  # never acknowledged
    book.submit(book_order("done", qty="1"), "acct")
    book.submit(book_order("other"), "other-acct")
    book.apply(live.new())
    book.apply(dataclasses.replace(done.trade(D(1)), order_id="O-2"))
    marked = book.mark_stale("acct")
    assert {o.key for o in marked} == {"live", "sent"}  # filled is terminal; other account untouched
    assert book.order("live").unconfirmed and book.order("sent").outcome_unknown
    assert not book.order("other").unconfirmed and not book.order("other").outcome_unknown
    book.apply(live.trade(D(2)))  # a report is news of the order: current again
    assert not book.order("live").unconfirmed
    book.mark_stale("acct")
    book.confirm("acct")
    assert not book.order("live").unconfirmed


def test_clordids_are_unique_forever() -> None:
    book = OrderBook()
    book.submit(book_order("c1"))
    with pytest.raises(BookError, match="unique forever"):
        book.submit(book_order("c1"))
    with pytest.raises(BookError, match="unique forever"):
        book.cancel("c1", "c1")


def test_duplicate_reports_are_ignored_by_execid_per_shard() -> None:
    book, x = OrderBook(), FakeExchange("c1", D(10), shard=2)
    book.submit(book_order())
    trade = x.trade(D(4))
    assert book.apply(trade)
    assert book.apply(trade) == []
    assert book.order("c1").cum_qty == D(4)
    assert trade.dedupe_key == (2, trade.exec_id)


def test_pending_reports_are_never_deduplicated() -> None:
    book, x = OrderBook(), FakeExchange("c1", D(10))
    book.submit(book_order())
    pending = x.report(ExecType.PENDING_NEW, OrdStatus.PENDING_NEW, exec_id="-1;-1")
    assert book.apply(pending) and book.apply(pending)
    assert pending.dedupe_key is None


def test_report_for_an_unknown_order_is_surfaced() -> None:
    book, x = OrderBook(), FakeExchange("elsewhere", D(1))
    [event] = book.apply(x.new())
    assert isinstance(event, UnmatchedReport)


def test_fill_while_cancel_in_flight_keeps_the_cancel_pending() -> None:
    book, x = OrderBook(), FakeExchange("c1", D(10))
    book.submit(book_order())
    book.apply(x.new())
    book.cancel("c1", "k1")
    book.apply(x.trade(D(3)))
    o = book.order("c1")
    assert o.status is Status.PENDING_CANCEL and o.cum_qty == D(3)
    book.apply(x.canceled("k1"))
    assert book.order("c1").status is Status.CANCELED and book.order("c1").cum_qty == D(3)


# --- properties -------------------------------------------------------------------------------

steps = st.lists(
    st.one_of(
        st.tuples(st.just("trade"), st.integers(1, 400)),
        st.tuples(st.just("cancel"), st.just(0)),
        st.tuples(st.just("replace"), st.integers(1, 2000)),
        st.tuples(st.just("duplicate"), st.just(0)),
    ),
    max_size=25,
)


@settings(max_examples=300, deadline=None)
@given(quantity=st.integers(1, 1000), script=steps, folded=st.booleans())
def test_invariants_hold_for_any_sequence_of_reports(quantity: int, script, folded: bool) -> None:
    qty = D(quantity) / 100
    book, x = OrderBook(), FakeExchange("c1", qty)
    book.submit(book_order(qty=str(qty)))
    sent = [] if folded else [x.new()]
    for r in sent:
        book.apply(r)
    n = 0
    for action, amount in script:
        o = book.order("c1")
        if o.status.terminal:
            break
        if action == "trade":
            fill = min(D(amount) / 100, x.quantity - x.cum)
            if fill > 0:
                sent.append(x.trade(fill))
        elif action == "cancel" and o.pending is None:
            n += 1
            book.cancel("c1", f"k{n}")
            sent.append(x.canceled(f"k{n}"))
        elif action == "replace" and o.pending is None:
            new_qty = max(D(amount) / 100, x.cum)
            n += 1
            book.replace("c1", f"r{n}", new_qty)
            sent.append(x.replaced(f"r{n}", new_qty, D("0.46")))
        elif action == "duplicate" and sent:
            sent.append(sent[-1])
        if sent:
            book.apply(sent[-1])
        o = book.order("c1")
        assert o.cum_qty >= 0 and o.leaves_qty >= 0 and o.quantity >= 0
        if not o.status.terminal or o.status is Status.FILLED:
            assert o.cum_qty + o.leaves_qty == o.quantity
    final = book.order("c1")
    position = dict(book.positions)
    # Replaying everything again changes nothing.
    for r in sent:
        assert book.apply(r) == []
    assert book.order("c1") == final and book.positions == position
    # The position is the sum of fills.
    assert position.get(("", "HIGHNY-23DEC31"), D(0)) == final.cum_qty


@settings(max_examples=100, deadline=None)
@given(late=st.sampled_from(["new", "replaced", "pending"]))
def test_terminal_states_absorb(late: str) -> None:
    book, x = OrderBook(), FakeExchange("c1", D(10))
    book.submit(book_order())
    book.apply(x.new())
    book.cancel("c1", "k1")
    book.apply(x.canceled("k1"))
    done = book.order("c1")
    later = {"new": x.new, "replaced": lambda: x.replaced("r9", D(5), D("0.4")),
             "pending": lambda: x.report(ExecType.PENDING_CANCEL, OrdStatus.PENDING_CANCEL, exec_id="-1;-1")}[late]()
    assert book.apply(later) == []
    assert book.order("c1") == done


def test_a_fill_reported_after_the_order_ended_is_recorded_and_the_order_stays_ended() -> None:
    """A fill is a fill: one whose report was lost, brought later (a heal), still counts once."""
    book, x = OrderBook(), FakeExchange("c1", D(10))
    book.submit(book_order())
    book.apply(x.new())
    late_fill = x.trade(D(2))  # happened; its report arrives after the cancel's
    book.cancel("c1", "k1")
    book.apply(x.canceled("k1"))
    [filled, position] = book.apply(late_fill)
    assert isinstance(filled, OrderFilled) and isinstance(position, PositionChanged)
    ended = book.order("c1")
    assert (ended.status, ended.cum_qty, ended.leaves_qty) == (Status.CANCELED, D(2), D(0))
    assert book.apply(late_fill) == []
