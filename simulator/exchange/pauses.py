"""When the simulated exchange is paused, pure: fed the time, it says which pause is in force and
what changed since it was last asked. No clock and no I/O; ``simulator.maintenance`` acts on it.

Two sources (spec §7.5, rest-spec §6.1):

- Kalshi's weekly maintenance window (config ``[maintenance]``): a trading pause. As it begins
  every session is logged out; Logons are refused until it ends.
- An operator's pause (``Simulator.maintenance.pause``): a trading pause (new orders and amends
  refused, cancels allowed) or an exchange pause (cancels refused too), until resumed.

An exchange pause outranks a trading pause when both are in force.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from fixengine.kalshi.maintenance import PauseKind, WeeklySchedule, Window


@dataclass(frozen=True, slots=True)
class PauseState:
    """What is paused at one moment."""

    kind: PauseKind | None  # the pause in force; None: trading
    window: Window | None  # the maintenance window in force
    operator: PauseKind | None  # the operator's pause, if any

    @property
    def resumes(self) -> datetime | None:
        """When trading is expected back: the window's end; None when not paused, or when the
        operator's pause (whose end nobody knows) is in force."""
        return self.window.end if self.window is not None and self.operator is None else None


@dataclass(frozen=True, slots=True)
class Change:
    """What ``Pauses.advance`` found changed since its last call."""

    state: PauseState
    kind_changed: bool  # the exchange must pause, change its pause, or open again
    window_began: bool  # a maintenance window began: log every session out


class Pauses:
    def __init__(self, schedule: WeeklySchedule | None):
        self.schedule = schedule  # None: no weekly maintenance
        self.operator: PauseKind | None = None
        self._last = PauseState(None, None, None)

    def at(self, now: datetime) -> PauseState:
        window = self.schedule.window_at(now) if self.schedule is not None else None
        kinds = {self.operator, PauseKind.TRADING if window is not None else None} - {None}
        kind = PauseKind.EXCHANGE if PauseKind.EXCHANGE in kinds else next(iter(kinds), None)
        return PauseState(kind, window, self.operator)

    def advance(self, now: datetime) -> Change:
        """The state at ``now``, and what changed since the last call."""
        state, last = self.at(now), self._last
        self._last = state
        began = state.window is not None and state.window != last.window
        return Change(state, state.kind != last.kind, began)

    def next_change(self, now: datetime) -> datetime | None:
        """When the weekly window next begins or ends (None without one)."""
        if self.schedule is None:
            return None
        window = self.schedule.next_window(now)
        return window.end if now in window else window.start

    def logon_refusal(self, now: datetime) -> str | None:
        """The Logout Text refusing a Logon at ``now``: in the maintenance window; else None."""
        state = self.at(now)
        if state.window is None:
            return None
        return f"{maintenance_text(state.window, self.schedule)}: log on again after it ends"


def maintenance_text(window: Window, schedule: WeeklySchedule | None) -> str:
    """How the simulator names a maintenance window in its Logouts."""
    weekly = f" ({schedule.describe()})" if schedule is not None else ""
    return f"Exchange maintenance{weekly} until {window.end.isoformat()}"
