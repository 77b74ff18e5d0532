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
    for side in ("gateway", "engine", "bare_hop", "bare_hop_round_trip_us"):
        figures = latency[side]
        assert figures["count"] == 200
        assert 0 < figures["p50_us"] <= figures["p90_us"] <= figures["p99_us"] <= figures["p99_9_us"] <= figures["max_us"]
    for side in ("gateway", "engine"):
        assert report["throughput"][side]["orders"] == 200 and report["throughput"][side]["orders_per_s"] > 0
        cpu = report["throughput"][side]["cpu_us_per_order"]
        assert set(cpu) == {"serve", "simulator", "bench"} and cpu["simulator"] > 0 and cpu["bench"] > 0
    # The gateway's orders go through the serve process; the engine's API does not.
    assert report["throughput"]["gateway"]["cpu_us_per_order"]["serve"] > report["throughput"]["engine"]["cpu_us_per_order"]["serve"]
    # The bare hop's round trip runs from each order's actual send, so it never exceeds its figure
    # from the intended send.
    assert latency["bare_hop_round_trip_us"]["p50_us"] <= latency["bare_hop"]["p50_us"]
    for key in ("p50", "p90", "p99", "p99_9", "max"):
        assert latency["gateway_added_us"][key] == latency["gateway"][f"{key}_us"] - latency["engine"][f"{key}_us"]
        assert latency["ratio"][key] > 0
        assert latency["added_beyond_bare_hop_us"][key] == (
            latency["gateway_added_us"][key] - latency["bare_hop_round_trip_us"][f"{key}_us"])
    target = report["target"]
    assert target["bare_hop_p50_us"] == latency["bare_hop_round_trip_us"]["p50_us"]
    assert target["below_the_bare_hop"] == (target["bare_hop_p50_us"] > 150 or target["bare_hop_p99_us"] > 500)
    assert report["throughput"]["in_flight"] == 100
    assert "ABBA" in report["alternation"] and "bare_hop" in report["alternation"]
    assert report["machine"]["cpus"] >= 1 and report["machine"]["python"] and report["machine"]["platform"]
    assert all(mb > 0 for mb in report["peak_rss_mb"].values()) and len(report["peak_rss_mb"]) == 4


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


SPEED_TINY = ["--rounds", "1", "--warmup", "50", "--orders", "300", "--latency-orders", "200", "--rates", "200"]


def _speed_report(part: str) -> dict:
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / "speed.py"), part, *SPEED_TINY],
        capture_output=True, text=True, timeout=240, check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _assert_side_figures(side: dict, client: str, counterparty: str) -> None:
    """One side's figures (medians, or one run's): the JSON contract of every client, plus the
    counterparty's; every figure positive."""
    assert side["client"] == client
    [latency] = side["latency"]
    assert latency["rate_per_s"] == 200 and latency["orders"] == 200
    assert 0 < latency["p50_us"] <= latency["p90_us"] <= latency["p99_us"] <= latency["p99_9_us"] <= latency["max_us"]
    throughput = side["throughput"]
    assert throughput["orders"] == 300 and throughput["in_flight"] == 100
    assert throughput["seconds"] > 0 and throughput["orders_per_s"] > 0 and throughput["cpu_us_per_order"] > 0
    assert side["peak_rss_mb"] > 0
    assert side["counterparty"]["kind"] == counterparty
    assert side["counterparty"]["cpu_us_per_order"] > 0 and side["counterparty"]["peak_rss_mb"] > 0


def _assert_ratios(ratios: dict, of: str, counterparty: bool) -> None:
    assert ratios["of"] == of
    assert ratios["cpu_us_per_order"] > 0 and ratios["orders_per_s"] > 0 and ratios["peak_rss_mb"] > 0
    assert set(ratios["latency"]) == {"200"} and all(ratios["latency"]["200"][p] > 0 for p in ("p50", "p99", "p99_9"))
    if counterparty:
        assert ratios["counterparty"]["cpu_us_per_order"] > 0 and ratios["counterparty"]["peak_rss_mb"] > 0


def _assert_setup_and_runs(report: dict, part: str, sides: list[str]) -> None:
    assert report["part"] == part
    setup = report["setup"]
    assert setup["cpus"] >= 1 and setup["python"] and setup["quickfix"] and part in setup["command"]
    assert "cpu_model" in setup
    assert [run["side"] for run in report["runs"]] == sides and all(run["round"] == 1 for run in report["runs"])


def test_speed_benchmark_engine_part_prints_its_json() -> None:
    report = _speed_report("engine")
    _assert_setup_and_runs(report, "engine", ["engine", "bare"])
    assert set(report["sides"]) == {"engine", "bare"}
    _assert_side_figures(report["sides"]["engine"], "engine", "echo")
    _assert_side_figures(report["sides"]["bare"], "bare", "echo")
    _assert_ratios(report["ratios"], "engine/bare", counterparty=False)
    gc = report["sides"]["engine"]["gc"]  # the engine's pauses, as fixengine serve keeps its heap
    assert gc["collections"] > 0 and 0 < gc["longest_ms"] and gc["longest_generation"] in (0, 1, 2)


def test_speed_benchmark_simulator_part_prints_its_json() -> None:
    report = _speed_report("simulator")
    _assert_setup_and_runs(report, "simulator", ["simulator", "echo"])
    assert set(report["sides"]) == {"simulator", "echo"}
    _assert_side_figures(report["sides"]["simulator"], "bare", "simulator")
    _assert_side_figures(report["sides"]["echo"], "bare", "echo")
    _assert_ratios(report["ratios"], "simulator/echo", counterparty=True)
    gc = report["sides"]["simulator"]["counterparty"]["gc"]  # what the simulator says as it stops
    assert gc["collections"] > 0 and gc["longest_ms"] > 0
