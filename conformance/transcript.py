"""Reading a run's evidence the way judges need it: each wire message parsed once, grouped by
connection, with the harness's own marks on the timeline (faults, connection ends). Pure.

The runner writes marks of its own on the timeline (``Evidence.faults``): connection ends, as
``closed: connection N by the client`` or ``... by the simulator`` (``closed_mark``,
``connection_end``), and the client's process started and stopped (``CLIENT_STARTED``,
``CLIENT_STOPPED``), so that a judge can tell a close the client chose from the end of the scenario.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from conformance.model import Direction, Evidence, FaultMark, WireMessage
from fixengine.fix.framing import FramingError, parse
from fixengine.fix.timestamps import parse_utc_timestamp

CLIENT_STARTED = "client: started"
CLIENT_STOPPED = "client: stopped by the runner (SIGTERM)"

_CLOSED = re.compile(r"^closed: connection (\d+) by the (client|simulator)$")
_MILLIS = re.compile(r"^\d{8}-\d{2}:\d{2}:\d{2}\.\d{3,9}$")


@dataclass(frozen=True, slots=True)
class Msg:
    """One wire message with its fields (first value of each tag; empty when it cannot be parsed)."""

    index: int  # into Evidence.messages
    wire: WireMessage
    fields: dict[int, str]

    @property
    def at(self) -> float:
        return self.wire.at

    @property
    def connection(self) -> int:
        return self.wire.connection

    @property
    def inbound(self) -> bool:
        """Sent by the client."""
        return self.wire.direction is Direction.FROM_CLIENT

    @property
    def type(self) -> str:
        return self.fields.get(35, "")

    @property
    def seq(self) -> int | None:
        value = self.fields.get(34, "")
        return int(value) if value.isdigit() else None

    def get(self, tag: int, default: str | None = None) -> str | None:
        return self.fields.get(tag, default)


def fields_of(raw: str) -> dict[int, str]:
    """The fields of one message (first value of each tag); {} for one that cannot be parsed
    (garbled on purpose, cut by a close)."""
    try:
        pairs = parse(raw.encode("latin-1"))
    except (FramingError, UnicodeEncodeError):
        return {}
    out: dict[int, str] = {}
    for tag, value in pairs:
        out.setdefault(tag, value)
    return out


def messages(evidence: Evidence) -> list[Msg]:
    return [Msg(i, m, fields_of(m.raw)) for i, m in enumerate(evidence.messages)]


def from_client(msgs: Iterable[Msg], msg_type: str | None = None, after: float = float("-inf")) -> list[Msg]:
    return [m for m in msgs if m.inbound and m.at >= after and (msg_type is None or m.type == msg_type)]


def to_client(msgs: Iterable[Msg], msg_type: str | None = None, after: float = float("-inf")) -> list[Msg]:
    return [m for m in msgs if not m.inbound and m.at >= after and (msg_type is None or m.type == msg_type)]


def by_connection(msgs: Iterable[Msg]) -> dict[int, list[Msg]]:
    out: dict[int, list[Msg]] = {}
    for m in msgs:
        out.setdefault(m.connection, []).append(m)
    return dict(sorted(out.items()))


def logons(msgs: Iterable[Msg]) -> list[Msg]:
    """The client's Logons, in order."""
    return from_client(msgs, "A")


def accepted(msgs: Iterable[Msg], connection: int) -> Msg | None:
    """The simulator's Logon answer on ``connection``, if it accepted the client there."""
    return next((m for m in msgs if m.connection == connection and not m.inbound and m.type == "A"), None)


def refusal(msgs: Iterable[Msg], connection: int) -> Msg | None:
    """The Logout that refused the Logon on ``connection`` (none when it was accepted)."""
    conn = [m for m in msgs if m.connection == connection]
    if any(not m.inbound and m.type == "A" for m in conn):
        return None
    return next((m for m in conn if not m.inbound and m.type == "5"), None)


def marks(evidence: Evidence, prefix: str) -> list[FaultMark]:
    return [f for f in evidence.faults if f.what.startswith(prefix)]


def first_mark(evidence: Evidence, prefix: str) -> FaultMark | None:
    found = marks(evidence, prefix)
    return found[0] if found else None


def closed_mark(connection: int, by_client: bool) -> str:
    return f"closed: connection {connection} by the {'client' if by_client else 'simulator'}"


def connection_end(evidence: Evidence, connection: int) -> tuple[float, bool] | None:
    """When ``connection`` ended and whether the client ended it; None while it was still open."""
    for mark in evidence.faults:
        found = _CLOSED.match(mark.what)
        if found and int(found.group(1)) == connection:
            return mark.at, found.group(2) == "client"
    return None


def stopped_by_runner(evidence: Evidence, at: float) -> bool:
    """The runner had stopped the client by ``at`` (and not started it again since)."""
    last = None
    for mark in evidence.faults:
        if mark.at > at:
            break
        if mark.what in (CLIENT_STARTED, CLIENT_STOPPED):
            last = mark.what
    return last == CLIENT_STOPPED


def sending_time(msg: Msg) -> datetime | None:
    return parse_utc_timestamp(msg.fields.get(52, ""))


def has_millis(value: str) -> bool:
    """SendingTime at millisecond precision (or finer)."""
    return bool(_MILLIS.match(value))


def gaps(times: Iterable[float]) -> Iterator[tuple[float, float]]:
    """(start, length) of each interval between consecutive times."""
    previous: float | None = None
    for t in times:
        if previous is not None:
            yield previous, t - previous
        previous = t
