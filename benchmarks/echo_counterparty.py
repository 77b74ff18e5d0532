"""Echo counterparty: a minimal Kalshi-shaped FIX acceptor for the speed benchmark (benchmarks/speed.py).
It measures nothing itself; it is the cheapest counterparty a client can have, so that what a client
run costs is the client's own work (and, beside the simulator, what the simulator adds).

    .venv/bin/python benchmarks/echo_counterparty.py [--port 0] [--key-id ID ...] [--fix44 COMP_ID]

- a QuickFIX acceptor on the Python bindings, its event loop run with ``block()`` on a Python thread,
  MemoryStore, no message bodies kept (KalshiNR never retransmits);
- the KalshiNR session as the engine speaks it: FIXT.1.1 with FIX 5.0 SP2 (1137=9), SenderCompID
  ``KalshiNR``, TargetCompID the API key id, the project's merged Kalshi dictionaries;
- any Logon for a known key id is accepted: no logon gate, the signature (96) is not checked. QuickFIX
  1.16 has no acceptor templates, so the key ids must be named up front (``--key-id``, repeatable;
  default ``echo-bench``);
- with ``--fix44 COMP_ID``, FIX 4.4 sessions instead, as the gateway's OMS acceptor speaks: SenderCompID
  ``COMP_ID``, TargetCompIDs the ``--key-id`` values (the OMSs' CompIDs), the plain FIX 4.4 dictionary.
  An OMS's round trip through it is one FIX hop with nothing behind it, the least any FIX gateway adds
  (benchmarks/gateway_roundtrip.py measures it beside the gateway);
- every NewOrderSingle (35=D) is answered at once with one ExecutionReport New (150=0, 39=0), built
  from one string, shaped as the simulator's ack on a session with SkipPendingExecReports: ClOrdID,
  Symbol, Side, OrderQty and Price echoed, OrderID ``O<n>``, ExecID ``<n>;<n>``. No book, no matching;
  anything else is ignored.

Prints ``echo counterparty listening on 127.0.0.1: KalshiNR=PORT`` (``FIX.4.4=PORT`` with ``--fix44``)
once QuickFIX accepts connections, and runs until SIGTERM (or SIGINT), then stops QuickFIX, joins its
thread and exits 0.
"""

from __future__ import annotations

import argparse
import logging
import signal
import socket
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCHMARKS.parent))
sys.path.insert(0, str(BENCHMARKS))

import quickfix as fix
from clients.common import UtcStamp

from fixengine.fix.dialect import APPL_VER_ID_FIX50SP2, Dialect
from fixengine.fix.dictionary import (
    DictionaryPaths,
    base_dictionary_dir,
    build_dictionaries,
)
from fixengine.fix.framing import encode
from fixengine.fix.quickfix import (
    GuardedApplication,
    Runner,
    common_defaults,
    create,
    set_dictionaries,
)
from fixengine.kalshi.facts import SessionType

log = logging.getLogger("benchmark.echo")

SENDER = SessionType.NR.value  # "KalshiNR"
DEFAULT_KEY_ID = "echo-bench"
# A session of its own, logged on only while QuickFIX stops (the acceptor stop race, see stop_holder).
STOP_HOLDER = "echo-stop-holder"
LISTEN_TIMEOUT_S = 10.0
HOLD_TIMEOUT_S = 2.0

# The fields the ack echoes, as they appear in the text QuickFIX hands over (SOH tag =).
_NEW_ORDER = "\x0135=D\x01"
_CL_ORD_ID, _SYMBOL, _SIDE, _ORDER_QTY, _PRICE = "\x0111=", "\x0155=", "\x0154=", "\x0138=", "\x0144="


def dialect_of(fix44: str | None) -> Dialect:
    """FIX 4.4 with ``--fix44``, else Kalshi's FIXT.1.1."""
    return Dialect.FIX44 if fix44 else Dialect.FIXT11


def free_port() -> int:
    """A port nothing listens on now (the OS's pick); QuickFIX binds it right after."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _value(raw: str, tag: str) -> str:
    start = raw.index(tag) + len(tag)
    return raw[start : raw.index("\x01", start)]


class EchoApplication(GuardedApplication):
    """Answers each NewOrderSingle with its ack, on QuickFIX's thread; nothing else."""

    def __init__(self, begin_string: str) -> None:
        super().__init__(log)
        self._begin_string = begin_string
        self._orders = 0  # QuickFIX's one thread runs every callback: no lock needed
        self._stamp = UtcStamp()
        self._logged_on: set[str] = set()  # TargetCompIDs (key ids) logged on
        self._logged_on_changed = threading.Condition()

    def ack_text(self, raw: str) -> str:
        """The ExecutionReport New for the NewOrderSingle ``raw``, as text for ``fix.Message(text, False)``
        (QuickFIX writes the header, BodyLength and CheckSum when it sends it)."""
        self._orders += 1
        n = self._orders
        qty = _value(raw, _ORDER_QTY)
        return (
            f"8={self._begin_string}\x019=0\x0135=8\x01"
            f"37=O{n}\x0111={_value(raw, _CL_ORD_ID)}\x0117={n};{n}\x01150=0\x0139=0\x01"
            f"55={_value(raw, _SYMBOL)}\x0154={_value(raw, _SIDE)}\x0138={qty}\x0144={_value(raw, _PRICE)}\x01"
            f"151={qty}\x0114=0.00\x016=0\x0160={self._stamp()}\x0110=000\x01"
        )

    def fromApp(self, message: fix.Message, sessionID: fix.SessionID) -> None:
        # Not through ``guard``: this runs for every order, and an inline try costs nothing.
        try:
            raw = message.toString()
            if _NEW_ORDER in raw:
                fix.Session.sendToTarget(fix.Message(self.ack_text(raw), False), sessionID)
        except Exception:  # noqa: BLE001 - never into C++
            log.error("error answering a message:\n%s", traceback.format_exc())

    def onCreate(self, sessionID: fix.SessionID) -> None:
        pass

    def onLogon(self, sessionID: fix.SessionID) -> None:
        key = sessionID.getTargetCompID().getValue()
        with self._logged_on_changed:
            self._logged_on.add(key)
            self._logged_on_changed.notify_all()

    def onLogout(self, sessionID: fix.SessionID) -> None:
        with self._logged_on_changed:
            self._logged_on.discard(sessionID.getTargetCompID().getValue())

    def wait_logged_on(self, key_id: str, timeout: float) -> bool:
        with self._logged_on_changed:
            return self._logged_on_changed.wait_for(lambda: key_id in self._logged_on, timeout)

    def toAdmin(self, message: fix.Message, sessionID: fix.SessionID) -> None:
        pass

    def fromAdmin(self, message: fix.Message, sessionID: fix.SessionID) -> None:
        pass  # any Logon goes: no signature check

    def toApp(self, message: fix.Message, sessionID: fix.SessionID) -> None:
        pass


def acceptor_settings(port: int, key_ids: list[str], dictionary_dir: Path, fix44: str | None = None) -> fix.SessionSettings:
    """One KalshiNR session per key id (and the stop holder's), on the shared defaults; with
    ``fix44``, one FIX 4.4 session per key id as ``fix44`` on the plain dictionary."""
    dialect = dialect_of(fix44)
    if fix44:
        plain = base_dictionary_dir() / "FIX44.xml"
        paths = DictionaryPaths(session=plain, application=plain)
    else:
        paths = build_dictionaries(dialect, dictionary_dir)
    settings = fix.SessionSettings()
    defaults = common_defaults("acceptor")
    defaults.setInt("SocketAcceptPort", port)
    defaults.setString("SocketReuseAddress", "Y")
    # QuickFIX listens on every interface; the clients are on this host.
    defaults.setString("AllowedRemoteAddresses", "127.0.0.1")
    # KalshiNR never retransmits: keep sequence numbers, not messages (as the engine's side does).
    defaults.setString("PersistMessages", "N")
    settings.set(defaults)
    for key_id in [*key_ids, STOP_HOLDER]:
        session = fix.Dictionary()
        set_dictionaries(session, dialect, paths)
        settings.set(fix.SessionID(dialect.begin_string, fix44 or SENDER, key_id), session)
    return settings


def wait_listening(port: int, quickfix_thread: threading.Thread) -> None:
    """Return once QuickFIX accepts connections on ``port``. It binds on its own thread, in
    ``block()``, and says nothing when it has: connect to see, and between tries wait on its
    thread (which ends at once if QuickFIX could not start)."""
    deadline = time.monotonic() + LISTEN_TIMEOUT_S
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except ConnectionRefusedError:
            if not quickfix_thread.is_alive():
                raise SystemExit(f"echo counterparty: QuickFIX stopped before listening on port {port}") from None
            if time.monotonic() > deadline:
                raise SystemExit(f"echo counterparty: QuickFIX not listening on port {port} after {LISTEN_TIMEOUT_S:g}s") from None
            quickfix_thread.join(0.005)


@contextmanager
def stop_holder(app: EchoApplication, port: int, fix44: str | None) -> Iterator[None]:
    """The acceptor stop race (``fixengine.fix.quickfix.Runner.stop``): one session logged on while
    QuickFIX stops, over a raw socket (no signature needed here)."""
    stamp = UtcStamp()()
    logon = [(35, "A"), (34, "1"), (49, STOP_HOLDER), (52, stamp), (56, fix44 or SENDER), (98, "0"), (108, "30"),
             (141, "Y"), *([] if fix44 else [(1137, APPL_VER_ID_FIX50SP2)])]
    holder: socket.socket | None = None
    try:
        holder = socket.create_connection(("127.0.0.1", port), timeout=HOLD_TIMEOUT_S)
        holder.sendall(encode(dialect_of(fix44).begin_string, logon))
        if not app.wait_logged_on(STOP_HOLDER, HOLD_TIMEOUT_S):
            log.warning("no session could be held logged on: QuickFIX may not stop cleanly")
    except OSError as exc:
        log.warning("no session could be held logged on (%s): QuickFIX may not stop cleanly", exc)
    try:
        yield
    finally:
        if holder is not None:
            holder.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="KalshiNR port; 0: a free one")
    parser.add_argument("--key-id", action="append", default=None,
                        help=f"an API key id that may log on (repeatable; default {DEFAULT_KEY_ID})")
    parser.add_argument("--fix44", metavar="COMP_ID",
                        help="speak FIX 4.4 as COMP_ID, the --key-id values being the OMSs' CompIDs")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    key_ids = args.key_id or [DEFAULT_KEY_ID]
    port = args.port or free_port()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    with tempfile.TemporaryDirectory(prefix="echo-counterparty-") as tmp:
        dialect = dialect_of(args.fix44)
        app = EchoApplication(dialect.begin_string)
        settings = acceptor_settings(port, key_ids, Path(tmp), args.fix44)
        acceptor = create(fix.SocketAcceptor, app, fix.MemoryStoreFactory(), settings, "the echo counterparty's")
        runner = Runner(acceptor, "echo-quickfix")
        runner.start()
        try:
            wait_listening(port, runner.thread)
            print(f"echo counterparty listening on 127.0.0.1: {dialect.begin_string if args.fix44 else SENDER}={port}", flush=True)
            stop.wait()
        finally:
            # Stopped and joined before the interpreter exits (a running block() thread aborts it).
            runner.stop(hold=lambda: stop_holder(app, port, args.fix44))


if __name__ == "__main__":
    main()
