"""Where an account's execution reports go besides the session that entered the order.

- Listener sessions (20126=Y, spec §14) get a copy of each as it happens, whichever session of the
  account entered the order.
- The drop-copy log keeps them for KalshiDC's EventResendRequest (35=U1, spec §13): the account's
  reports (no rejects, no pending ``-1;-1`` ones) replayed by ExecID, within a 3-hour look-back,
  with both bounds on one exchange shard.

Pure: the report writer records and copies; the venue asks for replays with the time it has.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from fixengine.fix.tags import AVG_PX, LAST_PX, PRICE
from fixengine.kalshi.prices import format_price, parse_price
from fixengine.orders.wire import Fields

LOOK_BACK = timedelta(hours=3)
# Kalshi publishes no limit; by default the simulator refuses a second request within a second (reason 1).
MIN_RESEND_INTERVAL = timedelta(seconds=1)

# EventResendRejectReason (21004)
TOO_MANY_REQUESTS = 1
SERVER_ERROR = 2
BEGIN_TOO_SMALL = 3
END_TOO_LARGE = 4


class BadExecID(ValueError):
    """A bound that is not an ExecID (``clock;event[;shard]``), or bounds on two shards."""

    def __init__(self, tag: int, reason: str):
        super().__init__(reason)
        self.tag = tag


@dataclass(frozen=True, order=True, slots=True)
class ExecPosition:
    """Where an ExecID sits in its shard's sequence: ``clock;event`` in order, shard apart."""

    shard: int
    clock: int
    event: int

    @classmethod
    def parse(cls, text: str, tag: int) -> "ExecPosition":
        parts = text.split(";")
        try:
            if len(parts) not in (2, 3):
                raise ValueError(text)
            numbers = [int(p) for p in parts]
        except ValueError:
            raise BadExecID(tag, f"{text!r} is not an ExecID (clock;event[;shard])") from None
        shard = numbers[2] if len(numbers) == 3 else 0
        return cls(shard, numbers[0], numbers[1])


@dataclass(frozen=True, slots=True)
class Kept:
    at: datetime
    position: ExecPosition
    fields: Fields  # as first sent
    dollars: bool  # the price unit they were written in (the entering session's 21005)


@dataclass(frozen=True, slots=True)
class Refused:
    reason: int  # EventResendRejectReason (21004)
    text: str


class DropCopyLog:
    """Every account's persistent execution reports of the last three hours, in ExecID order."""

    def __init__(self, min_interval: timedelta = MIN_RESEND_INTERVAL) -> None:
        self._min_interval = min_interval
        self._kept: dict[str, deque[Kept]] = {}
        self._aged_out: dict[tuple[str, int], ExecPosition] = {}  # (account, shard) -> newest report dropped
        self._last_request: dict[str, datetime] = {}  # session -> when it last asked

    def record(self, account: str, exec_id: str, fields: Fields, dollars: bool, now: datetime) -> None:
        kept = self._kept.get(account)
        if kept is None:
            kept = self._kept[account] = deque()
        kept.append(Kept(now, ExecPosition.parse(exec_id, 0), fields, dollars))
        if now - kept[0].at > LOOK_BACK:
            self._age(account, now)

    def _age(self, account: str, now: datetime) -> None:
        kept = self._kept.get(account)
        while kept and now - kept[0].at > LOOK_BACK:
            old = kept.popleft()
            self._aged_out[(account, old.position.shard)] = old.position

    def replay(self, session: str, account: str, begin: str, end: str | None, now: datetime) -> list[Kept] | Refused:
        """The reports of ``account`` from ``begin`` to ``end`` (inclusive; default: the shard's
        latest), or why not. Raises ``BadExecID`` for a malformed request (a session Reject)."""
        first = ExecPosition.parse(begin, 21001)
        last = ExecPosition.parse(end, 21002) if end else None
        if last is not None and last.shard != first.shard:
            raise BadExecID(21002, f"EndExecID {end} is on shard {last.shard}, BeginExecID {begin} on {first.shard}")
        previous = self._last_request.get(session)
        if previous is not None and now - previous < self._min_interval:
            return Refused(TOO_MANY_REQUESTS, f"too many resend requests: at most one in {self._min_interval.total_seconds():g}s")
        self._last_request[session] = now
        self._age(account, now)
        shard = [k for k in self._kept.get(account, ()) if k.position.shard == first.shard]
        aged = self._aged_out.get((account, first.shard))
        if aged is not None and first <= aged:
            return Refused(BEGIN_TOO_SMALL, f"BeginExecID {begin} is outside the {LOOK_BACK.seconds // 3600}-hour window")
        newest = shard[-1].position if shard else None
        if last is not None and (newest is None or last > newest):
            return Refused(END_TOO_LARGE, f"EndExecID {end} is beyond the latest ExecID on shard {first.shard}")
        return [k for k in shard if first <= k.position and (last is None or k.position <= last)]


def listeners_copy(fields: Fields, from_dollars: bool, to_dollars: bool) -> Fields:
    """A report as a session with another price unit (21005) reads it: prices in its own unit."""
    if from_dollars == to_dollars:
        return fields
    return [(tag, _restyle(tag, value, from_dollars, to_dollars)) for tag, value in fields]


def _restyle(tag: int, value: str, from_dollars: bool, to_dollars: bool) -> str:
    if tag in (PRICE, LAST_PX):
        return format_price(parse_price(value, from_dollars), to_dollars)
    if tag == AVG_PX and value != "0":
        average = Decimal(value) if from_dollars else Decimal(value) / 100  # AvgPx: 4 dp, either unit
        return str((average if to_dollars else average * 100).quantize(Decimal("0.0001")))
    return value


def copy_targets(listeners: Mapping[str, set[str]], account: str, entered_on: str) -> list[str]:
    """The listener sessions of ``account`` that get a copy of a report sent to ``entered_on``."""
    return sorted(s for s in listeners.get(account, ()) if s != entered_on)
