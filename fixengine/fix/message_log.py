"""FIX message logs, written off the QuickFIX thread, with secrets redacted: the audit log of
every message each session sent and received.

Why not QuickFIX's own logs: its FileLog writes the Logon signature (RawData, 96) in clear, which
must never reach a log, and a Python ``quickfix.LogFactory`` subclass deadlocks or corrupts the heap
in the 1.16.0 bindings (the SWIG director's ownership lock; see the issue notes). So the engine
and the simulator log messages from their Application callbacks instead.

A callback only puts ``(file, direction, time, raw)`` on a queue: no ``logging`` records, no
formatting (that cost ~10 µs per message on the hot path). A writer thread takes what is queued,
redacts and formats it, writes it to ``<directory>/<session>.messages.log`` and flushes once the
queue runs dry: it wakes once per burst (``LINGER_S``) and writes once per burst, not per message.

Append-only: a file is opened in append mode when its session first logs a message and only ever
appended to; nothing here truncates, rewrites or rotates it, so a restart goes on at its end (rotate
with ``copytruncate``, or move the file and restart: the file is kept open).

Redacted (``redact``), on the writer thread: RawData (96) on a Logon, where it is the signature,
and Password (554), NewPassword (925), EncryptedPassword (1402) and EncryptedNewPassword (1404) on
any message. Each is checked for by a substring test first: a message without them costs no regex.
"""

from __future__ import annotations

import collections
import queue
import re
import threading
import time
from pathlib import Path
from typing import IO

_RAW_DATA = re.compile("(\x0196=)[^\x01]*")
# Password (554), NewPassword (925), EncryptedPassword (1402), EncryptedNewPassword (1404).
_PASSWORD_TAGS = "554|925|1402|1404"
_PASSWORDS = re.compile(f"(\x01(?:{_PASSWORD_TAGS})=)[^\x01]*")
# The same fields in text that quotes a message shown with '|' (or SOH), e.g. in an error.
_SHOWN_LOGON = re.compile(r"(?:^|[|\x01])35=A(?:[|\x01]|$)", re.MULTILINE)
_SHOWN_RAW_DATA = re.compile(r"((?:^|[|\x01])96=)[^|\x01\n]*", re.MULTILINE)
_SHOWN_PASSWORDS = re.compile(rf"((?:^|[|\x01])(?:{_PASSWORD_TAGS})=)[^|\x01\n]*", re.MULTILINE)
_STOP = None
# After the first message of a burst, the writer waits this long and then writes all that came: one
# wake-up of its thread per burst. Woken per message, it took the GIL from the loop four times per
# order through the gateway, each time in the middle of the order's path (the serve process's futex
# calls over a gateway benchmark run: 82k per message, 27k per burst).
LINGER_S = 0.005


def redact(message: str) -> str:
    """A message fit for a log: RawData (96, the signature) on a Logon and the passwords (554, 925,
    1402, 1404) on any message replaced by ``<redacted>``, SOH shown as '|'."""
    if "\x0135=A\x01" in message:
        message = _RAW_DATA.sub(r"\g<1><redacted>", message)
    if "\x01554=" in message or "\x01925=" in message or "\x011402=" in message or "\x011404=" in message:
        message = _PASSWORDS.sub(r"\g<1><redacted>", message)
    return message.replace("\x01", "|")


def redact_text(text: str) -> str:
    """Text that may quote FIX messages with fields separated by '|' or SOH (a log line, an
    error): the fields ``redact`` removes, removed (96 where the text holds a Logon, 35=A)."""
    if "=" not in text:
        return text
    if "96=" in text and _SHOWN_LOGON.search(text):
        text = _SHOWN_RAW_DATA.sub(r"\g<1><redacted>", text)
    if "554=" in text or "925=" in text or "1402=" in text or "1404=" in text:
        text = _SHOWN_PASSWORDS.sub(r"\g<1><redacted>", text)
    return text


def _msg_type(raw: str) -> str:
    start = raw.find("\x0135=") + 4
    return raw[start:raw.find("\x01", start)] if start >= 4 else "?"


_second: tuple[int, str] = (-1, "")  # the last second formatted, and its text


def _format(at: float, direction: str, raw: str) -> str:
    global _second
    whole, cached = int(at), _second  # one read: another writer thread may replace it meanwhile
    if cached[0] != whole:  # strftime once a second, not once a message
        cached = _second = (whole, time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(whole)))
    return f"{cached[1]},{int((at - whole) * 1000):03d} {direction} {redact(raw)}\n"


class MessageLogs:
    """The message logs of one engine or simulator: ``for_session(name)`` gives a session's log."""

    def __init__(self, directory: Path, enabled: bool = True, prefix: str = "fixengine.messages"):
        # ``prefix`` names the writer thread (engine or simulator), for thread dumps.
        self.enabled = enabled
        self._directory = directory
        self._queue: queue.SimpleQueue[tuple[str, str, float, str] | None] = queue.SimpleQueue()
        self._files: dict[str, IO[str]] = {}
        self._sessions: dict[str, SessionMessageLog] = {}
        # Messages logged, by (session, direction "in"/"out", MsgType), for the service's metrics
        # (only with logging on): counted as they are logged, so exact at any moment where one
        # thread logs a session (the engine's and the gateway's loop).
        self.counts: collections.Counter[tuple[str, str, str]] = collections.Counter()
        self.bursts = 0  # times the writer woke and wrote what had come
        self._thread = threading.Thread(target=self._write, name=f"{prefix}-writer", daemon=True)

    def start(self) -> None:
        if self.enabled and not self._thread.is_alive() and self._thread.ident is None:
            self._thread.start()

    def stop(self) -> None:
        """Write everything queued so far, then close the files."""
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join()
        for file in self._files.values():
            file.close()
        self._files.clear()

    def for_session(self, name: str) -> "SessionMessageLog":
        log = self._sessions[name] = SessionMessageLog(name, self._queue if self.enabled else None, self.counts)
        return log

    def session(self, name: str) -> "SessionMessageLog | None":
        """The log ``for_session`` gave for ``name``, if any (its last_in/last_out)."""
        return self._sessions.get(name)

    def _file(self, name: str) -> IO[str]:
        file = self._files.get(name)
        if file is None:
            self._directory.mkdir(parents=True, exist_ok=True)
            file = open(self._directory / f"{name}.messages.log", "a", encoding="utf-8")  # noqa: SIM115
            self._files[name] = file
        return file

    def _write(self) -> None:
        pending = self._queue
        stopping = False
        while not stopping:
            item = pending.get()  # idle: the first message wakes this thread
            if item is not _STOP:
                time.sleep(LINGER_S)  # the rest of the burst comes meanwhile, without waking it again
            while item is not None:
                name, direction, at, raw = item
                self._file(name).write(_format(at, direction, raw))
                try:
                    item = pending.get_nowait()
                except queue.Empty:
                    break
            stopping = item is _STOP
            for file in self._files.values():
                file.flush()
            self.bursts += 1


class SessionMessageLog:
    """One session's message log; ``incoming``/``outgoing`` are safe (and cheap) on any thread.
    ``last_in``/``last_out``: when the last message came in and went out (epoch seconds, 0.0 before
    the first), kept even with logging off, for the service's status."""

    __slots__ = ("_name", "_queue", "_counts", "last_in", "last_out")

    def __init__(self, name: str, pending: "queue.SimpleQueue[tuple[str, str, float, str] | None] | None",
                 counts: "collections.Counter[tuple[str, str, str]]"):
        self._name = name
        self._queue = pending
        self._counts = counts
        self.last_in = 0.0
        self.last_out = 0.0

    def incoming(self, raw: str, msg_type: str | None = None) -> None:
        """``msg_type``: the message's MsgType, if the caller has read it already."""
        self.last_in = at = time.time()
        if self._queue is not None:
            self._queue.put((self._name, "<", at, raw))
            self._counts[(self._name, "in", msg_type or _msg_type(raw))] += 1

    def outgoing(self, raw: str, msg_type: str | None = None) -> None:
        self.last_out = at = time.time()
        if self._queue is not None:
            self._queue.put((self._name, ">", at, raw))
            self._counts[(self._name, "out", msg_type or _msg_type(raw))] += 1
