"""Gateway round-trip benchmark: OMS -> gateway -> simulator -> gateway -> OMS, against the engine's
in-process API on the same simulator, in the same run. Prints JSON.

    .venv/bin/python benchmarks/gateway_roundtrip.py [--orders 20000] [--latency-orders 10000] [--rates 1000]

Four processes, all on loopback, journal and message log on, as shipped:

- the simulator (a subprocess), one KalshiNR listener, two accounts (two API keys);
- ``fixengine serve`` (the command: Engine + Gateway, a subprocess of its own, so the gateway shares
  no GIL with the OMSs), on the first account, with two [[oms_client]]s on one port, both through its one session;
- this process: the two OMS clients (lean QuickFIX 4.4 initiators whose ``fromApp`` timestamps each
  report on QuickFIX's thread), and an in-process ``Engine`` on the second account (the baseline,
  measured as benchmarks/order_roundtrip.py does: ``submit`` -> ``OrderAccepted``);
- the bare hop, the floor: two more such OMS clients against benchmarks/echo_counterparty.py in FIX 4.4
  (a subprocess: a QuickFIX acceptor that answers each order with its ExecutionReport New, nothing
  behind it). Its round trip is the OMS's FIX hop alone, which every FIX gateway adds to the engine's
  path whatever it does inside: the least the gateway could add on this machine.

- latency: at a fixed rate (coordinated-omission corrected: from each order's *intended* send time)
  until the OMS has the ExecutionReport New (150=0), orders alternating between the two clients;
  the engine's API on the same schedule; the gateway's added cost per percentile (difference, ratio);
- throughput: orders/s with 100 in flight (50 per OMS client; a new order for every ack);
- the sides alternate in rounds (gateway, engine, hop, hop, engine, gateway, ...: ABBA, so a linear
  drift of the machine's speed falls on each alike); each side's samples are pooled over its rounds.
  The throughput runs are the gateway's and the engine's.

Orders rest (buy YES at 1-9 cents on an empty book), so every round trip is New -> ack. A fixed
rate above a side's measured throughput is flagged (``rate_exceeds_throughput``): its latencies are
then mostly queueing, growing with the length of the round.
``--profile FILE`` runs the serve process under cProfile (its loop and its QuickFIX threads) and
writes the merged pstats to FILE.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import platform
import select
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import process_cpu_seconds  # noqa: E402
from order_roundtrip import TICKER, Orders, in_flight, peak_rss_mb, percentile  # noqa: E402

import quickfix as fix  # noqa: E402

from fixengine.config import EngineConfig, LogonFlags, SessionConfig  # noqa: E402
from fixengine.engine import Engine  # noqa: E402
from fixengine.errors import FixEngineError  # noqa: E402
from fixengine.fix.dictionary import base_dictionary_dir  # noqa: E402
from fixengine.fix.framing import quickfix_text  # noqa: E402
from fixengine.fix.quickfix import GuardedApplication, Runner, common_defaults, create  # noqa: E402
from fixengine.fix.timestamps import utc_timestamp  # noqa: E402
from fixengine.kalshi.facts import SessionType  # noqa: E402
from fixengine.kalshi.signing import write_keypair  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
WINDOW = 100  # orders in flight in the throughput runs
GATEWAY_COMP_ID = "FIXENGINE"
CLIENTS = (("oms-a", "OMS_A"), ("oms-b", "OMS_B"))
HOP_CLIENTS = ("HOP_A", "HOP_B")  # the bare hop's OMS clients (one QuickFIX SessionID each per process)
ECHO = Path(__file__).resolve().parent / "echo_counterparty.py"
STARTUP_TIMEOUT = 30.0


class BenchError(Exception):
    """An expected failure: one readable line, no traceback."""


# --- processes --------------------------------------------------------------------------------------


def _first_line(proc: subprocess.Popen[str], timeout: float, what: str, stderr_file: Path | None = None) -> str:
    """The first line ``proc`` prints, or BenchError saying why there is none."""
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    line = proc.stdout.readline() if ready else ""
    if line.strip():
        return line.strip()
    if proc.poll() is None:
        proc.kill()
        proc.wait(timeout=10)
        why = f"said nothing within {timeout:g}s (killed)"
    else:
        why = f"did not start (exit code {proc.returncode})"
    detail = ""
    if stderr_file is not None and stderr_file.exists():
        tail = stderr_file.read_text(errors="replace").strip().splitlines()[-5:]
        detail = ": " + " | ".join(tail) if tail else ""
    raise BenchError(f"{what} {why}{detail}")


def start_simulator(root: Path, accounts: dict[str, Path]) -> tuple[subprocess.Popen[str], int]:
    """The simulator in a subprocess, one KalshiNR listener, an account per (key id, public key
    file); its KalshiNR port. As benchmarks/order_roundtrip.py's, with more than one account."""
    config = root / "sim.toml"
    text = f'data_dir = "{root / "sim"}"\nmin_heartbeat_interval = 1\n[listeners]\nKalshiNR = 0\n'
    text += f'[[market]]\nticker = "{TICKER}"\n'
    for key_id, public in accounts.items():
        text += f'[[account]]\napi_key_id = "{key_id}"\nbalance = "100000000"\npublic_key_file = "{public}"\n'
    config.write_text(text)
    stderr = root / "sim.stderr"
    with stderr.open("w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "simulator", "--config", str(config)],
                                stdout=subprocess.PIPE, stderr=err, text=True, cwd=ROOT)
    # "... listening on 127.0.0.1 (plain TCP): KalshiNR=PORT"
    line = _first_line(proc, STARTUP_TIMEOUT, "the simulator", stderr)
    try:
        listening = line.split("; ")[0].split(": ", 1)[1]
        return proc, int(dict(p.split("=") for p in listening.split(", "))["KalshiNR"])
    except (IndexError, KeyError, ValueError):
        proc.terminate()
        proc.wait(timeout=30)
        raise BenchError(f"the simulator's first line is not where it listens: {line!r}") from None


def start_echo_fix44(root: Path) -> tuple[subprocess.Popen[str], int]:
    """The FIX 4.4 echo in a subprocess, answering the bare hop's clients as the gateway's CompID; its port."""
    stderr = root / "echo.stderr"
    command = [sys.executable, str(ECHO), "--port", "0", "--fix44", GATEWAY_COMP_ID,
               *(a for sender in HOP_CLIENTS for a in ("--key-id", sender))]
    with stderr.open("w") as err:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=err, text=True, cwd=ROOT)
    line = _first_line(proc, STARTUP_TIMEOUT, "the FIX 4.4 echo", stderr)  # "... 127.0.0.1: FIX.4.4=PORT"
    try:
        return proc, int(line.rsplit("FIX.4.4=", 1)[1])
    except (IndexError, ValueError):
        stop_process(proc, "the FIX 4.4 echo")
        raise BenchError(f"the FIX 4.4 echo's first line is not where it listens: {line!r}") from None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        return int(s.getsockname()[1])


def check_port_free(port: int) -> None:
    """QuickFIX binds every interface (SO_REUSEADDR): a port something listens on is refused here."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("", port))
        except OSError as exc:
            raise BenchError(f"gateway port {port} is not free ({exc.strerror}): pick another with --gateway-port") from None


def write_serve_config(path: Path, root: Path, sim_port: int, key_id: str, key_file: Path, gateway_port: int) -> None:
    """The ``fixengine serve`` config: one KalshiNR session, a gateway, two OMS clients on one port."""
    clients = "".join(
        f'\n[[oms_client]]\nname = "{name}"\nsender_comp_id = "{sender}"\ntarget_comp_id = "{GATEWAY_COMP_ID}"\n'
        f'port = {gateway_port}\nsession = "kalshi-nr"\nmax_quantity = "1000"\nmax_notional = "1000"\n'
        for name, sender in CLIENTS
    )
    path.write_text(
        f'data_dir = "{root / "serve"}"\n\n'
        f'[[session]]\nname = "kalshi-nr"\nhost = "127.0.0.1"\nport = {sim_port}\ntls = false\n'
        f'session_type = "KalshiNR"\napi_key_id = "{key_id}"\nprivate_key_file = "{key_file}"\nheartbeat_interval = 30\n\n'
        f'[session.logon]\nskip_pending_exec_reports = true\n\n'
        # The throttle set wide (its checks run, none binds): the benchmark measures the gateway's own cost.
        f'[gateway]\nhost = "127.0.0.1"\ntier = "prestige"\nrequest_cost = 1\n\n[admin]\nport = 0\n{clients}'
    )


def start_serve(root: Path, config: Path, profile: Path | None) -> subprocess.Popen[str]:
    """``fixengine serve --config CONFIG`` in a subprocess (under cProfile with ``profile``: this
    script's ``--serve-child`` mode runs the same command in-process). Returns once it has said
    where it listens."""
    if profile is None:
        command = [sys.executable, "-m", "fixengine", "serve", "--config", str(config)]
    else:
        command = [sys.executable, str(Path(__file__).resolve()), "--serve-child", str(config), "--profile", str(profile)]
    stderr = root / "serve.stderr"
    with stderr.open("w") as err:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=err, text=True, cwd=ROOT)
    line = _first_line(proc, STARTUP_TIMEOUT, "fixengine serve", stderr)
    if not line.startswith("fixengine serve: OMS gateway listening"):
        proc.terminate()
        proc.wait(timeout=30)
        raise BenchError(f"fixengine serve said {line!r}")
    return proc


def stop_process(proc: subprocess.Popen[str], what: str, timeout: float = 30.0) -> None:
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
        print(f"warning: {what} did not stop within {timeout:g}s of SIGTERM; killed", file=sys.stderr)


# --- the serve subprocess ---------------------------------------------------------------------------


def serve_child(config_path: Path, profile: Path) -> None:
    """``fixengine serve --config CONFIG``, the command itself, run here under ``profiled``."""
    from fixengine.cli import main

    sys.argv = ["fixengine", "serve", "--config", str(config_path)]
    with profiled(profile):
        main()  # until SIGTERM; exits (SystemExit) through ``profiled``, which writes the stats


@contextlib.contextmanager
def profiled(out: Path) -> Iterator[None]:
    """cProfile of the main thread and of every QuickFIX thread (``Runner``), merged into ``out``."""
    import cProfile
    import pstats

    from fixengine.fix import quickfix as qf

    profiles: list[cProfile.Profile] = []
    original = qf.Runner._run

    def run_profiled(self: Runner) -> None:
        p = cProfile.Profile()
        profiles.append(p)
        p.enable()
        try:
            original(self)
        finally:
            p.disable()

    qf.Runner._run = run_profiled  # type: ignore[method-assign]
    main = cProfile.Profile()
    profiles.append(main)
    main.enable()
    try:
        yield
    finally:
        main.disable()
        stats = pstats.Stats(profiles[0])
        for p in profiles[1:]:
            with contextlib.suppress(TypeError):  # a thread's profile that recorded nothing
                stats.add(p)
        stats.dump_stats(str(out))


# --- the OMS clients ----------------------------------------------------------------------------------


class Acks:
    """ExecutionReport New (150=0) arrival times by ClOrdID, from both clients' QuickFIX threads;
    wakes the loop once ``arm``'s count is reached, or with the first problem."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.times: dict[str, float] = {}
        self.lock = threading.Lock()
        self.count = 0
        self.target = 0
        self.future: asyncio.Future[None] | None = None
        self.refill: Callable[[BenchOms], None] | None = None
        self.problem: str | None = None

    def arm(self, target: int) -> asyncio.Future[None]:
        """In the loop: a future resolved once ``target`` more acks have come (or at a problem)."""
        with self.lock:
            self.count = 0
            self.target = target
            self.future = self.loop.create_future()
        if self.problem is not None:  # came between rounds: no need to wait for a timeout
            self.future.set_exception(BenchError(self.problem))
        return self.future

    def ack(self, cl_ord_id: str, at: float, client: BenchOms) -> None:
        self.times[cl_ord_id] = at
        with self.lock:
            self.count += 1
            done = self.count == self.target
        refill = self.refill
        if refill is not None:
            refill(client)
        if done:
            self.loop.call_soon_threadsafe(self._resolve, None)

    def fail(self, problem: str) -> None:
        if self.problem is None:
            self.problem = problem
        self.loop.call_soon_threadsafe(self._resolve, problem)

    def _resolve(self, problem: str | None) -> None:
        future = self.future
        if future is None or future.done():
            return
        if problem is None:
            future.set_result(None)
        else:
            future.set_exception(BenchError(problem))


class _OmsApp(GuardedApplication):
    """QuickFIX callbacks of one OMS client: timestamp each report first thing, on QuickFIX's thread."""

    def __init__(self, client: BenchOms):
        super().__init__(client.log)
        self.client = client

    def onCreate(self, session_id: fix.SessionID) -> None:
        pass

    def onLogon(self, session_id: fix.SessionID) -> None:
        self.client.logged_on.set()

    def onLogout(self, session_id: fix.SessionID) -> None:
        self.client.logged_on.clear()

    def toAdmin(self, message: fix.Message, session_id: fix.SessionID) -> None:
        pass

    def fromAdmin(self, message: fix.Message, session_id: fix.SessionID) -> None:
        msg_type = message.getHeader().getField(35)
        if msg_type == "3":
            text = message.getField(58) if message.isSetField(58) else ""
            self.guard("fromAdmin", lambda: self.client.acks.fail(f"{self.client.sender}: the gateway sent Reject 35=3: {text}"))
        elif msg_type == "5" and message.isSetField(58):
            self.client.logout_text = message.getField(58)

    def toApp(self, message: fix.Message, session_id: fix.SessionID) -> None:
        pass

    def fromApp(self, message: fix.Message, session_id: fix.SessionID) -> None:
        at = time.perf_counter()
        self.guard("fromApp", lambda: self.client.on_report(message, at))


class BenchOms:
    """A lean FIX 4.4 OMS client: a plain QuickFIX initiator that sends NewOrderSingles and records
    when each one's ExecutionReport New arrives. No asyncio hand-off, no book: the time is taken in
    ``fromApp``, as an OMS that reacts on QuickFIX's thread would see it."""

    def __init__(self, sender: str, port: int, store_dir: Path, acks: Acks):
        import logging

        self.log = logging.getLogger("benchmark.oms")
        self.sender = sender
        self.port = port
        self.acks = acks
        self.session_id = fix.SessionID("FIX.4.4", sender, GATEWAY_COMP_ID)
        self.logged_on = threading.Event()
        self.logout_text = ""
        self._numbers = itertools.count(1)  # next() is atomic: the loop and QuickFIX's thread both send
        settings = fix.SessionSettings()
        defaults = common_defaults("initiator")
        defaults.setString("FileStorePath", str(store_dir))
        defaults.setString("DataDictionary", str(base_dictionary_dir() / "FIX44.xml"))
        defaults.setString("ReconnectInterval", "1")
        settings.set(defaults)
        session = fix.Dictionary()
        session.setString("SocketConnectHost", "127.0.0.1")
        session.setInt("SocketConnectPort", port)
        session.setInt("HeartBtInt", 30)
        session.setString("ResetOnLogon", "Y")
        settings.set(self.session_id, session)
        self._app = _OmsApp(self)
        initiator = create(fix.SocketInitiator, self._app, fix.FileStoreFactory(settings), settings, "the OMS client's")
        self._runner = Runner(initiator, f"bench-oms-{sender}")

    def start(self) -> None:
        self._runner.start()

    def stop(self) -> None:
        self._runner.stop()

    def new_order(self) -> str:
        """A resting buy of 1 YES at 1-9 cents; returns its ClOrdID."""
        n = next(self._numbers)
        cl_ord_id = f"{self.sender}-{n}"
        price = Decimal(1 + n % 9) / 100
        body = [(11, cl_ord_id), (55, TICKER), (54, "1"), (60, utc_timestamp(datetime.now(timezone.utc))),
                (38, "1"), (40, "2"), (44, str(price))]
        message = fix.Message(quickfix_text("FIX.4.4", "D", body), False)
        if not fix.Session.sendToTarget(message, self.session_id):
            raise BenchError(f"{self.sender}: QuickFIX did not send the order (not logged on to the gateway?)")
        return cl_ord_id

    def on_report(self, message: fix.Message, at: float) -> None:
        msg_type = message.getHeader().getField(35)
        if msg_type == "8":
            exec_type = message.getField(150)
            if exec_type == "0":
                self.acks.ack(message.getField(11), at, self)
            elif exec_type == "8":
                text = message.getField(58) if message.isSetField(58) else "no reason given"
                self.acks.fail(f"{self.sender}: order {message.getField(11)} rejected through the gateway: {text}")
        elif msg_type in ("9", "j"):
            text = message.getField(58) if message.isSetField(58) else ""
            self.acks.fail(f"{self.sender}: the gateway answered 35={msg_type}: {text}")


# --- the two sides ------------------------------------------------------------------------------------


@dataclass
class Samples:
    latencies_us: list[float]
    send_lag_us: list[float]  # actual send - intended send: the scheduler's own lateness


async def fixed_rate(send: Callable[[], Awaitable[object]], settle: Callable[[list[object]], Awaitable[list[float]]],
                     rate: int, count: int) -> Samples:
    """``count`` orders on a fixed schedule (as order_roundtrip.py's, both sides alike); each latency
    from the order's intended send time to its ack time (``settle``: ack times, in send order)."""
    interval = 1.0 / rate
    start = time.perf_counter() + 0.05
    intended_times, lags, tokens = [], [], []
    for i in range(count):
        intended = start + i * interval
        delay = intended - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        lags.append(time.perf_counter() - intended)
        tokens.append(await send())
        intended_times.append(intended)
    acked = await settle(tokens)
    return Samples([(a - i) * 1e6 for a, i in zip(acked, intended_times)], [v * 1e6 for v in lags])


class GatewaySide:
    """OMS clients sending through a FIX 4.4 acceptor: the gateway's, or the bare echo's (``name``)."""

    def __init__(self, clients: list[BenchOms], acks: Acks, name: str = "gateway"):
        self.name = name
        self.clients = clients
        self.acks = acks
        self.turn = 0

    async def send(self) -> str:
        self.turn += 1
        return self.clients[self.turn % len(self.clients)].new_order()

    def check(self) -> None:
        if self.acks.problem is not None:
            raise BenchError(self.acks.problem)

    async def fixed_rate(self, rate: int, count: int) -> Samples:
        timeout = 60 + count / rate * 2
        future = self.acks.arm(count)  # before the first order: every ack of this round counts

        async def settle(tokens: list[object]) -> list[float]:
            await wait(future, timeout, f"{count} orders sent through the {self.name}")
            self.check()
            return [self.acks.times.pop(str(t)) for t in tokens]

        return await fixed_rate(self.send, settle, rate, count)

    async def in_flight(self, count: int) -> float:
        """Seconds for ``count`` orders, ``WINDOW`` in flight (half per client, each refilling its own
        half from its QuickFIX thread as the acks come in)."""
        lock = threading.Lock()
        budget = {"left": count}

        def take() -> bool:
            with lock:
                if budget["left"] <= 0:
                    return False
                budget["left"] -= 1
                return True

        def refill(client: BenchOms) -> None:
            if take():
                client.new_order()

        future = self.acks.arm(count)
        self.acks.refill = refill
        started = time.perf_counter()
        try:
            for i in range(min(WINDOW, count)):
                if take():
                    self.clients[i % len(self.clients)].new_order()
            await wait(future, 60 + count * 0.02, f"the throughput run through the gateway ({count} orders)")
        finally:
            self.acks.refill = None
        elapsed = time.perf_counter() - started
        self.check()
        self.acks.times.clear()
        return elapsed


class EngineSide:
    name = "engine"

    def __init__(self, engine: Engine):
        self.orders = Orders(engine)

    async def send(self) -> asyncio.Future[float]:
        order = self.orders.make()
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.orders.waiters[order.client_order_id] = future
        await self.orders.engine.submit("bench", order)
        return future

    async def fixed_rate(self, rate: int, count: int) -> Samples:
        timeout = 60 + count / rate * 2

        async def settle(tokens: list[object]) -> list[float]:
            gathered = asyncio.gather(*tokens)  # type: ignore[arg-type]
            return list(await wait(gathered, timeout, f"{len(tokens)} orders sent with the engine's API"))

        return await fixed_rate(self.send, settle, rate, count)

    async def in_flight(self, count: int) -> float:
        started = time.perf_counter()
        await wait(in_flight(self.orders, count, WINDOW), 60 + count * 0.02,
                   f"the throughput run with the engine's API ({count} orders)")
        return time.perf_counter() - started


async def wait(awaitable: Awaitable[object], timeout: float, what: str) -> object:
    try:
        return await asyncio.wait_for(awaitable, timeout)
    except TimeoutError:
        raise BenchError(f"{what}: not all acknowledged within {timeout:g}s") from None


# --- figures ------------------------------------------------------------------------------------------

PERCENTILES = (("p50", 50), ("p90", 90), ("p99", 99), ("p99_9", 99.9))


def summary(values: list[float]) -> dict[str, float]:
    s = sorted(values)
    out = {f"{name}_us": round(percentile(s, p)) for name, p in PERCENTILES}
    out["max_us"] = round(s[-1]) if s else float("nan")
    out["count"] = len(s)
    return out


def lag_summary(values: list[float]) -> dict[str, float]:
    s = sorted(values)
    return {"p50_us": round(percentile(s, 50)), "p99_us": round(percentile(s, 99)), "max_us": round(s[-1]) if s else 0}


def comparison(gateway: dict[str, float], engine: dict[str, float]) -> tuple[dict[str, float], dict[str, float]]:
    keys = [f"{name}_us" for name, _ in PERCENTILES] + ["max_us"]
    added = {k.removesuffix("_us"): round(gateway[k] - engine[k]) for k in keys}
    ratio = {k.removesuffix("_us"): round(gateway[k] / engine[k], 2) if engine[k] else None for k in keys}
    return added, ratio  # type: ignore[return-value]


def rounds_order(rounds: int, sides: int = 2) -> list[int]:
    """Which side runs in each round (indexes into the sides): ``rounds / 2`` passes over the sides,
    forward then backward (ABBA ABBA ... for two; ``rounds`` even)."""
    order: list[int] = []
    for p in range(rounds // 2):
        order += range(sides) if p % 2 == 0 else reversed(range(sides))
    return order


def schedule(rounds: int, total: int, sides: int = 2) -> list[tuple[int, int]]:
    """(side, orders) per round: each side's ``rounds / 2`` rounds share its ``total`` orders."""
    order = rounds_order(rounds, sides)
    half = rounds // 2
    shares = {side: [total // half + (1 if i < total % half else 0) for i in range(half)] for side in range(sides)}
    return [(side, shares[side].pop(0)) for side in order]


def machine() -> dict[str, object]:
    info: dict[str, object] = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
    }
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu_model"] = line.split(":", 1)[1].strip()
                break
    return info


def loadavg() -> list[float]:
    with contextlib.suppress(OSError):
        return [round(v, 2) for v in os.getloadavg()]
    return []


def cpu_ticks() -> list[int]:
    """The machine's CPU time so far (/proc/stat): user nice system idle iowait irq softirq steal."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        return [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return []


def cpu_use(before: list[int], after: list[int]) -> dict[str, float]:
    """Over the run, the whole machine's (every process's) CPU use in percent of its capacity:
    how much else was running. ``steal``: taken by the hypervisor."""
    if len(before) != 8 or len(after) != 8:
        return {}
    delta = [b - a for a, b in zip(before, after)]
    total = sum(delta) or 1
    idle = delta[3] + delta[4]
    return {"busy_percent": round(100 * (total - idle) / total, 1), "steal_percent": round(100 * delta[7] / total, 1)}


# --- the run ------------------------------------------------------------------------------------------


async def run(args: argparse.Namespace) -> dict[str, object]:
    rates = [int(r) for r in args.rates.split(",") if r.strip()]
    if not rates or min(rates) <= 0 or args.orders < 0 or args.latency_orders <= 0:
        raise BenchError("--rates must list positive rates, --latency-orders be positive, --orders not negative")
    if args.rounds < 2 or args.rounds % 2:
        raise BenchError("--rounds must be an even number (ABBA alternation), at least 2")
    if args.gateway_port:
        check_port_free(args.gateway_port)
    load_start, ticks_start = loadavg(), cpu_ticks()
    with contextlib.ExitStack() as stack:
        root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="fixengine-gwbench-")))
        keys = {}
        for who in ("serve", "engine"):
            key_id = str(uuid.uuid4())
            write_keypair(root / f"{who}.pem", root / f"{who}.pub.pem")
            keys[who] = key_id
        sim, sim_port = start_simulator(root, {keys[w]: root / f"{w}.pub.pem" for w in ("serve", "engine")})
        stack.callback(stop_process, sim, "the simulator")
        gateway_port = args.gateway_port or free_port()
        serve_config = root / "serve.toml"
        write_serve_config(serve_config, root, sim_port, keys["serve"], root / "serve.pem", gateway_port)
        serve = start_serve(root, serve_config, args.profile)
        stack.callback(stop_process, serve, "fixengine serve")
        echo, echo_port = start_echo_fix44(root)
        stack.callback(stop_process, echo, "the FIX 4.4 echo")

        loop = asyncio.get_running_loop()
        acks = Acks(loop)
        clients = [BenchOms(sender, gateway_port, root / "oms-store", acks) for _, sender in CLIENTS]
        hop_acks = Acks(loop)
        hop_clients = [BenchOms(sender, echo_port, root / "hop-store", hop_acks) for sender in HOP_CLIENTS]
        for c in clients + hop_clients:
            c.start()
            stack.callback(c.stop)  # before serve stops (callbacks run in reverse): it has no OMS to log out
        for c, where in [(c, "the gateway") for c in clients] + [(c, "the FIX 4.4 echo") for c in hop_clients]:
            if not await asyncio.to_thread(c.logged_on.wait, STARTUP_TIMEOUT):
                why = f" (it said: {c.logout_text})" if c.logout_text else ""
                raise BenchError(f"OMS client {c.sender} did not log on to {where} on port {c.port} "
                                 f"within {STARTUP_TIMEOUT:g}s{why}; see its log")

        engine = Engine(EngineConfig(
            data_dir=root / "engine",
            sessions=[SessionConfig(
                name="bench", host="127.0.0.1", port=sim_port, tls=False, session_type=SessionType.NR,
                api_key_id=keys["engine"], private_key_file=root / "engine.pem", heartbeat_interval=30,
                logon=LogonFlags(skip_pending_exec_reports=True),
            )],
        ))
        await engine.start()
        try:
            try:
                await engine.wait_logged_on(timeout=STARTUP_TIMEOUT)
            except (TimeoutError, FixEngineError) as exc:
                raise BenchError(f"the in-process engine did not log on to the simulator: {exc}") from None
            engine_side = EngineSide(engine)
            listener = asyncio.create_task(engine_side.orders.listen())
            await asyncio.sleep(0)  # let the listener subscribe before the first order
            sides = (GatewaySide(clients, acks), engine_side, GatewaySide(hop_clients, hop_acks, "bare_hop"))
            try:
                processes = {"serve": serve.pid, "simulator": sim.pid, "bench": os.getpid()}
                results = await measure(args, rates, sides, processes)
            finally:
                listener.cancel()
        finally:
            await engine.stop()
        results["peak_rss_mb"] = {
            "bench (OMS clients + in-process engine)": round(peak_rss_mb(), 1),
            "serve (engine + gateway)": round(peak_rss_mb(serve.pid), 1),
            "simulator": round(peak_rss_mb(sim.pid), 1),
            "FIX 4.4 echo": round(peak_rss_mb(echo.pid), 1),
        }
    if args.profile is not None:
        results["profile"] = str(args.profile)
    results["machine"] = machine() | {
        "loadavg_1_5_15_start": load_start, "loadavg_1_5_15_end": loadavg(),
        "cpu_use_during_run": cpu_use(ticks_start, cpu_ticks()),
    }
    return results


async def measure(args: argparse.Namespace, rates: list[int], sides: tuple[GatewaySide, EngineSide, GatewaySide],
                  processes: dict[str, int]) -> dict[str, object]:
    """``processes``: pids by name, whose CPU over each side's throughput runs is figured per order."""
    order = rounds_order(args.rounds, len(sides))
    warmup = min(1000, args.latency_orders)
    for side in sides:  # warm-up, not reported: every path hot before the first measured round
        await side.fixed_rate(rates[0], warmup)
    latency = []
    for rate in rates:
        pooled: dict[str, list[Samples]] = {side.name: [] for side in sides}
        for which, n in schedule(args.rounds, args.latency_orders, len(sides)):
            if n:
                side = sides[which]
                pooled[side.name].append(await side.fixed_rate(rate, n))
        figures: dict[str, object] = {"rate_per_s": rate, "orders_per_side": args.latency_orders}
        for name, parts in pooled.items():
            figures[name] = summary([v for s in parts for v in s.latencies_us])
        figures["gateway_added_us"], figures["ratio"] = comparison(figures["gateway"], figures["engine"])  # type: ignore[arg-type]
        # The bare hop's own round trip, from each order's actual send: the scheduler's lateness
        # (send_lag_us, in every side's figures alike) is no part of what a gateway adds.
        hop = pooled["bare_hop"]
        figures["bare_hop_round_trip_us"] = hop_trip = summary(
            [lat - lag for s in hop for lat, lag in zip(s.latencies_us, s.send_lag_us)])
        # What the gateway adds beyond the hop any FIX gateway adds: its own work.
        figures["added_beyond_bare_hop_us"] = {
            k: v - hop_trip[f"{k}_us"] for k, v in figures["gateway_added_us"].items()  # type: ignore[union-attr]
        }
        figures["send_lag_us"] = {name: lag_summary([v for s in parts for v in s.send_lag_us]) for name, parts in pooled.items()}
        latency.append(figures)
    seconds = {"gateway": 0.0, "engine": 0.0}
    cpu = {side: dict.fromkeys(processes, 0.0) for side in seconds}
    for which, n in schedule(args.rounds, args.orders):  # the gateway's and the engine's
        if n:
            name = sides[which].name
            before = {p: process_cpu_seconds(pid) for p, pid in processes.items()}
            seconds[name] += await sides[which].in_flight(n)
            for p, pid in processes.items():
                cpu[name][p] += process_cpu_seconds(pid) - before[p]
    throughput: dict[str, object] = {"in_flight": WINDOW}
    for name, s in seconds.items():
        throughput[name] = {"orders": args.orders, "seconds": round(s, 2), "orders_per_s": round(args.orders / s) if s else 0,
                            # every thread of each process, over this side's runs (the idle one's timers too)
                            "cpu_us_per_order": {p: round(c * 1e6 / args.orders, 1) if args.orders else 0.0
                                                 for p, c in cpu[name].items()}}
    if seconds["gateway"] and seconds["engine"]:
        throughput["gateway_vs_engine"] = round(seconds["engine"] / seconds["gateway"], 2)
        for figures in latency:  # a rate a side cannot sustain: its latencies are mostly queueing
            figures["rate_exceeds_throughput"] = {
                name: figures["rate_per_s"] > throughput[name]["orders_per_s"] for name in seconds  # type: ignore[index]
            }
    p50 = latency[0]["gateway_added_us"]["p50"]  # type: ignore[index]
    p99 = latency[0]["gateway_added_us"]["p99"]  # type: ignore[index]
    hop = latency[0]["bare_hop_round_trip_us"]  # type: ignore[index]
    return {
        "latency": latency,
        "throughput": throughput,
        "target": {"gateway_added_p50_us_at_most": 150, "gateway_added_p99_us_at_most": 500,
                   "met_at_first_rate": bool(p50 <= 150 and p99 <= 500),
                   # The bare hop is the least any FIX gateway adds: a target below it cannot be met here.
                   "bare_hop_p50_us": hop["p50_us"], "bare_hop_p99_us": hop["p99_us"],
                   "below_the_bare_hop": bool(hop["p50_us"] > 150 or hop["p99_us"] > 500)},
        "alternation": (
            f"{args.rounds} rounds per rate and for the throughput, sides in ABBA order "
            f"({', '.join(sides[w].name for w in order)}), each round 2/{args.rounds} of a side's orders; "
            f"figures pooled per side over its rounds; a warm-up of {warmup} orders per side at "
            f"{rates[0]}/s first, not reported"
        ),
        "setup": {
            "simulator": "subprocess, one KalshiNR listener, two accounts (one per side)",
            "serve": "python -m fixengine serve --config FILE (Engine + Gateway) in its own subprocess, on its own API key; "
                     "two [[oms_client]] on one gateway port, both through its one KalshiNR session",
            "oms_clients": "two lean QuickFIX FIX 4.4 initiators in this process; the ack time is taken "
                           "in fromApp on QuickFIX's thread; latency orders alternate between them",
            "engine_baseline": "Engine in this process on the other API key: submit -> OrderAccepted, "
                               "as benchmarks/order_roundtrip.py measures it",
            "bare_hop": "two more such OMS clients in this process against benchmarks/echo_counterparty.py "
                        "--fix44 (a subprocess, MemoryStore, an ack per order built from one string): "
                        "the OMS's FIX hop alone, the floor of what a FIX gateway adds",
            "journal": "the order journal and the gateway's journal, append-only files (journal_sync normal)",
            "message_log": True,
            "transport": "plain TCP on loopback, through the simulator's logon gate",
            "skip_pending_exec_reports": True,
            "send_lag": "send_lag_us: how late the scheduler sent after the intended time (asyncio, "
                        "both sides alike); it is inside every latency figure",
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=20_000, help="orders per side in the throughput runs")
    parser.add_argument("--latency-orders", type=int, default=10_000, help="orders per side per fixed rate")
    parser.add_argument("--rates", default="1000", help="fixed rates, orders/s, comma-separated")
    parser.add_argument("--rounds", type=int, default=4, help="alternating rounds (even; ABBA order)")
    parser.add_argument("--gateway-port", type=int, default=0, help="the gateway's OMS port (default: a free one)")
    parser.add_argument("--profile", type=Path, help="cProfile the serve process; pstats written here")
    parser.add_argument("--serve-child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_child is not None:
        if args.profile is None:
            parser.error("--serve-child needs --profile")
        serve_child(args.serve_child, args.profile)
        return
    if args.profile is not None:
        args.profile = args.profile.resolve()
    try:
        results = asyncio.run(run(args))
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    except FixEngineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
