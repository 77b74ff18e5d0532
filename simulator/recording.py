"""What the simulator can record of its clients, for a conformance run: every FIX message both ways
on every connection through the logon gates, when each connection ended, and every REST call.

Off unless a sink is given (``Simulator(on_wire=..., on_rest=...)``): the gates then wrap each
connection's reader and writer in a ``ConnectionTap`` that cuts both byte streams into messages as
they cross the socket, whatever a fault did to them (a garbled message, a bad CheckSum, half a
message before a close: each is recorded as sent). A refused Logon and what a silenced connection
swallows are recorded too: they crossed the wire even if QuickFIX never saw them.

Sinks are called on the thread that saw the bytes (the gates' loop, uvicorn's); they must be quick
and thread-safe.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

_TRAILER = re.compile(rb"\x0110=\d{3}\x01")  # CheckSum (10) ends every message, framed or not
_SENDER = re.compile(rb"(?:^|\x01)49=([^\x01]*)\x01")
_TARGET = re.compile(rb"(?:^|\x01)56=([^\x01]*)\x01")


@dataclass(frozen=True, slots=True)
class WireRecord:
    """One FIX message on the wire, as sent."""

    at: float  # epoch seconds when the gate read or wrote it
    connection: int  # one number per TCP connection, from 1, in the order they were accepted
    inbound: bool  # True: from the client
    session: str  # the TargetCompID the client's first message named (the listener's name before)
    key_id: str | None  # the SenderCompID of the client's first message: whose connection it is
    raw: bytes


@dataclass(frozen=True, slots=True)
class ConnectionEnded:
    at: float
    connection: int
    session: str
    key_id: str | None
    by_client: bool  # the client closed its socket (else the simulator did)


@dataclass(frozen=True, slots=True)
class RestRecord:
    at: float  # when the request arrived
    method: str
    path: str  # with the query string, if any
    status: int
    key_id: str | None  # the KALSHI-ACCESS-KEY header


WireSink = Callable[[WireRecord | ConnectionEnded], None]
RestSink = Callable[[RestRecord], None]


class ConnectionTap:
    """Cuts one connection's two byte streams into messages and hands each to the sink."""

    def __init__(self, sink: WireSink, connection: int, listener: str):
        self._sink = sink
        self.connection = connection
        self.session = listener
        self.key_id: str | None = None
        self._named = False
        self._buffers = {True: b"", False: b""}
        self._eof = False
        self._ended = False

    def inbound(self, data: bytes) -> None:
        self._feed(True, data)

    def client_closed(self) -> None:
        """The client's side ended first (its FIN, not a close of ours)."""
        self._eof = True

    def outbound(self, data: bytes) -> None:
        self._feed(False, data)

    def _feed(self, inbound: bool, data: bytes) -> None:
        buffer = self._buffers[inbound] + data
        at = time.time()
        while (match := _TRAILER.search(buffer)) is not None:
            self._emit(inbound, buffer[: match.end()], at)
            buffer = buffer[match.end():]
        self._buffers[inbound] = buffer

    def _emit(self, inbound: bool, raw: bytes, at: float) -> None:
        if inbound and not self._named:  # the first message says whose connection this is
            self._named = True
            if (target := _TARGET.search(raw)) is not None:
                self.session = target.group(1).decode("latin-1")
            if (sender := _SENDER.search(raw)) is not None:
                self.key_id = sender.group(1).decode("latin-1")
        self._sink(WireRecord(at, self.connection, inbound, self.session, self.key_id, raw))

    def ended(self) -> None:
        """The connection is over: what is left half-framed is recorded as it was, then the end."""
        if self._ended:
            return
        self._ended = True
        at = time.time()
        for inbound in (True, False):
            if self._buffers[inbound].strip():
                self._emit(inbound, self._buffers[inbound], at)
            self._buffers[inbound] = b""
        self._sink(ConnectionEnded(at, self.connection, self.session, self.key_id, self._eof))


class TappedReader:
    """A StreamReader whose reads are also shown to a tap (the gate only calls ``read``)."""

    def __init__(self, reader: asyncio.StreamReader, tap: ConnectionTap, transport: asyncio.BaseTransport):
        self._reader, self._tap, self._transport = reader, tap, transport

    async def read(self, n: int = -1) -> bytes:
        data = await self._reader.read(n)
        if data:
            self._tap.inbound(data)
        elif not self._transport.is_closing():  # an end we caused (abort, close) is not the client's
            self._tap.client_closed()
        return data


class TappedWriter:
    """A StreamWriter whose writes are also shown to a tap; everything else is the writer's own."""

    def __init__(self, writer: asyncio.StreamWriter, tap: ConnectionTap):
        self._writer, self._tap = writer, tap

    def write(self, data: bytes) -> None:
        self._tap.outbound(data)
        self._writer.write(data)

    def close(self) -> None:
        self._writer.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._writer, name)


class RestRecorder:
    """ASGI middleware: each HTTP request's method, path, status and key, to the sink."""

    def __init__(self, app: Callable[..., Awaitable[None]], sink: RestSink):
        self._app, self._sink = app, sink

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope.get("type") != "http":
            await self._app(scope, receive, send)
            return
        at = time.time()
        status = 500  # what the client sees if the app fails before answering

        async def sending(message: dict[str, Any]) -> None:
            nonlocal status
            if message.get("type") == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self._app(scope, receive, sending)
        finally:
            headers = dict(scope.get("headers") or [])
            key = headers.get(b"kalshi-access-key")
            query = scope.get("query_string") or b""
            path = scope.get("path", "") + (f"?{query.decode('latin-1')}" if query else "")
            self._sink(RestRecord(at, scope.get("method", ""), path, status,
                                  key.decode("latin-1") if key is not None else None))
