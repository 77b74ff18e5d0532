"""Errors of the Kalshi REST client, parsed from whichever body shape Kalshi answered with. The
classes are defined in ``fixengine.errors`` (with every other public error) and re-exported here.

Kalshi answers errors in several shapes (rest-spec.md §9); ``error_for`` reads all:

- nested ``{"error": {"code", "message", "details"}}`` (auth, order and exchange errors),
- flat ``{"code", "message", "details"}`` (body decoding errors),
- bare ``{"msg": "..."}`` (query-parameter validation, e.g. a limit over the maximum),
- the rate limiter's ``{"error": "too many requests"}``,
- and, from ASGI servers such as the simulator's, ``{"detail": ...}``; anything else is shown as
  (the start of) its text.

An error's text names the request (method and path, never the query, headers or key material),
the HTTP status, Kalshi's ``code`` and its message.
"""

from __future__ import annotations

import json
from http import HTTPStatus

from fixengine.errors import (
    AuthenticationError,
    InvalidResponseError,
    NotFoundError,
    RateLimitedError,
    RestError,
    RestTransportError,
    ServerError,
)

_MAX_TEXT = 300  # an HTML error page is not a message; its start is enough to recognise it


def error_for(method: str, path: str, status: int, body: bytes, *, attempts: int = 1) -> RestError:
    """The typed error for an HTTP error answer: ``AuthenticationError``
    for 401, ``NotFoundError`` for 404, ``RateLimitedError`` for 429, ``ServerError`` for 5xx, else
    ``RestError``. The classes live in ``fixengine.errors``; reading Kalshi's answers lives here."""
    code, message, details = parse_error_body(body)
    if not message:
        message = _reason(status)
    cls: type[RestError]
    if status == 401:
        cls = AuthenticationError
    elif status == 404:
        cls = NotFoundError
    elif status == 429:
        cls = RateLimitedError
    elif status >= 500:
        cls = ServerError
    else:
        cls = RestError
    return cls(method, path, status, message, code=code, details=details, attempts=attempts)


def parse_error_body(body: bytes) -> tuple[str | None, str, str | None]:
    """``(code, message, details)`` from an error body of any known shape; ``message`` is empty
    when the body says nothing."""
    text = body.decode("utf-8", errors="replace").strip()
    if not text:
        return None, "", None
    try:
        data = json.loads(text)
    except ValueError:
        return None, _clip(text), None
    if isinstance(data, dict):
        inner = data.get("error")
        if isinstance(inner, dict):  # nested: {"error": {"code", "message", "details"}}
            return _fields(inner, text)
        if isinstance(inner, str):  # rate limiter: {"error": "too many requests"}
            return None, _clip(inner), None
        if "code" in data or "message" in data:  # flat
            return _fields(data, text)
        if isinstance(data.get("msg"), str):  # bare
            return None, _clip(data["msg"]), None
        if "detail" in data:  # ASGI frameworks (FastAPI/Starlette)
            return None, _clip(_as_text(data["detail"]) or ""), None
    return None, _clip(text), None


def _fields(obj: dict[str, object], text: str) -> tuple[str | None, str, str | None]:
    code = _as_text(obj.get("code"))
    message = _as_text(obj.get("message")) or code or _clip(text)
    return code, _clip(message), _as_text(obj.get("details"))


def _as_text(value: object) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    return _clip(json.dumps(value, separators=(",", ":"), default=str))


def _clip(text: str) -> str:
    return text if len(text) <= _MAX_TEXT else text[: _MAX_TEXT - 1] + "…"


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "error"




__all__ = [
    "AuthenticationError",
    "InvalidResponseError",
    "NotFoundError",
    "RateLimitedError",
    "RestError",
    "RestTransportError",
    "ServerError",
    "error_for",
    "parse_error_body",
]
