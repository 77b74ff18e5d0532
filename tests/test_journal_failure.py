"""A journal that cannot be written (a full disk, a failed device): order entry halts, nothing that
was not journaled is sent, the caller is told why, and the engine stops. A restart on the same
journal agrees with the exchange."""

from __future__ import annotations

import os
from decimal import Decimal as D

import pytest

from conformance.harness import session_to
from fixengine.engine import Engine
from fixengine.errors import JournalWriteError
from fixengine.kalshi.prices import Action
from fixengine.orders.book import OrderAccepted, OrderRejected
from fixengine.orders.entry import OrderEntryHalted
from fixengine.session.events import LoggedOut
from simulator.config import MarketEntry
from tests.helpers.gateway import gateway_config, oms_logged_on, running_gateway
from tests.helpers.orders import new_order
from tests.helpers.sessions import engine_config

TICKER = "HIGHNY-23DEC31"


async def test_an_unwritable_journal_halts_order_entry_and_stops_the_engine(tmp_path, make_key, start_simulator) -> None:
    key = make_key()
    sim, _ = start_simulator([key.account()], markets=[MarketEntry(ticker=TICKER)])
    config = engine_config(tmp_path, session_to(sim, key, name="s1"))
    engine = Engine(config)
    events = engine.events()
    await engine.start()
    try:
        await engine.wait_logged_on()
        first = await engine.submit("s1", new_order(TICKER, Action.BUY, qty="1", price="0.30"))
        assert (await events.wait_for(OrderAccepted)).order.key == first.key

        journal = engine.order_entry.journal  # the device under it fails: its writes do
        readonly = os.open(journal.path, os.O_RDONLY)
        os.dup2(readonly, journal._fd)
        os.close(readonly)
        second = await engine.submit("s1", new_order(TICKER, Action.BUY, qty="1", price="0.31"))

        rejected = await events.wait_for(OrderRejected)  # never sent, and said so
        assert rejected.order.key == second.key
        assert rejected.order.reason is not None and "never sent" in (rejected.order.reason.text or "")
        halted = await events.wait_for(OrderEntryHalted)
        assert f"the journal {journal.path} cannot be written" in halted.reason
        with pytest.raises(JournalWriteError, match="order entry is halted: the journal .* cannot be written"):
            await engine.submit("s1", new_order(TICKER, Action.BUY, qty="1", price="0.32"))
        await events.wait_for(LoggedOut)  # the engine stops by itself
        assert engine.halted == halted.reason
        on_exchange = {o.cl_ord_id for o in sim.exchange.open_orders(key.key_id)}
        assert on_exchange == {first.key}
    finally:
        await engine.stop()  # waits for the stop the halt began; no error

    again = Engine(config)  # the journal is written again: the book agrees with the exchange
    await again.start()
    try:
        assert set(again.book.orders) == {first.key}
        assert again.book.order(first.key).order_id is not None
    finally:
        await again.stop()


async def test_an_unwritable_gateway_journal_halts_order_entry_before_kalshi_sees_the_order(tmp_path, make_key,
                                                                                            start_simulator) -> None:
    """The gateway journals an OMS's order before the engine may send it: if that commit fails,
    the order never reaches Kalshi, and order entry halts saying which journal failed."""
    key = make_key()
    sim, _ = start_simulator([key.account()], markets=[MarketEntry(ticker=TICKER)])
    config = gateway_config(tmp_path / "serve", session_to(sim, key, name="desk-kalshi"))
    async with running_gateway(config) as (engine, gateway):
        events = engine.events()
        await engine.wait_logged_on()
        async with oms_logged_on(config, "desk", tmp_path / "oms") as oms:
            journal = gateway._journal
            assert journal is not None
            readonly = os.open(journal.path, os.O_RDONLY)
            os.dup2(readonly, journal._fd)
            os.close(readonly)
            oms.new_order(TICKER, "1", D(1), D("0.30"))
            halted = await events.wait_for(OrderEntryHalted)
            assert f"the gateway journal {journal.path} cannot be written" in halted.reason
            await events.wait_for(LoggedOut)
        assert sim.exchange.open_orders(key.key_id) == []
        assert engine.halted == halted.reason
