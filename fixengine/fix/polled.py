"""QuickFIX initiators and acceptors run on the asyncio loop's own thread: polled, never blocking.

Why: on a thread of its own, QuickFIX and the loop trade the GIL at every callback and every send,
and a report waits for the loop's thread to let go of it (up to the 5 ms switch interval). Polled
in the loop, an inbound report is read, handed over and applied in one turn of the loop, and a send
is one call. Measured with the speed benchmark (README, *Speed*).

``poll()`` is one pass of QuickFIX's own event loop with a zero timeout: it accepts and reads what
its sockets have, writes what they can take, and, when nothing was ready, runs its timers
(heartbeats, logon and logout timeouts, reconnects). The loop calls it

- when one of its sockets is readable (the common case: a message arrived), and
- on a tick (``TICK_S``), for what readability does not show: the timers, a connect completing;
- when a connection's send buffer, full a moment ago, has room again: QuickFIX then holds messages
  of its own queue, and writes one per pass, so passes follow each other (``call_soon``) for as long
  as each writes something (``written``).

QuickFIX does not say which sockets are its own, so they are looked for in ``/proc/self/fd``: for
an initiator, while one of its sessions has no connection, a TCP socket connected to one of its
session ports; for an acceptor, after a pass that found a connection waiting, a TCP socket on one
of its ports (its listeners and what they accepted). A socket of another part of this process to the
same port is watched too; that costs a pass that finds nothing, never a message. Watched sockets sit
in an epoll set of this module's own (the loop watches that one descriptor), so that no
registration of the loop's own is ever touched, and a socket QuickFIX closes leaves the set by
itself. Its wake-up pair is watched from the start: a send that the socket could not take whole
writes a wake-up to one end (QuickFIX's ``SocketConnection::signal``; a send written whole writes
none), and a pass reads one and makes the connection a writer. Unread, the wake-ups would pile up,
and a pass that has one to read never runs the timers.

An acceptor waits (up to 1 s, in QuickFIX) for the whole first message of a new connection: polled
here, it must sit behind a gate that relays only whole first messages, as the gateway's and the
simulator's do.

Linux only (epoll, /proc), as the engine is.
"""

from __future__ import annotations

import array
import asyncio
import fcntl
import logging
import os
import select
import socket
import stat
import struct
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

import quickfix as fix

log = logging.getLogger("fixengine.quickfix")

Connector = TypeVar("Connector", fix.Initiator, fix.Acceptor)

TICK_S = 0.05  # QuickFIX's timers are in seconds; a connect or a held-back send waits at most this.
# An idle process pays for the ticks: about 1% of a CPU at 100 a second on a small VM, ~0.2% at 20.
STOP_S = 5.0  # after stop(), QuickFIX's own loop reads on while a session is logged on, at most 5 s


_SIOCOUTQ = 0x5411  # ioctl: bytes in a TCP socket's send queue, not yet acknowledged
_TCPI_BYTES_ACKED = 120  # offset of tcp_info.tcpi_bytes_acked (u64, Linux >= 4.1)


@contextmanager
def _probe(fd: int) -> Iterator[socket.socket | None]:
    """A duplicate of socket ``fd`` to look at (the original stays its owner's); None if it is gone."""
    try:
        probe = socket.socket(fileno=os.dup(fd))
    except OSError:
        yield None
        return
    try:
        yield probe
    finally:
        probe.close()


def written(fd: int) -> int:
    """Bytes ever written to a TCP socket (acknowledged + still queued); -1 if it is gone."""
    with _probe(fd) as probe:
        if probe is None:
            return -1
        try:
            info = probe.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
            queued = array.array("i", [0])
            fcntl.ioctl(probe.fileno(), _SIOCOUTQ, queued)
        except OSError:
            return -1
        return struct.unpack_from("Q", info, _TCPI_BYTES_ACKED)[0] + queued[0]


def sockets() -> dict[int, int]:
    """This process's socket descriptors, with their inodes (a descriptor number is reused)."""
    found = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            st = os.stat(f"/proc/self/fd/{name}")
        except OSError:  # closed meanwhile (or the listing's own descriptor)
            continue
        if stat.S_ISSOCK(st.st_mode):
            found[int(name)] = st.st_ino
    return found


LISTENING = -1  # tcp_ports' remote port of a listening socket
UNCONNECTED = 0  # ... of a socket neither listening nor connected (yet)


def tcp_ports(fd: int) -> tuple[int, int] | None:
    """(local port, remote port) of a TCP socket, the remote port ``LISTENING`` or ``UNCONNECTED``
    when it has none; None: not a TCP socket (or closed meanwhile)."""
    with _probe(fd) as probe:
        return None if probe is None else _ports_of(probe)


def _ports_of(probe: socket.socket) -> tuple[int, int] | None:
    try:
        if probe.family not in (socket.AF_INET, socket.AF_INET6) or probe.type != socket.SOCK_STREAM:
            return None
        local = probe.getsockname()[1]
        if probe.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
            return local, LISTENING
        try:
            return local, probe.getpeername()[1]
        except OSError:
            return local, UNCONNECTED
    except OSError:
        return None


class _Polled(Generic[Connector]):
    """One QuickFIX initiator or acceptor polled in the running loop, made here by ``make``.
    ``after_poll`` runs after every pass (it takes what the callbacks of that pass handed over)."""

    def __init__(self, make: Callable[[], Connector], ports: Collection[int], after_poll: Callable[[], None],
                 name: str):
        before = sockets()
        self.connector = make()
        # Its wake-up pair (a send writes to one end): the sockets its making opened that are not
        # TCP. Watched, so that a send QuickFIX could not finish at once is finished on the next
        # pass, and its timers are never kept waiting behind unread wake-ups.
        self._signals = {fd: inode for fd, inode in sockets().items()
                         if before.get(fd) != inode and tcp_ports(fd) is None}
        self.name = name
        self._ports = frozenset(ports)
        self._after_poll = after_poll
        self._loop: asyncio.AbstractEventLoop | None = None
        self._epoll: select.epoll | None = None
        self._room: select.epoll | None = None  # connections, edge-triggered on send-buffer room
        self._draining: set[int] = set()  # connections whose send buffer had room again: passes follow
        self._tick: asyncio.TimerHandle | None = None
        self._watched: dict[int, int] = {}  # fd -> inode: QuickFIX's sockets being read
        self._not_ours: set[tuple[int, int]] = set()  # (fd, inode) looked at and passed over
        self._listeners: set[int] = set()  # an acceptor's listening sockets, among the watched
        self._polling = False
        self.passes = 0  # how often QuickFIX was polled (for tests)

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Poll from now on (the first pass connects, or listens). In ``loop``, on its thread."""
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is not loop:
            raise RuntimeError(f"{self.name}: QuickFIX is polled in its loop, so it must be started there")
        self._loop = loop
        self._epoll, self._room = select.epoll(), select.epoll()
        loop.add_reader(self._epoll.fileno(), self._readable)
        loop.add_reader(self._room.fileno(), self._roomy)
        for fd, inode in self._signals.items():
            self._watch(fd, inode, None)
        self._polling = True
        self._pass(tick=False)
        self._search()
        self._tick = loop.call_later(TICK_S, self._on_tick)

    async def stop(self) -> None:
        """Stop QuickFIX; read on while a session is still logged on (at most ``STOP_S``), then let go."""
        if self._loop is None or not self._polling:
            return
        self.connector.stop(True)
        deadline = time.monotonic() + STOP_S
        while self._polling and time.monotonic() < deadline:
            self._pass(tick=True)  # QuickFIX's timers send the Logouts; readable sockets pass meanwhile
            await asyncio.sleep(0.01)
        self._release()

    def _release(self) -> None:
        self._polling = False
        if self._tick is not None:
            self._tick.cancel()
            self._tick = None
        for epoll in (self._epoll, self._room):
            if epoll is not None and self._loop is not None:
                self._loop.remove_reader(epoll.fileno())
                epoll.close()
        self._epoll = self._room = None
        self._watched.clear()
        self._listeners.clear()
        self._draining.clear()

    def _readable(self) -> None:
        if self._polling:
            self._pass(tick=False)

    def _roomy(self) -> None:
        """A connection's full send buffer has room again: drain what QuickFIX holds."""
        assert self._room is not None
        fds = {fd for fd, _ in self._room.poll(0)}  # (edge-triggered: each edge is taken once)
        if not self._polling or not fds:
            return
        started = bool(self._draining)
        self._draining |= fds
        if not started:
            self._drain(self._written(), idle=0)

    def _written(self) -> int:
        return sum(written(fd) for fd in self._draining)

    def _drain(self, written_before: int, idle: int) -> None:
        """A pass; another soon while passes write. Two passes that write nothing end it (the first
        pass after a wake-up may only put the connection among QuickFIX's writers)."""
        if not self._polling:
            self._draining.clear()
            return
        self._pass(tick=False)
        now = self._written()
        idle = 0 if now != written_before else idle + 1
        if idle < 2 and self._polling:
            self._loop.call_soon(self._drain, now, idle)  # type: ignore[union-attr]
        else:
            self._draining.clear()

    def _on_tick(self) -> None:
        if not self._polling:
            return
        self._forget_closed()
        self._pass(tick=True)
        if self._polling:
            self._tick = self._loop.call_later(TICK_S, self._on_tick)  # type: ignore[union-attr]

    def _pass(self, tick: bool) -> None:
        """One pass of QuickFIX's event loop, then hand over what it saw (and look for sockets it
        may have opened)."""
        search = self._may_open(tick)
        self.passes += 1
        try:
            more = self.connector.poll()
        except Exception as exc:  # noqa: BLE001 - QuickFIX's own errors; the ticks must go on
            log.error("%s: QuickFIX's poll failed: %r", self.name, exc)
            more = True
        try:
            self._after_poll()
        except Exception:  # noqa: BLE001 - as the loop would log a failed callback; the ticks go on
            log.exception("%s: handing over what QuickFIX read failed", self.name)
        if not more:  # stopped, and no session logged on any more
            self._polling = False
        elif search:
            self._search()

    def _forget_closed(self) -> None:
        for fd, inode in list(self._watched.items()):
            try:
                alive = os.fstat(fd).st_ino == inode
            except OSError:
                alive = False
            if not alive:  # closed: the epoll set dropped it with its last descriptor
                del self._watched[fd]
                self._listeners.discard(fd)

    def _search(self) -> None:
        """Watch QuickFIX's sockets not watched yet."""
        present = set(sockets().items())
        self._not_ours &= present  # what was closed since need not be remembered
        for fd, inode in present - self._not_ours:
            if self._watched.get(fd) == inode:
                continue
            ports = tcp_ports(fd)
            ours = self._ours(ports)
            if ours:
                self._watch(fd, inode, ports)
            elif ours is not None:
                self._not_ours.add((fd, inode))

    def _watch(self, fd: int, inode: int, ports: tuple[int, int] | None) -> None:
        assert self._epoll is not None
        try:
            self._epoll.register(fd, select.EPOLLIN)
        except FileExistsError:  # a descriptor number reused since: the old registration went with it
            self._epoll.modify(fd, select.EPOLLIN)
        self._watched[fd] = inode
        if ports is not None and ports[1] == LISTENING:
            self._listeners.add(fd)
        elif ports is not None and ports[1] != UNCONNECTED and self._room is not None:
            try:  # a connection: told when its send buffer, once full, has room again
                self._room.register(fd, select.EPOLLOUT | select.EPOLLET)
            except FileExistsError:
                self._room.modify(fd, select.EPOLLOUT | select.EPOLLET)

    def _ours(self, ports: tuple[int, int] | None) -> bool | None:
        """Is a socket with these ``tcp_ports`` QuickFIX's? None: not yet known (looked at again)."""
        raise NotImplementedError

    def _may_open(self, tick: bool) -> bool:
        """May the coming pass open a socket (so look for it after)?"""
        raise NotImplementedError


class PolledInitiator(_Polled[fix.Initiator]):
    """An initiator; ``session_ports``: the port each of its sessions connects to."""

    def __init__(self, make: Callable[[], fix.Initiator], session_ports: Collection[int],
                 after_poll: Callable[[], None], name: str):
        super().__init__(make, session_ports, after_poll, name)
        self._sessions = len(session_ports)  # each has at most one connection

    def _ours(self, ports: tuple[int, int] | None) -> bool | None:
        if ports is None or ports[1] == LISTENING:  # (its wake-up pair is watched from the start)
            return False
        if ports[1] == UNCONNECTED:
            return None
        return ports[1] in self._ports

    def _may_open(self, tick: bool) -> bool:
        # QuickFIX connects on its timers (a pass on a tick), a session that has no connection.
        return tick and len(self._watched.keys() - self._signals.keys()) < self._sessions


class PolledAcceptor(_Polled[fix.Acceptor]):
    """An acceptor; ``ports``: the ports it listens on."""

    def _may_open(self, tick: bool) -> bool:
        # A listener has a connection waiting: the coming pass accepts it.
        assert self._epoll is not None
        return any(fd in self._listeners for fd, _ in self._epoll.poll(0))

    def _ours(self, ports: tuple[int, int] | None) -> bool | None:
        return ports is not None and ports[0] in self._ports

