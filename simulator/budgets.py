"""Kalshi's token buckets (spec §8, rest-spec §10.1): the REST Read bucket's arithmetic and the FIX
Write budget the acceptor asks before an order-entry request reaches the exchange.

A bucket starts full, refills continuously and never holds more than its capacity. A request that
finds too few tokens is refused and costs nothing (no penalty, no cooldown, no Retry-After).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from fixengine.fix.tags import MSG_ORDER_MASS_CANCEL_REQUEST
from fixengine.kalshi.facts import (
    DEFAULT_REQUEST_COST,
    MASS_CANCEL_INTERVAL_S,
    SHARD_BILLED_MSG_TYPES,
    WRITE_MSG_TYPES,
)
from simulator.config import TokenBudget


class TokenBucket:
    """Pure: the caller says what time it is (monotonic seconds)."""

    def __init__(self, budget: TokenBudget, now: float):
        self._rate = budget.refill_rate
        self._capacity = budget.capacity
        self._tokens = budget.capacity
        self._at = now

    def take(self, cost: float, now: float) -> bool:
        """Spend ``cost`` tokens if the bucket holds them; False (nothing spent) if not."""
        self._tokens = self.tokens(now)
        self._at = max(self._at, now)
        if self._tokens < cost:
            return False
        self._tokens -= cost
        return True

    def tokens(self, now: float) -> float:
        """Tokens held at ``now`` (reading changes nothing)."""
        return min(self._capacity, self._tokens + max(0.0, now - self._at) * self._rate)


class WriteBudgets:
    """Kalshi's Write budget on FIX order entry: a bucket per API key (sized by its tier), and one
    more per shard for 35=D/F/G with ExDestination (100) >= 1 (spec §8); every message in
    ``WRITE_MSG_TYPES`` costs ``cost`` tokens, and a mass cancel (35=q) also waits a second after
    the key's last one. Called from QuickFIX's thread for every order; the lock is uncontended."""

    def __init__(
        self,
        budget_of: Callable[[str], TokenBudget],
        cost: float = DEFAULT_REQUEST_COST,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        self._budget_of = budget_of
        self._cost = cost
        self._monotonic = monotonic
        self._buckets: dict[tuple[str, int], TokenBucket] = {}
        self._mass_cancels: dict[str, float] = {}  # key -> when its last mass cancel passed
        self._lock = threading.Lock()

    def allow(self, key_id: str, msg_type: str, ex_destination: str | None = None) -> bool:
        """Charge one request of ``msg_type`` to the key; False (nothing charged) if Kalshi would
        refuse it for its rate. Messages Kalshi does not bill always pass."""
        if msg_type not in WRITE_MSG_TYPES:
            return True
        shard = _shard(ex_destination) if msg_type in SHARD_BILLED_MSG_TYPES else 0
        mass = msg_type == MSG_ORDER_MASS_CANCEL_REQUEST
        with self._lock:
            now = self._monotonic()
            if mass and now - self._mass_cancels.get(key_id, -MASS_CANCEL_INTERVAL_S) < MASS_CANCEL_INTERVAL_S:
                return False
            bucket = self._buckets.get((key_id, shard))
            if bucket is None:
                bucket = self._buckets[key_id, shard] = TokenBucket(self._budget_of(key_id), now)
            if not bucket.take(self._cost, now):
                return False
            if mass:
                self._mass_cancels[key_id] = now
            return True

    def tokens(self, key_id: str, shard: int = 0) -> float:
        """Tokens the key's bucket (of ``shard``) holds now; a key that has sent nothing has a full one."""
        with self._lock:
            bucket = self._buckets.get((key_id, shard))
            return self._budget_of(key_id).capacity if bucket is None else bucket.tokens(self._monotonic())


def _shard(ex_destination: str | None) -> int:
    """The shard a request is billed to: its ExDestination when >= 1; 0 (the unscoped bucket) when
    -1, 0, absent or not a number (the exchange answers a bad one, not the rate limit)."""
    if not ex_destination:
        return 0
    try:
        return max(0, int(ex_destination))
    except ValueError:
        return 0
