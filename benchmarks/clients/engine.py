"""The engine client of the speed benchmark (benchmarks/speed.py): the project's Engine as shipped
(journal and message log on, in ``--data-dir``), in this process, on one KalshiNR session.

    .venv/bin/python benchmarks/clients/engine.py --host 127.0.0.1 --port PORT --key-id ID --key-file PEM \\
        --ticker T --data-dir DIR [--warmup 1000] [--latency-orders N] [--rates 1000,5000] [--orders M] [--in-flight 100]

Command line and JSON report as every client's (benchmarks/clients/common.py). Configured and driven
as benchmarks/order_roundtrip.py does, with its own order factory and runs (``Orders``, ``fixed_rate``,
``in_flight``): an order is ``await engine.submit(...)``, its ack the ``OrderAccepted`` event.

- latency: at each fixed rate, from each order's intended send time to its OrderAccepted
  (coordinated-omission corrected);
- gc: the engine's garbage-collection pauses (run as ``fixengine serve`` runs it, with a HeapKeeper);
- throughput: ``--in-flight`` orders outstanding, a new one per OrderAccepted; the process's CPU
  (every thread: the loop's, QuickFIX's, the message log's) over that run per order.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import TypeVar

CLIENTS = Path(__file__).resolve().parent
sys.path.insert(0, str(CLIENTS.parent.parent))
sys.path.insert(0, str(CLIENTS.parent))

import order_roundtrip
from order_roundtrip import Orders, fixed_rate, in_flight

from clients.common import (
    LOGON_TIMEOUT_S,
    WARMUP_RATE,
    cpu_seconds,
    parse_args,
    phase_timeout,
    print_report,
    throughput_figures,
)
from fixengine.config import EngineConfig, LogonFlags, SessionConfig
from fixengine.engine import Engine
from fixengine.errors import FixEngineError
from fixengine.heap import HeapKeeper
from fixengine.kalshi.facts import SessionType

T = TypeVar("T")


class BenchError(RuntimeError):
    pass


async def within(awaitable: Awaitable[T], orders: int, what: str) -> T:
    """A phase, failed (not hung) if its acks do not all come."""
    timeout = phase_timeout(orders)
    try:
        return await asyncio.wait_for(awaitable, timeout)
    except TimeoutError:
        raise BenchError(f"{what}: not every order was accepted within {timeout:g}s") from None


async def run(a: argparse.Namespace) -> tuple[list[dict[str, float]], dict[str, float], dict[str, float | int]]:
    # order_roundtrip's Orders writes its module's TICKER into every order it makes.
    order_roundtrip.TICKER = a.ticker
    config = EngineConfig(
        data_dir=Path(a.data_dir),
        sessions=[SessionConfig(
            name="bench", host=a.host, port=a.port, tls=False, session_type=SessionType.NR,
            api_key_id=a.key_id, private_key_file=Path(a.key_file), heartbeat_interval=30,
            logon=LogonFlags(skip_pending_exec_reports=True),
        )],
    )
    engine = Engine(config)
    heap = HeapKeeper()  # as fixengine serve runs the engine: no full collection walks the book
    await engine.start()
    heap.start()
    try:
        await engine.wait_logged_on(timeout=LOGON_TIMEOUT_S)
        orders = Orders(engine)
        listener = asyncio.create_task(orders.listen())
        await asyncio.sleep(0)  # let the listener subscribe before the first order
        if a.warmup:
            await within(fixed_rate(orders, WARMUP_RATE, a.warmup), a.warmup, "warm-up")
        latency = [
            await within(fixed_rate(orders, rate, a.latency_orders), a.latency_orders, f"{rate}/s run")
            for rate in a.rate_list
        ]
        cpu_before, started = cpu_seconds(), time.perf_counter()
        await within(in_flight(orders, a.orders, a.in_flight), a.orders, "throughput run")
        elapsed, cpu = time.perf_counter() - started, cpu_seconds() - cpu_before
        # Figured as every client's are (in_flight's own dict rounds its seconds coarser).
        throughput = throughput_figures(a.orders, a.in_flight, elapsed, cpu)
        listener.cancel()
    finally:
        heap.stop()
        await engine.stop()
    return latency, throughput, heap.pauses.summary()


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    Path(args.data_dir).mkdir(parents=True, exist_ok=True)
    try:
        latency, throughput, gc = asyncio.run(run(args))
    except (BenchError, FixEngineError) as exc:
        print(f"engine client: {exc}", file=sys.stderr)
        sys.exit(1)
    print_report("engine", latency, throughput, gc=gc)


if __name__ == "__main__":
    main()
