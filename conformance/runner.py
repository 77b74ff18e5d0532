"""The conformance runner: a client command against one in-process simulator, scenario by scenario.

For a run it starts one ``Simulator`` (plain TCP on loopback, REST on, the scenario markets listed,
every message and REST call recorded), with one fresh API key per scenario registered up front. For
each scenario it starts the client command through the shell with the scenario's environment (below),
runs the scenario's driver with a ``ScenarioContext`` (the ``conformance.scenarios.Context``), stops the
client (SIGTERM to its process group, SIGKILL after a grace), and judges the evidence: the scenario's
judge, then the always-on rules (``conformance.rejudge.judge_one``, as ``rejudge`` does later).

Verdicts the runner gives itself: N/A with the profile's reason (the client is not started); INCONCLUSIVE
"no implementation in this suite version" for a scenario without a driver or a judge; ERROR when the
driver fails (an exception, a fault the simulator refused, the scenario's time bound passed): a harness
failure, never the client's FAIL.

Scenarios run in parallel, each with its own key, up to ``jobs`` at a time on the one simulator; one
registered ``exclusive`` (it moves the simulator's clock) runs alone.

The client's environment (besides the runner's own):

    KALSHI_FIX_HOST, KALSHI_FIX_PORT      the FIX listener for the session type (plain TCP on 127.0.0.1)
    KALSHI_FIX_TARGET                     TargetCompID: the profile's session the scenario is about
    KALSHI_FIX_BEGIN_STRING               FIXT.1.1, or FIX.4.4 for a fix44 profile session
    KALSHI_API_KEY_ID                     SenderCompID, the scenario's own key
    KALSHI_PRIVATE_KEY_FILE               its private key (PKCS#8 PEM)
    KALSHI_REST_URL                       the REST API (.../trade-api/v2)
    KALSHI_FIX_TLS                        0: the simulator speaks plain TCP here
    KALSHI_FIX_HEARTBEAT_INTERVAL         4: the HeartBtInt asked for (Kalshi's minimum), so heartbeat
                                          scenarios stay short; the client chooses, and every window is
                                          judged against the 108 its Logon sent
    KALSHI_FIX_RECONNECT_INTERVAL         1: the first reconnect delay asked for (a hint)
    KALSHI_FIX_LOGON_FLAGS                the profile session's Logon switches, JSON (LogonFlags names)
    KALSHI_CONFORMANCE_SCENARIO           the scenario's id
    KALSHI_CONFORMANCE_STATE_DIR          a directory of the scenario's own that outlives a restart of
                                          the client within the scenario (stores, journals)
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import random
import signal
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from conformance.harness import ApiKey, make_api_key
from conformance.instructions import Answer, read_answer
from conformance.instructions import Instruction as InstructionLine
from conformance.markets import run_markets
from conformance.model import (
    ClientSays, Direction, Evidence, FaultMark, Finding, Instruction, RestCall, RunOutcome, Scenario,
    ScenarioResult, Verdict, WireMessage,
)
from conformance.profile import Profile, ProfileSession
from conformance.rejudge import judge_one
from conformance.scenarios import DRIVERS, JUDGES, OPTIONS, HarnessError, Options, load_all
from conformance.transcript import CLIENT_STARTED, CLIENT_STOPPED, closed_mark
from fixengine.kalshi.facts import ORDER_ENTRY, SessionType
from simulator.config import FIX44_LISTENER, SimulatorConfig
from simulator.faults import FaultError
from simulator.recording import ConnectionEnded, RestRecord, WireRecord
from simulator.server import Simulator

if TYPE_CHECKING:
    from conformance.library import Library

DEFAULT_JOBS = 2  # two scenarios at a time: a client and the simulator each want a core
CONNECT_TIMEOUT = 30.0  # a client that has not logged on by then is judged without a session
SCENARIO_TIMEOUT = 300.0  # the bound on any one driver: past it, the harness failed
STOP_GRACE = 5.0  # SIGTERM, then this long to log out and exit, then SIGKILL
HEARTBEAT_INTERVAL = 4  # asked of the client; Kalshi takes more than 3 s
MIN_HEARTBEAT_INTERVAL = 4  # the simulator refuses less, as Kalshi's gateway does
RECONNECT_HINT = 1
NOT_IMPLEMENTED = "no implementation in this suite version"
_LINE_LIMIT = 1 << 22  # a state answer may be long


# --- the parts a run is made of, pure ----------------------------------------------------------------


def session_for(scenario: Scenario, profile: Profile) -> ProfileSession:
    """The profile session a scenario runs on: one of the scenario's session types (any when it names
    none), order entry first. The scenario must apply to the profile."""
    candidates = [s for s in profile.sessions if not scenario.sessions or s.type.value in scenario.sessions]
    if not candidates:
        raise ValueError(f"{scenario.id} applies to no session of the profile")
    return sorted(candidates, key=lambda s: s.type not in ORDER_ENTRY)[0]


def simulator_config(profile: Profile, keys: Sequence[ApiKey], data_dir: Path) -> SimulatorConfig:
    """The run's simulator: a listener for every session type of the profile (and the FIX 4.4 one if
    a session speaks it), REST, the scenario markets, every key an account of the profile's tier."""
    listeners = {t: 0 for t in sorted(profile.session_types | {SessionType.NR.value})}
    if any(s.dialect == "fix44" for s in profile.sessions):
        listeners[FIX44_LISTENER] = 0
    return SimulatorConfig(
        data_dir=data_dir, listeners=listeners, min_heartbeat_interval=MIN_HEARTBEAT_INTERVAL, message_log=False,
        rest_port=0, drop_copy_request_interval=0, accounts=[k.account(profile.tier) for k in keys],
        markets=run_markets(),
    )


def client_env(sim: Simulator, key: ApiKey, session: ProfileSession, scenario_id: str, state_dir: Path,
               base: dict[str, str] | None = None) -> dict[str, str]:
    """The client's environment for one scenario (see the module's docstring)."""
    fix44 = session.dialect == "fix44"
    listener = FIX44_LISTENER if fix44 else session.type.value
    env = dict(os.environ if base is None else base)
    env.update({
        "KALSHI_FIX_HOST": "127.0.0.1",
        "KALSHI_FIX_PORT": str(sim.ports[listener]),
        "KALSHI_FIX_TARGET": session.type.value,
        "KALSHI_FIX_BEGIN_STRING": "FIX.4.4" if fix44 else "FIXT.1.1",
        "KALSHI_API_KEY_ID": key.key_id,
        "KALSHI_PRIVATE_KEY_FILE": str(key.private_key_file),
        "KALSHI_REST_URL": sim.rest_url or "",
        "KALSHI_FIX_TLS": "0",
        "KALSHI_FIX_HEARTBEAT_INTERVAL": str(HEARTBEAT_INTERVAL),
        "KALSHI_FIX_RECONNECT_INTERVAL": str(RECONNECT_HINT),
        "KALSHI_FIX_LOGON_FLAGS": session.logon.model_dump_json(),
        "KALSHI_CONFORMANCE_SCENARIO": scenario_id,
        "KALSHI_CONFORMANCE_STATE_DIR": str(state_dir),
    })
    return env


def not_run(scenario: Scenario, profile: Profile) -> ScenarioResult | None:
    """The verdict of a scenario the runner does not play: N/A by the profile, or not implemented."""
    reason = profile.applies(scenario)
    if reason is not None:
        return ScenarioResult(scenario.id, Verdict.NA, reason)
    if scenario.id not in DRIVERS or scenario.id not in JUDGES:
        return ScenarioResult(scenario.id, Verdict.INCONCLUSIVE, NOT_IMPLEMENTED)
    return None


def not_implemented(scenarios: Sequence[Scenario]) -> list[str]:
    """The ids this suite version has no driver or no judge for (call ``load_all`` first)."""
    return [s.id for s in scenarios if s.id not in DRIVERS or s.id not in JUDGES]


# --- one scenario's context ------------------------------------------------------------------------


class ScenarioContext:
    """What a driver works with (``conformance.scenarios.Context``): the simulator, the client's key and
    process, the evidence as it grows, and bounded waits on it."""

    def __init__(self, *, scenario: Scenario, sim: Simulator, key: ApiKey, profile: Profile, session: ProfileSession,
                 client_cmd: str, env: dict[str, str], log_file: Path, rng: random.Random,
                 connect_timeout: float = CONNECT_TIMEOUT, stop_grace: float = STOP_GRACE):
        self.scenario = scenario
        self.sim = sim
        self.key = key
        self.profile = profile
        self.session = session
        self.session_type = session.type.value
        self.rng = rng
        self.connect_timeout = connect_timeout
        self.evidence = Evidence()
        self.exit_codes: list[int] = []  # of every client process, in order
        self.log_file = log_file  # the client's standard error
        self._cmd = client_cmd
        self._env = env
        self._grace = stop_grace
        self._loop = asyncio.get_running_loop()
        self._proc: asyncio.subprocess.Process | None = None
        self._stdout: asyncio.Task[None] | None = None
        self._exited: asyncio.Task[None] | None = None
        self._pending: dict[str, asyncio.Future[Answer]] = {}
        self._instructions = 0
        self._changed: asyncio.Future[None] = self._loop.create_future()

    @property
    def client_running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    # What the simulator recorded, delivered on the runner's loop (``_Router``).

    def on_wire(self, record: WireRecord | ConnectionEnded) -> None:
        if isinstance(record, ConnectionEnded):
            self.evidence.faults.append(FaultMark(record.at, closed_mark(record.connection, record.by_client)))
        else:
            raw = record.raw.decode("latin-1")
            direction = Direction.FROM_CLIENT if record.inbound else Direction.TO_CLIENT
            self.evidence.messages.append(WireMessage(record.at, record.connection, direction, record.session, raw))
            if record.inbound and self.evidence.heartbeat_interval is None:
                self.evidence.heartbeat_interval = _logon_heartbeat(raw)
        self._touch()

    def on_rest(self, record: RestRecord) -> None:
        self.evidence.rest.append(RestCall(record.at, record.method, record.path, record.status))
        self._touch()

    def _touch(self) -> None:
        if not self._changed.done():
            self._changed.set_result(None)
        self._changed = self._loop.create_future()

    # The Context protocol.

    async def start_client(self) -> None:
        if self.client_running:
            raise HarnessError("start_client: the client is already running")
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_file, "ab") as stderr:
            try:
                proc = await asyncio.create_subprocess_shell(
                    self._cmd, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=stderr,
                    env=self._env, start_new_session=True, limit=_LINE_LIMIT,
                )
            except OSError as exc:
                raise HarnessError(f"the client command could not be started: {exc}") from None
        self._proc = proc
        self.fault(CLIENT_STARTED)
        self._stdout = asyncio.ensure_future(self._read_stdout(proc))
        self._exited = asyncio.ensure_future(self._watch_exit(proc))

    async def stop_client(self) -> None:
        proc, exited = self._proc, self._exited
        if proc is None or exited is None:
            return
        if proc.returncode is None:
            self.fault(CLIENT_STOPPED)
            _signal_group(proc.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(asyncio.shield(exited), self._grace)
            except TimeoutError:
                _signal_group(proc.pid, signal.SIGKILL)
                await asyncio.wait_for(asyncio.shield(exited), 10)
        _signal_group(proc.pid, signal.SIGKILL)  # whatever it left running in its group
        if proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()
        if self._stdout is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stdout, 5)
        self._proc = self._stdout = self._exited = None

    async def instruct(self, instruction: dict[str, Any], timeout: float) -> Answer | None:
        self._instructions += 1
        instruction_id = f"i{self._instructions}"
        try:
            line = InstructionLine.model_validate({**instruction, "id": instruction_id}).line()
        except ValidationError as exc:
            raise HarnessError(f"instruction {instruction!r} is not one of the protocol's: {exc}") from None
        proc = self._proc
        if proc is None or proc.returncode is not None or proc.stdin is None:
            return None
        answer: asyncio.Future[Answer] = self._loop.create_future()
        self._pending[instruction_id] = answer
        self.evidence.instructions.append(Instruction(time.time(), line))
        self._touch()
        try:
            proc.stdin.write(line.encode() + b"\n")
            await asyncio.wait_for(proc.stdin.drain(), timeout)
            return await asyncio.wait_for(answer, timeout)
        except (OSError, TimeoutError):  # it does not read, or it is gone
            return None
        finally:
            self._pending.pop(instruction_id, None)

    def fault(self, what: str) -> None:
        self.evidence.faults.append(FaultMark(time.time(), what))
        self._touch()

    async def wait_for(self, condition: Callable[[Evidence], bool], timeout: float) -> bool:
        deadline = self._loop.time() + timeout
        while not condition(self.evidence):
            remaining = deadline - self._loop.time()
            if remaining <= 0:
                return False
            try:
                await asyncio.wait_for(asyncio.shield(self._changed), remaining)
            except TimeoutError:
                return condition(self.evidence)
        return True

    # The client's process.

    async def _read_stdout(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        while True:
            try:
                line = await proc.stdout.readline()
            except ValueError:  # a line beyond the limit: dropped, the next ones still read
                continue
            if not line:
                return
            text = line.decode("utf-8", "replace").rstrip("\r\n")
            self.evidence.client.append(ClientSays(time.time(), text))
            answer = read_answer(text)
            if answer is not None and (waiting := self._pending.get(answer.id)) is not None and not waiting.done():
                waiting.set_result(answer)
            self._touch()

    async def _watch_exit(self, proc: asyncio.subprocess.Process) -> None:
        self.exit_codes.append(await proc.wait())
        self._touch()

    def stderr_tail(self, limit: int = 2000) -> str:
        try:
            data = self.log_file.read_bytes()
        except OSError:
            return ""
        return data[-limit:].decode("utf-8", "replace")


def _signal_group(pid: int, sig: signal.Signals) -> None:
    """Signal the client's process group (its shell, the client, what they started); it may be gone."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def _logon_heartbeat(raw: str) -> float | None:
    """HeartBtInt (108) of a Logon, in seconds; None for any other message."""
    if "\x0135=A\x01" not in raw:
        return None
    for part in raw.split("\x01"):
        if part.startswith("108="):
            value = part[4:]
            return float(value) if value.isdigit() else None
    return None


class _Router:
    """Hands what the simulator records (on its own threads) to the scenario whose key it is, on the
    runner's loop; what belongs to no running scenario is dropped."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self._loop = loop
        self._contexts: dict[str, ScenarioContext] = {}

    def add(self, ctx: ScenarioContext) -> None:
        self._contexts[ctx.key.key_id] = ctx

    def remove(self, ctx: ScenarioContext) -> None:
        self._contexts.pop(ctx.key.key_id, None)

    def wire(self, record: WireRecord | ConnectionEnded) -> None:
        self._post(record.key_id, lambda ctx: ctx.on_wire(record))

    def rest(self, record: RestRecord) -> None:
        self._post(record.key_id, lambda ctx: ctx.on_rest(record))

    def _post(self, key_id: str | None, deliver: Callable[[ScenarioContext], None]) -> None:
        if key_id is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop is closed: the run is over
            self._loop.call_soon_threadsafe(self._deliver, key_id, deliver)

    def _deliver(self, key_id: str, deliver: Callable[[ScenarioContext], None]) -> None:
        ctx = self._contexts.get(key_id)
        if ctx is not None:
            deliver(ctx)


class _Slots:
    """``jobs`` scenarios at a time; an exclusive one waits for all the slots."""

    def __init__(self, jobs: int):
        self._jobs = jobs
        self._free = asyncio.Semaphore(jobs)
        self._exclusive = asyncio.Lock()

    @contextlib.asynccontextmanager
    async def take(self, exclusive: bool) -> AsyncIterator[None]:
        if not exclusive:
            async with self._free:
                yield
            return
        async with self._exclusive:
            taken = 0
            try:
                for _ in range(self._jobs):
                    await self._free.acquire()
                    taken += 1
                yield
            finally:
                for _ in range(taken):
                    self._free.release()


# --- a run -----------------------------------------------------------------------------------------


def _rule_check(rules: Sequence[Any]) -> Callable[[Evidence, Profile], list[Finding]] | None:
    """The always-on rules over one scenario's evidence (None while conformance.rules is not there)."""
    try:
        module = importlib.import_module("conformance.rules")
    except ModuleNotFoundError as exc:
        if exc.name == "conformance.rules":
            return None
        raise
    chosen = list(rules)
    return lambda evidence, profile: list(module.check_rules(evidence, profile, chosen))


async def _play(ctx: ScenarioContext, options: Options, scenario_timeout: float) -> str | None:
    """Run the scenario's driver with the client; None when it did its part, else why not (ERROR)."""
    ctx.evidence.started = time.time()
    error: str | None = None
    try:
        if options.start_client:
            await ctx.start_client()
        await asyncio.wait_for(DRIVERS[ctx.scenario.id](ctx), scenario_timeout)
    except TimeoutError:
        error = f"the scenario's driver did not finish within {scenario_timeout:g} s"
    except HarnessError as exc:
        error = f"the harness could not do its part: {exc}"
    except FaultError as exc:
        error = f"the simulator refused a fault: {exc}"
    except Exception as exc:  # a driver's bug is the harness's failure, never the client's
        error = f"the scenario's driver failed: {exc or type(exc).__name__}"
    finally:
        await ctx.stop_client()
        with contextlib.suppress(FaultError):
            await asyncio.to_thread(ctx.sim.faults.clear, ctx.key.key_id)
        ctx.evidence.ended = time.time()
    return error


async def play_scenario(ctx: ScenarioContext, rules: Sequence[Any], scenario_timeout: float = SCENARIO_TIMEOUT
                        ) -> ScenarioResult:
    """One scenario on a running simulator: play, then judge (scenario judge, always-on rules)."""
    error = await _play(ctx, OPTIONS.get(ctx.scenario.id, Options()), scenario_timeout)
    if error is not None:
        return ScenarioResult(ctx.scenario.id, Verdict.ERROR, error)
    return judge_one(ctx.scenario.id, ctx.evidence, ctx.profile, JUDGES.get(ctx.scenario.id), _rule_check(rules))


@contextlib.contextmanager
def _work_dir(chosen: Path | None) -> Iterator[Path]:
    if chosen is not None:
        chosen.mkdir(parents=True, exist_ok=True)
        yield chosen
        return
    with tempfile.TemporaryDirectory(prefix="fixengine-conform-") as temp:
        yield Path(temp)


async def run(
    library: "Library",
    profile: Profile,
    client_cmd: str,
    *,
    only: str | Sequence[str] | None = None,
    jobs: int = DEFAULT_JOBS,
    seed: int | None = None,
    connect_timeout: float = CONNECT_TIMEOUT,
    stop_grace: float = STOP_GRACE,
    scenario_timeout: float = SCENARIO_TIMEOUT,
    work_dir: Path | None = None,
    on_result: Callable[[ScenarioResult, Evidence | None], None] | None = None,
) -> RunOutcome:
    """Run the scenarios ``only`` names (ids or globs, comma-separated; None: all) against
    ``client_cmd``. ``work_dir`` keeps the keys and each scenario's client log (default: a temporary
    directory, removed after). ``on_result`` is told of each result as it is decided."""
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, not {jobs}")
    load_all()
    selection = ",".join(only) if isinstance(only, (list, tuple)) else only
    scenarios = library.select(selection)  # type: ignore[arg-type]
    seed = seed if seed is not None else random.SystemRandom().randrange(1 << 31)
    results: dict[str, ScenarioResult] = {}
    evidence: dict[str, Evidence] = {}
    to_play: list[Scenario] = []
    for s in scenarios:
        decided = not_run(s, profile)
        if decided is None:
            to_play.append(s)
            continue
        results[s.id] = decided
        if on_result is not None:
            on_result(decided, None)
    started = time.time()
    if to_play:
        with _work_dir(work_dir) as work:
            keys = await asyncio.to_thread(lambda: {s.id: make_api_key(work / "keys") for s in to_play})
            router = _Router(asyncio.get_running_loop())
            sim = Simulator(simulator_config(profile, list(keys.values()), work / "simulator"),
                            on_wire=router.wire, on_rest=router.rest)
            await asyncio.to_thread(sim.start)
            slots = _Slots(jobs)
            rules = list(library.rules.values())

            async def one(s: Scenario) -> None:
                options = OPTIONS.get(s.id, Options())
                async with slots.take(options.exclusive):
                    session = session_for(s, profile)
                    slug = s.id.replace("/", "-")
                    ctx = ScenarioContext(
                        scenario=s, sim=sim, key=keys[s.id], profile=profile, session=session, client_cmd=client_cmd,
                        env=client_env(sim, keys[s.id], session, s.id, work / "state" / slug),
                        log_file=work / "logs" / f"{slug}.log", rng=random.Random(f"{seed}:{s.id}"),
                        connect_timeout=connect_timeout, stop_grace=stop_grace,
                    )
                    router.add(ctx)
                    try:
                        result = await play_scenario(ctx, rules, scenario_timeout)
                    except Exception as exc:  # judging or the rules broke: the harness failed, not the client
                        result = ScenarioResult(s.id, Verdict.ERROR, f"the harness failed: {exc or type(exc).__name__}")
                    finally:
                        router.remove(ctx)
                results[s.id], evidence[s.id] = result, ctx.evidence
                if on_result is not None:
                    on_result(result, ctx.evidence)

            try:
                await asyncio.gather(*(one(s) for s in to_play))
            finally:
                await asyncio.to_thread(sim.stop)
    return RunOutcome(
        profile=profile, seed=seed, started=started, ended=time.time(),
        results=[results[s.id] for s in scenarios], scenarios={s.id: s for s in scenarios}, evidence=evidence,
        rules=dict(library.rules),
    )


async def run_one(scenario_id: str, client_cmd: str, profile: Profile, *, library: "Library | None" = None,
                  **options: Any) -> tuple[ScenarioResult, Evidence]:
    """One scenario of the library (default: the one shipped) against ``client_cmd``: its result and
    its evidence (empty when it did not run). ``options``: ``run``'s keywords."""
    if library is None:
        from conformance.library import load_library

        library = load_library()
    outcome = await run(library, profile, client_cmd, only=scenario_id, jobs=1, **options)
    return outcome.results[0], outcome.evidence.get(scenario_id, Evidence())
