"""Session events: immutable facts about a FIX session, made on QuickFIX's thread and consumed in
the asyncio loop. Each names the session (its config name) and when it happened (UTC)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class SessionEvent:
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

    def describe(self) -> str:
        return f"logged on (HeartBtInt {self.heartbeat_interval}s)"


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
