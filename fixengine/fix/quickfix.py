"""The QuickFIX glue for both roles: the engine's initiators, the gateway's acceptors and the
simulator's acceptor all run on this.

- ``GuardedApplication``: the base of every QuickFIX Application here. A Python exception must never
  cross into C++ (it would end QuickFIX's thread), so callbacks run through ``guard``.
- ``Runner``: one QuickFIX initiator or acceptor and the Python thread its event loop runs on (the
  shipped OMS client, the benchmarks' bare clients). The engine's initiators, the gateway's
  acceptors and the simulator's acceptor are polled on an asyncio loop's thread instead (``polled``).
- ``LoopInbox``: how their callbacks hand what they saw to the asyncio loop.
- ``common_defaults`` / ``set_dictionaries``: the settings every session here shares, built in
  memory (no .cfg files to drift).
- The QuickFIX 1.16 quirks the project works around, each named: ``out_of_sequence_logout`` and the
  acceptor stop race (``Runner.stop``'s ``hold``).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
import traceback
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Generic, TypeVar

import quickfix as fix

from fixengine.errors import FixEngineError
from fixengine.fix.dialect import Dialect
from fixengine.fix.dictionary import DictionaryPaths
from fixengine.fix.tags import MSG_SEQ_NUM

log = logging.getLogger("fixengine.quickfix")

Connector = TypeVar("Connector", fix.Initiator, fix.Acceptor)
T = TypeVar("T")


class GuardedApplication(fix.Application):
    """A QuickFIX Application whose callbacks never let an exception into C++."""

    def __init__(self, logger: logging.Logger):
        super().__init__()
        self._log = logger

    def guard(self, what: str, fn: Callable[[], None]) -> None:
        """Run ``fn``; log (never propagate) an unexpected error: it would cross into C++."""
        try:
            fn()
        except Exception:  # noqa: BLE001
            self._log.error("error in QuickFIX callback %s:\n%s", what, traceback.format_exc())


class LoopInbox(Generic[T]):
    """What QuickFIX's threads hand to the asyncio loop: ``put`` there (nothing more: a slow
    callback shows up as missed heartbeats), taken in the loop in order, in batches, by ``take``.
    The loop is woken once per batch, not once per item: each wake-up is a write to its self-pipe
    and a fight for the GIL."""

    def __init__(self, take: Callable[[list[T]], None]):
        self._take = take
        self._items: collections.deque[T] = collections.deque()
        self._wake_scheduled = False
        self.loop: asyncio.AbstractEventLoop | None = None

    def put(self, item: T) -> None:
        """On QuickFIX's thread, or in the loop (QuickFIX polled there: ``fixengine.fix.polled``)."""
        self._items.append(item)
        if not self._wake_scheduled:
            loop = self.loop
            if loop is not None and not loop.is_closed():
                self._wake_scheduled = True
                try:
                    in_loop = asyncio.get_running_loop() is loop
                except RuntimeError:
                    in_loop = False
                if in_loop:
                    loop.call_soon(self.drain)  # no self-pipe write: the loop is this thread
                else:
                    loop.call_soon_threadsafe(self.drain)

    def drain(self) -> None:
        """In the loop (or once QuickFIX has stopped): hand over what was put, in order."""
        self._wake_scheduled = False  # before taking: an item put from now on wakes the loop again
        items = self._items
        if not items:
            return
        batch = []
        while items:
            batch.append(items.popleft())
        self._take(batch)


def create(cls: Callable[..., Connector], app: fix.Application, store: fix.MessageStoreFactory,
           settings: fix.SessionSettings, whose: str) -> Connector:
    """An initiator or acceptor of ``cls``; QuickFIX's ConfigError becomes a readable FixEngineError.
    No QuickFIX log factory: the applications log messages themselves (see message_log)."""
    try:
        return cls(app, store, settings)
    except fix.ConfigError as exc:
        raise FixEngineError(f"QuickFIX refused {whose} session settings: {exc}") from None


class Runner:
    """One QuickFIX initiator or acceptor and the Python thread its event loop runs on.

    ``block()`` on a Python thread, not ``start()``: callbacks are cheaper from a Python thread, and
    ``start()``'s native thread crashes on stop in these bindings."""

    def __init__(self, engine: fix.Initiator | fix.Acceptor, name: str):
        self.engine = engine
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.error: BaseException | None = None

    def _run(self) -> None:
        try:
            self.engine.block()
        except BaseException as exc:  # noqa: BLE001 - reported by stop()
            self.error = exc

    def start(self) -> None:
        self.thread.start()

    def stop(self, hold: Callable[[], AbstractContextManager[object]] | None = None) -> None:
        """Stop QuickFIX and join its thread.

        ``hold``: the acceptor stop race. QuickFIX's ``stop()`` closes its server socket; that wakes
        its own thread, which may close and delete the server at the same moment: a crash, now and
        then. While a session is logged on that thread lingers instead, so an acceptor passes a
        context that keeps one session logged on until ``stop()`` has returned."""
        with (hold or nullcontext)():
            self.engine.stop(True)
        self.thread.join(timeout=10)
        if self.error is not None:
            log.error("QuickFIX's event loop (%s) ended with an error: %r", self.thread.name, self.error)


def common_defaults(connection_type: str) -> fix.Dictionary:
    """The [DEFAULT] settings every session here shares, initiator or acceptor."""
    defaults = fix.Dictionary()
    defaults.setString("ConnectionType", connection_type)
    defaults.setString("NonStopSession", "Y")
    defaults.setString("StartTime", "00:00:00")
    defaults.setString("EndTime", "00:00:00")
    defaults.setString("UseDataDictionary", "Y")
    # Kalshi's SendingTime has milliseconds, and the Logon signature covers it byte for byte.
    defaults.setString("TimestampPrecision", "3")
    defaults.setString("MillisecondsInTimeStamp", "Y")
    defaults.setString("SocketNodelay", "Y")
    return defaults


def set_dictionaries(session: fix.Dictionary, dialect: Dialect, paths: DictionaryPaths) -> None:
    """Point a session at its merged dictionaries: one for FIX 4.4, transport + application for FIXT."""
    if dialect.is_fixt:
        session.setString("DefaultApplVerID", "FIX.5.0SP2")
        session.setString("TransportDataDictionary", str(paths.session))
        session.setString("AppDataDictionary", str(paths.application))
    else:
        session.setString("DataDictionary", str(paths.session))


def out_of_sequence_logout(logout: fix.Message, session_id: fix.SessionID) -> int | None:
    """QuickFIX 1.16 counts every Logout it receives as the next message, whatever its MsgSeqNum:
    one numbered above the expected one (messages missing before it) would make the first missing
    message look received, and it would never be asked for again; one from before the session
    (a refusal numbered 1) moves the count past the counterparty's next message. The expected
    MsgSeqNum to put back once QuickFIX has counted the Logout (in onLogout), or None."""
    session = fix.Session.lookupSession(session_id)
    if session is None:
        return None
    expected = session.getExpectedTargetNum()
    return expected if int(logout.getHeader().getField(MSG_SEQ_NUM)) != expected else None
