"""Kalshi's REST rate limit (rest-spec §10.1): a token bucket per API key, sized by the account's tier.

A bucket starts full, refills continuously and never holds more than its capacity. A request that
finds too few tokens is refused with 429 and costs nothing; there is no penalty and no Retry-After.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from simulator.budgets import TokenBucket
from simulator.config import ReadBudget

DEFAULT_COST = 10  # tokens per request unless listed otherwise (GET /account/endpoint_costs)
GET_ORDER_COST = 2  # GET /portfolio/orders/{order_id}

__all__ = ["DEFAULT_COST", "GET_ORDER_COST", "RateLimiter", "TokenBucket"]  # TokenBucket: the bucket shared with FIX


class RateLimiter:
    """One read bucket per API key, made on the key's first request."""

    def __init__(self, budget_of: Callable[[str], ReadBudget], monotonic: Callable[[], float] = time.monotonic):
        self._budget_of = budget_of
        self._monotonic = monotonic
        self._buckets: dict[str, TokenBucket] = {}
        self._lock = threading.Lock()

    def allow(self, key_id: str, cost: float = DEFAULT_COST) -> bool:
        with self._lock:
            now = self._monotonic()
            bucket = self._buckets.get(key_id)
            if bucket is None:
                bucket = self._buckets[key_id] = TokenBucket(self._budget_of(key_id), now)
            return bucket.take(cost, now)
