"""A runner of QuickFIX's acceptance-test scenarios (``.def`` files) against an acceptor over TCP.

The scenarios are QuickFIX's own (``test/definitions/server/fix44``), kept outside this repository
(``../shared/quickfix-at``); their format is described in ``FORMAT.md`` there. This module plays
the counterparty the way QuickFIX's Ruby harness does (``Reflector.rb``, ``ReflectorClient.rb``,
``FixParser.rb``, ``Comparator.rb``), with one change: every read has a timeout (10 s by default,
as QuickFIX/J's runner), where upstream would hang.

- ``parse_def``: a file's lines as ``Step`` s (connection number, line number, text).
- ``expand_time`` / ``fixify``: the ``<TIME>``, ``<TIME+N>``, ``<TIME-N>`` placeholders, and the
  BodyLength (9) and CheckSum (10) a line gets when it has none.
- ``compare``: an ``E`` line against the message received (field count, tag order, exact values
  except the patterned tags 10, 52, 60, 122, 42).
- ``Connection``: one TCP connection and the framing of what the acceptor sends.
- ``run_scenario``: the steps of one file, in order; a ``ScenarioFailure`` names the file, the line,
  the reason and both messages (SOH shown as ``|``).
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum
from pathlib import Path

SOH = "\x01"
DEFAULT_TIMEOUT = 10.0  # seconds an E line or an eDISCONNECT waits (QuickFIX/J's runner uses 10 s)


# --- parsing ----------------------------------------------------------------------------------------


class Action(Enum):
    CONNECT = "iCONNECT"  # open a connection to the acceptor
    DISCONNECT = "iDISCONNECT"  # close it
    EXPECT_DISCONNECT = "eDISCONNECT"  # the acceptor must close it (no data first)
    SEND = "I"  # send the line's message
    EXPECT = "E"  # the next message received must match the line's


@dataclass(frozen=True, slots=True)
class Step:
    line: int  # 1-based line number in the file
    action: Action
    connection: int  # 1 unless the line says ``N,``
    text: str = ""  # the message template of I and E lines (placeholders not yet expanded)
    source: str = ""  # the line as written


class DefSyntaxError(ValueError):
    pass


_CONNECTION_PREFIX = re.compile(r"^[IEie](\d),")


def parse_def(text: str | bytes, name: str = "<def>") -> list[Step]:
    """The steps of a ``.def`` script. Empty lines and ``#`` comments are skipped; ``eCONNECT``
    (the harness listening for an initiator under test) is not supported."""
    if isinstance(text, bytes):
        text = text.decode("latin-1")
    steps: list[Step] = []
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.removesuffix("\r")
        if not line or line.startswith("#"):
            continue
        prefix = _CONNECTION_PREFIX.match(line)
        connection, body = (int(prefix.group(1)), line[3:]) if prefix else (1, line[1:])
        kind = line[0]
        if kind == "I":
            steps.append(Step(number, Action.SEND, connection, body, line))
        elif kind == "E":
            steps.append(Step(number, Action.EXPECT, connection, body, line))
        elif kind == "i" and body == "CONNECT":
            steps.append(Step(number, Action.CONNECT, connection, source=line))
        elif kind == "i" and body == "DISCONNECT":
            steps.append(Step(number, Action.DISCONNECT, connection, source=line))
        elif kind == "e" and body == "DISCONNECT":
            steps.append(Step(number, Action.EXPECT_DISCONNECT, connection, source=line))
        elif kind == "e" and body == "CONNECT":
            raise DefSyntaxError(f"{name}:{number}: eCONNECT (initiator under test) is not supported")
        else:
            raise DefSyntaxError(f"{name}:{number}: syntax error: {show(line)}")
    return steps


def parse_def_file(path: Path) -> list[Step]:
    return parse_def(path.read_bytes(), path.name)


# --- placeholders, BodyLength and CheckSum ----------------------------------------------------------

_TIME_FORMAT = "%Y%m%d-%H:%M:%S"
_TIME_PLACEHOLDER = re.compile(r"<TIME(?:([+-])(\d+))?>")


def expand_time(text: str, now: datetime | None = None) -> str:
    """``<TIME>`` as the UTC time ``YYYYMMDD-HH:MM:SS``; ``<TIME+N>`` / ``<TIME-N>`` shifted by N s.

    The format has whole seconds: ``<TIME>`` and ``<TIME-N>`` drop the fraction (as upstream's
    ``strftime``), ``<TIME+N>`` rounds it up, so that a shifted time is always at least N seconds
    away from the moment the acceptor reads it. QuickFIX compares whole seconds; truncating
    ``<TIME+121>`` would make it 120 s ahead when the second changes in flight (2o would then be
    accepted as within MaxLatency, about once in a thousand runs)."""
    now = now or datetime.now(UTC)

    def one(match: re.Match[str]) -> str:
        if match.group(1) is None:
            return now.strftime(_TIME_FORMAT)
        shift = timedelta(seconds=int(match.group(2)))
        if match.group(1) == "-":
            return (now - shift).strftime(_TIME_FORMAT)
        whole = now.replace(microsecond=0)
        up = whole if whole == now else whole + timedelta(seconds=1)
        return (up + shift).strftime(_TIME_FORMAT)

    return _TIME_PLACEHOLDER.sub(one, text)


def checksum(data: bytes) -> str:
    return f"{sum(data) % 256:03d}"


_HAS_LENGTH = re.compile(rb"\x019=.*?\x01")
_HEAD = re.compile(rb"8=.*?\x01")
_TRAILER = re.compile(rb"\x0110=.*\x01\Z", re.DOTALL)


def fixify(message: bytes) -> bytes:
    """The message with a BodyLength right after BeginString if it has no ``9=`` field, and a
    CheckSum appended if it does not end with a ``10=`` field, as the Ruby harness does: a line
    that does not start with ``8=`` is left as it is, and values written in the line are kept
    (wrong on purpose in some scenarios)."""
    has_length = _HAS_LENGTH.search(message) is not None
    head = _HEAD.match(message)
    if head is None:
        return message
    rest = message[head.end():]
    trailer = _TRAILER.search(rest)
    body = rest[: trailer.start() + 1] if trailer else rest  # keeps the SOH that ends the body
    length = b"" if has_length else b"9=%d\x01" % len(body)
    prefix = head.group() + length + body
    check = rest[trailer.start() + 1:] if trailer else f"10={checksum(prefix)}\x01".encode()
    return prefix + check


def prepare(template: str, now: datetime | None = None) -> bytes:
    """An I or E line's message as it goes on the wire (or is compared): placeholders, then 9 and 10."""
    return fixify(expand_time(template, now).encode("latin-1"))


# --- comparison -------------------------------------------------------------------------------------

_TIMESTAMP = r"\d{8}-\d{2}:\d{2}:\d{2}"
# Tags whose value cannot be known in advance (upstream ``test/definitions/fields.fmt``, as FORMAT.md
# describes it): how the received value must look. Every other tag must match exactly.
PATTERNS: dict[int, Callable[[str], object]] = {
    10: re.compile(r"\d{3}").fullmatch,  # CheckSum: three digits
    52: re.compile(_TIMESTAMP + r"(\.\d{3})?").fullmatch,  # SendingTime, optional milliseconds
    122: re.compile(_TIMESTAMP).match,  # OrigSendingTime: starts with a timestamp
    60: re.compile(_TIMESTAMP).match,  # TransactTime
    42: re.compile(_TIMESTAMP).match,  # OrigTime
}


def _fields(message: bytes) -> list[tuple[str, str]]:
    parts = message.decode("latin-1").split(SOH)
    while parts and parts[-1] == "":  # as Ruby's split: trailing empty strings dropped
        parts.pop()
    return [(tag, value) for tag, _, value in (part.partition("=") for part in parts)]


def compare(expected: bytes, received: bytes) -> str | None:
    """Why ``received`` does not match the E line's ``expected`` message, or None if it does."""
    want, got = _fields(expected), _fields(received)
    if len(want) != len(got):
        return f"number of fields does not match: expected {len(want)}, received {len(got)}"
    for index, ((tag, value), (got_tag, got_value)) in enumerate(zip(want, got, strict=True), start=1):
        if tag != got_tag:
            return f"field {index}: expected tag {tag} but found tag {got_tag}"
        pattern = PATTERNS.get(int(tag)) if tag.isdigit() else None
        if pattern is None:
            if value != got_value:
                return f"value of tag {tag} should be {value!r} but was {got_value!r}"
        elif not pattern(got_value):
            return f"value of tag {tag} ({got_value!r}) does not match its pattern"
    return None


def show(message: bytes | str) -> str:
    """A message for humans: SOH as ``|``, other control bytes escaped."""
    if isinstance(message, bytes):
        message = message.decode("latin-1")
    return "".join("|" if c == SOH else c if c.isprintable() else f"\\x{ord(c):02x}" for c in message)


# --- the wire ---------------------------------------------------------------------------------------


class StepError(Exception):
    """A step failed; ``received`` is what the connection produced, if anything."""

    def __init__(self, reason: str, received: bytes | None = None):
        super().__init__(reason)
        self.reason = reason
        self.received = received


class Connection:
    """One TCP connection to the acceptor, and the framing of what it sends, as ``FixParser.rb``:
    up to ``9=``, the length up to SOH, that many bytes of body, the CheckSum up to SOH."""

    def __init__(self, host: str, port: int, connect_timeout: float = DEFAULT_TIMEOUT):
        self.sock = socket.create_connection((host, port), timeout=connect_timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = bytearray()
        self.closed_by_peer = False

    def send(self, data: bytes) -> None:
        self.sock.settimeout(DEFAULT_TIMEOUT)
        self.sock.sendall(data)

    def close(self) -> None:
        self.sock.close()

    def _fill(self, deadline: float) -> bool:
        """Read what is there (waiting until ``deadline``); False when the peer has closed."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except TimeoutError:
            raise TimeoutError from None
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            self.closed_by_peer = True
            return False
        self.buffer += chunk
        return True

    def _until(self, marker: bytes, start: int, deadline: float) -> int:
        """Index just past ``marker`` in the buffer (searched from ``start``), reading as needed."""
        while (found := self.buffer.find(marker, start)) < 0:
            if self.closed_by_peer or not self._fill(deadline):
                raise StepError("disconnected, expected data", bytes(self.buffer) or None)
        return found + len(marker)

    def read_message(self, timeout: float) -> bytes:
        """The next complete message."""
        deadline = time.monotonic() + timeout
        try:
            after_tag = self._until(b"\x019=", 0, deadline)
            after_length = self._until(SOH.encode(), after_tag, deadline)
            length = bytes(self.buffer[after_tag: after_length - 1])
            if not length.isdigit():
                raise StepError(f"BodyLength {length!r} is not a number", bytes(self.buffer))
            end_of_body = after_length + int(length)
            while len(self.buffer) < end_of_body:
                if self.closed_by_peer or not self._fill(deadline):
                    raise StepError("disconnected in the middle of a message", bytes(self.buffer))
            end = self._until(SOH.encode(), end_of_body, deadline)
        except TimeoutError:
            partial = bytes(self.buffer) or None
            raise StepError(f"no complete message within {timeout:g} s", partial) from None
        message = bytes(self.buffer[:end])
        del self.buffer[:end]
        return message

    def wait_closed(self, timeout: float) -> None:
        """Return when the acceptor closes the connection; fail if data comes first or nothing
        happens within ``timeout``."""
        if self.buffer:
            raise StepError("expected disconnection, got data", bytes(self.buffer))
        if self.closed_by_peer:
            return
        deadline = time.monotonic() + timeout
        try:
            if self._fill(deadline):
                raise StepError("expected disconnection, got data", bytes(self.buffer))
        except TimeoutError:
            raise StepError(f"connection still open after {timeout:g} s, expected disconnection") from None


# --- running a scenario -----------------------------------------------------------------------------


class ScenarioFailure(AssertionError):
    pass


def _failure(name: str, step: Step, reason: str, expected: bytes | None = None,
             received: bytes | None = None, sent: bytes | None = None) -> ScenarioFailure:
    lines = [f"{name}:{step.line}: {reason}", f"  line:     {show(step.source)}"]
    if sent is not None:
        lines.append(f"  sent:     {show(sent)}")
    if expected is not None:
        lines.append(f"  expected: {show(expected)}")
    if received is not None:
        lines.append(f"  received: {show(received)}")
    return ScenarioFailure("\n".join(lines))


def run_steps(steps: Iterable[Step], host: str, port: int, *, name: str = "<def>",
              timeout: float = DEFAULT_TIMEOUT, log: Callable[[str], None] | None = None) -> None:
    """Play ``steps`` against the acceptor at ``host:port``; raise ``ScenarioFailure`` at the first
    step that fails. Every connection opened is closed when this returns."""
    connections: dict[int, Connection] = {}
    try:
        for step in steps:
            if log is not None:
                log(f"{name}:{step.line}: {show(step.source)}")
            _run_step(step, connections, host, port, name, timeout, log)
    finally:
        for connection in connections.values():
            connection.close()


def _run_step(step: Step, connections: dict[int, Connection], host: str, port: int, name: str,
              timeout: float, log: Callable[[str], None] | None) -> None:
    cid = step.connection
    if step.action is Action.CONNECT:
        if cid in connections:
            connections.pop(cid).close()
        try:
            connections[cid] = Connection(host, port, timeout)
        except OSError as exc:
            raise _failure(name, step, f"cannot connect to {host}:{port}: {exc}") from None
        return
    connection = connections.get(cid)
    if connection is None:
        raise _failure(name, step, f"connection {cid} is not open")
    if step.action is Action.DISCONNECT:
        connections.pop(cid).close()
    elif step.action is Action.SEND:
        message = prepare(step.text)
        try:
            connection.send(message)
        except OSError as exc:
            raise _failure(name, step, f"unable to send, the connection was dropped ({exc})", sent=message) from None
    elif step.action is Action.EXPECT:
        try:
            received = connection.read_message(timeout)
        except StepError as exc:
            raise _failure(name, step, exc.reason, prepare(step.text), exc.received) from None
        expected = prepare(step.text)  # after the read: a <TIME> in an E line is "now"
        if log is not None:
            log(f"  received: {show(received)}")
        reason = compare(expected, received)
        if reason is not None:
            raise _failure(name, step, reason, expected, received)
    elif step.action is Action.EXPECT_DISCONNECT:
        try:
            connection.wait_closed(timeout)
        except StepError as exc:
            raise _failure(name, step, exc.reason, received=exc.received) from None
        connections.pop(cid).close()


def run_scenario(path: Path, host: str, port: int, *, timeout: float = DEFAULT_TIMEOUT,
                 log: Callable[[str], None] | None = None) -> None:
    """Run one ``.def`` file against the acceptor at ``host:port``."""
    run_steps(parse_def_file(path), host, port, name=path.name, timeout=timeout, log=log)
