"""What the speed benchmark's client programs share (benchmarks/speed.py runs them): one command
line and one JSON report, so that the driver can run any of them (engine.py, bare.py, peer.py) the
same way and compare what they print.

Standard library only, on purpose: the peer client runs under an interpreter of its own that has
none of this project's dependencies, and the bare client's peak RSS must not carry imports it does
not use (``order_roundtrip`` pulls in the whole engine; that is why the percentile rule and the
VmHWM reader below are not imported from it).

The command line (every option required but the sizes)::

    --host 127.0.0.1 --port PORT --key-id ID --key-file PEM --ticker T --data-dir DIR
    --warmup 1000 --latency-orders N --rates 1000,5000 --orders M --in-flight 100

The report, exactly one JSON object on stdout (logs go to stderr)::

    {"client": NAME,
     "latency": [{"rate_per_s", "orders", "p50_us", "p90_us", "p99_us", "p99_9_us", "max_us"}, ...],
     "throughput": {"orders", "in_flight", "seconds", "orders_per_s", "cpu_us_per_order"},
     "peak_rss_mb": VmHWM of the client process at the end}
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

WARMUP_RATE = 1000  # orders/s of the warm-up (not reported)
LOGON_TIMEOUT_S = 30.0


def parse_args(description: str, argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True, help="the counterparty's KalshiNR port")
    parser.add_argument("--key-id", required=True, help="API key id: SenderCompID (49) of the session")
    parser.add_argument("--key-file", required=True, help="its RSA private key (PEM) to sign the Logon with")
    parser.add_argument("--ticker", required=True, help="the market to send the orders to")
    parser.add_argument("--data-dir", required=True, help="the client's own files (store, journal, logs)")
    parser.add_argument("--warmup", type=int, default=1000, help=f"orders at {WARMUP_RATE}/s first, not reported")
    parser.add_argument("--latency-orders", type=int, default=5000, help="orders per fixed-rate run")
    parser.add_argument("--rates", default="1000,5000", help="fixed rates, orders/s, comma-separated")
    parser.add_argument("--orders", type=int, default=20000, help="orders in the throughput run")
    parser.add_argument("--in-flight", type=int, default=100, help="orders outstanding in the throughput run")
    args = parser.parse_args(argv)
    args.rate_list = [int(r) for r in args.rates.split(",") if r.strip()]
    if not args.rate_list or min(args.rate_list) <= 0:
        parser.error("--rates: one or more positive orders/s, comma-separated")
    if args.warmup < 0 or args.latency_orders <= 0 or args.orders <= 0 or args.in_flight <= 0:
        parser.error("--warmup must be >= 0; --latency-orders, --orders and --in-flight > 0")
    return args


def total_orders(args: argparse.Namespace) -> int:
    """Every order one run sends: warm-up, each fixed-rate run, the throughput run."""
    return args.warmup + args.latency_orders * len(args.rate_list) + args.orders


def phase_timeout(orders: int) -> float:
    """How long a phase of ``orders`` may take before the client gives up: generous (a loaded
    2-core machine does a few thousand round trips a second), but a lost ack fails the run."""
    return 60.0 + orders / 100


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest rank, as benchmarks/order_roundtrip.py's ``percentile`` (same rule, same figures)."""
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, round(p / 100 * (len(sorted_values) - 1)))
    return sorted_values[index]


def latency_figures(rate: int, latencies_us: list[float]) -> dict[str, float]:
    """One fixed-rate run's entry of ``latency``; latencies from each order's intended send time."""
    us = sorted(latencies_us)
    return {
        "rate_per_s": rate,
        "orders": len(us),
        "p50_us": round(percentile(us, 50)),
        "p90_us": round(percentile(us, 90)),
        "p99_us": round(percentile(us, 99)),
        "p99_9_us": round(percentile(us, 99.9)),
        "max_us": round(us[-1]),
    }


def cpu_seconds() -> float:
    """User + system CPU of this process so far, every thread (QuickFIX's included)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def throughput_figures(orders: int, in_flight: int, seconds: float, cpu: float) -> dict[str, float]:
    return {
        "orders": orders,
        "in_flight": in_flight,
        "seconds": round(seconds, 3),
        "orders_per_s": round(orders / seconds),
        "cpu_us_per_order": round(cpu * 1e6 / orders, 1),
    }


def vm_hwm_mb() -> float:
    """This process's peak resident set (VmHWM), MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def print_report(client: str, latency: list[dict[str, float]], throughput: dict[str, float],
                 **extra: object) -> None:
    """The one JSON object on stdout; VmHWM read now, at the end. ``extra``: a client's own figures
    (the engine's garbage-collection pauses)."""
    report = {"client": client, "latency": latency, "throughput": throughput, "peak_rss_mb": vm_hwm_mb(), **extra}
    sys.stdout.write(json.dumps(report) + "\n")
    sys.stdout.flush()


class UtcStamp:
    """UTCTimestamp with milliseconds (``YYYYMMDD-HH:MM:SS.fff``, as Kalshi writes it), formatted
    once a second: ``strftime`` on every message would cost more than the rest of building it."""

    def __init__(self) -> None:
        self._cached = (-1, "")  # (second, its text): one tuple, so two threads never mix halves

    def __call__(self) -> str:
        now = time.time()
        second = int(now)
        cached = self._cached
        if cached[0] != second:
            cached = self._cached = (second, time.strftime("%Y%m%d-%H:%M:%S.", time.gmtime(second)))
        return f"{cached[1]}{int((now - second) * 1000):03d}"
