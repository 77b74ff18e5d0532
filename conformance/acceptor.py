"""The acceptor direction of the conformance tool: QuickFIX's FIX 4.4 session acceptance scenarios
(``.def`` files) played over TCP against any FIX acceptor, each judged into a ``ScenarioResult``
with its wire transcript as ``Evidence``, so the same reports serve both directions.

The runner is the counterparty QuickFIX's Ruby harness is (``Reflector.rb``), with three changes:
every wait is bounded (10 s by default, as QuickFIX/J's runner); the script's CompIDs, BeginString,
reset and signature are those of the acceptor under test (``at_identity.Identity``); and closing a
connection half-closes it first and waits (briefly) for the acceptor to close its side, so that the
next scenario does not find the last one's session still connected.

In the evidence, ``Direction.FROM_CLIENT`` is what the runner sent (it plays the client) and
``TO_CLIENT`` what the acceptor sent; a Logon's RawData (96) is shown as ``<redacted>``.
"""

from __future__ import annotations

import fnmatch
import re
import socket
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from conformance.at_identity import Identity
from conformance.at_wire import Connection, StepError
from conformance.model import (
    Clause,
    Direction,
    Evidence,
    Finding,
    Need,
    RunOutcome,
    Scenario,
    ScenarioResult,
    Verdict,
    WireMessage,
)
from conformance.profile import Profile
from conformance.quickfix_at import (
    Action,
    DefScript,
    DefSyntaxError,
    Step,
    compare,
    expand_time,
    fixify,
    read_def_file,
    show,
)

DEFAULT_TIMEOUT = 10.0  # seconds an E line, an eDISCONNECT or a connect waits
CLOSE_LINGER = 2.0  # seconds a close waits for the acceptor to close its side
SCENARIO_PREFIX = "quickfix/fix44/"
SOURCE = "QuickFIX 1.16 test/definitions/server/fix44"


class AcceptorSetupError(ValueError):
    """The run cannot start: a missing directory, a pattern that matches nothing, an unknown
    exclusion. The message names the parameter."""


class AcceptorUnreachable(ConnectionError):
    pass


@dataclass(frozen=True)
class AcceptorTarget:
    host: str
    port: int
    identity: Identity = field(default_factory=Identity)
    timeout: float = DEFAULT_TIMEOUT
    linger: float = CLOSE_LINGER


# --- choosing scenarios -----------------------------------------------------------------------------


def scenario_id(stem: str) -> str:
    return SCENARIO_PREFIX + stem


def select_defs(directory: Path, only: Iterable[str] = ()) -> list[Path]:
    """The ``.def`` files of ``directory`` in name order; with ``only``, those whose stem or scenario
    id matches one of the globs (a glob that matches nothing is an error: it is a typo)."""
    if not directory.is_dir():
        raise AcceptorSetupError(f"defs: {directory} is not a directory (QuickFIX's fix44 .def scenarios)")
    paths = sorted(directory.glob("*.def"))
    if not paths:
        raise AcceptorSetupError(f"defs: {directory} holds no .def files")
    patterns = [p for p in only if p]
    unmatched = [p for p in patterns if not any(_matches(path, p) for path in paths)]
    if unmatched:
        raise AcceptorSetupError(f"only: {', '.join(map(repr, unmatched))} matches no scenario in {directory}")
    return [path for path in paths if not patterns or any(_matches(path, p) for p in patterns)]


def _matches(path: Path, pattern: str) -> bool:
    return fnmatch.fnmatchcase(path.stem, pattern) or fnmatch.fnmatchcase(scenario_id(path.stem), pattern)


def check_exclusions(exclusions: Mapping[str, str], paths: Iterable[Path]) -> None:
    """Every excluded stem names a scenario there, with a reason."""
    stems = {path.stem for path in paths}
    unknown = sorted(set(exclusions) - stems)
    if unknown:
        raise AcceptorSetupError(f"exclusions: no scenario {', '.join(unknown)} among those chosen")
    blank = sorted(stem for stem, reason in exclusions.items() if not reason.strip())
    if blank:
        raise AcceptorSetupError(f"exclusions: {', '.join(blank)} needs a reason")


def scenario_of(script: DefScript) -> Scenario:
    """The library's view of one ``.def`` file."""
    return Scenario(
        id=scenario_id(script.stem),
        title=script.title,
        area="quickfix-session",
        mandatory=True,
        clause=Clause(f"QuickFIX acceptance test fix44/{script.name}", SOURCE, _test_case(script.stem)),
        simulator_does="the runner plays the script's counterparty: it connects, sends the I lines (with the "
                       "acceptor's CompIDs) and reads what the acceptor sends",
        passes_when="every E line matches the acceptor's next message (exactly, but for the patterns of 10, 52, 60, "
                    "122 and 42) and every eDISCONNECT comes in time, with no data first",
        hint=script.expected or "QuickFIX's own acceptor passes it; the reason quotes the script's comment on "
                                "the failing line, when it has one",
        needs=frozenset({Need.WIRE}),
        sessions=frozenset(),
    )


def _test_case(stem: str) -> str:
    """The FIX session test case a file is named after (``14h_RepeatedTag``: 14h), or ""."""
    match = re.match(r"(\d+[a-z]?)_", stem)
    return match.group(1) if match else ""


# --- playing one script -----------------------------------------------------------------------------

_RAW_DATA = re.compile("(\x0196=)[^\x01]*")


def _shown(raw: bytes) -> str:
    """What the evidence keeps of a message: the bytes, but a Logon's signature."""
    text = raw.decode("latin-1")
    return _RAW_DATA.sub(r"\g<1><redacted>", text) if "\x0135=A\x01" in text else text


class _Failed(Exception):
    def __init__(self, verdict: Verdict, reason: str, finding: Finding):
        super().__init__(reason)
        self.verdict, self.reason, self.finding = verdict, reason, finding


class _Play:
    """One script's run: its open connections and the transcript."""

    def __init__(self, script: DefScript, target: AcceptorTarget):
        self.script, self.target = script, target
        self.evidence = Evidence(started=time.time())
        self.connections: dict[int, tuple[int, Connection]] = {}  # script's number -> (run's number, connection)
        self.opened = 0
        self.reset_sent: dict[int, bool] = {}  # script's number -> whether its last Logon had 141=Y added

    def record(self, number: int, direction: Direction, raw: bytes) -> int:
        self.evidence.messages.append(
            WireMessage(time.time(), number, direction, self.target.identity.target, _shown(raw)))
        return len(self.evidence.messages) - 1

    def fail(self, step: Step, reason: str, expected: str, seen: str, message: int | None = None,
             verdict: Verdict = Verdict.FAIL) -> _Failed:
        where = f"{self.script.name}:{step.line}"
        said = f" ({step.note})" if step.note else ""  # the script's own words for what the step checks
        return _Failed(verdict, f"{where}{said}: {reason}", Finding(f"{where} {expected}", seen, message))

    def run(self) -> ScenarioResult:
        try:
            for step in self.script.steps:
                self.step(step)
        except _Failed as failed:
            return ScenarioResult(scenario_id(self.script.stem), failed.verdict, failed.reason, (failed.finding,))
        except Exception as exc:  # noqa: BLE001 - a fault of the runner's own: ERROR, and the run goes on
            return ScenarioResult(scenario_id(self.script.stem), Verdict.ERROR,
                                  f"{self.script.name}: the harness failed: {exc!r}")
        finally:
            for _, connection in self.connections.values():
                connection.close(self.target.linger)
            self.evidence.ended = time.time()
        return ScenarioResult(scenario_id(self.script.stem), Verdict.PASS,
                              f"all {len(self.script.steps)} steps as the script says")

    def step(self, step: Step) -> None:
        target = self.target
        if step.action is Action.CONNECT:
            if step.connection in self.connections:
                self.connections.pop(step.connection)[1].close()
            try:
                connection = Connection(target.host, target.port, target.timeout)
            except OSError as exc:
                raise self.fail(step, f"cannot connect to {target.host}:{target.port}",
                                "(iCONNECT): a TCP connection", f"{exc}") from None
            self.opened += 1
            self.connections[step.connection] = (self.opened, connection)
            self.reset_sent.pop(step.connection, None)
            return
        if step.connection not in self.connections:
            raise self.fail(step, f"connection {step.connection} is not open (the script is wrong)",
                            f"{show(step.source)}", "no such connection", verdict=Verdict.ERROR)
        number, connection = self.connections[step.connection]
        if step.action is Action.DISCONNECT:
            self.connections.pop(step.connection)[1].close(target.linger)
        elif step.action is Action.SEND:
            self.send(step, number, connection)
        elif step.action is Action.EXPECT:
            self.expect(step, number, connection)
        elif step.action is Action.EXPECT_DISCONNECT:
            try:
                connection.wait_closed(target.timeout)
            except (StepError, OSError) as exc:
                reason, data = (exc.reason, exc.received) if isinstance(exc, StepError) else (str(exc), None)
                index = self.record(number, Direction.TO_CLIENT, data) if data else None
                raise self.fail(step, reason, "(eDISCONNECT): the acceptor closes the connection",
                                reason + (f": {show(_shown(data))}" if data else ""), index) from None
            self.connections.pop(step.connection)[1].close()

    def send(self, step: Step, number: int, connection: Connection) -> None:
        identity = self.target.identity
        written = expand_time(step.text).encode("latin-1")
        if _is_logon(written):
            self.reset_sent[step.connection] = identity.adds_reset(written)
        message = fixify(identity.outgoing(written))
        index = self.record(number, Direction.FROM_CLIENT, message)
        if self.evidence.heartbeat_interval is None and (interval := _heartbeat(message)) is not None:
            self.evidence.heartbeat_interval = interval
        try:
            connection.send(message)
        except OSError as exc:
            raise self.fail(step, f"unable to send, the connection was dropped ({exc})",
                            f"(I): send {show(_shown(message))}", f"{exc}", index) from None

    def expect(self, step: Step, number: int, connection: Connection) -> None:
        try:
            received = connection.read_message(self.target.timeout)
        except (StepError, OSError) as exc:
            reason, data = (exc.reason, exc.received) if isinstance(exc, StepError) else (f"read failed: {exc}", None)
            index = self.record(number, Direction.TO_CLIENT, data) if data else None
            expected = self._expected(step)  # what was expected, for the finding
            raise self.fail(step, reason, f"(E): {show(expected)}",
                            reason + (f"; received: {show(_shown(data))}" if data else ""), index) from None
        index = self.record(number, Direction.TO_CLIENT, received)
        expected = self._expected(step)  # after the read: a <TIME> in an E line is "now"
        if (reason := compare(expected, received)) is not None:
            raise self.fail(step, reason, f"(E): {show(expected)}", show(_shown(received)), index)

    def _expected(self, step: Step) -> bytes:
        written = expand_time(step.text).encode("latin-1")
        return fixify(self.target.identity.expected(written, answers_reset=self.reset_sent.get(step.connection, False)))


def _is_logon(message: bytes) -> bool:
    return b"\x0135=A\x01" in message or message.startswith(b"35=A\x01")


def _heartbeat(message: bytes) -> float | None:
    if not _is_logon(message):
        return None
    match = re.search(rb"\x01108=(\d+)\x01", message)
    return float(match.group(1)) if match else None


def run_script(script: DefScript, target: AcceptorTarget) -> tuple[ScenarioResult, Evidence]:
    """Play one script against the acceptor; every connection it opened is closed when this returns."""
    play = _Play(script, target)
    return play.run(), play.evidence


# --- a run ------------------------------------------------------------------------------------------


def wait_reachable(host: str, port: int, timeout: float) -> None:
    """As the upstream runner, poll until the acceptor takes connections (a connection opened and
    closed at once); ``AcceptorUnreachable`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection((host, port), timeout=max(0.1, min(1.0, deadline - time.monotonic()))).close()
            return
        except OSError as exc:
            if time.monotonic() >= deadline:
                raise AcceptorUnreachable(f"no acceptor takes connections at {host}:{port} "
                                          f"(tried for {timeout:g} s): {exc}") from None
            time.sleep(0.1)  # nothing to wait on but the port itself


def run_acceptor(
    target: AcceptorTarget,
    paths: list[Path],
    *,
    exclusions: Mapping[str, str] | None = None,
    before_each: Callable[[], None] | None = None,
    on_result: Callable[[ScenarioResult], None] | None = None,
) -> RunOutcome:
    """Each of ``paths`` in order: N/A with its reason when ``exclusions`` names its stem, else played
    against ``target`` (``before_each`` first, e.g. to wait until the acceptor is idle). A script
    that cannot be read is an ERROR; the harness itself never raises for what the acceptor does."""
    exclusions = dict(exclusions or {})
    check_exclusions(exclusions, paths)
    started = time.time()
    results: list[ScenarioResult] = []
    scenarios: dict[str, Scenario] = {}
    evidence: dict[str, Evidence] = {}
    for path in paths:
        try:
            script = read_def_file(path)
        except (DefSyntaxError, OSError) as exc:
            script = DefScript(path.name, path.stem, "", ())
            result = ScenarioResult(scenario_id(path.stem), Verdict.ERROR, f"cannot read the script: {exc}")
        else:
            if path.stem in exclusions:
                result = ScenarioResult(scenario_id(path.stem), Verdict.NA, exclusions[path.stem])
            else:
                if before_each is not None:
                    before_each()
                result, evidence[scenario_id(path.stem)] = run_script(script, target)
        scenarios[result.scenario] = scenario_of(script)
        results.append(result)
        if on_result is not None:
            on_result(result)
    identity = target.identity
    profile = Profile(client=f"FIX acceptor at {target.host}:{target.port}",
                      version=f"{identity.begin_string} {identity.target} (as {identity.sender})")
    return RunOutcome(profile=profile, seed=0, started=started, ended=time.time(), results=results,
                      scenarios=scenarios, evidence=evidence)
