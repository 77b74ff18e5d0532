"""The gateway's write throttle: each Kalshi session's Write budget, shared fairly between the OMS
clients that trade on it, spent here first so that Kalshi never has to refuse a request with
35=j 380=8 (spec §8). Pure: no I/O, no asyncio; the caller says what time it is (seconds, monotonic,
e.g. ``loop.time()``) and acts on the decisions.

Two levels of token bucket, in Kalshi's units (tokens; every request costs ``request_cost``):

- the session bucket is Kalshi's Write bucket as the tier sizes it (``WRITE_RATE`` tokens a second,
  ``WRITE_BURST_SECONDS`` of it when full). It starts full, as Kalshi's does;
- each client's bucket refills at its weighted share of the session rate (rate x share / sum of the
  session's shares) and holds ``burst`` requests (default: one second of its share; on Basic, whose
  bucket holds only one second, its share of the part new orders may use, so that the default
  bursts of all clients together always fit beside the reserve). Shares are hard: an idle client's
  share is not lent to a busy one, so a quota is a number each OMS can plan on, and a refusal never
  depends on what the other desks happen to be doing. While the bursts fit (the defaults always
  do), a client within its share is never held up by the session bucket; only a cancel storm larger
  than the slack, or bursts configured beyond it, make new orders wait there, oldest first.

Cancels come first. An OrderCancelRequest does not count against its client's share (pulling orders
must never wait on the desk's own order flow), and new orders and amends may spend the session
bucket only down to ``reserve``: a quarter of the bucket (at premier 50 cancels, at Basic 2). The
reserve lowers the burst new orders may send at once, not their sustained rate (the refill is the
same), so it is cheap; and when a market moves and every desk pulls its quotes at once, those
cancels go out now instead of behind the orders that caused the rush. A cancel is never refused: if
even the reserve is spent it waits for the refill (one request's worth: 10 ms at premier), and new
orders waiting in the same session wait behind it.

A mass cancel is at most one a second per Kalshi session (Kalshi's limit is per connection and key,
and its 380=8 would otherwise come from Kalshi), and costs one request with a cancel's priority. The
gateway today turns an OMS's 35=q into one 35=F per order: check the 35=q here once (the once a
second), then each of those cancels as ``CANCEL``.

A new order or amend over the client's share is refused (``when_throttled = "refuse"``) or waits
(``"queue"``) until its budget comes, at most ``queue_timeout``. The queue is bounded twice. A
request that would wait longer than ``queue_timeout`` behind the client's own queue is refused at
once rather than at its timeout, while the OMS can still act on the answer: so a client's queue
holds at most what its share sends in ``queue_timeout``. And no client has more than ``max_queue``
(``MAX_QUEUE``, 1000) waiting whatever its share and timeout, so that a generous share with a long
timeout cannot pile up memory and orders priced on information that is seconds old.

The gateway, per OMS request (``kind_of(msg_type)`` is None for what Kalshi does not bill)::

    decision = throttle.request("desk-a", Kind.NEW, loop.time())
    # Admitted: send now. Queued(ticket): hold the request under its ticket. Refused(text): 35=j 380=8.
    for outcome in throttle.poll(loop.time()):   # after every request, and at every next_wakeup()
        ...                                      # Admitted(ticket): send it; Refused(ticket=...): refuse it
    loop.call_at(throttle.next_wakeup(), ...)    # if not None

What it does not see: writes on the same API key that do not pass through it (another process, the
engine's own API users), and Kalshi's clock; keep one API key per Kalshi session (Kalshi advises it).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Literal

from fixengine.kalshi.facts import (
    DEFAULT_REQUEST_COST,
    MASS_CANCEL_INTERVAL_S,
    WRITE_BURST_SECONDS,
    WRITE_RATE,
)

if TYPE_CHECKING:  # only for from_config: the throttle itself takes plain values
    from fixengine.config import GatewayConfig, OmsClientConfig

RESERVE_FRACTION = 4  # a quarter of the session bucket is kept for cancels (whole requests)
MAX_QUEUE = 1000  # requests one client may have waiting, whatever its share and queue_timeout
# A bucket this close to the tokens asked for holds them: float rounding of the clock (a monotonic
# clock months from boot is good to nanoseconds) can leave it a hair short at the very instant it
# was computed to hold them. A thousandth of a token is 1/10000 of a request, microseconds of refill.
_EPS = 1e-3


class Kind(StrEnum):
    """What a request does, as far as the budget cares."""

    NEW = "new order"
    AMEND = "amend"
    CANCEL = "cancel"
    MASS_CANCEL = "mass cancel"


_KINDS = {"D": Kind.NEW, "G": Kind.AMEND, "F": Kind.CANCEL, "q": Kind.MASS_CANCEL}


def kind_of(msg_type: str) -> Kind | None:
    """The kind of an OMS request that reaches Kalshi; None for what the gateway answers itself."""
    return _KINDS.get(msg_type)


@dataclass(frozen=True, slots=True)
class Admitted:
    """Send it now. ``ticket``: which queued request (from ``poll``); None when admitted on request."""

    ticket: int | None = None


@dataclass(frozen=True, slots=True)
class Queued:
    """Hold the request: ``poll`` answers its ticket later, with Admitted or Refused. ``until``: when
    it is expected to go (an estimate: cancels may come first); ``deadline``: when it is refused at
    the latest (None for a cancel, which is never refused)."""

    ticket: int
    until: float
    deadline: float | None


@dataclass(frozen=True, slots=True)
class Refused:
    """Answer it with 35=j 380=8 and ``text``. ``retry_after``: seconds until the budget would have
    let it through; ``ticket``: which queued request (from ``poll``), None when refused on request."""

    text: str
    retry_after: float
    ticket: int | None = None


Decision = Admitted | Queued | Refused


@dataclass(frozen=True, slots=True)
class ClientStatus:
    name: str
    share: Decimal
    requests_per_second: float
    burst: int  # whole requests its bucket holds when full
    tokens: float
    waiting: int  # requests queued now
    admitted: int  # sent, at once or after waiting
    queued: int  # had to wait (each is also counted as admitted or refused once decided)
    refused: int


@dataclass(frozen=True, slots=True)
class SessionStatus:
    name: str
    tokens: float
    capacity: float
    rate: float  # tokens a second
    reserve: float  # tokens new orders and amends leave for cancels
    cancels_waiting: int
    clients: tuple[ClientStatus, ...]


class _Bucket:
    __slots__ = ("rate", "capacity", "level", "stamp")

    def __init__(self, rate: float, capacity: float, now: float):
        self.rate, self.capacity, self.level, self.stamp = rate, capacity, capacity, now

    def refill(self, now: float) -> None:
        if now > self.stamp:  # a clock that steps back must not drain the bucket nor rewind it
            self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
            self.stamp = now

    def level_at(self, now: float) -> float:
        return min(self.capacity, self.level + max(0.0, now - self.stamp) * self.rate)

    def has(self, tokens: float) -> bool:
        return self.level >= tokens - _EPS

    def spend(self, tokens: float) -> None:
        self.level = max(0.0, self.level - tokens)

    def ready_at(self, tokens: float) -> float:
        """When ``tokens`` will have come in, spent as they come (so more than the capacity is fine)."""
        return self.stamp if self.has(tokens) else self.stamp + (tokens - self.level) / self.rate


@dataclass(slots=True)
class _Ticket:
    seq: int
    client: str
    deadline: float | None  # None: a cancel (never refused)
    mass: bool = False  # a mass cancel: its once a second counts from when it is sent


class _Client:
    __slots__ = ("name", "session", "share", "burst", "when_throttled", "queue_timeout", "bucket", "queue",
                 "admitted", "queued", "refused")

    def __init__(self, name: str, session: _Session, share: Decimal, burst: int | None,
                 when_throttled: Literal["refuse", "queue"], queue_timeout: float):
        self.name, self.session, self.share, self.burst = name, session, share, burst
        self.when_throttled, self.queue_timeout = when_throttled, queue_timeout
        self.bucket: _Bucket | None = None  # sized by _Session.share_out
        self.queue: deque[_Ticket] = deque()
        self.admitted = self.queued = self.refused = 0


class _Session:
    __slots__ = ("name", "bucket", "reserve", "cancels", "clients", "last_mass_cancel", "usable")

    def __init__(self, name: str, rate: float, capacity: float, reserve: float, now: float):
        self.name = name
        self.bucket = _Bucket(rate, capacity, now)
        self.reserve = reserve
        self.usable = capacity - reserve  # what new orders and amends may spend at once
        self.cancels: deque[_Ticket] = deque()
        self.clients: dict[str, _Client] = {}
        self.last_mass_cancel: float | None = None  # when the last one was sent

    def mass_cancel_waiting(self) -> bool:
        return any(t.mass for t in self.cancels)

    def share_out(self, cost: int, now: float) -> None:
        """Size every client's bucket from the shares (again: a client was added or changed)."""
        total = sum(c.share for c in self.clients.values())
        for c in self.clients.values():
            fraction = c.share / total
            rate = float(Decimal(str(self.bucket.rate)) * fraction)
            if c.burst is not None:
                capacity = float(c.burst * cost)
            else:  # a second of its share; at Basic (a 1-second bucket) its share of what is usable
                capacity = max(float(cost), min(rate, float(Decimal(str(self.usable)) * fraction)))
            if c.bucket is None:
                c.bucket = _Bucket(rate, capacity, now)
            else:
                c.bucket.refill(now)  # what came in so far came at the old rate
                c.bucket.rate, c.bucket.capacity = rate, capacity
                c.bucket.level = min(c.bucket.level, capacity)


class Throttle:
    """The write budget of every Kalshi session the gateway trades on, and who may spend it."""

    def __init__(self, tier: str = "premier", request_cost: int = DEFAULT_REQUEST_COST, max_queue: int = MAX_QUEUE):
        if tier not in WRITE_RATE:
            raise ValueError(f"tier: unknown API usage tier {tier!r}; one of {', '.join(WRITE_RATE)}")
        self.rate = float(WRITE_RATE[tier])
        self.capacity = float(WRITE_RATE[tier] * WRITE_BURST_SECONDS[tier])
        if not 1 <= request_cost <= self.capacity:
            raise ValueError(f"request_cost {request_cost} must be between 1 and the {tier} Write bucket's "
                             f"{self.capacity:.0f} tokens, or no request could ever be sent")
        if max_queue < 1:
            raise ValueError(f"max_queue must be at least 1 (got {max_queue})")
        self.tier, self.cost, self.max_queue = tier, request_cost, max_queue
        self.reserve = float((int(self.capacity) // request_cost // RESERVE_FRACTION) * request_cost)
        self._sessions: dict[str, _Session] = {}
        self._clients: dict[str, _Client] = {}
        self._tickets = 0
        self._outbox: list[Admitted | Refused] = []

    @classmethod
    def from_config(cls, gateway: GatewayConfig, clients: Iterable[OmsClientConfig], now: float) -> Throttle:
        """The throttle of ``[gateway]`` and its order-entry ``[[oms_client]]``s (drop copies send nothing)."""
        throttle = cls(gateway.tier, gateway.request_cost)
        for c in clients:
            throttle.configure(c, now)
        return throttle

    def configure(self, client: OmsClientConfig, now: float) -> None:
        """Add or update one ``[[oms_client]]`` (a config reload); a drop-copy client is ignored."""
        if client.session is not None:
            self.set_client(client.name, client.session, share=client.rate_share, burst=client.burst,
                            when_throttled=client.when_throttled, queue_timeout=client.queue_timeout, now=now)

    def set_client(self, name: str, session: str, *, share: Decimal = Decimal(1), burst: int | None = None,
                   when_throttled: Literal["refuse", "queue"] = "refuse", queue_timeout: float = 1.0,
                   now: float) -> None:
        """Add a client, or change its limits; the session's shares are recomputed either way. Its
        counters and waiting requests stay; a client cannot move to another session."""
        if not share > 0 or (burst is not None and burst < 1) or not queue_timeout > 0:
            raise ValueError(f"{name}: share and queue_timeout must be above 0 and burst at least 1")
        old = self._clients.get(name)
        if old is not None and old.session.name != session:
            raise ValueError(f"{name} trades on {old.session.name}; it cannot move to {session} while running")
        s = self._sessions.get(session)
        if s is None:
            s = self._sessions[session] = _Session(session, self.rate, self.capacity, self.reserve, now)
        self._advance(s, now)
        if old is None:
            self._clients[name] = s.clients[name] = _Client(name, s, share, burst, when_throttled, queue_timeout)
        else:
            old.share, old.burst, old.when_throttled, old.queue_timeout = share, burst, when_throttled, queue_timeout
        s.share_out(self.cost, now)

    # --- events ---------------------------------------------------------------------------------

    def request(self, client: str, kind: Kind, now: float) -> Decision:
        """Decide one request of ``client``. Queued requests decided meanwhile go to ``poll``."""
        c = self._client(client)
        s, cost = c.session, self.cost
        self._advance(s, now)
        mass = kind is Kind.MASS_CANCEL
        if mass:
            if s.mass_cancel_waiting():
                wait = s.bucket.ready_at(cost * len(s.cancels)) + MASS_CANCEL_INTERVAL_S - now
            elif s.last_mass_cancel is not None and now < s.last_mass_cancel + MASS_CANCEL_INTERVAL_S:
                wait = s.last_mass_cancel + MASS_CANCEL_INTERVAL_S - now
            else:
                wait = 0.0
            if wait > 0:
                c.refused += 1
                return Refused(f"rate limit: one mass cancel a second on {s.name} (Kalshi's limit for a session); "
                               f"try again in {_seconds(wait)} s", wait)
        if mass or kind is Kind.CANCEL:
            if not s.cancels and s.bucket.has(cost):
                s.bucket.spend(cost)
                c.admitted += 1
                if mass:
                    s.last_mass_cancel = now
                return Admitted()
            ticket = self._ticket(client, None, mass)
            s.cancels.append(ticket)
            c.queued += 1
            return Queued(ticket.seq, max(now, s.bucket.ready_at(cost * len(s.cancels))), None)
        assert c.bucket is not None
        if not c.queue and not s.cancels and c.bucket.has(cost) and s.bucket.has(s.reserve + cost):
            c.bucket.spend(cost)
            s.bucket.spend(cost)
            c.admitted += 1
            return Admitted()
        # Over budget: when would it go? Behind the client's own queue and the session's cancels.
        by_share = c.bucket.ready_at(cost * (len(c.queue) + 1))
        by_session = s.bucket.ready_at(s.reserve + cost * (len(s.cancels) + 1))
        until = max(now, by_share, by_session)
        wait = until - now
        if c.when_throttled == "refuse":
            c.refused += 1
            if by_share >= by_session:
                return Refused(f"rate limit: {self.quota(client)}; try again in {_seconds(wait)} s", wait)
            return Refused(f"rate limit: {s.name}'s write budget is spent down to the "
                           f"{_number(s.reserve / cost)} requests kept for cancels; {self.quota(client)}; "
                           f"try again in {_seconds(wait)} s", wait)
        if len(c.queue) >= self.max_queue:
            c.refused += 1
            return Refused(f"rate limit: {self.quota(client)}; {len(c.queue)} of its requests are already waiting, "
                           f"the most one client may have; try again in {_seconds(wait)} s", wait)
        if wait > c.queue_timeout:
            c.refused += 1
            return Refused(f"rate limit: {self.quota(client)}; it would wait {_seconds(wait)} s for budget, longer "
                           f"than its queue_timeout of {_seconds(c.queue_timeout)} s; try again in "
                           f"{_seconds(wait)} s", wait)
        ticket = self._ticket(client, now + c.queue_timeout)
        c.queue.append(ticket)
        c.queued += 1
        return Queued(ticket.seq, until, ticket.deadline)

    def poll(self, now: float) -> list[Admitted | Refused]:
        """The queued requests decided by ``now``, in the order they were decided."""
        for s in self._sessions.values():
            self._advance(s, now)
        out, self._outbox = self._outbox, []
        return out

    def next_wakeup(self) -> float | None:
        """When ``poll`` next has something to say (-inf: now); None while nothing waits."""
        if self._outbox:
            return -math.inf
        times = []
        for s in self._sessions.values():
            if s.cancels:
                times.append(s.bucket.ready_at(self.cost))
            for c in s.clients.values():
                if c.queue:
                    assert c.bucket is not None
                    if not s.cancels:
                        times.append(max(c.bucket.ready_at(self.cost), s.bucket.ready_at(s.reserve + self.cost)))
                    times.append(min((t.deadline for t in c.queue if t.deadline is not None), default=math.inf))
        return min(times, default=None)

    def withdraw(self, ticket: int) -> bool:
        """Forget a queued request (its OMS went away, the gateway stops); False if it is not waiting."""
        for s in self._sessions.values():
            for waiting in (s.cancels, *(c.queue for c in s.clients.values())):
                for t in waiting:
                    if t.seq == ticket:
                        waiting.remove(t)
                        return True
        return False

    # --- reading ----------------------------------------------------------------------------------

    def quota(self, client: str) -> str:
        """The client's quota in words: 'desk-a may send 50 requests/s (burst 50), its share of
        kalshi-nr's write budget (100/s)'."""
        c = self._client(client)
        assert c.bucket is not None
        s = c.session
        whose = "all" if len(s.clients) == 1 else "its share"
        return (f"{c.name} may send {_number(c.bucket.rate / self.cost)} requests/s "
                f"(burst {int(c.bucket.capacity // self.cost)}), {whose} of {s.name}'s write budget "
                f"({_number(self.rate / self.cost)}/s)")

    def status(self, now: float) -> tuple[SessionStatus, ...]:
        """Each session's bucket and each client's counters at ``now`` (changes nothing)."""
        return tuple(
            SessionStatus(
                s.name, s.bucket.level_at(now), s.bucket.capacity, s.bucket.rate, s.reserve, len(s.cancels),
                tuple(
                    ClientStatus(c.name, c.share, c.bucket.rate / self.cost, int(c.bucket.capacity // self.cost),
                                 c.bucket.level_at(now), len(c.queue), c.admitted, c.queued, c.refused)
                    for c in s.clients.values() if c.bucket is not None
                ),
            )
            for s in self._sessions.values()
        )

    # --- inside -----------------------------------------------------------------------------------

    def _client(self, name: str) -> _Client:
        try:
            return self._clients[name]
        except KeyError:
            raise KeyError(f"{name!r} is not an OMS client of the throttle") from None

    def _ticket(self, client: str, deadline: float | None, mass: bool = False) -> _Ticket:
        self._tickets += 1
        return _Ticket(self._tickets, client, deadline, mass)

    def _advance(self, s: _Session, now: float) -> None:
        """Bring the session to ``now``: refill, send waiting cancels, then waiting orders oldest
        first as their client's share and the reserve allow, then refuse those past their deadline."""
        cost = self.cost
        s.bucket.refill(now)
        for c in s.clients.values():
            if c.bucket is not None:
                c.bucket.refill(now)
        while s.cancels and s.bucket.has(cost):
            ticket = s.cancels.popleft()
            s.bucket.spend(cost)
            s.clients[ticket.client].admitted += 1
            if ticket.mass:
                s.last_mass_cancel = now
            self._outbox.append(Admitted(ticket.seq))
        if s.cancels:  # orders wait behind cancels
            ready: list[_Client] = []
        else:
            ready = [c for c in s.clients.values() if c.queue]
        while ready and s.bucket.has(s.reserve + cost):
            able = [c for c in ready if c.bucket is not None and c.bucket.has(cost)]
            if not able:
                break
            c = min(able, key=lambda c: c.queue[0].seq)
            ticket = c.queue.popleft()
            c.bucket.spend(cost)  # type: ignore[union-attr]
            s.bucket.spend(cost)
            c.admitted += 1
            self._outbox.append(Admitted(ticket.seq))
            if not c.queue:
                ready.remove(c)
        for c in s.clients.values():
            expired = [t for t in c.queue if t.deadline is not None and t.deadline <= now]
            for ticket in expired:  # in order; a reload may have changed queue_timeout meanwhile
                c.queue.remove(ticket)
                c.refused += 1
                assert c.bucket is not None
                wait = max(0.0, c.bucket.ready_at(cost * (len(c.queue) + 1)) - now)
                self._outbox.append(Refused(
                    f"rate limit: {self.quota(c.name)}; waited {_seconds(c.queue_timeout)} s (its queue_timeout) "
                    f"without budget; try again in {_seconds(wait)} s", wait, ticket.seq))


def _number(value: float, places: int = 2) -> str:
    """50, 33.33, 0.5: a rate or count as a person writes it."""
    return f"{value:.{places}f}".rstrip("0").rstrip(".")


def _seconds(value: float) -> str:
    """A wait in seconds, rounded up to the millisecond (never '0': that would say no wait)."""
    return _number(max(0.001, math.ceil(value * 1000 - 0.01) / 1000), 3)


__all__ = [
    "MAX_QUEUE", "RESERVE_FRACTION", "Admitted", "ClientStatus", "Decision", "Kind", "Queued", "Refused",
    "SessionStatus", "Throttle", "kind_of",
]
