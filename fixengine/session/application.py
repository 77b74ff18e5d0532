"""The engine's QuickFIX Application: Logon signing, message logging, session events.

Everything here runs on QuickFIX's thread, under the session's lock. A slow callback shows up as
missed heartbeats, so each callback reads the few fields it needs, makes an immutable event and
hands it to the asyncio loop through ``emit``; all other work happens in the loop.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone

import quickfix as fix

from fixengine.events import (
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
from fixengine.fix.framing import msg_type_of
from fixengine.fix.message_log import SessionMessageLog
from fixengine.orders.wire import parse_utc_timestamp
from fixengine.kalshi.signing import Signer, logon_prehash, sign

log = logging.getLogger("fixengine.session")

Emit = Callable[[SessionEvent], None]

# QuickFIX drops a session after 2.4 heartbeat intervals without inbound traffic (a TestRequest
# goes out at 1.2); a disconnect after at least 2 silent intervals, with no Logout, is that timeout.
SILENCE_INTERVALS = 2.0
REJECT_SENDING_TIME_ACCURACY = 10  # SessionRejectReason (373)


@dataclass(frozen=True, slots=True)
class LogonUnanswered(SessionEvent):
    """Internal: the connection ended before the counterparty said anything. The engine finds
    out why (see ``fixengine.diagnose``) and reports a ``ConnectionFailed``."""


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
    return expected if int(logout.getHeader().getField(34)) != expected else None


@dataclass
class SessionState:
    """What the callbacks remember about one session's current connection (QuickFIX thread only)."""

    name: str
    signer: Signer
    heartbeat_interval: int
    logon_fields: list[tuple[int, str]]
    messages: SessionMessageLog
    retransmits: bool  # False on KalshiNR/DC-like sessions: never send ResendRequest/SequenceReset
    reset_on_logon: bool  # configured ResetSeqNumFlag; a refused resend forces one reset logon
    logged_on: bool = False
    sequence_reset: bool = False  # this connection's Logon (ours or theirs) carried 141=Y
    target_before_logout: int | None = None  # put back in onLogout: see out_of_sequence_logout
    logout_text: str | None = None
    logout_by_us: bool | None = None  # who sent the first Logout on this connection
    reject_text: str | None = None  # a Reject received before Logon, for the refusal reason
    clock_skew: str = ""  # what a SendingTime-accuracy Reject before Logon said about our clock
    last_inbound: float = 0.0

    @property
    def refused(self) -> bool:
        """The counterparty answered our Logon with a Logout (or a Reject): it said no."""
        return not self.logged_on and (self.logout_by_us is False or self.reject_text is not None)

    def reset_connection(self) -> None:
        self.logged_on = False
        self.logout_text = None
        self.logout_by_us = None
        self.reject_text = None
        self.clock_skew = ""
        self.sequence_reset = False
        self.last_inbound = time.monotonic()


class EngineApplication(fix.Application):
    """QuickFIX callbacks for the engine's initiator sessions."""

    def __init__(self, sessions: dict[str, SessionState], emit: Emit):
        super().__init__()
        self._sessions = sessions  # keyed by SessionID.toString()
        # One session per initiator is the usual case: then no SessionID.toString() (a binding
        # call, and a GIL hand-off) is needed to find it in every callback.
        self._only = next(iter(sessions.values())) if len(sessions) == 1 else None
        self._emit = emit

    def _state(self, session_id: fix.SessionID) -> SessionState:
        return self._only or self._sessions[session_id.toString()]

    def _guard(self, what: str, fn: Callable[[], None]) -> None:
        """Run ``fn``; log (never propagate) an unexpected error: it would cross into C++."""
        try:
            fn()
        except Exception:  # noqa: BLE001
            log.error("error in QuickFIX callback %s:\n%s", what, traceback.format_exc())

    def onCreate(self, sessionID: fix.SessionID) -> None:
        pass

    def onLogon(self, sessionID: fix.SessionID) -> None:
        state = self._state(sessionID)

        def handle() -> None:
            state.logged_on = True
            if not state.reset_on_logon and state.sequence_reset:  # the one reset after a refused resend
                fix.Session.lookupSession(sessionID).setResetOnLogon(False)
            self._emit(LoggedOn(state.name, _now(), state.heartbeat_interval, state.sequence_reset))

        self._guard("onLogon", handle)

    def onLogout(self, sessionID: fix.SessionID) -> None:
        state = self._state(sessionID)
        # Disable the session here, on QuickFIX's thread: QuickFIX's first reconnect is immediate,
        # before the loop could act. The engine enables it again when its backoff says so.
        session = fix.Session.lookupSession(sessionID)
        if session is not None:  # None while the initiator stops
            session.logout()
            if state.target_before_logout is not None:
                session.setNextTargetMsgSeqNum(state.target_before_logout)
        state.target_before_logout = None
        self._guard("onLogout", lambda: self._ended(state))

    def _ended(self, state: SessionState) -> None:
        if state.logged_on:
            reason = state.logout_text or ""
            by_counterparty = state.logout_by_us is not True
            if state.logout_by_us is None and not reason:
                silence = time.monotonic() - state.last_inbound
                if silence >= SILENCE_INTERVALS * state.heartbeat_interval:
                    reason = "heartbeat timeout: the counterparty went silent"
                    self._emit(HeartbeatTimeout(state.name, _now(), silence))
                else:
                    reason = "connection lost"
            self._emit(LoggedOut(state.name, _now(), reason, by_counterparty))
        elif state.refused:
            reason = (state.logout_text or state.reject_text or "Logout without a reason") + state.clock_skew
            self._emit(LogonRefused(state.name, _now(), reason))
        else:
            self._emit(LogonUnanswered(state.name, _now()))
        state.reset_connection()

    def toAdmin(self, message: fix.Message, sessionID: fix.SessionID) -> None:
        state = self._state(sessionID)
        msg_type = message.getHeader().getField(35)
        if msg_type == "A":
            self._guard("toAdmin(Logon)", lambda: self._sign_logon(message, state))
        elif msg_type == "5" and state.logout_by_us is None:
            state.logout_by_us = True
        elif msg_type in ("2", "4") and not state.retransmits:
            self._guard("toAdmin(no retransmission)", lambda: self._no_retransmission(message, sessionID, state, msg_type))
        elif msg_type == "2":
            begin, end = _field(message, 7), _field(message, 16)
            self._emit(ResendRequested(state.name, _now(), int(begin or 0), int(end or 0)))
        state.messages.outgoing(message.toString())

    def _no_retransmission(self, message: fix.Message, session_id: fix.SessionID, state: SessionState, msg_type: str) -> None:
        """QuickFIX is about to send a ResendRequest (we saw a gap) or a SequenceReset (answering
        one) on a session where Kalshi supports neither. toAdmin cannot veto a message, so it goes
        out as a Heartbeat instead; after a gap the session logs out, to log on again with 141=Y."""
        if msg_type == "2":
            expected = _field(message, 7)
            self._emit(SequenceGap(state.name, _now(), int(expected) if expected and expected.isdigit() else None))
            fix.Session.lookupSession(session_id).logout("MsgSeqNum gap on a session without retransmission")
        message.getHeader().setField(35, "0")
        for tag in (7, 16, 36, 123):
            message.removeField(tag)

    def _sign_logon(self, message: fix.Message, state: SessionState) -> None:
        state.reset_connection()
        for tag, value in state.logon_fields:
            message.setField(tag, value)
        state.sequence_reset = _field(message, 141) == "Y"
        header = message.getHeader()
        # Sign exactly what this Logon carries: QuickFIX has already stamped 34 and 52.
        sending_time, seq, sender, target = (header.getField(t) for t in (52, 34, 49, 56))
        if sender != state.signer.key_id:
            raise RuntimeError(f"Logon SenderCompID {sender} is not the signing key {state.signer.key_id}")
        signature = sign(state.signer.private_key, logon_prehash(sending_time, "A", seq, sender, target))
        message.setField(95, str(len(signature)))
        message.setField(96, signature)
        self._emit(LogonSent(state.name, _now(), int(seq)))

    def fromAdmin(self, message: fix.Message, sessionID: fix.SessionID) -> None:
        state = self._state(sessionID)
        state.last_inbound = time.monotonic()
        state.messages.incoming(message.toString())
        msg_type = message.getHeader().getField(35)
        if msg_type == "0":
            self._emit(HeartbeatReceived(state.name, _now(), _field(message, 112)))
        elif msg_type == "5":
            self._guard("fromAdmin(Logout)", lambda: self._on_logout_received(message, sessionID, state))
        elif msg_type == "3":
            self._guard("fromAdmin(Reject)", lambda: self._on_reject(message, sessionID, state))
        elif msg_type == "A" and _field(message, 141) == "Y":
            state.sequence_reset = True
        elif msg_type == "4" and _field(message, 123) != "Y":
            self._guard("fromAdmin(SequenceReset)", lambda: self._on_reset_mode(message, sessionID, state))

    @staticmethod
    def _on_logout_received(message: fix.Message, session_id: fix.SessionID, state: SessionState) -> None:
        if state.logout_by_us is None:
            state.logout_by_us = False
        state.logout_text = _field(message, 58) or state.logout_text
        state.target_before_logout = out_of_sequence_logout(message, session_id)

    def _on_reset_mode(self, message: fix.Message, session_id: fix.SessionID, state: SessionState) -> None:
        """QuickFIX applies a Reset-mode SequenceReset whatever its MsgSeqNum: if that is above the
        one we expect, the messages in between are skipped for good (even mid-resend)."""
        expected = fix.Session.lookupSession(session_id).getExpectedTargetNum()
        seq, new_seq_no = int(message.getHeader().getField(34)), int(message.getField(36))
        if seq > expected and new_seq_no > expected:
            self._emit(MessagesSkipped(state.name, _now(), expected, new_seq_no))

    def _on_reject(self, message: fix.Message, session_id: fix.SessionID, state: SessionState) -> None:
        ref_seq, ref_type, ref_tag, reason, text = (_field(message, t) for t in (45, 372, 371, 373, 58))
        event = SessionRejectReceived(
            state.name,
            _now(),
            int(ref_seq) if ref_seq and ref_seq.isdigit() else None,
            ref_type,
            int(ref_tag) if ref_tag and ref_tag.isdigit() else None,
            int(reason) if reason and reason.isdigit() else None,
            text or "",
        )
        if not state.logged_on:
            state.reject_text = text or event.describe()
            if event.reason_code == REJECT_SENDING_TIME_ACCURACY:
                state.clock_skew = _clock_skew(_field(message.getHeader(), 52))
        self._emit(event)
        if state.logged_on and ref_type == "2":
            self._resend_refused(session_id, state, event.describe())

    def _resend_refused(self, session_id: fix.SessionID, state: SessionState, text: str) -> None:
        """Our ResendRequest was refused: what we missed will never come. QuickFIX would wait for it
        forever (queueing everything newer), so log out and log on again with ResetSeqNumFlag=Y,
        once (``onLogon`` restores the configured flag)."""
        self._emit(ResendRefused(state.name, _now(), text))
        session = fix.Session.lookupSession(session_id)
        session.setResetOnLogon(True)
        session.logout("ResendRequest refused: logging on again with a sequence reset")

    def toApp(self, message: fix.Message, sessionID: fix.SessionID) -> None:
        self._state(sessionID).messages.outgoing(message.toString())

    def fromApp(self, message: fix.Message, sessionID: fix.SessionID) -> None:
        state = self._state(sessionID)
        state.last_inbound = time.monotonic()
        raw = message.toString()
        state.messages.incoming(raw)
        self._emit(ApplicationMessage(state.name, _now(), msg_type_of(raw), raw))
