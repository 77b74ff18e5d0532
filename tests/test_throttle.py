"""The gateway's write throttle (``fixengine.gateway.throttle``), pure: a number for a clock, no
sockets. Against an independent model of Kalshi's Write bucket, any sequence of requests the
throttle lets through is one Kalshi would take (no 380=8), a flooding client gets no more than its
share, and cancels go through while new orders are refused."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fixengine.config import GatewayConfig, OmsClientConfig
from fixengine.gateway.throttle import (
    Admitted,
    Kind,
    Queued,
    Refused,
    Throttle,
    kind_of,
)
from fixengine.kalshi.facts import (
    MASS_CANCEL_INTERVAL_S,
    TIERS,
    WRITE_BURST_SECONDS,
    WRITE_RATE,
    write_capacity,
)

COST = 10
NEAR = 1e-9  # float seconds
SHORT = 2e-3  # tokens a bucket may be short by float rounding (the throttle lets 1e-3 pass)


def two_desks(tier: str = "premier", **b: object) -> Throttle:
    """desk-a and desk-b, equal shares of kalshi-nr; desk-b as ``b`` says."""
    throttle = Throttle(tier)
    throttle.set_client("desk-a", "kalshi-nr", now=0.0)
    throttle.set_client("desk-b", "kalshi-nr", now=0.0, **b)  # type: ignore[arg-type]
    return throttle


def burst_of(throttle: Throttle, client: str, kind: Kind = Kind.NEW, now: float = 0.0) -> int:
    """Send ``kind`` at ``now`` until one is not admitted at once (one queued is withdrawn); how
    many were."""
    sent = 0
    while isinstance(decision := throttle.request(client, kind, now), Admitted):
        sent += 1
    if isinstance(decision, Queued):
        throttle.withdraw(decision.ticket)
    return sent


# --- the table and the shares -----------------------------------------------------------------------


def test_the_write_budget_table_is_kalshis() -> None:
    assert set(WRITE_RATE) == set(TIERS)
    assert [WRITE_RATE[t] for t in TIERS] == [100, 300, 600, 1000, 2000, 4000, 8000]  # spec §8
    assert WRITE_BURST_SECONDS["basic"] == 1 and all(WRITE_BURST_SECONDS[t] == 2 for t in TIERS[1:])
    assert (write_capacity("basic"), write_capacity("premier"), write_capacity("prestige")) == (100, 2000, 16000)


def test_shares_are_weighted_and_each_burst_is_a_second_of_its_share() -> None:
    throttle = Throttle("premier")  # 1000 tokens/s: 100 requests/s
    throttle.set_client("desk-a", "kalshi-nr", share=Decimal(3), now=0.0)
    throttle.set_client("desk-b", "kalshi-nr", share=Decimal(1), now=0.0)
    [session] = throttle.status(0.0)
    a, b = session.clients
    assert (a.requests_per_second, a.burst, b.requests_per_second, b.burst) == (75, 75, 25, 25)
    assert throttle.quota("desk-a") == "desk-a may send 75 requests/s (burst 75), its share of kalshi-nr's write budget (100/s)"
    assert burst_of(throttle, "desk-a") == 75 and burst_of(throttle, "desk-b") == 25


def test_a_configured_burst_replaces_the_one_second_default() -> None:
    throttle = two_desks(burst=5)
    assert burst_of(throttle, "desk-b") == 5
    assert burst_of(throttle, "desk-a") == 50


def test_on_basic_the_default_bursts_fit_beside_the_cancel_reserve() -> None:
    throttle = two_desks("basic")  # 100 tokens/s, a bucket of 100: 10 requests, 2 kept for cancels
    [session] = throttle.status(0.0)
    assert (session.capacity, session.reserve) == (100, 20)
    assert [c.burst for c in session.clients] == [4, 4]  # half of the 8 usable each, not half of 10
    assert burst_of(throttle, "desk-a") == 4 and burst_of(throttle, "desk-b") == 4
    assert burst_of(throttle, "desk-a", Kind.CANCEL) == 2  # the reserve is still there for cancels


def test_from_config_takes_tier_cost_and_each_order_entry_clients_share() -> None:
    gateway = GatewayConfig(tier="paragon", request_cost=20)
    common = dict(target_comp_id="GW", port=9876, max_quantity=Decimal(10), max_notional=Decimal(100))
    clients = [
        OmsClientConfig(name="desk-a", sender_comp_id="A", session="kalshi-nr", rate_share=Decimal("0.5"), **common),
        OmsClientConfig(name="desk-b", sender_comp_id="B", session="kalshi-nr", rate_share=Decimal("1.5"), burst=7,
                        when_throttled="queue", queue_timeout=0.5, **common),
    ]
    throttle = Throttle.from_config(gateway, clients, now=0.0)
    [session] = throttle.status(0.0)
    assert (session.rate, session.capacity) == (2000, 4000)
    a, b = session.clients
    assert (a.requests_per_second, a.burst, b.requests_per_second, b.burst) == (25, 25, 75, 7)
    assert (b.share, throttle.cost) == (Decimal("1.5"), 20)


def test_bad_settings_are_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match="unknown API usage tier 'gold'"):
        Throttle("gold")
    with pytest.raises(ValueError, match="request_cost 101 must be between 1 and the basic Write bucket's 100 tokens"):
        Throttle("basic", request_cost=101)
    throttle = two_desks()
    with pytest.raises(ValueError, match="desk-a trades on kalshi-nr; it cannot move to kalshi-rt"):
        throttle.set_client("desk-a", "kalshi-rt", now=0.0)
    with pytest.raises(KeyError, match="'desk-z' is not an OMS client"):
        throttle.request("desk-z", Kind.NEW, 0.0)


def test_kinds_of_oms_messages() -> None:
    assert [kind_of(t) for t in ("D", "G", "F", "q", "H", "AF")] == [
        Kind.NEW, Kind.AMEND, Kind.CANCEL, Kind.MASS_CANCEL, None, None]


# --- refusing and queueing ----------------------------------------------------------------------------


def test_a_refusal_names_the_clients_quota_and_when_to_try_again() -> None:
    throttle = two_desks()  # premier: 100 requests/s, 50 each
    assert burst_of(throttle, "desk-a") == 50
    refused = throttle.request("desk-a", Kind.NEW, 0.0)
    assert isinstance(refused, Refused)
    assert refused.text == ("rate limit: desk-a may send 50 requests/s (burst 50), its share of kalshi-nr's "
                            "write budget (100/s); try again in 0.02 s")
    assert refused.retry_after == pytest.approx(0.02, abs=NEAR)
    assert isinstance(throttle.request("desk-a", Kind.NEW, refused.retry_after), Admitted)


def test_amends_spend_the_share_like_new_orders() -> None:
    throttle = two_desks()
    assert burst_of(throttle, "desk-a", Kind.AMEND) == 50
    assert isinstance(throttle.request("desk-a", Kind.NEW, 0.0), Refused)


def test_a_queued_order_goes_when_its_share_refills() -> None:
    throttle = two_desks(when_throttled="queue")
    assert burst_of(throttle, "desk-b") == 50
    queued = throttle.request("desk-b", Kind.NEW, 0.0)
    assert isinstance(queued, Queued)
    assert queued.until == pytest.approx(0.02, abs=NEAR) and queued.deadline == 1.0  # queue_timeout 1 s
    assert throttle.poll(0.01) == []
    wake = throttle.next_wakeup()
    assert wake == pytest.approx(0.02, abs=NEAR)
    assert throttle.poll(wake) == [Admitted(queued.ticket)]
    assert throttle.next_wakeup() is None


def test_a_request_that_would_outwait_its_queue_timeout_is_refused_at_once() -> None:
    throttle = two_desks(when_throttled="queue", queue_timeout=0.05)
    burst_of(throttle, "desk-b")
    waits = [throttle.request("desk-b", Kind.NEW, 0.0) for _ in range(3)]
    assert [type(w) for w in waits] == [Queued, Queued, Refused]  # 0.02 s, 0.04 s, then 0.06 s > 0.05 s
    assert waits[2].text.endswith("it would wait 0.06 s for budget, longer than its queue_timeout of 0.05 s; "  # type: ignore[union-attr]
                                  "try again in 0.06 s")


def test_a_queued_order_is_refused_at_its_deadline_when_the_budget_did_not_come() -> None:
    throttle = two_desks(when_throttled="queue", queue_timeout=0.05)
    burst_of(throttle, "desk-b")
    queued = throttle.request("desk-b", Kind.NEW, 0.0)
    assert isinstance(queued, Queued) and queued.until == pytest.approx(0.02, abs=NEAR)
    for n in range(8):  # ten desks now: desk-b's share falls to 10 requests/s, its next token at 0.1 s
        throttle.set_client(f"desk-{n}", "kalshi-nr", now=0.01)
    assert throttle.next_wakeup() == pytest.approx(0.05, abs=NEAR)
    [refused] = throttle.poll(0.05)
    assert isinstance(refused, Refused) and refused.ticket == queued.ticket
    assert refused.text.startswith("rate limit: desk-b may send 10 requests/s (burst 10), its share of kalshi-nr's "
                                   "write budget (100/s); waited 0.05 s (its queue_timeout) without budget")


def test_no_client_has_more_than_max_queue_waiting() -> None:
    throttle = Throttle("premier", max_queue=3)
    throttle.set_client("desk-a", "kalshi-nr", when_throttled="queue", queue_timeout=10.0, now=0.0)
    burst_of(throttle, "desk-a")
    assert [type(throttle.request("desk-a", Kind.NEW, 0.0)) for _ in range(4)] == [Queued, Queued, Queued, Refused]
    full = throttle.request("desk-a", Kind.NEW, 0.0)
    assert isinstance(full, Refused) and "3 of its requests are already waiting, the most one client may have" in full.text


def test_a_withdrawn_request_is_not_decided() -> None:
    throttle = two_desks(when_throttled="queue")
    burst_of(throttle, "desk-b")
    queued = throttle.request("desk-b", Kind.NEW, 0.0)
    assert isinstance(queued, Queued)
    assert throttle.withdraw(queued.ticket) and not throttle.withdraw(queued.ticket)
    assert throttle.next_wakeup() is None and throttle.poll(5.0) == []


# --- cancels ------------------------------------------------------------------------------------------


def test_cancels_go_through_when_the_share_is_spent_and_do_not_spend_it() -> None:
    throttle = two_desks()
    burst_of(throttle, "desk-a")
    assert isinstance(throttle.request("desk-a", Kind.NEW, 0.0), Refused)
    assert isinstance(throttle.request("desk-a", Kind.CANCEL, 0.0), Admitted)
    [session] = throttle.status(0.0)
    assert session.clients[0].tokens == 0 and session.tokens == 2000 - 51 * COST  # the session paid for it
    assert isinstance(throttle.request("desk-a", Kind.NEW, 0.02), Admitted)  # and the share refilled as before


def test_new_orders_leave_a_quarter_of_the_bucket_for_cancels() -> None:
    throttle = Throttle("premier")
    throttle.set_client("desk-a", "kalshi-nr", burst=1000, now=0.0)  # a burst beyond what the session allows
    assert burst_of(throttle, "desk-a") == 150  # 2000 tokens, 500 kept for cancels
    refused = throttle.request("desk-a", Kind.NEW, 0.0)
    assert isinstance(refused, Refused)
    assert refused.text == ("rate limit: kalshi-nr's write budget is spent down to the 50 requests kept for cancels; "
                            "desk-a may send 100 requests/s (burst 1000), all of kalshi-nr's write budget (100/s); "
                            "try again in 0.01 s")
    assert burst_of(throttle, "desk-a", Kind.CANCEL) == 50
    waiting = throttle.request("desk-a", Kind.CANCEL, 0.0)
    assert isinstance(waiting, Queued) and waiting.deadline is None  # a cancel waits; it is never refused
    assert waiting.until == pytest.approx(0.01, abs=NEAR)
    assert throttle.poll(throttle.next_wakeup()) == [Admitted(waiting.ticket)]  # type: ignore[arg-type]
    [session] = throttle.status(0.01)
    assert session.tokens == pytest.approx(0.0, abs=1e-6)


def test_a_queued_order_waits_behind_cancels() -> None:
    throttle = Throttle("basic")  # 10 requests/s; 2 kept for cancels
    throttle.set_client("desk-a", "kalshi-nr", burst=10, when_throttled="queue", now=0.0)
    assert burst_of(throttle, "desk-a") == 8
    assert burst_of(throttle, "desk-a", Kind.CANCEL) == 2
    order = throttle.request("desk-a", Kind.NEW, 0.0)
    cancels = [throttle.request("desk-a", Kind.CANCEL, 0.0) for _ in range(2)]
    assert all(isinstance(d, Queued) for d in [order, *cancels])
    released = []
    while (wake := throttle.next_wakeup()) is not None:
        released += [(round(wake, 3), d.ticket) for d in throttle.poll(wake)]
    tickets = [d.ticket for d in [*cancels, order]]  # type: ignore[union-attr]
    assert released == [(0.1, tickets[0]), (0.2, tickets[1]), (0.5, tickets[2])]  # the order after the reserve is back


def test_mass_cancel_once_a_second_per_session() -> None:
    throttle = two_desks()
    throttle.set_client("desk-c", "kalshi-rt", now=0.0)
    assert isinstance(throttle.request("desk-a", Kind.MASS_CANCEL, 0.0), Admitted)
    second = throttle.request("desk-b", Kind.MASS_CANCEL, 0.4)  # another client, the same Kalshi session
    assert isinstance(second, Refused)
    assert second.text == "rate limit: one mass cancel a second on kalshi-nr (Kalshi's limit for a session); try again in 0.6 s"
    assert isinstance(throttle.request("desk-c", Kind.MASS_CANCEL, 0.4), Admitted)  # another session
    assert isinstance(throttle.request("desk-b", Kind.MASS_CANCEL, 1.0), Admitted)


def test_a_mass_cancel_waiting_for_tokens_counts_its_second_from_when_it_is_sent() -> None:
    throttle = Throttle("basic")
    throttle.set_client("desk-a", "kalshi-nr", burst=10, now=0.0)
    burst_of(throttle, "desk-a")
    burst_of(throttle, "desk-a", Kind.CANCEL)
    first = throttle.request("desk-a", Kind.MASS_CANCEL, 0.0)
    assert isinstance(first, Queued) and first.until == pytest.approx(0.1, abs=NEAR)
    assert isinstance(throttle.request("desk-a", Kind.MASS_CANCEL, 0.05), Refused)
    assert throttle.poll(0.1) == [Admitted(first.ticket)]
    assert isinstance(throttle.request("desk-a", Kind.MASS_CANCEL, 1.05), Refused)  # 0.95 s after it went
    assert isinstance(throttle.request("desk-a", Kind.MASS_CANCEL, 1.1), Admitted)


# --- reading and changing ----------------------------------------------------------------------------


def test_status_shows_the_bucket_and_each_clients_counters() -> None:
    throttle = two_desks(when_throttled="queue")
    burst_of(throttle, "desk-a")  # 50 admitted, then one refused
    for _ in range(51):  # 50 admitted, then one queued
        throttle.request("desk-b", Kind.NEW, 0.0)
    throttle.request("desk-a", Kind.CANCEL, 0.0)
    [session] = throttle.status(0.0)
    assert (session.name, session.tokens, session.capacity, session.rate, session.reserve) == ("kalshi-nr", 990, 2000, 1000, 500)
    a, b = session.clients
    assert (a.name, a.admitted, a.queued, a.refused, a.waiting) == ("desk-a", 51, 0, 1, 0)
    assert (b.name, b.admitted, b.queued, b.refused, b.waiting) == ("desk-b", 50, 1, 0, 1)
    throttle.poll(0.02)
    assert throttle.status(0.02)[0].clients[1].admitted == 51
    assert throttle.status(0.5)[0].tokens == pytest.approx(990 - COST + 500)  # reading at a later time changes nothing
    assert throttle.status(0.02)[0].tokens == pytest.approx(990 - COST + 20)


def test_a_client_added_at_run_time_shares_the_budget_from_then_on() -> None:
    throttle = Throttle("premier")
    throttle.set_client("desk-a", "kalshi-nr", now=0.0)
    assert throttle.quota("desk-a").startswith("desk-a may send 100 requests/s (burst 100), all of")
    throttle.set_client("desk-b", "kalshi-nr", now=0.0)
    assert throttle.quota("desk-a").startswith("desk-a may send 50 requests/s (burst 50), its share")
    assert burst_of(throttle, "desk-a") == 50 and burst_of(throttle, "desk-b") == 50
    throttle.set_client("desk-b", "kalshi-nr", share=Decimal(3), now=0.0)  # a reload changes its weight
    assert throttle.quota("desk-b").startswith("desk-b may send 75 requests/s (burst 75)")


def test_a_clock_that_steps_back_neither_drains_nor_refills() -> None:
    throttle = two_desks()
    assert burst_of(throttle, "desk-a", now=10.0) == 50
    assert isinstance(throttle.request("desk-a", Kind.NEW, 9.0), Refused)
    assert throttle.status(9.0)[0].clients[0].tokens == 0
    assert isinstance(throttle.request("desk-a", Kind.NEW, 10.02), Admitted)


# --- properties, against Kalshi's bucket ---------------------------------------------------------------


@dataclass
class KalshiWriteBucket:
    """Kalshi's side, written independently: it takes a request only if it holds the tokens."""

    tier: str
    level: float = field(init=False)
    at: float = 0.0
    last_mass_cancel: float = -math.inf

    def __post_init__(self) -> None:
        self.level = float(write_capacity(self.tier))

    def take(self, kind: Kind, now: float) -> None:
        self.level = min(write_capacity(self.tier), self.level + (now - self.at) * WRITE_RATE[self.tier])
        self.at = now
        assert self.level >= COST - SHORT, f"Kalshi would answer 380=8 at {now}: {self.level} tokens"
        self.level -= COST
        if kind is Kind.MASS_CANCEL:
            assert now - self.last_mass_cancel >= MASS_CANCEL_INTERVAL_S - 1e-9, "a second mass cancel within 1 s"
            self.last_mass_cancel = now


CLIENTS = ("desk-a", "desk-b", "desk-c")


@dataclass
class Run:
    """The gateway's side: requests at given times, polls at every wake-up, Kalshi behind."""

    throttle: Throttle
    kalshi: KalshiWriteBucket
    now: float = 0.0
    waiting: dict[int, tuple[str, Kind, float | None]] = field(default_factory=dict)
    decided: list[tuple[str, Kind, str]] = field(default_factory=list)  # client, kind, outcome

    def until(self, t: float) -> None:
        while (wake := self.throttle.next_wakeup()) is not None and wake <= t:
            self.now = max(self.now, wake)
            outcomes = self.throttle.poll(self.now)
            assert outcomes, f"a wake-up at {wake} with nothing to do"
            for outcome in outcomes:
                self.settle(outcome)
        self.now = max(self.now, t)

    def settle(self, outcome: Admitted | Refused) -> None:
        assert outcome.ticket is not None
        client, kind, deadline = self.waiting.pop(outcome.ticket)
        if isinstance(outcome, Admitted):
            assert deadline is None or self.now <= deadline + 1e-9, "released after its queue_timeout"
            self.kalshi.take(kind, self.now)
            self.decided.append((client, kind, "admitted"))
        else:
            assert kind in (Kind.NEW, Kind.AMEND), "a cancel was refused"
            self.decided.append((client, kind, "refused"))

    def request(self, client: str, kind: Kind) -> Admitted | Queued | Refused:
        decision = self.throttle.request(client, kind, self.now)
        if isinstance(decision, Admitted):
            self.kalshi.take(kind, self.now)
            self.decided.append((client, kind, "admitted"))
        elif isinstance(decision, Queued):
            assert decision.until >= self.now
            self.waiting[decision.ticket] = (client, kind, decision.deadline)
        else:
            assert kind is not Kind.CANCEL, "a cancel was refused"
            self.decided.append((client, kind, "refused"))
        for outcome in self.throttle.poll(self.now):
            self.settle(outcome)
        return decision


clients_st = st.lists(
    st.tuples(st.integers(1, 4), st.none() | st.integers(1, 30), st.sampled_from(["refuse", "queue"]),
              st.sampled_from([0.01, 0.1, 1.0])),
    min_size=1, max_size=3,
)
ops_st = st.lists(  # (after how long, who, what, how many at once)
    st.tuples(st.sampled_from([0.0, 0.0, 0.001, 0.004, 0.02, 0.3, 1.1]), st.integers(0, 2),
              st.sampled_from([Kind.NEW, Kind.NEW, Kind.AMEND, Kind.CANCEL, Kind.MASS_CANCEL]),
              st.sampled_from([1, 1, 1, 2, 5, 40])),
    max_size=150,
)


def clients_run(tier: str, clients: list) -> tuple[Throttle, "Run"]:  # type: ignore[type-arg]
    """A throttle with ``clients`` (share, burst, mode, timeout) on one session, and a run of it."""
    throttle = Throttle(tier)
    for name, (share, burst, mode, timeout) in zip(CLIENTS, clients):
        throttle.set_client(name, "kalshi-nr", share=Decimal(share), burst=burst, when_throttled=mode,
                            queue_timeout=timeout, now=0.0)
    return throttle, Run(throttle, KalshiWriteBucket(tier))


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(TIERS), clients_st, ops_st)
def test_whatever_is_sent_kalshi_takes_and_every_waiting_request_is_decided_once(tier, clients, ops) -> None:
    throttle, run = clients_run(tier, clients)
    for dt, who, kind, count in ops:
        run.until(run.now + dt)
        for _ in range(count):
            run.request(CLIENTS[who % len(clients)], kind)
        assert run.throttle.status(run.now)[0].tokens >= 0
    run.until(run.now + 60)  # long enough for every cancel to go and every order to time out
    assert run.waiting == {} and throttle.next_wakeup() is None
    [session] = throttle.status(run.now)
    for c in session.clients:
        mine = [outcome for client, _, outcome in run.decided if client == c.name]
        assert (c.admitted, c.refused) == (mine.count("admitted"), mine.count("refused"))


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(TIERS), st.integers(1, 3), st.integers(1, 3), st.sampled_from(["refuse", "queue"]),
       st.sampled_from([0.001, 0.003, 0.01]), st.floats(0.1, 0.9))
def test_a_flooding_client_gets_its_share_and_no_more_while_another_gets_all_of_its_own(
        tier, share_a, share_b, mode_a, flood_gap, b_load) -> None:
    throttle = Throttle(tier)
    throttle.set_client("flood", "kalshi-nr", share=Decimal(share_a), when_throttled=mode_a, queue_timeout=0.1, now=0.0)
    throttle.set_client("steady", "kalshi-nr", share=Decimal(share_b), now=0.0)
    run = Run(throttle, KalshiWriteBucket(tier))
    _, steady = throttle.status(0.0)[0].clients
    flood_status = throttle.status(0.0)[0].clients[0]
    steady_gap = 1 / (steady.requests_per_second * b_load)  # below its share
    seconds, next_flood, next_steady = 2.0, 0.0, 0.0
    while min(next_flood, next_steady) < seconds:
        if next_flood <= next_steady:
            run.until(next_flood)
            run.request("flood", Kind.NEW)
            next_flood += flood_gap
        else:
            run.until(next_steady)
            assert isinstance(run.request("steady", Kind.NEW), Admitted), "the steady client was held up"
            next_steady += steady_gap
    run.until(seconds)
    flooded = sum(1 for client, _, outcome in run.decided if client == "flood" and outcome == "admitted")
    sent = math.ceil(seconds / flood_gap)
    assert flooded <= flood_status.burst + flood_status.requests_per_second * seconds + 1
    assert flooded >= min(sent, flood_status.requests_per_second * seconds) * 0.9  # and it does get its share


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(TIERS), clients_st,
       st.lists(st.tuples(st.sampled_from([0.0, 0.001, 0.01, 0.1]), st.integers(0, 2),
                          st.sampled_from([Kind.NEW, Kind.AMEND]), st.sampled_from([1, 1, 3, 40])),
                min_size=1, max_size=150))
def test_cancels_are_admitted_while_new_orders_are_refused(tier, clients, ops) -> None:
    throttle, run = clients_run(tier, clients)
    for dt, who, kind, count in ops:
        run.until(run.now + dt)
        for _ in range(count):
            run.request(CLIENTS[who % len(clients)], kind)
    flooder = CLIENTS[0]
    while not isinstance(run.request(flooder, Kind.NEW), (Refused, Queued)):
        pass  # spend the flooder's share to the end, at this instant
    assert isinstance(run.request(flooder, Kind.CANCEL), Admitted)
    assert isinstance(run.request(CLIENTS[-1 % len(clients)], Kind.CANCEL), Admitted)
