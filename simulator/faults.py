"""Fault injection: the simulator misbehaving on purpose, armed at run time.

``FaultController`` (``Simulator.faults``, also reachable through the control port) is where faults
are armed, from any thread. It holds state and pure decisions only; the parts of the simulator that
act on them ask it:

- wire faults (drop, duplicate, garble, bad CheckSum, silence, close, delay) sit on the
  ``LinkFaults`` of one relayed connection. The gate's relay copies bytes untouched while none is
  armed, and frames the outbound stream only while one is, asking ``LinkFaults.outbound`` what to
  send for each message;
- a refused Logon and the clock offset are read by the logon gate;
- rate limits are read by the QuickFIX application before a request reaches the exchange;
- sequence resets are sent by the acceptor, since QuickFIX owns the sequence numbers.

Thread safety: one lock per object. The relay reads ``LinkFaults.armed`` and ``.silent`` without it on
every chunk: a plain attribute read, at worst one chunk late.

One file on purpose (over 400 lines): one method a fault, each a few lines, all on the same two
objects; a file per fault would scatter the locking rules above.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone

from fixengine.fix.framing import SOH, checksum, encode, parse
from fixengine.fix.tags import (
    MSG_HEARTBEAT,
    MSG_NEW_ORDER_SINGLE,
    MSG_ORDER_CANCEL_REPLACE_REQUEST,
    MSG_ORDER_CANCEL_REQUEST,
    MSG_ORDER_MASS_CANCEL_REQUEST,
    ORIG_SENDING_TIME,
    POSS_DUP_FLAG,
    SENDING_TIME,
    TEST_REQ_ID,
)
from fixengine.fix.timestamps import utc_timestamp
from simulator.scripted import NOT_AUTHORIZED, REJECT_CODES, Kind, OrderScripts, Script

ADMIN_MSG_TYPES = frozenset({"0", "1", "2", "3", "4", "5", "A"})
# Requests a rate limit answers instead of the exchange, and how Kalshi answers them (spec §8, §18.2).
RATE_LIMITED_MSG_TYPES = frozenset({
    MSG_NEW_ORDER_SINGLE, MSG_ORDER_CANCEL_REQUEST, MSG_ORDER_CANCEL_REPLACE_REQUEST, MSG_ORDER_MASS_CANCEL_REQUEST,
})
REJECT_RATE_LIMIT = 8
TEXT_RATE_LIMITED = "Rate limit exceeded"
# How far a SequenceReset moves the sequence when no NewSeqNo is given, and at most: each number
# skipped is a message the simulator stores and keeps off the wire (see Acceptor.sequence_reset).
DEFAULT_SEQUENCE_JUMP = 10
MAX_SEQUENCE_JUMP = 1000

_TRAILER = re.compile(rb"\x0110=\d{3}\x01")
_TRAILER_LEN = 8  # SOH + "10=nnn" + SOH

# (key_id, gap_fill, new_seq_no) -> the NewSeqNo sent; provided by the acceptor.
SequenceResetter = Callable[[str, bool, "int | None"], int]
# (key_id, TestReqID): send the key's session a TestRequest; provided by the acceptor.
TestRequester = Callable[[str, str], None]
# (key_id, from_seq): expect MsgSeqNum from_seq next again; provided by the acceptor.
InboundRewinder = Callable[[str, int], None]


class FaultError(ValueError):
    """A fault that cannot be armed (unknown key, no connection, bad argument); the text says why."""


# --- pure message surgery -------------------------------------------------------------------------


def msg_type(message: bytes) -> str:
    start = message.index(b"\x0135=") + 4
    return message[start : message.index(SOH, start)].decode("latin-1")


def poss_dup_copy(message: bytes, now: datetime) -> bytes:
    """``message`` sent again as a possible duplicate: same MsgSeqNum, 43=Y, OrigSendingTime (122)
    its SendingTime, SendingTime now (FIX wants 122 <= 52); BodyLength and CheckSum recomputed."""
    fields = parse(message)
    copy: list[tuple[int, str]] = []
    for tag, value in fields:
        if tag in (8, 9, 10, 43, 97, 122):
            continue
        if tag == SENDING_TIME:
            copy += [(SENDING_TIME, utc_timestamp(now)), (POSS_DUP_FLAG, "Y"), (ORIG_SENDING_TIME, value)]
        else:
            copy.append((tag, value))
    return encode(fields[0][1], copy)


def garbled(message: bytes) -> bytes:
    """``message`` with its last field broken (the '=' removed), framed correctly: BodyLength and
    CheckSum add up, so it reads as one message that cannot be parsed."""
    begin = message[2 : message.index(SOH)]
    body_start = message.index(SOH, message.index(SOH) + 1) + 1
    body = message[body_start : -(_TRAILER_LEN - 1)]
    last = body.rfind(SOH, 0, len(body) - 1) + 1
    broken = body[:last] + body[last:].replace(b"=", b"", 1)
    head = b"8=" + begin + SOH + b"9=" + str(len(broken)).encode() + SOH
    return head + broken + b"10=" + checksum(head + broken).encode() + SOH


def with_bad_checksum(message: bytes) -> bytes:
    """``message`` with a CheckSum (10) one off the right one."""
    right = int(message[-4:-1])
    return message[:-4] + f"{(right + 1) % 256:03d}".encode() + SOH


def rest_of_message(tail: bytes, data: bytes) -> int:
    """How many bytes at the start of ``data`` finish a message already half copied. ``tail``: the
    last bytes copied (at least 8 unless the stream is that short). 0: ``tail`` ended a message;
    -1: ``data`` does not finish it either."""
    if not tail or (tail.endswith(SOH) and tail[-_TRAILER_LEN:-4] == b"\x0110="):
        return 0
    prefix = tail[-(_TRAILER_LEN - 1) :]  # too short to hold a whole trailer itself
    match = _TRAILER.search(prefix + data)
    return -1 if match is None else match.end() - len(prefix)


# --- one connection --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Outbound:
    """What the relay sends in place of one outbound message: these bytes, then maybe a close."""

    chunks: tuple[bytes, ...]
    close: bool = False


class LinkFaults:
    """The faults armed on one client connection, consulted by the gate's relay per outbound message.

    ``abort`` closes the client's socket at once and must be callable from any thread."""

    def __init__(self, key_id: str, abort: Callable[[], None]):
        self.key_id = key_id
        self._abort = abort
        self._lock = threading.Lock()
        self._spent = threading.Condition(self._lock)
        self._drop = 0
        self._duplicate = self._garble = self._bad_checksum = self._close_mid_message = False
        self.delay = 0.0  # seconds each outbound message is held back
        self.silent = False  # forward nothing either way, keep the socket open
        self.armed = False  # any fault set: the relay must frame outbound messages
        # Heartbeats the acceptor stores for numbers a SequenceReset skips: TestReqID -> how many
        # are still to come; never on the wire (see hide_heartbeat).
        self._hidden: dict[bytes, int] = {}

    def _rearm(self) -> None:
        self.armed = bool(
            self._drop or self._duplicate or self._garble or self._bad_checksum
            or self._close_mid_message or self.silent or self.delay or self._hidden
        )
        self._spent.notify_all()

    def _one_shots_left(self) -> bool:
        return bool(self._drop or self._duplicate or self._garble or self._bad_checksum or self._close_mid_message)

    def wait_spent(self, timeout: float) -> bool:
        """Wait until every message-counted fault (drop, duplicate, garble, bad CheckSum, close
        mid-message) has acted; False on timeout."""
        with self._spent:
            return self._spent.wait_for(lambda: not self._one_shots_left(), timeout)

    def drop(self, count: int) -> None:
        with self._lock:
            self._drop += count
            self._rearm()

    def duplicate_next(self) -> None:
        with self._lock:
            self._duplicate = True
            self._rearm()

    def garble_next(self) -> None:
        with self._lock:
            self._garble = True
            self._rearm()

    def bad_checksum_next(self) -> None:
        with self._lock:
            self._bad_checksum = True
            self._rearm()

    def go_silent(self) -> None:
        with self._lock:
            self.silent = True
            self._rearm()

    def close_mid_message(self) -> None:
        with self._lock:
            self._close_mid_message = True
            self._rearm()

    def set_delay(self, seconds: float) -> None:
        with self._lock:
            self.delay = seconds
            self._rearm()

    def clear(self) -> None:
        with self._lock:
            self._drop = 0
            self._duplicate = self._garble = self._bad_checksum = self._close_mid_message = False
            self.delay, self.silent = 0.0, False
            self._rearm()

    def abort(self) -> None:
        self._abort()

    def hide_heartbeat(self, test_req_id: str) -> None:
        """Keep the next outbound Heartbeat carrying ``test_req_id`` (112) off the wire. Not a
        fault (``clear`` leaves it): the acceptor's own numbering, see Acceptor.sequence_reset."""
        marker = b"\x01%d=" % TEST_REQ_ID + test_req_id.encode("latin-1") + SOH
        with self._lock:
            self._hidden[marker] = self._hidden.get(marker, 0) + 1
            self._rearm()

    def _take_hidden(self, message: bytes) -> bool:
        for marker, left in self._hidden.items():
            if marker in message and msg_type(message) == MSG_HEARTBEAT:
                if left == 1:
                    del self._hidden[marker]
                else:
                    self._hidden[marker] = left - 1
                return True
        return False

    def outbound(self, message: bytes) -> Outbound:
        """What to send for one whole outbound message. A hidden Heartbeat (``hide_heartbeat``)
        first: nothing, and no fault spent on it. Then one fault per message, in this order:
        silence, drop, close mid-message, garble, bad CheckSum, duplicate (application messages)."""
        with self._lock:
            if self._hidden and self._take_hidden(message):
                self._rearm()
                return Outbound(())
            if self.silent:
                return Outbound(())
            if self._drop:
                self._drop -= 1
                out = Outbound(())
            elif self._close_mid_message:
                self._close_mid_message = False
                out = Outbound((message[: len(message) // 2],), close=True)
            elif self._garble:
                self._garble = False
                out = Outbound((garbled(message),))
            elif self._bad_checksum:
                self._bad_checksum = False
                out = Outbound((with_bad_checksum(message),))
            elif self._duplicate and msg_type(message) not in ADMIN_MSG_TYPES:
                self._duplicate = False
                out = Outbound((message, poss_dup_copy(message, datetime.now(timezone.utc))))
            else:
                out = Outbound((message,))
            self._rearm()
            return out


# --- the controller --------------------------------------------------------------------------------


class FaultController:
    """Arms faults on a running simulator (``Simulator.faults``). Each method returns at once — the
    fault acts on the key's next message(s) — and raises ``FaultError`` naming the key when it
    cannot. Wire faults need the key's current connection and end with it."""

    def __init__(
        self,
        known_keys: Iterable[str],
        clock_offset: float = 0.0,
        sequence_resetter: SequenceResetter | None = None,
        *,
        test_requester: TestRequester | None = None,
        inbound_rewinder: InboundRewinder | None = None,
    ):
        self._known = frozenset(known_keys)
        self._resetter = sequence_resetter
        self._test_requester = test_requester
        self._rewinder = inbound_rewinder
        self._lock = threading.Lock()
        self._links: dict[str, LinkFaults] = {}
        self._logon_refusals: dict[str, tuple[str, int]] = {}  # key -> (Text, Logons still to refuse)
        self._rate_limits: dict[str, int] = {}
        self._event_resend_refusals: dict[str, int] = {}  # key -> EventResendRejectReason for its next U1
        self._retention: dict[str, float] = {}
        self.clock_offset = clock_offset  # seconds added to the simulator's clock
        self.scripts = OrderScripts()  # scripted answers to order entry, read by the acceptor

    # Wire faults, on the key's connection.

    def drop_outbound(self, key_id: str, count: int) -> None:
        """Drop the next ``count`` messages to the client: it sees a MsgSeqNum gap."""
        self._link(key_id).drop(_whole(count, "count"))

    def duplicate_next(self, key_id: str) -> None:
        """Send the next application message twice, the copy with PossDupFlag 43=Y and 122."""
        self._link(key_id).duplicate_next()

    def garble_next(self, key_id: str) -> None:
        """Break a field of the next message (framing intact, contents unparseable)."""
        self._link(key_id).garble_next()

    def bad_checksum_next(self, key_id: str) -> None:
        """Send the next message with a wrong CheckSum (10)."""
        self._link(key_id).bad_checksum_next()

    def go_silent(self, key_id: str) -> None:
        """Forward nothing in either direction, socket left open (a half-open connection). If
        QuickFIX gives up on the session meanwhile, the key may log on again; the client's socket
        stays open until the client closes it."""
        self._link(key_id).go_silent()

    def close(self, key_id: str, mid_message: bool = False) -> None:
        """Close the client's socket now, or after sending the first half of the next message."""
        link = self._link(key_id)
        if mid_message:
            link.close_mid_message()
        else:
            link.abort()

    def delay(self, key_id: str, seconds: float) -> None:
        """Hold every message to the client back by ``seconds`` (order kept) until cleared."""
        self._link(key_id).set_delay(_seconds(seconds, "seconds"))

    def clear(self, key_id: str) -> None:
        """Disarm every fault of the key: wire faults, a pending Logon refusal, a rate limit, a
        shortened retention, a drop-copy refusal, scripted answers to its next orders."""
        self._known_key(key_id)
        with self._lock:
            link = self._links.get(key_id)
            self._logon_refusals.pop(key_id, None)
            self._rate_limits.pop(key_id, None)
            self._retention.pop(key_id, None)
            self._event_resend_refusals.pop(key_id, None)
        self.scripts.clear(key_id)
        if link is not None:
            link.clear()

    def wait_spent(self, key_id: str, timeout: float = 5.0) -> bool:
        """Wait until the key's message-counted wire faults (drop, duplicate, garble, bad CheckSum,
        close mid-message) have all acted on a message; False if they have not within ``timeout``."""
        return self._link(key_id).wait_spent(_seconds(timeout, "timeout"))

    # Session layer.

    def sequence_reset(self, key_id: str, gap_fill: bool = True, new_seq_no: int | None = None) -> int:
        """Send the key's session a SequenceReset: GapFill (123=Y) or Reset (123=N), NewSeqNo (36)
        ``new_seq_no`` (default: the reset's own MsgSeqNum + 10, at most + 1000). The simulator's own
        numbering moves with it, so the session goes on; the numbers skipped are ones it did use
        (for admin messages the client never sees), so a later ResendRequest that starts among them
        is answered as Kalshi answers one: a GapFill up to the next report, then the reports.
        Returns the NewSeqNo sent."""
        self._known_key(key_id)
        if new_seq_no is not None:
            new_seq_no = _whole(new_seq_no, "new_seq_no")
        if self._resetter is None:
            raise FaultError("the simulator is not running: no session to send a SequenceReset on")
        return self._resetter(key_id, bool(gap_fill), new_seq_no)

    def test_request(self, key_id: str, test_req_id: str) -> None:
        """Send the key's logged-on session a TestRequest (35=1) with TestReqID (112)
        ``test_req_id``; the client is to answer with a Heartbeat echoing it."""
        self._known_key(key_id)
        if not isinstance(test_req_id, str) or not test_req_id or "\x01" in test_req_id:
            raise FaultError("test_req_id must be a non-empty string without SOH")
        if self._test_requester is None:
            raise FaultError("the simulator is not running: no session to send a TestRequest on")
        self._test_requester(key_id, test_req_id)

    def forget_inbound(self, key_id: str, from_seq: int) -> None:
        """Forget what the key's retransmitting session received from MsgSeqNum ``from_seq`` on:
        the next message from the client is then too high, and the simulator asks for the rest
        again with a ResendRequest (35=2), as after a crash of its own. The exchange keeps what
        they did: PossDup (43=Y) copies of messages already applied are not applied again."""
        self._known_key(key_id)
        from_seq = _whole(from_seq, "from_seq")
        if self._rewinder is None:
            raise FaultError("the simulator is not running: no session to rewind")
        self._rewinder(key_id, from_seq)

    def shorten_retention(self, key_id: str, seconds: float) -> None:
        """Keep what the key's retransmitting session sent for only ``seconds`` (instead of its
        MessageRetentionPeriod): a ResendRequest for anything older gets a Reject (35=3). 0 makes
        every ResendRequest fall outside the window. Lasts until ``clear``."""
        self._known_key(key_id)
        seconds = _seconds(seconds, "seconds")
        with self._lock:
            self._retention[key_id] = seconds

    def retention_override(self, key_id: str) -> float | None:
        return self._retention.get(key_id)

    # Logon, clock and exchange.

    def refuse_next_logon(self, key_id: str, text: str, count: int = 1) -> None:
        """Refuse the key's next Logon (the next ``count`` Logons) with a Logout carrying ``text``,
        before any other check; ``clear`` ends it early."""
        self._known_key(key_id)
        if not isinstance(text, str) or not text or "\x01" in text:
            raise FaultError("text must be a non-empty string without SOH")
        count = _whole(count, "count")
        with self._lock:
            self._logon_refusals[key_id] = (text, count)

    def skew_clock(self, seconds: float) -> None:
        """Run the simulator's clock ``seconds`` off real time (replaces config ``clock_offset``; 0
        restores real time). The Logon SendingTime check uses it: beyond the tolerance a Logon gets
        Reject 373=10 and Logout."""
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds):
            raise FaultError(f"seconds must be a number, not {seconds!r}")
        self.clock_offset = float(seconds)

    def rate_limit(self, key_id: str, count: int) -> None:
        """Answer the key's next ``count`` order-entry requests (35=D/F/G/q) with Kalshi's
        BusinessMessageReject 380=8 instead of passing them to the exchange."""
        self._known_key(key_id)
        count = _whole(count, "count")
        with self._lock:
            self._rate_limits[key_id] = self._rate_limits.get(key_id, 0) + count

    # Scripted answers to the key's next NewOrderSingle (simulator.scripted), one each, in order.

    def reject_next_order(self, key_id: str, text: str, code: int | None = None) -> None:
        """Reject the key's next NewOrderSingle (35=8 150=8) with Kalshi's ``text`` (58) and
        OrdRejReason ``code`` (103; default: the one Kalshi gives that text, else 99); the exchange
        never sees it."""
        self._known_key(key_id)
        if not isinstance(text, str) or not text or "\x01" in text:
            raise FaultError("text must be a non-empty string without SOH")
        if code is None:
            code = REJECT_CODES.get(text, 99)
        if isinstance(code, bool) or not isinstance(code, int) or code < 0:
            raise FaultError(f"code must be an OrdRejReason (a whole number), not {code!r}")
        self.scripts.arm(key_id, Script(Kind.REJECT, text, code))

    def unavailable_next_order(self, key_id: str) -> None:
        """Enter the key's next NewOrderSingle (it rests) but answer it with a reject
        58=EXCHANGE_UNAVAILABLE 103=99, an unknown outcome (spec §11.4)."""
        self._known_key(key_id)
        self.scripts.arm(key_id, Script(Kind.UNAVAILABLE))

    def session_reject_next_order(self, key_id: str) -> None:
        """Answer the key's next NewOrderSingle with a session Reject 35=3 373=5 (45 = its
        MsgSeqNum); the exchange never sees it."""
        self._known_key(key_id)
        self.scripts.arm(key_id, Script(Kind.SESSION_REJECT))

    def business_reject_next_order(self, key_id: str, reason: int = NOT_AUTHORIZED) -> None:
        """Answer the key's next NewOrderSingle with BusinessMessageReject 35=j, 380 ``reason``
        (default 6, not authorized); the exchange never sees it."""
        self._known_key(key_id)
        if isinstance(reason, bool) or not isinstance(reason, int) or reason < 0:
            raise FaultError(f"reason must be a BusinessRejectReason (a whole number), not {reason!r}")
        self.scripts.arm(key_id, Script(Kind.BUSINESS_REJECT, code=reason))

    def drift_next_order(self, key_id: str) -> None:
        """Add fields a v1.03 dictionary lacks (30, 715, 21030, 21031, 1057, 21999) to the reports
        answering the key's next NewOrderSingle, followed (once per session) by an unsolicited
        MarketSettlementReport (35=UMS)."""
        self._known_key(key_id)
        self.scripts.arm(key_id, Script(Kind.DRIFT))

    # For the gate and the acceptor.

    def hide_heartbeat(self, key_id: str, test_req_id: str) -> None:
        """The acceptor is about to send the key a Heartbeat with TestReqID ``test_req_id`` that its
        current connection must not deliver (``LinkFaults.hide_heartbeat``)."""
        self._link(key_id).hide_heartbeat(test_req_id)

    def attach(self, key_id: str, abort: Callable[[], None]) -> LinkFaults:
        """A new connection of ``key_id``: the link its wire faults go to from now on."""
        link = LinkFaults(key_id, abort)
        with self._lock:
            self._links[key_id] = link
        return link

    def detach(self, link: LinkFaults) -> None:
        with self._lock:
            if self._links.get(link.key_id) is link:  # a newer connection of the key keeps its own
                del self._links[link.key_id]

    def take_logon_refusal(self, key_id: str) -> str | None:
        with self._lock:
            refusal = self._logon_refusals.pop(key_id, None)
            if refusal is None:
                return None
            text, left = refusal
            if left > 1:
                self._logon_refusals[key_id] = (text, left - 1)
            return text

    def refuse_next_event_resend(self, key_id: str, reason: int = 2) -> None:
        """Answer the key's next EventResendRequest (35=U1) with EventResendReject (35=U3) ``reason``
        (default 2, server error) instead of a replay."""
        self._known_key(key_id)
        if reason not in (1, 2, 3, 4):
            raise FaultError(f"reason {reason}: EventResendRejectReason is 1, 2, 3 or 4")
        with self._lock:
            self._event_resend_refusals[key_id] = reason

    def take_event_resend_refusal(self, key_id: str) -> int | None:
        if not self._event_resend_refusals:
            return None
        with self._lock:
            return self._event_resend_refusals.pop(key_id, None)

    def take_rate_limit(self, key_id: str) -> bool:
        """True (and one fewer left) when the key's request is to be rate-limited."""
        if not self._rate_limits:  # the common case, without the lock: on every order's path
            return False
        with self._lock:
            left = self._rate_limits.get(key_id, 0)
            if left <= 0:
                return False
            if left == 1:
                del self._rate_limits[key_id]
            else:
                self._rate_limits[key_id] = left - 1
            return True

    def _known_key(self, key_id: str) -> None:
        if key_id not in self._known:
            raise FaultError(f"unknown API key {key_id!r}: not an account of this simulator")

    def _link(self, key_id: str) -> LinkFaults:
        self._known_key(key_id)
        with self._lock:
            link = self._links.get(key_id)
        if link is None:
            raise FaultError(f"API key {key_id} has no connection to the simulator")
        return link


def _whole(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise FaultError(f"{name} must be a whole number >= 1, not {value!r}")
    return value


def _seconds(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise FaultError(f"{name} must be a number of seconds >= 0, not {value!r}")
    return float(value)
