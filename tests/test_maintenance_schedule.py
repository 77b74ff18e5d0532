"""Kalshi's weekly maintenance window, pure: Thursdays 03:00-05:00 New York time through the
daylight-saving changes of 2026 and 2027, to the instant it begins and ends; the simulator's
pause state built on it (the window, an operator's pause, what changed, the Logon refusal)."""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone

import pytest

from fixengine.admin.status import in_maintenance
from fixengine.kalshi.maintenance import KALSHI_MAINTENANCE, PauseKind, WeeklySchedule, Window
from simulator.config import MaintenanceConfig
from simulator.exchange.pauses import Pauses

US = timedelta(microseconds=1)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


# Each Thursday's window in UTC: EST (UTC-5) puts it at 08:00-10:00, EDT (UTC-4) at 07:00-09:00.
WINDOWS = [
    ("2026-03-05", "08:00", "10:00"),  # EST: the last Thursday before DST starts on Sunday 2026-03-08
    ("2026-03-12", "07:00", "09:00"),  # EDT
    ("2026-10-29", "07:00", "09:00"),  # EDT: the last Thursday before DST ends on Sunday 2026-11-01
    ("2026-11-05", "08:00", "10:00"),  # EST
    ("2027-03-11", "08:00", "10:00"),  # EST: DST starts on Sunday 2027-03-14
    ("2027-03-18", "07:00", "09:00"),  # EDT
    ("2027-11-04", "07:00", "09:00"),  # EDT: DST ends on Sunday 2027-11-07
    ("2027-11-11", "08:00", "10:00"),  # EST
]


@pytest.mark.parametrize(("day", "start", "end"), WINDOWS)
def test_the_window_begins_and_ends_at_the_instant_in_new_york_time(day: str, start: str, end: str) -> None:
    begins, ends = utc(f"{day}T{start}"), utc(f"{day}T{end}")
    window = KALSHI_MAINTENANCE.window_at(begins)
    assert window == Window(begins, ends)
    assert KALSHI_MAINTENANCE.window_at(begins - US) is None  # a microsecond before: not yet
    assert KALSHI_MAINTENANCE.window_at(ends - US) == window  # its last microsecond
    assert KALSHI_MAINTENANCE.window_at(ends) is None  # 05:00 itself: over
    assert in_maintenance(begins) and not in_maintenance(ends)  # the status page reads the same schedule


@pytest.mark.parametrize(("day", "start", "end"), WINDOWS)
def test_the_next_window_is_the_one_in_force_or_the_next_to_begin(day: str, start: str, end: str) -> None:
    begins, ends = utc(f"{day}T{start}"), utc(f"{day}T{end}")
    a_week_before = begins - timedelta(days=6)  # the Friday before
    assert KALSHI_MAINTENANCE.next_window(a_week_before) == Window(begins, ends)
    assert KALSHI_MAINTENANCE.next_window(begins + timedelta(minutes=30)) == Window(begins, ends)
    after = KALSHI_MAINTENANCE.next_window(ends)
    assert after.start.date() == (begins + timedelta(days=7)).date() and after.start > ends


def test_the_window_after_a_dst_change_moves_by_an_hour_in_utc() -> None:
    before = KALSHI_MAINTENANCE.next_window(utc("2026-03-06T00:00"))  # a Friday in EST
    assert (before.start, before.end) == (utc("2026-03-12T07:00"), utc("2026-03-12T09:00"))
    three = KALSHI_MAINTENANCE.upcoming(utc("2026-10-28T00:00"), 3)
    assert [w.start for w in three] == [utc("2026-10-29T07:00"), utc("2026-11-05T08:00"), utc("2026-11-12T08:00")]
    assert all(w.end - w.start == timedelta(hours=2) for w in three)


def test_local_times_and_other_days_are_read_in_new_york() -> None:
    new_york_0330 = datetime.fromisoformat("2026-03-12T03:30:00-04:00")  # aware, not UTC
    assert KALSHI_MAINTENANCE.window_at(new_york_0330) is not None
    assert KALSHI_MAINTENANCE.window_at(utc("2026-03-11T07:30")) is None  # a Wednesday
    with pytest.raises(ValueError, match="naive"):
        KALSHI_MAINTENANCE.window_at(datetime(2026, 3, 12, 8, 0))


def test_a_schedule_that_cannot_be_is_refused_naming_the_field() -> None:
    with pytest.raises(ValueError, match="start 06:00 must be before end 05:00"):
        WeeklySchedule(start=time(6, 0))
    with pytest.raises(ValueError, match="weekday 7"):
        WeeklySchedule(weekday=7)
    with pytest.raises(ValueError, match="'Mars/Olympus' is not an IANA time zone"):
        WeeklySchedule(zone="Mars/Olympus")
    assert KALSHI_MAINTENANCE.describe() == "Thursdays 03:00-05:00 America/New_York"


def test_pause_kinds_carry_kalshis_texts() -> None:
    assert (PauseKind.TRADING.text, PauseKind.EXCHANGE.text) == ("TRADING_PAUSED", "EXCHANGE_PAUSED")
    assert PauseKind.from_text("EXCHANGE_PAUSED") is PauseKind.EXCHANGE and PauseKind.from_text("OTHER") is None
    assert PauseKind.EXCHANGE.refuses_cancels and not PauseKind.TRADING.refuses_cancels


# --- the simulator's pauses --------------------------------------------------------------------


def test_the_simulator_config_builds_the_schedule_and_is_off_unless_asked() -> None:
    assert MaintenanceConfig().enabled is False
    config = MaintenanceConfig(enabled=True, weekday="friday", start="22:00", end="23:30", timezone="Europe/London")
    assert config.schedule() == WeeklySchedule(4, time(22, 0), time(23, 30), "Europe/London")
    with pytest.raises(ValueError, match="start 05:00 must be before end 03:00"):
        MaintenanceConfig(start="05:00", end="03:00")


def test_the_window_is_a_trading_pause_with_a_known_end_and_refuses_logons() -> None:
    pauses = Pauses(KALSHI_MAINTENANCE)
    begins, ends = utc("2026-03-12T07:00"), utc("2026-03-12T09:00")
    assert pauses.advance(begins - US).kind_changed is False
    assert pauses.next_change(begins - US) == begins
    change = pauses.advance(begins)
    assert change.kind_changed and change.window_began
    assert (change.state.kind, change.state.resumes) == (PauseKind.TRADING, ends)
    assert pauses.next_change(begins) == ends
    refusal = pauses.logon_refusal(begins)
    assert refusal is not None and "maintenance" in refusal and ends.isoformat() in refusal
    again = pauses.advance(begins + timedelta(minutes=1))
    assert not again.kind_changed and not again.window_began  # acted on once
    over = pauses.advance(ends)
    assert over.kind_changed and over.state.kind is None and pauses.logon_refusal(ends) is None


def test_an_exchange_pause_outranks_the_window_and_its_end_is_unknown() -> None:
    pauses = Pauses(KALSHI_MAINTENANCE)
    inside = utc("2026-03-12T07:30")
    pauses.advance(inside)
    pauses.operator = PauseKind.EXCHANGE
    change = pauses.advance(inside)
    assert change.kind_changed and change.state.kind is PauseKind.EXCHANGE and change.state.resumes is None
    assert not change.window_began
    pauses.operator = None
    assert pauses.advance(inside).state.kind is PauseKind.TRADING


def test_without_a_schedule_only_the_operator_pauses() -> None:
    pauses = Pauses(None)
    thursday = utc("2026-03-12T07:30")
    assert pauses.advance(thursday).state.kind is None and pauses.next_change(thursday) is None
    assert pauses.logon_refusal(thursday) is None
    pauses.operator = PauseKind.TRADING
    change = pauses.advance(thursday)
    assert change.kind_changed and change.state.kind is PauseKind.TRADING and not change.window_began
