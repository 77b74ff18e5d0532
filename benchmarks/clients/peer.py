"""The speed benchmark's "peer" client: the pure-asyncio Kalshi FIX client of the PyPI package
``kalshi-sdk`` (``kalshi.fix``), driven the way its documentation shows (``FixClient`` ->
``order_entry(on_message=...)`` -> ``session.send(NewOrderSingle(...))``, each inbound report
turned into an ``ExecutionReport`` with ``decode_app_message``).

It runs under the peer venv's interpreter, never the project's (the SDK needs Python 3.12+ and
is not a project dependency), so it imports only the standard library and ``kalshi``:

    PY=$(.venv/bin/python benchmarks/peer_venv.py)
    $PY benchmarks/clients/peer.py --host 127.0.0.1 --port PORT --key-id ID --key-file k.pem \\
        --ticker BENCH-1 --data-dir DIR --warmup 1000 --latency-orders 10000 --rates 1000,5000 \\
        --orders 100000 --in-flight 100

Logs on to KalshiNR (SkipPendingExecReports 21011=Y), warms up at 1000/s, then per rate sends
``--latency-orders`` orders on a fixed schedule and measures each from its *intended* send time
to its ack (ExecutionReport 150=0), so a stall delays every order behind it and counts; then
``--orders`` orders with ``--in-flight`` outstanding (a new order per ack). Orders rest: buy YES,
1 contract at 1-9 cents on an empty book. One JSON object on stdout; logs on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import resource
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path

from kalshi.fix import (
    BusinessMessageReject,
    ExecType,
    ExecutionReport,
    FixClient,
    FixConfig,
    FixSession,
    FixSessionState,
    FixSigner,
    NewOrderSingle,
    OrderCancelReject,
    RawMessage,
    Side,
    TimeInForce,
    decode_app_message,
)

log = logging.getLogger("bench.peer")
ACK_TIMEOUT_S = 60.0  # no ack for this long: the run has failed, say so instead of hanging
ONE = Decimal(1)
PRICES = [Decimal(c) for c in range(1, 10)]  # integer cents: the session does not ask for UseDollars


def percentile(sorted_values: list[float], p: float) -> float:
    # the same nearest-rank rule as benchmarks/order_roundtrip.py, so the figures compare
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, round(p / 100 * (len(sorted_values) - 1)))
    return sorted_values[index]


class Orders:
    """Makes and sends orders through the SDK's session; resolves each order's future on its ack."""

    def __init__(self, ticker: str):
        self.ticker = ticker
        self.session: FixSession | None = None
        self.waiters: dict[str, asyncio.Future[float]] = {}
        self.n = 0
        self.failed: BaseException | None = None
        self.closing = False

    async def on_message(self, raw: RawMessage) -> None:
        message = decode_app_message(raw)  # the SDK's documented way to read a report
        now = time.perf_counter()
        if isinstance(message, ExecutionReport):
            if message.exec_type == ExecType.NEW:
                waiter = self.waiters.pop(message.cl_ord_id or "", None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(now)
            elif message.exec_type == ExecType.REJECTED:
                self._fail(f"order {message.cl_ord_id} rejected: 103={message.ord_rej_reason} 58={message.text!r}",
                           message.cl_ord_id)
        elif isinstance(message, (BusinessMessageReject, OrderCancelReject)):
            self._fail(f"the simulator refused a message: {message!r}", None)

    async def on_state_change(self, old: FixSessionState, new: FixSessionState) -> None:
        log.info("session %s -> %s", old.value, new.value)
        # the SDK reconnects by itself; mid-run that would be a different benchmark, so it fails
        if old is FixSessionState.ACTIVE and not self.closing:
            self._fail(f"the FIX session left ACTIVE for {new.value} during the run", None)

    def _fail(self, why: str, cl_ord_id: str | None) -> None:
        error = RuntimeError(why)
        if cl_ord_id is not None:
            waiter = self.waiters.pop(cl_ord_id, None)
            if waiter is not None and not waiter.done():
                waiter.set_exception(error)
                return
        self.failed = self.failed or error
        for waiter in self.waiters.values():
            if not waiter.done():
                waiter.set_exception(error)
        self.waiters.clear()

    async def send(self) -> asyncio.Future[float]:
        """Send one order; the future resolves to the perf_counter time of its ack."""
        if self.failed is not None:
            raise self.failed
        assert self.session is not None
        self.n += 1
        order = NewOrderSingle(
            cl_ord_id=uuid.uuid4().hex, symbol=self.ticker, side=Side.BUY_YES, order_qty=ONE,
            price=PRICES[self.n % 9], time_in_force=TimeInForce.GTC,  # GTC: what the engine sends too
        )
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.waiters[order.cl_ord_id] = future
        await self.session.send(order)
        return future


async def fixed_rate(orders: Orders, rate: int, count: int) -> dict[str, float]:
    """Send ``count`` orders on a fixed schedule; latency from each intended send time."""
    interval = 1.0 / rate
    start = time.perf_counter() + 0.05
    pending: list[tuple[float, asyncio.Future[float]]] = []
    for i in range(count):
        intended = start + i * interval
        delay = intended - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        pending.append((intended, await orders.send()))
    acked = await asyncio.wait_for(asyncio.gather(*(f for _, f in pending)), ACK_TIMEOUT_S)
    us = sorted((at - intended) * 1e6 for (intended, _), at in zip(pending, acked, strict=True))
    return {
        "rate_per_s": rate,
        "orders": count,
        "p50_us": round(percentile(us, 50)),
        "p90_us": round(percentile(us, 90)),
        "p99_us": round(percentile(us, 99)),
        "p99_9_us": round(percentile(us, 99.9)),
        "max_us": round(us[-1]),
    }


async def in_flight(orders: Orders, count: int, window: int) -> dict[str, float]:
    """``count`` orders with ``window`` outstanding: a new order for every ack."""
    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    sent = 0
    outstanding: set[asyncio.Future[float]] = set()
    while sent < count or outstanding:
        while sent < count and len(outstanding) < window:
            outstanding.add(await orders.send())
            sent += 1
        done, outstanding = await asyncio.wait(outstanding, timeout=ACK_TIMEOUT_S,
                                               return_when=asyncio.FIRST_COMPLETED)
        if not done:
            raise RuntimeError(f"no ack in {ACK_TIMEOUT_S:.0f} s with {len(outstanding)} orders outstanding")
        for future in done:
            future.result()  # a rejected order fails the run here
    elapsed = time.perf_counter() - started
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    cpu_s = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    return {"orders": count, "in_flight": window, "seconds": round(elapsed, 2),
            "orders_per_s": round(count / elapsed), "cpu_us_per_order": round(cpu_s / count * 1e6, 1)}


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


async def run(args: argparse.Namespace) -> dict[str, object]:
    signer = FixSigner.from_key_path(args.key_id, args.key_file)
    # plain TCP is allowed by the SDK only to a loopback host, which is where the simulator is
    config = FixConfig.prediction(host=args.host, port=args.port, use_tls=False, skip_pending_exec_reports=True)
    client = FixClient(signer, config=config)
    orders = Orders(args.ticker)
    results: dict[str, object] = {"client": "peer", "latency": [], "throughput": None}
    async with client.order_entry(on_message=orders.on_message, on_state_change=orders.on_state_change) as session:
        orders.session = session
        log.info("logged on to %s at %s:%d", session.session_type.value, args.host, args.port)
        if args.warmup > 0:
            await fixed_rate(orders, 1000, args.warmup)  # warm-up, not reported
        for rate in (int(r) for r in args.rates.split(",") if r):
            results["latency"].append(await fixed_rate(orders, rate, args.latency_orders))  # type: ignore[union-attr]
        results["throughput"] = await in_flight(orders, args.orders, args.in_flight)
        orders.closing = True
    results["peak_rss_mb"] = peak_rss_mb()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True, help="the KalshiNR listener's port")
    parser.add_argument("--key-id", required=True, help="API key id (SenderCompID)")
    parser.add_argument("--key-file", required=True, help="the RSA private key, PEM")
    parser.add_argument("--ticker", required=True)
    parser.add_argument("--data-dir", help="unused: the SDK keeps no state on disk")
    parser.add_argument("--warmup", type=int, default=1000, help="orders at 1000/s before measuring")
    parser.add_argument("--latency-orders", type=int, default=10_000, help="orders per fixed-rate run")
    parser.add_argument("--rates", default="1000,5000", help="comma-separated orders/s")
    parser.add_argument("--orders", type=int, default=100_000, help="orders in the throughput run")
    parser.add_argument("--in-flight", type=int, default=100, help="outstanding orders in the throughput run")
    args = parser.parse_args()
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    results = asyncio.run(run(args))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
