"""The process log of the ``fixengine`` command: text for people, or JSON lines for a log store,
with the same facts in both, and no secret in either.

    configure_logging("json", verbose=False)   # what ``fixengine --log-format json`` does
    log.info("%s: order refused: %s", client, why,
             extra=correlate(oms_session=client, oms_cl_ord_id=cl_ord_id))

``correlate`` attaches the fields an operator searches by (``CORRELATION_FIELDS``): the Kalshi
session's name, the OMS client's session, the OMS's ClOrdID, the engine's ClOrdID at Kalshi and
an ExecID. JSON puts each in its own key; text appends them as ``[oms_session=desk-a ...]``.

Both formats pass every message and traceback through ``redact_text`` before it is written: a FIX
message quoted in a log line (an error path printing what it could not read) loses its passwords
(554, 925, 1402, 1404) and a Logon its signature (96), and a PEM private key block is removed.
The FIX message logs themselves are ``fixengine.fix.message_log`` (redacted the same way).

The standard library's ``logging`` only: a JSON line is a ``json.dumps`` of a dict.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import datetime, timezone
from typing import IO, Literal

from fixengine.fix.message_log import redact_text as redact_fix_text

LogFormat = Literal["text", "json"]
LOG_FORMATS: tuple[LogFormat, ...] = ("text", "json")

# The fields ``correlate`` may attach, in the order both formats show them.
CORRELATION_FIELDS = ("session", "oms_session", "oms_cl_ord_id", "kalshi_cl_ord_id", "exec_id")

TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"

_PEM_PRIVATE_KEY = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\Z)", re.DOTALL)


def correlate(*, session: str | None = None, oms_session: str | None = None, oms_cl_ord_id: str | None = None,
              kalshi_cl_ord_id: str | None = None, exec_id: str | None = None) -> dict[str, str]:
    """The ``extra`` of a log call that concerns a session, an order or a report; fields given as
    None are left out. ``session``: the Kalshi session's name; ``oms_session``: the OMS client's
    name; ``oms_cl_ord_id``: the ClOrdID the OMS used; ``kalshi_cl_ord_id``: the engine's ClOrdID
    at Kalshi (an order's key, or the cancel/replace's own); ``exec_id``: an ExecID (17)."""
    given = {"session": session, "oms_session": oms_session, "oms_cl_ord_id": oms_cl_ord_id,
             "kalshi_cl_ord_id": kalshi_cl_ord_id, "exec_id": exec_id}
    return {name: str(value) for name, value in given.items() if value is not None}


def correlation_of(record: logging.LogRecord) -> dict[str, str]:
    """The correlation fields a record carries, in ``CORRELATION_FIELDS`` order."""
    found = {}
    for name in CORRELATION_FIELDS:
        value = getattr(record, name, None)
        if value is not None:
            found[name] = str(value)
    return found


def redact_text(text: str) -> str:
    """``text`` fit for a log: secret FIX fields (see ``fixengine.fix.message_log.redact_text``)
    and any PEM private key removed."""
    text = redact_fix_text(text)
    if "PRIVATE KEY" in text:
        text = _PEM_PRIVATE_KEY.sub("<redacted private key>", text)
    return text


class TextFormatter(logging.Formatter):
    """``TEXT_FORMAT``, with the record's correlation fields appended to its first line
    (``[oms_session=desk-a oms_cl_ord_id=123]``), redacted."""

    def __init__(self, fmt: str = TEXT_FORMAT, datefmt: str | None = None):
        super().__init__(fmt, datefmt)

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        record.message = redact_text(record.message)
        line = super().formatMessage(record)
        fields = correlation_of(record)
        if fields:
            line += " [" + " ".join(f"{name}={value}" for name, value in fields.items()) + "]"
        return line

    def formatException(self, ei) -> str:  # type: ignore[no-untyped-def]  # noqa: N802
        return redact_text(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str:  # noqa: N802
        return redact_text(super().formatStack(stack_info))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``time`` (UTC, ISO-8601, microseconds), ``level``, ``logger``,
    ``message``, the correlation fields the record carries, ``exc_info`` (the traceback, a
    string) and ``stack_info`` when there are any. Redacted like the text format."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact_text(record.getMessage()),
        }
        out.update(correlation_of(record))
        if record.exc_info:
            if not record.exc_text:
                record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            out["exc_info"] = redact_text(record.exc_text)
        if record.stack_info:
            out["stack_info"] = redact_text(self.formatStack(record.stack_info))
        # json.dumps escapes newlines (a traceback, a multi-line message): one line per record.
        return json.dumps(out, ensure_ascii=False, default=str)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when a record is written (as ``logging.lastResort``
    does), not the one there was at setup."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self) -> IO[str]:
        return sys.stderr

    @stream.setter
    def stream(self, value: IO[str]) -> None:
        pass


def configure_logging(format: LogFormat = "text", verbose: bool = False,  # noqa: A002 - the option's name
                      stream: IO[str] | None = None) -> logging.Handler:
    """The root logger writes to ``stream`` (default: standard error) in ``format``, at DEBUG with
    ``verbose``, else INFO. Called again, it replaces the handler it installed before (and
    leaves any other alone). In JSON, Python's warnings become records too (JSON lines like the
    rest). Returns the handler."""
    if format not in LOG_FORMATS:
        raise ValueError(f"log format {format!r} is not one of {', '.join(LOG_FORMATS)}")
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_fixengine", False)]:
        root.removeHandler(old)
        old.close()
    handler: logging.Handler = logging.StreamHandler(stream) if stream is not None else _StderrHandler()
    handler.setFormatter(JsonFormatter() if format == "json" else TextFormatter())
    handler._fixengine = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    logging.captureWarnings(format == "json")
    return handler
