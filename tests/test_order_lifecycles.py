"""More order lifecycles end to end, and the Logon flags that change how Kalshi reports them."""

from __future__ import annotations

from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone
from decimal import Decimal as D

import pytest

from conformance.harness import session_to
from fixengine.config import LogonFlags
from fixengine.engine import Engine
from fixengine.orders.book import OrderAccepted, OrderCanceled, OrderExpired, OrderFilled, OrderPending, Status
from fixengine.orders.reports import RejectCode
from fixengine.orders.requests import CancelOrder, NewOrder, ReplaceOrder, SelfTradePrevention, TimeInForce
from fixengine.kalshi.prices import Action
from simulator.config import MarketEntry
from tests.helpers.orders import new_order
from tests.helpers.sessions import engine_config

TICKER = "HIGHNY-23DEC31"


@pytest.fixture
def venue(tmp_path, make_key, start_simulator):
    """Start a simulator with one market; ``open(flags)`` gives an engine with maker/taker sessions."""
    maker, taker = make_key(), make_key()
    sim, _ = start_simulator([maker.account(), taker.account()], markets=[MarketEntry(ticker=TICKER)])

    @asynccontextmanager
    async def open(flags: LogonFlags = LogonFlags()):
        config = engine_config(
            tmp_path,
            session_to(sim, maker, name="maker", logon=flags),
            session_to(sim, taker, name="taker", logon=flags),
        )
        engine = Engine(config)
        events = engine.events()
        await engine.start()
        try:
            await engine.wait_logged_on()
            yield engine, events, sim
        finally:
            await engine.stop()

    return open


async def settle(engine, events, key: str) -> list:
    """Wait (on events, with a timeout) until the order is in a terminal state; the events seen."""
    seen = []
    while not engine.book.order(key).status.terminal:
        seen.append(await events.next(timeout=10))
    return seen + events.drain()  # reports that came in the same burst


async def rest(engine, events, session: str, request: NewOrder) -> str:
    placed = await engine.submit(session, request)
    accepted = await events.wait_for(OrderAccepted)
    assert accepted.order.key == placed.key
    return placed.key


async def test_post_only_that_would_cross_is_canceled(venue) -> None:
    async with venue() as (engine, events, _):
        await rest(engine, events, "maker", new_order(TICKER, Action.SELL, price="0.45"))
        key = (await engine.submit("taker", new_order(TICKER, price="0.45", post_only=True))).key
        await settle(engine, events, key)
        o = engine.book.order(key)
        assert (o.status, o.cum_qty, o.reason.code) == (Status.CANCELED, 0, RejectCode.POST_ONLY_CROSS)


async def test_fok_without_enough_volume_is_canceled_unfilled(venue) -> None:
    async with venue() as (engine, events, sim):
        await rest(engine, events, "maker", new_order(TICKER, Action.SELL, qty="3"))
        key = (await engine.submit("taker", new_order(TICKER, qty="5", time_in_force=TimeInForce.FOK))).key
        await settle(engine, events, key)
        o = engine.book.order(key)
        assert (o.status, o.cum_qty, o.reason.code) == (Status.CANCELED, 0, RejectCode.FOK_INSUFFICIENT_VOLUME)
        assert sim.exchange.best_offer(TICKER) == D("0.45")  # the maker's offer is untouched


@pytest.mark.parametrize("expired_status", [False, True], ids=["cancel-report", "21012"])
async def test_gtd_order_expires_on_time(venue, expired_status) -> None:
    async with venue(LogonFlags(use_expired_ord_status=expired_status)) as (engine, events, _):
        soon = datetime.now(timezone.utc) + timedelta(seconds=1)
        key = await rest(engine, events, "maker", new_order(TICKER, time_in_force=TimeInForce.GTD, expire_time=soon))
        await settle(engine, events, key)
        o = engine.book.order(key)
        assert o.status is (Status.EXPIRED if expired_status else Status.CANCELED)
        assert o.leaves_qty == 0


@pytest.mark.parametrize("mode", [SelfTradePrevention.TAKER_AT_CROSS, SelfTradePrevention.MAKER])
async def test_self_trade_prevention(venue, mode) -> None:
    async with venue() as (engine, events, sim):
        mine = await rest(engine, events, "maker", new_order(TICKER, Action.SELL, qty="5"))
        taker = (await engine.submit("maker", new_order(TICKER, qty="5", self_trade_prevention=mode))).key
        if mode is SelfTradePrevention.TAKER_AT_CROSS:
            await settle(engine, events, taker)
            assert engine.book.order(taker).reason.code is RejectCode.TAKER_CANCEL_FOR_SELF_TRADE_PREVENTION
            assert engine.book.order(mine).status is Status.NEW  # the resting order stays
        else:
            await settle(engine, events, mine)
            assert engine.book.order(mine).reason.code is RejectCode.MAKER_CANCEL_FOR_SELF_TRADE_PREVENTION
            assert engine.book.order(taker).status is Status.NEW  # and the incoming order rests
        assert engine.book.order(taker).cum_qty == 0 and engine.book.order(mine).cum_qty == 0


async def test_replace_to_the_filled_quantity_cancels_the_rest(venue) -> None:
    async with venue() as (engine, events, _):
        key = await rest(engine, events, "maker", new_order(TICKER, Action.SELL, qty="10"))
        await engine.submit("taker", new_order(TICKER, qty="4"))
        while engine.book.order(key).cum_qty < 4:
            await events.wait_for(OrderFilled)
        await engine.replace("maker", ReplaceOrder.create(order=key, quantity=D(4)))
        await settle(engine, events, key)
        o = engine.book.order(key)
        assert (o.status, o.cum_qty, o.leaves_qty) == (Status.CANCELED, D(4), D(0))


async def test_new_is_folded_into_the_first_trade_unless_21026(venue) -> None:
    for always_new in (False, True):
        async with venue(LogonFlags(always_emit_new_before_trade=always_new)) as (engine, events, _):
            await rest(engine, events, "maker", new_order(TICKER, Action.SELL, qty="2"))
            key = (await engine.submit("taker", new_order(TICKER, qty="2"))).key
            seen = await settle(engine, events, key)
            acks = [e for e in seen if isinstance(e, OrderAccepted) and e.order.key == key]
            assert len(acks) == (1 if always_new else 0), [type(e).__name__ for e in seen]


async def test_pending_reports_unless_21011(venue) -> None:
    for skip in (False, True):
        async with venue(LogonFlags(skip_pending_exec_reports=skip)) as (engine, events, _):
            placed = await engine.submit("maker", new_order(TICKER))
            await events.wait_for(OrderAccepted)
            stream = engine.events()
            pending_seen = False
            await engine.replace("maker", ReplaceOrder.create(order=placed.key, price=D("0.44")))
            while engine.book.order(placed.key).pending is not None:
                event = await stream.next(timeout=10)
                pending_seen |= isinstance(event, OrderPending)
            pending_seen |= any(isinstance(e, OrderPending) for e in stream.drain())
            assert pending_seen is (not skip)


async def test_21008_keeps_the_original_order_quantity_on_cancel(venue) -> None:
    for preserve in (False, True):
        async with venue(LogonFlags(preserve_original_order_qty=preserve)) as (engine, events, _):
            key = await rest(engine, events, "maker", new_order(TICKER, Action.SELL, qty="10"))
            await engine.submit("taker", new_order(TICKER, qty="3"))
            while engine.book.order(key).cum_qty < 3:
                await events.wait_for(OrderFilled)
            await engine.cancel("maker", CancelOrder.create(order=key))
            await events.wait_for(OrderCanceled)
            assert engine.book.order(key).quantity == (D(10) if preserve else D(3))


async def test_ioc_gets_its_own_cancel_report_with_21007(venue) -> None:
    async with venue(LogonFlags(enable_ioc_cancel_report=True)) as (engine, events, _):
        await rest(engine, events, "maker", new_order(TICKER, Action.SELL, qty="3"))
        key = (await engine.submit("taker", new_order(TICKER, qty="5", time_in_force=TimeInForce.IOC))).key
        canceled = await events.wait_for(OrderCanceled)
        assert canceled.order.key == key and canceled.order.reason.code is RejectCode.IMMEDIATE_OR_CANCELLED
        assert (canceled.order.cum_qty, canceled.order.status) == (D(3), Status.CANCELED)


async def test_expired_event_type_for_21012(venue) -> None:
    async with venue(LogonFlags(use_expired_ord_status=True)) as (engine, events, _):
        soon = datetime.now(timezone.utc) + timedelta(seconds=1)
        await rest(engine, events, "maker", new_order(TICKER, time_in_force=TimeInForce.GTD, expire_time=soon))
        expired = await events.wait_for(OrderExpired)
        assert expired.order.status is Status.EXPIRED


async def test_seed_orders_from_config_give_a_lone_client_a_counterparty(tmp_path, make_key, start_simulator) -> None:
    from simulator.config import SeedOrder

    key = make_key()
    seeds = [SeedOrder(ticker=TICKER, side="sell_yes", price=D("0.52"), quantity=D(20))]
    sim, _ = start_simulator([key.account()], markets=[MarketEntry(ticker=TICKER)], seed_orders=seeds)
    assert sim.exchange.best_offer(TICKER) == D("0.52")
    async with Engine(engine_config(tmp_path, session_to(sim, key))) as engine:
        await engine.wait_logged_on()
        events = engine.events()
        key_ = (await engine.submit("s1", new_order(TICKER, qty="3", price="0.52"))).key
        await settle(engine, events, key_)
        assert engine.book.order(key_).status is Status.FILLED
        assert engine.book.position(key.key_id, TICKER) == D(3)
    assert sim.exchange.account("house").positions[TICKER] == D(-3)
