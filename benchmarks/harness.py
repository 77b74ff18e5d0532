"""What the speed benchmark's drivers share (benchmarks/speed.py): it measures nothing by itself.

- a fresh API key (as order_roundtrip's ``simulated_account`` makes one);
- a counterparty in a subprocess, started fresh for every client run: the simulator (order_roundtrip's
  ``start_simulator``: behind its logon gate, signature checked) or the echo counterparty
  (benchmarks/echo_counterparty.py);
- a client program (benchmarks/clients/*.py, one command line, one JSON report: see
  benchmarks/clients/common.py) run as a subprocess under a given interpreter, its JSON parsed;
- the counterparty's CPU over that client run (utime + stime from /proc/PID/stat) per order the client
  sent (warm-up, fixed-rate and throughput runs together), and its peak RSS (VmHWM);
- two sides alternated in ABBA order over rounds (AB, BA, AB, ...: a drift of the machine's speed
  falls on both alike), and the median of every figure per side.

Not a program; import it: ``sys.path.insert(0, "benchmarks"); import harness``.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import statistics
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

BENCHMARKS = Path(__file__).resolve().parent
ROOT = BENCHMARKS.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCHMARKS))

from order_roundtrip import TICKER, peak_rss_mb, start_simulator

from fixengine.kalshi.signing import load_private_key, public_key_pem, write_keypair

ECHO = BENCHMARKS / "echo_counterparty.py"
CLIENTS = BENCHMARKS / "clients"
COUNTERPARTIES = ("simulator", "echo")
STARTUP_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0

S = TypeVar("S")


class BenchError(RuntimeError):
    """A run that could not be measured; the message says why."""


@dataclass(frozen=True)
class Sizes:
    """How many orders a client run sends, as the clients' options say."""

    warmup: int = 1000
    latency_orders: int = 5000
    rates: tuple[int, ...] = (1000, 5000)
    orders: int = 20000
    in_flight: int = 100

    @property
    def total(self) -> int:
        return self.warmup + self.latency_orders * len(self.rates) + self.orders

    def options(self) -> list[str]:
        return ["--warmup", str(self.warmup), "--latency-orders", str(self.latency_orders),
                "--rates", ",".join(str(r) for r in self.rates), "--orders", str(self.orders),
                "--in-flight", str(self.in_flight)]


@dataclass(frozen=True)
class Key:
    key_id: str
    private_file: Path
    public_pem: str


def make_key(root: Path) -> Key:
    """A fresh RSA key pair in ``root`` and a new key id."""
    write_keypair(root / "k.pem", root / "k.pub.pem")
    return Key(str(uuid.uuid4()), root / "k.pem", public_key_pem(load_private_key(file=root / "k.pem")).decode())


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU of process ``pid`` so far (every thread), from /proc/PID/stat."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    # After "pid (comm) ": field 3 (state) first; utime and stime are fields 14 and 15. The command
    # name may hold spaces and parentheses, so split after its last ")".
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _first_line(proc: subprocess.Popen[str], what: str) -> str:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], STARTUP_TIMEOUT_S)
    line = proc.stdout.readline() if ready else ""
    if not line.strip():
        stop_process(proc, what)
        raise BenchError(f"{what} did not say where it listens within {STARTUP_TIMEOUT_S:g}s (exit code {proc.returncode})")
    return line.strip()


def start_echo(key_id: str) -> tuple[subprocess.Popen[str], int]:
    """The echo counterparty in a subprocess, admitting ``key_id``; its KalshiNR port."""
    proc = subprocess.Popen([sys.executable, str(ECHO), "--port", "0", "--key-id", key_id],
                            stdout=subprocess.PIPE, text=True, cwd=ROOT)
    line = _first_line(proc, "the echo counterparty")  # "echo counterparty listening on 127.0.0.1: KalshiNR=PORT"
    try:
        return proc, int(line.rsplit("KalshiNR=", 1)[1])
    except (IndexError, ValueError):
        stop_process(proc, "the echo counterparty")
        raise BenchError(f"the echo counterparty's first line is not where it listens: {line!r}") from None


def stop_process(proc: subprocess.Popen[str], what: str) -> None:
    """SIGTERM, then SIGKILL if it will not go; say so if it did not exit cleanly."""
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
        print(f"warning: {what} did not stop within {STOP_TIMEOUT_S:g}s of SIGTERM; killed", file=sys.stderr)
        return
    if proc.returncode != 0:
        print(f"warning: {what} exited with code {proc.returncode} when stopped", file=sys.stderr)


@dataclass
class Counterparty:
    kind: str  # one of COUNTERPARTIES
    proc: subprocess.Popen[str]
    port: int  # its KalshiNR port

    def gc_pauses(self) -> dict[str, Any] | None:
        """After the stop: the garbage-collection line the simulator prints as it stops, if any."""
        if self.proc.stdout is None or self.proc.poll() is None:
            return None
        for line in self.proc.stdout.read().splitlines():
            if line.startswith("garbage collection: "):
                return json.loads(line.removeprefix("garbage collection: "))
        return None


@contextlib.contextmanager
def counterparty(kind: str, root: Path, key: Key) -> Iterator[Counterparty]:
    """A fresh counterparty of ``kind`` that admits ``key``; stopped after."""
    if kind == "simulator":
        proc, ports, _ = start_simulator(root, key.key_id, key.public_pem)
        port = ports["KalshiNR"]
    elif kind == "echo":
        proc, port = start_echo(key.key_id)
    else:
        raise ValueError(f"counterparty {kind!r} is none of {COUNTERPARTIES}")
    party = Counterparty(kind, proc, port)
    try:
        yield party
    finally:
        stop_process(proc, f"the {kind}")


def run_client(program: Path, options: list[str], python: str | None = None, timeout: float = 600.0) -> dict[str, Any]:
    """Run a client program under ``python`` (default: this interpreter) to its end; its JSON report.
    Its stderr (logs) passes through to ours."""
    command = [python or sys.executable, str(program), *options]
    try:
        result = subprocess.run(command, stdout=subprocess.PIPE, text=True, timeout=timeout, cwd=ROOT, check=False)
    except subprocess.TimeoutExpired:
        raise BenchError(f"{program.name} did not finish within {timeout:g}s") from None
    if result.returncode != 0:
        raise BenchError(f"{program.name} exited with code {result.returncode} (its stderr is above)")
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        raise BenchError(f"{program.name} printed no JSON report: {result.stdout[-500:]!r}") from None
    if not isinstance(report, dict):
        raise BenchError(f"{program.name} printed JSON that is not an object: {result.stdout[-500:]!r}")
    return report


def client_run(program: Path, counterparty_kind: str, sizes: Sizes, python: str | None = None) -> dict[str, Any]:
    """One client run against a fresh counterparty: the client's report, plus ``counterparty``:
    its kind, CPU per order the client sent (over the client's whole run) and peak RSS."""
    with tempfile.TemporaryDirectory(prefix="fixengine-speed-") as tmp:
        root = Path(tmp)
        key = make_key(root)
        with counterparty(counterparty_kind, root, key) as cp:
            options = ["--host", "127.0.0.1", "--port", str(cp.port), "--key-id", key.key_id,
                       "--key-file", str(key.private_file), "--ticker", TICKER, "--data-dir", str(root / "client"),
                       *sizes.options()]
            cpu_before = process_cpu_seconds(cp.proc.pid)
            report = run_client(program, options, python, timeout=120 + sizes.total / 50)
            cpu = process_cpu_seconds(cp.proc.pid) - cpu_before
            rss = peak_rss_mb(cp.proc.pid)
        gc = cp.gc_pauses()  # the simulator says at its stop
    report["counterparty"] = {"kind": counterparty_kind, "cpu_us_per_order": round(cpu * 1e6 / sizes.total, 1),
                              "peak_rss_mb": round(rss, 1), **({"gc": gc} if gc else {})}
    return report


def abba(rounds: int, sides: Sequence[S]) -> list[tuple[int, S]]:
    """(round, side) in the order they run: A B, B A, A B, ... over ``rounds`` rounds."""
    order: list[tuple[int, S]] = []
    for r in range(rounds):
        order += [(r, side) for side in (sides if r % 2 == 0 else list(reversed(sides)))]
    return order


def medians(runs: Sequence[Any]) -> Any:
    """The median of each numeric field over runs of one shape (dicts and lists followed down);
    text is taken from the first run (it is the same in every run: a name, a kind)."""
    first = runs[0]
    if isinstance(first, dict):
        return {key: medians([run[key] for run in runs]) for key in first}
    if isinstance(first, list):
        return [medians([run[i] for run in runs]) for i in range(len(first))]
    if isinstance(first, (int, float)) and not isinstance(first, bool):
        return round(statistics.median(runs), 3)
    return first
