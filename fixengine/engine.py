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
import contextlib
import logging
import random
import time
import uuid
from dataclasses import dataclass
from collections.abc import Callable, Coroutine, Iterable, Mapping
from datetime import datetime, timezone
from typing import Any

import quickfix as fix

from fixengine.config import EngineConfig
from fixengine.errors import DropCopyRefusedError, FixEngineError, MaintenanceError, SessionUnavailableError
from fixengine.events import (
    Event,
    HeartbeatReceived,
    LoggedOn,
    MessagesSkipped,
    ResendRefused,
    SequenceGap,
    SessionEvent,
)
from fixengine.kalshi.facts import RESET_REQUIRED, SessionType
from fixengine.kalshi.maintenance import KALSHI_MAINTENANCE
from fixengine.maintenance import MaintenanceEnded, MaintenanceWatch, Pause
from fixengine.fix.message_log import MessageLogs
from fixengine.logs import correlate
from fixengine.orders.drop_copy import DropCopyRefused, DropCopyReplayed, event_resend_fields
from fixengine.orders.reports import exec_position
from fixengine.orders.entry import OrderEntry
from fixengine.events import LoggedOut, SessionRejectReceived
from fixengine.orders.groups import OrderGroup, OrderGroupAction, OrderGroupConfirmed, OrderGroupRefused, OrderGroupRequest
from fixengine.orders.book import Order, OrderBook
from fixengine.orders.journal import Journal
from fixengine.orders.requests import CancelOrder, NewOrder, ReplaceOrder
from fixengine.fix.tags import MSG_EVENT_RESEND_REQUEST, MSG_TEST_REQUEST, MSG_TYPE, TEST_REQ_ID
from fixengine.reconcile.compare import Findings
from fixengine.reconcile.runner import Reconciler, ReconciliationDone, ReconciliationFailed
from fixengine.session.reconnect import Backoff
from fixengine.session.application import SessionRecord
from fixengine.session.supervisor import SessionSupervisor
from fixengine.resume import ask_again_for_unjournaled, record_all_received, settle_unsent
from fixengine.session.runtime import InitiatorRuntime, Messages
from fixengine.stream import EventStream
from fixengine.kalshi.signing import Signer, load_private_key

# Events after which messages from the counterparty are lost for good (the book gets held).
_LOST_MESSAGES = (SequenceGap, ResendRefused, MessagesSkipped)
DROP_COPY_LOGON_WAIT_S = 15.0  # how long a recovery waits for the account's drop-copy session to log on
MAINTENANCE_TICK_S = 1.0  # how often the clock is read for the weekly maintenance window's start and end

log = logging.getLogger("fixengine.engine")


@dataclass(frozen=True)
class SessionHealth:
    """One Kalshi session as ``Engine.health`` sees it now."""

    name: str
    session_type: str  # KalshiNR, KalshiRT, ...
    phase: str  # connecting, logged_on, waiting (to reconnect), stopped (refused for good), disabled (by an operator)
    reason: str | None  # why it is not logged on: the stop reason, Logon refusal or connect failure
    book_held: bool  # new orders held until its book is confirmed (after messages were lost)
    next_out_seq: int | None  # the MsgSeqNum we send next; None before QuickFIX has the session
    next_in_seq: int | None  # the MsgSeqNum we expect next
    last_in: float | None  # epoch seconds of the last message in; None: none yet
    last_out: float | None
    reconnect_attempts: int  # since it was last logged on
    reconnect_at: float | None  # epoch seconds of the next reconnect attempt; None: none scheduled
    maintenance: bool = False  # Kalshi's weekly maintenance: under way, or the session waits for its end


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Engine:
    """FIX sessions to Kalshi as an asyncio object. Start it, wait for logon, read its events."""

    def __init__(
        self,
        config: EngineConfig,
        *,
        signers: Mapping[str, Signer] | None = None,
        clock: Callable[[], datetime] = _utcnow,
    ):
        """``clock``: the time (aware) the maintenance window is read against; tests move it."""
        self.config = config
        self._signers = dict(signers or {})
        self._clock = clock
        schedule = KALSHI_MAINTENANCE if config.follows_maintenance else None
        self._maintenance = MaintenanceWatch([s.name for s in config.sessions], schedule)
        self._quickfix = InitiatorRuntime(config, self._take_messages, self._on_event)
        self._sessions = SessionSupervisor(config.sessions, self._quickfix.lookup, self._log_and_publish, self._spawn,
                                           maintenance=self._maintenance_wait)
        self._subscribers: list[asyncio.Queue[Event]] = []
        self._observers: list[Callable[[Event], None]] = []
        self._orders: OrderEntry | None = None
        self._reconciler: Reconciler | None = None
        self._messages = MessageLogs(config.log_path, enabled=config.message_log)
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Future[None] | None = None  # the stop, once begun
        self._replays: dict[str, asyncio.Lock] = {}  # drop-copy session -> one replay at a time

    # --- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Load keys, build dictionaries and settings, and start connecting every session."""
        if self._loop is not None:
            raise FixEngineError("engine already started")
        self._loop = asyncio.get_running_loop()
        records: dict[str, SessionRecord] = {}
        for s in self.config.sessions:
            signer = self._signers.get(s.name) or Signer(
                s.api_key_id, load_private_key(file=s.private_key_file, env=s.private_key_env)
            )
            if signer.key_id != s.api_key_id:
                raise FixEngineError(f"session {s.name}: signer key id {signer.key_id} is not api_key_id {s.api_key_id}")
            records[s.name] = SessionRecord(
                s.name, signer, s.heartbeat_interval, s.logon.wire_fields(), self._messages.for_session(s.name),
                retransmits=s.session_type not in RESET_REQUIRED,
                reset_on_logon=s.logon.reset_seq_num,
            )
        self._quickfix.build(self._loop, records)
        journal = Journal(self.config.journal_path, durable=self.config.journal_sync == "full",
                          legacy=self.config.legacy_journal_path)
        self._orders = OrderEntry(
            journal, {s.name: s for s in self.config.sessions}, self._quickfix.send, self._publish, self.is_logged_on,
            self._loop.call_soon, reconciled=self.config.rest is not None, paused=self._refuse_in_maintenance,
        )
        self._orders.on_halt = self._halt
        if self.config.rest is not None:
            # One key per account reads its portfolio: the first session's (its order entry, as a rule).
            keys = {s.account_id: records[s.name].signer for s in reversed(self.config.sessions)}
            self._reconciler = Reconciler(self.config.rest, self._orders.book, journal, keys,
                                          self._orders.last_report_at, self._publish, self._orders.request_sent_at,
                                          external_accounts=self.config.external_accounts)
            if self.config.rest.reconcile_interval > 0:
                self._spawn(self._reconcile_periodically(self.config.rest.reconcile_interval))
        ask_again_for_unjournaled(self.config.sessions, self._quickfix.lookup, journal)
        settle_unsent(self.config.sessions, self.config.store_path, self._orders)
        self._messages.start()
        if self._maintenance.schedule is not None:
            self._spawn(self._watch_maintenance())
        self._quickfix.start(self._loop)
        self._sessions.start(self._loop)

    async def stop(self, timeout: float = 5.0) -> None:
        """Log out every session (waiting up to ``timeout`` for the Logout to be answered), then
        stop. A second call (or one after a halt began the stop) waits for that stop to end."""
        if self._loop is None:
            return
        await asyncio.shield(self._begin_stop(timeout))

    def _begin_stop(self, timeout: float) -> asyncio.Future[None]:
        if self._stopping is None:
            self._stopping = asyncio.ensure_future(self._stop(timeout))
        return self._stopping

    async def _stop(self, timeout: float) -> None:
        self._sessions.stop()  # no reconnect, probe or connect check from here on
        if self._orders is not None:
            self._orders.flush()  # what was requested before stop() goes out before the Logout
        for name in self._quickfix.names:
            session = self._quickfix.lookup(name)
            if session is not None:
                session.logout()
        try:
            await asyncio.wait_for(self._sessions.all_logged_out(), timeout)
        except asyncio.TimeoutError:
            log.warning("sessions still logged on after %.1fs; disconnecting", timeout)
        for task in list(self._tasks):
            task.cancel()
        await self._quickfix.stop()  # what QuickFIX read before it stopped is journaled now ...
        if self._orders is not None:  # ... so a clean restart asks for nothing again
            record_all_received(self.config.sessions, self._quickfix.lookup, self._orders.journal)
        self._quickfix.close()
        if self._reconciler is not None:
            await self._reconciler.aclose()
        self._messages.stop()
        if self._orders is not None:
            try:
                self._orders.journal.close()
            except OSError as exc:  # halted on it, most likely: said already; the stop goes on
                log.error("the journal %s could not be written at the stop: %s; what it had not committed is lost "
                          "(nothing of it was sent)", self._orders.journal.path, exc.strerror or exc)
        # Let events emitted during shutdown reach their subscribers.
        await asyncio.sleep(0)

    def _halt(self, reason: str) -> None:
        """Order entry halted (its journal cannot be written): the engine stops, logging out."""
        self._begin_stop(5.0)

    @property
    def halted(self) -> str | None:
        """Why order entry halted for good (the journal could not be written), or None."""
        return self._orders.halted if self._orders is not None else None

    async def __aenter__(self) -> "Engine":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # --- events -------------------------------------------------------------------------------

    def _take_messages(self, messages: Messages) -> None:
        # The reports of a run are journaled in one commit before any of them changes the book.
        if self._orders is not None:
            self._orders.on_messages(messages)

    def _on_event(self, event: SessionEvent) -> None:
        if not self._sessions.on_event(event) or self._orders is None:
            return
        if isinstance(event, LoggedOn):
            reconciling = self._reconciler is not None and self._orders.is_order_entry(event.session)
            self._orders.on_logged_on(event.session, event.sequence_reset, reconciling)  # may hold (BookHeld)
            if self._orders.is_order_entry(event.session) and self.is_book_held(event.session) \
                    and self._drop_copy_for(event.session) is not None:
                self._spawn(self._recover_after_logon(event.session, reconciling))
            elif reconciling:
                self._spawn(self._reconcile_after_logon(event.session))
        elif isinstance(event, MessagesSkipped):
            self._orders.hold(event.session, event.describe())  # may hold new orders (BookHeld)
        elif isinstance(event, SessionRejectReceived):  # may be the answer to an order-group request
            self._orders.on_session_reject(event.session, event.ref_seq_num, event.ref_msg_type, event.ref_tag,
                                           event.reason_code, event.text)
        elif isinstance(event, LoggedOut):
            self._orders.on_logged_out(event.session)  # order-group requests left unanswered

    def _log_and_publish(self, event: Event) -> None:
        level = logging.WARNING if isinstance(event, _LOST_MESSAGES) else logging.INFO
        log.log(level, "%s: %s", event.session, event.describe(), extra=correlate(session=event.session))
        self._publish(event)

    def _publish(self, event: Event) -> None:
        for observe in self._observers:
            observe(event)
        for queue in self._subscribers:
            queue.put_nowait(event)
        for news in self._maintenance.learn(event, self._clock()):  # a report may tell of a pause
            self._log_and_publish(news)

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        """Run ``coroutine`` as a task the engine owns (cancelled at stop)."""
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- Kalshi's maintenance (fixengine.maintenance) ------------------------------------------

    @property
    def maintenance(self) -> Pause | None:
        """Kalshi's pause as the engine knows it: its weekly maintenance (new orders and amends
        raise ``MaintenanceError``), or a pause a report told of; None when none is known."""
        return self._maintenance.current

    async def _watch_maintenance(self) -> None:
        while True:
            self._tick_maintenance()
            await asyncio.sleep(MAINTENANCE_TICK_S)

    def _tick_maintenance(self) -> None:
        news = self._maintenance.tick(self._clock())
        for event in news:
            self._log_and_publish(event)
        if news and isinstance(news[0], MaintenanceEnded) and self._loop is not None:
            self._loop.call_soon(self._sessions.maintenance_over)  # not from inside a reconnect decision

    def _maintenance_wait(self) -> str | None:
        """Why a session that went down waits instead of reconnecting: the window is on."""
        self._tick_maintenance()
        pause = self._maintenance.enforced()
        if pause is None:
            return None
        return f"Kalshi's weekly maintenance until {pause.ends.isoformat() if pause.ends else '?'}: reconnecting after it"

    def _refuse_in_maintenance(self, session: str) -> None:
        if self._maintenance.schedule is None:
            return  # no window to enforce (not a Kalshi host): nothing on the order path
        if session not in self._sessions.status:
            return  # order entry names the unknown session
        self._tick_maintenance()
        pause = self._maintenance.enforced()
        if pause is not None and pause.ends is not None and self._maintenance.schedule is not None:
            raise MaintenanceError(session, self._maintenance.schedule.describe(), pause.ends)

    # --- reconciliation (fixengine.reconciliation) ---------------------------------------------

    # --- drop copy (fixengine.orders.drop_copy) ------------------------------------------------

    async def replay(self, session: str, since: str, *, until: str | None = None, timeout: float = 30.0) -> int:
        """Ask the KalshiDC ``session`` to replay its account's execution reports from ExecID
        ``since`` to ``until`` (both inclusive; default: the latest on that shard). They are journaled
        and applied as they come, like any report: one the book has seen changes nothing. Returns
        how many were replayed. Raises ``DropCopyRefusedError`` when Kalshi refuses, and
        ``SessionUnavailableError`` when the session is not logged on or no answer comes in ``timeout``."""
        self._known(session)
        s = self.config.session(session)
        if s.session_type is not SessionType.DC:
            raise FixEngineError(f"session {session} is {s.session_type.value}; a replay needs a KalshiDC session")
        for name, exec_id in (("since", since), ("until", until)):
            if exec_id is not None and exec_position(exec_id) is None:
                raise FixEngineError(f"{name}: {exec_id!r} is not a Kalshi ExecID (clock;event or clock;event;shard)")
        if not self.is_logged_on(session):
            raise SessionUnavailableError(f"session {session} is not logged on")
        async with self._replays.setdefault(session, asyncio.Lock()):  # answers carry no request id we could wait on
            stream = self.events()
            try:
                if not self._quickfix.send(s, MSG_EVENT_RESEND_REQUEST, event_resend_fields(since, until)):
                    raise SessionUnavailableError(f"session {session} could not send the replay request: not logged on")

                async def answered() -> DropCopyReplayed | DropCopyRefused:
                    while True:
                        event = await stream.next()
                        if isinstance(event, (DropCopyReplayed, DropCopyRefused)) and event.session == session:
                            return event

                try:
                    answer = await asyncio.wait_for(answered(), timeout)
                except asyncio.TimeoutError:
                    raise SessionUnavailableError(f"session {session}: no answer to the replay request in {timeout:.0f}s") from None
            finally:
                stream.close()
        if isinstance(answer, DropCopyRefused):
            raise DropCopyRefusedError(session, answer.reason, answer.describe().removeprefix("drop copy replay refused: "))
        return answer.count

    def _drop_copy_for(self, session: str) -> str | None:
        """The KalshiDC session of ``session``'s account, if one is configured."""
        account = self.config.session(session).account_id
        return next((s.name for s in self.config.sessions
                     if s.session_type is SessionType.DC and s.account_id == account), None)

    async def _recover_from_drop_copy(self, session: str) -> bool:
        """After messages were lost on ``session`` (a logon with a reset): replay the account's reports
        from the latest ExecID the book has, on each shard it has seen. True when the replay ran."""
        dc = self._drop_copy_for(session)
        account = self.config.session(session).account_id
        starts = {shard: exec_id for (owner, shard), exec_id in self.book.last_exec_ids.items() if owner == account}
        if dc is None or not starts:
            return False
        try:
            await self._sessions.wait_logged_on([dc], DROP_COPY_LOGON_WAIT_S)
            replayed = 0
            for exec_id in starts.values():
                replayed += await self.replay(dc, exec_id)
        except FixEngineError as exc:
            log.warning("%s: no drop-copy recovery through %s (%s); reconciling over REST alone", session, dc, exc,
                        extra=correlate(session=session))
            return False
        log.info("%s: drop copy %s replayed %d reports since %s", session, dc, replayed, ", ".join(starts.values()),
                 extra=correlate(session=session))
        return True

    async def reconcile(self, session: str) -> Findings:
        """Reconcile ``session``'s account against Kalshi's REST API now: heal what can be explained,
        report the rest (``ReconciliationDone``). A clean result releases a held book. Raises
        ``RestError`` or ``StaleSnapshotError`` when it cannot run (also published as
        ``ReconciliationFailed``)."""
        if self._reconciler is None:
            raise FixEngineError("reconciliation needs a [rest] section in the configuration")
        if session not in self._sessions.status:
            raise FixEngineError(f"no session named {session!r}; sessions: {', '.join(self._sessions.status)}")
        try:
            findings = await self._reconciler.run(self.config.session(session).account_id, session=session)
        except FixEngineError as exc:
            self._log_and_publish(ReconciliationFailed(session, str(exc)))
            raise
        self._order_entry().forget_requests()
        done = ReconciliationDone(session, findings)
        (log.info if findings.clean else log.error)("%s: %s", session, done.describe(), extra=correlate(session=session))
        self._publish(done)
        if findings.clean:
            self._order_entry().confirm_book(session)
        return findings

    async def _recover_after_logon(self, session: str, reconciling: bool) -> None:
        """The book is held after a logon and the account has a drop copy: what was lost comes back
        from its replay, then REST confirms it (``reconciling``). Without REST the replay alone proves
        the book: it brought every report since the latest the book had."""
        recovered = await self._recover_from_drop_copy(session)
        if reconciling:
            await self._reconcile_after_logon(session)  # or alone, when the replay could not run
        elif recovered and self.is_book_held(session):
            self.confirm_book(session)

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
            for name in self._quickfix.names:
                if self.is_logged_on(name) and self._order_entry().is_order_entry(name):
                    with contextlib.suppress(FixEngineError):  # published as ReconciliationFailed
                        await self.reconcile(name)

    def observe(self, callback: Callable[[Event], None]) -> None:
        """Call ``callback`` in the loop with every event as it happens, before any stream sees it
        (for code that must act in the same turn, such as the gateway). It must not block."""
        self._observers.append(callback)

    def events(self) -> "EventStream":
        """Every session event from now on, in order. Take it before ``start`` to see them all."""
        return EventStream(self._subscribers)

    # --- orders -------------------------------------------------------------------------------

    def _order_entry(self) -> OrderEntry:
        if self._orders is None:
            raise FixEngineError("engine not started")
        return self._orders

    @property
    def order_entry(self) -> OrderEntry:
        """The synchronous order entry behind ``submit``/``cancel``/``replace``, for code running in
        the engine's loop that must journal and queue in the same turn (the gateway)."""
        return self._order_entry()

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

    # --- order groups (fixengine.orders.groups): each waits for Kalshi's answer ------------------
    # They raise ``InvalidOrderError`` for a request that cannot be sent (a field, or a session that
    # is not order entry), ``OrderGroupError`` when Kalshi refuses it, ``SessionUnavailableError``
    # when the session is down or no answer comes in ``timeout`` seconds. Orders join a group with
    # ``NewOrder.order_group_id``; a group is managed with the subaccount and shard it was made with.

    async def create_order_group(self, session: str, contracts_limit: int, *, subaccount: int | None = None,
                                 shard: int | None = None, timeout: float = 5.0) -> OrderGroup:
        """Create an order group: at most ``contracts_limit`` contracts filled in 15 s, or Kalshi
        cancels its resting orders and refuses new ones until it is reset. Returns it with its id."""
        request = OrderGroupRequest(OrderGroupAction.CREATE, None, contracts_limit, subaccount, shard)
        return await self._order_group(session, request, timeout)

    async def update_order_group(self, session: str, group_id: str, contracts_limit: int, *,
                                 subaccount: int | None = None, shard: int | None = None, timeout: float = 5.0) -> OrderGroup:
        """Give a group a new limit (it triggers at once if its 15 s volume already exceeds it)."""
        request = OrderGroupRequest(OrderGroupAction.UPDATE, group_id, contracts_limit, subaccount, shard)
        return await self._order_group(session, request, timeout)

    async def reset_order_group(self, session: str, group_id: str, *, subaccount: int | None = None,
                                shard: int | None = None, timeout: float = 5.0) -> OrderGroup:
        """Clear a group's triggered state and its 15 s volume: it takes orders again."""
        request = OrderGroupRequest(OrderGroupAction.RESET, group_id, None, subaccount, shard)
        return await self._order_group(session, request, timeout)

    async def delete_order_group(self, session: str, group_id: str, *, subaccount: int | None = None,
                                 shard: int | None = None, timeout: float = 5.0) -> OrderGroup:
        """Remove a group; Kalshi cancels its resting orders."""
        request = OrderGroupRequest(OrderGroupAction.DELETE, group_id, None, subaccount, shard)
        return await self._order_group(session, request, timeout)

    async def trigger_order_group(self, session: str, group_id: str, *, subaccount: int | None = None,
                                  shard: int | None = None, timeout: float = 5.0) -> OrderGroup:
        """Trigger a group now: its resting orders are cancelled, new ones refused until a reset."""
        request = OrderGroupRequest(OrderGroupAction.TRIGGER, group_id, None, subaccount, shard)
        return await self._order_group(session, request, timeout)

    async def _order_group(self, session: str, request: OrderGroupRequest, timeout: float) -> OrderGroup:
        stream = self.events()  # before sending: the answer may come in the next turn of the loop
        try:
            self._order_entry().order_group(session, request)

            async def answer() -> OrderGroupConfirmed | OrderGroupRefused:
                while True:
                    event = await stream.next()
                    if isinstance(event, (OrderGroupConfirmed, OrderGroupRefused)) and event.request_id == request.request_id:
                        return event

            try:
                outcome = await asyncio.wait_for(answer(), timeout)
            except asyncio.TimeoutError:
                raise SessionUnavailableError(
                    f"session {session}: no answer to the order-group {request.action.name.lower()} in {timeout:g}s; "
                    "its outcome is unknown"
                ) from None
        finally:
            stream.close()
        if isinstance(outcome, OrderGroupRefused):
            raise outcome.error()
        return outcome.group

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
        if not self.is_logged_on(session):
            raise SessionUnavailableError(f"session {session} is not logged on")
        test_req_id = f"fixengine-{uuid.uuid4().hex[:12]}"
        message = fix.Message()
        message.getHeader().setField(MSG_TYPE, MSG_TEST_REQUEST)
        message.setField(TEST_REQ_ID, test_req_id)
        stream = self.events()
        try:
            started = time.perf_counter()
            self._quickfix.send_message(session, message)

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

    def disable_session(self, session: str) -> None:
        """Log ``session`` out and keep it down until ``enable_session`` (an operator's action)."""
        self._known(session)
        self._sessions.disable(session)

    def enable_session(self, session: str) -> None:
        """Connect a disabled (or refused-for-good) session again, now."""
        self._known(session)
        self._sessions.enable(session)

    def force_logout(self, session: str) -> None:
        """Log ``session`` out now; it reconnects after its usual backoff."""
        self._known(session)
        self._sessions.force_logout(session)

    def _known(self, session: str) -> None:
        if session not in self._sessions.status:
            raise FixEngineError(f"no session named {session!r}; configured: {', '.join(self._sessions.status)}")

    def health(self) -> list[SessionHealth]:
        """Every session as it is now (for the service's status, page and metrics)."""
        out = []
        for s in self.config.sessions:
            status = self._sessions.status[s.name]
            session = self._quickfix.lookup(s.name) if self._loop is not None else None
            messages = self._messages.session(s.name)
            out.append(SessionHealth(
                name=s.name, session_type=s.session_type.value, phase=status.phase.value,
                reason=status.maintenance or status.stopped_reason or status.refusal or status.failure,
                book_held=self._orders is not None and self._orders.is_held(s.name),
                next_out_seq=session.getExpectedSenderNum() if session is not None else None,
                next_in_seq=session.getExpectedTargetNum() if session is not None else None,
                last_in=(messages.last_in or None) if messages is not None else None,
                last_out=(messages.last_out or None) if messages is not None else None,
                reconnect_attempts=status.attempt,
                reconnect_at=status.retry.when() - self._loop.time() + time.time()
                if status.retry is not None and self._loop is not None else None,
                maintenance=status.maintenance is not None or self._maintenance.enforced() is not None,
            ))
        return out

    def observe_commits(self, callback: Callable[[float], None]) -> None:
        """Tell ``callback`` how long each commit of the order journal took (seconds)."""
        self._order_entry().journal.on_commit = callback

    @property
    def message_counts(self) -> Mapping[tuple[str, str, str], int]:
        """FIX messages logged, by (session, "in"/"out", MsgType); empty with ``message_log`` off."""
        return self._messages.counts

    def is_logged_on(self, session: str) -> bool:
        return self._sessions.is_logged_on(session)

    async def wait_logged_on(self, sessions: Iterable[str] | None = None, timeout: float = 15.0) -> None:
        """Return once every named session (default: all) is logged on.

        Raises ``LogonRefusedError`` with the counterparty's reason if one is refused, and
        ``SessionUnavailableError`` if ``timeout`` passes first.
        """
        await self._sessions.wait_logged_on(sessions, timeout)
