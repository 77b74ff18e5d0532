"""The OMS gate: the front door of each OMS port, in front of the gateway's QuickFIX acceptor.

QuickFIX counts an incoming Logon (and its own Logout answer) in the session's store before any
Python callback can refuse it, and it gives no say over a slow reader's buffers. So the public port
is the gate's: it ends TLS (with the client's certificate checked, if asked), reads the first
message itself (within ``LOGON_TIMEOUT``; garbage or silence closes the connection, logged with the
address and the reason) and decides (``logon_check``). A refused Logon is answered with a Logout
(sequence 1, CompIDs swapped, Text saying no more than the OMS may know) and never reaches QuickFIX,
so the session's sequence numbers do not move. An admitted connection is relayed byte for byte to
the internal QuickFIX acceptor on loopback; the Logon goes on without the OMS's password and with
the gate's token instead (QuickFIX's port listens on every interface: a Logon that did not come
through the gate is refused there, ``OmsApplication``).

The relay watches the client's side: while more than ``HIGH_WATER`` bytes wait for the OMS to read
them, nothing more is read from QuickFIX, so the gate holds at most about that much per
connection; and if that lasts the client's ``slow_consumer_timeout``, the connection is dropped,
logged with the client, the reason and the bytes it left unread. Meanwhile QuickFIX queues what it
cannot write in its own memory, so the timeout is what bounds that queue (its growth is the rate of
messages to the client times the timeout); dropped, the session's store still has every message
for the OMS's resend after its next Logon.

The gate is asyncio protocols on the gateway's loop, beside QuickFIX's polled acceptors, one object
per connection; the hot path is one ``write`` per chunk each way.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timezone

from fixengine.config import GatewayConfig, OmsClientConfig
from fixengine.errors import FixEngineError
from fixengine.fix.framing import FrameReader, FramingError, encode, parse
from fixengine.fix.tags import (
    BEGIN_STRING,
    BODY_LENGTH,
    CHECK_SUM,
    MSG_LOGON,
    MSG_LOGOUT,
    MSG_SEQ_NUM,
    MSG_TYPE,
    SENDER_COMP_ID,
    SENDING_TIME,
    TARGET_COMP_ID,
    TEXT,
)
from fixengine.fix.timestamps import utc_timestamp
from fixengine.gateway.logon_check import PASSWORD, Admitted, LogonCheck
from fixengine.secrets import read_private_file, read_secret

log = logging.getLogger("fixengine.gateway")

FIX44 = "FIX.4.4"
LOGON_TIMEOUT = 10.0  # seconds from accept to a whole first message (TLS handshake included)
REFUSAL_LINGER = 2.0  # seconds a refused OMS has to read our Logout (and answer it) before we close
# Bytes waiting for an OMS to read them: above HIGH_WATER the relay stops reading from QuickFIX and
# the slow-consumer clock runs; it stops once they are down to LOW_WATER.
HIGH_WATER = 256 * 1024
LOW_WATER = 64 * 1024
_MAX_LOGON_BODY = 8192  # a Logon is a few hundred bytes; a longer BodyLength is not one
_UPSTREAM_ATTEMPTS = 50  # x 50 ms: an acceptor just started by a reload may not listen yet
_BACKLOG = 128


def tls_context(gateway: GatewayConfig) -> ssl.SSLContext | None:
    """The OMS ports' TLS (1.2 or newer), or None for plain TCP. With ``tls_client_ca_file`` a
    client must present a certificate that chains to it. ``FixEngineError`` names the field."""
    if gateway.tls_cert_file is None or gateway.tls_key_file is None:
        return None
    read_private_file(gateway.tls_key_file, "gateway.tls_key_file")  # its owner alone may read it
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(gateway.tls_cert_file, gateway.tls_key_file)
    except (OSError, ssl.SSLError) as exc:
        raise FixEngineError(f"gateway.tls_cert_file / tls_key_file: cannot be used as a certificate and its key "
                             f"({gateway.tls_cert_file}, {gateway.tls_key_file}): {_why(exc)}") from None
    if gateway.tls_client_ca_file is not None:
        try:
            context.load_verify_locations(cafile=str(gateway.tls_client_ca_file))
        except (OSError, ssl.SSLError) as exc:
            raise FixEngineError(f"gateway.tls_client_ca_file: {gateway.tls_client_ca_file}: {_why(exc)}") from None
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def refusal(fields: dict[int, str], text: str, now: datetime) -> bytes:
    """The Logout answering a refused Logon: the first message of a session that never began."""
    return encode(FIX44, [
        (MSG_TYPE, MSG_LOGOUT), (MSG_SEQ_NUM, "1"), (SENDER_COMP_ID, fields.get(TARGET_COMP_ID, "")),
        (SENDING_TIME, utc_timestamp(now)), (TARGET_COMP_ID, fields.get(SENDER_COMP_ID, "")), (TEXT, text),
    ])


def for_quickfix(fields: list[tuple[int, str]], token: str) -> bytes:
    """The admitted Logon as QuickFIX gets it: the OMS's Password (554) replaced by the gate's
    token (the password never reaches QuickFIX or its logs), everything else as the OMS wrote it."""
    body = []
    for tag, value in fields:
        if tag in (BEGIN_STRING, BODY_LENGTH, CHECK_SUM, PASSWORD):
            continue
        body.append((tag, value))
    return encode(FIX44, [*body, (PASSWORD, token)])


def _why(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, ssl.SSLError):
        return exc.reason or str(exc)
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


# --- the gate ------------------------------------------------------------------------------------


class OmsGate:
    """The front doors of the OMS ports, one listening socket each, and the connections through
    them. ``bind`` is synchronous (a port in use is an error at start); ``start`` hands the sockets
    to ``loop``, the gateway's. Everything runs on that loop's thread."""

    def __init__(self, check: LogonCheck, *, host: str, token: str, ssl_context: ssl.SSLContext | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.check, self.token, self.clock = check, token, clock
        self._host, self._ssl = host, ssl_context
        self._upstream: dict[int, int] = {}  # public port -> QuickFIX's loopback port
        self._sockets: dict[int, socket.socket] = {}  # bound, not yet served
        self._servers: dict[int, asyncio.base_events.Server] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connections: set[_Connection] = set()
        self._slow_timeouts: dict[str, float] = {}  # client -> its slow_consumer_timeout
        self._links: dict[str, set[_Connection]] = {}  # client -> its relayed connections
        self._last_disconnect: dict[str, str] = {}

    # --- set-up -------------------------------------------------------------------------------------

    def serve(self, clients: Iterable[OmsClientConfig]) -> None:
        for c in clients:
            self._slow_timeouts[c.name] = c.slow_consumer_timeout

    def bind(self, port: int, upstream_port: int) -> None:
        """Listen on ``port`` at the gateway's host (served once ``start``ed), relaying to QuickFIX's
        ``upstream_port``. ``FixEngineError`` if the port cannot be had."""
        try:
            infos = socket.getaddrinfo(self._host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
            family, kind, proto, _, address = infos[0]
            sock = socket.socket(family, kind, proto)
        except OSError as exc:
            raise FixEngineError(f"gateway.host {self._host!r}: {_why(exc)}") from None
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
            sock.listen(_BACKLOG)
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            raise FixEngineError(f"cannot listen for OMSs on {self._host}:{port}: {_why(exc)}") from None
        self._upstream[port] = upstream_port
        self._sockets[port] = sock
        if self._loop is not None:
            self._serve_bound()

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Serve the ports bound so far, and those bound from now on, in ``loop`` (called there)."""
        self._loop = loop
        self._serve_bound()

    def _serve_bound(self) -> None:
        assert self._loop is not None
        for port, sock in list(self._sockets.items()):
            del self._sockets[port]
            self._loop.create_task(self._serve(port, sock))

    async def _serve(self, port: int, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        self._servers[port] = await loop.create_server(lambda: _Connection(self, port), sock=sock, backlog=_BACKLOG)

    @property
    def ports(self) -> list[int]:
        return list(self._upstream)

    def upstream_port(self, port: int) -> int:
        return self._upstream[port]

    # --- what the gate knows of a client ---------------------------------------------------------

    def buffered(self, client: str) -> int:
        """Bytes waiting for ``client`` to read them (0 when it is not connected)."""
        return sum(c.buffered() for c in list(self._links.get(client, ())))

    def last_disconnect(self, client: str) -> str | None:
        """Why ``client``'s last connection through the gate ended, if one has."""
        return self._last_disconnect.get(client)

    # --- the end -----------------------------------------------------------------------------------

    def stop_accepting(self) -> None:
        """No new connections from now on; those already made go on."""
        for server in self._servers.values():
            server.close()
        for sock in self._sockets.values():
            sock.close()
        self._sockets.clear()

    async def close(self) -> None:
        """Drop every connection left and stop listening."""
        for server in self._servers.values():
            server.close()
        for sock in self._sockets.values():
            sock.close()
        self._sockets.clear()
        for connection in list(self._connections):
            connection.end("the gateway is stopping", abort=True)
        for server in self._servers.values():
            await server.wait_closed()
        self._servers.clear()

    # --- for the connections -----------------------------------------------------------------------

    def _linked(self, connection: _Connection, client: str) -> None:
        self._links.setdefault(client, set()).add(connection)

    def _unlinked(self, connection: _Connection, client: str, reason: str) -> None:
        self._links.get(client, set()).discard(connection)
        self._last_disconnect[client] = reason


# --- one connection ----------------------------------------------------------------------------------

_HANDSHAKE, _FIRST, _REFUSED, _CONNECTING, _RELAY, _CLOSED = "handshake", "first", "refused", "connecting", "relay", "closed"


class _Connection(asyncio.Protocol):
    """One OMS connection: TLS handshake, first message, decision, then the relay to QuickFIX."""

    def __init__(self, gate: OmsGate, port: int):
        self._gate, self._port = gate, port
        self._state = _FIRST
        self._transport: asyncio.Transport | None = None
        self._upstream: asyncio.Transport | None = None
        self._frames = FrameReader(max_body=_MAX_LOGON_BODY)
        self._pending: list[bytes] = []  # for QuickFIX while its connection is being made
        self._peer, self._host = "?", ""
        self._client: str | None = None
        self._timer: asyncio.TimerHandle | None = None  # logon timeout, refusal linger, slow consumer
        self._task: asyncio.Task[None] | None = None  # the TLS handshake, then the upstream connect
        self._paused_at: float | None = None

    # --- asyncio's callbacks (the OMS's side) ------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple):
            self._host = str(peer[0])
            self._peer = f"[{peer[0]}]:{peer[1]}" if ":" in self._host else f"{peer[0]}:{peer[1]}"
        self._gate._connections.add(self)
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(LOGON_TIMEOUT, self._silent)
        if self._gate._ssl is not None:
            self._state = _HANDSHAKE
            transport.pause_reading()  # the ClientHello is start_tls's to read
            self._task = loop.create_task(self._handshake(transport, self._gate._ssl))

    def data_received(self, data: bytes) -> None:
        state = self._state
        if state is _RELAY:
            self._upstream.write(data)  # type: ignore[union-attr]
        elif state is _FIRST:
            self._frames.feed(data)
            self._take_first()
        elif state is _HANDSHAKE:
            self._frames.feed(data)  # start_tls hands data over before it returns the transport
        elif state is _CONNECTING:
            self._pending.append(data)
        elif state is _REFUSED:
            self._frames.feed(data)
            self._await_logout()

    def eof_received(self) -> bool:
        return False  # FIX has no half-closed sessions: close

    def connection_lost(self, exc: Exception | None) -> None:
        if self._state is _CLOSED:
            return
        if self._state is _HANDSHAKE:
            self.end("closed during the TLS handshake" if exc is None else f"TLS handshake failed: {_why(exc)}",
                     level=logging.WARNING)
        elif self._state is _REFUSED:
            self.end("refused")
        elif self._state is _FIRST:
            self.end("closed before a whole first message" if exc is None else f"connection lost before a Logon: {_why(exc)}",
                     level=logging.WARNING)
        else:
            self.end("closed by the OMS" if exc is None else f"connection lost: {_why(exc)}")

    def pause_writing(self) -> None:
        """More than HIGH_WATER bytes wait for the OMS: stop reading from QuickFIX, start the clock."""
        if self._upstream is not None:
            self._upstream.pause_reading()
        if self._client is not None and self._state is _RELAY:
            loop = asyncio.get_running_loop()
            self._paused_at = loop.time()
            timeout = self._gate._slow_timeouts.get(self._client, 10.0)
            self._cancel_timer()
            self._timer = loop.call_later(timeout, self._slow)

    def resume_writing(self) -> None:
        self._paused_at = None
        self._cancel_timer()
        if self._upstream is not None and self._state is _RELAY:
            self._upstream.resume_reading()

    # --- before the relay ------------------------------------------------------------------------------

    async def _handshake(self, raw: asyncio.Transport, context: ssl.SSLContext) -> None:
        loop = asyncio.get_running_loop()
        try:
            transport = await loop.start_tls(raw, self, context, server_side=True, ssl_handshake_timeout=LOGON_TIMEOUT)
        except asyncio.CancelledError:
            return  # ended meanwhile (silence, or the gateway stopping): already said why
        except (OSError, ssl.SSLError, TimeoutError, ConnectionError) as exc:
            self.end(f"TLS handshake failed: {_why(exc)}", level=logging.WARNING)
            return
        if self._state is not _HANDSHAKE or transport is None:
            return
        self._transport = transport
        self._state = _FIRST
        self._take_first()

    def _silent(self) -> None:
        what = "no TLS handshake" if self._state is _HANDSHAKE else "no whole first message"
        self.end(f"{what} within {LOGON_TIMEOUT:g} s", abort=True, level=logging.WARNING)

    def _take_first(self) -> None:
        try:
            message = self._frames.next_message()
            if message is None:
                return
            fields = parse(message)
        except FramingError as exc:
            self.end(f"not FIX: {exc}", abort=True, level=logging.WARNING)
            return
        self._cancel_timer()
        first: dict[int, str] = {}
        for tag, value in fields:
            first.setdefault(tag, value)
        if first.get(BEGIN_STRING) != FIX44 or first.get(MSG_TYPE) != MSG_LOGON:
            self.end(f"the first message is not a FIX.4.4 Logon (8={first.get(BEGIN_STRING)}, 35={first.get(MSG_TYPE)})",
                     abort=True, level=logging.WARNING)
            return
        gate = self._gate
        decision = gate.check.decide(first, self._port, self._host, gate.clock())
        if not isinstance(decision, Admitted):
            log.warning("OMS Logon from %s on port %d refused: %s", self._peer, self._port, decision.reason)
            if not decision.answer:
                self.end("refused", abort=True)
                return
            self._refuse(first, decision.text)
            return
        self._admit(decision.client, fields, bytes(self._frames.buffer))

    def _refuse(self, fields: dict[int, str], text: str) -> None:
        assert self._transport is not None
        self._state = _REFUSED
        self._transport.write(refusal(fields, text, datetime.now(timezone.utc)))
        self._timer = asyncio.get_running_loop().call_later(REFUSAL_LINGER, lambda: self.end("refused"))

    def _await_logout(self) -> None:
        try:
            while (message := self._frames.next_message()) is not None:
                if f"\x01{MSG_TYPE}={MSG_LOGOUT}\x01".encode() in message:
                    self.end("refused")  # it has read our Logout
                    return
        except FramingError:
            self.end("refused", abort=True)

    def _admit(self, client: str, fields: list[tuple[int, str]], rest: bytes) -> None:
        assert self._transport is not None
        certificate = self._transport.get_extra_info("peercert")
        subject = ""
        if certificate:
            names = [value for rdn in certificate.get("subject", ()) for key, value in rdn if key == "commonName"]
            subject = f" (certificate CN={names[0]})" if names else " (certificate)"
        log.info("OMS %s: Logon from %s on port %d admitted%s", client, self._peer, self._port, subject)
        self._client = client
        self._gate._linked(self, client)
        self._state = _CONNECTING
        self._pending = [for_quickfix(fields, self._gate.token), rest] if rest else [for_quickfix(fields, self._gate.token)]
        self._transport.pause_reading()
        self._task = asyncio.get_running_loop().create_task(self._connect())

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        port = self._gate.upstream_port(self._port)
        for attempt in range(_UPSTREAM_ATTEMPTS):
            try:
                await loop.create_connection(lambda: _Upstream(self), "127.0.0.1", port)
                break
            except ConnectionRefusedError:
                if attempt == _UPSTREAM_ATTEMPTS - 1 or self._state is _CLOSED:
                    self.end(f"the gateway's QuickFIX acceptor takes no connections on 127.0.0.1:{port}", abort=True,
                             level=logging.ERROR)
                    return
                await asyncio.sleep(0.05)
            except OSError as exc:
                self.end(f"cannot reach the gateway's QuickFIX acceptor on 127.0.0.1:{port}: {_why(exc)}", abort=True,
                         level=logging.ERROR)
                return
        upstream, transport = self._upstream, self._transport
        assert upstream is not None and transport is not None
        if self._state is _CLOSED:  # the OMS went away meanwhile
            upstream.close()
            return
        upstream.write(b"".join(self._pending))
        self._pending.clear()
        self._state = _RELAY
        transport.set_write_buffer_limits(high=HIGH_WATER, low=LOW_WATER)
        transport.resume_reading()

    # --- the relay --------------------------------------------------------------------------------------

    def _slow(self) -> None:
        assert self._transport is not None and self._paused_at is not None
        waited = asyncio.get_running_loop().time() - self._paused_at
        self.end(f"slow consumer: {self.buffered()} bytes not read for {waited:.1f} s "
                 f"(more than {HIGH_WATER} bytes waiting for that long); disconnected", abort=True, level=logging.WARNING)

    def _upstream_lost(self, exc: Exception | None) -> None:
        if self._state is not _CLOSED:
            self.end("the session ended (QuickFIX closed the connection)" if exc is None
                     else f"the gateway's QuickFIX connection was lost: {_why(exc)}")

    def buffered(self) -> int:
        transport = self._transport
        return transport.get_write_buffer_size() if transport is not None and self._state is not _CLOSED else 0

    # --- the end ------------------------------------------------------------------------------------------

    def end(self, reason: str, *, abort: bool = False, level: int = logging.INFO) -> None:
        """Close both sides, once; say why (``level``) and remember it for the client."""
        if self._state is _CLOSED:
            return
        self._state = _CLOSED
        self._cancel_timer()
        if self._task is not None and not self._task.done() and self._task is not asyncio.current_task():
            self._task.cancel()
        if self._client is not None:
            log.log(level, "OMS %s: connection from %s ended: %s", self._client, self._peer, reason)
            self._gate._unlinked(self, self._client, reason)
        elif reason != "refused":  # a refusal has been logged with its reason
            log.log(level, "OMS port %d: connection from %s closed: %s", self._port, self._peer, reason)
        self._gate._connections.discard(self)
        transport, upstream = self._transport, self._upstream
        if upstream is not None:
            upstream.abort() if abort else upstream.close()
        if transport is not None:
            if abort:
                transport.abort()
            else:
                transport.close()  # what is buffered goes out first...
                if transport.get_write_buffer_size():
                    # ...unless the OMS does not read it
                    timeout = self._gate._slow_timeouts.get(self._client or "", REFUSAL_LINGER)
                    asyncio.get_running_loop().call_later(timeout, transport.abort)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class _Upstream(asyncio.Protocol):
    """The relay's QuickFIX side: what QuickFIX sends goes to the OMS as it comes."""

    def __init__(self, connection: _Connection):
        self._connection = connection
        assert connection._transport is not None
        self._to_oms = connection._transport

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._connection._upstream = transport

    def data_received(self, data: bytes) -> None:
        if not self._to_oms.is_closing():
            self._to_oms.write(data)

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._connection._upstream_lost(exc)

    def pause_writing(self) -> None:
        self._to_oms.pause_reading()  # QuickFIX is behind on what the OMS sends: wait for it

    def resume_writing(self) -> None:
        if self._connection._state is _RELAY:
            self._to_oms.resume_reading()


def read_passwords(clients: Iterable[OmsClientConfig]) -> dict[str, str | None]:
    """Each client's password from its ``password_file`` (None where it has none).
    ``KeyLoadError`` names the file and the reason."""
    return {c.name: read_secret(c.password_file, f"oms_client {c.name!r}: password file") if c.password_file else None
            for c in clients}

