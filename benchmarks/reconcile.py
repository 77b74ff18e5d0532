"""Reconciliation benchmark: a full reconciliation of an account with N orders and N fills against
the simulator's REST API over loopback (signing and pagination included). Prints JSON.

    .venv/bin/python benchmarks/reconcile.py [--orders 10000]

The engine places ``--orders`` resting orders over FIX (KalshiNR); each then gets one fill behind
the engine's back (the simulator's admin call, never reported on FIX). Timed:
- the healing run: snapshot read, every fill found missing and healed (journaled, applied);
- the clean run after it: the same account, everything matching.
Target (issue 5): at most 10 s for 10,000 orders and 10,000 fills.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from order_roundtrip import Orders, simulated_account  # noqa: E402

from fixengine.config import EngineConfig, RestConfig, SessionConfig  # noqa: E402
from fixengine.engine import Engine  # noqa: E402
from fixengine.kalshi.facts import SessionType  # noqa: E402
from fixengine.orders.entry import BookReleased  # noqa: E402
from fixengine.orders.book import OrderAccepted  # noqa: E402
from fixengine.reconcile.compare import Kind  # noqa: E402
from fixengine.rest import local_url  # noqa: E402


async def fill_behind_the_engines_back(rest_port: int, order_ids: list[str]) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{rest_port}", timeout=30) as admin:
        for start in range(0, len(order_ids), 50):
            replies = await asyncio.gather(*(
                admin.post(f"/admin/orders/{order_id}/fill", json={"quantity": "1"})
                for order_id in order_ids[start:start + 50]
            ))
            for reply in replies:
                reply.raise_for_status()


async def run(root: Path, key_id: str, port: int, rest_port: int, n: int) -> dict[str, object]:
    config = EngineConfig(data_dir=root / "engine", sessions=[SessionConfig(
        name="nr", host="127.0.0.1", port=port, tls=False, session_type=SessionType.NR, api_key_id=key_id,
        private_key_file=root / "k.pem", heartbeat_interval=30,
    )], rest=RestConfig(base_url=local_url(rest_port), reconcile_interval=0, tier="prestige", timeout=60))
    async with Engine(config) as engine:
        events = engine.events()
        await engine.wait_logged_on()
        await events.wait_for(BookReleased, timeout=30)
        orders = Orders(engine)
        placed = []
        for i in range(n):
            placed.append(await engine.submit("nr", orders.make(quantity=2)))
            if i % 500 == 499:
                await asyncio.sleep(0)  # let the batch go out
        waiting = {p.key for p in placed}
        while waiting:
            waiting.discard((await events.wait_for(OrderAccepted, timeout=60)).order.key)
        await fill_behind_the_engines_back(rest_port, [engine.book.order(p.key).order_id for p in placed])

        started = time.perf_counter()
        healing = await engine.reconcile("nr")
        healing_s = time.perf_counter() - started
        started = time.perf_counter()
        clean = await engine.reconcile("nr")
        clean_s = time.perf_counter() - started
    fills_healed = sum(1 for d in healing.discrepancies if d.kind is Kind.FILL_MISSED and d.healed)
    return {
        "orders": n, "fills": n,
        "healing_run": {"seconds": round(healing_s, 3), "fills_healed": fills_healed, "clean": healing.clean},
        "clean_run": {"seconds": round(clean_s, 3), "discrepancies": len(clean.discrepancies)},
        "target_seconds": 10,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=10_000, help="orders in the account, each with one fill")
    args = parser.parse_args()
    with simulated_account("fixengine-reconcile-", rest=True) as (root, key_id, _, ports, _control):
        result = await run(root, key_id, ports["KalshiNR"], ports["rest"], args.orders)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
