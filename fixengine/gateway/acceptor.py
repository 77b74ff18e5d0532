"""The gateway's OMS side in QuickFIX: FIX 4.4 acceptors (one per port), their sessions' stores,
and what their callbacks hand to the asyncio loop.

QuickFIX does the OMS sessions' FIX: logon, heartbeats, sequence numbers, validation against
FIX 4.4 (a malformed message is rejected at the session level and never reaches the gateway), and
retransmission: every message sent to an OMS is kept in the session's FileStore before it goes on
the wire, and a ResendRequest over any range is answered from there with PossDup copies, also for
what was sent while the OMS was away. The callbacks only convert and hand off (``OmsReceived`` ...);
the gateway does the rest in the loop.

Each port has its own acceptor, so that the clients of one port never depend on another's.
QuickFIX 1.16 listens on every interface (it has no bind address setting).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import quickfix as fix

from fixengine.config import GatewayConfig, OmsClientConfig
from fixengine.fix.dictionary import base_dictionary_dir
from fixengine.fix.framing import encode, msg_type_of, quickfix_text, seq_num_of
from fixengine.fix.message_log import MessageLogs, SessionMessageLog
from fixengine.fix.quickfix import GuardedApplication, LoopInbox, Runner, common_defaults, create
from fixengine.fix.tags import (
    ENCRYPT_METHOD,
    HEART_BT_INT,
    MSG_LOGON,
    MSG_SEQ_NUM,
    MSG_TEST_REQUEST,
    MSG_TYPE,
    POSS_DUP_FLAG,
    RESET_SEQ_NUM_FLAG,
    SENDER_COMP_ID,
    SENDING_TIME,
    TARGET_COMP_ID,
    TEST_REQ_ID,
)
from fixengine.fix.timestamps import utc_timestamp

log = logging.getLogger("fixengine.gateway")

BEGIN_STRING = "FIX.4.4"
# An internal session on every port, never an OMS: logged on over loopback only while QuickFIX
# stops (the acceptor stop race, ``fixengine.fix.quickfix.Runner.stop``), so that no OMS session's
# sequence numbers are touched by it.
_POSS_DUP = f"\x01{POSS_DUP_FLAG}=Y\x01"
STOP_HOLD_SENDER = "FIXENGINE-STOP-HOLD"
STOP_HOLD_TARGET = "FIXENGINE-STOP"


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


def _hold_session_id(port: int) -> fix.SessionID:
    """One per port: QuickFIX keeps sessions in one registry per process, and an acceptor added at
    a reload must not share its hold session with another."""
    return fix.SessionID(BEGIN_STRING, f"{STOP_HOLD_TARGET}-{port}", f"{STOP_HOLD_SENDER}-{port}")


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

    def toApp(self, message: fix.Message, session_id: fix.SessionID) -> None:
        self._record(session_id, message, outgoing=True)

    def fromApp(self, message: fix.Message, session_id: fix.SessionID) -> None:
        raw = message.toString()
        key = session_id.toString()  # once: each binding call here costs the OMS's round trip
        messages = self._logs.get(key)
        if messages is not None:
            messages.incoming(raw)
        client = self._clients.get(key)
        if client is None:
            return
        self.on_app(client, message, raw)

    def on_app(self, client: str, message: fix.Message, raw: str) -> None:
        """An application message: handed to the gateway (a subclass may raise QuickFIX's
        ``UnsupportedMessageType`` and the like here, as QuickFIX's own applications do). Read
        from the text QuickFIX gave, not field by field through the bindings."""
        self.guard("fromApp", lambda: self._emit(
            OmsReceived(client, seq_num_of(raw), msg_type_of(raw), raw, _POSS_DUP in raw)))

    def _record(self, session_id: fix.SessionID, message: fix.Message, *, outgoing: bool) -> None:
        messages = self._logs.get(session_id.toString())
        if messages is not None:
            (messages.outgoing if outgoing else messages.incoming)(message.toString())


def acceptor_settings(gateway: GatewayConfig, clients: Iterable[OmsClientConfig], store_dir: Path) -> fix.SessionSettings:
    """QuickFIX settings of one port's acceptor (its clients all share ``port``)."""
    clients = list(clients)
    ports = {c.port for c in clients}
    if len(ports) != 1:
        raise ValueError(f"one acceptor serves one port, not {sorted(ports)}")
    settings = fix.SessionSettings()
    defaults = common_defaults("acceptor")
    defaults.setInt("SocketAcceptPort", clients[0].port)
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
    hold = fix.Dictionary()
    hold.setString("ResetOnLogon", "Y")
    hold.setString("PersistMessages", "N")
    settings.set(_hold_session_id(clients[0].port), hold)
    return settings


class OmsAcceptors:
    """The OMS acceptors of a gateway, one per port, and the inbox their callbacks fill.

    ``on_events`` is called in the loop with what the callbacks saw, in order, in batches."""

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
        store_dir.mkdir(parents=True, exist_ok=True)
        self._runners: dict[int, Runner] = {}
        self._started = False
        self.add(clients)

    def add(self, clients: Iterable[OmsClientConfig]) -> None:
        """Serve more clients, each on a port no running acceptor has: a new acceptor per port, so
        that no client already connected is touched."""
        by_port: dict[int, list[OmsClientConfig]] = {}
        for c in clients:
            if c.port in self._runners:
                raise ValueError(f"port {c.port} already has a running acceptor; a client joins it at a restart")
            by_port.setdefault(c.port, []).append(c)
        for port, members in sorted(by_port.items()):
            for c in members:
                sid = session_id(c)
                self._clients[c.name], self._session_ids[c.name] = c, sid
                self._app.serve(sid.toString(), c.name, self._messages.for_session(f"oms-{c.name}"))
            settings = acceptor_settings(self._gateway, members, self._store_dir)
            acceptor = create(fix.SocketAcceptor, self._app, fix.FileStoreFactory(settings), settings, "the gateway's OMS")
            self._runners[port] = runner = Runner(acceptor, f"quickfix-oms-{port}")
            if self._started:
                runner.start()

    @property
    def ports(self) -> list[int]:
        return list(self._runners)

    @property
    def application(self) -> OmsApplication:
        return self._app

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._inbox.loop = loop
        self._started = True
        self._messages.start()
        for runner in self._runners.values():
            runner.start()

    async def stop(self, timeout: float = 5.0) -> None:
        """Log every OMS out (waiting up to ``timeout`` for their answers), then stop QuickFIX."""
        for name in self._clients:
            session = self.lookup(name)
            if session is not None and session.isLoggedOn():
                session.logout("the gateway is stopping")
                # QuickFIX sends the Logout at its next one-second tick, or at once after it has
                # handled a message from the OMS: the answer to a TestRequest is one.
                self.send(name, MSG_TEST_REQUEST, [(TEST_REQ_ID, "gateway-stopping")])
        self._all_out = asyncio.get_running_loop().create_future()
        if self._logged_on:
            try:
                await asyncio.wait_for(self._all_out, timeout)
            except TimeoutError:
                log.warning("OMS sessions still logged on after %.1fs: %s", timeout, ", ".join(sorted(self._logged_on)))
        for port, runner in self._runners.items():
            await asyncio.to_thread(runner.stop, lambda port=port: self._one_session_held(port))
        self._runners.clear()
        self.take_inbox()
        self._messages.stop()

    def lookup(self, client: str) -> fix.Session | None:
        return fix.Session.lookupSession(self._session_ids[client])

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
        """Hand over now what QuickFIX's threads have put in the inbox (at stop)."""
        self._inbox.drain()

    # --- the acceptor stop race -------------------------------------------------------------------

    @contextlib.contextmanager
    def _one_session_held(self, port: int) -> Iterator[None]:
        """Keep the internal hold session logged on while QuickFIX stops (see ``Runner.stop``)."""
        holder = self._hold(port)
        try:
            yield
        finally:
            if holder is not None:
                holder.close()

    def _hold(self, port: int) -> socket.socket | None:
        hold = _hold_session_id(port)
        fields = [
            (MSG_TYPE, MSG_LOGON), (MSG_SEQ_NUM, "1"), (SENDER_COMP_ID, hold.getTargetCompID().getValue()),
            (SENDING_TIME, utc_timestamp(datetime.now(timezone.utc))), (TARGET_COMP_ID, hold.getSenderCompID().getValue()),
            (ENCRYPT_METHOD, "0"), (HEART_BT_INT, "30"), (RESET_SEQ_NUM_FLAG, "Y"),
        ]
        try:
            holder = socket.create_connection(("127.0.0.1", port), timeout=2)
            holder.sendall(encode(BEGIN_STRING, fields))
            holder.settimeout(2)
            holder.recv(4096)  # the Logon answer: the hold session is logged on
        except OSError:
            log.warning("port %d: the stop hold session could not log on; QuickFIX may not stop cleanly", port)
            return None
        session = fix.Session.lookupSession(hold)
        deadline = time.monotonic() + 2
        while session is not None and not session.isLoggedOn() and time.monotonic() < deadline:
            time.sleep(0.001)  # QuickFIX answers the Logon a moment before it counts the session logged on
        if session is None or not session.isLoggedOn():
            log.warning("port %d: the stop hold session is not logged on; QuickFIX may not stop cleanly", port)
        return holder
