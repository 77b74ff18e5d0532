"""Speed benchmark: client programs (benchmarks/clients/) against a counterparty, each run in its own
processes on loopback, two sides alternated. Prints one JSON object.

    .venv/bin/python benchmarks/speed.py engine|simulator|peer [--rounds 3] [--orders 20000]
        [--latency-orders 5000] [--rates 1000,5000] [--warmup 1000]

Parts (``PARTS``):

- ``engine``: the engine client (the project's Engine as shipped: journal, message log) beside the bare
  client (the ``quickfix`` bindings alone), each against the echo counterparty: what the engine costs
  over the floor of any client on these bindings. Ratios engine/bare.
- ``simulator``: the bare client against the simulator beside the bare client against the echo
  counterparty: what the simulator costs over a counterparty that only answers (its CPU per order,
  its peak RSS, its garbage-collection pauses, and the latency and throughput a client sees). Ratios
  simulator/echo.
- ``peer``: the engine client beside the peer client (``kalshi-sdk``'s pure-asyncio FIX client, in a
  venv of its own: benchmarks/peer_venv.py, made at the first run; never a project dependency),
  both against the simulator. Ratios engine/peer.
- the gateway's OMS path is benchmarks/gateway_roundtrip.py (its own ABBA rounds against the
  engine's in-process API).

Every client run is a subprocess of its own against a counterparty started fresh for it: a warm-up
(not reported), ``--latency-orders`` orders at each fixed rate (latency from each order's intended
send time to its ack: coordinated-omission corrected), then ``--orders`` orders with 100 in flight
(orders/s, and the client's CPU per order over that run). The counterparty's CPU is taken over the
whole client run, per order sent. Sides run in ABBA order over ``--rounds`` rounds (AB, BA, AB ...);
each side's figures are the medians over its rounds (``sides``), every run is kept (``runs``), and
``ratios`` compares the two sides' medians (first side / second side).

Orders rest (buy YES at 1-9 cents on an empty book), so every round trip is New -> ack.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import os
import platform
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import CLIENTS, BenchError, Sizes, abba, client_run, medians
from peer_venv import peer_python


@dataclass(frozen=True)
class Side:
    """One side of a part: a client program against a kind of counterparty."""

    name: str  # its key in the report
    client: Path
    counterparty: str  # "simulator" or "echo"
    python: Callable[[], Path] | None = None  # finds (or makes) the client's interpreter; None: this one


@dataclass(frozen=True)
class Part:
    description: str
    sides: tuple[Side, Side]  # ratios are first / second
    counterparty_ratios: bool = False  # compare the counterparties' figures too (they differ by kind)


PARTS: dict[str, Part] = {
    "engine": Part(
        "the engine client and the bare client, each against the echo counterparty",
        (Side("engine", CLIENTS / "engine.py", "echo"), Side("bare", CLIENTS / "bare.py", "echo")),
    ),
    "simulator": Part(
        "the bare client against the simulator beside the bare client against the echo counterparty",
        (Side("simulator", CLIENTS / "bare.py", "simulator"), Side("echo", CLIENTS / "bare.py", "echo")),
        counterparty_ratios=True,
    ),
    "peer": Part(
        "the engine client beside the peer client (kalshi-sdk's asyncio FIX client), both against the simulator",
        (Side("engine", CLIENTS / "engine.py", "simulator"),
         Side("peer", CLIENTS / "peer.py", "simulator", python=peer_python)),
    ),
}


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 2) if b else None


def ratios(part: Part, sides: dict[str, Any]) -> dict[str, Any]:
    """First side's medians over the second's: CPU per order, orders/s, peak RSS, and p50/p99/p99.9
    at each rate (and the counterparties' CPU per order and peak RSS where they differ by kind)."""
    first, second = (sides[side.name] for side in part.sides)
    out: dict[str, Any] = {
        "of": f"{part.sides[0].name}/{part.sides[1].name}",
        "cpu_us_per_order": _ratio(first["throughput"]["cpu_us_per_order"], second["throughput"]["cpu_us_per_order"]),
        "orders_per_s": _ratio(first["throughput"]["orders_per_s"], second["throughput"]["orders_per_s"]),
        "peak_rss_mb": _ratio(first["peak_rss_mb"], second["peak_rss_mb"]),
        "latency": {
            str(a["rate_per_s"]): {p: _ratio(a[f"{p}_us"], b[f"{p}_us"]) for p in ("p50", "p99", "p99_9")}
            for a, b in zip(first["latency"], second["latency"])
        },
    }
    if part.counterparty_ratios:
        out["counterparty"] = {
            key: _ratio(first["counterparty"][key], second["counterparty"][key]) for key in ("cpu_us_per_order", "peak_rss_mb")
        }
    return out


def setup(args: argparse.Namespace, sizes: Sizes) -> dict[str, Any]:
    info: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "cpu_model": None,
        "quickfix": importlib.metadata.version("quickfix"),
        "command": [Path(sys.executable).name, *sys.argv],
        "rounds": args.rounds,
        "sizes": {"warmup": sizes.warmup, "latency_orders": sizes.latency_orders, "rates": list(sizes.rates),
                  "orders": sizes.orders, "in_flight": sizes.in_flight},
        "load_average_at_start": [round(v, 2) for v in os.getloadavg()],
        "transport": "plain TCP on loopback; each client run in its own process against a counterparty started for it",
    }
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu_model"] = line.split(":", 1)[1].strip()
                break
    return info


def run_part(name: str, args: argparse.Namespace) -> dict[str, Any]:
    part = PARTS[name]
    sizes = Sizes(warmup=args.warmup, latency_orders=args.latency_orders,
                  rates=tuple(int(r) for r in args.rates.split(",") if r.strip()), orders=args.orders)
    report: dict[str, Any] = {"part": name, "what": part.description, "setup": setup(args, sizes)}
    runs: list[dict[str, Any]] = []
    pythons = {side.name: str(side.python()) if side.python else None for side in part.sides}  # before any run
    for round_number, side in abba(args.rounds, part.sides):
        print(f"speed {name}: round {round_number + 1}/{args.rounds}, {side.name} ...", file=sys.stderr, flush=True)
        runs.append({"round": round_number + 1, "side": side.name,
                     **client_run(side.client, side.counterparty, sizes, pythons[side.name])})
    sides = {side.name: medians([run for run in runs if run["side"] == side.name]) for side in part.sides}
    for figures in sides.values():
        del figures["round"], figures["side"]  # a median of round numbers says nothing; the side is the key
    report["sides"] = sides
    report["ratios"] = ratios(part, sides)
    report["runs"] = runs
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", choices=sorted(PARTS))
    parser.add_argument("--rounds", type=int, default=3, help="rounds, each running both sides (ABBA order)")
    parser.add_argument("--orders", type=int, default=20000, help="orders in each throughput run")
    parser.add_argument("--latency-orders", type=int, default=5000, help="orders per fixed-rate run")
    parser.add_argument("--rates", default="1000,5000", help="fixed rates, orders/s, comma-separated")
    parser.add_argument("--warmup", type=int, default=1000, help="warm-up orders per client run (not reported)")
    args = parser.parse_args()
    try:
        rates = [int(r) for r in args.rates.split(",") if r.strip()]
    except ValueError:
        parser.error("--rates: positive orders/s, comma-separated")
    if args.rounds < 1 or not rates or min(rates) <= 0 or args.orders <= 0 or args.latency_orders <= 0 or args.warmup < 0:
        parser.error("--rounds, --orders, --latency-orders and every rate must be positive; --warmup >= 0")
    try:
        report = run_part(args.part, args)
    except BenchError as exc:
        print(f"speed {args.part}: {exc}", file=sys.stderr)
        sys.exit(1)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
