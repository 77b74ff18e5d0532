"""The benchmark scripts still run (tiny runs; the figures themselves are not asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
SCRIPT = BENCHMARKS / "order_roundtrip.py"


def test_order_roundtrip_benchmark_prints_its_json() -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--orders", "300", "--latency-orders", "200", "--rates", "200"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    [latency] = report["latency"]
    assert latency["rate_per_s"] == 200 and latency["orders"] == 200
    assert 0 < latency["p50_us"] <= latency["p99_us"] <= latency["max_us"]
    assert report["throughput"]["orders"] == 300 and report["throughput"]["orders_per_s"] > 0
    assert report["peak_rss_mb"]["engine"] > 0 and report["peak_rss_mb"]["simulator"] > 0


def test_recovery_benchmark_prints_its_json() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / "recovery.py"), "--gap", "200"], capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["rt"]["gap_messages"] == 200 and report["rt"]["seconds_resend_to_last_applied"] > 0
    nr = report["nr"]
    assert nr["seconds_gap_to_confirmed_book"] >= nr["seconds_gap_to_book_held"] >= nr["seconds_gap_to_logged_on"] > 0
    assert "book matches the exchange" in nr["reconciliation"]


def test_reconcile_benchmark_prints_its_json() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / "reconcile.py"), "--orders", "150"], capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["orders"] == 150 and report["fills"] == 150
    assert report["healing_run"]["fills_healed"] == 150 and report["clean_run"]["discrepancies"] == 0
    assert report["healing_run"]["seconds"] > 0 and report["clean_run"]["seconds"] > 0


def test_gateway_roundtrip_benchmark_prints_its_json() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / "gateway_roundtrip.py"), "--orders", "200", "--latency-orders", "200",
         "--rates", "200"],
        capture_output=True, text=True, timeout=90,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    [latency] = report["latency"]
    assert latency["rate_per_s"] == 200 and latency["orders_per_side"] == 200
    for side in ("gateway", "engine"):
        figures = latency[side]
        assert figures["count"] == 200
        assert 0 < figures["p50_us"] <= figures["p90_us"] <= figures["p99_us"] <= figures["p99_9_us"] <= figures["max_us"]
        assert report["throughput"][side]["orders"] == 200 and report["throughput"][side]["orders_per_s"] > 0
    for key in ("p50", "p90", "p99", "p99_9", "max"):
        assert latency["gateway_added_us"][key] == latency["gateway"][f"{key}_us"] - latency["engine"][f"{key}_us"]
        assert latency["ratio"][key] > 0
    assert report["throughput"]["in_flight"] == 100
    assert "ABBA" in report["alternation"]
    assert report["machine"]["cpus"] >= 1 and report["machine"]["python"] and report["machine"]["platform"]
    assert all(mb > 0 for mb in report["peak_rss_mb"].values()) and len(report["peak_rss_mb"]) == 3


def test_gateway_roundtrip_benchmark_says_when_the_gateway_port_is_taken() -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, str(BENCHMARKS / "gateway_roundtrip.py"), "--latency-orders", "10", "--gateway-port", str(port)],
            capture_output=True, text=True, timeout=60,
        )
    assert result.returncode == 1
    assert f"gateway port {port} is not free" in result.stderr and "Traceback" not in result.stderr
