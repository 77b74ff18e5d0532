"""Kalshi's REST request signature check (rest-spec §2.1), as one pure function: headers in, the API
key or the reason for a 401 out.

The client signs ``timestamp_ms + METHOD + path`` (path from the host root, no query) with RSA-PSS
and sends it in three ``KALSHI-ACCESS-*`` headers. Checks run in a fixed order: every header
present, the key known, the timestamp within the tolerance, then the signature.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from fixengine.kalshi.signing import rest_prehash, verify
from simulator.fix.logon import Account

KEY_HEADER = "KALSHI-ACCESS-KEY"
TIMESTAMP_HEADER = "KALSHI-ACCESS-TIMESTAMP"
SIGNATURE_HEADER = "KALSHI-ACCESS-SIGNATURE"

# Codes and details Kalshi answers with (rest-spec §2.1, §9); the missing-header codes are ours,
# in the style of Kalshi's ``signature_is_missing``.
_MISSING_CODE = {KEY_HEADER: "api_key_is_missing", TIMESTAMP_HEADER: "timestamp_is_missing",
                 SIGNATURE_HEADER: "signature_is_missing"}


@dataclass(frozen=True, slots=True)
class AuthFailure:
    """Why a request is refused (401): Kalshi's error ``code``, a readable message and ``details``."""

    code: str
    message: str
    details: str


def authenticate(
    headers: Mapping[str, str],
    method: str,
    path: str,
    accounts: Mapping[str, Account],
    now_ms: int,
    tolerance_s: float,
) -> Account | AuthFailure:
    """The account whose key signed this request, or why not. ``headers`` is case-insensitive
    (Starlette's); ``path`` is the path as sent, from the host root, without the query."""
    values = {}
    for name in (KEY_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER):
        value = headers.get(name)
        if not value:
            return AuthFailure(_MISSING_CODE[name], f"the {name} header is missing", "MISSING_HEADER")
        values[name] = value
    account = accounts.get(values[KEY_HEADER])
    if account is None:
        return AuthFailure("authentication_error", f"{KEY_HEADER} {values[KEY_HEADER]!r} is not a known API key",
                           "NOT_FOUND")
    text = values[TIMESTAMP_HEADER]
    if not text.isascii() or not text.isdigit():
        return AuthFailure("authentication_error", f"{TIMESTAMP_HEADER} must be Unix time in milliseconds (got {text!r})",
                           "INVALID_TIMESTAMP")
    timestamp = int(text)
    skew_s = (timestamp - now_ms) / 1000
    if abs(skew_s) > tolerance_s:
        return AuthFailure(
            "header_timestamp_expired",
            f"{TIMESTAMP_HEADER} is {abs(skew_s):.1f}s {'ahead of' if skew_s > 0 else 'behind'} the exchange's clock "
            f"(tolerance {tolerance_s:g}s)",
            "TIMESTAMP_EXPIRED",
        )
    if not verify(account.public_key, rest_prehash(timestamp, method, path), values[SIGNATURE_HEADER]):
        return AuthFailure("authentication_error", f"{SIGNATURE_HEADER} does not match {method.upper()} {path} "
                           f"signed at {timestamp} with key {account.api_key_id}", "INCORRECT_API_KEY_SIGNATURE")
    return account
