"""Kalshi's pauses end to end (spec §7.5): a running simulator paused by its operator (over its
REST admin) or by its weekly maintenance window (its clock moved, not slept through), and a real
engine on real FIX sessions: what the exchange refuses and with what, what survives a pause, and
how the engine rides out the window: maintenance, not an outage."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from decimal import Decimal as D

import httpx
import pytest

from conformance.harness import session_to
from fixengine.admin.status import status_document
from fixengine.config import LogonFlags
from fixengine.engine import Engine
from fixengine.errors import LogonRefusedError, MaintenanceError
from fixengine.events import (
    CancelRejected,
    Event,
    LoggedOn,
    LoggedOut,
    LogonRefused,
    MassCancelDone,
    OrderAccepted,
    OrderCanceled,
    OrderRejected,
    ReconnectScheduled,
)
from fixengine.fix.tags import RESET_SEQ_NUM_FLAG
from fixengine.kalshi.facts import SessionType
from fixengine.kalshi.maintenance import PauseKind
from fixengine.maintenance import MaintenanceEnded, MaintenanceStarted
from fixengine.orders.book import Status
from fixengine.orders.reports import RejectCode
from fixengine.orders.requests import CancelOrder, ReplaceOrder
from fixengine.stream import EventStream
from simulator.config import MaintenanceConfig, MarketEntry
from tests.helpers.clock import MovableClock
from tests.helpers.orders import new_order
from tests.helpers.sessions import engine_config

TICKER = "KXMAINT-26MAR12"
# Thursday 2026-03-12 in New York is on EDT: the window is 07:00-09:00 UTC.
BEGINS = datetime(2026, 3, 12, 7, 0, tzinfo=timezone.utc)
ENDS = BEGINS + timedelta(hours=2)
INSIDE, BEFORE, AFTER = BEGINS + timedelta(minutes=30), BEGINS - timedelta(hours=1), ENDS + timedelta(minutes=1)


async def logged_on(events: EventStream, *sessions: str, timeout: float = 20.0) -> dict[str, LoggedOn]:
    """The next LoggedOn of each session, in whatever order they come."""
    seen: dict[str, LoggedOn] = {}
    deadline = asyncio.get_running_loop().time() + timeout
    while len(seen) < len(sessions):
        event = await events.next(timeout=max(0.1, deadline - asyncio.get_running_loop().time()))
        if isinstance(event, LoggedOn) and event.session in sessions:
            seen.setdefault(event.session, event)
    return seen


def of_type(events: list[Event], kind: type) -> list[Event]:
    return [e for e in events if isinstance(e, kind)]


@pytest.fixture
async def trading(tmp_path, make_key, start_simulator):
    """One KalshiNR session on a simulator with a market and its REST port (for the admin calls)."""
    key = make_key()
    sim, _ = start_simulator([key.account()], markets=[MarketEntry(ticker=TICKER)], rest_port=0)
    engine = Engine(engine_config(tmp_path, session_to(sim, key)))
    await engine.start()
    await engine.wait_logged_on()
    try:
        yield engine, sim
    finally:
        await engine.stop()


# --- an operator's pauses ------------------------------------------------------------------------


async def test_a_trading_pause_rejects_new_orders_with_trading_paused_refuses_amends_and_takes_cancels(trading) -> None:
    engine, sim = trading
    events = engine.events()
    resting = await engine.submit("s1", new_order(TICKER, qty=2, price="0.30"))
    await events.wait_for(OrderAccepted)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{sim.rest_port}") as http:
        paused = await http.post("/admin/exchange/pause", json={"kind": "trading"})
        assert paused.status_code == 200, paused.text
        status = (await http.get("/trade-api/v2/exchange/status")).json()
        assert (status["trading_active"], status["exchange_active"], status["exchange_estimated_resume_time"]) == (
            False, True, None)

        new = await engine.submit("s1", new_order(TICKER, qty=1, price="0.25"))
        rejected = await events.wait_for(OrderRejected)
        order = engine.book.order(new.key)
        assert rejected.order.key == new.key and order.status is Status.REJECTED
        assert order.reason is not None  # ER 150=8 39=8 103=2 58=TRADING_PAUSED, as Kalshi
        assert (order.reason.code, order.reason.number, order.reason.text) == (RejectCode.TRADING_PAUSED, 2, "TRADING_PAUSED")
        started = await events.wait_for(MaintenanceStarted)
        assert (started.pause.kind, started.pause.scheduled, started.pause.ends) == (PauseKind.TRADING, False, None)
        assert engine.maintenance == started.pause

        await engine.replace("s1", ReplaceOrder(order=resting.key, quantity=D(1)))
        amend = await events.wait_for(CancelRejected)
        assert amend.reject.reason.text == "TRADING_PAUSED"
        await engine.cancel("s1", CancelOrder(order=resting.key))
        canceled = await events.wait_for(OrderCanceled)
        assert canceled.order.key == resting.key and engine.book.order(resting.key).status is Status.CANCELED
        assert sim.exchange.open_orders() == []

        resumed = await http.post("/admin/exchange/resume")
        assert resumed.status_code == 200 and resumed.json()["trading_active"] is True
    again = await engine.submit("s1", new_order(TICKER, qty=1, price="0.25"))
    assert (await events.wait_for(OrderAccepted)).order.key == again.key
    ended = await events.wait_for(MaintenanceEnded)
    assert ended.pause.kind is PauseKind.TRADING and engine.maintenance is None


async def test_an_exchange_pause_refuses_the_cancel_too_and_the_order_stays(trading) -> None:
    engine, sim = trading
    events = engine.events()
    resting = await engine.submit("s1", new_order(TICKER, qty=2, price="0.30"))
    await events.wait_for(OrderAccepted)
    await asyncio.to_thread(sim.admin.pause, "exchange")
    await engine.cancel("s1", CancelOrder(order=resting.key))
    refused = await events.wait_for(CancelRejected)
    assert refused.reject.reason.text == "EXCHANGE_PAUSED" and refused.order.key == resting.key
    assert engine.book.order(resting.key).status is Status.NEW
    assert [o.cl_ord_id for o in sim.exchange.open_orders()] == [resting.key]
    started = await events.wait_for(MaintenanceStarted)
    assert started.pause.kind is PauseKind.EXCHANGE
    async with httpx.AsyncClient() as http:
        status = (await http.get(f"{sim.rest_url}/exchange/status")).json()
    assert (status["trading_active"], status["exchange_active"]) == (False, False)
    await engine.mass_cancel("s1")  # refused as a whole: 531=0, Kalshi's Text
    done = await events.wait_for(MassCancelDone)
    assert not done.accepted and done.reason is not None and done.reason.text == "EXCHANGE_PAUSED"
    assert [o.cl_ord_id for o in sim.exchange.open_orders()] == [resting.key]


async def test_cancel_on_pause_orders_are_cancelled_as_the_pause_begins_and_the_others_rest(trading) -> None:
    engine, sim = trading
    events = engine.events()
    keeps = await engine.submit("s1", new_order(TICKER, qty=1, price="0.30"))
    goes = await engine.submit("s1", new_order(TICKER, qty=1, price="0.31", cancel_on_pause=True))
    for _ in range(2):
        await events.wait_for(OrderAccepted)
    await asyncio.to_thread(sim.admin.pause, "trading")
    canceled = await events.wait_for(OrderCanceled)
    assert canceled.order.key == goes.key and canceled.order.reason is not None
    assert canceled.order.reason.code is RejectCode.TRADING_PAUSED
    assert engine.book.order(keeps.key).status is Status.NEW
    assert [o.cl_ord_id for o in sim.exchange.open_orders()] == [keeps.key]
    assert "cancelled as the pause began" in (await events.wait_for(MaintenanceStarted)).describe()


# --- the weekly window ---------------------------------------------------------------------------


async def test_the_weekly_window_drops_sessions_the_engine_waits_in_maintenance_and_each_reconnects_with_its_reset_policy(
    tmp_path, make_key, start_simulator
) -> None:
    nr_key, rt_key = make_key(), make_key()
    sim, _ = start_simulator([nr_key.account(), rt_key.account()], markets=[MarketEntry(ticker=TICKER)], rest_port=0,
                             maintenance=MaintenanceConfig(enabled=True))
    sim.maintenance.move_clock(BEFORE)  # whatever the real time, the window has not begun
    clock = MovableClock()
    clock.move_to(BEFORE)
    config = engine_config(
        tmp_path,
        session_to(sim, nr_key, name="nr"),
        session_to(sim, rt_key, name="rt", session_type=SessionType.RT, logon=LogonFlags(reset_seq_num=False)),
    ).model_copy(update={"kalshi_maintenance": True})
    engine = Engine(config, clock=clock)
    events = engine.events()
    await engine.start()
    try:
        await engine.wait_logged_on()
        resting = await engine.submit("rt", new_order(TICKER, qty=2, price="0.30"))
        await events.wait_for(OrderAccepted)

        # The engine's clock reaches the window first: it refuses new orders and amends itself,
        # naming the window and its end, while a cancel still goes out on the session still up.
        clock.move_to(INSIDE)
        started = await events.wait_for(MaintenanceStarted, "rt")
        assert (started.pause.kind, started.pause.scheduled, started.pause.ends) == (PauseKind.TRADING, True, ENDS)
        with pytest.raises(MaintenanceError) as refused:
            await engine.submit("nr", new_order(TICKER, qty=1, price="0.25"))
        assert "Thursdays 03:00-05:00 America/New_York" in str(refused.value) and ENDS.isoformat() in str(refused.value)
        assert refused.value.ends == ENDS
        with pytest.raises(MaintenanceError):
            await engine.replace("rt", ReplaceOrder(order=resting.key, quantity=D(1)))
        await engine.cancel("rt", CancelOrder(order=resting.key))
        assert (await events.wait_for(OrderCanceled)).order.key == resting.key
        rt_in = {h.name: h for h in engine.health()}["rt"].next_in_seq
        assert rt_in is not None and rt_in > 2

        # The simulator's window begins: it logs every session out, saying why.
        await asyncio.to_thread(sim.maintenance.move_clock, INSIDE)
        dropped = {}
        while len(dropped) < 2:
            event = await events.wait_for(LoggedOut)
            dropped[event.session] = event
        assert all("maintenance" in e.reason for e in dropped.values()), dropped
        assert not of_type(events.drain(), ReconnectScheduled)  # waiting for the end, not retrying
        health = {h.name: h for h in engine.health()}
        for h in health.values():
            assert (h.phase, h.maintenance, h.reconnect_attempts, h.reconnect_at) == ("waiting", True, 0, None)
            assert h.reason is not None and "weekly maintenance" in h.reason
        doc = status_document(engine.health(), [], now=datetime.now(timezone.utc))
        assert [s["state"] for s in doc["kalshi_sessions"]] == ["maintenance", "maintenance"]
        with pytest.raises(MaintenanceError):  # the reason, not "not logged on"
            await engine.submit("nr", new_order(TICKER, qty=1, price="0.25"))
        async with httpx.AsyncClient() as http:
            status = (await http.get(f"{sim.rest_url}/exchange/status")).json()
            schedule = (await http.get(f"{sim.rest_url}/exchange/schedule")).json()["schedule"]
        assert (status["trading_active"], status["exchange_active"]) == (False, True)
        assert status["exchange_estimated_resume_time"] == "2026-03-12T09:00:00.000000Z"
        assert schedule["maintenance_windows"][0] == {"start_datetime": "2026-03-12T07:00:00.000000Z",
                                                       "end_datetime": "2026-03-12T09:00:00.000000Z"}

        # The window ends: each session logs on again by its own policy, RT without a reset.
        await asyncio.to_thread(sim.maintenance.move_clock, AFTER)
        clock.move_to(AFTER)
        assert (await events.wait_for(MaintenanceEnded)).pause.scheduled
        back = await logged_on(events, "nr", "rt")
        assert back["rt"].sequence_reset is False and back["nr"].sequence_reset is True
        assert sim.logon_flags(rt_key.key_id).get(RESET_SEQ_NUM_FLAG) != "Y"
        assert sim.logon_flags(nr_key.key_id).get(RESET_SEQ_NUM_FLAG) == "Y"
        rt_after = {h.name: h for h in engine.health()}["rt"]
        assert rt_after.next_in_seq is not None and rt_after.next_in_seq > rt_in  # the sequence went on
        assert not rt_after.maintenance and engine.maintenance is None
        placed = await engine.submit("nr", new_order(TICKER, qty=1, price="0.25"))
        assert (await events.wait_for(OrderAccepted)).order.key == placed.key
    finally:
        await engine.stop()


async def test_a_logon_in_the_window_is_refused_with_a_clear_text_and_waits_for_its_end(
    tmp_path, make_key, start_simulator
) -> None:
    key = make_key()
    sim, _ = start_simulator([key.account()], maintenance=MaintenanceConfig(enabled=True))
    sim.maintenance.move_clock(INSIDE)
    clock = MovableClock()
    clock.move_to(INSIDE)
    config = engine_config(tmp_path, session_to(sim, key)).model_copy(update={"kalshi_maintenance": True})
    engine = Engine(config, clock=clock)
    events = engine.events()
    await engine.start()
    try:
        with pytest.raises(LogonRefusedError) as refused:
            await engine.wait_logged_on(timeout=10)
        assert "maintenance" in refused.value.reason and ENDS.isoformat() in refused.value.reason
        assert not refused.value.permanent
        await events.wait_for(LogonRefused)
        assert not of_type(events.drain(), ReconnectScheduled)
        [h] = engine.health()
        assert (h.phase, h.maintenance) == ("waiting", True)

        await asyncio.to_thread(sim.maintenance.move_clock, AFTER)
        clock.move_to(AFTER)
        await logged_on(events, "s1")
    finally:
        await engine.stop()
