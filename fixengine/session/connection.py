"""One connection of an initiator session, as a pure machine: what the QuickFIX callbacks saw
(Logon sent, logged on, Logouts and Rejects either way) and what its end means.

In the manner of QuickFIX/Go's per-state files, but small enough for one: the callbacks in
``application.py`` read the fields of a message, call the transition here and emit what it returns.
Nothing here touches QuickFIX, a socket or a clock (the caller passes the silence it measured), so
every way a connection can end is tested without one.

    CONNECTING --LoggedOn--> LOGGED_ON
        |                        |
        +-- Logout/Reject ------+-- Logout either way, or silence --> (ended)

How it ended decides the event: logged on, it is a ``LoggedOut`` (by whom, and why: the Logout's
text, a heartbeat timeout after ``SILENCE_INTERVALS`` silent heartbeat intervals, or a lost
connection); not logged on, a Logout or Reject from the counterparty is a refusal; silence before
any answer is ``Unanswered`` (the engine probes the address to say why).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

# QuickFIX drops a session after 2.4 heartbeat intervals without inbound traffic (a TestRequest
# goes out at 1.2); a disconnect after at least 2 silent intervals, with no Logout, is that timeout.
SILENCE_INTERVALS = 2.0


class Phase(Enum):
    CONNECTING = "connecting"  # our Logon is out (or about to be); no answer yet
    LOGGED_ON = "logged_on"


class Party(Enum):
    US = "us"
    THEM = "them"


@dataclass
class Connection:
    """What is known of the current connection (QuickFIX's callbacks only)."""

    phase: Phase = Phase.CONNECTING
    sequence_reset: bool = False  # this connection's Logon (ours or theirs) carried 141=Y
    first_logout: Party | None = None  # who sent the first Logout on this connection
    logout_text: str | None = None
    reject_text: str | None = None  # a Reject received before Logon, for the refusal reason
    clock_skew: str = ""  # what a SendingTime-accuracy Reject before Logon said about our clock

    @property
    def logged_on(self) -> bool:
        return self.phase is Phase.LOGGED_ON

    @property
    def refused(self) -> bool:
        """The counterparty answered our Logon with a Logout (or a Reject): it said no."""
        return not self.logged_on and (self.first_logout is Party.THEM or self.reject_text is not None)


def logon_sent(sequence_reset: bool) -> Connection:
    """Our Logon goes out: a new connection begins."""
    return Connection(sequence_reset=sequence_reset)


def logon_received(c: Connection, sequence_reset: bool) -> None:
    if sequence_reset:
        c.sequence_reset = True


def logged_on(c: Connection) -> None:
    c.phase = Phase.LOGGED_ON


def logout_sent(c: Connection) -> None:
    if c.first_logout is None:
        c.first_logout = Party.US


def logout_received(c: Connection, text: str | None) -> None:
    if c.first_logout is None:
        c.first_logout = Party.THEM
    c.logout_text = text or c.logout_text


def reject_received(c: Connection, text: str, clock_skew: str = "") -> None:
    """A session Reject: before Logon it is the reason of a refusal to come."""
    if not c.logged_on:
        c.reject_text = text
        if clock_skew:
            c.clock_skew = clock_skew


class End(Enum):
    LOGGED_OUT = "logged_out"
    REFUSED = "refused"
    UNANSWERED = "unanswered"


@dataclass(frozen=True)
class Ending:
    """What the end of a connection means; the callbacks turn it into events."""

    end: End
    reason: str = ""
    by_counterparty: bool = False
    silence: float | None = field(default=None)  # set when it was a heartbeat timeout


def ended(c: Connection, silence: float, heartbeat_interval: int) -> Ending:
    """The connection is gone (``onLogout``). ``silence``: seconds since anything came in."""
    if c.logged_on:
        reason = c.logout_text or ""
        by_counterparty = c.first_logout is not Party.US
        if c.first_logout is None and not reason:
            if silence >= SILENCE_INTERVALS * heartbeat_interval:
                return Ending(End.LOGGED_OUT, "heartbeat timeout: the counterparty went silent", True, silence)
            reason = "connection lost"
        return Ending(End.LOGGED_OUT, reason, by_counterparty)
    if c.refused:
        return Ending(End.REFUSED, (c.logout_text or c.reject_text or "Logout without a reason") + c.clock_skew, True)
    return Ending(End.UNANSWERED)
