"""The simulator's QuickFIX acceptor: every (dialect, session type, API key) session on one internal
loopback port, behind the logon gates. The gate has already checked each Logon; the acceptor runs
the session layer (heartbeats, TestRequests, sequence numbers, validation against the dictionaries).
"""

from __future__ import annotations

import logging
import socket
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

import quickfix as fix

from fixengine.dialect import Dialect
from fixengine.dictionary import build_dictionaries
from fixengine.errors import FixEngineError
from fixengine.kalshi import SessionType
from fixengine.message_log import MessageLogs, SessionMessageLog
from fixengine.framing import msg_type_of, parse, quickfix_text
from fixengine.orders.wire import first_values
from simulator.config import HOUSE_ACCOUNT, SimulatorConfig
from simulator.matching import AccountState
from simulator.order_reports import Outgoing
from simulator.venue import UnsupportedHere, Venue

log = logging.getLogger("simulator.acceptor")

EXPIRY_CHECK_S = 0.1


@dataclass(frozen=True)
class SimEvent:
    """Something the simulator wants its operator (or a test) to see."""

    kind: str  # listening, admitted, refused, logged_on, logged_out, closed
    detail: str
    key_id: str = ""
    session_type: str = ""


SimEventSink = Callable[[SimEvent], None]


def free_loopback_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True, slots=True)
class _Session:
    """What the callbacks need about one session, read once in onCreate: every binding call in a
    callback costs a GIL hand-off, so each callback makes one (``SessionID.toString()``)."""

    session_id: fix.SessionID
    begin_string: str
    session_type: SessionType
    key_id: str  # the counterparty's SenderCompID: its API key
    fixt: bool
    messages: SessionMessageLog


class SimulatorApplication(fix.Application):
    """The simulator's sessions: order entry goes to the venue, its reports go back out."""

    def __init__(self, sink: SimEventSink, messages: MessageLogs, venue: Venue):
        super().__init__()
        self._sink = sink
        self._messages = messages
        self._venue = venue
        self._sessions: dict[str, _Session] = {}  # keyed by SessionID.toString()
        self.logon_flags: dict[str, dict[int, str]] = {}  # SessionID string -> Logon fields

    def send(self, outgoing: list[Outgoing]) -> None:
        """Send reports (outside the venue's lock); a session that is not logged on misses them,
        as on Kalshi's non-retransmission sessions."""
        for item in outgoing:
            session = self._sessions.get(item.session_id)
            if session is None:
                continue
            text = quickfix_text(session.begin_string, item.msg_type, item.fields)
            fix.Session.sendToTarget(fix.Message(text, False), session.session_id)

    def _safe(self, what: str, fn: Callable[[], None]) -> None:
        try:
            fn()
        except Exception:  # noqa: BLE001 - never let an exception cross into C++
            log.error("error in simulator callback %s:\n%s", what, traceback.format_exc())

    def onCreate(self, sessionID: fix.SessionID) -> None:
        begin, ours, theirs = (
            sessionID.getBeginString().getValue(),
            sessionID.getSenderCompID().getValue(),
            sessionID.getTargetCompID().getValue(),
        )
        self._sessions[sessionID.toString()] = _Session(
            fix.SessionID(begin, ours, theirs), begin, SessionType(ours), theirs, sessionID.isFIXT(),
            self._messages.for_session(f"{begin}-{ours}-{theirs}"),
        )

    def onLogon(self, sessionID: fix.SessionID) -> None:
        key = sessionID.toString()
        session = self._sessions[key]
        self._venue.logged_on(key, self.logon_flags.get(key, {}))
        self._safe("onLogon", lambda: self._sink(SimEvent("logged_on", session.begin_string, session.key_id, session.session_type.value)))

    def onLogout(self, sessionID: fix.SessionID) -> None:
        key = sessionID.toString()
        session = self._sessions[key]
        self._safe("onLogout(8013)", lambda: self.send(self._venue.logged_out(key)))
        self._safe("onLogout", lambda: self._sink(SimEvent("logged_out", session.begin_string, session.key_id, session.session_type.value)))

    def toAdmin(self, message: fix.Message, sessionID: fix.SessionID) -> None:
        self._sessions[sessionID.toString()].messages.outgoing(message.toString())

    def fromAdmin(self, message: fix.Message, sessionID: fix.SessionID) -> None:
        key = sessionID.toString()
        raw = message.toString()
        self._sessions[key].messages.incoming(raw)
        if msg_type_of(raw) == "A":
            fields = first_values(parse(raw.encode("latin-1")))
            self.logon_flags[key] = {tag: fields[tag] for tag in _LOGON_FLAGS if tag in fields}

    def toApp(self, message: fix.Message, sessionID: fix.SessionID) -> None:
        self._sessions[sessionID.toString()].messages.outgoing(message.toString())

    def fromApp(self, message: fix.Message, sessionID: fix.SessionID) -> None:
        key = sessionID.toString()
        session = self._sessions[key]
        raw = message.toString()
        session.messages.incoming(raw)
        fields = first_values(parse(raw.encode("latin-1")))
        try:
            outgoing = self._venue.handle(key, session.session_type, session.key_id, fields[35], fields, session.fixt)
        except UnsupportedHere:
            raise fix.UnsupportedMessageType() from None
        self.send(outgoing)


_LOGON_FLAGS = (141, 8013, 20126, 20127, 20200, 21003, 21005, 21007, 21008, 21011, 21012, 21026, 21027)


def acceptor_settings(
    config: SimulatorConfig, key_ids: list[str], port: int
) -> tuple[fix.SessionSettings, list[fix.SessionID]]:
    # Only the sessions some listener can reach: QuickFIX copies the dictionaries for each one.
    served: dict[Dialect, set[SessionType]] = {}
    for spec in config.listener_specs():
        served.setdefault(spec.dialect, set()).update(spec.session_types)
    dictionaries = {d: build_dictionaries(d, config.data_dir / "dictionaries") for d in served}
    settings = fix.SessionSettings()
    defaults = fix.Dictionary()
    defaults.setString("ConnectionType", "acceptor")
    defaults.setInt("SocketAcceptPort", port)
    defaults.setString("SocketReuseAddress", "Y")
    # QuickFIX listens on every interface; only the gates on this host may reach it.
    defaults.setString("AllowedRemoteAddresses", "127.0.0.1")
    defaults.setString("NonStopSession", "Y")
    defaults.setString("StartTime", "00:00:00")
    defaults.setString("EndTime", "00:00:00")
    defaults.setString("UseDataDictionary", "Y")
    defaults.setString("TimestampPrecision", "3")
    defaults.setString("MillisecondsInTimeStamp", "Y")
    defaults.setString("CheckLatency", "Y")
    defaults.setInt("MaxLatency", max(1, int(config.sending_time_tolerance)))
    defaults.setString("SocketNodelay", "Y")
    settings.set(defaults)
    session_ids = []
    for dialect, session_types in served.items():
        paths = dictionaries[dialect]
        for session_type in sorted(session_types, key=lambda t: t.value):
            for key in key_ids:
                d = fix.Dictionary()
                if dialect.is_fixt:
                    d.setString("DefaultApplVerID", "FIX.5.0SP2")
                    d.setString("TransportDataDictionary", str(paths.session))
                    d.setString("AppDataDictionary", str(paths.application))
                else:
                    d.setString("DataDictionary", str(paths.session))
                session_id = fix.SessionID(dialect.begin_string, session_type.value, key)
                settings.set(session_id, d)
                session_ids.append(session_id)
    return settings, session_ids


class Acceptor:
    """The QuickFIX SocketAcceptor and the Python thread its event loop runs on."""

    def __init__(self, config: SimulatorConfig, accounts: dict[str, Decimal], sink: SimEventSink):
        key_ids = sorted(accounts)
        self.port = free_loopback_port()
        self._messages = MessageLogs(config.data_dir / "log", enabled=config.message_log, prefix="simulator.messages")
        balances = dict(accounts)
        if any(seed.account == HOUSE_ACCOUNT for seed in config.seed_orders):
            balances.setdefault(HOUSE_ACCOUNT, config.house_balance)
        self.venue = Venue([m.market() for m in config.markets], [AccountState(k, b) for k, b in balances.items()])
        self.venue.seed(config.seed_orders)
        self.application = SimulatorApplication(sink, self._messages, self.venue)
        self._settings, self._session_ids = acceptor_settings(config, key_ids, self.port)
        self._store = fix.MemoryStoreFactory()
        # No QuickFIX log factory: the application logs messages itself (see fixengine.message_log).
        try:
            self._acceptor = fix.SocketAcceptor(self.application, self._store, self._settings)
        except fix.ConfigError as exc:
            raise FixEngineError(f"QuickFIX refused the simulator's session settings: {exc}") from None
        # block() on a Python thread: start()'s native thread crashes on stop in these bindings.
        self._thread = threading.Thread(target=self._acceptor.block, name="simulator-quickfix", daemon=True)
        self._stopping = threading.Event()
        self._expiry = threading.Thread(target=self._expire_orders, name="simulator-expiry", daemon=True)

    def _expire_orders(self) -> None:
        """DAY and GTD orders expire on time even when nothing else happens in their market."""
        while not self._stopping.wait(EXPIRY_CHECK_S):
            try:
                self.application.send(self.venue.expire())
            except Exception:  # noqa: BLE001 - keep expiring; say what went wrong
                log.error("order expiry failed:\n%s", traceback.format_exc())

    def start(self) -> None:
        self._messages.start()
        self._thread.start()
        self._expiry.start()

    def logout(self, key_id: str, text: str) -> int:
        """Log out every session of ``key_id`` that is logged on, with ``text`` in the Logout."""
        count = 0
        for session_id in self._session_ids:
            if session_id.getTargetCompID().getValue() != key_id:
                continue
            session = fix.Session.lookupSession(session_id)
            if session is not None and session.isLoggedOn():
                session.logout(text)
                count += 1
        return count

    def stop(self) -> None:
        self._stopping.set()
        self._expiry.join(timeout=5)
        self._acceptor.stop(True)
        self._thread.join(timeout=10)
        self._messages.stop()
