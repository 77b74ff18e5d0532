"""Kalshi's drop copy (KalshiDC, spec §13): a replay of the account's execution reports by ExecID.

Not a stream: the engine asks (EventResendRequest, 35=U1, from a BeginExecID), the session sends the
reports again under new sequence numbers, then EventResendComplete (35=U2) with their count, or
EventResendReject (35=U3) with a reason. The replayed reports go through the order entry like any
others: journaled, then applied, and a report the book has seen (same shard and ExecID) changes
nothing. So after a gap on a session without retransmission, a replay from the last ExecID the
book has seen brings back exactly what was lost.

Pure: request fields, the two answers as events, and where a replay starts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from fixengine._event import _StampedNow
from fixengine.fix.tags import (
    BEGIN_EXEC_ID,
    END_EXEC_ID,
    EVENT_RESEND_REJECT_REASON,
    REF_SEQ_NUM,
    RESEND_EVENT_COUNT,
    TEXT,
)
from fixengine.orders.wire import Fields

# EventResendRejectReason (21004) in words.
REFUSAL_REASONS = {
    1: "too many resend requests",
    2: "server error",
    3: "BeginExecID too small (outside the 3-hour look-back)",
    4: "EndExecID too large",
}


@dataclass(frozen=True, slots=True)
class DropCopyReplayed(_StampedNow):
    """EventResendComplete (35=U2): the replay is over; its reports came before this."""

    ref_seq_num: int | None  # the MsgSeqNum of the request it answers
    count: int  # reports replayed (ResendEventCount, 21003)

    def describe(self) -> str:
        return f"drop copy replayed {self.count} execution reports"


@dataclass(frozen=True, slots=True)
class DropCopyRefused(_StampedNow):
    """EventResendReject (35=U3): the replay was refused."""

    ref_seq_num: int | None
    reason: int | None  # EventResendRejectReason (21004): see REFUSAL_REASONS
    text: str | None

    def describe(self) -> str:
        why = REFUSAL_REASONS.get(self.reason or 0, f"reason {self.reason}")
        return f"drop copy replay refused: {why}" + (f" ({self.text})" if self.text else "")


def event_resend_fields(begin_exec_id: str, end_exec_id: str | None = None) -> Fields:
    """EventResendRequest (35=U1): from ``begin_exec_id`` (inclusive) to ``end_exec_id`` (default:
    the latest on that shard)."""
    fields: Fields = [(BEGIN_EXEC_ID, begin_exec_id)]
    if end_exec_id is not None:
        fields.append((END_EXEC_ID, end_exec_id))
    return fields


def read_replayed(session: str, f: Mapping[int, str]) -> DropCopyReplayed:
    return DropCopyReplayed(session, _int(f.get(REF_SEQ_NUM)), _int(f.get(RESEND_EVENT_COUNT)) or 0)


def read_refused(session: str, f: Mapping[int, str]) -> DropCopyRefused:
    return DropCopyRefused(session, _int(f.get(REF_SEQ_NUM)), _int(f.get(EVENT_RESEND_REJECT_REASON)), f.get(TEXT))


def _int(text: str | None) -> int | None:
    return int(text) if text is not None and text.isdigit() else None
