"""Kalshi's pauses, pure: the weekly maintenance window and the two kinds of pause (fix-spec §7.5,
rest-spec §6.1). No clock of its own: every question takes the time (an aware datetime).

- A **trading pause** refuses new orders and amends; cancels are allowed. Kalshi's weekly
  maintenance is one: Thursdays 03:00-05:00 New York time (``KALSHI_MAINTENANCE``), daylight
  saving time included (EST in winter, EDT in summer: 08:00 or 07:00 UTC).
- An **exchange pause** (rare) refuses cancels too.

Either way new orders come back as ER 150=8 103=2 with Text TRADING_PAUSED or EXCHANGE_PAUSED.
The engine (``fixengine.maintenance``), the service's status (``fixengine.admin.status``) and the
simulator all read the window from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from enum import Enum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


class PauseKind(str, Enum):
    """What a pause refuses (spec §7.5)."""

    TRADING = "trading"  # new orders and amends; cancels still allowed
    EXCHANGE = "exchange"  # new orders, amends and cancels

    @property
    def text(self) -> str:
        """Kalshi's Text (58) on what the pause refuses."""
        return "TRADING_PAUSED" if self is PauseKind.TRADING else "EXCHANGE_PAUSED"

    @property
    def refuses_cancels(self) -> bool:
        return self is PauseKind.EXCHANGE

    @classmethod
    def from_text(cls, text: str | None) -> PauseKind | None:
        """The pause a report's Text names, or None when it names none."""
        return next((kind for kind in cls if kind.text == text), None)


@dataclass(frozen=True, slots=True)
class Window:
    """One maintenance window: from ``start`` (inclusive) to ``end`` (exclusive), both in UTC."""

    start: datetime
    end: datetime

    def __contains__(self, now: datetime) -> bool:
        return self.start <= now < self.end


@dataclass(frozen=True, slots=True)
class WeeklySchedule:
    """A window every week: on ``weekday`` (Monday 0) from ``start`` to ``end``, wall-clock time in
    ``zone``. The window follows the zone's daylight saving time, so its UTC instants move twice a
    year. A wall time that does not exist on some day (a spring-forward gap) is read with the offset
    in force before the change."""

    weekday: int = 3
    start: time = time(3, 0)
    end: time = time(5, 0)
    zone: str = "America/New_York"

    def __post_init__(self) -> None:
        if not 0 <= self.weekday <= 6:
            raise ValueError(f"weekday {self.weekday} must be 0 (Monday) to 6 (Sunday)")
        if not self.start < self.end:
            raise ValueError(f"start {self.start:%H:%M} must be before end {self.end:%H:%M} (same day)")
        try:
            ZoneInfo(self.zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"time zone {self.zone!r} is not an IANA time zone name, e.g. America/New_York") from None

    def describe(self) -> str:
        return f"{WEEKDAYS[self.weekday].capitalize()}s {self.start:%H:%M}-{self.end:%H:%M} {self.zone}"

    def window_at(self, now: datetime) -> Window | None:
        """The window ``now`` falls in, or None."""
        day = _local_day(now, self.zone)
        if day.weekday() != self.weekday:
            return None
        window = self._on(day)
        return window if now in window else None

    def next_window(self, now: datetime) -> Window:
        """The window in force at ``now``, or else the next one to start."""
        day = _local_day(now, self.zone)
        day += timedelta(days=(self.weekday - day.weekday()) % 7)
        window = self._on(day)
        return window if now < window.end else self._on(day + timedelta(days=7))

    def upcoming(self, now: datetime, count: int) -> list[Window]:
        """The window in force at ``now`` (if any) and the next ones: ``count`` in all."""
        windows = [self.next_window(now)]
        while len(windows) < count:
            windows.append(self.next_window(windows[-1].end))
        return windows

    def _on(self, day: date) -> Window:
        zone = ZoneInfo(self.zone)
        start = datetime.combine(day, self.start, tzinfo=zone)
        end = datetime.combine(day, self.end, tzinfo=zone)
        return Window(start.astimezone(timezone.utc), end.astimezone(timezone.utc))


def _local_day(now: datetime, zone: str) -> date:
    if now.utcoffset() is None:
        raise ValueError(f"{now!r} is a naive datetime; maintenance windows need an aware one (UTC)")
    return now.astimezone(ZoneInfo(zone)).date()


# Kalshi's weekly maintenance: a trading pause, Thursdays 03:00-05:00 New York time.
KALSHI_MAINTENANCE = WeeklySchedule()
