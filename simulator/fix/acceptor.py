"""The simulator's QuickFIX acceptor: every (dialect, session type, API key) session on one internal
loopback port, behind the logon gates. The gate has already checked each Logon; the acceptor runs
the session layer (heartbeats, TestRequests, sequence numbers, validation against the dictionaries).

QuickFIX is polled on the gates' loop (``fixengine.fix.polled``): the relay and QuickFIX share one
thread, and every message crosses it without a GIL hand-over. Sends from other threads (REST, the
expiry and maintenance threads, the fault controls) go straight to QuickFIX's session, as before.
What waits for QuickFIX (``logout``, ``forget_inbound``) must not run on that loop.

One file on purpose (over 400 lines): the application and the ``Acceptor`` share the send lock that
the sequence-reset fault and every report depend on.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import threading
import time
import traceback
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import partial

import quickfix as fix

from fixengine.fix.dialect import Dialect
from fixengine.fix.dictionary import build_dictionaries
from fixengine.errors import FixEngineError
from fixengine.kalshi.facts import RESET_REQUIRED, SessionType
from fixengine.fix.message_log import MessageLogs, SessionMessageLog
from fixengine.fix.framing import msg_type_of, parse, quickfix_text, seq_num_of
from fixengine.fix.tags import (
    ALWAYS_EMIT_NEW_BEFORE_TRADE,
    BEGIN_SEQ_NO,
    CANCEL_ORDERS_ON_DISCONNECT,
    ENABLE_IOC_CANCEL_REPORT,
    EX_DESTINATION,
    GAP_FILL_FLAG,
    LISTENER_SESSION,
    MESSAGE_RETENTION_PERIOD,
    MSG_EVENT_RESEND_REQUEST,
    MSG_HEARTBEAT,
    MSG_LOGON,
    MSG_LOGOUT,
    MSG_MARKET_SETTLEMENT_REPORT,
    MSG_RESEND_REQUEST,
    MSG_SEQUENCE_RESET,
    MSG_SEQ_NUM,
    MSG_TEST_REQUEST,
    MSG_TYPE,
    NEW_SEQ_NO,
    POSS_DUP_FLAG,
    PRESERVE_ORIGINAL_ORDER_QTY,
    RECEIVE_SETTLEMENT_REPORTS,
    RESET_SEQ_NUM_FLAG,
    SKIP_PENDING_EXEC_REPORTS,
    SKIP_PENDING_EXEC_REPORTS_LEGACY,
    SPLIT_COLLATERAL_RETURN,
    TEST_REQ_ID,
    USE_DOLLARS,
    USE_EXPIRED_ORD_STATUS,
)
from fixengine.orders.wire import first_values
from fixengine.fix.polled import PolledAcceptor
from fixengine.fix.quickfix import GuardedApplication, common_defaults, create, out_of_sequence_logout, set_dictionaries
from simulator.budgets import WriteBudgets
from simulator.config import SimulatorConfig
from simulator.events import SimEvent, SimEventKind, SimEventSink
from simulator.faults import (
    DEFAULT_SEQUENCE_JUMP,
    MAX_SEQUENCE_JUMP,
    RATE_LIMITED_MSG_TYPES,
    REJECT_RATE_LIMIT,
    TEXT_RATE_LIMITED,
    FaultController,
    FaultError,
)
from simulator.fix.grouped import grouped_message
from simulator.fix.order_reports import Outgoing, business_reject
from simulator.fix.settlement_reports import UMS_GROUPS
from simulator.fix.rejects import as_kalshi_words_it
from simulator.fix.retention import RetentionWindow
from simulator.scripted import Request
from simulator.fix.order_groups import GroupFieldError, session_reject
from simulator.exchange.venue import BadField, UnsupportedHere, Venue, event_resend_reject

log = logging.getLogger("simulator.acceptor")

EXPIRY_CHECK_S = 0.1
LOGON_SETTLE_S = 2.0  # how long logout() waits for a Logon already received to complete
SKIPPED_TEST_REQ_ID = "simulator-skipped"  # marks the Heartbeats that use numbers a SequenceReset skips




# QuickFIX must be told its port (it cannot report one the OS picked). A port the OS hands out for
# "any free port" can be handed out again to another process before QuickFIX binds it, and client
# sockets take their local ports from that same range; so the acceptor's port is drawn at random
# below it, where neither happens.
_INTERNAL_PORTS = range(20000, 32000)


def free_loopback_port() -> int:
    """A loopback port below the OS's ephemeral range that nothing is listening on."""
    for _ in range(100):
        port = random.choice(_INTERNAL_PORTS)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise FixEngineError("no free loopback port for the simulator's QuickFIX acceptor")


@dataclass(frozen=True, slots=True)
class _Session:
    """What the callbacks need about one session, read once in onCreate: every binding call in a
    callback costs a GIL hand-off, so each callback makes one (``SessionID.toString()``)."""

    session_id: fix.SessionID
    begin_string: str
    session_type: SessionType
    key_id: str  # the counterparty's SenderCompID: its API key
    account_id: str  # the exchange account that key trades for
    fixt: bool
    messages: SessionMessageLog
    retention: RetentionWindow | None  # None: no retransmission on this session type


class SimulatorApplication(GuardedApplication):
    """The simulator's sessions: order entry goes to the venue, its reports go back out."""

    def __init__(self, sink: SimEventSink, messages: MessageLogs, venue: Venue, faults: FaultController,
                 write_budget: WriteBudgets | None = None, accounts: Mapping[str, str] | None = None):
        super().__init__(log)
        self._accounts = dict(accounts or {})  # API key -> the exchange account it trades for
        self._sink = sink
        self._messages = messages
        self._venue = venue
        self._faults = faults
        self._write_budget = write_budget  # None: order entry is not rate limited (config enforce_write_budget)
        self._sessions: dict[str, _Session] = {}  # keyed by SessionID.toString()
        self.logon_flags: dict[str, dict[int, str]] = {}  # SessionID string -> Logon fields
        self._logged_on: set[str] = set()  # SessionID strings (logout waits for a Logon in flight)
        self._logged_on_changed = threading.Condition()
        self._target_before_logout: dict[str, int] = {}  # see fixengine.fix.quickfix.out_of_sequence_logout
        # SessionID string -> the last MsgSeqNum applied before forget_inbound rewound it: PossDup
        # copies up to it were applied once already (the session forgot them, the exchange did not).
        self.applied_upto: dict[str, int] = {}
        # SessionID string -> the MsgSeqNum of the last message handed to fromApp/fromAdmin: QuickFIX
        # counts it only after the callback returns (see Acceptor.forget_inbound)
        self.received_upto: dict[str, int] = {}
        # Held around every application send, and by Acceptor.sequence_reset around the reset and
        # the renumbering that must follow it with nothing sent in between.
        self.send_lock = threading.Lock()

    def send(self, outgoing: list[Outgoing]) -> None:
        """Send reports (outside the venue's lock); a session that is not logged on misses them,
        as on Kalshi's non-retransmission sessions."""
        with self.send_lock:
            for item in outgoing:
                session = self._sessions.get(item.session_id)
                if session is None:
                    continue
                if item.msg_type == MSG_MARKET_SETTLEMENT_REPORT:  # nested groups: kept in order
                    message = grouped_message(session.begin_string, item.msg_type, item.fields, UMS_GROUPS)
                else:
                    message = fix.Message(quickfix_text(session.begin_string, item.msg_type, item.fields), False)
                fix.Session.sendToTarget(message, session.session_id)

    def onCreate(self, sessionID: fix.SessionID) -> None:
        begin, ours, theirs = (
            sessionID.getBeginString().getValue(),
            sessionID.getSenderCompID().getValue(),
            sessionID.getTargetCompID().getValue(),
        )
        self._sessions[sessionID.toString()] = _Session(
            fix.SessionID(begin, ours, theirs), begin, SessionType(ours), theirs, self._accounts.get(theirs, theirs),
            sessionID.isFIXT(),
            self._messages.for_session(f"{begin}-{ours}-{theirs}"),
            None if SessionType(ours) in RESET_REQUIRED else RetentionWindow(),
        )

    def onLogon(self, sessionID: fix.SessionID) -> None:
        key = sessionID.toString()
        with self._logged_on_changed:
            self._logged_on.add(key)
            self._logged_on_changed.notify_all()
        session = self._sessions[key]
        self._venue.logged_on(key, self.logon_flags.get(key, {}), session.account_id, session.session_type)
        self.guard("onLogon", lambda: self._sink(SimEvent(SimEventKind.LOGGED_ON, session.begin_string, session.key_id, session.session_type.value)))

    def onLogout(self, sessionID: fix.SessionID) -> None:
        key = sessionID.toString()
        with self._logged_on_changed:
            self._logged_on.discard(key)
        expected = self._target_before_logout.pop(key, None)
        session_object = fix.Session.lookupSession(sessionID)
        if expected is not None and session_object is not None:  # None while the acceptor stops
            session_object.setNextTargetMsgSeqNum(expected)
        session = self._sessions[key]
        self.guard("onLogout(8013)", lambda: self.send(self._venue.logged_out(key)))
        self.guard("onLogout(enable)", lambda: self._enable(sessionID))
        self.guard("onLogout", lambda: self._sink(SimEvent(SimEventKind.LOGGED_OUT, session.begin_string, session.key_id, session.session_type.value)))

    @staticmethod
    def _enable(session_id: fix.SessionID) -> None:
        # A Logout we started (Simulator.logout) disabled the session; accept the next Logon again.
        session = fix.Session.lookupSession(session_id)
        if session is not None:  # None while the acceptor stops (sessions unregistered)
            session.logon()

    def retention(self, session_id: fix.SessionID) -> RetentionWindow | None:
        """The session's retention window; None where it has no retransmission (NR, DC ...)."""
        return self._sessions[session_id.toString()].retention

    def wait_logged_on(self, session_id: str, timeout: float) -> bool:
        with self._logged_on_changed:
            return self._logged_on_changed.wait_for(lambda: session_id in self._logged_on, timeout)

    def toAdmin(self, message: fix.Message, sessionID: fix.SessionID) -> None:
        self._sent(self._sessions[sessionID.toString()], as_kalshi_words_it(message, message.toString()))

    def fromAdmin(self, message: fix.Message, sessionID: fix.SessionID) -> None:
        key = sessionID.toString()
        session = self._sessions[key]
        raw = message.toString()
        msg_type = msg_type_of(raw)
        session.messages.incoming(raw, msg_type)
        if msg_type == MSG_LOGON:
            fields = first_values(parse(raw.encode("latin-1")))
            self.logon_flags[key] = {tag: fields[tag] for tag in _LOGON_FLAGS if tag in fields}
            if session.retention is not None:
                session.retention.logged_on(fields.get(RESET_SEQ_NUM_FLAG) == "Y", fields.get(MESSAGE_RETENTION_PERIOD))
        elif msg_type in (MSG_RESEND_REQUEST, MSG_SEQUENCE_RESET):
            self._check_retransmission(session, msg_type, raw)
        elif msg_type == MSG_LOGOUT:
            expected = out_of_sequence_logout(message, sessionID)
            if expected is not None:
                self._target_before_logout[key] = expected

    def _check_retransmission(self, session: _Session, msg_type: str, raw: str) -> None:
        """Refuse, with a Reject (35=3) from QuickFIX, what Kalshi does not serve (spec §7.3):
        ResendRequest and SequenceReset on sessions without retransmission (373=5 on MsgType,
        371=35), and a ResendRequest whose BeginSeqNo is older than the retention window (373=5
        on BeginSeqNo, 371=7). Raising here stops QuickFIX before it resends anything."""
        if session.retention is None:
            log.info("%s %s: %s refused: no retransmission on this session type",
                     session.session_type.value, session.key_id, "ResendRequest" if msg_type == MSG_RESEND_REQUEST else "SequenceReset")
            raise fix.IncorrectTagValue(MSG_TYPE)
        if msg_type == MSG_RESEND_REQUEST:
            begin = int(first_values(parse(raw.encode("latin-1")))[BEGIN_SEQ_NO])
            oldest = session.retention.oldest_kept(self._faults.retention_override(session.key_id))
            if begin < oldest:
                log.info("%s %s: ResendRequest from %d refused: the oldest message kept is %d",
                         session.session_type.value, session.key_id, begin, oldest)
                raise fix.IncorrectTagValue(BEGIN_SEQ_NO)

    def _sent(self, session: _Session, raw: str) -> None:
        session.messages.outgoing(raw)
        if session.retention is not None:
            session.retention.sent(seq_num_of(raw))

    def toApp(self, message: fix.Message, sessionID: fix.SessionID) -> None:
        self._sent(self._sessions[sessionID.toString()], message.toString())

    def fromApp(self, message: fix.Message, sessionID: fix.SessionID) -> None:
        key = sessionID.toString()
        session = self._sessions[key]
        raw = message.toString()
        fields = first_values(parse(raw.encode("latin-1")))
        msg_type = fields[MSG_TYPE]
        session.messages.incoming(raw, msg_type)
        self.received_upto[key] = int(fields.get(MSG_SEQ_NUM, "0"))
        if self.applied_upto and fields.get(POSS_DUP_FLAG) == "Y" \
                and int(fields.get(MSG_SEQ_NUM, "0")) <= self.applied_upto.get(key, 0):
            log.info("%s %s: PossDup %s %s already applied", session.session_type.value, session.key_id, msg_type,
                     fields.get(MSG_SEQ_NUM))
            return
        if msg_type in RATE_LIMITED_MSG_TYPES and self._faults.take_rate_limit(session.key_id):
            # Kalshi refuses a rate-limited request before the exchange sees it (spec §8).
            self.send([business_reject(key, fields, REJECT_RATE_LIMIT, TEXT_RATE_LIMITED)])
            return
        if msg_type == MSG_EVENT_RESEND_REQUEST and (reason := self._faults.take_event_resend_refusal(session.key_id)):
            self.send([event_resend_reject(key, fields.get(MSG_SEQ_NUM, "0"), reason, "refused by fault injection")])
            return
        budget = self._write_budget
        if budget is not None and not budget.allow(session.key_id, msg_type, fields.get(EX_DESTINATION)):
            log.info("%s %s: %s refused: over the key's write budget", session.session_type.value, session.key_id, msg_type)
            self.send([business_reject(key, fields, REJECT_RATE_LIMIT, TEXT_RATE_LIMITED)])
            return
        script = self._faults.scripts.script_for(session.key_id, msg_type, fields)  # conformance scenarios
        try:
            if script is None:
                outgoing = self._venue.handle(key, session.session_type, session.account_id, msg_type, fields, session.fixt)
            else:
                outgoing = self._faults.scripts.run(script, self._venue, Request(
                    key, session.account_id, msg_type, fields,
                    lambda: self._venue.handle(key, session.session_type, session.account_id, msg_type, fields, session.fixt)))
        except UnsupportedHere:
            raise fix.UnsupportedMessageType() from None
        except BadField as exc:
            log.info("%s %s: %s refused: %s", session.session_type.value, session.key_id, msg_type, exc)
            raise fix.IncorrectDataFormat(exc.tag) from None
        except GroupFieldError as exc:
            # A malformed UOG field gets a session Reject (spec §12), written here rather than raised:
            # the binding lets no RequiredTagMissing out of fromApp (the process exits), and the
            # Reject's Text can say what is wrong with the field.
            log.info("%s %s: %s refused: %s", session.session_type.value, session.key_id, msg_type, exc)
            outgoing = [session_reject(key, fields, exc)]
        self.send(outgoing)


# The Logon flags a session remembers (what LogonFlags.wire_fields may send, and 141).
_LOGON_FLAGS = (
    RESET_SEQ_NUM_FLAG, CANCEL_ORDERS_ON_DISCONNECT, LISTENER_SESSION, RECEIVE_SETTLEMENT_REPORTS,
    MESSAGE_RETENTION_PERIOD, SKIP_PENDING_EXEC_REPORTS_LEGACY, USE_DOLLARS, ENABLE_IOC_CANCEL_REPORT,
    PRESERVE_ORIGINAL_ORDER_QTY, SKIP_PENDING_EXEC_REPORTS, USE_EXPIRED_ORD_STATUS, ALWAYS_EMIT_NEW_BEFORE_TRADE,
    SPLIT_COLLATERAL_RETURN,
)


def acceptor_settings(
    config: SimulatorConfig, key_ids: list[str], port: int
) -> tuple[fix.SessionSettings, list[fix.SessionID]]:
    # Only the sessions some listener can reach: QuickFIX copies the dictionaries for each one.
    served: dict[Dialect, set[SessionType]] = {}
    for spec in config.listener_specs():
        served.setdefault(spec.dialect, set()).update(spec.session_types)
    dictionaries = {d: build_dictionaries(d, config.data_dir / "dictionaries") for d in served}
    settings = fix.SessionSettings()
    defaults = common_defaults("acceptor")
    defaults.setInt("SocketAcceptPort", port)
    defaults.setString("SocketReuseAddress", "Y")
    # QuickFIX listens on every interface; only the gates on this host may reach it.
    defaults.setString("AllowedRemoteAddresses", "127.0.0.1")
    defaults.setString("CheckLatency", "Y")
    # Kalshi refuses a tag it does not define (spec §18.1), user-defined or not; so does QuickFIX with
    # these (its defaults, set so that no change of defaults loosens the simulator). See rejects.py.
    defaults.setString("ValidateUserDefinedFields", "Y")
    defaults.setString("AllowUnknownMsgFields", "N")
    defaults.setInt("MaxLatency", max(1, int(config.sending_time_tolerance)))
    settings.set(defaults)
    session_ids = []
    for dialect, session_types in served.items():
        paths = dictionaries[dialect]
        for session_type in sorted(session_types, key=lambda t: t.value):
            for key in key_ids:
                d = fix.Dictionary()
                set_dictionaries(d, dialect, paths)
                session_id = fix.SessionID(dialect.begin_string, session_type.value, key)
                settings.set(session_id, d)
                session_ids.append(session_id)
    return settings, session_ids


class Acceptor:
    """The QuickFIX SocketAcceptor, polled in the gates' loop: a client of the simulator's exchange
    (``venue``), as the REST API is."""

    def __init__(self, config: SimulatorConfig, accounts: Mapping[str, str], venue: Venue, sink: SimEventSink,
                 faults: FaultController, write_budget: WriteBudgets | None = None):
        """``accounts``: every API key the simulator knows -> the exchange account it trades for."""
        self.port = free_loopback_port()
        self._messages = MessageLogs(config.data_dir / "log", enabled=config.message_log, prefix="simulator.messages")
        self._faults = faults
        self._venue = venue
        self.application = SimulatorApplication(sink, self._messages, venue, faults, write_budget, accounts)
        self._settings, self._session_ids = acceptor_settings(config, sorted(accounts), self.port)
        self._store = fix.MemoryStoreFactory()
        self._polled = PolledAcceptor(
            partial(create, fix.SocketAcceptor, self.application, self._store, self._settings, "the simulator's"),
            [self.port], lambda: None, "simulator-quickfix",  # the callbacks act themselves: nothing to hand over
        )
        self._stopping = threading.Event()
        self._expiry = threading.Thread(target=self._expire_orders, name="simulator-expiry", daemon=True)

    def _expire_orders(self) -> None:
        """DAY and GTD orders expire on time even when nothing else happens in their market."""
        while not self._stopping.wait(EXPIRY_CHECK_S):
            try:
                self.application.send(self._venue.expire())
            except Exception:  # noqa: BLE001 - keep expiring; say what went wrong
                log.error("order expiry failed:\n%s", traceback.format_exc())

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start QuickFIX, polled in ``loop`` (called there: the gates' loop), and order expiry."""
        self._messages.start()
        self._polled.start(loop)
        self._expiry.start()

    def logout(self, key_id: str, text: str) -> int:
        """Log out every session of ``key_id`` that is logged on, with ``text`` in the Logout."""
        count = 0
        for _, session in self._settled_sessions(key_id):
            if session.isLoggedOn():
                session.logout(text)
                count += 1
        return count

    def _settled_sessions(self, key_id: str) -> Iterator[tuple[fix.SessionID, fix.Session]]:
        """The key's sessions, each once a Logon it has answered counts as logged on."""
        for session_id in self._session_ids:
            if session_id.getTargetCompID().getValue() != key_id:
                continue
            session = fix.Session.lookupSession(session_id)
            if session is None:
                continue
            if session.receivedLogon() and not session.isLoggedOn():
                # Its Logon answer may be on the wire before QuickFIX counts it as logged on.
                self.application.wait_logged_on(session_id.toString(), LOGON_SETTLE_S)
            yield session_id, session

    def sequence_reset(self, key_id: str, gap_fill: bool, new_seq_no: int | None) -> int:
        """Send the key's logged-on session a SequenceReset (35=4), GapFill (123=Y) or Reset (123=N),
        then go on from its NewSeqNo (36). Returns NewSeqNo.

        The numbers it skips are used, not jumped over: each by a Heartbeat that QuickFIX numbers
        and stores but the client's connection never delivers (``FaultController.hide_heartbeat``).
        Kalshi's gap fills cover numbers it did use; so does this one, and QuickFIX's store has no
        hole. A hole (setNextSenderMsgSeqNum) lost reports: MemoryStore::get looks a resend's
        BeginSeqNo up exactly, so a ResendRequest starting in the hole was answered with one
        GapFill over every later report, and one for the reset itself also gap-filled into the
        hole (only up to the reset's own number + 1), where the client's next request started.
        Now a ResendRequest from anywhere in the range gets a GapFill up to the next report, then
        the reports. No report goes out in between (``send_lock``); a message QuickFIX itself sends
        at that very moment would take a skipped number the client sees (too low: it logs out and
        back on)."""
        faults = self._faults
        for session_id in self._session_ids:
            if session_id.getTargetCompID().getValue() != key_id:
                continue
            session = fix.Session.lookupSession(session_id)
            if session is None or not session.isLoggedOn():
                continue
            begin_string = session_id.getBeginString().getValue()
            with self.application.send_lock:
                own = session.getExpectedSenderNum()  # QuickFIX numbers the reset itself with this
                target = own + DEFAULT_SEQUENCE_JUMP if new_seq_no is None else new_seq_no
                if target <= own:
                    raise FaultError(f"new_seq_no {target} for API key {key_id} must be above {own}, the reset's own MsgSeqNum")
                if target - own > MAX_SEQUENCE_JUMP:
                    raise FaultError(f"new_seq_no {target} for API key {key_id} skips more than {MAX_SEQUENCE_JUMP} numbers after {own}, the reset's own MsgSeqNum")
                skipped = target - own - 1
                if skipped:
                    faults.hide_heartbeat(key_id, SKIPPED_TEST_REQ_ID)  # no connection: FaultError, nothing sent
                reset = quickfix_text(begin_string, MSG_SEQUENCE_RESET, [(GAP_FILL_FLAG, "Y" if gap_fill else "N"), (NEW_SEQ_NO, str(target))])
                fix.Session.sendToTarget(fix.Message(reset, False), session_id)
                heartbeat = quickfix_text(begin_string, MSG_HEARTBEAT, [(TEST_REQ_ID, SKIPPED_TEST_REQ_ID)])
                for i in range(skipped):
                    if session.getExpectedSenderNum() >= target:  # a message of QuickFIX's own took one
                        break
                    if i:
                        try:
                            faults.hide_heartbeat(key_id, SKIPPED_TEST_REQ_ID)
                        except FaultError:
                            pass  # the connection is gone: nothing reaches the client; number on
                    fix.Session.sendToTarget(fix.Message(heartbeat, False), session_id)
            return target
        raise FaultError(f"API key {key_id} has no session logged on to the simulator")

    def _logged_on_session(self, key_id: str) -> tuple[fix.SessionID, fix.Session]:
        for session_id, session in self._settled_sessions(key_id):
            if session.isLoggedOn():
                return session_id, session
        raise FaultError(f"API key {key_id} has no session logged on to the simulator")

    def test_request(self, key_id: str, test_req_id: str) -> None:
        """Send the key's logged-on session a TestRequest (35=1) carrying ``test_req_id`` (112)."""
        session_id, _ = self._logged_on_session(key_id)
        begin_string = session_id.getBeginString().getValue()
        with self.application.send_lock:
            fix.Session.sendToTarget(fix.Message(quickfix_text(begin_string, MSG_TEST_REQUEST, [(TEST_REQ_ID, test_req_id)]), False), session_id)

    def forget_inbound(self, key_id: str, from_seq: int) -> None:
        """Expect MsgSeqNum ``from_seq`` next from the key's retransmitting session (RT, PT), as if
        what it sent from there on had been lost: its next message makes QuickFIX ask for them
        again (35=2). The exchange has not forgotten them: a PossDup copy of one already applied is
        not applied again."""
        session_id, session = self._logged_on_session(key_id)
        if self.application.retention(session_id) is None:
            raise FaultError(f"API key {key_id}: {session_id.getSenderCompID().getValue()} has no retransmission")
        # A message already answered (its report may be on the wire) is counted by QuickFIX only once
        # its callback returns, and QuickFIX says nothing when it does: wait, briefly, for the count.
        received = self.application.received_upto.get(session_id.toString(), 0)
        deadline = time.monotonic() + LOGON_SETTLE_S
        while session.getExpectedTargetNum() <= received and time.monotonic() < deadline:
            time.sleep(0.001)
        expected = session.getExpectedTargetNum()
        if from_seq >= expected:
            raise FaultError(f"from_seq {from_seq} for API key {key_id} must be below {expected}, the MsgSeqNum expected next")
        key = session_id.toString()
        self.application.applied_upto[key] = max(self.application.applied_upto.get(key, 0), expected - 1)
        session.setNextTargetMsgSeqNum(from_seq)

    async def stop(self) -> None:
        """In the loop QuickFIX is polled in."""
        self._stopping.set()
        if self._expiry.ident is not None:  # started
            await asyncio.to_thread(self._expiry.join, 5)
        await self._polled.stop()
        self._messages.stop()
