"""When to try a session again, and when to stop trying. Pure: no I/O, no clock, no randomness of
its own (the caller passes the random draw), so every rule is tested directly.

- A dropped or unreachable session is retried with exponential backoff, with jitter so that many
  engines cut off together do not come back in lock-step, up to a cap.
- A Logon refused for what it says (wrong TargetCompID, unknown key, bad signature, API tier, a
  flag the session type forbids) would be refused again: stop and say why.
- "already exists": Kalshi still holds our previous connection (a half-open one lingers until its
  heartbeat timeout, up to ~60 s): wait that out before trying again.
- Anything else (maintenance, a stale clock, texts Kalshi has not documented) is retried: giving
  up for good on an unknown text would leave a trading session down for no known reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from fixengine.kalshi.facts import PERMANENT_REFUSALS, TEXT_ALREADY_EXISTS


class Retry(str, Enum):
    NEVER = "never"  # permanent refusal: retrying sends the same Logon to the same answer
    WAIT_OUT = "wait_out"  # the server still holds our previous connection
    BACKOFF = "backoff"


def classify_refusal(text: str) -> Retry:
    """How to treat a Logon refused with ``text`` (the Logout's or Reject's Text, 58)."""
    if TEXT_ALREADY_EXISTS in text:
        return Retry.WAIT_OUT
    if any(marker in text for marker in PERMANENT_REFUSALS):
        return Retry.NEVER
    return Retry.BACKOFF


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delays between attempts: ``initial`` × ``factor``^attempt, capped, ± ``jitter`` of itself."""

    initial: float
    cap: float
    factor: float = 2.0
    jitter: float = 0.2

    def delay(self, attempt: int, draw: float) -> float:
        """Seconds to wait before attempt number ``attempt`` (0 = the first retry); ``draw`` is a
        uniform random number in [0, 1)."""
        base = min(self.cap, self.initial * self.factor ** min(attempt, 64))
        return min(self.cap, base * (1 - self.jitter + 2 * self.jitter * draw))


def retry_delay(retry: Retry, attempt: int, backoff: Backoff, heartbeat_interval: float, draw: float) -> float | None:
    """Seconds until the next Logon attempt, or None to stop trying."""
    if retry is Retry.NEVER:
        return None
    delay = backoff.delay(attempt, draw)
    if retry is Retry.WAIT_OUT:
        # The server drops a silent connection after about two heartbeat intervals; jittered above
        # that, so clients refused together do not all come back at the same instant.
        delay = max(delay, 2 * heartbeat_interval * (1 + backoff.jitter * draw))
    return delay
