"""The "book unconfirmed" hold: a logon with a sequence reset while the account has live orders
may have lost their reports (Kalshi's non-retransmission sessions), so new risk waits until the
book is confirmed; cancels do not wait."""

from __future__ import annotations

import asyncio
from decimal import Decimal as D

import pytest

from conformance.harness import session_to
from fixengine.engine import Engine
from fixengine.events import LoggedOn, LoggedOut
from fixengine.orders.entry import BookHeld, BookReleased, BookUnconfirmedError
from fixengine.orders.book import OrderAccepted, OrderCanceled
from fixengine.orders.requests import CancelOrder, ReplaceOrder
from simulator.config import MarketEntry
from tests.helpers.orders import yes_bid
from tests.helpers.sessions import engine_config

TICKER = "HOLD-1"


async def test_new_orders_wait_for_a_confirmed_book_after_a_reset_logon(tmp_path, make_key, start_simulator) -> None:
    key = make_key()
    sim, _ = start_simulator([key.account()], markets=[MarketEntry(ticker=TICKER)])
    engine = Engine(engine_config(tmp_path, session_to(sim, key, reconnect_interval=1)))
    events = engine.events()
    await engine.start()
    try:
        await engine.wait_logged_on()
        assert not engine.is_book_held("s1")  # the first logon had nothing live to lose
        first = await engine.submit("s1", yes_bid(TICKER, "0.40"))
        second = await engine.submit("s1", yes_bid(TICKER, "0.41"))
        for _ in range(2):
            await events.wait_for(OrderAccepted)

        await asyncio.to_thread(sim.logout, key.key_id, "Exchange maintenance")
        await events.wait_for(LoggedOut)
        await events.wait_for(LoggedOn, timeout=10)
        held = await events.wait_for(BookHeld)
        assert held.orders == 2 and engine.is_book_held("s1")
        assert engine.book.order(first.key).unconfirmed and engine.book.order(second.key).unconfirmed

        with pytest.raises(BookUnconfirmedError, match="new orders are held until its book is confirmed"):
            await engine.submit("s1", yes_bid(TICKER, "0.42"))
        with pytest.raises(BookUnconfirmedError):
            await engine.replace("s1", ReplaceOrder.create(order=first.key, quantity=D(3)))
        await engine.cancel("s1", CancelOrder.create(order=first.key))  # reducing risk never waits
        canceled = await events.wait_for(OrderCanceled)
        assert canceled.order.key == first.key and not canceled.order.unconfirmed  # its news is current

        engine.confirm_book("s1")
        await events.wait_for(BookReleased)
        assert not engine.is_book_held("s1") and not engine.book.order(second.key).unconfirmed
        await engine.submit("s1", yes_bid(TICKER, "0.43"))
        accepted = await events.wait_for(OrderAccepted)
        assert accepted.order.yes_price == D("0.43")
    finally:
        await engine.stop()
