"""FIX message logs, written off the QuickFIX thread, with RawData redacted.

Why not QuickFIX's own logs: its FileLog writes the Logon signature (RawData, 96) in clear, which
must never reach a log, and a Python ``quickfix.LogFactory`` subclass deadlocks or corrupts the heap
in the 1.16.0 bindings (the SWIG director's ownership lock; see the issue notes). So the engine
and the simulator log messages from their Application callbacks instead.

A callback only puts the raw string on a queue (``logging.handlers.QueueHandler``); a listener
thread redacts, formats and writes it to ``<directory>/<session>.messages.log``.
"""

from __future__ import annotations

import logging
import logging.handlers
import queue
import re
from pathlib import Path

_RAW_DATA = re.compile("(\x0196=)[^\x01]*")


def redact(message: str) -> str:
    """A message fit for a log: RawData (96, the Logon signature) replaced, SOH shown as '|'."""
    if "\x0135=A\x01" in message:
        message = _RAW_DATA.sub(r"\g<1><redacted>", message)
    return message.replace("\x01", "|")


class _RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        record.msg = redact(str(record.msg))
        return super().format(record)


class _PerSessionFiles(logging.Handler):
    """Routes each record to its session's file (the logger name's last part). Writes are flushed
    when the queue runs dry, not after every line: one write call per burst instead of per message."""

    def __init__(self, directory: Path, pending: "queue.SimpleQueue[logging.LogRecord]"):
        super().__init__()
        self._directory = directory
        self._pending = pending
        self._files: dict[str, logging.FileHandler] = {}
        self._formatter = _RedactingFormatter("%(asctime)s %(direction)s %(message)s")

    def emit(self, record: logging.LogRecord) -> None:
        name = record.name.rsplit(".", 1)[-1]
        handler = self._files.get(name)
        if handler is None:
            self._directory.mkdir(parents=True, exist_ok=True)
            handler = logging.FileHandler(self._directory / f"{name}.messages.log", encoding="utf-8")
            handler.setFormatter(self._formatter)
            self._files[name] = handler
        assert handler.stream is not None
        handler.stream.write(self._formatter.format(record) + "\n")
        if self._pending.empty():
            for open_file in self._files.values():
                open_file.flush()

    def close(self) -> None:
        for handler in self._files.values():
            handler.close()
        super().close()


class MessageLogs:
    """The message logs of one engine or simulator: ``for_session(name)`` gives a session's log."""

    def __init__(self, directory: Path, enabled: bool = True, prefix: str = "fixengine.messages"):
        self.enabled = enabled
        self._prefix = prefix
        self._queue: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
        self._files = _PerSessionFiles(directory, self._queue)
        self._listener = logging.handlers.QueueListener(self._queue, self._files)
        self._started = False

    def start(self) -> None:
        if self.enabled and not self._started:
            self._listener.start()
            self._started = True

    def stop(self) -> None:
        if self._started:
            self._listener.stop()  # writes what is queued, then returns
            self._files.close()
            self._started = False

    def for_session(self, name: str) -> "SessionMessageLog":
        # A private Logger (not registered by name): two engines in one process never share one.
        logger = logging.Logger(f"{self._prefix}.{name}", logging.INFO)
        logger.addHandler(_PlainQueueHandler(self._queue))
        return SessionMessageLog(logger if self.enabled else None)


class _PlainQueueHandler(logging.handlers.QueueHandler):
    # The stock QueueHandler formats in the caller's thread; here formatting (and redaction)
    # happens in the listener thread, so the callback only enqueues.
    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        return record


class SessionMessageLog:
    __slots__ = ("_logger",)

    def __init__(self, logger: logging.Logger | None):
        self._logger = logger

    def incoming(self, raw: str) -> None:
        if self._logger is not None:
            self._logger.info(raw, extra={"direction": "<"})

    def outgoing(self, raw: str) -> None:
        if self._logger is not None:
            self._logger.info(raw, extra={"direction": ">"})
