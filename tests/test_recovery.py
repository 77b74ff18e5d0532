"""Sequence recovery: retransmission sessions keep their sequence across restarts (QuickFIX's
FileStore) and recover gaps by ResendRequest; sessions without retransmission never ask for one."""

from __future__ import annotations

import asyncio
from decimal import Decimal as D

import pytest

from conformance.harness import session_to
from fixengine.config import EngineConfig, LogonFlags
from fixengine.fix.dialect import Dialect
from fixengine.engine import Engine
from fixengine.errors import LogonRefusedError
from fixengine.events import (
    LoggedOn,
    LoggedOut,
    LogonRefused as LogonRefusedEvent,
    LogonSent,
    MessagesSkipped,
    ReconnectScheduled,
    ResendRefused,
    ResendRequested,
    SequenceGap,
)
from fixengine.orders.entry import BookHeld, BusinessRejected
from fixengine.kalshi.facts import SessionType
from fixengine.orders.book import OrderAccepted, OrderCanceled, OrderRejected, Status
from fixengine.orders.requests import CancelOrder, NewOrder
from fixengine.kalshi.prices import Action, Contract
from simulator.config import MarketEntry
from tests.helpers.orders import yes_bid

TICKER = "RECOVER-1"
# The two kinds of order-entry session: without retransmission (reset at every logon) and with.
KINDS = {
    "NR": dict(session_type=SessionType.NR),
    "RT": dict(session_type=SessionType.RT, logon=LogonFlags(reset_seq_num=False)),
}
both_kinds = pytest.mark.parametrize("kind", list(KINDS))


async def test_a_restarted_rt_session_continues_its_sequence_from_the_store(tmp_path, make_key, start_simulator) -> None:
    key = make_key()
    sim, _ = start_simulator([key.account()], markets=[MarketEntry(ticker=TICKER)])
    session = session_to(sim, key, **KINDS["RT"])
    config = EngineConfig(data_dir=tmp_path / "engine", sessions=[session])

    first = Engine(config)
    events = first.events()
    await first.start()
    try:
        assert (await events.wait_for(LogonSent)).msg_seq_num == 1
        await first.wait_logged_on()
        placed = await first.submit("s1", yes_bid(TICKER))
        await events.wait_for(OrderAccepted)
    finally:
        await first.stop()

    again = Engine(config)
    events = again.events()
    await again.start()
    try:
        logon = await events.wait_for(LogonSent)
        assert logon.msg_seq_num > 3  # Logon, order, Logout went before: no reset
        await again.wait_logged_on()
        assert again.book.order(placed.key).status is Status.NEW
        assert not again.is_book_held("s1")  # nothing was lost: the counterparty can resend
    finally:
        await again.stop()


# --- faults the simulator injects, and what the engine recovers to ----------------------------


async def started_engine(tmp_path, sim, key, **session):
    engine = Engine(EngineConfig(data_dir=tmp_path / "engine", sessions=[session_to(sim, key, **session)]))
    events = engine.events()
    await engine.start()
    return engine, events


async def logged_on_engine(tmp_path, sim, key, **session):
    engine, events = await started_engine(tmp_path, sim, key, **session)
    await engine.wait_logged_on()
    return engine, events


async def assert_usable(engine: Engine, events) -> None:
    """An order goes through: the session recovered. (Not a TestRequest: right after a KalshiRT
    logon, a TestRequest sent while the sequences are being recovered can be gap-filled away.)"""
    placed = await engine.submit("s1", yes_bid(TICKER, "0.30"))
    while (await events.wait_for(OrderAccepted, timeout=15)).order.key != placed.key:
        pass


def sent_by_engine(engine: Engine) -> str:
    return (engine.config.log_path / "s1.messages.log").read_text()


async def test_nr_gap_logs_out_and_back_on_with_reset_and_holds_the_book(tmp_path, make_key, start_simulator) -> None:
    key = make_key()
    sim, _ = start_simulator([key.account()], markets=[MarketEntry(ticker=TICKER)])
    engine, events = await logged_on_engine(tmp_path, sim, key)
    try:
        first = await engine.submit("s1", yes_bid(TICKER, "0.40"))
        await events.wait_for(OrderAccepted)
        sim.faults.drop_outbound(key.key_id, 1)
        lost = await engine.submit("s1", yes_bid(TICKER, "0.41"))  # its ack is dropped: a gap
        await engine.submit("s1", yes_bid(TICKER, "0.42"))  # its ack shows the gap
        gap = await events.wait_for(SequenceGap)
        assert gap.expected is not None
        await events.wait_for(LoggedOut)
        await events.wait_for(LoggedOn, timeout=15)
        held = await events.wait_for(BookHeld)
        assert held.orders >= 2 and engine.is_book_held("s1")
        assert engine.book.order(lost.key).outcome_unknown  # it is on the exchange; we never heard
        assert engine.book.order(first.key).unconfirmed
        # on the exchange, unheard of: what reconciliation will find (the third may or may not
        # have gone out before the logout: the lost ack's own New can show the gap first)
        assert lost.key in {o.cl_ord_id for o in sim.exchange.open_orders(key.key_id)}
        await engine.stop()
        outgoing = [line for line in sent_by_engine(engine).splitlines() if " > " in line]
        assert not any("|35=2|" in line or "|35=4|" in line for line in outgoing)  # never on NR
    finally:
        await engine.stop()


async def test_rt_gap_is_recovered_by_resend_and_applied_once(tmp_path, make_key, start_simulator) -> None:
    key = make_key()
    sim, _ = start_simulator([key.account()], markets=[MarketEntry(ticker=TICKER)])
    engine, events = await logged_on_engine(tmp_path, sim, key, **KINDS["RT"])
    try:
        sim.faults.drop_outbound(key.key_id, 1)
        placed = [await engine.submit("s1", yes_bid(TICKER, f"0.4{i}")) for i in range(3)]
        resend = await events.wait_for(ResendRequested)
        assert resend.begin >= 2
        while any(engine.book.order(p.key).status is Status.PENDING_NEW for p in placed):
            await events.wait_for(OrderAccepted)
        assert engine.is_logged_on("s1") and not engine.is_book_held("s1")
        assert {o.order_id for o in sim.exchange.open_orders(key.key_id)} == {engine.book.order(p.key).order_id for p in placed}
    finally:
        await engine.stop()


async def test_rt_resend_refused_beyond_retention_relogs_on_with_reset_and_holds_the_book(
    tmp_path, make_key, start_simulator
) -> None:
    key = make_key()
    sim, _ = start_simulator([key.account()], markets=[MarketEntry(ticker=TICKER)])
    engine, events = await logged_on_engine(tmp_path, sim, key, **KINDS["RT"])
    try:
        first = await engine.submit("s1", yes_bid(TICKER, "0.40"))
        await events.wait_for(OrderAccepted)
        sim.faults.shorten_retention(key.key_id, 0)  # nothing sent is kept for a resend any more
        sim.faults.drop_outbound(key.key_id, 1)
        second = await engine.submit("s1", yes_bid(TICKER, "0.41"))  # a report of it is dropped
        third = await engine.submit("s1", yes_bid(TICKER, "0.42"))  # its reports show the gap
        await events.wait_for(ResendRequested)
        refused = await events.wait_for(ResendRefused)
        assert "MsgType 2, tag 7" in refused.text, refused.text  # BeginSeqNo outside the window
        relogon = await events.wait_for(LoggedOn, timeout=15)
        assert relogon.sequence_reset
        await events.wait_for(BookHeld)
        assert engine.is_book_held("s1")
        # unconfirmed, or outcome unknown if its ack had not come yet
        assert all(engine.book.order(p.key).unconfirmed or engine.book.order(p.key).outcome_unknown
                   for p in (first, second, third))
        assert await engine.test_request("s1") < 5  # numbered from 1 again, and answered

        # The forced reset was for one logon: the next one (configured without reset) keeps the sequence.
        sim.faults.clear(key.key_id)
        sim.logout(key.key_id, "maintenance")
        again = await events.wait_for(LoggedOn, timeout=15)
        assert not again.sequence_reset
    finally:
        await engine.stop()


@both_kinds
async def test_a_silent_counterparty_is_timed_out_and_reconnected(tmp_path, make_key, start_simulator, kind) -> None:
    key = make_key()
    sim, _ = start_simulator([key.account()], min_heartbeat_interval=1, markets=[MarketEntry(ticker=TICKER)])
    engine, events = await logged_on_engine(tmp_path, sim, key, heartbeat_interval=1, **KINDS[kind])
    try:
        sim.faults.go_silent(key.key_id)
        out = await events.wait_for(LoggedOut, timeout=15)
        assert "heartbeat timeout" in out.reason or out.reason == "connection lost"
        await events.wait_for(LoggedOn, timeout=20)
        await assert_usable(engine, events)
    finally:
        await engine.stop()


@both_kinds
@pytest.mark.parametrize("mid_message", [False, True], ids=["abrupt", "mid-message"])
async def test_a_closed_socket_is_reconnected(tmp_path, make_key, start_simulator, mid_message, kind) -> None:
    key = make_key()
    sim, _ = start_simulator([key.account()], markets=[MarketEntry(ticker=TICKER)])
    engine, events = await logged_on_engine(tmp_path, sim, key, **KINDS[kind])
    try:
        sim.faults.close(key.key_id, mid_message=mid_message)
        placed = await engine.submit("s1", yes_bid(TICKER)) if mid_message else None  # its ack is cut in half
        out = await events.wait_for(LoggedOut)
        assert out.by_counterparty
        await events.wait_for(LoggedOn, timeout=15)
        if placed is not None and kind == "RT":  # the lost ack is resent after the relogon
            while engine.book.order(placed.key).status is Status.PENDING_NEW:
                await events.wait_for(OrderAccepted)
            assert not engine.is_book_held("s1")
        elif placed is not None:  # NR: it is on the exchange, unheard of: held until reconciled
            assert engine.is_book_held("s1") and engine.book.order(placed.key).outcome_unknown
            engine.confirm_book("s1")  # what reconciliation does (tests/test_reconciliation.py)
        await assert_usable(engine, events)
    finally:
        await engine.stop()


@both_kinds
@pytest.mark.parametrize("fault", ["garble_next", "bad_checksum_next"])
async def test_garbage_from_the_counterparty_is_survived(tmp_path, make_key, start_simulator, fault, kind) -> None:
    key = make_key()
    sim, _ = start_simulator([key.account()], markets=[MarketEntry(ticker=TICKER)])
    engine, events = await logged_on_engine(tmp_path, sim, key, **KINDS[kind])
    try:
        getattr(sim.faults, fault)(key.key_id)
        first = await engine.submit("s1", yes_bid(TICKER, "0.40"))  # the message spoiled is its ack
        second = await engine.submit("s1", yes_bid(TICKER, "0.41"))
        # Either QuickFIX drops the spoiled message (a gap: reconnect, book held) or keeps going;
        # in both the session ends up logged on and the second order known.
        while engine.book.order(second.key).status is Status.PENDING_NEW and not engine.is_book_held("s1"):
            await events.next(timeout=20)
        if engine.is_book_held("s1"):
            assert kind == "NR"  # RT asks for the spoiled message again: nothing is lost
            assert engine.book.order(first.key).outcome_unknown or engine.book.order(first.key).status is Status.NEW
            engine.confirm_book("s1")  # what reconciliation does (tests/test_reconciliation.py)
        await engine.wait_logged_on(timeout=20)
        await assert_usable(engine, events)
        if kind == "RT":
            while engine.book.order(first.key).status is Status.PENDING_NEW:
                await events.wait_for(OrderAccepted)
    finally:
        await engine.stop()


async def test_a_refused_logon_is_retried_and_succeeds(tmp_path, make_key, start_simulator) -> None:
    key = make_key()
    sim, _ = start_simulator([key.account()])
    sim.faults.refuse_next_logon(key.key_id, "Exchange closed for maintenance")
    engine, events = await started_engine(tmp_path, sim, key)
    try:
        with pytest.raises(LogonRefusedError) as refused:
            await engine.wait_logged_on()
        assert refused.value.reason == "Exchange closed for maintenance" and not refused.value.permanent
        await events.wait_for(ReconnectScheduled)
        await events.wait_for(LoggedOn, timeout=15)
    finally:
        await engine.stop()


@pytest.mark.parametrize("session_type", [SessionType.NR, SessionType.RT], ids=["NR", "RT"])
async def test_a_refused_relogon_is_retried_and_the_sequence_goes_on(tmp_path, make_key, start_simulator, session_type) -> None:
    key = make_key()
    sim, _ = start_simulator([key.account()], markets=[MarketEntry(ticker=TICKER)])
    flags = LogonFlags(reset_seq_num=session_type is SessionType.NR)
    engine, events = await logged_on_engine(tmp_path, sim, key, session_type=session_type, logon=flags)
    try:
        placed = await engine.submit("s1", yes_bid(TICKER))
        await events.wait_for(OrderAccepted)
        sim.faults.refuse_next_logon(key.key_id, "Exchange closed for maintenance")
        sim.faults.close(key.key_id)
        refused = await events.wait_for(LogonRefusedEvent, timeout=15)  # numbered 1, out of sequence on RT
        assert refused.reason == "Exchange closed for maintenance"
        await events.wait_for(LoggedOn, timeout=15)
        between = [type(e).__name__ for e in events.drain()]
        assert "ConnectionFailed" not in between and "LoggedOut" not in between, between
        assert "MsgSeqNum too low" not in sent_by_engine(engine)
        cancel = await engine.cancel("s1", CancelOrder(order=placed.key))
        await events.wait_for(OrderCanceled)
        assert engine.book.order(cancel.key).status is Status.CANCELED
    finally:
        await engine.stop()


@both_kinds
async def test_a_skewed_clock_is_reported_then_recovered(tmp_path, make_key, start_simulator, kind) -> None:
    key = make_key()
    sim, _ = start_simulator([key.account()])
    sim.faults.skew_clock(-90)  # the exchange's clock runs 90 s behind: ours looks 90 s ahead
    engine, events = await started_engine(tmp_path, sim, key, **KINDS[kind])
    try:
        with pytest.raises(LogonRefusedError) as refused:
            await engine.wait_logged_on()
        assert "ahead of the counterparty's" in refused.value.reason
        sim.faults.skew_clock(0)
        await events.wait_for(LoggedOn, timeout=15)
    finally:
        await engine.stop()


@pytest.mark.parametrize(
    ("dialect", "kind"), [(Dialect.FIXT11, "NR"), (Dialect.FIX44, "NR"), (Dialect.FIXT11, "RT")], ids=["fixt11-NR", "fix44-NR", "fixt11-RT"]
)
async def test_a_rate_limited_order_is_rejected_and_the_next_goes_through(tmp_path, make_key, start_simulator, dialect, kind) -> None:
    key = make_key()
    sim, _ = start_simulator([key.account()], markets=[MarketEntry(ticker=TICKER)])
    engine, events = await logged_on_engine(tmp_path, sim, key, dialect=dialect, **KINDS[kind])
    try:
        sim.faults.rate_limit(key.key_id, 1)
        limited = await engine.submit("s1", yes_bid(TICKER, "0.40"))
        business = await events.wait_for(BusinessRejected)
        assert (business.ref_msg_type, business.ref_id, business.reason.number) == ("D", limited.key, 8)
        rejected = await events.wait_for(OrderRejected)
        assert rejected.order.key == limited.key and rejected.order.status is Status.REJECTED
        assert sim.exchange.open_orders(key.key_id) == []
        again = await engine.submit("s1", yes_bid(TICKER, "0.40"))
        assert (await events.wait_for(OrderAccepted)).order.key == again.key
    finally:
        await engine.stop()
    rebuilt = Engine(engine.config)
    await rebuilt.start()
    try:
        assert rebuilt.book.order(limited.key).status is Status.REJECTED  # the reject was journaled
    finally:
        await rebuilt.stop()


@pytest.mark.parametrize("session_type", [SessionType.NR, SessionType.RT], ids=["nr", "rt"])
async def test_a_possdup_copy_of_a_fill_is_applied_once(tmp_path, make_key, start_simulator, session_type) -> None:
    maker, taker = make_key(), make_key()
    sim, _ = start_simulator([maker.account(), taker.account()], markets=[MarketEntry(ticker=TICKER)])
    config = EngineConfig(data_dir=tmp_path / "engine", sessions=[
        session_to(sim, maker, name="maker"),
        session_to(sim, taker, name="taker", session_type=session_type, logon=LogonFlags(reset_seq_num=session_type is SessionType.NR)),
    ])
    engine = Engine(config)
    events = engine.events()
    await engine.start()
    try:
        await engine.wait_logged_on()
        await engine.submit("maker", yes_bid(TICKER, "0.40"))
        await events.wait_for(OrderAccepted)
        sim.faults.duplicate_next(taker.key_id)  # the taker's fill report arrives twice
        sell = NewOrder.create(ticker=TICKER, action=Action.SELL, contract=Contract.YES, quantity=D(5), price=D("0.40"))
        taker_order = await engine.submit("taker", sell)
        while engine.book.order(taker_order.key).status is not Status.FILLED:
            await events.next(timeout=10)
        assert await engine.test_request("taker") < 5  # the copy has been through by now
        assert engine.book.position(taker.key_id, TICKER) == D(-5)  # not -10
        assert engine.book.order(taker_order.key).cum_qty == D(5)
    finally:
        await engine.stop()


@both_kinds
async def test_delayed_reports_arrive_late_but_in_order(tmp_path, make_key, start_simulator, kind) -> None:
    key = make_key()
    sim, _ = start_simulator([key.account()], markets=[MarketEntry(ticker=TICKER)])
    engine, events = await logged_on_engine(tmp_path, sim, key, **KINDS[kind])
    try:
        sim.faults.delay(key.key_id, 0.5)
        placed = [await engine.submit("s1", yes_bid(TICKER, f"0.4{i}")) for i in range(3)]
        accepted = [(await events.wait_for(OrderAccepted)).order.key for _ in placed]
        assert accepted == [p.key for p in placed]
        sim.faults.clear(key.key_id)
        assert engine.is_logged_on("s1") and await engine.test_request("s1") < 5
    finally:
        await engine.stop()


@pytest.mark.parametrize("gap_fill", [True, False], ids=["gap-fill", "reset"])
async def test_a_sequence_reset_from_the_counterparty_is_followed(tmp_path, make_key, start_simulator, gap_fill) -> None:
    key = make_key()
    sim, _ = start_simulator([key.account()], markets=[MarketEntry(ticker=TICKER)])
    engine, events = await logged_on_engine(tmp_path, sim, key, **KINDS["RT"])
    try:
        await asyncio.to_thread(sim.faults.sequence_reset, key.key_id, gap_fill)
        placed = await engine.submit("s1", yes_bid(TICKER))  # its ack comes numbered after the reset
        accepted = await events.wait_for(OrderAccepted)
        assert accepted.order.key == placed.key and engine.is_logged_on("s1")
        assert not engine.is_book_held("s1")
    finally:
        await engine.stop()


async def test_a_reset_mode_sequence_reset_over_unreceived_messages_holds_the_book(tmp_path, make_key, start_simulator) -> None:
    key = make_key()
    sim, _ = start_simulator([key.account()], markets=[MarketEntry(ticker=TICKER)])
    engine, events = await logged_on_engine(tmp_path, sim, key, **KINDS["RT"])
    try:
        placed = await engine.submit("s1", yes_bid(TICKER))
        await events.wait_for(OrderAccepted)
        sim.faults.drop_outbound(key.key_id, 2)
        second = await engine.submit("s1", yes_bid(TICKER, "0.41"))  # both its reports are dropped: never received ...
        assert await asyncio.to_thread(sim.faults.wait_spent, key.key_id)
        new_seq_no = await asyncio.to_thread(sim.faults.sequence_reset, key.key_id, False)  # ... and skipped
        skipped = await events.wait_for(MessagesSkipped)
        assert skipped.new_seq_no == new_seq_no and skipped.first < new_seq_no - 1
        await events.wait_for(BookHeld)
        assert engine.book.order(placed.key).unconfirmed and engine.is_logged_on("s1")
        assert engine.book.order(second.key).status is Status.PENDING_NEW  # what reconciliation will fix
    finally:
        await engine.stop()
