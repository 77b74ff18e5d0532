"""The simulator enforces Kalshi's FIX Write budget (spec §8) when ``enforce_write_budget`` is on: a
token bucket per API key sized by its tier, 10 tokens an order-entry request, mass cancel at most
once a second; beyond it BusinessMessageReject 35=j 380=8 "Rate limit exceeded", and the exchange
never sees the request. Over real loopback sockets with a raw FIX client; the bucket's arithmetic
on its own with a clock the test holds."""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime

import pytest

from conformance.harness import TICKER, RawClient, sending_time_now
from fixengine.kalshi.facts import TIERS
from fixengine.orders.wire import mass_cancel_fields
from simulator.budgets import WriteBudgets
from simulator.config import MarketEntry, SimulatorConfig, WriteBudget
from tests.helpers.gateway import wait_until

COST = 10


def log_on(make_key, start_simulator, tier: str, **settings: object):
    """A simulator with one market and the write budget on (unless ``settings`` say otherwise), and
    a raw client logged on with a key of ``tier``."""
    key = make_key()
    settings.setdefault("enforce_write_budget", True)
    sim, events = start_simulator([key.account(tier)], markets=[MarketEntry(ticker=TICKER)], fix_tiers=TIERS, **settings)
    client = RawClient(sim, key)
    assert client.logon()[35] == "A"
    events.wait_for("logged_on", key.key_id)
    return sim, key, client


def answers(client: RawClient, sent: dict[str, int]) -> dict[str, str]:
    """Read until each ClOrdID in ``sent`` (-> its MsgSeqNum) is accepted (35=8 150=0) or refused
    for its rate (35=j, checked field by field as Kalshi answers it)."""
    found: dict[str, str] = {}
    while len(found) < len(sent):
        message = client.read()
        if message[35] == "8" and message.get(150) == "0":
            found[message[11]] = "accepted"
        elif message[35] == "j":
            cl_ord_id = message[379]
            assert (message[380], message[58], message[372], message[45]) == (
                "8", "Rate limit exceeded", "D", str(sent[cl_ord_id]))
            found[cl_ord_id] = "refused"
    return found


def burst(client: RawClient, prefix: str, count: int, **extra: str) -> tuple[dict[str, str], float]:
    """``count`` orders back to back; how each was answered, and the seconds from the first sent to
    the last answered (the most the bucket can have refilled meanwhile)."""
    start = time.monotonic()
    sent = {f"{prefix}-{i}": order(client, f"{prefix}-{i}", **extra) for i in range(count)}
    found = answers(client, sent)
    return found, time.monotonic() - start


def order(client: RawClient, cl_ord_id: str, ex_destination: str | None = None) -> int:
    if ex_destination is None:
        return client.order(cl_ord_id)
    return client.send("D", [(11, cl_ord_id), (55, TICKER), (54, "1"), (38, "1"), (40, "2"), (44, "40"), (59, "1"),
                             (100, ex_destination), (60, sending_time_now())])


def open_orders(sim, key) -> set[str]:
    return {o.cl_ord_id for o in sim.exchange.open_orders(key.key_id)}


@pytest.mark.parametrize(("tier", "count", "budget", "rate"), [("basic", 40, 10, 10), ("premier", 400, 200, 100)])
def test_a_burst_beyond_the_tiers_budget_gets_380_8_for_the_excess_and_the_exchange_only_the_rest(
        make_key, start_simulator, tier, count, budget, rate) -> None:
    sim, key, client = log_on(make_key, start_simulator, tier)  # basic holds 1 s of 10 orders/s, premier 2 s of 100
    found, seconds = burst(client, "b", count)
    accepted = {c for c, answer in found.items() if answer == "accepted"}
    assert budget <= len(accepted) <= budget + math.floor(seconds * rate)  # the full bucket, plus what refilled
    assert {f"b-{i}" for i in range(budget)} <= accepted  # the first ones, in order
    refused = count - len(accepted)
    assert refused > 0 and refused >= count - budget - math.floor(seconds * rate)
    assert open_orders(sim, key) == accepted  # nothing refused reached the exchange
    client.close()


async def test_after_the_refill_orders_pass_again(make_key, start_simulator) -> None:
    sim, key, client = log_on(make_key, start_simulator, "basic")
    found, _ = burst(client, "b", 15)
    assert "refused" in found.values()
    budget = sim.write_budget
    assert budget is not None and budget.tokens(key.key_id) < COST
    await wait_until(lambda: budget.tokens(key.key_id) >= COST, timeout=5)  # 100 tokens a second on Basic
    assert answers(client, {"after": order(client, "after")}) == {"after": "accepted"}
    assert "after" in open_orders(sim, key)
    client.close()


def test_mass_cancel_twice_within_a_second_refuses_the_second(make_key, start_simulator) -> None:
    sim, key, client = log_on(make_key, start_simulator, "premier")  # tokens to spare: only the second counts
    assert answers(client, {"o-1": order(client, "o-1")}) == {"o-1": "accepted"}
    client.send("q", mass_cancel_fields("m-1", now=datetime.now(UTC)))
    report = client.read()
    while report[35] != "r":
        report = client.read()
    assert (report[11], report[531]) == ("m-1", "6")
    assert open_orders(sim, key) == set()
    assert answers(client, {"o-2": order(client, "o-2")}) == {"o-2": "accepted"}
    seq = client.send("q", mass_cancel_fields("m-2", now=datetime.now(UTC)))
    reject = client.read()
    while reject[35] == "8":  # o-2's reports, if any came late
        reject = client.read()
    assert (reject[35], reject[380], reject[58], reject[372], reject[379], reject[45]) == (
        "j", "8", "Rate limit exceeded", "q", "m-2", str(seq))
    assert open_orders(sim, key) == {"o-2"}  # the refused mass cancel never reached the exchange
    client.close()


def test_an_order_for_a_shard_is_billed_to_that_shards_own_bucket(make_key, start_simulator) -> None:
    sim, key, client = log_on(make_key, start_simulator, "basic", write_budgets={"basic": WriteBudget(refill_rate=1, capacity=20)})
    assert set(burst(client, "u", 2)[0].values()) == {"accepted"}  # the unscoped bucket is spent (and refills 1 token/s)
    found = answers(client, {"s0": order(client, "s0", "0"), "s1": order(client, "s1", "1"), "s-1": order(client, "s-1", "-1")})
    assert found == {"s0": "refused", "s1": "accepted", "s-1": "refused"}  # 0 and -1 bill the unscoped one
    assert open_orders(sim, key) == {"u-0", "u-1", "s1"}
    client.close()


def test_without_enforce_write_budget_order_entry_is_unlimited(make_key, start_simulator) -> None:
    assert SimulatorConfig().enforce_write_budget is False  # tests and benchmarks send far past a tier's budget
    sim, key, client = log_on(make_key, start_simulator, "basic", enforce_write_budget=False)
    assert sim.write_budget is None
    found, _ = burst(client, "b", 30)
    assert set(found.values()) == {"accepted"} and len(open_orders(sim, key)) == 30
    client.close()


def test_write_budgets_are_kalshis_per_tier_unless_configured() -> None:
    config = SimulatorConfig(write_budgets={"premier": WriteBudget(refill_rate=50, capacity=100)})
    assert config.write_budget("basic") == WriteBudget(refill_rate=100, capacity=100)
    assert config.write_budget("advanced") == WriteBudget(refill_rate=300, capacity=600)
    assert config.write_budget("prestige") == WriteBudget(refill_rate=8000, capacity=16000)
    assert config.write_budget("premier") == WriteBudget(refill_rate=50, capacity=100)
    with pytest.raises(ValueError, match="capacity 5 is below one request's 10 tokens"):
        WriteBudget(refill_rate=1, capacity=5)


# --- the bucket on its own, with the test's clock ------------------------------------------------------


def test_each_write_costs_ten_tokens_and_session_messages_nothing() -> None:
    clock = [0.0]
    budgets = WriteBudgets(lambda key: WriteBudget(refill_rate=100, capacity=100), monotonic=lambda: clock[0])
    assert all(budgets.allow("k", t) for t in "DFGDFGDFGD")  # 10 requests: the whole bucket
    assert not budgets.allow("k", "D") and budgets.tokens("k") == 0
    assert budgets.allow("k", "0") and budgets.allow("k", "H")  # a heartbeat, a status request: not billed
    assert budgets.allow("other", "D")  # a bucket per key
    clock[0] = 0.1
    assert budgets.allow("k", "G") and not budgets.allow("k", "F")  # 10 tokens back in 0.1 s


def test_mass_cancel_once_a_second_and_a_refused_one_costs_nothing() -> None:
    clock = [5.0]
    budgets = WriteBudgets(lambda key: WriteBudget(refill_rate=1, capacity=100), monotonic=lambda: clock[0])
    assert budgets.allow("k", "q")
    clock[0] = 5.999
    assert not budgets.allow("k", "q") and budgets.tokens("k") == pytest.approx(100 - COST + 0.999)
    assert budgets.allow("other", "q")  # per key
    clock[0] = 6.0
    assert budgets.allow("k", "q")
