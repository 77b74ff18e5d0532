"""The randomized crash test: a real engine process (tests/crash_trader.py) trades in bursts and is
SIGKILLed at a random instant, round after round on the same data_dir; after each kill it is
restarted to settle (recover, reconcile, catch up) and its book must equal the exchange's as
Kalshi's REST API shows it:

- every order of the account on the exchange is in the book with the same status (resting /
  canceled / executed), filled and remaining counts and YES price;
- no live order of the book is unknown to the exchange; what the book says was rejected is not there;
- net positions per ticker are equal; no ClOrdID was used twice on the exchange;
- and the settled book is not left held (new orders refused) nor an order rejected yet retryable.

Kills: every other one 0-4 ms after a burst of requests starts (the trader prints a line then);
the others at a random instant while trading, during start-up, or right after the simulator
closed the connection half-way through a message (control port, ``close`` with ``mid_message``).
Meanwhile a second account fills the trader's resting orders with crossing IOCs at random times,
as a market does; it pauses (its orders all done) before the comparison.

One simulator subprocess per kind (KalshiNR with [rest], KalshiRT with [rest], KalshiRT without).
A round found inconsistent keeps its data_dir as it is, and the rounds after it go on with a
fresh account and data_dir, so that each inconsistency is the round's own. The report (seed, each
round's kill point and differences, where the data is) is printed and kept in the data directory.

Short (CI, 5 rounds per kind) by default; longer, or another seed:

    FIXENGINE_CRASH_ROUNDS=200 FIXENGINE_CRASH_SEED=7 .venv/bin/python -m pytest tests/test_crash_random.py -n 3
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal as D
from pathlib import Path

import pytest

from conformance.harness import ApiKey, session_to
from fixengine.config import EngineConfig, LogonFlags, RestConfig
from fixengine.engine import Engine
from fixengine.errors import SessionUnavailableError
from fixengine.kalshi.facts import SessionType
from fixengine.orders.book import Status
from fixengine.orders.requests import InvalidOrderError, NewOrder, TimeInForce
from fixengine.kalshi.prices import Action, Contract
from fixengine.rest import KalshiRest, MarketPosition
from fixengine.rest import RestOrder
from fixengine.kalshi.signing import load_private_key
from tests.crash_trader import (
    COUNTERPARTY_BUY,
    COUNTERPARTY_SELL,
    HOUSE_BID,
    HOUSE_OFFER,
    REST_MARKET,
    SESSION,
    TAKE_MARKET,
)

pytestmark = pytest.mark.slow

SEED = int(os.environ.get("FIXENGINE_CRASH_SEED", "20261210"))
ROUNDS = int(os.environ.get("FIXENGINE_CRASH_ROUNDS", "5"))
# Seeds that once found an inconsistency: each runs ROUNDS rounds of every kind, like SEED. Kill
# instants depend on timing, so a seed does not replay its failure: what the rounds found so far is
# pinned by deterministic tests instead (test_heals_and_replay, test_order_entry,
# test_quickfix_settings, test_crash_recovery, test_reconcile). Add a seed only if it fails reliably.
REGRESSION_SEEDS: list[int] = []

KINDS = {"nr-rest": (SessionType.NR, True), "rt-rest": (SessionType.RT, True), "rt": (SessionType.RT, False)}
ACCOUNTS = min(ROUNDS, 20)  # fresh accounts for the rounds after an inconsistent one
HEARTBEAT_S = 5
TRADER_BALANCE = D("10000000")
COUNTERPARTY_BALANCE = D("10000000")
COUNTERPARTY_MEAN_GAP_S = 0.08  # ~12 crossing IOCs a second
KILL_MODES = ("random", "close-mid-message", "start-up")  # the even rounds, in turn; odd rounds: burst
TWICE = 0.4  # rounds whose trader is killed twice before it settles
LINE_WAIT_S = 60.0  # a trader line that does not come: the trader is stuck (reported, not waited for)
SETTLE_WAIT_S = 90.0
SPIN_S = 0.003  # a sleeping loop wakes up a millisecond or more late: the last of a kill's wait is spun

REPO = Path(__file__).resolve().parent.parent
BOOK_TO_EXCHANGE = {"new": "resting", "partially_filled": "resting", "filled": "executed",
                    "canceled": "canceled", "expired": "canceled"}


# --- the simulator, a subprocess --------------------------------------------------------------


@dataclass
class SimProcess:
    """The simulator as an operator runs it (``python -m simulator``): FIX listeners, control port
    and REST API. Its event lines are read all along (a full pipe would stall it); they tell when a
    killed trader's connection is gone. ``ports`` and ``tls_cert_file`` are what ``session_to`` reads."""

    proc: asyncio.subprocess.Process
    ports: dict[str, int]
    control_port: int
    rest_url: str
    tls_cert_file: None = None
    counts: Counter[tuple[str, str]] = field(default_factory=Counter)  # (key id, event kind) -> n
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    reader: asyncio.Task[None] | None = None

    @classmethod
    async def start(cls, root: Path, accounts: list[tuple[ApiKey, D]]) -> "SimProcess":
        seeds = "".join(
            f'[[seed_order]]\nticker = "{TAKE_MARKET}"\nside = "{side}"\nprice = "{price}"\nquantity = "1000000"\n'
            for side, price in (("buy_yes", HOUSE_BID), ("sell_yes", HOUSE_OFFER))
        )
        config = root / "sim.toml"
        config.write_text(
            'data_dir = "sim"\nmin_heartbeat_interval = 1\ncontrol_port = 0\nrest_port = 0\n'
            'house_balance = "100000000"\n'
            f"[listeners]\n{SessionType.NR.value} = 0\n{SessionType.RT.value} = 0\n"
            + "".join(f'[[market]]\nticker = "{t}"\n' for t in (REST_MARKET, TAKE_MARKET))
            + seeds
            + "".join(f'[[account]]\napi_key_id = "{k.key_id}"\npublic_key_file = "{k.public_key_file}"\n'
                      f'balance = "{balance}"\n' for k, balance in accounts)
        )
        with open(root / "sim.err", "w") as err:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "simulator", "--config", str(config),
                stdout=asyncio.subprocess.PIPE, stderr=err, cwd=REPO,
            )
        assert proc.stdout is not None
        # "... listening on 127.0.0.1 (plain TCP): KalshiNR=P, KalshiRT=P; control port 127.0.0.1:P; REST URL"
        line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode().strip()
        if "listening" not in line:
            proc.kill()
            raise RuntimeError(f"simulator did not start: {line!r} {(root / 'sim.err').read_text()[-2000:]}")
        listening, control, rest = line.split("; ")
        ports = {name: int(port) for name, port in (p.split("=") for p in listening.split(": ", 1)[1].split(", "))}
        sim = cls(proc, ports, int(control.rsplit(":", 1)[1]), rest.removeprefix("REST "))
        sim.reader = asyncio.create_task(sim._read_events())
        return sim

    async def _read_events(self) -> None:
        assert self.proc.stdout is not None
        async for raw in self.proc.stdout:
            # "<kind> <session type> <key id> <detail>", e.g. "closed KalshiNR <key> KalshiNR: connection ended"
            words = raw.decode(errors="replace").split()
            if len(words) >= 3:
                async with self.changed:
                    self.counts[(words[2], words[0])] += 1
                    self.changed.notify_all()

    async def wait_until(self, done: Callable[[], bool], timeout: float) -> bool:
        async with self.changed:
            try:
                await asyncio.wait_for(self.changed.wait_for(done), timeout)
                return True
            except asyncio.TimeoutError:
                return False

    async def connection_gone(self, key_id: str, timeout: float = 15.0) -> bool:
        """Every connection of the key closed and its session logged out: the exchange has
        processed all that the key's (killed) engine had sent."""
        c = self.counts
        return await self.wait_until(
            lambda: c[(key_id, "admitted")] == c[(key_id, "closed")]
            and c[(key_id, "logged_out")] >= c[(key_id, "logged_on")],
            timeout,
        )

    async def control(self, **request: object) -> dict:
        """One request on the control port; its answer (``{"ok": ...}``)."""
        reader, writer = await asyncio.open_connection("127.0.0.1", self.control_port)
        try:
            writer.write(json.dumps(request).encode() + b"\n")
            await writer.drain()
            return json.loads(await asyncio.wait_for(reader.readline(), 30))
        finally:
            writer.close()

    async def stop(self) -> None:
        if self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 30)
            except asyncio.TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        if self.reader is not None:
            self.reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.reader


# --- the trader, a subprocess -------------------------------------------------------------------


class TraderProcess:
    """One ``python -m tests.crash_trader`` process and its stdout lines (split into words) as they come."""

    def __init__(self, proc: asyncio.subprocess.Process):
        self.proc = proc
        self.lines: list[list[str]] = []
        self.changed = asyncio.Condition()
        self.ended = False
        self.reader = asyncio.create_task(self._read())

    @classmethod
    async def start(cls, spec: Path, mode: str, stderr: Path) -> "TraderProcess":
        with open(stderr, "w") as err:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "tests.crash_trader", str(spec), mode,
                stdout=asyncio.subprocess.PIPE, stderr=err, cwd=REPO,
            )
        return cls(proc)

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        try:
            async for raw in self.proc.stdout:
                async with self.changed:
                    self.lines.append(raw.decode(errors="replace").split())
                    self.changed.notify_all()
        finally:
            async with self.changed:
                self.ended = True
                self.changed.notify_all()

    async def wait_line(self, first: str, match: Callable[[list[str]], bool] = lambda w: True,
                        timeout: float = LINE_WAIT_S) -> list[str] | None:
        """The first line starting with ``first`` that ``match``es; None if the process ended (or
        stayed silent for ``timeout``) first."""

        def found() -> list[str] | None:
            return next((w for w in self.lines if w and w[0] == first and match(w)), None)

        async with self.changed:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.changed.wait_for(lambda: found() is not None or self.ended), timeout)
            return found()

    async def kill_at(self, instant: float) -> float | None:
        """SIGKILL at ``instant`` (``time.monotonic()``); when it was sent, None if already dead."""
        # the random instant, not a wait for anything
        await asyncio.sleep(max(0.0, instant - SPIN_S - time.monotonic()))
        while time.monotonic() < instant:
            pass  # the last moment spun: a sleeping loop wakes up a millisecond or more late
        if self.proc.returncode is not None:
            return None
        killed = time.monotonic()
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGKILL)
        return killed

    async def finish(self, timeout: float | None = None) -> int:
        """Wait for the process to end (SIGKILL after ``timeout``) and its last lines to be read."""
        try:
            await asyncio.wait_for(self.proc.wait(), timeout)
        except asyncio.TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            await self.proc.wait()
        await self.reader
        assert self.proc.returncode is not None
        return self.proc.returncode


# --- the counterparty: a second account in this process -----------------------------------------


class Counterparty:
    """Crossing IOCs against the trader's resting orders at random times (as a market does), from
    a plain Engine on its own API key; paused while the trader settles."""

    def __init__(self, engine: Engine, rng: random.Random):
        self.engine = engine
        self.rng = rng
        self.task: asyncio.Task[None] | None = None

    def resume(self) -> None:
        self.task = asyncio.create_task(self._trade())

    async def _trade(self) -> None:
        rng = self.rng
        while True:
            await asyncio.sleep(rng.expovariate(1 / COUNTERPARTY_MEAN_GAP_S))  # when it trades is the randomness
            buy = rng.random() < 0.5
            order = NewOrder.create(
                ticker=REST_MARKET, action=Action.BUY if buy else Action.SELL, contract=Contract.YES,
                quantity=D(rng.randint(1, 5)), price=COUNTERPARTY_BUY if buy else COUNTERPARTY_SELL,
                time_in_force=TimeInForce.IOC,
            )
            with contextlib.suppress(SessionUnavailableError, InvalidOrderError):
                await self.engine.submit("cp", order)

    async def pause(self, timeout: float = 15.0) -> None:
        """Stop sending; return once each IOC sent is done (filled or cancelled): nothing of ours
        changes the trader's orders any more."""
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
            self.task = None
        events = self.engine.events()
        try:
            deadline = time.monotonic() + timeout
            while any(not o.status.terminal for o in self.engine.book.orders.values()):
                await events.next(timeout=max(0.01, deadline - time.monotonic()))
        finally:
            events.close()


# --- the comparison -----------------------------------------------------------------------------


def differences(book: dict, orders: list[RestOrder], positions: list[MarketPosition]) -> list[str]:
    """Where the settled book (``crash_trader.book_dump``) and the exchange disagree; empty: consistent."""
    found: list[str] = []
    if book["held"]:
        found.append("book still held (new orders refused) after settling: " + " | ".join(book["reconciliations"]))
    mine = book["orders"]
    by_key = {o["key"]: o for o in mine}
    by_id = {o["order_id"]: o for o in mine if o["order_id"]}

    def show(o: dict) -> str:
        flags = [f for f in ("outcome_unknown", "unconfirmed") if o[f]]
        flags += [f"pending {o['pending']}"] if o["pending"] else []
        return (f"{o['status']} filled {D(o['cum_qty'])} left {D(o['leaves_qty'])} @ {D(o['yes_price'])}"
                + (f" [{', '.join(flags)}]" if flags else "") + (f" ({o['reason']})" if o["reason"] else ""))

    uses = Counter(x.client_order_id for x in orders)
    for cl_ord_id, n in sorted(uses.items()):
        if n > 1:
            dupes = ", ".join(f"{x.order_id} {x.status}" for x in orders if x.client_order_id == cl_ord_id)
            found.append(f"ClOrdID {cl_ord_id} used by {n} orders on the exchange: {dupes}")
    on_exchange: set[str] = set()
    for x in orders:
        theirs = f"{x.status} filled {x.fill_count_fp} left {x.remaining_count_fp} @ {x.yes_price_dollars}"
        ours = by_id.get(x.order_id) or by_key.get(x.client_order_id)
        if ours is None:
            found.append(f"{x.client_order_id} ({x.order_id}): on the exchange ({theirs}), not in the book")
            continue
        on_exchange.add(ours["key"])
        same = (
            ours["order_id"] == x.order_id
            and BOOK_TO_EXCHANGE.get(ours["status"]) == x.status
            and (D(ours["cum_qty"]), D(ours["leaves_qty"]), D(ours["yes_price"]))
            == (x.fill_count_fp, x.remaining_count_fp, x.yes_price_dollars)
        )
        if not same:
            what = "book says rejected, yet on the exchange" if ours["status"] == "rejected" else "differs"
            found.append(f"{ours['key']} ({x.order_id}): {what}: book {show(ours)} (order_id {ours['order_id']}) "
                         f"vs exchange {theirs}")
    for o in mine:
        if o["key"] in on_exchange or o["status"] == "rejected":
            continue  # compared above; or rejected and, rightly, not on the exchange
        found.append(f"{o['key']} ({o['order_id']}): book {show(o)}, unknown to the exchange")
    for o in mine:
        if o["outcome_unknown"] and Status(o["status"]).terminal:
            found.append(f"{o['key']}: outcome_unknown on a {o['status']} order (a retry would send it again)")
    theirs_pos = {p.ticker: p.position_fp for p in positions}
    for ticker in sorted(set(theirs_pos) | set(book["positions"])):
        ours_net, theirs_net = D(book["positions"].get(ticker, "0")), theirs_pos.get(ticker, D(0))
        if ours_net != theirs_net:
            found.append(f"position {ticker}: book {ours_net} vs exchange {theirs_net}")
    return found


# --- a round ----------------------------------------------------------------------------------


@dataclass
class Round:
    number: int
    account: int
    mode: str
    patient: bool = True  # the (last) trader waited for reconciliation before trading
    kill_point: str = ""
    diffs: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    actions: int = 0
    phases: dict[str, float] = field(default_factory=dict)  # seconds each step took

    def timed(self, phase: str, since: float) -> float:
        now = time.monotonic()
        self.phases[phase] = now - since
        return now

    @property
    def consistent(self) -> bool:
        return not self.diffs


def describe_kill(mode: str, killed: float | None, lines: list[list[str]], note: str) -> str:
    """Where the kill landed, from the trader's own lines (one clock for both processes)."""
    if killed is None:
        return f"{mode}: the trader had already exited{note}"
    marks: dict[str, float] = {}
    burst: tuple[str, float] | None = None
    for w in lines:
        if w[:1] == ["starting"]:
            marks["start"] = float(w[1])
        elif w[:2] == ["logged", "on"]:
            marks["logon"] = float(w[2])
        elif w[:1] == ["ready"]:
            marks["ready"] = float(w[1])
        elif w[:1] == ["started"] and float(w[2]) <= killed:
            burst = (w[1], float(w[2]))

    def ms(since: float) -> str:
        return f"{(killed - since) * 1000:.1f} ms"

    if "start" not in marks:
        where = "before Engine.start (imports)"
    elif "logon" not in marks:
        where = f"start-up, {ms(marks['start'])} after Engine.start, before logon"
    elif "ready" not in marks:
        where = f"{ms(marks['logon'])} after logon, book not yet released"
    elif burst is not None:
        where = f"{ms(burst[1])} after burst {burst[0]} started"
    else:
        where = f"{ms(marks['ready'])} after ready, before the first burst"
    return f"{mode}: {where}{note}"


class CrashRun:
    """The rounds of one kind against one simulator."""

    def __init__(self, root: Path, kind: str, seed: int, sim: SimProcess, traders: list[ApiKey], cp: Counterparty):
        self.root, self.kind, self.seed, self.sim, self.traders, self.cp = root, kind, seed, sim, traders, cp
        self.session_type, self.rest = KINDS[kind]
        self.account = 0
        self.processes: list[TraderProcess] = []  # killed at the end whatever happened
        self.startup_s = 0.3  # the quickest start-up seen (Engine.start to logon): the start-up kill window

    async def stop(self) -> None:
        if self.cp.task is not None:
            self.cp.task.cancel()
        for process in self.processes:
            if process.proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.proc.kill()
                await process.finish()

    def data_dir(self) -> Path:
        return self.root / f"engine-{self.account}"

    def config(self) -> EngineConfig:
        key = self.traders[self.account]
        nr = self.session_type is SessionType.NR
        session = session_to(self.sim, key, name=SESSION, session_type=self.session_type,
                             logon=LogonFlags(reset_seq_num=nr), heartbeat_interval=HEARTBEAT_S)
        rest = RestConfig(base_url=self.sim.rest_url, reconcile_interval=0, staleness_timeout=10) if self.rest else None
        return EngineConfig(data_dir=self.data_dir(), sessions=[session], rest=rest)

    async def round(self, number: int) -> Round:
        rng = random.Random(f"{self.seed}:{self.kind}:{number}")
        mode = "burst" if number % 2 else KILL_MODES[(number // 2) % len(KILL_MODES)]
        # Now and then a first run killed in a burst, restarted without settling: the second run
        # inherits orders of unknown outcome, and retries them (impatient: while the book is held).
        twice = rng.random() < TWICE
        result = Round(number, self.account, mode, patient=not twice and rng.random() < 0.5)
        where = self.root / f"round-{number:03d}"
        where.mkdir()
        key = self.traders[self.account]
        t = time.monotonic()
        if not await self.sim.connection_gone(key.key_id):
            result.notes.append("the previous connection was still open at the start")
        t = result.timed("waiting for the last connection to go", t)
        self.cp.resume()
        kills = []
        for run_id, kill_mode in ([(f"{number}a", "burst")] if twice else []) + [(f"{number}", mode)]:
            spec = self.spec(where, run_id, rng.randrange(2**32), result.patient or run_id.endswith("a"))
            kills.append(await self.run_and_kill(spec, kill_mode, rng, key, where / f"run{run_id}.err", result))
        result.kill_point = "; then ".join(kills)
        t = result.timed("run", t)
        await self.cp.pause()
        t = result.timed("pausing the counterparty", t)
        actions = where / "actions.log"
        result.actions = sum(1 for line in actions.open() if " burst " not in line) if actions.exists() else 0

        settler = await TraderProcess.start(spec, "settle", where / "settle.err")
        self.processes.append(settler)
        rc = await settler.finish(timeout=SETTLE_WAIT_S)
        t = result.timed("settle", t)
        if not any(w[:1] == ["book"] for w in settler.lines):
            result.diffs.append(f"settling failed (rc {rc}; lines {[' '.join(w) for w in settler.lines]}): "
                                f"{tail(where / 'settle.err')}")
            return result
        book = json.loads((where / "book.json").read_text())
        async with KalshiRest(self.sim.rest_url, key.key_id, load_private_key(file=key.private_key_file)) as rest:
            orders, positions = await rest.orders(), await rest.positions()
        result.diffs.extend(differences(book, orders, positions))
        result.timed("compare", t)
        return result

    def spec(self, where: Path, run_id: str, seed: int, patient: bool) -> Path:
        """The trader's spec for one run (its ClOrdIDs start with ``r<run_id>-``)."""
        spec = where / f"spec{run_id}.json"
        spec.write_text(json.dumps({
            "engine": json.loads(self.config().model_dump_json(by_alias=True)), "run": run_id, "seed": seed,
            "patient": patient, "actions_log": str(where / "actions.log"), "book_file": str(where / "book.json"),
        }))
        return spec

    async def run_and_kill(self, spec: Path, mode: str, rng: random.Random, key: ApiKey, stderr: Path,
                           result: Round) -> str:
        """Start the trader, SIGKILL it as ``mode`` says, wait until the exchange has all it sent;
        where the kill landed."""
        trader = await TraderProcess.start(spec, "run", stderr)
        self.processes.append(trader)
        try:
            killed, note = await self.kill(trader, mode, rng, key)
        finally:
            with contextlib.suppress(ProcessLookupError):
                trader.proc.kill()
            rc = await trader.finish()
        if rc != -signal.SIGKILL:
            result.diffs.append(f"the trader exited by itself (rc {rc}) before the kill: {tail(stderr)}")
        self.learn_startup(trader.lines)
        if not await self.sim.connection_gone(key.key_id):
            result.notes.append("the killed trader's connection was not seen closing within 15 s")
        return describe_kill(mode, killed, trader.lines, note)

    async def kill(self, trader: TraderProcess, mode: str, rng: random.Random, key: ApiKey) -> tuple[float | None, str]:
        """SIGKILL the trader as ``mode`` says; when (None: it had exited already), and a note."""
        if mode == "start-up":
            starting = await trader.wait_line("starting")
            if starting is None:
                return await trader.kill_at(0), ""
            return await trader.kill_at(float(starting[1]) + rng.uniform(0, self.startup_s)), ""
        ready = await trader.wait_line("ready")
        if ready is None:
            return await trader.kill_at(0), " (never ready)"
        if mode == "burst":
            n = str(rng.randint(2, 8))
            started = await trader.wait_line("started", lambda w: w[1] == n)
            if started is None:
                return await trader.kill_at(0), f" (burst {n} never started)"
            aim = rng.uniform(0, 0.004)
            note = f" (aimed {aim * 1000:.1f} ms after burst {n} started)"
            return await trader.kill_at(float(started[2]) + aim), note
        if mode == "random":
            return await trader.kill_at(float(ready[1]) + rng.uniform(0.05, 1.5)), ""
        assert mode == "close-mid-message"
        await asyncio.sleep(max(0.0, float(ready[1]) + rng.uniform(0.05, 1.0) - time.monotonic()))  # a random instant
        closed = self.sim.counts[(key.key_id, "closed")]
        answer = await self.sim.control(fault="close", key_id=key.key_id, mid_message=True)
        if not answer.get("ok"):
            return await trader.kill_at(0), f" (fault not armed: {answer.get('error')})"
        # the next message to the trader goes out half-way, then the connection is closed
        if not await self.sim.wait_until(lambda: self.sim.counts[(key.key_id, "closed")] > closed, 10):
            return await trader.kill_at(0), " (the simulator had not closed the connection after 10 s)"
        after = rng.uniform(0, 0.02)
        note = f" ({after * 1000:.1f} ms after the simulator closed mid-message)"
        return await trader.kill_at(time.monotonic() + after), note

    def learn_startup(self, lines: list[list[str]]) -> None:
        start = next((float(w[1]) for w in lines if w[:1] == ["starting"]), None)
        logon = next((float(w[2]) for w in lines if w[:2] == ["logged", "on"]), None)
        if start is not None and logon is not None:
            self.startup_s = min(self.startup_s, logon - start)


def tail(path: Path, lines: int = 15) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


def report(kind: str, seed: int, root: Path, rounds: list[Round], stopped: str) -> str:
    out = [f"kind {kind}, seed {seed}: {sum(r.consistent for r in rounds)}/{len(rounds)} rounds consistent{stopped}; "
           f"data in {root}"]
    for r in rounds:
        state = "consistent" if r.consistent else "INCONSISTENT"
        took = ", ".join(f"{name} {seconds:.1f}" for name, seconds in r.phases.items() if seconds >= 0.1)
        trader = "patient" if r.patient else "impatient"
        out.append(f"  round {r.number} (account {r.account}, {trader}, {r.actions} actions; {took} s): {state}; "
                   f"kill {r.kill_point}"
                   + "".join(f"\n      note: {n}" for n in r.notes))
        if not r.consistent:
            out.append(f"      data_dir {root / f'engine-{r.account}'}, logs {root / f'round-{r.number:03d}'}")
            shown = r.diffs[:15]
            out.extend(f"      - {d}" for d in shown)
            if len(r.diffs) > len(shown):
                out.append(f"      ... and {len(r.diffs) - len(shown)} more")
    return "\n".join(out)


@pytest.mark.timeout(120 + ROUNDS * 30)
@pytest.mark.parametrize("seed", [SEED, *REGRESSION_SEEDS])
@pytest.mark.parametrize("kind", list(KINDS))
async def test_sigkilled_engine_recovers_the_exchanges_book(tmp_path, make_key, kind, seed) -> None:
    # Not tmp_path: pytest deletes all but its last three runs' directories, and an inconsistent
    # round's data_dir is kept for inspection (removed when every round was consistent).
    root = Path(tempfile.mkdtemp(prefix=f"fixengine-crash-{kind}-{seed}-"))
    traders = [make_key() for _ in range(ACCOUNTS)]
    cp_key = make_key()
    sim = await SimProcess.start(root, [*((k, TRADER_BALANCE) for k in traders), (cp_key, COUNTERPARTY_BALANCE)])
    cp_engine = Engine(EngineConfig(data_dir=root / "counterparty", sessions=[session_to(sim, cp_key, name="cp")]))
    run = CrashRun(root, kind, seed, sim, traders, Counterparty(cp_engine, random.Random(f"{seed}:{kind}:cp")))
    rounds: list[Round] = []
    stopped = ""
    try:
        await cp_engine.start()
        await cp_engine.wait_logged_on()
        for number in range(ROUNDS):
            result = await run.round(number)
            rounds.append(result)
            if not result.consistent:
                run.account += 1  # the rounds after go on with a clean slate
                if run.account == len(traders):
                    stopped = f" (stopped after round {number}: no fresh account left)"
                    break
    finally:
        await run.stop()
        await cp_engine.stop()
        await sim.stop()
        text = report(kind, seed, root, rounds, stopped)  # also when the harness itself failed
        (root / "report.txt").write_text(text + "\n")
        print(text)
    assert all(r.consistent for r in rounds), text
    assert sum(r.actions for r in rounds) > 50 * ROUNDS, text  # the trader did trade
    shutil.rmtree(root)
