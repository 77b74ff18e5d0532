"""The clients the conformance suite is proved on, as real processes against a real simulator: the
engine as a client (``python -m conformance.clients.engine``) and the reference client with its
one-fault switches (``python -m tests.conformance_client``). Each is given the runner's environment
and instructions on standard input; what it did is read from the simulator's own recording of the
wire and of its REST API (``simulator.recording``), not from what the client says."""

from __future__ import annotations

import base64
import json
import os
import queue
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from conformance.harness import ApiKey, SimEvents
from conformance.library import load_library
from conformance.model import ScenarioResult, Verdict
from conformance.profile import Profile
from conformance.runner import run
from fixengine.fix.framing import FramingError, parse
from fixengine.kalshi.signing import logon_prehash, verify
from simulator.config import MarketEntry
from simulator.recording import RestRecord, WireRecord
from simulator.server import Simulator

ROOT = Path(__file__).resolve().parent.parent
TICKER = "CONF-CLIENTS-26DEC31"
ENGINE = ("-m", "conformance.clients.engine")
REFERENCE = ("-m", "tests.conformance_client")
ANSWER_TIMEOUT_S = 30.0  # a place waits for the logon and its reconciliation (both clients: 15 s at most)


@dataclass(frozen=True)
class Msg:
    at: float  # epoch seconds, as the simulator recorded it
    connection: int
    from_client: bool
    fields: dict[int, str]


class Recorded:
    """What the simulator recorded of its clients, with waiting (its sinks run on its threads)."""

    def __init__(self) -> None:
        self.wire: list[Msg] = []
        self.rest: list[RestRecord] = []
        self._changed = threading.Condition()

    def on_wire(self, record: object) -> None:
        if not isinstance(record, WireRecord):
            return
        try:
            fields = parse(record.raw)
        except FramingError:
            return
        first: dict[int, str] = {}
        for tag, value in fields:
            first.setdefault(tag, value)
        with self._changed:
            self.wire.append(Msg(record.at, record.connection, record.inbound, first))
            self._changed.notify_all()

    def on_rest(self, record: RestRecord) -> None:
        with self._changed:
            self.rest.append(record)
            self._changed.notify_all()

    def _wait(self, items: list[Any], predicate: Callable[[Any], bool], timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = next((item for item in items if predicate(item)), None)
                if found is not None:
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"the simulator recorded nothing of that kind in {timeout}s")
                self._changed.wait(remaining)

    def message(self, predicate: Callable[[Msg], bool], timeout: float = 15.0) -> Msg:
        result: Msg = self._wait(self.wire, predicate, timeout)
        return result

    def rest_call(self, predicate: Callable[[RestRecord], bool], timeout: float = 15.0) -> RestRecord:
        result: RestRecord = self._wait(self.rest, predicate, timeout)
        return result

    def from_client(self, msg_type: str) -> list[Msg]:
        with self._changed:
            return [m for m in self.wire if m.from_client and m.fields.get(35) == msg_type]


def sent(msg_type: str, after: float = 0.0, **tags: str) -> Callable[[Msg], bool]:
    """A predicate: a message of ``msg_type`` from the client, at or after ``after``, with ``tags``
    (written ``t11="..."`` for tag 11)."""
    wanted = {int(name[1:]): value for name, value in tags.items()}
    return lambda m: (m.from_client and m.fields.get(35) == msg_type and m.at >= after
                      and all(m.fields.get(tag) == value for tag, value in wanted.items()))


class ClientProcess:
    """A client command as the runner starts it: environment in, instructions on stdin, answers out."""

    def __init__(self, args: tuple[str, ...], env: dict[str, str], log_file: Path):
        self._log = open(log_file, "wb")  # noqa: SIM115 - closed in kill()
        self.log_file = log_file
        self.proc = subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self._log)
        self._lines: queue.Queue[bytes] = queue.Queue()
        self._asked = 0
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line)

    def instruct(self, action: str, timeout: float = ANSWER_TIMEOUT_S, **fields: str) -> dict[str, Any]:
        self._asked += 1
        ask_id = f"i{self._asked}"
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps({"id": ask_id, "action": action, **fields}) + "\n").encode())
        self.proc.stdin.flush()
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no answer to {action} in {timeout}s; log:\n{self.log()}") from None
            answer = json.loads(line)  # anything but protocol lines on stdout fails here
            if answer.get("id") == ask_id:
                return dict(answer)

    def log(self) -> str:
        return self.log_file.read_text(errors="replace")[-6000:]

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM, as the runner stops a client; its exit code."""
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def end_input(self, timeout: float = 20.0) -> int:
        """Close its standard input (the runner gone); its exit code."""
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._log.close()


@dataclass
class Rig:
    sim: Simulator
    events: SimEvents
    key: ApiKey
    recorded: Recorded
    launch: Callable[..., ClientProcess]


@pytest.fixture
def rig(make_key, start_simulator, tmp_path: Path) -> Iterator[Rig]:
    """A simulator recording its wire and REST calls, and a way to start a client against it."""
    key, recorded = make_key(), Recorded()
    sim, events = start_simulator([key.account()], markets=[MarketEntry(ticker=TICKER)], rest_port=0,
                                  on_wire=recorded.on_wire, on_rest=recorded.on_rest)
    processes: list[ClientProcess] = []

    def launch(args: tuple[str, ...], *, heartbeat: int = 30, fault: str | None = None) -> ClientProcess:
        env = {
            **os.environ, "KALSHI_FIX_HOST": "127.0.0.1", "KALSHI_FIX_PORT": str(sim.ports["KalshiNR"]),
            "KALSHI_FIX_TARGET": "KalshiNR", "KALSHI_FIX_BEGIN_STRING": "FIXT.1.1", "KALSHI_API_KEY_ID": key.key_id,
            "KALSHI_PRIVATE_KEY_FILE": str(key.private_key_file), "KALSHI_REST_URL": str(sim.rest_url),
            "KALSHI_FIX_HEARTBEAT_INTERVAL": str(heartbeat), "FIXENGINE_CONFORM_DATA_DIR": str(tmp_path / "engine"),
        }
        process = ClientProcess(args + (("--fault", fault) if fault else ()), env, tmp_path / f"client{len(processes)}.log")
        processes.append(process)
        return process

    yield Rig(sim, events, key, recorded, launch)
    for process in processes:
        process.kill()


def order_in(state: dict[str, Any], key: str) -> dict[str, Any]:
    return next(o for o in state["orders"] if o["order"] == key)


def state_until(client: ClientProcess, recorded: Recorded, holds: Callable[[dict[str, Any]], bool],
                timeout: float = 15.0) -> dict[str, Any]:
    """Ask for the client's state until ``holds`` is true of it. Its book changes only when a message
    reaches it, so between asks this waits for the next one the simulator sends (briefly: the one
    that changes the book may already be on its way)."""
    deadline = time.monotonic() + timeout
    while True:
        asked_at = time.time()
        state = client.instruct("state")
        assert state["ok"], state
        if holds(state):
            return state
        if time.monotonic() > deadline:
            raise AssertionError(f"the client's state never got there: {state}")
        try:
            recorded.message(lambda m: not m.from_client and m.at >= asked_at, timeout=0.5)
        except TimeoutError:
            pass


def place(client: ClientProcess, price: str = "0.40", quantity: str = "2") -> str:
    placed = client.instruct("place", ticker=TICKER, side="buy", contract="yes", price=price, quantity=quantity)
    assert placed["ok"], placed
    return str(placed["order"])


# --- both clients: instructions ---------------------------------------------------------------------


def test_engine_client_places_replaces_cancels_and_reports_its_book(rig: Rig) -> None:
    client = rig.launch(ENGINE)
    key = place(client)
    assert key in [o["order"] for o in client.instruct("state")["orders"]]
    resting = order_in(state_until(client, rig.recorded, lambda s: order_in(s, key)["status"] == "new"), key)
    assert resting["order_id"] and resting["cl_ord_id"] == key and Decimal(resting["leaves_qty"]) == 2
    rig.recorded.message(sent("D", t11=key, t54="1", t44="40", t38="2.00"))

    assert client.instruct("replace", order=key, quantity="3", price="0.41")["ok"]
    replace = rig.recorded.message(sent("G", t41=key, t38="3.00", t44="41"))
    replaced = order_in(state_until(client, rig.recorded, lambda s: order_in(s, key)["cl_ord_id"] == replace.fields[11]
                                    and order_in(s, key)["status"] == "new"), key)
    assert Decimal(replaced["leaves_qty"]) == 3

    assert client.instruct("cancel", order=key)["ok"]
    rig.recorded.message(sent("F", t41=replace.fields[11]))
    state_until(client, rig.recorded, lambda s: order_in(s, key)["status"] == "canceled")
    refused = client.instruct("cancel", order=key)
    assert not refused["ok"] and "canceled" in refused["error"]  # refused before anything is sent

    # A session Reject (35=3) of the order names it only by its MsgSeqNum (45): the order fails.
    rejected = client.instruct("place", ticker="CONF-SESSION-REJECT", side="buy", contract="yes", price="0.30",
                               quantity="1")["order"]
    reject = rig.recorded.message(lambda m: not m.from_client and m.fields.get(35) == "3")
    assert reject.fields[45] == rig.recorded.message(sent("D", t11=rejected)).fields[34]
    state_until(client, rig.recorded, lambda s: order_in(s, rejected)["status"] == "rejected"
                and order_in(s, rejected)["reason"] == reject.fields[58])

    assert client.stop() == 0
    rig.recorded.message(sent("5"))  # it logged out on SIGTERM


def test_reference_client_places_cancels_and_reports_its_book(rig: Rig) -> None:
    client = rig.launch(REFERENCE)
    key = place(client)
    assert key in [o["order"] for o in client.instruct("state")["orders"]]
    resting = order_in(state_until(client, rig.recorded, lambda s: order_in(s, key)["status"] == "new"), key)
    assert resting["order_id"] and Decimal(resting["leaves_qty"]) == 2
    logon = rig.recorded.message(sent("A"))
    assert (logon.fields[141], logon.fields[1137], logon.fields[34]) == ("Y", "9", "1")

    assert client.instruct("cancel", order=key)["ok"]
    rig.recorded.message(sent("F", t41=key, t37=resting["order_id"]))
    state_until(client, rig.recorded, lambda s: order_in(s, key)["status"] == "canceled")
    assert client.end_input() == 0  # the end of its instructions ends it, logged out
    rig.recorded.message(sent("5"))


# --- the reference client's faults -------------------------------------------------------------------


def _pss_verifies(key: ApiKey, prehash: bytes, signature: str, salt_length: int) -> bool:
    scheme = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=salt_length)
    try:
        key.private_key.public_key().verify(base64.b64decode(signature), prehash, scheme, hashes.SHA256())
    except InvalidSignature:
        return False
    return True


@pytest.mark.parametrize("fault, refusal", [
    ("no-reset-nr", "ResetSeqNumFlag (141) must be Y"),
    ("wrong-salt", "Invalid signature"),
    ("stale-signature-time", "Invalid signature"),
])
def test_reference_client_with_a_logon_fault_is_refused_and_stops_trying(rig: Rig, fault: str, refusal: str) -> None:
    client = rig.launch(REFERENCE, fault=fault)
    assert refusal in rig.events.wait_for("refused", rig.key.key_id, timeout=15).detail
    logon = rig.recorded.message(sent("A")).fields
    prehash = logon_prehash(logon[52], "A", logon[34], rig.key.key_id, "KalshiNR")
    if fault == "no-reset-nr":
        assert 141 not in logon and verify(rig.key.private_key.public_key(), prehash, logon[96])
    elif fault == "wrong-salt":
        assert _pss_verifies(rig.key, prehash, logon[96], 20) and not verify(rig.key.private_key.public_key(), prehash, logon[96])
    else:  # signed over an earlier SendingTime than the one it carries
        assert logon[141] == "Y" and not verify(rig.key.private_key.public_key(), prehash, logon[96])
    answer = client.instruct("place", ticker=TICKER, side="buy", contract="yes", price="0.40", quantity="1")
    assert not answer["ok"] and "refused for good" in answer["error"] and refusal in answer["error"]
    assert len(rig.recorded.from_client("A")) == 1  # a permanent refusal: no second Logon


@pytest.mark.parametrize("fault", [None, "no-heartbeats"])
def test_reference_client_heartbeats_at_its_interval_unless_told_not_to(rig: Rig, fault: str | None) -> None:
    heartbeat = 1
    rig.launch(REFERENCE, heartbeat=heartbeat, fault=fault)
    logon = rig.recorded.message(sent("A"))
    window_end = logon.at + 2 * heartbeat

    def own_heartbeat(m: Msg) -> bool:  # not the answer to a TestRequest (that carries its 112)
        return sent("0", after=logon.at)(m) and 112 not in m.fields

    if fault is None:
        assert rig.recorded.message(own_heartbeat, timeout=2 * heartbeat + 5).at <= window_end
        return
    # the window is over, and the session still up: the simulator still talks on that connection
    rig.recorded.message(lambda m: m.connection == logon.connection and m.at > window_end + 0.5, timeout=15)
    assert not [m for m in rig.recorded.wire if own_heartbeat(m) and m.at <= window_end]


def test_reference_client_resets_and_reconciles_after_a_gap_on_nr(rig: Rig) -> None:
    client = rig.launch(REFERENCE)
    first = place(client)
    state_until(client, rig.recorded, lambda s: order_in(s, first)["status"] == "new")
    logon = rig.recorded.message(sent("A"))

    rig.sim.faults.drop_outbound(rig.key.key_id, 1)
    second = place(client, price="0.39")  # its PendingNew is dropped: the New after it shows the gap
    logout = rig.recorded.message(sent("5", after=logon.at))
    assert "gap" in logout.fields[58]
    again = rig.recorded.message(lambda m: sent("A")(m) and m.connection != logon.connection)
    assert (again.fields[141], again.fields[34]) == ("Y", "1")
    orders = rig.recorded.rest_call(lambda r: r.path.startswith("/trade-api/v2/portfolio/orders") and r.at >= again.at)
    fills = rig.recorded.rest_call(lambda r: r.path.startswith("/trade-api/v2/portfolio/fills") and r.at >= again.at)
    assert orders.key_id == rig.key.key_id and (orders.status, fills.status) == (200, 200)

    third = place(client, price="0.38")  # held until the reads above were done
    assert rig.recorded.message(sent("D", t11=third)).at >= max(orders.at, fills.at)
    assert rig.recorded.from_client("2") == []  # never a ResendRequest on KalshiNR
    state = state_until(client, rig.recorded, lambda s: order_in(s, third)["status"] == "new")
    assert order_in(state, second)["status"] == "new" and order_in(state, second)["order_id"]


# --- the runner's verdicts on the clients (conformance.runner) ------------------------------------------

PROFILE = Profile(client="conformance clients test", features=frozenset({"instructions", "state", "mass_cancel"}))
# The scenarios that judge the reference client's faults, and which of them each fault must FAIL.
FAULT_SCENARIOS = ("kalshi/logon/01", "kalshi/logon/03", "kalshi/hb/01", "kalshi/hb/02", "kalshi/seq-nr/01",
                   "kalshi/seq-nr/02", "kalshi/seq-all/01", "kalshi/ord/05")
FAILS = {
    "wrong-salt": {"kalshi/logon/01"},
    "stale-signature-time": {"kalshi/logon/01"},
    # and kalshi/logon/03, where it logs on once per phase: the always-on rule P4 sees Logons that
    # start again at 34=1 without 141=Y
    "no-reset-nr": {"kalshi/logon/01", "kalshi/seq-nr/01", "kalshi/logon/03"},
    "resend-on-nr": {"kalshi/seq-nr/02"},
    "ignore-gap": {"kalshi/seq-nr/02"},
    "no-heartbeats": {"kalshi/hb/01"},
    "ignore-test-request": {"kalshi/hb/02"},
    "reconnect-forever": {"kalshi/logon/03"},
    "new-clordid-on-unknown": {"kalshi/ord/05"},
    "double-count-possdup": {"kalshi/seq-all/01"},
}
# At the runner's HeartBtInt of 4 s the simulator's own TestRequest (after 1.2 x 4 s of silence,
# on QuickFIX's one-second timer) is answered 4.8 to 6 s after the client last spoke: around
# kalshi/hb/01's 5.4 s limit. At 15 s the gap without heartbeats (18 s and more) is always past it
# (17.5 s); the client chooses its HeartBtInt and is judged by the 108 it sent.
HEARTBEAT_FOR = {"no-heartbeats": "15"}


def client_command(module: str, *args: str, heartbeat: str | None = None) -> str:
    """A client command as a firm would give it to the runner (run through the shell)."""
    env = f"KALSHI_FIX_HEARTBEAT_INTERVAL={heartbeat} " if heartbeat else ""
    return f"cd {shlex.quote(str(ROOT))} && {env}exec {shlex.quote(sys.executable)} -m {module} {shlex.join(args)}".rstrip()


async def verdicts_of(command: str, scenarios: list[str], work_dir: Path, **options: Any) -> dict[str, ScenarioResult]:
    outcome = await run(load_library(), PROFILE, command, only=scenarios, work_dir=work_dir, **options)
    return {r.scenario: r for r in outcome.results}


def shown(results: dict[str, ScenarioResult]) -> str:
    return "\n".join(f"{sid} {r.verdict.value}: {r.reason}" for sid, r in sorted(results.items()))


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("module", ["conformance.clients.engine", "tests.conformance_client"])
async def test_every_mandatory_scenario_passes_against_the_engine_and_the_reference_client(
        tmp_path: Path, module: str) -> None:
    results = await verdicts_of(client_command(module), sorted(load_library().mandatory), tmp_path)
    rt_only = {sid for sid in results if sid.startswith("kalshi/seq-rt/")}
    assert {sid for sid, r in results.items() if r.verdict is Verdict.NA} == rt_only, shown(results)  # an NR profile
    assert all(r.verdict is Verdict.PASS for sid, r in results.items() if sid not in rt_only), shown(results)


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("fault", sorted(FAILS))
async def test_each_fault_of_the_reference_client_fails_exactly_the_scenarios_that_check_it(
        tmp_path: Path, fault: str) -> None:
    command = client_command("tests.conformance_client", "--fault", fault, heartbeat=HEARTBEAT_FOR.get(fault))
    results = await verdicts_of(command, list(FAULT_SCENARIOS), tmp_path, connect_timeout=15)
    assert {sid for sid, r in results.items() if r.verdict is Verdict.FAIL} == FAILS[fault], shown(results)
    assert all(r.verdict in (Verdict.PASS, Verdict.INCONCLUSIVE) for sid, r in results.items()
               if sid not in FAILS[fault]), shown(results)
