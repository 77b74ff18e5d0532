"""What the simulator tells its operator (or a test): one ``SimEvent`` per happening, of a fixed
set of kinds. Made by the gates, the acceptor and the server; read by the CLI, the demo, the
embedded simulator and the harness."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum


class SimEventKind(StrEnum):
    LISTENING = "listening"  # the simulator is up: where it listens
    ADMITTED = "admitted"  # a gate checked a Logon and let the connection through
    REFUSED = "refused"  # a gate refused a Logon (detail: Kalshi's text)
    LOGGED_ON = "logged_on"
    LOGGED_OUT = "logged_out"
    CLOSED = "closed"  # a connection ended at the gate
    PAUSED = "paused"  # the exchange paused (detail: trading or exchange, and why), or changed its pause
    RESUMED = "resumed"  # the exchange trades again


@dataclass(frozen=True)
class SimEvent:
    """Something the simulator wants its operator (or a test) to see."""

    kind: SimEventKind
    detail: str
    key_id: str = ""
    session_type: str = ""


SimEventSink = Callable[[SimEvent], None]
