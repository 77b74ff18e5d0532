"""Logon gates: the simulator's front doors, one per listening port.

QuickFIX's acceptor silently drops a connection whose Logon names no session it knows, or a session
already connected. Kalshi instead answers with a Logout saying why ("Invalid TargetCompID",
"already exists" ...). A gate reads the first message itself, runs the Logon checks
(``simulator.logon.check_logon``), answers a refusal as Kalshi does, and relays an admitted
connection byte for byte to the internal QuickFIX acceptor. TLS ends here.

The relay is also where wire faults happen (``simulator.faults``): while one is armed on a connection
its outbound stream is taken apart into messages; otherwise it stays a plain byte copy. With a
recording tap (``simulator.recording``, off by default) each connection's reader and writer are
wrapped so that both directions are also recorded message by message, refused Logons included.

All gates share one asyncio loop (on the simulator's gate thread); the set of connected API keys is
touched only in that loop.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from typing import cast
from datetime import datetime, timedelta, timezone

from fixengine.fix.framing import FrameReader, FramingError, encode, parse
from fixengine.fix.tags import (
    BEGIN_STRING,
    MSG_LOGON,
    MSG_LOGOUT,
    MSG_REJECT,
    MSG_SEQ_NUM,
    MSG_TYPE,
    REF_MSG_TYPE,
    REF_SEQ_NUM,
    SENDER_COMP_ID,
    SENDING_TIME,
    SESSION_REJECT_REASON,
    TARGET_COMP_ID,
    TEXT,
)
from fixengine.fix.timestamps import utc_timestamp
from simulator.events import SimEvent, SimEventKind, SimEventSink
from simulator.config import ListenerSpec
from simulator.faults import FaultController, LinkFaults, rest_of_message
from simulator.fix.logon import Refusal
from simulator.recording import ConnectionTap, TappedReader, TappedWriter, WireSink

log = logging.getLogger("simulator.gate")

Decide = Callable[[dict[int, str], ListenerSpec, set[str]], Refusal | None]

_CHUNK = 1 << 16
_UPSTREAM_CONNECT_ATTEMPTS = 50


def refusal_messages(fields: dict[int, str], refusal: Refusal, now: datetime) -> bytes:
    """What Kalshi sends a refused Logon: [Reject (35=3) with 373,] then Logout (35=5) with Text."""
    begin = fields.get(BEGIN_STRING, "FIXT.1.1")
    header = [(SENDER_COMP_ID, fields.get(TARGET_COMP_ID, "")), (TARGET_COMP_ID, fields.get(SENDER_COMP_ID, ""))]
    stamp = utc_timestamp(now)
    out = b""
    seq = 1
    if refusal.reject_reason is not None:
        ref = [
            (REF_SEQ_NUM, fields.get(MSG_SEQ_NUM, "0")),
            (REF_MSG_TYPE, MSG_LOGON),
            (SESSION_REJECT_REASON, str(refusal.reject_reason)),
            (TEXT, refusal.text),
        ]
        out += encode(begin, [(MSG_TYPE, MSG_REJECT), (MSG_SEQ_NUM, str(seq)), *header, (SENDING_TIME, stamp), *ref])
        seq += 1
    out += encode(
        begin, [(MSG_TYPE, MSG_LOGOUT), (MSG_SEQ_NUM, str(seq)), *header, (SENDING_TIME, stamp), (TEXT, refusal.text)]
    )
    return out


class GateHub:
    """The gates of one simulator and what they share: the connected keys and the upstream port."""

    def __init__(
        self,
        decide: Decide,
        upstream_port: int,
        sink: SimEventSink,
        logon_timeout: float,
        clock: Callable[[], datetime],
        faults: FaultController,
        tap: WireSink | None = None,
    ):
        """``tap``: given, every message both ways on every connection is recorded to it
        (``simulator.recording``); None (the default) leaves the relay a plain byte copy."""
        self._tap = tap
        self._connection_count = 0
        self._decide = decide
        self._faults = faults
        self._upstream_port = upstream_port
        self._sink = sink
        self._logon_timeout = logon_timeout
        self._clock = clock
        self.connected_keys: set[str] = set()
        self._servers: list[asyncio.base_events.Server] = []
        self._connections: set[asyncio.Task[None]] = set()

    async def listen(self, spec: ListenerSpec, host: str, context: ssl.SSLContext | None) -> int:
        async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            self._connections.add(task)
            tap = None
            if self._tap is not None:
                self._connection_count += 1
                tap = ConnectionTap(self._tap, self._connection_count, spec.name)
                reader = cast(asyncio.StreamReader, TappedReader(reader, tap, writer.transport))
                writer = cast(asyncio.StreamWriter, TappedWriter(writer, tap))
            try:
                await self._serve(spec, reader, writer)
            except asyncio.CancelledError:
                pass  # closed with the simulator; ending cancelled would make asyncio log an error
            finally:
                self._connections.discard(task)
                if tap is not None:
                    tap.ended()

        server = await asyncio.start_server(
            on_connect, host, spec.port, ssl=context, ssl_handshake_timeout=self._logon_timeout if context else None
        )
        self._servers.append(server)
        return server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        for server in self._servers:
            server.close()
        for task in list(self._connections):
            task.cancel()
        if self._connections:
            await asyncio.wait(list(self._connections), timeout=5)
        for server in self._servers:
            await server.wait_closed()

    async def _serve(self, spec: ListenerSpec, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        try:
            first = await asyncio.wait_for(self._first_message(reader), self._logon_timeout)
        except (asyncio.TimeoutError, FramingError, ConnectionError, ssl.SSLError) as exc:
            reason = "no Logon within the logon timeout" if isinstance(exc, asyncio.TimeoutError) else str(exc)
            self._sink(SimEvent(SimEventKind.CLOSED, f"{spec.name} from {peer}: {reason}"))
            await _close(writer)
            return
        message, rest = first
        fields: dict[int, str] = {}
        for tag, value in parse(message):
            fields.setdefault(tag, value)
        if fields.get(MSG_TYPE) != MSG_LOGON:
            self._sink(SimEvent(SimEventKind.CLOSED, f"{spec.name} from {peer}: first message is not a Logon"))
            await _close(writer)
            return
        key_id, target = fields.get(SENDER_COMP_ID, ""), fields.get(TARGET_COMP_ID, "")
        injected = self._faults.take_logon_refusal(key_id)
        refusal = Refusal(injected) if injected is not None else self._decide(fields, spec, self.connected_keys)
        if refusal is not None:
            self._sink(SimEvent(SimEventKind.REFUSED, f"{spec.name}: {refusal.text}", key_id, target))
            await self._refuse(fields, refusal, reader, writer)
            return
        self.connected_keys.add(key_id)
        released = False

        def release() -> None:  # once: a newer connection of the key may hold it by now
            nonlocal released
            if not released:
                released = True
                self.connected_keys.discard(key_id)

        loop = asyncio.get_running_loop()
        link = self._faults.attach(key_id, abort=lambda: loop.call_soon_threadsafe(writer.transport.abort))
        self._sink(SimEvent(SimEventKind.ADMITTED, spec.name, key_id, target))
        try:
            await self._relay(message + rest, reader, writer, link, release)
        finally:
            self._faults.detach(link)
            release()
            self._sink(SimEvent(SimEventKind.CLOSED, f"{spec.name}: connection ended", key_id, target))

    async def _first_message(self, reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
        frames = FrameReader()
        while True:
            data = await reader.read(_CHUNK)
            if not data:
                raise ConnectionError("connection closed before a Logon arrived")
            frames.feed(data)
            message = frames.next_message()
            if message is not None:
                return message, bytes(frames.buffer)

    async def _refuse(
        self, fields: dict[int, str], refusal: Refusal, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            writer.write(refusal_messages(fields, refusal, self._clock()))
            await writer.drain()
            # Let the counterparty read our Logout and answer it before we close.
            await asyncio.wait_for(_drain_until_eof(reader), timeout=2)
        except (asyncio.TimeoutError, ConnectionError, ssl.SSLError):
            pass
        await _close(writer)

    async def _relay(
        self,
        head: bytes,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        link: LinkFaults,
        release: Callable[[], None],
    ) -> None:
        up_reader, up_writer = await self._connect_upstream()
        up_writer.write(head)
        downstream = asyncio.ensure_future(_Downstream(up_reader, writer, link).run())
        upstream = asyncio.ensure_future(_pump_up(reader, up_writer, link))
        pumps = [downstream, upstream]
        try:
            # Either side closing ends the session: FIX has no half-open conversations...
            done, _ = await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
            if downstream in done and link.silent:
                # ...unless one is faked: QuickFIX has given up (so the key may log on again), but
                # the client keeps its socket until its own heartbeat timeout makes it close.
                release()
                await upstream
        finally:
            for p in pumps:
                p.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
            await _close(up_writer)
            await _close(writer)

    async def _connect_upstream(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        # QuickFIX binds its port on its own thread at start-up; allow it a moment.
        for attempt in range(_UPSTREAM_CONNECT_ATTEMPTS):
            try:
                return await asyncio.open_connection("127.0.0.1", self._upstream_port)
            except ConnectionRefusedError:
                if attempt == _UPSTREAM_CONNECT_ATTEMPTS - 1:
                    raise
                await asyncio.sleep(0.05)
        raise AssertionError("unreachable")


async def _pump_up(source: asyncio.StreamReader, sink: asyncio.StreamWriter, link: LinkFaults) -> None:
    """Client -> QuickFIX, byte for byte; while the link is silent what the client sends is lost."""
    try:
        while data := await source.read(_CHUNK):
            if link.silent:
                continue
            sink.write(data)
            await sink.drain()
    except (ConnectionError, ssl.SSLError):
        pass


class _Downstream:
    """QuickFIX -> client. A byte copy while no fault is armed on the link (every message takes this
    path, so it stays cheap); while one is, message by message through ``LinkFaults.outbound``, in
    order, each held back by the link's delay from when it was read."""

    def __init__(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter, link: LinkFaults):
        self._source, self._sink, self._link = source, sink, link
        self._frames: FrameReader | None = None  # set while framing
        self._queue: asyncio.Queue[tuple[float, bytes | None]] = asyncio.Queue()  # (send at, bytes | close)
        self._writer: asyncio.Task[None] | None = None

    async def run(self) -> None:
        tail = b""  # the last bytes copied unframed: framing may start only where a message ends
        try:
            while data := await self._source.read(_CHUNK):
                if self._frames is None:
                    cut = 0 if not self._link.armed else rest_of_message(tail, data)
                    if not self._link.armed or cut < 0:
                        self._sink.write(data)
                        await self._sink.drain()
                        tail = data if len(data) >= 8 else (tail + data)[-8:]
                        continue
                    if cut:
                        self._sink.write(data[:cut])
                        data = data[cut:]
                    self._frames = FrameReader()
                if await self._framed(data):
                    return
                if not self._frames.buffer and not self._link.armed:
                    await self._queue.join()  # what is held back goes first
                    self._frames, tail = None, b""
        except (ConnectionError, ssl.SSLError, FramingError):
            pass
        finally:
            if self._writer is not None:
                self._writer.cancel()

    async def _framed(self, data: bytes) -> bool:
        """Queue what the faults make of each whole message in ``data``; True once closing."""
        assert self._frames is not None
        send_at = asyncio.get_running_loop().time() + self._link.delay
        self._frames.feed(data)
        while (message := self._frames.next_message()) is not None:
            out = self._link.outbound(message)
            for chunk in out.chunks:
                self._put(send_at, chunk)
            if out.close:
                self._put(send_at, None)
                await self._queue.join()
                return True
        return False

    def _put(self, send_at: float, chunk: bytes | None) -> None:
        if self._writer is None:
            self._writer = asyncio.ensure_future(self._write_queued())
        self._queue.put_nowait((send_at, chunk))

    async def _write_queued(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            send_at, chunk = await self._queue.get()
            try:
                if (wait := send_at - loop.time()) > 0:
                    await asyncio.sleep(wait)  # the delay fault itself
                if chunk is None:
                    self._sink.close()  # what was written (half a message) goes out, then FIN
                else:
                    self._sink.write(chunk)
                    await self._sink.drain()
            except (ConnectionError, ssl.SSLError):
                pass  # the client is gone; the relay notices on its own
            finally:
                self._queue.task_done()


async def _drain_until_eof(reader: asyncio.StreamReader) -> None:
    while await reader.read(_CHUNK):
        pass


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    try:
        await asyncio.wait_for(writer.wait_closed(), timeout=2)
    except (asyncio.TimeoutError, ConnectionError, ssl.SSLError):
        pass


def utc_now(offset_seconds: float = 0.0) -> datetime:
    return datetime.now(timezone.utc) + timedelta(seconds=offset_seconds)
