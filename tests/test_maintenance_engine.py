"""The engine's view of Kalshi's pauses, without sockets: the pure watch (fed the time and the
events the engine publishes), the supervisor waiting out the window instead of retrying, and
what the service's status says of such a session."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from decimal import Decimal as D

from fixengine.admin.status import State, readiness, session_state, status_document
from fixengine.config import EngineConfig, SessionConfig
from fixengine.engine import SessionHealth
from fixengine.events import LoggedOn, LoggedOut, ReconnectScheduled
from fixengine.kalshi.maintenance import KALSHI_MAINTENANCE, PauseKind
from fixengine.kalshi.prices import Action, Contract, WireSide
from fixengine.maintenance import MaintenanceEnded, MaintenanceStarted, MaintenanceWatch
from fixengine.orders.book import CancelRejected, Order, OrderAccepted, OrderCanceled, OrderRejected, Status
from fixengine.orders.reports import CancelReject, CxlRejResponseTo, OrdStatus, Reason
from fixengine.session.supervisor import Phase, SessionSupervisor

BEGINS, ENDS = datetime(2026, 3, 12, 7, 0, tzinfo=timezone.utc), datetime(2026, 3, 12, 9, 0, tzinfo=timezone.utc)
INSIDE = BEGINS + timedelta(minutes=30)
TUESDAY = datetime(2026, 3, 10, 15, 0, tzinfo=timezone.utc)
SESSIONS = ("nr", "rt")


def order(status: Status = Status.NEW, reason: str | None = None, key: str = "c1") -> Order:
    return Order(key, "acct", "KXA-1", Action.BUY, Contract.YES, WireSide.BUY_YES, D("0.40"), D(1), key, status,
                 reason=Reason.of(reason, 2) if reason else None)


def rejected(text: str) -> OrderRejected:
    return OrderRejected(order(Status.REJECTED, text), session="nr", at=TUESDAY)


def cancel_refused(text: str) -> CancelRejected:
    reject = CancelReject("c1-x", "c1", "O1", OrdStatus.NEW, CxlRejResponseTo.CANCEL, Reason.of(text, 99))
    return CancelRejected(order(), reject, session="nr", at=TUESDAY)


# --- the weekly window, from the clock -----------------------------------------------------------


def test_the_window_starts_and_ends_for_every_session_once() -> None:
    watch = MaintenanceWatch(SESSIONS, KALSHI_MAINTENANCE)
    assert watch.tick(BEGINS - timedelta(microseconds=1)) == [] and watch.enforced() is None
    started = watch.tick(BEGINS)
    assert [type(e) for e in started] == [MaintenanceStarted, MaintenanceStarted]
    assert [e.session for e in started] == list(SESSIONS) and all(e.at == BEGINS for e in started)
    pause = started[0].pause
    assert (pause.kind, pause.scheduled, pause.ends) == (PauseKind.TRADING, True, ENDS)
    assert watch.enforced() == pause
    assert "trading paused" in started[0].describe() and ENDS.isoformat() in started[0].describe()
    assert watch.tick(INSIDE) == []  # announced once
    ended = watch.tick(ENDS)
    assert [type(e) for e in ended] == [MaintenanceEnded, MaintenanceEnded]
    assert ended[0].pause == pause and "window is over" in ended[0].describe()
    assert watch.current is None and watch.enforced() is None


def test_without_a_schedule_the_clock_pauses_nothing() -> None:
    watch = MaintenanceWatch(SESSIONS, None)
    assert watch.tick(INSIDE) == [] and watch.enforced() is None


# --- pauses the exchange reports ------------------------------------------------------------------


def test_a_trading_paused_reject_announces_a_pause_that_is_not_enforced_until_an_order_passes() -> None:
    watch = MaintenanceWatch(SESSIONS, KALSHI_MAINTENANCE)
    [first, _] = watch.learn(rejected("TRADING_PAUSED"), TUESDAY)
    assert isinstance(first, MaintenanceStarted)
    assert (first.pause.kind, first.pause.scheduled, first.pause.ends) == (PauseKind.TRADING, False, None)
    assert "TRADING_PAUSED: new order rejected (c1 on KXA-1)" in first.describe()
    assert watch.enforced() is None  # orders still go to the exchange: only it knows when this ends
    assert watch.learn(rejected("TRADING_PAUSED"), TUESDAY) == []
    assert watch.learn(rejected("INSUFFICIENT_BALANCE"), TUESDAY) == []
    [ended, _] = watch.learn(OrderAccepted(order(), session="nr", at=TUESDAY), TUESDAY)
    assert isinstance(ended, MaintenanceEnded) and "took order c1" in ended.describe()
    assert watch.current is None


def test_a_refused_cancel_tells_of_an_exchange_pause_which_outranks_a_trading_pause() -> None:
    watch = MaintenanceWatch(SESSIONS, None)
    watch.learn(rejected("TRADING_PAUSED"), TUESDAY)
    [escalated, _] = watch.learn(cancel_refused("EXCHANGE_PAUSED"), TUESDAY)
    assert escalated.pause.kind is PauseKind.EXCHANGE and "cancel refused" in escalated.describe()
    assert watch.learn(rejected("TRADING_PAUSED"), TUESDAY) == []  # nothing new


def test_a_cancel_on_pause_cancellation_tells_of_the_pause() -> None:
    watch = MaintenanceWatch(SESSIONS, None)
    [started, _] = watch.learn(OrderCanceled(order(Status.CANCELED, "TRADING_PAUSED"), session="nr", at=TUESDAY), TUESDAY)
    assert started.pause.kind is PauseKind.TRADING and "cancelled as the pause began" in started.describe()


def test_in_the_window_an_accepted_order_does_not_end_the_scheduled_pause_but_a_report_can_raise_it() -> None:
    watch = MaintenanceWatch(SESSIONS, KALSHI_MAINTENANCE)
    watch.tick(INSIDE)
    assert watch.learn(OrderAccepted(order(), session="nr", at=INSIDE), INSIDE) == []
    [raised, _] = watch.learn(cancel_refused("EXCHANGE_PAUSED"), INSIDE)
    assert (raised.pause.kind, raised.pause.scheduled, raised.pause.ends) == (PauseKind.EXCHANGE, True, ENDS)
    assert watch.enforced() == raised.pause


# --- the supervisor: waiting out the window is not an outage ---------------------------------------


def session(name: str = "nr") -> SessionConfig:
    return SessionConfig(name=name, session_type="KalshiNR", api_key_id=f"key-{name}", private_key_env="KEY",
                         host="127.0.0.1", port=1, reconnect_interval=1)


async def test_a_session_dropped_in_the_window_waits_for_its_end_then_reconnects_from_a_first_attempt() -> None:
    in_window: list[str | None] = ["Kalshi's weekly maintenance until 05:00"]
    published: list[object] = []
    supervisor = SessionSupervisor([session()], lambda name: None, published.append, lambda c: c.close(),
                                   maintenance=lambda: in_window[0])
    supervisor.start(asyncio.get_running_loop())
    try:
        supervisor.on_event(LoggedOn("nr", INSIDE, 30, True))
        supervisor.on_event(LoggedOut("nr", INSIDE, "Exchange maintenance", True))
        status = supervisor.status["nr"]
        assert (status.phase, status.maintenance, status.attempt, status.retry) == (Phase.WAITING, in_window[0], 0, None)
        assert not [e for e in published if isinstance(e, ReconnectScheduled)]  # no retry storm
        in_window[0] = None
        supervisor.maintenance_over()
        [scheduled] = [e for e in published if isinstance(e, ReconnectScheduled)]
        assert scheduled.attempt == 1 and 0.8 <= scheduled.delay <= 1.2  # the first retry's delay, jittered
        assert status.maintenance is None and status.retry is not None
    finally:
        supervisor.stop()


async def test_outside_the_window_a_drop_is_retried_as_always() -> None:
    published: list[object] = []
    supervisor = SessionSupervisor([session()], lambda name: None, published.append, lambda c: c.close())
    supervisor.start(asyncio.get_running_loop())
    try:
        supervisor.on_event(LoggedOn("nr", TUESDAY, 30, True))
        supervisor.on_event(LoggedOut("nr", TUESDAY, "bye", True))
        assert supervisor.status["nr"].maintenance is None
        assert [e.attempt for e in published if isinstance(e, ReconnectScheduled)] == [1]
    finally:
        supervisor.stop()


# --- the service's status -------------------------------------------------------------------------


def health(phase: str, maintenance: bool) -> SessionHealth:
    return SessionHealth(name="nr", session_type="KalshiNR", phase=phase, reason=None, book_held=False,
                         next_out_seq=None, next_in_seq=None, last_in=None, last_out=None, reconnect_attempts=0,
                         reconnect_at=None, maintenance=maintenance)


def test_a_session_waiting_out_maintenance_shows_maintenance_not_disconnected() -> None:
    assert session_state(health("waiting", True), maintenance=False, stopping=False) is State.MAINTENANCE
    assert session_state(health("waiting", False), maintenance=False, stopping=False) is State.DISCONNECTED
    doc = status_document([health("waiting", True)], [], now=TUESDAY)  # the engine's clock, not the page's, said so
    assert (doc["state"], doc["maintenance"]) == ("maintenance", True)
    ready, reasons = readiness([health("waiting", True)], maintenance=True, stopping=False)
    assert not ready and any("weekly maintenance" in r for r in reasons)


def test_the_engine_follows_the_window_on_kalshis_hosts_unless_told() -> None:
    local = EngineConfig(sessions=[session()])
    assert local.follows_maintenance is False
    assert EngineConfig(sessions=[session()], kalshi_maintenance=True).follows_maintenance is True
    kalshi = session().model_copy(update={"host": "fix.elections.kalshi.com"})
    assert EngineConfig.model_construct(sessions=[kalshi], kalshi_maintenance=None).follows_maintenance is True
