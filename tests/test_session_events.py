"""Session events for the bad days: a counterparty that goes silent, nothing listening, a TLS server
we must not trust. Each reaches the user as a readable event."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import pytest

from conformance.harness import session_to
from fixengine.engine import Engine
from fixengine.events import ConnectionFailed, HeartbeatTimeout, LoggedOn, LoggedOut
from fixengine.fix.framing import FrameReader, encode, parse
from fixengine.fix.timestamps import utc_timestamp
from tests.helpers.sessions import TLS_ON, engine_config, plain_session, unused_port


class SilentAcceptor:
    """Answers the first Logon with a Logon, then never sends another byte."""

    def __init__(self) -> None:
        self.server: asyncio.base_events.Server | None = None
        self.port = 0
        self.logon: dict[int, str] | None = None

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        frames = FrameReader()
        while (message := frames.next_message()) is None:
            data = await reader.read(65536)
            if not data:
                return
            frames.feed(data)
        self.logon = dict(parse(message))
        sending_time = utc_timestamp(datetime.now(timezone.utc))
        writer.write(
            encode(
                self.logon[8],
                [(35, "A"), (34, "1"), (49, self.logon[56]), (52, sending_time), (56, self.logon[49]),
                 (98, "0"), (108, self.logon[108]), (141, "Y"), (1137, "9")],
            )
        )
        await writer.drain()
        while await reader.read(65536):  # swallow heartbeats and the TestRequest; answer nothing
            pass
        writer.close()

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()


async def test_silent_counterparty_gives_heartbeat_timeout(tmp_path, make_key) -> None:
    key = make_key()
    fake = SilentAcceptor()
    await fake.start()
    session = plain_session(key, "127.0.0.1", fake.port, heartbeat_interval=1, reconnect_interval=30)
    engine = Engine(engine_config(tmp_path, session))
    events = engine.events()
    await engine.start()
    try:
        await events.wait_for(LoggedOn)
        await events.wait_for(HeartbeatTimeout, timeout=10)
        out = await events.wait_for(LoggedOut, timeout=5)
        assert out.by_counterparty and out.reason == "heartbeat timeout: the counterparty went silent"
        assert not engine.is_logged_on("s1")
    finally:
        await engine.stop()
        await fake.stop()


async def test_nothing_listening_gives_connection_failed(tmp_path, make_key) -> None:
    key = make_key()
    port = unused_port()
    session = plain_session(key, "127.0.0.1", port, reconnect_interval=1)
    engine = Engine(engine_config(tmp_path, session))
    events = engine.events()
    await engine.start()
    try:
        failed = await events.wait_for(ConnectionFailed, timeout=10)
        assert failed.reason == f"127.0.0.1:{port} refused the connection (nothing listening there?)"
    finally:
        await engine.stop()


async def test_tls_server_not_signed_by_a_trusted_ca_is_refused(tmp_path, make_key, start_simulator) -> None:
    key = make_key()
    sim, _ = start_simulator([key.account()], tls=TLS_ON)
    # Trust the system CAs only: the simulator's self-signed certificate must not pass.
    session = session_to(sim, key, tls_ca_file=None, reconnect_interval=30)
    engine = Engine(engine_config(tmp_path, session))
    events = engine.events()
    await engine.start()
    try:
        failed = await events.wait_for(ConnectionFailed, timeout=10)
        assert failed.reason.startswith(f"TLS certificate of 127.0.0.1:{session.port} is not trusted")
        with pytest.raises(asyncio.TimeoutError):
            await events.wait_for(LoggedOn, timeout=1)
    finally:
        await engine.stop()


async def test_unresolvable_host_gives_connection_failed(tmp_path, make_key) -> None:
    key = make_key()
    session = plain_session(key, "no-such-host.invalid", 8228, reconnect_interval=1)
    engine = Engine(engine_config(tmp_path, session))
    events = engine.events()
    await engine.start()
    try:
        failed = await events.wait_for(ConnectionFailed, timeout=15)
        assert failed.reason.startswith("cannot resolve no-such-host.invalid")
    finally:
        await engine.stop()
