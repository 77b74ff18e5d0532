"""The engine's QuickFIX Application: Logon signing, message logging, session events.

Everything here runs inside a pass of QuickFIX's event loop (``fixengine.fix.polled``), under the
session's lock. A slow callback delays every session's reading and timers, so each callback reads
the few fields it needs, makes an immutable event and hands it over through ``emit``; the engine
takes what a pass handed over after it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone

import quickfix as fix

from fixengine.session.events import (
    HeartbeatReceived,
    HeartbeatTimeout,
    LoggedOn,
    LoggedOut,
    LogonRefused,
    LogonSent,
    MessagesSkipped,
    ResendRefused,
    ResendRequested,
    SequenceGap,
    SessionEvent,
    SessionRejectReceived,
)
from fixengine.fix.framing import msg_type_of, seq_num_of
from fixengine.fix.message_log import SessionMessageLog
from fixengine.fix.tags import (
    BEGIN_SEQ_NO,
    END_SEQ_NO,
    GAP_FILL_FLAG,
    MSG_HEARTBEAT,
    MSG_LOGON,
    MSG_LOGOUT,
    MSG_REJECT,
    MSG_RESEND_REQUEST,
    MSG_SEQUENCE_RESET,
    MSG_SEQ_NUM,
    MSG_TYPE,
    NEW_SEQ_NO,
    RAW_DATA,
    RAW_DATA_LENGTH,
    REF_MSG_TYPE,
    REF_SEQ_NUM,
    REF_TAG_ID,
    RESET_SEQ_NUM_FLAG,
    SENDER_COMP_ID,
    SENDING_TIME,
    SESSION_REJECT_REASON,
    TARGET_COMP_ID,
    TEST_REQ_ID,
    TEXT,
)
from fixengine.fix.quickfix import GuardedApplication, out_of_sequence_logout
from fixengine.fix.timestamps import parse_utc_timestamp
from fixengine.kalshi.signing import Signer, logon_prehash, sign
from fixengine.session import connection as conn
from fixengine.session.connection import Connection, End

log = logging.getLogger("fixengine.session")
_sent = threading.local()  # the MsgSeqNum of the last application message this thread sent


def last_sent_seq() -> int | None:
    """The MsgSeqNum QuickFIX gave the application message this thread last sent (``toApp``)."""
    return getattr(_sent, "seq", None)

Emit = Callable[[SessionEvent], None]

REJECT_SENDING_TIME_ACCURACY = 10  # SessionRejectReason (373)


@dataclass(frozen=True, slots=True)
class LogonUnanswered(SessionEvent):
    """Internal: the connection ended before the counterparty said anything. The engine finds
    out why (see ``fixengine.session.probe``) and reports a ``ConnectionFailed``."""


@dataclass(frozen=True, slots=True)
class ApplicationMessage(SessionEvent):
    """Internal: an application message as received (raw FIX), parsed in the loop, not here."""

    msg_type: str
    raw: str


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _clock_skew(their_sending_time: str | None) -> str:
    """What a SendingTime-accuracy Reject tells about our clock, from its own SendingTime."""
    theirs = parse_utc_timestamp(their_sending_time or "")
    if theirs is None:
        return ""
    skew = (_now() - theirs).total_seconds()
    return f" (our clock is {abs(skew):.1f} s {'ahead of' if skew > 0 else 'behind'} the counterparty's)"


def _field(fields: fix.FieldMap, tag: int) -> str | None:
    return fields.getField(tag) if fields.isSetField(tag) else None


@dataclass
class SessionRecord:
    """One session as the callbacks know it: its fixed facts and its current connection (QuickFIX's
    thread only; the connection's phases are ``fixengine.session.connection``)."""

    name: str
    signer: Signer
    heartbeat_interval: int
    logon_fields: list[tuple[int, str]]
    messages: SessionMessageLog
    retransmits: bool  # False on KalshiNR/DC-like sessions: never send ResendRequest/SequenceReset
    reset_on_logon: bool  # configured ResetSeqNumFlag; a refused resend forces one reset logon
    connection: Connection = field(default_factory=Connection)
    target_before_logout: int | None = None  # put back in onLogout: see out_of_sequence_logout
    last_inbound: float = 0.0


class EngineApplication(GuardedApplication):
    """QuickFIX callbacks for the engine's initiator sessions."""

    def __init__(self, sessions: dict[str, SessionRecord], emit: Emit):
        super().__init__(log)
        self._sessions = sessions  # keyed by SessionID.toString()
        # One session per initiator is the usual case: then no SessionID.toString() (a binding
        # call) is needed to find it in every callback.
        self._only = next(iter(sessions.values())) if len(sessions) == 1 else None
        self._emit = emit

    def _state(self, session_id: fix.SessionID) -> SessionRecord:
        return self._only or self._sessions[session_id.toString()]

    def onCreate(self, sessionID: fix.SessionID) -> None:
        pass

    def onLogon(self, sessionID: fix.SessionID) -> None:
        state = self._state(sessionID)

        def handle() -> None:
            conn.logged_on(state.connection)
            if not state.reset_on_logon and state.connection.sequence_reset:  # the one reset after a refused resend
                fix.Session.lookupSession(sessionID).setResetOnLogon(False)
            self._emit(LoggedOn(state.name, _now(), state.heartbeat_interval, state.connection.sequence_reset))

        self.guard("onLogon", handle)

    def onLogout(self, sessionID: fix.SessionID) -> None:
        state = self._state(sessionID)
        # Disable the session here, in the callback: QuickFIX's first reconnect is immediate, before
        # the engine could act. The engine enables it again when its backoff says so.
        session = fix.Session.lookupSession(sessionID)
        if session is not None:  # None while the initiator stops
            session.logout()
            if state.target_before_logout is not None:
                session.setNextTargetMsgSeqNum(state.target_before_logout)
        state.target_before_logout = None
        self.guard("onLogout", lambda: self._ended(state))

    def _ended(self, state: SessionRecord) -> None:
        ending = conn.ended(state.connection, time.monotonic() - state.last_inbound, state.heartbeat_interval)
        if ending.end is End.LOGGED_OUT:
            if ending.silence is not None:
                self._emit(HeartbeatTimeout(state.name, _now(), ending.silence))
            self._emit(LoggedOut(state.name, _now(), ending.reason, ending.by_counterparty))
        elif ending.end is End.REFUSED:
            self._emit(LogonRefused(state.name, _now(), ending.reason))
        else:
            self._emit(LogonUnanswered(state.name, _now()))
        state.connection = Connection()
        state.last_inbound = time.monotonic()

    def toAdmin(self, message: fix.Message, sessionID: fix.SessionID) -> None:
        state = self._state(sessionID)
        msg_type = message.getHeader().getField(MSG_TYPE)
        if msg_type == MSG_LOGON:
            self.guard("toAdmin(Logon)", lambda: self._sign_logon(message, state))
        elif msg_type == MSG_LOGOUT:
            conn.logout_sent(state.connection)
        elif msg_type in (MSG_RESEND_REQUEST, MSG_SEQUENCE_RESET) and not state.retransmits:
            self.guard("toAdmin(no retransmission)", lambda: self._no_retransmission(message, sessionID, state, msg_type))
        elif msg_type == MSG_RESEND_REQUEST:
            begin, end = _field(message, BEGIN_SEQ_NO), _field(message, END_SEQ_NO)
            self._emit(ResendRequested(state.name, _now(), int(begin or 0), int(end or 0)))
        state.messages.outgoing(message.toString())

    def _no_retransmission(self, message: fix.Message, session_id: fix.SessionID, state: SessionRecord, msg_type: str) -> None:
        """QuickFIX is about to send a ResendRequest (we saw a gap) or a SequenceReset (answering
        one) on a session where Kalshi supports neither. toAdmin cannot veto a message, so it goes
        out as a Heartbeat instead; after a gap the session logs out, to log on again with 141=Y."""
        if msg_type == MSG_RESEND_REQUEST:
            expected = _field(message, BEGIN_SEQ_NO)
            self._emit(SequenceGap(state.name, _now(), int(expected) if expected and expected.isdigit() else None))
            fix.Session.lookupSession(session_id).logout("MsgSeqNum gap on a session without retransmission")
        message.getHeader().setField(MSG_TYPE, MSG_HEARTBEAT)
        for tag in (BEGIN_SEQ_NO, END_SEQ_NO, NEW_SEQ_NO, GAP_FILL_FLAG):
            message.removeField(tag)

    def _sign_logon(self, message: fix.Message, state: SessionRecord) -> None:
        for tag, value in state.logon_fields:
            message.setField(tag, value)
        state.connection = conn.logon_sent(_field(message, RESET_SEQ_NUM_FLAG) == "Y")
        state.last_inbound = time.monotonic()
        header = message.getHeader()
        # Sign exactly what this Logon carries: QuickFIX has already stamped 34 and 52.
        sending_time, seq, sender, target = (header.getField(t) for t in (SENDING_TIME, MSG_SEQ_NUM, SENDER_COMP_ID, TARGET_COMP_ID))
        if sender != state.signer.key_id:
            raise RuntimeError(f"Logon SenderCompID {sender} is not the signing key {state.signer.key_id}")
        signature = sign(state.signer.private_key, logon_prehash(sending_time, MSG_LOGON, seq, sender, target))
        message.setField(RAW_DATA_LENGTH, str(len(signature)))
        message.setField(RAW_DATA, signature)
        self._emit(LogonSent(state.name, _now(), int(seq)))

    def fromAdmin(self, message: fix.Message, sessionID: fix.SessionID) -> None:
        state = self._state(sessionID)
        state.last_inbound = time.monotonic()
        state.messages.incoming(message.toString())
        msg_type = message.getHeader().getField(MSG_TYPE)
        if msg_type == MSG_HEARTBEAT:
            self._emit(HeartbeatReceived(state.name, _now(), _field(message, TEST_REQ_ID)))
        elif msg_type == MSG_LOGOUT:
            self.guard("fromAdmin(Logout)", lambda: self._on_logout_received(message, sessionID, state))
        elif msg_type == MSG_REJECT:
            self.guard("fromAdmin(Reject)", lambda: self._on_reject(message, sessionID, state))
        elif msg_type == MSG_LOGON:
            conn.logon_received(state.connection, _field(message, RESET_SEQ_NUM_FLAG) == "Y")
        elif msg_type == MSG_SEQUENCE_RESET and _field(message, GAP_FILL_FLAG) != "Y":
            self.guard("fromAdmin(SequenceReset)", lambda: self._on_reset_mode(message, sessionID, state))

    @staticmethod
    def _on_logout_received(message: fix.Message, session_id: fix.SessionID, state: SessionRecord) -> None:
        conn.logout_received(state.connection, _field(message, TEXT))
        state.target_before_logout = out_of_sequence_logout(message, session_id)

    def _on_reset_mode(self, message: fix.Message, session_id: fix.SessionID, state: SessionRecord) -> None:
        """QuickFIX applies a Reset-mode SequenceReset whatever its MsgSeqNum: if that is above the
        one we expect, the messages in between are skipped for good (even mid-resend)."""
        expected = fix.Session.lookupSession(session_id).getExpectedTargetNum()
        seq, new_seq_no = int(message.getHeader().getField(MSG_SEQ_NUM)), int(message.getField(NEW_SEQ_NO))
        if seq > expected and new_seq_no > expected:
            self._emit(MessagesSkipped(state.name, _now(), expected, new_seq_no))

    def _on_reject(self, message: fix.Message, session_id: fix.SessionID, state: SessionRecord) -> None:
        ref_seq, ref_type, ref_tag, reason, text = (_field(message, t) for t in (REF_SEQ_NUM, REF_MSG_TYPE, REF_TAG_ID, SESSION_REJECT_REASON, TEXT))
        event = SessionRejectReceived(
            state.name,
            _now(),
            int(ref_seq) if ref_seq and ref_seq.isdigit() else None,
            ref_type,
            int(ref_tag) if ref_tag and ref_tag.isdigit() else None,
            int(reason) if reason and reason.isdigit() else None,
            text or "",
        )
        skew = _clock_skew(_field(message.getHeader(), SENDING_TIME)) if event.reason_code == REJECT_SENDING_TIME_ACCURACY else ""
        conn.reject_received(state.connection, text or event.describe(), skew)
        self._emit(event)
        if state.connection.logged_on and ref_type == MSG_RESEND_REQUEST:
            self._resend_refused(session_id, state, event.describe())

    def _resend_refused(self, session_id: fix.SessionID, state: SessionRecord, text: str) -> None:
        """Our ResendRequest was refused: what we missed will never come. QuickFIX would wait for it
        forever (queueing everything newer), so log out and log on again with ResetSeqNumFlag=Y,
        once (``onLogon`` restores the configured flag)."""
        self._emit(ResendRefused(state.name, _now(), text))
        session = fix.Session.lookupSession(session_id)
        session.setResetOnLogon(True)
        session.logout("ResendRequest refused: logging on again with a sequence reset")

    def toApp(self, message: fix.Message, sessionID: fix.SessionID) -> None:
        raw = message.toString()
        # sendToTarget calls this on the sender's own thread, numbered: what it went out as (a
        # Reject names it), read from the text already made rather than through the binding again.
        _sent.seq = seq_num_of(raw)
        self._state(sessionID).messages.outgoing(raw)

    def fromApp(self, message: fix.Message, sessionID: fix.SessionID) -> None:
        state = self._state(sessionID)
        state.last_inbound = time.monotonic()
        raw = message.toString()
        msg_type = msg_type_of(raw)
        state.messages.incoming(raw, msg_type)
        self._emit(ApplicationMessage(state.name, _now(), msg_type, raw))
