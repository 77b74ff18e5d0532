"""A clock tests move: an engine reads Kalshi's maintenance window against it (``Engine(clock=)``)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone


class MovableClock:
    """Real time plus an offset; ``move_to`` sets the offset so that it reads ``when`` now."""

    def __init__(self) -> None:
        self._offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(timezone.utc) + self._offset

    def move_to(self, when: datetime) -> None:
        self._offset = when - datetime.now(timezone.utc)
