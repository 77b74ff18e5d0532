"""One rate budget, shared fairly, against a simulator that enforces Kalshi's Write budget (a Basic
key: 10 requests a second): with the gateway's limiter on, Kalshi never answers 380=8; a client
flooding new orders is refused beyond its share (35=j 380=8 naming its quota) without delaying
another client within its share, or anyone's cancels; a client set to queue waits instead."""

from __future__ import annotations

import asyncio
from decimal import Decimal as D

import pytest

from conformance.harness import session_to
from fixengine.events import BusinessRejected
from fixengine.kalshi.facts import TIERS
from simulator.config import MarketEntry
from tests.helpers.gateway import TICKER, gateway_config, oms_client_entry, oms_logged_on, running_gateway

STEADY_INTERVAL = 0.25  # the steady client sends 4 orders a second: within its share (5 of the 10)


@pytest.fixture
def basic_market(make_key, start_simulator):
    desk = make_key()
    sim, _ = start_simulator([desk.account("basic")], markets=[MarketEntry(ticker=TICKER)], enforce_write_budget=True,
                             fix_tiers=TIERS)  # Kalshi lets Basic keys on FIX on request; the simulator must be told
    return sim, desk


def config_for(tmp_path, basic_market, **patient):  # type: ignore[no-untyped-def]
    sim, desk = basic_market
    clients = [oms_client_entry("flood", "FLOOD", "desk-kalshi"), oms_client_entry("steady", "STEADY", "desk-kalshi")]
    if patient:
        clients.append(oms_client_entry("patient", "PATIENT", "desk-kalshi", **patient))
    return gateway_config(tmp_path / "serve", session_to(sim, desk, name="desk-kalshi"), clients=clients,
                          gateway={"tier": "basic"})


def answer_to(cl_ord_id: str):  # type: ignore[no-untyped-def]
    """The final answer to a new order: its ack (150=0), its reject (150=8), or a 35=j for it."""
    return lambda r: (r.get(11) == cl_ord_id and r.get(150) in ("0", "8")) or r.get(379) == cl_ord_id


def kalshi_rate_rejects(events: list) -> list:  # type: ignore[type-arg]
    return [e for e in events if isinstance(e, BusinessRejected) and e.reason.number == 8]


async def test_a_flooding_client_is_refused_beyond_its_share_and_delays_no_one(tmp_path, basic_market) -> None:
    config = config_for(tmp_path, basic_market)
    async with running_gateway(config) as (engine, gateway):
        seen: list = []  # type: ignore[type-arg]
        engine.observe(seen.append)
        await engine.wait_logged_on()
        async with oms_logged_on(config, "flood", tmp_path / "flood") as flood, \
                oms_logged_on(config, "steady", tmp_path / "steady") as steady:
            resting = flood.new_order(TICKER, "1", D(1), D("0.20"))
            await flood.wait_for(answer_to(resting))

            flooded = [flood.new_order(TICKER, "1", D(1), D("0.20")) for _ in range(40)]
            cancel = flood.cancel(resting)  # behind its own flood: still taken first, never refused
            steady_orders = []
            for _ in range(8):
                steady_orders.append(steady.new_order(TICKER, "1", D(1), D("0.21")))
                await asyncio.sleep(STEADY_INTERVAL)  # the client's own pace, not a wait for anything

            for c in steady_orders:
                report = await steady.wait_for(answer_to(c), timeout=10)
                assert report.msg_type == "8" and report.get(150) == "0", report.describe()
            await flood.wait_for(lambda r: r.get(11) == cancel and r.get(150) == "4", timeout=10)

            answers = {}
            for c in flooded:
                answers[c] = await flood.wait_for(answer_to(c), timeout=10)
            refused = [r for r in answers.values() if r.msg_type == "j"]
            admitted = [r for r in answers.values() if r.msg_type == "8" and r.get(150) == "0"]
            assert refused and admitted and len(refused) + len(admitted) == len(flooded)
            assert all(r.get(380) == "8" and r.get(58).startswith("rate limit: flood may send") for r in refused), \
                refused[0].describe()
            assert len(admitted) < 20  # its share (5/s) and burst, not the session's whole budget
        assert kalshi_rate_rejects(seen) == []  # Kalshi never had to refuse anything for its rate


async def test_a_client_set_to_queue_waits_for_its_share_instead_of_being_refused(tmp_path, basic_market) -> None:
    config = config_for(tmp_path, basic_market, when_throttled="queue", queue_timeout=10)
    async with running_gateway(config) as (engine, gateway):
        seen: list = []  # type: ignore[type-arg]
        engine.observe(seen.append)
        await engine.wait_logged_on()
        async with oms_logged_on(config, "patient", tmp_path / "patient") as patient:
            sent = [patient.new_order(TICKER, "1", D(1), D("0.20")) for _ in range(15)]
            acks = [await patient.wait_for(answer_to(c), timeout=15) for c in sent]
            assert all(r.msg_type == "8" and r.get(150) == "0" for r in acks), [r.describe() for r in acks]
            queued = {c.name: c.queued for s in gateway.throttle_status() for c in s.clients}
            assert queued["patient"] > 0  # some had to wait: 15 is more than its burst
        assert kalshi_rate_rejects(seen) == []
