"""A real ``fixengine serve`` process is SIGKILLed at each step of an order's way through the
gateway; restarted, nothing is lost, nothing reaches Kalshi twice, and the OMS sees every ExecID
once (a flagged PossResend or PossDup copy at most), its book equal to the exchange's."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from decimal import Decimal as D
from pathlib import Path

import pytest

from conformance.harness import session_to
from fixengine.config import EngineConfig
from simulator.config import MarketEntry, SeedOrder
from tests.helpers.gateway import TICKER, gateway_config, oms_differences, oms_for, reconciled

pytestmark = pytest.mark.slow

POINTS = ["request-received", "request-journaled", "sent-to-kalshi", "report-received", "report-journaled",
          "report-translated", "report-forwarded"]


class ServeProcess:
    """``fixengine serve`` (tests/crash_serve.py) as a child process."""

    def __init__(self, config: EngineConfig, point: str, tmp_path: Path):
        path = tmp_path / "serve.json"
        path.write_text(config.model_dump_json(by_alias=True))
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.crash_serve", str(path), point],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=os.getcwd())

    async def listening(self) -> None:
        line = await asyncio.wait_for(asyncio.to_thread(self.proc.stdout.readline), 30)  # type: ignore[union-attr]
        assert "listening on" in line, line + self.proc.stderr.read()  # type: ignore[union-attr]

    async def exit_code(self, timeout: float = 30) -> int:
        return await asyncio.wait_for(asyncio.to_thread(self.proc.wait), timeout)

    def stderr(self) -> str:
        return self.proc.stderr.read() if self.proc.stderr else ""  # type: ignore[union-attr]


@pytest.mark.parametrize("point", POINTS)
async def test_sigkill_at_each_step_of_the_pipeline(tmp_path, make_key, start_simulator, point) -> None:
    desk = make_key()
    # House liquidity to trade against: the OMS's buy fills 5 at once (New, then Trade).
    sim, sim_events = start_simulator([desk.account()], markets=[MarketEntry(ticker=TICKER)], rest_port=0,
                                      seed_orders=[SeedOrder(ticker=TICKER, side="sell_yes", price=D("0.55"), quantity=D(100))])
    config = gateway_config(tmp_path / "serve", session_to(sim, desk, name="desk-kalshi"),
                            rest=reconciled(sim))
    oms = oms_for(config, "desk", tmp_path / "oms")

    first = ServeProcess(config, point, tmp_path)
    await first.listening()
    await oms.start()
    try:
        await oms.wait_logged_on(timeout=20)
        placed = oms.new_order(TICKER, "1", D(5), D("0.60"))
        assert await first.exit_code() == -9, first.stderr()  # SIGKILL, at the named step

        again = ServeProcess(config, "none", tmp_path)
        await again.listening()
        try:
            await oms.wait_logged_on(timeout=20)  # the OMS reconnects by itself
            try:
                await oms.wait_for(lambda r: r.msg_type == "8" and oms.order(placed).done, timeout=40)
            except TimeoutError:
                again.proc.terminate()
                raise AssertionError(f"the order never ended; the restarted service said:\n{again.stderr()}") from None
            order = oms.order(placed)
            position = sim.exchange.account(desk.key_id).positions.get(TICKER, D(0))
            if point == "request-journaled":  # never sent: the OMS is told so
                assert order.ord_status == "8" and "never sent" in (order.text or ""), order
                assert position == 0
            else:
                assert (order.ord_status, order.cum_qty, order.avg_px) == ("2", D(5), D("0.55")), order
                assert position == D(5)  # once on the exchange, never twice
            assert oms.unflagged_duplicates == []
            assert oms_differences(oms, sim) == []
        finally:
            again.proc.terminate()
            assert await again.exit_code() == 0, again.stderr()  # a clean stop logs out both sides
    finally:
        await oms.stop()


async def settled(oms, sim, timeout: float) -> None:  # type: ignore[no-untyped-def]
    """Wait (on the OMS's messages) until every OMS order has its answer and the OMS's book is
    the exchange's."""
    def done() -> bool:
        waiting = [o for o in oms.orders.values() if o.ord_status in (None, "A", "6", "E") or o.pending]
        return not waiting and oms_differences(oms, sim) == []

    if not done():
        try:
            await oms.wait_for(lambda r: done(), timeout=timeout)
        except TimeoutError:
            waiting = [(o.cl_ord_id, o.ord_status, o.pending) for o in oms.orders.values()
                       if o.ord_status in (None, "A", "6", "E") or o.pending]
            raise AssertionError(f"not settled: waiting {waiting}; differences {oms_differences(oms, sim)}") from None


@pytest.mark.parametrize("seed", [7, 12])
async def test_random_kills_amid_trading(tmp_path, make_key, start_simulator, seed) -> None:
    """The OMS places, amends and cancels at random while another account trades against it and
    the service is SIGKILLed at random instants; after the last restart the OMS's book is the
    exchange's, nothing is doubled and no ExecID came twice unflagged. A failing seed is kept."""
    import random

    from fixengine.engine import Engine
    from fixengine.kalshi.prices import Action, Contract
    from fixengine.orders.requests import NewOrder, TimeInForce
    from tests.helpers.sessions import engine_config

    rng = random.Random(seed)
    desk, other = make_key(), make_key()
    sim, _ = start_simulator([desk.account(), other.account()], markets=[MarketEntry(ticker=TICKER)], rest_port=0,
                             seed_orders=[SeedOrder(ticker=TICKER, side="sell_yes", price=D("0.55"), quantity=D(1000))])
    # The OMS sends a few hundred orders a second: within a Prestige key's write budget (the
    # subject here is kills, not the throttle, which would refuse most of them on a Premier key).
    config = gateway_config(tmp_path / "serve", session_to(sim, desk, name="desk-kalshi"),
                            rest=reconciled(sim), gateway={"tier": "prestige"})
    trader = Engine(engine_config(tmp_path, session_to(sim, other, name="other")))
    await trader.start()
    oms = oms_for(config, "desk", tmp_path / "oms")
    await oms.start()
    try:
        await trader.wait_logged_on()
        for round_ in range(3):
            serve = ServeProcess(config, "none", tmp_path)
            await serve.listening()
            await oms.wait_logged_on(timeout=20)
            deadline = asyncio.get_running_loop().time() + rng.uniform(0.5, 2.5)
            while asyncio.get_running_loop().time() < deadline:
                live = [o for o in oms.orders.values() if o.ord_status in ("0", "1") and not o.pending]
                roll = rng.random()
                if roll < 0.4 or not live:
                    oms.new_order(TICKER, "1", D(rng.randint(1, 5)), D(rng.choice(["0.40", "0.41", "0.42", "0.60"])))
                elif roll < 0.55:
                    oms.replace(rng.choice(live).cl_ord_id, quantity=D(rng.randint(3, 8)), price=D("0.43"))
                elif roll < 0.7:
                    oms.cancel(rng.choice(live).cl_ord_id)
                else:  # the other account sells into the OMS's bids
                    sell = NewOrder.create(ticker=TICKER, action=Action.SELL, contract=Contract.YES,
                                           quantity=D(rng.randint(1, 4)), price=D("0.40"), time_in_force=TimeInForce.IOC)
                    await trader.submit("other", sell)
                with contextlib.suppress(TimeoutError):
                    await oms.wait_for(lambda r: True, timeout=rng.uniform(0.01, 0.2))
            serve.proc.kill()  # SIGKILL, wherever the pipeline is
            assert await serve.exit_code() == -9
        final = ServeProcess(config, "none", tmp_path)
        await final.listening()
        try:
            await oms.wait_logged_on(timeout=20)
            await settled(oms, sim, timeout=60)
            assert oms.unflagged_duplicates == []
            held = sum((o.cum_qty if o.side == "1" else -o.cum_qty) for o in oms.orders.values())
            assert sim.exchange.account(desk.key_id).positions.get(TICKER, D(0)) == held  # nothing doubled
            known = {o.order_id for o in oms.orders.values()}
            assert [o.order_id for o in sim.exchange.open_orders(desk.key_id) if o.order_id not in known] == []
        finally:
            final.proc.terminate()
            assert await final.exit_code() == 0, final.stderr()
    finally:
        await oms.stop()
        await trader.stop()
