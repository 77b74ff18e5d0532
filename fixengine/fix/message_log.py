"""FIX message logs, written off the QuickFIX thread, with RawData redacted.

Why not QuickFIX's own logs: its FileLog writes the Logon signature (RawData, 96) in clear, which
must never reach a log, and a Python ``quickfix.LogFactory`` subclass deadlocks or corrupts the heap
in the 1.16.0 bindings (the SWIG director's ownership lock; see the issue notes). So the engine
and the simulator log messages from their Application callbacks instead.

A callback only puts ``(file, direction, time, raw)`` on a queue: no ``logging`` records, no
formatting (that cost ~10 µs per message on the hot path). A writer thread takes what is queued,
redacts and formats it, writes it to ``<directory>/<session>.messages.log`` and flushes once the
queue runs dry: one write per burst, not per message.
"""

from __future__ import annotations

import queue
import re
import threading
import time
from pathlib import Path
from typing import IO

_RAW_DATA = re.compile("(\x0196=)[^\x01]*")
_STOP = None


def redact(message: str) -> str:
    """A message fit for a log: RawData (96, the Logon signature) replaced, SOH shown as '|'."""
    if "\x0135=A\x01" in message:
        message = _RAW_DATA.sub(r"\g<1><redacted>", message)
    return message.replace("\x01", "|")


def _format(at: float, direction: str, raw: str) -> str:
    seconds = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at))
    return f"{seconds},{int(at % 1 * 1000):03d} {direction} {redact(raw)}\n"


class MessageLogs:
    """The message logs of one engine or simulator: ``for_session(name)`` gives a session's log."""

    def __init__(self, directory: Path, enabled: bool = True, prefix: str = "fixengine.messages"):
        # ``prefix`` names the writer thread (engine or simulator), for thread dumps.
        self.enabled = enabled
        self._directory = directory
        self._queue: queue.SimpleQueue[tuple[str, str, float, str] | None] = queue.SimpleQueue()
        self._files: dict[str, IO[str]] = {}
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
        return SessionMessageLog(name, self._queue if self.enabled else None)

    def _file(self, name: str) -> IO[str]:
        file = self._files.get(name)
        if file is None:
            self._directory.mkdir(parents=True, exist_ok=True)
            file = open(self._directory / f"{name}.messages.log", "a", encoding="utf-8")  # noqa: SIM115
            self._files[name] = file
        return file

    def _write(self) -> None:
        pending = self._queue
        while True:
            item = pending.get()
            if item is _STOP:
                break
            name, direction, at, raw = item
            self._file(name).write(_format(at, direction, raw))
            if pending.empty():
                for file in self._files.values():
                    file.flush()
        for file in self._files.values():
            file.flush()


class SessionMessageLog:
    """One session's message log; ``incoming``/``outgoing`` are safe (and cheap) on any thread."""

    __slots__ = ("_name", "_queue")

    def __init__(self, name: str, pending: "queue.SimpleQueue[tuple[str, str, float, str] | None] | None"):
        self._name = name
        self._queue = pending

    def incoming(self, raw: str) -> None:
        if self._queue is not None:
            self._queue.put((self._name, "<", time.time(), raw))

    def outgoing(self, raw: str) -> None:
        if self._queue is not None:
            self._queue.put((self._name, ">", time.time(), raw))
