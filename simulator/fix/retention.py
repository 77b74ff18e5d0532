"""How far back a retransmitting session can be asked to resend (Kalshi spec §7.3).

KalshiRT keeps what it sent for MessageRetentionPeriod (20200) hours, 24 by default and 72 at most;
a ResendRequest whose BeginSeqNo is older than that gets a Reject (35=3). QuickFIX's store keeps
every message for as long as the session lives, so the simulator tracks the window itself.

Pure: fed the MsgSeqNum of every message sent, asked for the oldest one still kept. It remembers
the first MsgSeqNum sent in each second (not every message): a message up to one second inside
the window may be refused as outside it, never the other way round.

Threads: ``sent`` runs under QuickFIX's session lock (serialised); ``oldest_kept`` may run beside it.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from fixengine.kalshi.facts import DEFAULT_RETENTION_HOURS, MAX_RETENTION_HOURS

BUCKET_S = 1.0


class RetentionWindow:
    def __init__(self, seconds: float = DEFAULT_RETENTION_HOURS * 3600.0, clock: Callable[[], float] = time.monotonic):
        self.seconds = seconds
        self._clock = clock
        self._buckets: deque[tuple[float, int]] = deque()  # (time, first MsgSeqNum sent then)
        self._next = 1  # the MsgSeqNum after the last one sent

    def logged_on(self, reset: bool, retention_hours: str | None) -> None:
        """A Logon: ``reset`` if it carried ResetSeqNumFlag=Y (the sequence starts again at 1);
        its MessageRetentionPeriod (20200, checked by the logon gate) or the default sets the window."""
        if reset:
            self._buckets.clear()
            self._next = 1
        hours = int(retention_hours) if retention_hours else DEFAULT_RETENTION_HOURS
        self.seconds = min(hours, MAX_RETENTION_HOURS) * 3600.0

    def sent(self, seq_num: int) -> None:
        if seq_num < self._next:  # a retransmission: already recorded
            return
        now = self._clock()
        if not self._buckets or now - self._buckets[-1][0] >= BUCKET_S:
            self._buckets.append((now, seq_num))
            horizon = now - MAX_RETENTION_HOURS * 3600.0
            while len(self._buckets) > 1 and self._buckets[1][0] <= horizon:
                self._buckets.popleft()
        self._next = seq_num + 1

    def oldest_kept(self, seconds: float | None = None) -> int:
        """The lowest MsgSeqNum a ResendRequest may still ask for (``next sent`` if none), with
        the window's own length or ``seconds`` (a fault shortening it)."""
        cutoff = self._clock() - (self.seconds if seconds is None else seconds)
        for when, first in tuple(self._buckets):  # a snapshot: sends go on on other threads
            if when > cutoff:
                return first
        return self._next

