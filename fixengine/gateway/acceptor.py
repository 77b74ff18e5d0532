"""The gateway's OMS side in QuickFIX: FIX 4.4 acceptors (one per port), their sessions' stores,
and what their callbacks hand to the asyncio loop.

QuickFIX does the OMS sessions' FIX: logon, heartbeats, sequence numbers, validation against
FIX 4.4 (a malformed message is rejected at the session level and never reaches the gateway), and
retransmission: every message sent to an OMS is kept in the session's FileStore before it goes on
the wire, and a ResendRequest over any range is answered from there with PossDup copies, also for
what was sent while the OMS was away. QuickFIX is polled in the gateway's loop
(``fixengine.fix.polled``); the callbacks only convert and hand off (``OmsReceived`` ...), and the
gateway does the rest after each pass.

Each port has its own acceptor, so that the clients of one port never depend on another's.

The public ports are the gate's (``fixengine.gateway.gate``): it authenticates each Logon before
QuickFIX sees it and relays admitted connections to the port's QuickFIX acceptor, which listens on
a port of its own picked at start. QuickFIX 1.16 listens on every interface (it has no bind address
setting), so it admits only Logons that carry the gate's token (554, a secret of this process).
The gate runs in the gateway's loop too, see ``OmsAcceptors``.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import re
import secrets
import socket
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import quickfix as fix

from fixengine.config import GatewayConfig, OmsClientConfig
from fixengine.errors import FixEngineError, KeyLoadError
from fixengine.fix.dictionary import base_dictionary_dir
from fixengine.fix.framing import msg_type_of, quickfix_text, seq_num_of
from fixengine.fix.message_log import MessageLogs, SessionMessageLog
from fixengine.fix.polled import PolledAcceptor
from fixengine.fix.quickfix import GuardedApplication, LoopInbox, common_defaults, create
from fixengine.fix.tags import (
    MSG_LOGON,
    MSG_TYPE,
    POSS_DUP_FLAG,
)
from fixengine.gateway.gate import OmsGate, read_passwords, tls_context
from fixengine.gateway.logon_check import PASSWORD, LogonCheck

log = logging.getLogger("fixengine.gateway")

BEGIN_STRING = "FIX.4.4"
_POSS_DUP = f"\x01{POSS_DUP_FLAG}=Y\x01"
_LOGON = f"\x01{MSG_TYPE}={MSG_LOGON}\x01"
_PASSWORD_VALUE = re.compile(f"(\x01{PASSWORD}=)[^\x01]*")


# --- what the callbacks hand to the loop ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OmsReceived:
    """An application message from an OMS, as QuickFIX accepted it (valid FIX 4.4, in sequence)."""

    client: str
    seq: int  # its MsgSeqNum (34)
    msg_type: str
    raw: str
    poss_dup: bool  # PossDupFlag (43) Y: a resend of a message the OMS sent before


@dataclass(frozen=True, slots=True)
class OmsLoggedOn:
    client: str


@dataclass(frozen=True, slots=True)
class OmsLoggedOut:
    client: str


OmsSessionEvent = OmsReceived | OmsLoggedOn | OmsLoggedOut


def session_id(client: OmsClientConfig) -> fix.SessionID:
    """The gateway's side of a client's session: it sends as the CompID the OMS addresses."""
    return fix.SessionID(BEGIN_STRING, client.target_comp_id, client.sender_comp_id)


class OmsApplication(GuardedApplication):
    """QuickFIX callbacks of the OMS sessions: log the message, hand an event to ``emit``.

    ``clients`` maps a SessionID's string to the client's name. A subclass may answer application
    messages itself (``on_app``), as the session-level conformance runner does."""

    def __init__(self, clients: Mapping[str, str], emit: Callable[[OmsSessionEvent], None],
                 logs: Mapping[str, SessionMessageLog]):
        super().__init__(log)
        self._clients = dict(clients)
        self._emit = emit
        self._logs = dict(logs)
        # Set by ``OmsAcceptors``: a Logon must carry it in 554, i.e. have come through the gate.
        self.gate_token: bytes | None = None

    def serve(self, session_id: str, client: str, messages: SessionMessageLog) -> None:
        """Answer to ``session_id`` as ``client`` from now on (a client added while running)."""
        self._logs[session_id] = messages
        self._clients[session_id] = client

    def onCreate(self, session_id: fix.SessionID) -> None:
        pass

    def onLogon(self, session_id: fix.SessionID) -> None:
        client = self._clients.get(session_id.toString())
        if client is not None:
            self.guard("onLogon", lambda: self._emit(OmsLoggedOn(client)))

    def onLogout(self, session_id: fix.SessionID) -> None:
        client = self._clients.get(session_id.toString())
        if client is not None:
            self.guard("onLogout", lambda: self._emit(OmsLoggedOut(client)))

    def toAdmin(self, message: fix.Message, session_id: fix.SessionID) -> None:
        self._record(session_id, message, outgoing=True)

    def fromAdmin(self, message: fix.Message, session_id: fix.SessionID) -> None:
        self._record(session_id, message, outgoing=False)
        token = self.gate_token
        if token is not None and message.getHeader().getField(MSG_TYPE) == MSG_LOGON:
            given = message.getField(PASSWORD).encode() if message.isSetField(PASSWORD) else b""
            if not hmac.compare_digest(given, token) and not self._logged_on(session_id):
                # Someone reached QuickFIX's own port, not the gate: refused (QuickFIX counts its
                # Logout). A Logon in a session already logged on (141=Y, a reset) came on a
                # connection the gate admitted, relayed as the OMS wrote it. The 1.16 bindings
                # keep the traceback of every exception raised here (about 1 kB each, and the
                # acceptor with it): the ports are to be firewalled, this is the second line.
                log.warning("a Logon as %s reached the OMS acceptor without passing the gate: refused", session_id)
                raise fix.RejectLogon("logon refused")

    @staticmethod
    def _logged_on(session_id: fix.SessionID) -> bool:
        session = fix.Session.lookupSession(session_id)
        return session is not None and session.isLoggedOn()

    def toApp(self, message: fix.Message, session_id: fix.SessionID) -> None:
        self._record(session_id, message, outgoing=True)

    def fromApp(self, message: fix.Message, session_id: fix.SessionID) -> None:
        raw = message.toString()
        key = session_id.toString()  # once: each binding call here costs the OMS's round trip
        msg_type = msg_type_of(raw)
        messages = self._logs.get(key)
        if messages is not None:
            messages.incoming(raw, msg_type)
        client = self._clients.get(key)
        if client is None:
            return
        self.on_app(client, message, raw, msg_type)

    def on_app(self, client: str, message: fix.Message, raw: str, msg_type: str) -> None:
        """An application message: handed to the gateway (a subclass may raise QuickFIX's
        ``UnsupportedMessageType`` and the like here, as QuickFIX's own applications do). Read
        from the text QuickFIX gave, not field by field through the bindings."""
        self.guard("fromApp", lambda: self._emit(
            OmsReceived(client, seq_num_of(raw), msg_type, raw, _POSS_DUP in raw)))

    def _record(self, session_id: fix.SessionID, message: fix.Message, *, outgoing: bool) -> None:
        messages = self._logs.get(session_id.toString())
        if messages is not None:
            raw = message.toString()
            if _LOGON in raw:  # the gate's token (554) is a secret
                raw = _PASSWORD_VALUE.sub(r"\g<1><redacted>", raw)
            (messages.outgoing if outgoing else messages.incoming)(raw)


def acceptor_settings(gateway: GatewayConfig, clients: Iterable[OmsClientConfig], store_dir: Path,
                      accept_port: int | None = None) -> fix.SessionSettings:
    """QuickFIX settings of one port's acceptor (its clients all share ``port``), listening on
    ``accept_port`` (default: the clients' port; behind the gate, a port of its own)."""
    clients = list(clients)
    ports = {c.port for c in clients}
    if len(ports) != 1:
        raise ValueError(f"one acceptor serves one port, not {sorted(ports)}")
    settings = fix.SessionSettings()
    defaults = common_defaults("acceptor")
    defaults.setInt("SocketAcceptPort", clients[0].port if accept_port is None else accept_port)
    defaults.setString("SocketReuseAddress", "Y")
    defaults.setString("FileStorePath", str(store_dir))
    # The OMS's own FIX 4.4, as QuickFIX ships it (no Kalshi additions): what it sends is checked
    # against it before the gateway sees it.
    defaults.setString("DataDictionary", str(base_dictionary_dir() / "FIX44.xml"))
    settings.set(defaults)
    for c in clients:
        d = fix.Dictionary()
        d.setString("ResetOnLogon", "Y" if c.reset_on_logon else "N")
        settings.set(session_id(c), d)
    return settings


class OmsAcceptors:
    """The OMS acceptors of a gateway, one per port, the gate in front of them, and the inbox their
    callbacks fill.

    ``on_events`` is called in the loop with what the callbacks saw, in order, in batches.

    The gate runs in the gateway's loop, as QuickFIX does: a relayed message then reaches QuickFIX
    on the next turn of the loop, with no thread to wake and no GIL to trade. On a thread of its
    own (as before QuickFIX was polled) it took 114 µs at the median from the gate reading an
    order to QuickFIX's pass starting, against 38 µs in the loop, and the p99 of a whole round
    trip through the gateway was 25-30% higher (benchmarks/gateway_roundtrip.py)."""

    def __init__(self, gateway: GatewayConfig, clients: Iterable[OmsClientConfig], store_dir: Path,
                 on_events: Callable[[list[OmsSessionEvent]], None], *, log_dir: Path | None = None,
                 application: Callable[..., OmsApplication] = OmsApplication):
        self._gateway, self._store_dir = gateway, store_dir
        self._clients: dict[str, OmsClientConfig] = {}
        self._session_ids: dict[str, fix.SessionID] = {}
        self._on_events = on_events
        self._inbox: LoopInbox[OmsSessionEvent] = LoopInbox(self._deliver)
        self._logged_on: set[str] = set()
        self._all_out: asyncio.Future[None] | None = None  # resolved when the last OMS has logged out
        self._messages = MessageLogs(log_dir or store_dir, enabled=log_dir is not None, prefix="fixengine.oms")
        self._app = application({}, self._inbox.put, {})
        token = secrets.token_urlsafe(24)
        self._token = token
        self._app.gate_token = token.encode()
        self._check = LogonCheck(failed_logon_limit=gateway.failed_logon_limit, lockout=gateway.lockout)
        self._gate = OmsGate(self._check, host=gateway.host, token=token, ssl_context=tls_context(gateway))
        self._internal: dict[int, int] = {}  # public port -> its QuickFIX acceptor's port
        store_dir.mkdir(parents=True, exist_ok=True)
        self._acceptors: dict[int, PolledAcceptor] = {}
        self._loop: asyncio.AbstractEventLoop | None = None  # set at start
        self.add(clients)

    def add(self, clients: Iterable[OmsClientConfig]) -> None:
        """Serve more clients, each on a port no running acceptor has: a new acceptor per port, so
        that no client already connected is touched. Their passwords are read now (``KeyLoadError``
        naming the file, before anything changes)."""
        clients = list(clients)
        by_port: dict[int, list[OmsClientConfig]] = {}
        for c in clients:
            if c.port in self._acceptors:
                raise ValueError(f"port {c.port} already has a running acceptor; a client joins it at a restart")
            by_port.setdefault(c.port, []).append(c)
        passwords = read_passwords(clients)
        for port, members in sorted(by_port.items()):
            for c in members:
                sid = session_id(c)
                self._clients[c.name], self._session_ids[c.name] = c, sid
                self._app.serve(sid.toString(), c.name, self._messages.for_session(f"oms-{c.name}"))
            self._internal[port] = internal = _unused_port()
            settings = acceptor_settings(self._gateway, members, self._store_dir, accept_port=internal)
            store = fix.FileStoreFactory(settings)
            self._acceptors[port] = PolledAcceptor(
                partial(create, fix.SocketAcceptor, self._app, store, settings, "the gateway's OMS"),
                [internal], self._inbox.drain, f"quickfix-oms-{port}",
            )

        self._check.serve(clients, passwords)
        self._gate.serve(clients)
        if self._loop is not None:
            for port in sorted(by_port):
                self._acceptors[port].start(self._loop)
                try:
                    self._gate.bind(port, self._internal[port])
                except FixEngineError as exc:  # a reload must not bring the gateway down
                    log.error("%s; its clients (%s) cannot connect until a restart", exc,
                              ", ".join(c.name for c in by_port[port]))

    def reconfigure(self, clients: Iterable[OmsClientConfig]) -> list[str]:
        """Clients already served, changed by a reload: their passwords are read again, and their
        allowed_addresses and slow_consumer_timeout apply, from their next connection (the
        timeout: from the next time they fall behind). A password file that cannot be read keeps
        the password the client had. One line per client whose password could not be read."""
        known = [c for c in clients if c.name in self._clients]
        said, passwords = [], {}
        for c in known:
            try:
                passwords.update(read_passwords([c]))
            except KeyLoadError as exc:
                said.append(f"{c.name}: {exc}; its previous password stays")
                passwords[c.name] = self._check.password(c.name)

        self._check.serve(known, passwords)
        self._gate.serve(known)
        return said

    @property
    def ports(self) -> list[int]:
        return list(self._acceptors)

    @property
    def application(self) -> OmsApplication:
        return self._app

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Listen on the OMS ports (``FixEngineError`` if one cannot be had) and start QuickFIX,
        polled in ``loop`` (called there)."""
        for port, internal in sorted(self._internal.items()):
            try:
                self._gate.bind(port, internal)
            except Exception:
                self._gate.stop_accepting()  # those bound so far
                raise
        self._inbox.loop = self._loop = loop
        self._messages.start()
        for acceptor in self._acceptors.values():
            acceptor.start(loop)
        self._gate.start(loop)

    async def log_out(self, timeout: float = 5.0) -> None:
        """Take no new connection, log every OMS out and wait up to ``timeout`` for their
        Logouts. QuickFIX keeps running: what is sent to an OMS from now on is stored for it."""
        self._gate.stop_accepting()
        for name in self._clients:
            session = self.lookup(name)
            if session is not None and session.isLoggedOn():
                session.logout("the gateway is stopping")  # sent on the next pass of QuickFIX's timers
        self._all_out = asyncio.get_running_loop().create_future()
        if self._logged_on:
            try:
                await asyncio.wait_for(self._all_out, timeout)
            except TimeoutError:
                log.warning("OMS sessions still logged on after %.1fs: %s", timeout, ", ".join(sorted(self._logged_on)))

    async def stop(self, timeout: float = 5.0) -> None:
        """Log every OMS out (``log_out``, if not done yet), then stop QuickFIX and the gate."""
        await self.log_out(timeout)
        for acceptor in self._acceptors.values():
            await acceptor.stop()
        self._acceptors.clear()
        await self._gate.close()  # what QuickFIX's stop left: connections not logged on
        self.take_inbox()
        self._messages.stop()

    def buffered(self, client: str) -> int:
        """Bytes the gate holds for ``client``, not yet taken by its OMS (0 when not connected)."""
        return self._gate.buffered(client)

    def last_disconnect(self, client: str) -> str | None:
        """Why the client's last connection ended (``None``: none has yet), e.g. a slow consumer."""
        return self._gate.last_disconnect(client)

    def internal_port(self, port: int) -> int:
        """The port QuickFIX's acceptor behind public ``port`` listens on."""
        return self._internal[port]

    def lookup(self, client: str) -> fix.Session | None:
        return fix.Session.lookupSession(self._session_ids[client])

    def message_log(self, client: str) -> SessionMessageLog | None:
        """The client's message log (when its last message came in and went out)."""
        return self._messages.session(f"oms-{client}")

    @property
    def message_counts(self) -> Mapping[tuple[str, str, str], int]:
        """Messages logged, by (``oms-<client>``, "in"/"out", MsgType); see ``MessageLogs.counts``."""
        return self._messages.counts

    def is_logged_on(self, client: str) -> bool:
        session = self.lookup(client)
        return session is not None and session.isLoggedOn()

    def send(self, client: str, msg_type: str, fields: list[tuple[int, str]]) -> bool:
        """Queue a message to ``client``: QuickFIX stores it (numbered) and sends it if the OMS is
        logged on; otherwise the OMS gets it by resend after its next logon."""
        message = fix.Message(quickfix_text(BEGIN_STRING, msg_type, fields), False)
        return fix.Session.sendToTarget(message, self._session_ids[client])

    def send_message(self, client: str, message: fix.Message) -> bool:
        return fix.Session.sendToTarget(message, self._session_ids[client])

    def _deliver(self, batch: list[OmsSessionEvent]) -> None:
        for event in batch:
            if isinstance(event, OmsLoggedOn):
                self._logged_on.add(event.client)
            elif isinstance(event, OmsLoggedOut):
                self._logged_on.discard(event.client)
        if not self._logged_on and self._all_out is not None and not self._all_out.done():
            self._all_out.set_result(None)
        self._on_events(batch)

    def take_inbox(self) -> None:
        """Hand over now what QuickFIX's callbacks have put in the inbox (at stop)."""
        self._inbox.drain()


def _unused_port() -> int:
    """A port free on every interface a moment ago, for a QuickFIX acceptor (which binds them all)."""
    with socket.socket() as s:
        s.bind(("", 0))
        return int(s.getsockname()[1])
