"""The bare client of the speed benchmark (benchmarks/speed.py): the ``quickfix`` bindings alone, no
engine. What a client on these bindings costs at the least, the floor the engine is compared with.

    .venv/bin/python benchmarks/clients/bare.py --host 127.0.0.1 --port PORT --key-id ID --key-file PEM \\
        --ticker T --data-dir DIR [--warmup 1000] [--latency-orders N] [--rates 1000,5000] [--orders M] [--in-flight 100]

Command line and JSON report as every client's (benchmarks/clients/common.py). One KalshiNR session as
the engine speaks it (FIXT.1.1, the project's merged dictionaries, ResetSeqNumFlag, SkipPendingExecReports
21011=Y, the Logon signed with the project's signing helper so that the simulator admits it), a QuickFIX
initiator on a Python thread with ``block()``, FileStore in ``--data-dir`` (message bodies not kept on
KalshiNR, as the engine's). Orders (buy YES, 1 contract, 1-9 cents, fresh ClOrdID) are built from one
string. Acks are matched by the ClOrdID read from the raw text on QuickFIX's thread and timestamped there;
the waiting side is a plain ``threading.Event``, no asyncio, no book, no journal.

- latency: at each fixed rate, from each order's intended send time to its ack (coordinated-omission
  corrected: a stall delays every order behind it and counts);
- throughput: ``--in-flight`` orders outstanding, a new one sent from the ack's callback itself;
  the process's CPU (every thread) over that run per order.
"""

from __future__ import annotations

import itertools
import logging
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

CLIENTS = Path(__file__).resolve().parent
sys.path.insert(0, str(CLIENTS.parent.parent))
sys.path.insert(0, str(CLIENTS.parent))

import quickfix as fix

from clients.common import (
    LOGON_TIMEOUT_S,
    WARMUP_RATE,
    UtcStamp,
    cpu_seconds,
    latency_figures,
    parse_args,
    phase_timeout,
    print_report,
    throughput_figures,
)
from fixengine.fix.dialect import Dialect
from fixengine.fix.dictionary import build_dictionaries
from fixengine.fix.quickfix import (
    GuardedApplication,
    Runner,
    common_defaults,
    create,
    set_dictionaries,
)
from fixengine.kalshi.facts import SessionType
from fixengine.kalshi.signing import Signer, load_private_key

log = logging.getLogger("benchmark.bare")

BEGIN_STRING = Dialect.FIXT11.begin_string
LOGOUT_TIMEOUT_S = 5.0
_ACK = "\x01150=0\x01"  # ExecType New
_CL_ORD_ID = "\x0111="
_REFUSALS = ("\x01150=8\x01", "\x0135=9\x01", "\x0135=j\x01")  # order rejected, cancel rejected, business reject


class BenchError(RuntimeError):
    pass


class Acks:
    """Ack times by ClOrdID, written on QuickFIX's thread; ``done`` set when the count expected has
    come (or at the first problem). In the throughput run each ack also sends the next order."""

    def __init__(self) -> None:
        self.times: dict[str, float] = {}
        self.count = 0
        self.target = 0
        self.refill = 0  # orders still to send, one per ack
        self.send: Callable[[], object] = lambda: None  # the client's send_order, set by it
        self.done = threading.Event()
        self.problem: str | None = None

    def expect(self, target: int, refill: int = 0) -> None:
        """Before a phase (nothing outstanding): ``target`` acks to wait for."""
        self.count = 0
        self.target = target
        self.refill = refill
        self.done.clear()

    def ack(self, cl_ord_id: str, at: float) -> None:
        """On QuickFIX's thread: only it changes ``count`` and ``refill`` during a phase."""
        self.times[cl_ord_id] = at
        self.count += 1
        if self.refill > 0:
            self.refill -= 1
            self.send()
        if self.count == self.target:
            self.done.set()

    def fail(self, problem: str) -> None:
        if self.problem is None:
            self.problem = problem
        self.done.set()

    def wait(self, timeout: float, what: str) -> None:
        if not self.done.wait(timeout):
            raise BenchError(f"{what}: {self.count} of {self.target} acks after {timeout:g}s")
        if self.problem is not None:
            raise BenchError(f"{what}: {self.problem}")


class BareApplication(GuardedApplication):
    """QuickFIX callbacks: sign the Logon, take each ack's time and ClOrdID first thing."""

    def __init__(self, client: BareClient):
        super().__init__(log)
        self.client = client
        self.acks = client.acks

    def onCreate(self, sessionID: fix.SessionID) -> None:
        pass

    def onLogon(self, sessionID: fix.SessionID) -> None:
        self.client.logged_out.clear()
        self.client.logged_on.set()
        self.client.logon_answered.set()

    def onLogout(self, sessionID: fix.SessionID) -> None:
        self.client.logged_on.clear()
        self.client.logged_out.set()

    def toAdmin(self, message: fix.Message, sessionID: fix.SessionID) -> None:
        if message.getHeader().getField(35) == "A":
            self.guard("toAdmin(Logon)", lambda: self._sign_logon(message))

    def _sign_logon(self, message: fix.Message) -> None:
        """As the engine's application does: the Kalshi flags, then the signature of exactly what this
        Logon carries (QuickFIX has stamped 34 and 52 already)."""
        message.setField(21011, "Y")  # SkipPendingExecReports: no 150=A before each ack
        header = message.getHeader()
        sending_time, seq, target = (header.getField(tag) for tag in (52, 34, 56))
        signature = self.client.signer.sign_logon(sending_time, "A", seq, target)
        message.setField(95, str(len(signature)))  # RawDataLength
        message.setField(96, signature)  # RawData

    def fromAdmin(self, message: fix.Message, sessionID: fix.SessionID) -> None:
        msg_type = message.getHeader().getField(35)
        if msg_type in ("3", "5") and message.isSetField(58):
            text = message.getField(58)
            self.client.logout_text = text
            if msg_type == "3":
                self.acks.fail(f"the counterparty sent a Reject (35=3): {text}")
        if msg_type == "5" and not self.client.logged_on.is_set():
            self.client.logon_answered.set()  # refused: no need to wait out the logon timeout

    def toApp(self, message: fix.Message, sessionID: fix.SessionID) -> None:
        pass

    def fromApp(self, message: fix.Message, sessionID: fix.SessionID) -> None:
        at = time.perf_counter()
        # Not through ``guard``: this runs for every ack, and an inline try costs nothing.
        try:
            raw = message.toString()
            if _ACK in raw:
                start = raw.index(_CL_ORD_ID) + 4
                self.acks.ack(raw[start : raw.index("\x01", start)], at)
            else:
                self._other(raw)
        except Exception as exc:  # noqa: BLE001 - never into C++
            self.acks.fail(f"error handling a report: {exc!r}")

    def _other(self, raw: str) -> None:
        """Anything but an ack: a refusal of an order (150=8) or of a request (35=9, 35=j) fails the
        run; anything else (none is expected with 21011=Y) is not an answer to wait for."""
        if any(refusal in raw for refusal in _REFUSALS):
            self.acks.fail(f"the counterparty refused an order: {raw.replace(chr(1), '|')}")


class BareClient:
    """One QuickFIX initiator, its KalshiNR session, and the orders it sends."""

    def __init__(self, host: str, port: int, key_id: str, key_file: Path, ticker: str, data_dir: Path):
        self.signer = Signer(key_id, load_private_key(file=key_file))
        self.ticker = ticker
        self.session_id = fix.SessionID(BEGIN_STRING, key_id, SessionType.NR.value)
        self.acks = Acks()
        self.acks.send = self.send_order
        self.logged_on = threading.Event()
        self.logon_answered = threading.Event()  # logged on, or refused with a Logout
        self.logged_out = threading.Event()
        self.logout_text = ""
        self._numbers = itertools.count(1)  # next() is atomic: the main thread and QuickFIX's both send
        self._prefix = uuid.uuid4().hex[:12]  # ClOrdIDs never seen before by this counterparty
        self._stamp = UtcStamp()
        settings = fix.SessionSettings()
        defaults = common_defaults("initiator")
        defaults.setString("ReconnectInterval", "1")
        defaults.setString("LogonTimeout", "10")
        defaults.setString("LogoutTimeout", "5")
        # As the engine's initiator: Kalshi's extra fields on a report are not a reason to reject it.
        defaults.setString("ValidateUserDefinedFields", "N")
        defaults.setString("AllowUnknownMsgFields", "Y")
        settings.set(defaults)
        session = fix.Dictionary()
        session.setString("SocketConnectHost", host)
        session.setInt("SocketConnectPort", port)
        session.setInt("HeartBtInt", 30)
        session.setString("FileStorePath", str(data_dir / "store"))
        session.setString("ResetOnLogon", "Y")
        session.setString("PersistMessages", "N")  # KalshiNR never retransmits (as the engine's setting)
        set_dictionaries(session, Dialect.FIXT11, build_dictionaries(Dialect.FIXT11, data_dir / "dictionaries"))
        settings.set(self.session_id, session)
        self._app = BareApplication(self)
        initiator = create(fix.SocketInitiator, self._app, fix.FileStoreFactory(settings), settings, "the bare client's")
        self._runner = Runner(initiator, "bare-quickfix")

    def start(self) -> None:
        self._runner.start()
        if not self.logon_answered.wait(LOGON_TIMEOUT_S):
            raise BenchError(f"not logged on after {LOGON_TIMEOUT_S:g}s")
        if not self.logged_on.is_set():
            raise BenchError(f"logon refused: {self.logout_text}")

    def stop(self) -> None:
        session = fix.Session.lookupSession(self.session_id)
        if session is not None and session.isLoggedOn():
            session.logout()
            self.logged_out.wait(LOGOUT_TIMEOUT_S)
        self._runner.stop()

    def send_order(self) -> str:
        """Buy YES, 1 contract, 1-9 cents (rests on an empty book); returns its ClOrdID. From one
        string, fields as the engine writes them; QuickFIX fills in the header when it sends."""
        n = next(self._numbers)
        cl_ord_id = f"{self._prefix}{n}"
        text = (f"8={BEGIN_STRING}\x019=0\x0135=D\x0111={cl_ord_id}\x0155={self.ticker}\x0154=1\x01"
                f"60={self._stamp()}\x0138=1.00\x0140=2\x0144={1 + n % 9}\x0159=1\x0110=000\x01")
        if not fix.Session.sendToTarget(fix.Message(text, False), self.session_id):
            raise BenchError("QuickFIX did not send an order (the session is not logged on)")
        return cl_ord_id


def fixed_rate(client: BareClient, rate: int, count: int) -> dict[str, float]:
    """``count`` orders on a fixed schedule; latency from each intended send time to its ack."""
    acks = client.acks
    acks.expect(count)
    interval = 1.0 / rate
    start = time.perf_counter() + 0.05
    sent: list[tuple[str, float]] = []
    for i in range(count):
        intended = start + i * interval
        delay = intended - time.perf_counter()
        if delay > 0:
            time.sleep(delay)  # pacing the schedule, not waiting for anything
        sent.append((client.send_order(), intended))
    acks.wait(phase_timeout(count), f"{rate}/s run")
    times = acks.times
    latencies = [(times.pop(cl_ord_id) - intended) * 1e6 for cl_ord_id, intended in sent]
    return latency_figures(rate, latencies)


def in_flight(client: BareClient, count: int, window: int) -> dict[str, float]:
    """``count`` orders, ``window`` outstanding: each ack sends the next from QuickFIX's thread."""
    acks = client.acks
    first = min(window, count)
    acks.expect(count, refill=count - first)
    cpu_before, started = cpu_seconds(), time.perf_counter()
    for _ in range(first):
        client.send_order()
    acks.wait(phase_timeout(count), "throughput run")
    elapsed, cpu = time.perf_counter() - started, cpu_seconds() - cpu_before
    acks.times.clear()
    return throughput_figures(count, window, elapsed, cpu)


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    data_dir = Path(args.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    client = BareClient(args.host, args.port, args.key_id, Path(args.key_file), args.ticker, data_dir)
    try:
        client.start()
        if args.warmup:
            fixed_rate(client, WARMUP_RATE, args.warmup)
        latency = [fixed_rate(client, rate, args.latency_orders) for rate in args.rate_list]
        throughput = in_flight(client, args.orders, args.in_flight)
    except BenchError as exc:
        print(f"bare client: {exc}", file=sys.stderr)
        client.stop()
        sys.exit(1)
    client.stop()
    print_report("bare", latency, throughput)


if __name__ == "__main__":
    main()
