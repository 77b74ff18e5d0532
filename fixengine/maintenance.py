"""What the engine knows of Kalshi's pauses, pure: fed the time and the events it publishes, it
says whether Kalshi is paused, how, until when, and which events announce a change. No clock, no
I/O (the engine ticks it; ``tests/test_maintenance_engine.py`` tests it without sockets).

Two ways to know (fix-spec §7.5):

- **The weekly maintenance**, from the clock (``fixengine.kalshi.maintenance``): a trading pause,
  Thursdays 03:00-05:00 New York time. Enforced: new orders and amends are refused before anything
  is sent (``MaintenanceError``), cancels still go out, and a session dropped in the window waits
  for its end instead of retrying (``SessionSupervisor``): maintenance, not an outage.
- **A pause the exchange reports**: a reject, a refused cancel or amend, or a CancelOrderOnPause
  order cancelled, with Text TRADING_PAUSED or EXCHANGE_PAUSED. Announced, not enforced: when it
  ends only the exchange knows, so orders keep going to it, and the first one it accepts (or
  amends, or fills) ends the pause. Kalshi also pauses single markets with the same Text; the
  announcement names the order and market it came from.

Each change is announced once per configured session (``MaintenanceStarted``,
``MaintenanceEnded``): a subscriber that follows one session sees every change.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from fixengine._event import Event, _StampedNow
from fixengine.kalshi.maintenance import PauseKind, WeeklySchedule
from fixengine.orders.book import CancelRejected, OrderAccepted, OrderCanceled, OrderFilled, OrderRejected, OrderReplaced
from fixengine.orders.reports import CxlRejResponseTo

_WHAT = {
    PauseKind.TRADING: "trading paused (no new orders or amends; cancels allowed)",
    PauseKind.EXCHANGE: "exchange paused (no new orders, amends or cancels)",
}


@dataclass(frozen=True, slots=True)
class Pause:
    """A pause of Kalshi's as the engine knows it."""

    kind: PauseKind
    scheduled: bool  # the weekly maintenance window (enforced); False: reported by the exchange
    since: datetime  # when the engine learnt it (its clock)
    ends: datetime | None  # the window's end; None: unknown (a reported pause)
    cause: str  # what told the engine: the schedule, or the report's Text and order

    def describe(self) -> str:
        until = f" until {self.ends.isoformat()}" if self.ends is not None else ""
        return f"{_WHAT[self.kind]}{until}: {self.cause}"


@dataclass(frozen=True, slots=True)
class MaintenanceStarted(_StampedNow):
    """Kalshi is paused: its weekly maintenance began, or a report said so (``pause``)."""

    pause: Pause

    def describe(self) -> str:
        return self.pause.describe()


@dataclass(frozen=True, slots=True)
class MaintenanceEnded(_StampedNow):
    """The pause is over (``why``): the window ended, or the exchange accepted an order again."""

    pause: Pause
    why: str

    def describe(self) -> str:
        return f"{self.pause.kind.value} pause over: {self.why}"


def reported_pause(event: Event) -> tuple[PauseKind, str] | None:
    """The pause a published event reports, and how it says so; None when it reports none."""
    if isinstance(event, CancelRejected):
        kind = PauseKind.from_text(event.reject.reason.text)
        what = f"{'amend' if event.reject.response_to is CxlRejResponseTo.REPLACE else 'cancel'} refused"
    elif isinstance(event, (OrderRejected, OrderCanceled)):
        reason = event.order.reason
        kind = PauseKind.from_text(reason.text if reason is not None else None)
        what = "new order rejected" if isinstance(event, OrderRejected) else "order cancelled as the pause began"
    else:
        return None
    if kind is None:
        return None
    return kind, f"{kind.text}: {what} ({event.order.key} on {event.order.ticker})"


class MaintenanceWatch:
    """The pause in force (``current``) and the events that announce its changes."""

    def __init__(self, sessions: Iterable[str], schedule: WeeklySchedule | None):
        self._sessions = tuple(sessions)
        self.schedule = schedule  # None: no weekly window (a venue without one)
        self.current: Pause | None = None

    def enforced(self) -> Pause | None:
        """The pause that refuses new orders and amends locally: the weekly window (call ``tick``
        first, so that it is current)."""
        return self.current if self.current is not None and self.current.scheduled else None

    def tick(self, now: datetime) -> list[Event]:
        """The time is ``now``: the weekly window may have begun or ended."""
        window = self.schedule.window_at(now) if self.schedule is not None else None
        current = self.current
        if window is not None:
            if current is not None and current.scheduled and current.ends == window.end:
                return []
            assert self.schedule is not None
            cause = f"Kalshi's weekly maintenance ({self.schedule.describe()})"
            return self._start(Pause(PauseKind.TRADING, True, now, window.end, cause), now)
        if current is not None and current.scheduled:
            return self._end("the weekly maintenance window is over", now)
        return []

    def learn(self, event: Event, now: datetime) -> list[Event]:
        """A published event: it may report a pause, or show that orders pass again."""
        reported = reported_pause(event)
        current = self.current
        if reported is not None:
            kind, cause = reported
            if current is not None and (current.kind is kind or current.kind is PauseKind.EXCHANGE):
                return []  # known already (an exchange pause refuses all a trading pause does)
            if current is not None:  # in the window: the exchange says it is an exchange pause
                return self._start(Pause(kind, current.scheduled, now, current.ends, cause), now)
            return self._start(Pause(kind, False, now, None, cause), now)
        if current is not None and not current.scheduled and isinstance(event, (OrderAccepted, OrderReplaced, OrderFilled)):
            return self._end(f"the exchange took order {event.order.key} on {event.order.ticker} again", now)
        return []

    def _start(self, pause: Pause, now: datetime) -> list[Event]:
        self.current = pause
        return [MaintenanceStarted(name, pause, at=now) for name in self._sessions]

    def _end(self, why: str, now: datetime) -> list[Event]:
        pause, self.current = self.current, None
        assert pause is not None
        return [MaintenanceEnded(name, pause, why, at=now) for name in self._sessions]
