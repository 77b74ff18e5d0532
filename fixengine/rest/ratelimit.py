"""A client-side token bucket, so the client spends Kalshi's read budget at the rate it refills
instead of finding the limit by 429s.

Kalshi's model (rest-spec.md §10.1): every request costs tokens (10 by default, 2 for a single
order), the Read bucket refills at a per-tier rate and holds 2 s of it on Basic and Advanced,
1 s above. The server sends no rate headers, so the client keeps its own count. REST reads are
not billed per shard, so one bucket per account (API key) is right: share it between clients of
the same key.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from fixengine.kalshi.facts import TIERS

DEFAULT_COST = 10
SINGLE_ORDER_COST = 2  # GET /portfolio/orders/{order_id}

# Read budget in tokens per second, by API usage tier (§10.1).
READ_RATE: dict[str, int] = {
    "basic": 200,
    "advanced": 300,
    "expert": 600,
    "premier": 1_000,
    "paragon": 2_000,
    "prime": 4_000,
    "prestige": 10_000,
}
# Seconds of budget the Read bucket holds: 2 on Basic and Advanced, 1 above (§10.1).
READ_BURST_SECONDS: dict[str, int] = {tier: 2 if tier in ("basic", "advanced") else 1 for tier in READ_RATE}

_EPSILON = 1e-9  # float refill arithmetic may land a hair short of the exact wait it slept for

assert set(READ_RATE) == set(TIERS), "a tier without a read budget"


class TokenBucket:
    """``rate`` tokens per second up to ``capacity``; starts full. ``await take(cost)`` returns
    once ``cost`` tokens are taken, waiting for the refill if needed. Waiters are served in
    arrival order, so a cheap request cannot overtake an expensive one forever.

    ``clock`` (seconds, monotonic) and ``sleep`` are injectable so tests run without waiting.
    """

    def __init__(
        self,
        rate: float,
        capacity: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ):
        if not rate > 0:
            raise ValueError(f"rate must be a positive number of tokens per second (got {rate})")
        if not capacity > 0:
            raise ValueError(f"capacity must be a positive number of tokens (got {capacity})")
        self.rate = float(rate)
        self.capacity = float(capacity)
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.capacity
        self._stamp = clock()
        self._lock = asyncio.Lock()

    @classmethod
    def for_tier(
        cls,
        tier: str,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> TokenBucket:
        """The Read bucket of an account on API usage ``tier`` (basic ... prestige)."""
        if tier not in READ_RATE:
            raise ValueError(f"tier: unknown API usage tier {tier!r}; one of {', '.join(READ_RATE)}")
        rate = READ_RATE[tier]
        return cls(rate, rate * READ_BURST_SECONDS[tier], clock=clock, sleep=sleep)

    @property
    def tokens(self) -> float:
        """Tokens available now."""
        self._refill()
        return self._tokens

    def _refill(self) -> None:
        now = self._clock()
        # max(): a clock that steps back must not drain the bucket.
        self._tokens = min(self.capacity, self._tokens + max(0.0, now - self._stamp) * self.rate)
        self._stamp = now

    def _check(self, cost: float) -> None:
        if not cost > 0:
            raise ValueError(f"cost must be a positive number of tokens (got {cost})")
        if cost > self.capacity:
            raise ValueError(f"cost {cost} exceeds the bucket's capacity {self.capacity}: it could never be taken")

    async def take(self, cost: float = DEFAULT_COST) -> None:
        """Take ``cost`` tokens, waiting until the bucket has refilled enough."""
        self._check(cost)
        async with self._lock:  # FIFO: the lock hands over in arrival order
            self._refill()
            while self._tokens < cost - _EPSILON:
                await self._sleep((cost - self._tokens) / self.rate)
                self._refill()
            self._tokens = max(0.0, self._tokens - cost)


__all__ = ["DEFAULT_COST", "READ_BURST_SECONDS", "READ_RATE", "SINGLE_ORDER_COST", "TokenBucket"]
