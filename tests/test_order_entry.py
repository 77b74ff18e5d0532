"""Order entry without a network: a transport that refuses to send, and what the caller sees."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal as D

import pytest

from fixengine.config import SessionConfig
from fixengine.kalshi.facts import SessionType
from fixengine.orders.entry import OrderEntry, SendFailed
from fixengine.orders.book import OrderAccepted, Status
from fixengine.orders.book import OrderBook
from fixengine.orders.journal import Journal, replay_book
from fixengine.orders.requests import CancelOrder, InvalidOrderError, NewOrder
from fixengine.kalshi.prices import Action, Contract


def replayed(path) -> OrderBook:
    journal = Journal(path)
    try:
        return replay_book(journal)
    finally:
        journal.close()


def nr_session(tmp_path) -> SessionConfig:
    return SessionConfig(
        name="nr", host="127.0.0.1", port=1, tls=False, session_type=SessionType.NR, api_key_id="k",
        private_key_file=tmp_path / "k.pem",
    )


def test_an_order_queued_but_refused_by_the_transport_becomes_outcome_unknown(tmp_path) -> None:
    session = nr_session(tmp_path)
    published: list[object] = []
    soon: list = []
    sent: list[tuple[str, list]] = []

    def refuse(s: SessionConfig, msg_type: str, fields: list) -> bool:
        sent.append((msg_type, fields))
        return False  # what QuickFIX answers when the session has gone

    entry = OrderEntry(Journal(tmp_path / "j.db"), {"nr": session}, refuse, published.append, lambda _: True, soon.append)
    placed = entry.submit("nr", NewOrder.create(
        ticker="T-1", action=Action.BUY, contract=Contract.YES, quantity=D(1), price=D("0.40"), client_order_id="c1",
    ))
    assert sent == [] and len(soon) == 1  # queued for the end of the loop turn, not sent yet
    soon[0]()
    assert [m for m, _ in sent] == ["D"]
    (failed,) = published  # made when it happened: its ``at`` is whatever the clock said
    assert failed == SendFailed("nr", "D", "c1", "session nr could not send: not logged on", at=failed.at)
    order = entry.book.order(placed.key)
    assert order.status is Status.PENDING_NEW and order.outcome_unknown  # may retry with the same ClOrdID
    entry.journal.close()
    assert replayed(tmp_path / "j.db").order("c1").outcome_unknown  # journaled before the send


def test_a_cancel_the_transport_refused_leaves_the_order_as_it_was(tmp_path) -> None:
    session = nr_session(tmp_path)
    published: list[object] = []
    soon: list = []
    transport_up = [True]
    entry = OrderEntry(
        Journal(tmp_path / "j.db"), {"nr": session}, lambda s, m, f: transport_up[0], published.append,
        lambda _: True, soon.append,
    )
    placed = entry.submit("nr", NewOrder.create(
        ticker="T-1", action=Action.BUY, contract=Contract.YES, quantity=D(1), price=D("0.40"), client_order_id="c1",
    ))
    soon.pop()()
    transport_up[0] = False
    entry.cancel("nr", CancelOrder(order=placed.key, client_order_id="x1"))
    soon.pop()()
    assert [type(e).__name__ for e in published] == ["SendFailed", "CancelRejected"]
    assert {e.session for e in published} == {"nr"}  # the book's CancelRejected too: stamped when published
    order = entry.book.order(placed.key)
    assert order.status is Status.PENDING_NEW and order.pending is None  # no cancel in flight
    transport_up[0] = True
    entry.cancel("nr", CancelOrder(order=placed.key, client_order_id="x2"))  # so it can be cancelled again
    entry.journal.close()
    assert replayed(tmp_path / "j.db").order("c1").pending == "x2"  # the refusal was journaled


def placed_entry(tmp_path, *, reconciled: bool = False) -> tuple[OrderEntry, list, list]:
    published: list[object] = []
    soon: list = []
    entry = OrderEntry(Journal(tmp_path / "j.db"), {"nr": nr_session(tmp_path)}, lambda s, m, f: False,
                       published.append, lambda _: True, soon.append, reconciled=reconciled)
    return entry, published, soon


def an_order(cl: str) -> NewOrder:
    return NewOrder.create(ticker="T-1", action=Action.BUY, contract=Contract.YES, quantity=D(1), price=D("0.40"),
                           client_order_id=cl)


def test_the_books_events_are_published_with_the_session_the_report_came_on(tmp_path) -> None:
    """The book is pure and serves every session: it knows neither the session nor the time, so
    the order entry stamps both on the events before they are published."""
    entry, published, _ = placed_entry(tmp_path)
    entry.submit("nr", an_order("c1"))
    ack = "".join(f"{tag}={value}\x01" for tag, value in [
        (8, "FIXT.1.1"), (9, "0"), (35, "8"), (34, "2"), (37, "O-1"), (11, "c1"), (17, "1;1"), (150, "0"),
        (39, "0"), (55, "T-1"), (54, "1"), (38, "1"), (14, "0"), (151, "1"), (44, "40"), (10, "000"),
    ])
    before = datetime.now(timezone.utc)
    entry.on_messages([("nr", "8", ack)])
    (accepted,) = published
    assert isinstance(accepted, OrderAccepted) and accepted.order.order_id == "O-1"
    assert accepted.session == "nr" and accepted.at >= before
    entry.journal.close()


def test_with_reconciliation_an_unknown_outcome_is_not_retried(tmp_path) -> None:
    """Kalshi refuses a duplicate ClOrdID only while the first order is open: where REST can settle
    an unknown outcome, a retry (which could put a second order on the exchange) is refused."""
    entry, _, soon = placed_entry(tmp_path, reconciled=True)
    entry.submit("nr", an_order("c1"))
    soon.pop()()  # the transport refuses: outcome unknown
    assert entry.book.order("c1").retryable
    with pytest.raises(InvalidOrderError, match="client_order_id: c1 has an unknown outcome"):
        entry.submit("nr", an_order("c1"))
    entry.journal.close()


def test_requests_quickfix_never_stored_are_settled_as_never_sent(tmp_path) -> None:
    entry, _, _ = placed_entry(tmp_path)
    for cl in ("sent", "unsent", "live", "both-unsent"):
        entry.submit("nr", an_order(cl))
    entry.journal.commit()
    for key in ("live", "both-unsent"):
        entry.book.cancel(key, f"{key}-x")
        entry.journal.record_cancel(key, f"{key}-x")
    # "unsent"; the cancel "live-x"; the order "both-unsent" (with its cancel)
    assert entry.settle_unsent("nr", sent={"sent", "live"}) == 3
    assert entry.book.order("unsent").status is Status.REJECTED
    assert entry.book.order("live").pending is None and entry.book.order("sent").status is Status.PENDING_NEW
    gone = entry.book.order("both-unsent")
    assert (gone.status, gone.pending) == (Status.REJECTED, None)
    entry.journal.close()


def test_a_requests_send_time_is_kept_while_it_is_unanswered_and_dropped_with_its_answer(tmp_path) -> None:
    """Reconciliation asks when an unanswered request went out; once its answer is in the book the
    time is dropped on the spot (no walk over the whole book to prune it)."""
    published: list[object] = []
    soon: list = []
    entry = OrderEntry(Journal(tmp_path / "j.db"), {"nr": nr_session(tmp_path)}, lambda s, m, f: 2,
                       published.append, lambda _: True, soon.append)
    entry.submit("nr", an_order("c1"))
    entry.submit("nr", an_order("c2"))
    soon.pop()()  # both sent, as MsgSeqNum 2 (what the transport said)
    assert entry.request_sent_at("c1") is not None and entry.request_sent_at("c2") is not None
    ack = "".join(f"{tag}={value}\x01" for tag, value in [
        (8, "FIXT.1.1"), (9, "0"), (35, "8"), (34, "2"), (37, "O-1"), (11, "c1"), (17, "1;1"), (150, "0"),
        (39, "0"), (55, "T-1"), (54, "1"), (38, "1"), (14, "0"), (151, "1"), (44, "40"), (10, "000"),
    ])
    entry.on_messages([("nr", "8", ack)])
    assert entry.request_sent_at("c1") is None  # answered: the book has its OrderID
    assert entry.request_sent_at("c2") is not None  # still in flight
    entry.journal.close()
