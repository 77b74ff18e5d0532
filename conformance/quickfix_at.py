"""QuickFIX's acceptance-test scenarios (``.def`` files) as data: reading a script, filling in its
placeholders, BodyLength and CheckSum, and comparing what an acceptor sent with an ``E`` line. Pure.

The scenarios are QuickFIX's own (``test/definitions/server/fix44``), kept outside this repository
(``../shared/quickfix-at``); ``FORMAT.md`` there describes the format. What is here follows QuickFIX's
Ruby harness (``FixParser.rb``, ``Comparator.rb``); playing a script over TCP is ``conformance.acceptor``.

- ``parse_def``: a file's lines as ``Step`` s (connection number, line number, text), and its title.
- ``expand_time`` / ``fixify``: the ``<TIME>``, ``<TIME+N>``, ``<TIME-N>`` placeholders, and the
  BodyLength (9) and CheckSum (10) a line gets when it has none.
- ``compare``: an ``E`` line against the message received (field count, tag order, exact values
  except the patterned tags 10, 52, 60, 122, 42).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum
from pathlib import Path

SOH = "\x01"


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
    note: str = ""  # the comment lines just above it, if any: what the step checks


@dataclass(frozen=True, slots=True)
class DefScript:
    name: str  # the file name, e.g. "14h_RepeatedTag.def"
    title: str  # what the leading comments say it tests
    expected: str  # the ``@expected`` comment, or ""
    steps: tuple[Step, ...]

    @property
    def stem(self) -> str:
        return self.name.removesuffix(".def")


class DefSyntaxError(ValueError):
    pass


_CONNECTION_PREFIX = re.compile(r"^[IEie](\d),")


def parse_def(text: str | bytes, name: str = "<def>") -> list[Step]:
    """The steps of a ``.def`` script. Empty lines and ``#`` comments are skipped; ``eCONNECT``
    (the harness listening for an initiator under test) is not supported."""
    if isinstance(text, bytes):
        text = text.decode("latin-1")
    steps: list[Step] = []
    comments: list[str] = []  # since the last step
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.removesuffix("\r")
        if line.startswith("#"):
            comments.append(line.lstrip("#").strip())
            continue
        if not line:
            continue
        prefix = _CONNECTION_PREFIX.match(line)
        connection, body = (int(prefix.group(1)), line[3:]) if prefix else (1, line[1:])
        kind, note = line[0], " ".join(c for c in comments if c and not c.startswith("@") and set(c) != {"-"})
        comments = []
        if not note and kind == "E" and steps and steps[-1].action is Action.SEND:
            note = steps[-1].note  # "logout message and response" is said once, above the I line
        if kind == "I":
            steps.append(Step(number, Action.SEND, connection, body, line, note))
        elif kind == "E":
            steps.append(Step(number, Action.EXPECT, connection, body, line, note))
        elif kind == "i" and body == "CONNECT":
            steps.append(Step(number, Action.CONNECT, connection, source=line, note=note))
        elif kind == "i" and body == "DISCONNECT":
            steps.append(Step(number, Action.DISCONNECT, connection, source=line, note=note))
        elif kind == "e" and body == "DISCONNECT":
            steps.append(Step(number, Action.EXPECT_DISCONNECT, connection, source=line, note=note))
        elif kind == "e" and body == "CONNECT":
            raise DefSyntaxError(f"{name}:{number}: eCONNECT (initiator under test) is not supported")
        else:
            raise DefSyntaxError(f"{name}:{number}: syntax error: {show(line)}")
    return steps


def _leading_comments(text: str) -> list[str]:
    comments = []
    for line in text.split("\n"):
        line = line.strip()
        if not line.startswith("#"):
            break
        comments.append(line.lstrip("#").strip())
    return comments


def read_def(text: str | bytes, name: str) -> DefScript:
    """A script with its title: the first leading comment that is not ``@testcase`` (``@condition``
    and a bare ``@`` dropped), else the name."""
    if isinstance(text, bytes):
        text = text.decode("latin-1")
    steps = tuple(parse_def(text, name))
    title, expected = "", ""
    for comment in _leading_comments(text):
        if comment.startswith("@expected"):
            expected = expected or comment.removeprefix("@expected").strip()
        elif comment and not comment.startswith("@testcase") and not title:
            title = comment.removeprefix("@condition").removeprefix("@").strip()
    return DefScript(name, title or name.removesuffix(".def"), expected, steps)


def read_def_file(path: Path) -> DefScript:
    return read_def(path.read_bytes(), path.name)


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
