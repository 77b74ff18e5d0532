"""The speed benchmark's peer part: the engine's client and the peer client (benchmarks/clients/peer.py,
kalshi-sdk's asyncio FIX client in a venv of its own) each log on to the simulator, run a tiny
benchmark and print their JSON, which speed.py puts side by side. Slow: the first
run on a machine builds the peer's venv (benchmarks/peer_venv.py). Skipped only when the package
registry cannot be reached; anything else that is missing fails, naming the fix.

    .venv/bin/python -m pytest tests/test_benchmark_peer.py
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def _load(name: str) -> ModuleType:
    # by path: benchmarks/ is scripts, not a package the tests can import
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", BENCHMARKS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
@pytest.mark.timeout(600)  # a first run installs kalshi-sdk with pip
def test_speed_benchmark_peer_part_runs_the_engine_and_the_peer_against_the_simulator() -> None:
    peer_venv = _load("peer_venv")
    try:
        peer_venv.peer_python()  # made here, so that a registry out of reach skips rather than fails
    except peer_venv.RegistryUnreachable as exc:
        pytest.skip(str(exc))
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / "speed.py"), "peer", "--rounds", "1", "--warmup", "50",
         "--latency-orders", "200", "--rates", "200", "--orders", "300"],
        check=False, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert [run["side"] for run in report["runs"]] == ["engine", "peer"]
    for name in ("engine", "peer"):
        side = report["sides"][name]
        assert side["client"] == name and side["counterparty"]["kind"] == "simulator"
        [latency] = side["latency"]
        assert set(latency) == {"rate_per_s", "orders", "p50_us", "p90_us", "p99_us", "p99_9_us", "max_us"}
        assert latency["rate_per_s"] == 200 and latency["orders"] == 200
        assert 0 < latency["p50_us"] <= latency["p90_us"] <= latency["p99_us"] <= latency["p99_9_us"] <= latency["max_us"]
        throughput = side["throughput"]
        assert set(throughput) == {"orders", "in_flight", "seconds", "orders_per_s", "cpu_us_per_order"}
        assert throughput["orders"] == 300 and throughput["in_flight"] == 100
        assert throughput["orders_per_s"] > 0 and throughput["seconds"] > 0 and throughput["cpu_us_per_order"] > 0
        assert side["peak_rss_mb"] > 0 and side["counterparty"]["gc"]["collections"] >= 0
    assert report["ratios"]["of"] == "engine/peer" and report["ratios"]["orders_per_s"] > 0
