"""The bounded soak: orders, cancels and replaces flow while the simulator injects random faults;
at the end the engine's book must equal the exchange's, order by order, with the positions.

- KalshiRT: every fault here is one a retransmission session recovers from on its own (resends),
  without reconciliation, and the book is never held.
- KalshiNR: gaps lose reports for good; each logs out and back on with a reset, new orders wait
  for the REST reconciliation (simulator's REST API), which heals what was lost.

Not here: a Reset-mode SequenceReset (it may skip messages never received: the book is held, see
test_recovery) and a shortened retention (a refused resend, the same). The seed and the length can
be changed for a longer run:

    FIXENGINE_SOAK_SEED=7 FIXENGINE_SOAK_SECONDS=600 .venv/bin/python -m pytest tests/test_soak.py
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections import Counter
from decimal import Decimal as D

import pytest

from conformance.harness import session_to
from fixengine.config import EngineConfig, LogonFlags, RestConfig
from fixengine.engine import Engine
from fixengine.errors import SessionUnavailableError
from fixengine.orders.entry import BookUnconfirmedError
from fixengine.kalshi.facts import SessionType
from fixengine.orders.book import Order, Status
from fixengine.orders.requests import CancelOrder, InvalidOrderError, NewOrder, ReplaceOrder
from fixengine.kalshi.prices import Action, Contract
from simulator.config import MarketEntry, SeedOrder
from simulator.faults import FaultError
from tests.helpers.waits import caught_up, logged_on_again, released

TICKER = "SOAK-1"
SEED = int(os.environ.get("FIXENGINE_SOAK_SEED", "20261121"))
SECONDS = float(os.environ.get("FIXENGINE_SOAK_SECONDS", "25"))
FAULT_EVERY_S = 1.0
REQUEST_EVERY_S = 0.01  # up to 100 requests a second
HEARTBEAT_S = 2
SETTLE_S = 60.0

pytestmark = pytest.mark.slow


FAULTS = {
    "RT": ["drop", "duplicate", "garble", "bad_checksum", "delay", "close", "close_mid_message", "gap_fill",
           "rate_limit", "refuse_logon", "silence"],
    # Kalshi sends no SequenceReset on sessions without retransmission.
    "NR": ["drop", "duplicate", "garble", "bad_checksum", "delay", "close", "close_mid_message", "rate_limit",
           "refuse_logon", "silence"],
}


def arm_random_fault(sim, key_id: str, rng: random.Random, kind: str) -> str:
    """Arm one fault a retransmission session must recover from; its name (or why it could not)."""
    faults = sim.faults
    try:
        faults.delay(key_id, 0)  # a delay lasts until the next fault
    except FaultError:
        pass  # no connection now
    choice = rng.choice(FAULTS[kind])
    try:
        if choice == "drop":
            faults.drop_outbound(key_id, rng.randint(1, 3))
        elif choice == "duplicate":
            faults.duplicate_next(key_id)
        elif choice == "garble":
            faults.garble_next(key_id)
        elif choice == "bad_checksum":
            faults.bad_checksum_next(key_id)
        elif choice == "delay":
            faults.delay(key_id, 0.3)
        elif choice == "close":
            faults.close(key_id)
        elif choice == "close_mid_message":
            faults.close(key_id, mid_message=True)
        elif choice == "gap_fill":
            faults.sequence_reset(key_id, gap_fill=True)
        elif choice == "rate_limit":
            faults.rate_limit(key_id, 1)
        elif choice == "refuse_logon":
            faults.refuse_next_logon(key_id, "simulated refusal")
            faults.close(key_id)
        elif choice == "silence":
            faults.go_silent(key_id)
    except FaultError as exc:  # e.g. no connection right now: the previous fault is still at work
        return f"skipped ({exc})"
    return choice


class Trader:
    """Random requests, as a user would make them: new orders, cancels and replaces of live ones."""

    def __init__(self, engine: Engine, rng: random.Random):
        self.engine = engine
        self.rng = rng
        self.done: Counter[str] = Counter()

    def _changeable(self) -> list[Order]:
        return [
            o for o in self.engine.book.orders.values()
            if o.status in (Status.NEW, Status.PARTIALLY_FILLED) and o.pending is None
        ]

    async def one_request(self) -> None:
        rng = self.rng
        price = D(rng.randint(40, 60)) / 100
        roll = rng.random()
        changeable = self._changeable()
        try:
            if roll < 0.5 or not changeable:
                action = rng.choice([Action.BUY, Action.SELL])
                order = NewOrder.create(ticker=TICKER, action=action, contract=Contract.YES,
                                        quantity=D(rng.randint(1, 3)), price=price)
                await self.engine.submit("s1", order)
                self.done["new"] += 1
            elif roll < 0.75:
                await self.engine.cancel("s1", CancelOrder(order=rng.choice(changeable).key))
                self.done["cancel"] += 1
            else:
                await self.engine.replace("s1", ReplaceOrder(order=rng.choice(changeable).key, price=price))
                self.done["replace"] += 1
        except SessionUnavailableError:
            self.done["waited for logon"] += 1
            await logged_on_again(self.engine, timeout=30)
        except BookUnconfirmedError:
            self.done["waited for reconciliation"] += 1
            await released(self.engine, timeout=30)
        except InvalidOrderError:
            self.done["refused locally"] += 1  # e.g. the order filled a moment ago


def differences(engine: Engine, sim, key_id: str) -> list[str]:
    """Where the engine's book and the exchange disagree (empty: the invariant holds)."""
    found = []
    known = set()
    for order in engine.book.orders.values():
        if order.order_id is None:
            if order.status is not Status.REJECTED:
                found.append(f"{order.key}: {order.status.value} and never acknowledged")
            continue
        known.add(order.order_id)
        ours = (order.status.value, order.cum_qty, order.leaves_qty, order.yes_price)
        exchange = sim.exchange.order(order.order_id)
        theirs = (exchange.status.name.lower(), exchange.cum_qty, exchange.leaves_qty, exchange.yes_price)
        if ours != theirs or order.pending is not None or order.unconfirmed:
            found.append(f"{order.key} ({order.order_id}): engine {ours} pending={order.pending} vs exchange {theirs}")
    for snapshot in sim.exchange.open_orders(key_id):
        if snapshot.order_id not in known:
            found.append(f"exchange order {snapshot.order_id} ({snapshot.cl_ord_id}) unknown to the engine")
    ours = engine.book.position(key_id, TICKER)
    theirs = sim.exchange.account(key_id).positions.get(TICKER, D(0))
    if ours != theirs:
        found.append(f"position: engine {ours} vs exchange {theirs}")
    return found


def in_flight(engine: Engine) -> list[Order]:
    return [o for o in engine.book.orders.values() if o.pending is not None or o.status is Status.PENDING_NEW]


@pytest.mark.parametrize("kind", ["RT", "NR"])
async def test_soak_random_faults_while_orders_flow_books_equal_after(tmp_path, make_key, start_simulator, kind) -> None:
    key = make_key()
    seeds = [
        SeedOrder(ticker=TICKER, side="sell_yes", price=D("0.55"), quantity=D(100000)),
        SeedOrder(ticker=TICKER, side="buy_yes", price=D("0.45"), quantity=D(100000)),
    ]
    sim, _ = start_simulator([key.account()], markets=[MarketEntry(ticker=TICKER)], seed_orders=seeds,
                             min_heartbeat_interval=1, rest_port=0 if kind == "NR" else None)
    if kind == "RT":
        session = session_to(sim, key, session_type=SessionType.RT, logon=LogonFlags(reset_seq_num=False),
                             heartbeat_interval=HEARTBEAT_S)
        rest = None
    else:
        session = session_to(sim, key, heartbeat_interval=HEARTBEAT_S)
        rest = RestConfig(base_url=sim.rest_url, reconcile_interval=0, staleness_timeout=10)
    engine = Engine(EngineConfig(data_dir=tmp_path / "engine", sessions=[session], rest=rest))
    events = engine.events()
    rng = random.Random(SEED)
    trader = Trader(engine, rng)
    armed: Counter[str] = Counter()
    await engine.start()
    try:
        await engine.wait_logged_on()
        loop = asyncio.get_running_loop()
        end = time.monotonic() + SECONDS
        next_fault = time.monotonic() + FAULT_EVERY_S
        next_request = time.monotonic()
        while time.monotonic() < end:
            if time.monotonic() >= next_fault:
                armed[(await loop.run_in_executor(None, arm_random_fault, sim, key.key_id, rng, kind)).split(" (")[0]] += 1
                next_fault = time.monotonic() + FAULT_EVERY_S
            if time.monotonic() >= next_request:
                await trader.one_request()
                next_request = time.monotonic() + REQUEST_EVERY_S
            try:  # the engine's events meanwhile (a queue that must not grow)
                await events.next(timeout=max(0.0, next_request - time.monotonic()))
            except TimeoutError:
                pass

        sim.faults.clear(key.key_id)
        await logged_on_again(engine, timeout=SETTLE_S)
        if kind == "NR":
            await released(engine, timeout=SETTLE_S)
        deadline = time.monotonic() + SETTLE_S
        while in_flight(engine) and time.monotonic() < deadline:
            try:  # a gap at the very end shows on the next Heartbeat (every HEARTBEAT_S)
                await events.next(timeout=1.0)
            except TimeoutError:
                pass
        await caught_up(engine)
        summary = f"seed {SEED}; faults {dict(armed)}; requests {dict(trader.done)}"
        if kind == "NR":  # what the gaps lost: proven and healed over REST, as an operator would
            final = await engine.reconcile("s1")
            assert final.clean, [d.describe() for d in final.unexplained]
        assert not in_flight(engine), f"still in flight after {SETTLE_S}s: {in_flight(engine)[:5]}; {summary}"
        assert not engine.is_book_held("s1"), summary  # RT loses nothing; NR's holds were released
        assert differences(engine, sim, key.key_id) == [], summary
        # orders did flow (NR spends much of the run logging on again and reconciling)
        assert trader.done["new"] > (100 if kind == "RT" else 30), summary
        # the faults did happen (fewer than one a second: none is armed while the trader waits for a logon)
        assert sum(n for name, n in armed.items() if name != "skipped") >= SECONDS / FAULT_EVERY_S / 4, summary
        assert sum(1 for o in engine.book.orders.values() if o.cum_qty > 0) > 0, summary  # fills happened
    finally:
        await engine.stop()
