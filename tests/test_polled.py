"""The engine's QuickFIX initiators, the gateway's acceptors and the simulator's acceptor are polled
on an asyncio loop's own thread (``fixengine.fix.polled``): no QuickFIX thread; each of their
sockets is in an epoll set the loop watches (a connection found again after a reconnect, an OMS's
connection as it is accepted), and let go at the stop; what QuickFIX holds back while a reader
is slow goes out once it reads again; a failure in what runs after a pass does not stop the
passes; started off the loop's thread, it says so. The socket classification the
search relies on, on real sockets."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import socket
import threading
from decimal import Decimal
from pathlib import Path

import pytest
import quickfix as fix

from conformance.harness import session_to
from fixengine.config import GatewayConfig, OmsClientConfig
from fixengine.engine import Engine
from fixengine.events import LoggedOn, LoggedOut
from fixengine.fix import polled
from fixengine.fix.polled import (
    LISTENING,
    UNCONNECTED,
    PolledInitiator,
    sockets,
    tcp_ports,
)
from fixengine.fix.quickfix import GuardedApplication, common_defaults, create
from fixengine.gateway.acceptor import OmsAcceptors
from tests.helpers.gateway import RawOms, wait_until
from tests.helpers.sessions import engine_config, unused_port


def connections_to(port: int) -> set[int]:
    """Inodes of this process's TCP sockets connected to ``port``."""
    return {inode for fd, inode in sockets().items() if (tcp_ports(fd) or (0, 0))[1] == port}


def sockets_on(port: int) -> set[int]:
    """Inodes of this process's TCP sockets on local ``port`` (its listener, what it accepted)."""
    return {inode for fd, inode in sockets().items() if (tcp_ports(fd) or (0, 0))[0] == port}


def in_epoll_sets() -> set[int]:
    """Inodes of every descriptor registered in one of this process's epoll sets (/proc fdinfo)."""
    found = set()
    for name in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{name}") != "anon_inode:[eventpoll]":
                continue
            info = Path(f"/proc/self/fdinfo/{name}").read_text()
        except OSError:
            continue
        found |= {int(inode, 16) for inode in re.findall(r"^tfd:.*\bino:([0-9a-f]+)", info, re.MULTILINE)}
    return found


def epoll_fds() -> set[int]:
    """This process's open epoll sets (descriptor numbers). Compared as sets, not counted: an
    unrelated set closed meanwhile (a loop collected late) must not fail a test."""
    found = set()
    for name in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{name}") == "anon_inode:[eventpoll]":
                found.add(int(name))
        except OSError:
            pass
    return found


async def test_quickfix_runs_on_the_loops_thread_and_its_connection_is_watched(tmp_path, make_key, start_simulator) -> None:
    key = make_key()
    sim, _ = start_simulator([key.account()])
    session = session_to(sim, key)
    engine = Engine(engine_config(tmp_path, session))
    sets_before = epoll_fds()
    await engine.start()
    try:
        await engine.wait_logged_on()
        # Neither the engine's QuickFIX nor the simulator's (polled on its gates' loop) has a thread.
        assert not [t.name for t in threading.enumerate() if "quickfix" in t.name]
        ours = connections_to(session.port)
        assert ours and ours <= in_epoll_sets()
        assert epoll_fds() - sets_before  # a set of the poller's own, inside the loop's
    finally:
        await engine.stop()
    assert not epoll_fds() - sets_before  # let go at the stop
    assert not connections_to(session.port) & in_epoll_sets()


async def test_a_new_connection_after_a_reconnect_is_watched_and_the_old_one_forgotten(
    tmp_path, make_key, start_simulator,
) -> None:
    key = make_key()
    sim, _ = start_simulator([key.account()])
    session = session_to(sim, key, reconnect_interval=1)
    engine = Engine(engine_config(tmp_path, session))
    events = engine.events()
    await engine.start()
    try:
        await engine.wait_logged_on()
        first = connections_to(session.port)
        await asyncio.to_thread(sim.logout, key.key_id, "Exchange maintenance")
        await events.wait_for(LoggedOut)
        await events.wait_for(LoggedOn, timeout=10)
        second = connections_to(session.port)
        assert second and not second & first
        assert second <= in_epoll_sets()
        assert not first & in_epoll_sets()
    finally:
        await engine.stop()


async def test_the_gateways_acceptor_watches_its_listener_and_each_oms_connection(tmp_path) -> None:
    desk = OmsClientConfig(name="desk", sender_comp_id="OMS1", target_comp_id="GW", port=unused_port(), session="nr",
                           max_quantity=Decimal(1), max_notional=Decimal(1), reset_on_logon=True)
    acceptors = OmsAcceptors(GatewayConfig(), [desk], tmp_path, lambda events: None)
    sets_before = epoll_fds()
    acceptors.start(asyncio.get_running_loop())
    internal = acceptors.internal_port(desk.port)
    raw = None
    try:
        listening = sockets_on(internal)
        assert listening and listening <= in_epoll_sets()
        assert not [t.name for t in threading.enumerate() if t.name.startswith("quickfix")]
        raw = await asyncio.to_thread(RawOms, desk.port, "OMS1", "GW")
        raw.send("A", [(98, "0"), (108, "30"), (141, "Y")], seq=1)
        assert (await asyncio.to_thread(raw.read))[35] == "A"
        await wait_until(lambda: acceptors.is_logged_on("desk"))
        accepted = sockets_on(internal) - listening
        assert accepted and accepted <= in_epoll_sets()
    finally:
        if raw is not None:
            raw.close()
        await acceptors.stop()
    assert not epoll_fds() - sets_before  # its own set let go (and the gate's loop closed)


async def test_what_quickfix_holds_back_goes_out_once_the_socket_has_room(tmp_path, monkeypatch) -> None:
    """An OMS that stops reading: the gate stops taking from QuickFIX, the kernel's buffers fill,
    and QuickFIX keeps the rest in its own queue, writing one message per pass. Once the OMS reads
    again, all of it arrives with no tick (set to an hour here) and nothing from the OMS to cause a
    pass: the room in the send buffer starts passes until they write nothing."""
    monkeypatch.setattr(polled, "TICK_S", 3600.0)
    count, body = 4000, "x" * 4000  # ~16 MB of News: more than the gate and the kernel hold
    desk = OmsClientConfig(name="desk", sender_comp_id="OMS1", target_comp_id="GW", port=unused_port(), session="nr",
                           max_quantity=Decimal(1), max_notional=Decimal(1), reset_on_logon=True,
                           slow_consumer_timeout=120.0)
    acceptors = OmsAcceptors(GatewayConfig(), [desk], tmp_path, lambda events: None)
    acceptors.start(asyncio.get_running_loop())
    raw = None
    try:
        raw = await asyncio.to_thread(RawOms, desk.port, "OMS1", "GW", 60.0)
        raw.send("A", [(98, "0"), (108, "30"), (141, "Y")], seq=1)
        assert (await asyncio.to_thread(raw.read))[35] == "A"
        for n in range(count):  # the OMS reads nothing meanwhile
            acceptors.send("desk", "B", [(148, f"headline-{n}"), (33, "1"), (58, body)])
        seen = 0
        while seen < count:  # every News arrives, in order
            message = await asyncio.to_thread(raw.read)
            if message[35] == "B":
                assert message[148] == f"headline-{seen}"
                seen += 1
    finally:
        if raw is not None:
            raw.close()
        await acceptors.stop()


async def test_started_off_its_loops_thread_it_says_so(tmp_path) -> None:
    loop = asyncio.get_running_loop()
    polled = PolledInitiator(lambda: create(fix.SocketInitiator, _Silent(), fix.MemoryStoreFactory(),
                                            _settings(unused_port()), "the test's"), [1], lambda: None, "test")
    with pytest.raises(RuntimeError, match="must be started there"):
        await asyncio.to_thread(polled.start, loop)


class _Silent(GuardedApplication):
    """An initiator's application that does nothing but exist."""

    def __init__(self) -> None:
        super().__init__(logging.getLogger("test"))

    def onCreate(self, sessionID): ...
    def onLogon(self, sessionID): ...
    def onLogout(self, sessionID): ...
    def toAdmin(self, message, sessionID): ...
    def fromAdmin(self, message, sessionID): ...
    def toApp(self, message, sessionID): ...
    def fromApp(self, message, sessionID): ...


def _settings(port: int) -> fix.SessionSettings:
    """One FIX 4.4 initiator session to ``port`` on loopback."""
    settings = fix.SessionSettings()
    defaults = common_defaults("initiator")
    defaults.setString("UseDataDictionary", "N")
    defaults.setString("ReconnectInterval", "1")
    settings.set(defaults)
    d = fix.Dictionary()
    d.setString("SocketConnectHost", "127.0.0.1")
    d.setInt("SocketConnectPort", port)
    d.setInt("HeartBtInt", 30)
    settings.set(fix.SessionID("FIX.4.4", "POLLED-TEST", "ACCEPTOR"), d)
    return settings


async def test_a_failure_after_a_pass_does_not_stop_the_passes(tmp_path) -> None:
    """What runs after each pass (the engine's hand-over) fails every time. The port refuses the
    first connect; QuickFIX tries again on a later tick (its ReconnectInterval: 1 s) and sends its
    Logon, which only passes after the failures can do."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))  # not listening yet: a connect is refused
    port = listener.getsockname()[1]
    settings = _settings(port)
    failed = asyncio.Event()

    def after_poll() -> None:
        failed.set()
        raise RuntimeError("the hand-over failed")

    app, store = _Silent(), fix.MemoryStoreFactory()
    polled = PolledInitiator(lambda: create(fix.SocketInitiator, app, store, settings, "the test's"), [port],
                             after_poll, "test")
    loop = asyncio.get_running_loop()
    polled.start(loop)
    try:
        await asyncio.wait_for(failed.wait(), 10)
        passes_before = polled.passes
        listener.listen()
        listener.setblocking(False)
        conn, _ = await asyncio.wait_for(loop.sock_accept(listener), 10)
        with conn:
            logon = await asyncio.wait_for(loop.sock_recv(conn, 4096), 10)
        assert logon.startswith(b"8=FIX.4.4\x01") and b"\x0135=A\x01" in logon
        assert polled.passes > passes_before
    finally:
        await polled.stop()
        listener.close()


def test_sockets_are_told_apart_as_the_search_needs() -> None:
    left, right = socket.socketpair()
    listener = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(listener.getsockname())
    served, _ = listener.accept()
    unconnected = socket.socket()
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        found = sockets()
        for s in (left, listener, client, served, unconnected, udp):
            assert found[s.fileno()] == os.fstat(s.fileno()).st_ino
        assert tcp_ports(left.fileno()) is None
        assert tcp_ports(udp.fileno()) is None
        assert tcp_ports(listener.fileno()) == (listener.getsockname()[1], LISTENING)
        assert tcp_ports(unconnected.fileno()) == (0, UNCONNECTED)
        assert tcp_ports(client.fileno()) == (client.getsockname()[1], listener.getsockname()[1])
        assert tcp_ports(served.fileno()) == (listener.getsockname()[1], client.getsockname()[1])
        assert client.fileno() in sockets()  # the probe's duplicate closed, the original untouched
    finally:
        for s in (left, right, listener, client, served, unconnected, udp):
            s.close()
