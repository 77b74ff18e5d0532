"""The always-on passive rules (P1 ... P16 of ``specs/conformance/rules.toml``), checked on every
message of every run: pure functions over the evidence and the profile. Each finding names the rule
and the index (in ``Evidence.messages``) of the message that broke it.

Only what the transcript can decide is checked; each rule's ``note`` in the library says what it
cannot (TLS, for one, is the listener's business). Messages are read with fixengine's own framing;
one that does not parse is skipped by every rule but P1.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from conformance.model import Direction, Evidence, Finding, Rule, WireMessage
from conformance.profile import Profile
from fixengine.fix.framing import FramingError, parse
from fixengine.fix.timestamps import parse_utc_timestamp
from fixengine.kalshi.facts import (
    DEFAULT_REQUEST_COST,
    MASS_CANCEL_INTERVAL_S,
    PERMANENT_REFUSALS,
    SENDING_TIME_TOLERANCE_S,
    WRITE_MSG_TYPES,
    SessionType,
    write_capacity,
)

# P16: the suite's bound on connections a minute (Kalshi publishes none), and the tries a client
# may make after a permanent refusal (kalshi/logon/03 allows one per refusal).
CONNECTS_PER_MINUTE = 10
TRIES_AFTER_PERMANENT_REFUSAL = 1

SESSION_MSG_TYPES = frozenset({"0", "1", "2", "3", "4", "5", "A"})
_NR, _DC, _RT, _PT, _RFQ, _MD = (t.value for t in (SessionType.NR, SessionType.DC, SessionType.RT,
                                                   SessionType.PT, SessionType.RFQ, SessionType.MD))
# What Kalshi takes from a client on each session type, beyond session messages (§2, §9).
CLIENT_APP_MSG_TYPES: dict[str, frozenset[str]] = {
    _NR: frozenset({"D", "F", "G", "q", "UOG"}),
    _RT: frozenset({"D", "F", "G", "UOG", "R", "UA", "UE"}),
    _DC: frozenset({"U1"}),
    _PT: frozenset(),
    _RFQ: frozenset({"S", "Z", "U7"}),
    _MD: frozenset({"V", "e"}),
}
_ANY_CLIENT_APP = frozenset().union(*CLIENT_APP_MSG_TYPES.values())
NO_RETRANSMISSION = frozenset({_NR, _DC, _MD})  # P5
ORDER_REQUESTS = frozenset({"D", "F", "G", "q"})  # P7's new requests, P14's forbidden set
BEGIN_STRINGS = {"fixt11": "FIXT.1.1", "fix44": "FIX.4.4"}

_CLORDID = re.compile(r"[A-Za-z0-9_\-+=:/]{1,64}")
_SENDING_TIME = re.compile(r"\d{8}-\d{2}:\d{2}:\d{2}\.\d{3}(?:\d{3}){0,2}")
_CENTS = re.compile(r"\d{1,2}")
_DOLLARS = re.compile(r"\d*\.\d{1,4}|\d+")
_QUANTITY = re.compile(r"\d+(?:\.\d+)?")
USER_DEFINED_TAGS = 5000  # FIX: tags from 5000 up are user-defined
UNKNOWN_TAG_REASONS = frozenset({"0", "2", "3"})  # 373: invalid tag, not defined for the message, undefined


# --- the evidence, read once -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Msg:
    index: int
    wire: WireMessage
    fields: tuple[tuple[int, str], ...] | None  # None: did not parse
    tags: Mapping[int, str]  # first occurrence of each tag

    @property
    def from_client(self) -> bool:
        return self.wire.direction is Direction.FROM_CLIENT

    @property
    def type(self) -> str:
        return self.tags.get(35, "")

    @property
    def seq(self) -> int | None:
        value = self.tags.get(34, "")
        return int(value) if value.isdigit() else None

    @property
    def poss_dup(self) -> bool:
        return self.tags.get(43) == "Y"

    def flag(self, tag: int) -> bool:
        return self.tags.get(tag) == "Y"


def _read(index: int, wire: WireMessage) -> _Msg:
    try:
        fields = tuple(parse(wire.raw.encode("utf-8")))
    except FramingError:
        return _Msg(index, wire, None, {})
    tags: dict[int, str] = {}
    for tag, value in fields:
        tags.setdefault(tag, value)
    return _Msg(index, wire, fields, tags)


@dataclass
class _Run:
    evidence: Evidence
    profile: Profile
    key_ids: frozenset[str] | None
    msgs: list[_Msg] = field(default_factory=list)
    connections: dict[int, list[_Msg]] = field(default_factory=dict)  # in order of first message
    _logons: list[_Msg | None] = field(default_factory=list)  # by index: the connection's Logon so far

    def __post_init__(self) -> None:
        self.msgs = [_read(i, w) for i, w in enumerate(self.evidence.messages)]
        latest: dict[int, _Msg] = {}
        for m in self.msgs:
            self.connections.setdefault(m.wire.connection, []).append(m)
            if m.from_client and m.type == "A":
                latest[m.wire.connection] = m
            self._logons.append(latest.get(m.wire.connection))

    def client(self) -> Iterator[_Msg]:
        return (m for m in self.msgs if m.from_client and m.fields is not None)

    def logon_before(self, m: _Msg) -> _Msg | None:
        """The client's latest Logon on ``m``'s connection at or before ``m``."""
        return self._logons[m.index]


def _finding(m: _Msg, expected: str, seen: str) -> Finding:
    return Finding(expected=expected, seen=seen, message=m.index)


# --- the rules -------------------------------------------------------------------------------------


def _p1(run: _Run) -> Iterator[Finding]:
    """First message a Logon; BeginString per the profile's dialect; 1137=9 on a FIXT Logon."""
    for conn in run.connections.values():
        mine = [m for m in conn if m.from_client]
        if mine and (mine[0].fields is None or mine[0].type != "A"):
            first = mine[0]
            yield _finding(first, "the first message on a connection is a Logon (35=A)",
                           f"35={first.type}" if first.fields is not None else "a message that is not FIX")
        for m in mine:
            if m.fields is None or (mine[0] is m and m.type != "A"):
                continue
            dialects = {s.dialect for s in run.profile.sessions if s.type.value == m.wire.session} or {"fixt11"}
            begins = sorted(BEGIN_STRINGS[d] for d in dialects)
            begin = m.tags.get(8, "")
            if begin not in begins:
                yield _finding(m, f"8={' or 8='.join(begins)} (the profile's dialect for {m.wire.session})", f"8={begin}")
            elif m.type == "A" and begin == BEGIN_STRINGS["fixt11"] and m.tags.get(1137) != "9":
                yield _finding(m, "1137=9 (FIX 5.0 SP2) on a FIXT.1.1 Logon", f"1137={m.tags.get(1137, '(absent)')}")


def _p2(run: _Run) -> Iterator[Finding]:
    """49 = the key id; 56 = the session the connection is for."""
    first_49: dict[str, str] = {}
    for m in run.client():
        if m.type == "A":
            first_49.setdefault(m.wire.session, m.tags.get(49, ""))
    for m in run.client():
        keys = run.key_ids
        if keys is None and m.wire.session in first_49:
            keys = frozenset({first_49[m.wire.session]})
        sender, target = m.tags.get(49, ""), m.tags.get(56, "")
        if keys is not None and sender not in keys:
            yield _finding(m, f"49={' or '.join(sorted(keys))} (the API key id)", f"49={sender or '(absent)'}")
        elif target != m.wire.session:
            yield _finding(m, f"56={m.wire.session} (the session type of this connection)", f"56={target or '(absent)'}")


def _p3(run: _Run) -> Iterator[Finding]:
    """52: UTC with milliseconds, within 30 s of the capture time."""
    for m in run.client():
        value = m.tags.get(52, "")
        at = parse_utc_timestamp(value) if _SENDING_TIME.fullmatch(value) else None
        if at is None:
            yield _finding(m, "52 as YYYYMMDD-HH:MM:SS.mmm (UTC, milliseconds)", f"52={value or '(absent)'}")
        elif abs(at.timestamp() - m.wire.at) > SENDING_TIME_TOLERANCE_S:
            yield _finding(m, f"52 within {SENDING_TIME_TOLERANCE_S} s of the simulator's clock",
                           f"52={value}, {at.timestamp() - m.wire.at:+.3f} s off")


def _p4(run: _Run) -> Iterator[Finding]:
    """34 rises by one per message; 1 on a reset Logon; never below the last connection's."""
    highest: dict[str, int] = {}  # session type -> highest 34 the client sent on it
    for conn in run.connections.values():
        expected: int | None = None
        for m in conn:
            if not m.from_client or m.fields is None or m.poss_dup:
                continue
            seq = m.seq
            if seq is None:
                yield _finding(m, "34 (MsgSeqNum), a positive integer", f"34={m.tags.get(34, '(absent)')}")
                continue
            session = m.wire.session
            if m.type == "A" and m.flag(141):
                if seq != 1:
                    yield _finding(m, "34=1 on a Logon with 141=Y", f"34={seq}")
            elif expected is None and m.type == "A" and session in highest and seq <= highest[session]:
                yield _finding(m, f"34 above {highest[session]} (no 141=Y: the sequence continues)", f"34={seq}")
            elif expected is not None and seq != expected:
                yield _finding(m, f"34={expected} (one more than the previous message)", f"34={seq}")
            expected = seq + 1
            if m.type == "4" and not m.flag(123) and m.tags.get(36, "").isdigit():
                expected = int(m.tags[36])  # SequenceReset-Reset sets the next number
            reset = m.type == "A" and m.flag(141)
            highest[session] = seq if reset else max(seq, highest.get(session, 0))


def _p5(run: _Run) -> Iterator[Finding]:
    for m in run.client():
        if m.type in ("2", "4") and m.wire.session in NO_RETRANSMISSION:
            yield _finding(m, f"no 35=2 or 35=4 on {m.wire.session} (no retransmission there)", f"35={m.type}")


def _p6(run: _Run) -> Iterator[Finding]:
    for m in run.client():
        if m.type == "A" and 50 in m.tags:
            yield _finding(m, "no 50 (SenderSubID) on a Logon", f"50={m.tags[50]}")
        elif 553 in m.tags or 554 in m.tags:
            yield _finding(m, "no 553/554 (Username/Password): Kalshi authenticates by the signature",
                           ", ".join(f"{t}=<{len(m.tags[t])} chars>" for t in (553, 554) if t in m.tags))


def _p7(run: _Run) -> Iterator[Finding]:
    """ClOrdID shape; never reused for a new request unless every earlier use was not applied."""
    uses: dict[str, list[_Msg]] = {}
    for m in run.client():
        clordid = m.tags.get(11)
        if clordid is None:
            continue
        if not _CLORDID.fullmatch(clordid):
            yield _finding(m, "11 of at most 64 characters from A-Z a-z 0-9 _ - + = : /",
                           f"11={clordid!r} ({len(clordid)} characters)")
            continue
        if m.type not in ORDER_REQUESTS or m.poss_dup:
            continue
        earlier = uses.setdefault(clordid, [])
        if earlier and not all(_not_applied(run, e) for e in earlier):
            yield _finding(m, f"a new 11 for a new request (11={clordid} was used by the message at {earlier[-1].index})",
                           f"35={m.type} 11={clordid}")
        earlier.append(m)


def _not_applied(run: _Run, request: _Msg) -> bool:
    """The simulator answered ``request`` as not applied (35=3 or 35=j on it) or of unknown outcome
    (150=8 with 58=EXCHANGE_UNAVAILABLE: Kalshi asks for a retry under the same ClOrdID)."""
    for m in run.connections[request.wire.connection]:
        if m.index <= request.index or m.from_client:
            continue
        if m.type in ("3", "j") and m.tags.get(45) == str(request.seq):
            return True
        if (m.type == "8" and m.tags.get(11) == request.tags.get(11) and m.tags.get(150) == "8"
                and "EXCHANGE_UNAVAILABLE" in m.tags.get(58, "")):
            return True
    return False


def _p8(run: _Run) -> Iterator[Finding]:
    """Limit orders only; 44 on the grid of the connection's unit; 38 in steps of 0.01."""
    for m in run.client():
        if m.type not in ("D", "G"):
            continue
        logon = run.logon_before(m)
        dollars = logon is not None and logon.flag(21005)
        problem = _order_shape(m, dollars)
        if problem is not None:
            yield _finding(m, *problem)


def _order_shape(m: _Msg, dollars: bool) -> tuple[str, str] | None:
    if m.tags.get(40) != "2":
        return "40=2 (limit orders only)", f"40={m.tags.get(40, '(absent)')}"
    price = m.tags.get(44)
    if price is None:
        if m.type == "D":
            return "44 (Price) on a limit order", "no 44"
    elif dollars:
        if not (_DOLLARS.fullmatch(price) and Decimal(0) < Decimal(price) < Decimal(1)):
            return "44 in dollars, at most 4 decimals, between 0 and 1 (21005=Y on the Logon)", f"44={price}"
    elif not (_CENTS.fullmatch(price) and 1 <= int(price) <= 99):
        return "44 in whole cents 1-99 (no 21005=Y on the Logon)", f"44={price}"
    quantity = m.tags.get(38, "")
    try:
        ok = bool(_QUANTITY.fullmatch(quantity)) and Decimal(quantity) > 0 and Decimal(quantity) % Decimal("0.01") == 0
    except InvalidOperation:
        ok = False
    if not ok:
        return "38 a positive multiple of 0.01", f"38={quantity or '(absent)'}"
    return None


def _p9(run: _Run) -> Iterator[Finding]:
    """No message type Kalshi does not take on the session; none again after 35=j 380=3."""
    refused: dict[str, int] = {}  # MsgType -> index of the simulator's 380=3 about it
    by_seq: dict[tuple[int, int], str] = {}  # (connection, 34) -> the client's MsgType
    for m in run.msgs:
        if m.fields is None:
            continue
        if not m.from_client:
            if m.type == "j" and m.tags.get(380) == "3":
                ref = m.tags.get(45, "")
                about = m.tags.get(372) or (by_seq.get((m.wire.connection, int(ref))) if ref.isdigit() else None)
                if about:
                    refused.setdefault(about, m.index)
            continue
        if m.seq is not None:
            by_seq[(m.wire.connection, m.seq)] = m.type
        if m.type in SESSION_MSG_TYPES or m.type == "j":
            continue
        allowed = CLIENT_APP_MSG_TYPES.get(m.wire.session, _ANY_CLIENT_APP)
        if m.type not in allowed:
            yield _finding(m, f"only {', '.join(sorted(allowed)) or 'session messages'} on {m.wire.session}",
                           f"35={m.type}, which Kalshi does not take there")
        elif m.type in refused:
            yield _finding(m, f"no 35={m.type} after the simulator's 35=j 380=3 at {refused[m.type]}",
                           f"35={m.type} sent again")


def _p10(run: _Run) -> Iterator[Finding]:
    last: float | None = None
    for m in run.client():
        if m.type != "q" or m.poss_dup:
            continue
        if m.wire.session != _NR:
            yield _finding(m, f"35=q only on {_NR}", f"35=q on {m.wire.session}")
            continue
        if last is not None and m.wire.at - last < MASS_CANCEL_INTERVAL_S:
            yield _finding(m, "at most one 35=q a second", f"35=q {m.wire.at - last:.3f} s after the previous one")
        last = m.wire.at


def _p11(run: _Run) -> Iterator[Finding]:
    """Every 1 s window of write messages costs at most the tier's Write bucket capacity."""
    capacity = write_capacity(run.profile.tier)
    window: deque[float] = deque()
    over = False
    for m in run.client():
        if m.type not in WRITE_MSG_TYPES:
            continue
        at = m.wire.at
        while window and window[0] <= at - 1.0:
            window.popleft()
        window.append(at)
        cost = len(window) * DEFAULT_REQUEST_COST
        if cost > capacity and not over:
            yield _finding(m, f"write messages within {capacity} tokens a second ({run.profile.tier} tier, "
                              f"{DEFAULT_REQUEST_COST} a message)", f"{len(window)} in the last second ({cost} tokens)")
        over = cost > capacity


def _p12(run: _Run) -> Iterator[Finding]:
    for conn in run.connections.values():
        answered = logged_out = False
        for m in conn:
            if m.fields is None:
                continue
            if not m.from_client:
                answered = answered or m.type == "A"
                continue
            if m.type not in SESSION_MSG_TYPES:
                if not answered:
                    yield _finding(m, "no application message before the Logon reply", f"35={m.type}")
                elif logged_out:
                    yield _finding(m, "no application message after the client's Logout", f"35={m.type}")
            if m.type == "5":
                logged_out = True


def _p13(run: _Run) -> Iterator[Finding]:
    for m in run.client():
        if m.type != "3":
            continue
        ref = _referenced(run, m)
        tag = m.tags.get(371, "")
        reasons = []
        if tag.isdigit() and int(tag) >= USER_DEFINED_TAGS:
            reasons.append(f"371={tag} (a user-defined tag)")
        if m.tags.get(373) in UNKNOWN_TAG_REASONS:
            reasons.append(f"373={m.tags[373]} (a tag it does not know)")
        ref_type = m.tags.get(372) or (ref.type if ref is not None else "")
        if _custom(ref_type):
            reasons.append(f"about 35={ref_type} (a custom message type)")
        if reasons:
            about = f" at {ref.index}" if ref is not None else ""
            yield _finding(m, f"no Reject of the simulator's message{about} for a field or message type it does not know",
                           "35=3 " + ", ".join(reasons))


def _custom(msg_type: str) -> bool:
    return len(msg_type) > 1 and msg_type.startswith("U")  # Kalshi's own: UMS, UOH, U2 ...


def _referenced(run: _Run, reject: _Msg) -> _Msg | None:
    """The simulator's latest message on the reject's connection with 34 = its 45."""
    ref = reject.tags.get(45, "")
    found = None
    for m in run.connections[reject.wire.connection]:
        if m.index >= reject.index:
            break
        if not m.from_client and m.tags.get(34) == ref:
            found = m
    return found


def _p14(run: _Run) -> Iterator[Finding]:
    for m in run.client():
        if m.type in ORDER_REQUESTS:
            logon = run.logon_before(m)
            if logon is not None and logon.flag(20126):
                yield _finding(m, "no D, F, G or q on a listener session (20126=Y)", f"35={m.type}")


def _p15(run: _Run) -> Iterator[Finding]:
    """Every TestRequest answered by a Heartbeat echoing 112 within HeartBtInt."""
    for conn in run.connections.values():
        for i, m in enumerate(conn):
            if m.from_client or m.type != "1":
                continue
            logon = run.logon_before(m)
            interval = _heartbeat_interval(logon, run.evidence)
            if interval is None:
                continue
            test_id, deadline = m.tags.get(112, ""), m.wire.at + interval
            later = conn[i + 1:]
            answer = next((a for a in later if a.from_client and a.type == "0" and a.tags.get(112) == test_id), None)
            if answer is not None and answer.wire.at <= deadline:
                continue
            if answer is None and not _judgeable(later, deadline):
                continue
            yield _finding(m, f"a Heartbeat with 112={test_id} within {interval:g} s (HeartBtInt)",
                           "none" if answer is None else f"answered after {answer.wire.at - m.wire.at:.3f} s")


def _heartbeat_interval(logon: _Msg | None, evidence: Evidence) -> float | None:
    value = logon.tags.get(108, "") if logon is not None else ""
    return float(value) if value.isdigit() and int(value) > 0 else evidence.heartbeat_interval


def _judgeable(later: list[_Msg], deadline: float) -> bool:
    """Whether the connection is seen alive after the deadline, the simulator not ending it before:
    a connection whose transcript stops earlier may have been closed under the client."""
    if any(m.wire.at <= deadline and not m.from_client and m.type == "5" for m in later):
        return False
    return any(m.wire.at > deadline for m in later)


def _p16(run: _Run) -> Iterator[Finding]:
    """At most CONNECTS_PER_MINUTE connections a minute; one try after a permanent refusal."""
    window: deque[float] = deque()
    over = False
    pending: dict[str, tuple[str, int]] = {}  # session type -> (refusal text, tries since)
    for conn in run.connections.values():
        first = conn[0]
        at = first.wire.at
        while window and window[0] <= at - 60.0:
            window.popleft()
        window.append(at)
        if len(window) > CONNECTS_PER_MINUTE and not over:
            yield _finding(first, f"at most {CONNECTS_PER_MINUTE} connections a minute",
                           f"{len(window)} in the last minute")
        over = len(window) > CONNECTS_PER_MINUTE
        session = first.wire.session
        if session in pending:
            text, tries = pending[session]
            pending[session] = (text, tries + 1)
            if tries + 1 > TRIES_AFTER_PERMANENT_REFUSAL:
                yield _finding(first, f"no further connection to {session} once a retry was refused again with "
                                      f"{text!r} (a permanent refusal)", f"connection {first.wire.connection}, "
                                      f"try {tries + 1} after the refusal")
        for m in conn:
            if m.from_client or m.fields is None:
                continue
            if m.type == "A":
                pending.pop(session, None)
            elif m.type == "5":
                text = next((t for t in PERMANENT_REFUSALS if t in m.tags.get(58, "")), None)
                if text is not None and pending.get(session, ("",))[0] != text:
                    pending[session] = (text, 0)


CHECKS: dict[str, Callable[[_Run], Iterable[Finding]]] = {
    "P1": _p1, "P2": _p2, "P3": _p3, "P4": _p4, "P5": _p5, "P6": _p6, "P7": _p7, "P8": _p8,
    "P9": _p9, "P10": _p10, "P11": _p11, "P12": _p12, "P13": _p13, "P14": _p14, "P15": _p15, "P16": _p16,
}


def check_rules(evidence: Evidence, profile: Profile, rules: Mapping[str, Rule] | Iterable[Rule], *,
                key_id: str | Iterable[str] | None = None) -> list[Finding]:
    """Every breach of ``rules`` in ``evidence``, by message index, then rule. ``key_id``: the API key
    id(s) the client was given (P2); None: the 49 of the first Logon of each session type."""
    chosen = list(rules.values()) if isinstance(rules, Mapping) else list(rules)
    keys = None if key_id is None else frozenset({key_id} if isinstance(key_id, str) else key_id)
    run = _Run(evidence, profile, keys)
    found = []
    for rule in chosen:
        check = CHECKS.get(rule.id)
        if check is None:
            continue  # a rule the wire cannot decide; the library test keeps this set empty
        found.extend(Finding(f.expected, f.seen, f.message, rule.id) for f in check(run))
    return sorted(found, key=lambda f: (f.message if f.message is not None else -1, int((f.rule or "P0")[1:])))
