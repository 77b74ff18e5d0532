"""Order round-trip benchmark: the engine (this process) against the simulator (a subprocess) on
loopback, journal and message log on, as shipped. Prints JSON.

    .venv/bin/python benchmarks/order_roundtrip.py [--orders 100000] [--rates 1000,5000]

- latency: API call -> OrderAccepted event, measured from each order's *intended* send time on a
  fixed schedule (coordinated-omission corrected: a stall delays every order behind it and counts);
- throughput: orders/s with 100 in flight (a new order for every ack), over ``--orders`` orders;
- peak RSS of each process (VmHWM) after everything.

Orders rest (buy YES at 1¢-9¢ on an empty book), so every round trip is New -> ack.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fixengine.config import EngineConfig, LogonFlags, SessionConfig  # noqa: E402
from fixengine.engine import Engine  # noqa: E402
from fixengine.kalshi.facts import SessionType  # noqa: E402
from fixengine.orders.book import OrderAccepted  # noqa: E402
from fixengine.orders.requests import NewOrder, new_cl_ord_id  # noqa: E402
from fixengine.kalshi.prices import Action, Contract  # noqa: E402
from fixengine.kalshi.signing import public_key_pem, load_private_key, write_keypair  # noqa: E402

TICKER = "BENCH-1"


def percentile(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, int(round(p / 100 * (len(sorted_values) - 1))))
    return sorted_values[index]


def start_simulator(
    root: Path, key_id: str, public_pem: str, *, listeners: str = "KalshiNR", control: bool = False, rest: bool = False
) -> tuple[subprocess.Popen[str], dict[str, int], int | None]:
    """The simulator in a subprocess: its ports by listener name (and "rest" if asked for), and its
    control port if asked."""
    config = root / "sim.toml"
    listener_lines = "".join(f"{name} = 0\n" for name in listeners.split(","))
    config.write_text(
        f'data_dir = "sim"\nmin_heartbeat_interval = 1\n{"control_port = 0" if control else ""}\n'
        f'{"rest_port = 0" if rest else ""}\n'
        f'[listeners]\n{listener_lines}'
        f'[[market]]\nticker = "{TICKER}"\n'
        f'[[account]]\napi_key_id = "{key_id}"\nbalance = "100000000"\npublic_key_pem = """{public_pem}"""\n'
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "simulator", "--config", str(config)],
        stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parent.parent,
    )
    assert proc.stdout is not None
    # "... listening on 127.0.0.1 (plain TCP): KalshiNR=PORT[; control port 127.0.0.1:PORT][; REST URL]"
    listening, *extras = proc.stdout.readline().strip().split("; ")
    ports = dict((name, int(port)) for name, port in (p.split("=") for p in listening.split(": ", 1)[1].split(", ")))
    control_port = None
    for extra in extras:
        if extra.startswith("control port "):
            control_port = int(extra.rsplit(":", 1)[1])
        elif extra.startswith("REST "):
            ports["rest"] = int(extra.split(":")[-1].split("/")[0])
    return proc, ports, control_port


@contextlib.contextmanager
def simulated_account(
    prefix: str, *, listeners: str = "KalshiNR", control: bool = False, rest: bool = False
) -> Iterator[tuple[Path, str, subprocess.Popen[str], dict[str, int], int | None]]:
    """A temporary directory holding a fresh API key (``root/k.pem``), and the simulator (a
    subprocess) that knows it: ``(root, key_id, process, ports, control_port)``; stopped after."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        root = Path(tmp)
        key_id = str(uuid.uuid4())
        write_keypair(root / "k.pem", root / "k.pub.pem")
        public_pem = public_key_pem(load_private_key(file=root / "k.pem")).decode()
        sim, ports, control_port = start_simulator(root, key_id, public_pem, listeners=listeners, control=control, rest=rest)
        try:
            yield root, key_id, sim, ports, control_port
        finally:
            sim.terminate()
            sim.wait(timeout=30)


def peak_rss_mb(pid: int | None = None) -> float:
    if pid is None:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Orders:
    """Order factory and ack tracking by ClOrdID."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.acked: dict[str, float] = {}
        self.waiters: dict[str, asyncio.Future[float]] = {}
        self.n = 0

    def make(self, quantity: int = 1) -> NewOrder:
        self.n += 1
        price = Decimal(1 + self.n % 9) / 100
        return NewOrder.model_construct(  # validated once below; constructing is the hot path here
            ticker=TICKER, action=Action.BUY, contract=Contract.YES, quantity=Decimal(quantity), price=price,
            time_in_force=NewOrder.model_fields["time_in_force"].default, expire_time=None, post_only=False,
            self_trade_prevention=None, max_execution_cost=None, cancel_on_pause=False, subaccount=None,
            ex_destination=None, order_group_id=None, client_order_id=new_cl_ord_id(),  # as NewOrder's default
        )

    async def listen(self) -> None:
        async for event in self.engine.events():
            if isinstance(event, OrderAccepted):
                now = time.perf_counter()
                waiter = self.waiters.pop(event.order.key, None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(now)


async def fixed_rate(orders: Orders, rate: int, count: int) -> dict[str, float]:
    """Send ``count`` orders on a fixed schedule; latency from each intended send time."""
    loop = asyncio.get_running_loop()
    interval = 1.0 / rate
    start = time.perf_counter() + 0.05
    pending: list[tuple[float, asyncio.Future[float]]] = []
    for i in range(count):
        intended = start + i * interval
        delay = intended - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        order = orders.make()
        future: asyncio.Future[float] = loop.create_future()
        orders.waiters[order.client_order_id] = future
        await orders.engine.submit("bench", order)
        pending.append((intended, future))
    latencies = sorted([(await f) - intended for intended, f in pending])
    us = [v * 1e6 for v in latencies]
    return {
        "rate_per_s": rate,
        "orders": count,
        "p50_us": round(percentile(us, 50)),
        "p90_us": round(percentile(us, 90)),
        "p99_us": round(percentile(us, 99)),
        "p99_9_us": round(percentile(us, 99.9)),
        "max_us": round(us[-1]),
    }


async def in_flight(orders: Orders, count: int, window: int = 100) -> dict[str, float]:
    loop = asyncio.get_running_loop()
    started = time.perf_counter()
    sent = 0
    outstanding: set[asyncio.Future[float]] = set()
    while sent < count or outstanding:
        while sent < count and len(outstanding) < window:
            order = orders.make()
            future: asyncio.Future[float] = loop.create_future()
            orders.waiters[order.client_order_id] = future
            await orders.engine.submit("bench", order)
            outstanding.add(future)
            sent += 1
        done, outstanding = await asyncio.wait(outstanding, return_when=asyncio.FIRST_COMPLETED)
    elapsed = time.perf_counter() - started
    return {"orders": count, "in_flight": window, "seconds": round(elapsed, 2), "orders_per_s": round(count / elapsed)}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=100_000, help="orders in the throughput run")
    parser.add_argument("--latency-orders", type=int, default=10_000, help="orders per fixed-rate run")
    parser.add_argument("--rates", default="1000,5000")
    args = parser.parse_args()
    with simulated_account("fixengine-bench-") as (root, key_id, sim, ports, _):
        port = ports["KalshiNR"]
        config = EngineConfig(
            data_dir=root / "engine",
            sessions=[SessionConfig(
                name="bench", host="127.0.0.1", port=port, tls=False, session_type=SessionType.NR,
                api_key_id=key_id, private_key_file=root / "k.pem", heartbeat_interval=30,
                logon=LogonFlags(skip_pending_exec_reports=True),
            )],
        )
        engine = Engine(config)
        await engine.start()
        await engine.wait_logged_on()
        orders = Orders(engine)
        listener = asyncio.create_task(orders.listen())
        await asyncio.sleep(0)  # let the listener subscribe before the first order
        results: dict[str, object] = {"latency": [], "throughput": None}
        await fixed_rate(orders, 1000, 1000)  # warm-up, not reported
        for rate in (int(r) for r in args.rates.split(",")):
            results["latency"].append(await fixed_rate(orders, rate, args.latency_orders))  # type: ignore[union-attr]
        results["throughput"] = await in_flight(orders, args.orders)
        results["peak_rss_mb"] = {"engine": round(peak_rss_mb(), 1), "simulator": round(peak_rss_mb(sim.pid), 1)}
        results["setup"] = {
            "cpus": os.cpu_count(), "journal": "append-only file, a write per group commit", "message_log": True,
            "transport": "plain TCP on loopback, through the simulator's logon gate",
            "skip_pending_exec_reports": True,
        }
        listener.cancel()
        await engine.stop()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
