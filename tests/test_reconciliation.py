"""Reconciliation end to end: the engine's FIX sessions and its REST client against the simulator
(real sockets, a real HTTP server), with the exchange changed behind the engine's back."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from decimal import Decimal as D

import pytest

from conformance.harness import RawClient, sending_time_now, session_to
from fixengine.config import EngineConfig, RestConfig
from fixengine.engine import Engine
from fixengine.events import LoggedOn, SequenceGap
from fixengine.orders.entry import BookHeld, BookReleased, BookUnconfirmedError
from fixengine.orders.book import OrderAccepted, Status
from fixengine.reconcile.compare import Kind
from fixengine.reconcile.runner import ReconciliationDone, ReconciliationFailed
from simulator.config import MarketEntry
from tests.helpers.orders import yes_bid
from tests.helpers.sessions import unused_port

TICKER = "RECON-1"


def engine_config(tmp_path, sim, key, **session) -> EngineConfig:
    return EngineConfig(
        data_dir=tmp_path / "engine", sessions=[session_to(sim, key, **session)],
        rest=RestConfig(base_url=sim.rest_url, reconcile_interval=0, staleness_timeout=10),
    )


@pytest.fixture
def simulator(make_key, start_simulator):
    key = make_key()
    sim, events = start_simulator([key.account()], markets=[MarketEntry(ticker=TICKER)], rest_port=0)
    sim.test_events = events  # type: ignore[attr-defined]  # the simulator's own events (SimEvents)
    return sim, key


async def reconciled_engine(config: EngineConfig):
    """An engine logged on, its first reconciliation done (orders are held until then)."""
    engine = Engine(config)
    events = engine.events()
    await engine.start()
    await engine.wait_logged_on()
    done = await events.wait_for(ReconciliationDone)
    assert done.findings.clean, done.describe()
    await events.wait_for(BookReleased)
    return engine, events


def differences(engine: Engine, sim, key_id: str) -> list[str]:
    """Where the engine's book and the exchange disagree, order by order and position."""
    found = []
    for o in engine.book.orders.values():
        if o.order_id is None:
            continue
        theirs = sim.exchange.order(o.order_id)
        status = "canceled" if theirs.status.name == "EXPIRED" else theirs.status.name.lower()  # 150=4 without 21012
        if (o.status.value, o.cum_qty, o.leaves_qty) != (status, theirs.cum_qty, theirs.leaves_qty):
            found.append(f"{o.key}: engine {o.status.value} {o.cum_qty}/{o.leaves_qty} vs {theirs.status.name} {theirs.cum_qty}/{theirs.leaves_qty}")
    known = {o.order_id for o in engine.book.orders.values()}
    found += [f"unknown {s.order_id}" for s in sim.exchange.open_orders(key_id) if s.order_id not in known]
    if engine.book.position(key_id, TICKER) != sim.exchange.account(key_id).positions.get(TICKER, D(0)):
        found.append("position")
    return found


async def test_every_logon_holds_new_orders_until_reconciled(tmp_path, simulator) -> None:
    sim, key = simulator
    engine = Engine(engine_config(tmp_path, sim, key))
    events = engine.events()
    await engine.start()
    try:
        await events.wait_for(LoggedOn)
        held = await events.wait_for(BookHeld)
        assert "waiting for reconciliation" in held.reason
        await events.wait_for(ReconciliationDone)
        await events.wait_for(BookReleased)
        placed = await engine.submit("s1", yes_bid(TICKER))
        assert (await events.wait_for(OrderAccepted)).order.key == placed.key
    finally:
        await engine.stop()


async def test_an_nr_gap_is_healed_by_reconciliation_and_the_hold_released(tmp_path, simulator) -> None:
    sim, key = simulator
    engine, events = await reconciled_engine(engine_config(tmp_path, sim, key))
    try:
        await engine.submit("s1", yes_bid(TICKER, "0.40"))
        await events.wait_for(OrderAccepted)
        sim.faults.drop_outbound(key.key_id, 2)  # PendingNew and New of the next order: never read
        lost = await engine.submit("s1", yes_bid(TICKER, "0.41"))
        assert await asyncio.to_thread(sim.faults.wait_spent, key.key_id)
        await engine.submit("s1", yes_bid(TICKER, "0.42"))  # its reports show the gap
        await events.wait_for(SequenceGap)
        await events.wait_for(BookHeld, timeout=15)
        done = await events.wait_for(ReconciliationDone, timeout=20)
        assert done.findings.clean
        assert Kind.ACK_MISSED in {d.kind for d in done.findings.discrepancies}
        await events.wait_for(BookReleased)
        assert engine.book.order(lost.key).status is Status.NEW and engine.book.order(lost.key).order_id
        assert differences(engine, sim, key.key_id) == []
        assert not engine.is_book_held("s1")
    finally:
        await engine.stop()


async def test_changes_behind_the_engines_back_are_found_and_healed(tmp_path, simulator) -> None:
    sim, key = simulator
    engine, events = await reconciled_engine(engine_config(tmp_path, sim, key))
    try:
        to_cancel = await engine.submit("s1", yes_bid(TICKER, "0.40"))
        to_fill = await engine.submit("s1", yes_bid(TICKER, "0.41"))
        for _ in range(2):
            await events.wait_for(OrderAccepted)
        await asyncio.to_thread(sim.admin.cancel_order, engine.book.order(to_cancel.key).order_id)
        await asyncio.to_thread(sim.admin.add_fill, engine.book.order(to_fill.key).order_id, D(2))
        findings = await engine.reconcile("s1")
        kinds = sorted(d.kind.value for d in findings.discrepancies)
        assert kinds == ["canceled_elsewhere", "fill_missed", "position_set"] and findings.clean
        assert engine.book.order(to_cancel.key).status is Status.CANCELED
        filled = engine.book.order(to_fill.key)
        assert (filled.status, filled.cum_qty, engine.book.position(key.key_id, TICKER)) == (Status.PARTIALLY_FILLED, D(2), D(2))
        assert differences(engine, sim, key.key_id) == []
        assert (await engine.reconcile("s1")).discrepancies == []  # healed once, for good

        await asyncio.to_thread(sim.admin.settle_market, TICKER, "yes")
        findings = await engine.reconcile("s1")
        assert {d.kind for d in findings.discrepancies} >= {Kind.SETTLED, Kind.CANCELED_ELSEWHERE}
        assert engine.book.position(key.key_id, TICKER) == 0 and differences(engine, sim, key.key_id) == []
    finally:
        await engine.stop()
    # The heals were journaled: a restarted engine has the same book.
    again = Engine(engine.config)
    await again.start()
    try:
        assert again.book.order(to_fill.key).cum_qty == D(2) and again.book.position(key.key_id, TICKER) == 0
    finally:
        await again.stop()


async def test_stale_rest_data_is_read_again_until_it_is_newer_than_the_last_report(tmp_path, make_key, start_simulator) -> None:
    key = make_key()
    sim, _ = start_simulator([key.account()], markets=[MarketEntry(ticker=TICKER)], rest_port=0, rest_lag=1.0)
    engine, events = await reconciled_engine(engine_config(tmp_path, sim, key))
    try:
        placed = await engine.submit("s1", yes_bid(TICKER))
        await events.wait_for(OrderAccepted)
        # A snapshot taken now would predate the order (1 s of lag) and call it missing.
        findings = await engine.reconcile("s1")
        assert findings.discrepancies == [], [d.describe() for d in findings.discrepancies]
        assert engine.book.order(placed.key).status is Status.NEW
    finally:
        await engine.stop()


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fixengine", *args], capture_output=True, text=True, timeout=60)


async def test_the_reconcile_command_reports_heals_and_exits_by_what_remains(tmp_path, simulator) -> None:
    sim, key = simulator
    config = engine_config(tmp_path, sim, key)
    engine, events = await reconciled_engine(config)
    placed = await engine.submit("s1", yes_bid(TICKER))
    await events.wait_for(OrderAccepted)
    order_id = engine.book.order(placed.key).order_id
    await engine.stop()
    (tmp_path / "engine.toml").write_text(
        f'data_dir = "{config.data_dir}"\n[rest]\nbase_url = "{sim.rest_url}"\nreconcile_interval = 0\n'
        f'[[session]]\nname = "s1"\nhost = "127.0.0.1"\nport = {config.sessions[0].port}\ntls = false\n'
        f'session_type = "KalshiNR"\napi_key_id = "{key.key_id}"\nprivate_key_file = "{key.private_key_file}"\n'
    )
    await asyncio.to_thread(sim.admin.cancel_order, order_id)

    first = await asyncio.to_thread(run_cli, "reconcile", "--config", str(tmp_path / "engine.toml"))
    assert first.returncode == 0, first.stdout + first.stderr
    assert "canceled_elsewhere" in first.stdout and "s1: clean (1 healed; balance $" in first.stdout

    again = await asyncio.to_thread(run_cli, "reconcile", "--config", str(tmp_path / "engine.toml"), "--json")
    report = json.loads(again.stdout)
    assert again.returncode == 0 and report["clean"] and report["discrepancies"] == []  # the heal was journaled
    assert D(report["sessions"]["s1"]["balance_dollars"]) == sim.exchange.account(key.key_id).balance

    # An order placed outside this engine (same API key, another client) cannot be explained.
    await asyncio.to_thread(sim.test_events.wait_for, "closed", key.key_id)  # the engine's connection is gone
    await asyncio.to_thread(place_elsewhere, sim, key)
    unexplained = await asyncio.to_thread(run_cli, "reconcile", "--config", str(tmp_path / "engine.toml"))
    assert unexplained.returncode == 1, unexplained.stdout + unexplained.stderr
    assert "unknown_order" in unexplained.stdout and "NOT explained" in unexplained.stdout

    bad = await asyncio.to_thread(run_cli, "reconcile", "--config", str(tmp_path / "missing.toml"))
    assert bad.returncode == 2 and "missing.toml" in bad.stderr


def place_elsewhere(sim, key) -> None:
    client = RawClient(sim, key)
    try:
        assert client.logon()[35] == "A"
        client.send("D", [(11, "elsewhere-1"), (55, TICKER), (54, "1"), (38, "1"), (40, "2"), (44, "30"), (59, "1"),
                          (60, sending_time_now())])
        while client.read().get(150) != "0":  # until it is acknowledged
            pass
        client.send("5", [])
    finally:
        client.close()


async def test_reconciliation_also_runs_periodically(tmp_path, simulator) -> None:
    sim, key = simulator
    config = engine_config(tmp_path, sim, key).model_copy(
        update={"rest": RestConfig(base_url=sim.rest_url, reconcile_interval=0.3)}
    )
    engine, events = await reconciled_engine(config)
    try:
        placed = await engine.submit("s1", yes_bid(TICKER))
        await events.wait_for(OrderAccepted)
        await asyncio.to_thread(sim.admin.cancel_order, engine.book.order(placed.key).order_id)
        healed = await events.wait_for(ReconciliationDone, timeout=10)  # nobody asked for this one
        assert [d.kind for d in healed.findings.discrepancies] == [Kind.CANCELED_ELSEWHERE]
        assert engine.book.order(placed.key).status is Status.CANCELED
    finally:
        await engine.stop()


async def test_without_rest_the_hold_stays_and_the_failure_is_reported(tmp_path, simulator) -> None:
    sim, key = simulator
    dead = unused_port()
    config = engine_config(tmp_path, sim, key).model_copy(update={"rest": RestConfig(
        base_url=f"http://127.0.0.1:{dead}/trade-api/v2", reconcile_interval=0, timeout=1,
    )})
    engine = Engine(config)
    events = engine.events()
    await engine.start()
    try:
        await engine.wait_logged_on()
        failed = await events.wait_for(ReconciliationFailed, timeout=60)
        assert f"127.0.0.1:{dead}" in failed.reason or "connect" in failed.reason.lower(), failed.reason
        assert engine.is_book_held("s1")
        with pytest.raises(BookUnconfirmedError):
            await engine.submit("s1", yes_bid(TICKER))
        engine.confirm_book("s1")  # a human's override
        placed = await engine.submit("s1", yes_bid(TICKER))
        assert (await events.wait_for(OrderAccepted)).order.key == placed.key
    finally:
        await engine.stop()

