"""The engine: FIX sessions to Kalshi driven from asyncio.

QuickFIX runs its event loop on a Python thread of its own; its callbacks hand immutable events to
the asyncio loop with ``call_soon_threadsafe`` (one writer: all state changes happen in the loop).

    async with Engine(load_config("config/kalshi-demo.toml")) as engine:
        await engine.wait_logged_on()
        async for event in engine.events():
            print(event.session, event.describe())
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import random
import threading
import time
import uuid
from collections.abc import Coroutine, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, TypeVar

import quickfix as fix

from fixengine.config import EngineConfig, SessionConfig
from fixengine.session.probe import probe
from fixengine.errors import FixEngineError, LogonRefusedError, SessionUnavailableError
from fixengine.events import (
    ConnectionFailed,
    HeartbeatReceived,
    LoggedOn,
    LoggedOut,
    LogonRefused as LogonRefusedEvent,
    MessagesSkipped,
    ReconnectScheduled,
    ResendRefused,
    SequenceGap,
    SessionEvent,
    SessionStopped,
)
from fixengine.fix.framing import quickfix_text
from fixengine.kalshi.facts import RESET_REQUIRED
from fixengine.fix.message_log import MessageLogs
from fixengine.orders.entry import (
    BookHeld,
    BookReleased,
    BusinessRejected,
    MassCancelDone,
    OrderEntry,
    ReportUnreadable,
    SendFailed,
)
from fixengine.orders.book import BookEvent, Order, OrderBook
from fixengine.orders.journal import Journal
from fixengine.orders.requests import CancelOrder, NewOrder, ReplaceOrder
from fixengine.orders.wire import Fields
from fixengine.fix.settings import initiator_groups, initiator_settings, sent_cl_ord_ids, session_id
from fixengine.reconcile.compare import Findings
from fixengine.reconcile.runner import Reconciler, ReconciliationDone, ReconciliationFailed
from fixengine.session.reconnect import Backoff, Retry, classify_refusal, retry_delay
from fixengine.session.application import ApplicationMessage, EngineApplication, LogonUnanswered, SessionState
from fixengine.kalshi.signing import Signer, load_private_key

# Events after which messages from the counterparty are lost for good (the book gets held).
_LOST_MESSAGES = (SequenceGap, ResendRefused, MessagesSkipped)

log = logging.getLogger("fixengine.engine")

# Everything a subscriber may see: session events, order-book events, order-entry outcomes.
Event = (
    SessionEvent | BookEvent | BusinessRejected | MassCancelDone | ReportUnreadable | SendFailed | BookHeld | BookReleased
    | ReconciliationDone | ReconciliationFailed
)
E = TypeVar("E")

# A session not logged on this long after starting (or after reconnect_interval, once it lost its
# connection) is probed, and the reason it cannot connect is reported as ConnectionFailed.
CONNECT_GRACE_S = 3.0


@dataclass
class _Status:
    """The loop's view of one session."""

    config: SessionConfig
    logged_on: bool = False
    refusal: str | None = None  # the last Logon refusal, until a logon succeeds
    stopped: str | None = None  # refused for good: not retried until the engine restarts
    connect_check: asyncio.TimerHandle | None = None
    failure: str | None = None  # the connect failure last reported, until a logon succeeds
    attempt: int = 0  # reconnect attempts since the session was last logged on
    retry: asyncio.TimerHandle | None = None  # the scheduled reconnect
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def backoff(self) -> Backoff:
        return Backoff(float(self.config.reconnect_interval), float(self.config.reconnect_max_interval))


class _Initiator:
    """One QuickFIX initiator (plain or TLS) and the thread its event loop runs on."""

    def __init__(self, initiator: fix.Initiator, name: str):
        self.initiator = initiator
        # block() on a Python thread: cheaper callbacks than start()'s native thread.
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.error: BaseException | None = None

    def _run(self) -> None:
        try:
            self.initiator.block()
        except BaseException as exc:  # noqa: BLE001 - reported by stop()
            self.error = exc

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.initiator.stop(True)
        self.thread.join(timeout=10)
        if self.error is not None:
            log.error("QuickFIX's event loop (%s) ended with an error: %r", self.thread.name, self.error)


class Engine:
    """FIX sessions to Kalshi as an asyncio object. Start it, wait for logon, read its events."""

    def __init__(self, config: EngineConfig, *, signers: Mapping[str, Signer] | None = None):
        self.config = config
        self._signers = dict(signers or {})
        self._status = {s.name: _Status(s) for s in config.sessions}
        self._subscribers: list[asyncio.Queue[Event]] = []
        self._orders: OrderEntry | None = None
        self._reconciler: Reconciler | None = None
        self._initiators: list[_Initiator] = []
        self._messages = MessageLogs(config.log_path, enabled=config.message_log)
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._inbox: collections.deque[SessionEvent] = collections.deque()  # from QuickFIX's thread
        self._wake_scheduled = False
        self._session_ids = {s.name: session_id(s) for s in config.sessions}
        self._stopped = False

    # --- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Load keys, build dictionaries and settings, and start connecting every session."""
        if self._loop is not None:
            raise FixEngineError("engine already started")
        self._loop = asyncio.get_running_loop()
        states: dict[str, SessionState] = {}
        for s in self.config.sessions:
            signer = self._signers.get(s.name) or Signer(
                s.api_key_id, load_private_key(file=s.private_key_file, env=s.private_key_env)
            )
            if signer.key_id != s.api_key_id:
                raise FixEngineError(f"session {s.name}: signer key id {signer.key_id} is not api_key_id {s.api_key_id}")
            states[session_id(s).toString()] = SessionState(
                s.name, signer, s.heartbeat_interval, s.logon.wire_fields(), self._messages.for_session(s.name),
                retransmits=s.session_type not in RESET_REQUIRED,
                reset_on_logon=s.logon.reset_seq_num,
            )
        for group in initiator_groups(list(self.config.sessions)):
            self._initiators.append(self._make_initiator(group, states))
        journal = Journal(self.config.journal_path, durable=self.config.journal_sync == "full")
        self._orders = OrderEntry(
            journal, {s.name: s for s in self.config.sessions}, self._send, self._publish, self.is_logged_on,
            self._loop.call_soon, reconciled=self.config.rest is not None,
        )
        if self.config.rest is not None:
            keys = {state.signer.key_id: state.signer.private_key for state in states.values()}
            self._reconciler = Reconciler(self.config.rest, self._orders.book, journal, keys,
                                          self._orders.last_report_at, self._publish, self._orders.request_sent_at)
            if self.config.rest.reconcile_interval > 0:
                self._spawn(self._reconcile_periodically(self.config.rest.reconcile_interval))
        self._ask_again_for_unjournaled(journal)
        self._settle_unsent()
        self._messages.start()
        for initiator in self._initiators:
            initiator.start()
        for status in self._status.values():
            self._expect_logon(status, CONNECT_GRACE_S)

    def _settle_unsent(self) -> None:
        """Where QuickFIX keeps what it sends (sessions that retransmit and keep their sequence
        across logons), a request journaled but not in its store never went out: settled as refused
        at once, instead of waiting for an answer that cannot come."""
        orders = self._order_entry()
        for s in self.config.sessions:
            if s.session_type in RESET_REQUIRED or s.logon.reset_seq_num or not orders.is_order_entry(s.name):
                continue
            sent = sent_cl_ord_ids(self.config.store_path / s.name)
            if sent is not None:
                orders.settle_unsent(s.name, sent)

    def _all_received(self) -> None:
        """At a clean stop every message QuickFIX counted is journaled or was an admin message:
        the journal records its count, and the next start asks for nothing again."""
        if self._orders is None:
            return
        for s in self.config.sessions:
            session = fix.Session.lookupSession(self._session_ids[s.name])
            if session is not None:
                self._orders.journal.record_received(s.name, session.getExpectedTargetNum() - 1)

    def _ask_again_for_unjournaled(self, journal: Journal) -> None:
        """QuickFIX counts a message as received when its callback returns; the loop journals it a
        moment later. A process killed in between would restart past messages it never journaled,
        so where the counterparty retransmits, the session expects the message after the last one
        journaled: the rest is asked for again (duplicates are recognised by ExecID)."""
        for s in self.config.sessions:
            if s.session_type in RESET_REQUIRED or s.logon.reset_seq_num:
                continue  # every logon starts from 1: nothing to ask for
            last = journal.received(s.name)
            session = fix.Session.lookupSession(self._session_ids[s.name])
            if session is None:
                continue
            expected = session.getExpectedTargetNum()
            if last is None:
                # The first start on this journal: what QuickFIX counted so far is the baseline, so
                # that a kill before the first batch is journaled still asks for that batch again.
                journal.record_received(s.name, expected - 1)
            elif expected > last + 1:
                log.warning("%s: messages %d-%d were received but not journaled before the last stop; "
                            "asking for them again", s.name, last + 1, expected - 1)
                session.setNextTargetMsgSeqNum(last + 1)
        journal.commit()

    def _make_initiator(self, sessions: list[SessionConfig], states: dict[str, SessionState]) -> _Initiator:
        settings = initiator_settings(self.config, sessions)
        mine = {session_id(s).toString(): states[session_id(s).toString()] for s in sessions}
        app = EngineApplication(mine, self._emit_threadsafe)
        store = fix.FileStoreFactory(settings)
        tls = sessions[0].tls
        cls = fix.SSLSocketInitiator if tls else fix.SocketInitiator
        try:
            # No QuickFIX log factory: the application logs messages itself (see message_log).
            initiator = cls(app, store, settings)
        except fix.ConfigError as exc:
            raise FixEngineError(f"QuickFIX refused the session settings: {exc}") from None
        return _Initiator(initiator, "quickfix-tls" if tls else "quickfix")

    async def stop(self, timeout: float = 5.0) -> None:
        """Log out every session (waiting up to ``timeout`` for the Logout to be answered), then stop."""
        if self._loop is None or self._stopped:
            return
        self._stopped = True
        if self._orders is not None:
            self._orders.flush()  # what was requested before stop() goes out before the Logout
        for status in self._status.values():
            session = fix.Session.lookupSession(self._session_ids[status.config.name])
            if session is not None:
                session.logout()
        try:
            await asyncio.wait_for(self._all_logged_out(), timeout)
        except asyncio.TimeoutError:
            log.warning("sessions still logged on after %.1fs; disconnecting", timeout)
        for status in self._status.values():
            self._cancel_timers(status)
        for task in list(self._tasks):
            task.cancel()
        for initiator in self._initiators:
            await asyncio.to_thread(initiator.stop)
        self._take_inbox()  # what QuickFIX read before it stopped is journaled now ...
        self._all_received()  # ... so a clean restart asks for nothing again
        # Drop the initiators: their C++ sessions leave QuickFIX's process-wide registry, so an
        # engine started again in this process (same SessionIDs) gets fresh sessions.
        self._initiators.clear()
        if self._reconciler is not None:
            await self._reconciler.aclose()
        self._messages.stop()
        if self._orders is not None:
            self._orders.journal.close()
        # Let events emitted during shutdown reach their subscribers.
        await asyncio.sleep(0)

    async def _all_logged_out(self) -> None:
        while any(s.logged_on for s in self._status.values()):
            await self._any_change()

    async def _any_change(self) -> None:
        waiters = [asyncio.ensure_future(s.changed.wait()) for s in self._status.values()]
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()

    async def __aenter__(self) -> "Engine":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # --- events -------------------------------------------------------------------------------

    def _emit_threadsafe(self, event: SessionEvent) -> None:
        """Called on QuickFIX's thread: hand the event to the loop, nothing more. Events queue in
        the inbox; the loop is woken once per batch, not once per event (each wake-up is a write
        to its self-pipe and a fight for the GIL)."""
        self._inbox.append(event)
        if not self._wake_scheduled:
            loop = self._loop
            if loop is not None and not loop.is_closed():
                self._wake_scheduled = True
                loop.call_soon_threadsafe(self._take_inbox)

    def _take_inbox(self) -> None:
        self._wake_scheduled = False  # before taking: an event appended from now on wakes us again
        inbox = self._inbox
        messages: list[tuple[str, str, str]] = []  # a run of application messages, handled together
        while inbox:
            event = inbox.popleft()
            if isinstance(event, ApplicationMessage):
                messages.append((event.session, event.msg_type, event.raw))
                continue
            self._take_messages(messages)  # in the order things happened: a run, then this event
            messages = []
            self._on_event(event)
        self._take_messages(messages)

    def _take_messages(self, messages: list[tuple[str, str, str]]) -> None:
        # The reports of a run are journaled in one commit before any of them changes the book.
        if messages and self._orders is not None:
            self._orders.on_messages(messages)

    def _on_event(self, event: SessionEvent) -> None:
        status = self._status.get(event.session)
        if status is not None:
            if isinstance(event, LogonUnanswered):
                self._diagnose(status, if_reachable="closed the connection before answering the Logon")
                return
            if isinstance(event, ConnectionFailed):
                if event.reason == status.failure:
                    return  # reported once per streak of identical failures
                status.failure = event.reason
            elif isinstance(event, LoggedOn):
                status.logged_on, status.refusal, status.failure, status.attempt = True, None, None, 0
                self._cancel_timers(status)
                self._changed(status)
                self._log_and_publish(event)
                if self._orders is not None:
                    reconciling = self._reconciler is not None and self._orders.is_order_entry(event.session)
                    self._orders.on_logged_on(event.session, event.sequence_reset, reconciling)  # may hold (BookHeld)
                    if reconciling:
                        self._spawn(self._reconcile_after_logon(event.session))
                return
            elif isinstance(event, MessagesSkipped):
                self._log_and_publish(event)
                if self._orders is not None:
                    self._orders.hold(event.session, event.describe())  # may hold new orders (BookHeld)
                return
            elif isinstance(event, LoggedOut):
                status.logged_on = False
                self._log_and_publish(event)
                self._reconnect_later(status, Retry.BACKOFF)
                self._changed(status)
                return
            elif isinstance(event, LogonRefusedEvent):
                status.logged_on, status.refusal = False, event.reason
                self._log_and_publish(event)
                retry = classify_refusal(event.reason)
                if retry is Retry.NEVER:
                    status.stopped = event.reason
                    self._cancel_timers(status)
                    self._log_and_publish(SessionStopped(event.session, event.at, event.reason))
                else:
                    self._reconnect_later(status, retry)
                self._changed(status)
                return
            self._changed(status)
        self._log_and_publish(event)

    def _log_and_publish(self, event: Event) -> None:
        level = logging.WARNING if isinstance(event, _LOST_MESSAGES) else logging.INFO
        log.log(level, "%s: %s", event.session, event.describe())
        self._publish(event)

    @staticmethod
    def _changed(status: _Status) -> None:
        status.changed.set()
        status.changed = asyncio.Event()

    # --- reconnecting (policy: fixengine/session/reconnect.py) ----------------------------------------

    def _cancel_timers(self, status: _Status) -> None:
        for timer in (status.connect_check, status.retry):
            if timer is not None:
                timer.cancel()
        status.connect_check = status.retry = None

    def _reconnect_later(self, status: _Status, retry: Retry) -> None:
        """The session is down and disabled (onLogout disables it; so does a failed connect):
        enable it again once the backoff for this attempt has passed."""
        if self._stopped or self._loop is None or status.stopped is not None:
            return
        self._cancel_timers(status)
        delay = retry_delay(retry, status.attempt, status.backoff, status.config.heartbeat_interval, random.random())
        if delay is None:
            return
        status.attempt += 1
        status.retry = self._loop.call_later(delay, self._enable, status)
        self._log_and_publish(ReconnectScheduled(status.config.name, datetime.now(timezone.utc), delay, status.attempt))

    def _enable(self, status: _Status) -> None:
        status.retry = None
        if self._stopped or status.stopped is not None:
            return
        session = fix.Session.lookupSession(self._session_ids[status.config.name])
        if session is not None:
            session.logon()  # QuickFIX connects enabled sessions within a second
        self._expect_logon(status, CONNECT_GRACE_S + 1)

    def _publish(self, event: Event) -> None:
        for queue in self._subscribers:
            queue.put_nowait(event)

    def _expect_logon(self, status: _Status, within: float) -> None:
        """Unless the session is logged on (or refused) within ``within`` seconds, find out why."""
        if self._stopped or self._loop is None:
            return
        if status.connect_check is not None:
            status.connect_check.cancel()

        def check() -> None:
            status.connect_check = None
            if not status.logged_on and status.stopped is None and status.retry is None:
                self._diagnose(status, if_reachable=None)

        status.connect_check = self._loop.call_later(within, check)

    def _diagnose(self, status: _Status, if_reachable: str | None) -> None:
        """Probe the session's address; report why it cannot log on as ConnectionFailed. When the
        address is reachable, report ``if_reachable`` (None: nothing to report yet)."""
        if self._stopped:
            return
        s = status.config

        async def diagnose() -> None:
            reason = await probe(s.host, s.port, s.tls, s.tls_ca_file)
            if reason is None and if_reachable is not None:
                reason = f"{s.host}:{s.port} {if_reachable}"
            if self._stopped or status.logged_on or status.stopped is not None:
                return
            if reason is None:  # reachable: a Logon may still be on its way; look again later
                self._expect_logon(status, CONNECT_GRACE_S)
                return
            self._on_event(ConnectionFailed(s.name, datetime.now(timezone.utc), reason))
            session = fix.Session.lookupSession(self._session_ids[s.name])
            if session is not None:
                session.logout()  # no more attempts by QuickFIX until the backoff has passed
            self._reconnect_later(status, Retry.BACKOFF)

        self._spawn(diagnose())

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        """Run ``coroutine`` as a task the engine owns (cancelled at stop)."""
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- reconciliation (fixengine.reconciliation) ---------------------------------------------

    async def reconcile(self, session: str) -> Findings:
        """Reconcile ``session``'s account against Kalshi's REST API now: heal what can be explained,
        report the rest (``ReconciliationDone``). A clean result releases a held book. Raises
        ``RestError`` or ``StaleSnapshotError`` when it cannot run (also published as
        ``ReconciliationFailed``)."""
        if self._reconciler is None:
            raise FixEngineError("reconciliation needs a [rest] section in the configuration")
        if session not in self._status:
            raise FixEngineError(f"no session named {session!r}; sessions: {', '.join(self._status)}")
        try:
            findings = await self._reconciler.run(self.config.session(session).api_key_id)
        except FixEngineError as exc:
            self._log_and_publish(ReconciliationFailed(session, str(exc)))
            raise
        self._order_entry().forget_requests()
        done = ReconciliationDone(session, findings)
        (log.info if findings.clean else log.error)("%s: %s", session, done.describe())
        self._publish(done)
        if findings.clean:
            self._order_entry().confirm_book(session)
        return findings

    async def _reconcile_after_logon(self, session: str) -> None:
        """After a logon new orders wait until the book is proven (``BookHeld`` ... ``BookReleased``);
        a failed attempt is retried with backoff while the session stays logged on."""
        backoff = Backoff(1.0, 30.0)
        attempt = 0
        while self.is_logged_on(session) and self.is_book_held(session):
            try:
                findings = await self.reconcile(session)
            except FixEngineError:
                findings = None
            if findings is not None:
                return  # clean: released; or unexplained: held until a human looks (confirm_book)
            await asyncio.sleep(backoff.delay(attempt, random.random()))
            attempt += 1

    async def _reconcile_periodically(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            for status in self._status.values():
                name = status.config.name
                if status.logged_on and self._order_entry().is_order_entry(name):
                    with contextlib.suppress(FixEngineError):  # published as ReconciliationFailed
                        await self.reconcile(name)

    def events(self) -> "EventStream":
        """Every session event from now on, in order. Take it before ``start`` to see them all."""
        return EventStream(self._subscribers)

    # --- orders -------------------------------------------------------------------------------

    def _send(self, session: SessionConfig, msg_type: str, fields: Fields) -> bool:
        message = fix.Message(quickfix_text(session.dialect.begin_string, msg_type, fields), False)
        return fix.Session.sendToTarget(message, self._session_ids[session.name])

    def _order_entry(self) -> OrderEntry:
        if self._orders is None:
            raise FixEngineError("engine not started")
        return self._orders

    async def submit(self, session: str, order: NewOrder) -> Order:
        """Journal a new order on ``session`` and queue it; returns it as pending. It goes out in
        this turn of the loop, once the journal has committed it (with every other request of
        the turn). Its fate arrives as events (OrderAccepted, OrderFilled, OrderRejected ...).
        Raises ``InvalidOrderError`` before journaling anything the exchange would refuse for its form."""
        return self._order_entry().submit(session, order)

    async def cancel(self, session: str, request: CancelOrder) -> Order:
        """Journal, then send (as ``submit``) a cancel of ``request.order``'s remaining quantity."""
        return self._order_entry().cancel(session, request)

    async def replace(self, session: str, request: ReplaceOrder) -> Order:
        """Journal, then send (as ``submit``) a cancel/replace (new total quantity, price, expiry)."""
        return self._order_entry().replace(session, request)

    async def mass_cancel(self, session: str) -> str:
        """Cancel every order of a KalshiNR session (at most once a second); returns its ClOrdID."""
        return self._order_entry().mass_cancel(session)

    def confirm_book(self, session: str) -> None:
        """Declare ``session``'s book right (after reconciling it): releases a ``BookHeld`` hold."""
        self._order_entry().confirm_book(session)

    def is_book_held(self, session: str) -> bool:
        """True while new orders on ``session`` are held because its book is unconfirmed."""
        return self._order_entry().is_held(session)

    @property
    def book(self) -> OrderBook:
        """The order book (read it; change it only through the methods above)."""
        return self._order_entry().book

    async def test_request(self, session: str, timeout: float = 5.0) -> float:
        """Send a TestRequest and return the seconds until its Heartbeat came back."""
        status = self._status[session]
        if not status.logged_on:
            raise SessionUnavailableError(f"session {session} is not logged on")
        test_req_id = f"fixengine-{uuid.uuid4().hex[:12]}"
        message = fix.Message()
        message.getHeader().setField(35, "1")
        message.setField(112, test_req_id)
        stream = self.events()
        try:
            started = time.perf_counter()
            fix.Session.sendToTarget(message, self._session_ids[status.config.name])

            async def answered() -> None:
                while True:
                    event = await stream.next()
                    if isinstance(event, HeartbeatReceived) and event.test_req_id == test_req_id:
                        return

            try:
                await asyncio.wait_for(answered(), timeout)
            except asyncio.TimeoutError:
                raise SessionUnavailableError(f"session {session}: no answer to TestRequest in {timeout:.0f}s") from None
            return time.perf_counter() - started
        finally:
            stream.close()

    # --- state --------------------------------------------------------------------------------

    def is_logged_on(self, session: str) -> bool:
        return self._status[session].logged_on

    async def wait_logged_on(self, sessions: Iterable[str] | None = None, timeout: float = 15.0) -> None:
        """Return once every named session (default: all) is logged on.

        Raises ``LogonRefusedError`` with the counterparty's reason if one is refused, and
        ``SessionUnavailableError`` if ``timeout`` passes first.
        """
        names = list(sessions) if sessions is not None else list(self._status)
        for name in names:
            if name not in self._status:
                raise FixEngineError(f"no session named {name!r}; configured: {', '.join(self._status)}")

        async def wait() -> None:
            while True:
                for name in names:
                    refusal = self._status[name].refusal
                    if refusal is not None:
                        raise LogonRefusedError(name, refusal, permanent=self._status[name].stopped is not None)
                if all(self._status[n].logged_on for n in names):
                    return
                await self._any_change()

        try:
            await asyncio.wait_for(wait(), timeout)
        except asyncio.TimeoutError:
            down = [n for n in names if not self._status[n].logged_on]
            raise SessionUnavailableError(f"not logged on after {timeout:.0f}s: {', '.join(down)}") from None


class EventStream:
    """Events in the order they happened; an async iterator with waiting helpers."""

    def __init__(self, subscribers: list[asyncio.Queue[Event]]):
        self._queue: asyncio.Queue[Event] = asyncio.Queue()
        self._subscribers = subscribers
        subscribers.append(self._queue)

    def __aiter__(self) -> "EventStream":
        return self

    async def __anext__(self) -> Event:
        return await self._queue.get()

    async def next(self, timeout: float | None = None) -> Event:
        """The next event; ``TimeoutError`` if none comes within ``timeout`` seconds."""
        return await asyncio.wait_for(self._queue.get(), timeout)

    async def wait_for(
        self, kind: type[E], session: str | None = None, timeout: float = 15.0
    ) -> E:
        """Skip events until one of type ``kind`` (for ``session``, if given) arrives."""

        async def wait() -> E:
            while True:
                event = await self._queue.get()
                if isinstance(event, kind) and (session is None or getattr(event, "session", None) == session):
                    return event

        return await asyncio.wait_for(wait(), timeout)

    def drain(self) -> list[Event]:
        """The events already delivered and not yet read, without waiting."""
        out = []
        while not self._queue.empty():
            out.append(self._queue.get_nowait())
        return out

    def close(self) -> None:
        if self._queue in self._subscribers:
            self._subscribers.remove(self._queue)
