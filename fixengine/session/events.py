"""Session events: immutable facts about a FIX session, made in QuickFIX's callbacks and consumed
by the engine. Each names the session (its config name) and when it happened (UTC). Import them
from ``fixengine`` (or ``fixengine.events``, which lists every event)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from fixengine._event import Event


@dataclass(frozen=True, slots=True)
class SessionEvent(Event):
    """Something happened to a FIX session; QuickFIX's callback knows which and when, so ``session``
    and ``at`` come first."""

    session: str
    at: datetime

    def describe(self) -> str:
        return type(self).__name__


@dataclass(frozen=True, slots=True)
class LogonSent(SessionEvent):
    """Our signed Logon went out (the signature itself is never carried)."""

    msg_seq_num: int

    def describe(self) -> str:
        return f"logon sent (MsgSeqNum {self.msg_seq_num})"


@dataclass(frozen=True, slots=True)
class LoggedOn(SessionEvent):
    heartbeat_interval: int
    sequence_reset: bool = False  # the Logon reset both sides' MsgSeqNum to 1 (141=Y)

    def describe(self) -> str:
        reset = ", sequence numbers reset" if self.sequence_reset else ""
        return f"logged on (HeartBtInt {self.heartbeat_interval}s{reset})"


@dataclass(frozen=True, slots=True)
class LogonRefused(SessionEvent):
    """The counterparty ended the session before it was established; ``reason`` says why."""

    reason: str

    def describe(self) -> str:
        return f"logon refused: {self.reason}"


@dataclass(frozen=True, slots=True)
class LoggedOut(SessionEvent):
    """An established session ended. ``reason`` is the counterparty's Text (58) or what we saw."""

    reason: str
    by_counterparty: bool

    def describe(self) -> str:
        who = "counterparty" if self.by_counterparty else "us"
        return f"logged out by {who}" + (f": {self.reason}" if self.reason else "")


@dataclass(frozen=True, slots=True)
class HeartbeatReceived(SessionEvent):
    """A Heartbeat arrived; ``test_req_id`` is set when it answers our TestRequest."""

    test_req_id: str | None

    def describe(self) -> str:
        return "heartbeat" + (f" answering TestRequest {self.test_req_id}" if self.test_req_id else "")


@dataclass(frozen=True, slots=True)
class SessionRejectReceived(SessionEvent):
    """The counterparty rejected one of our messages at the session level (35=3)."""

    ref_seq_num: int | None
    ref_msg_type: str | None
    ref_tag: int | None
    reason_code: int | None
    text: str

    def describe(self) -> str:
        parts = [f"reject of MsgSeqNum {self.ref_seq_num}"]
        if self.ref_msg_type:
            parts.append(f"MsgType {self.ref_msg_type}")
        if self.ref_tag is not None:
            parts.append(f"tag {self.ref_tag}")
        if self.reason_code is not None:
            parts.append(f"reason {self.reason_code}")
        return ", ".join(parts) + (f": {self.text}" if self.text else "")


@dataclass(frozen=True, slots=True)
class HeartbeatTimeout(SessionEvent):
    """Nothing arrived for too long, even after a TestRequest; QuickFIX dropped the connection."""

    silence: float  # seconds since the last message from the counterparty

    def describe(self) -> str:
        return f"heartbeat timeout: nothing from the counterparty for {self.silence:.1f}s"


@dataclass(frozen=True, slots=True)
class ConnectionFailed(SessionEvent):
    """The session cannot connect (refused, unreachable, name not found, TLS not trusted)."""

    reason: str

    def describe(self) -> str:
        return f"connection failed: {self.reason}"


@dataclass(frozen=True, slots=True)
class ReconnectScheduled(SessionEvent):
    """The session is down; the engine lets it connect again in ``delay`` seconds (backoff with
    jitter; attempt 1 is the first retry since the session was last logged on)."""

    delay: float
    attempt: int

    def describe(self) -> str:
        return f"reconnecting in {self.delay:.1f}s (attempt {self.attempt})"


@dataclass(frozen=True, slots=True)
class SessionStopped(SessionEvent):
    """The counterparty refused the Logon for what it says: the engine does not retry it (it would be
    refused again) until the configuration is fixed and the engine restarted."""

    reason: str

    def describe(self) -> str:
        return f"stopped, not retrying: {self.reason}"


@dataclass(frozen=True, slots=True)
class SequenceGap(SessionEvent):
    """Messages from the counterparty went missing (MsgSeqNum jumped past ``expected``) on a session
    without retransmission (KalshiNR, KalshiDC): no ResendRequest is sent (Kalshi does not support
    one there); the engine logs out and back on with a sequence reset, and the book is held
    unconfirmed (``BookHeld``) if the account has live orders."""

    expected: int | None

    def describe(self) -> str:
        return f"sequence gap (expected MsgSeqNum {self.expected}): logging out to reconnect with a reset"


@dataclass(frozen=True, slots=True)
class ResendRefused(SessionEvent):
    """The counterparty answered our ResendRequest with a Reject (on Kalshi: BeginSeqNo older than
    MessageRetentionPeriod): the missed messages are lost for good. As after a ``SequenceGap``, the
    engine logs out and back on with a sequence reset, and holds the book (``BookHeld``)."""

    text: str

    def describe(self) -> str:
        return f"resend refused ({self.text}): logging out to reconnect with a reset"


@dataclass(frozen=True, slots=True)
class MessagesSkipped(SessionEvent):
    """A SequenceReset in Reset mode (123=N) moved the sequence past messages we never received
    (MsgSeqNum ``first`` up to ``new_seq_no`` - 1): they will not be resent. The session goes on;
    the book is held (``BookHeld``) if the account has live orders."""

    first: int
    new_seq_no: int

    def describe(self) -> str:
        return f"sequence reset skipped MsgSeqNum {self.first} to {self.new_seq_no - 1}, never received"


@dataclass(frozen=True, slots=True)
class ResendRequested(SessionEvent):
    """We asked the counterparty to resend ``begin``..``end`` (0: up to the latest) after a gap, on a
    session with retransmission (KalshiRT); the resent reports arrive marked PossDup and are
    applied once (deduplicated by ExecID)."""

    begin: int
    end: int

    def describe(self) -> str:
        return f"resend requested: MsgSeqNum {self.begin} to {self.end or 'latest'}"
