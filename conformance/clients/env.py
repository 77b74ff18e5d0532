"""What the runner tells a client through its environment, read in one place:

    KALSHI_FIX_HOST, KALSHI_FIX_PORT     where the simulator's FIX listener is (plain TCP on loopback)
    KALSHI_FIX_TARGET                    TargetCompID (56): KalshiNR, KalshiRT, ...
    KALSHI_FIX_BEGIN_STRING              FIXT.1.1 (Kalshi's dialect) or FIX.4.4
    KALSHI_API_KEY_ID                    SenderCompID (49): the API key id
    KALSHI_PRIVATE_KEY_FILE              its private key, PEM
    KALSHI_REST_URL                      the REST base URL (.../trade-api/v2), for reconciliation
    KALSHI_FIX_HEARTBEAT_INTERVAL        HeartBtInt (108) in seconds; optional, 30 when absent

and, optional, what the runner (``conformance.runner``) also gives:

    KALSHI_FIX_TLS                       1: TLS; 0 or absent: plain TCP (the simulator's loopback)
    KALSHI_FIX_RECONNECT_INTERVAL        the first reconnect delay asked for, seconds (a hint)
    KALSHI_FIX_LOGON_FLAGS               the profile's Logon switches, JSON of ``fixengine.LogonFlags``
    KALSHI_CONFORMANCE_STATE_DIR         a directory of the scenario's own that outlives a restart
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from fixengine.config import LogonFlags
from fixengine.fix.dialect import Dialect

DEFAULT_HEARTBEAT_INTERVAL = 30
_DIALECTS = {d.begin_string: d for d in Dialect}


class ClientEnvError(ValueError):
    """The environment lacks a variable or holds a bad value; the message names it."""


@dataclass(frozen=True)
class ClientEnv:
    host: str
    port: int
    target: str
    begin_string: str
    key_id: str
    private_key_file: Path
    rest_url: str | None
    heartbeat_interval: int
    tls: bool = False
    reconnect_interval: int | None = None
    logon_flags: LogonFlags | None = None  # None: the client's own choice
    state_dir: Path | None = None

    @property
    def dialect(self) -> Dialect:
        return _DIALECTS[self.begin_string]

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] = os.environ) -> "ClientEnv":
        """Every problem at once, each naming its variable."""
        problems: list[str] = []

        def required(name: str) -> str:
            value = environ.get(name, "").strip()
            if not value:
                problems.append(f"{name} is not set")
            return value

        def whole(name: str, text: str, low: int, high: int) -> int:
            if text and not (text.isdigit() and low <= int(text) <= high):
                problems.append(f"{name} must be a whole number from {low} to {high} (got {text!r})")
                return low
            return int(text) if text else low

        host, target, key_id = required("KALSHI_FIX_HOST"), required("KALSHI_FIX_TARGET"), required("KALSHI_API_KEY_ID")
        port = whole("KALSHI_FIX_PORT", required("KALSHI_FIX_PORT"), 1, 65535)
        begin = environ.get("KALSHI_FIX_BEGIN_STRING", "").strip() or "FIXT.1.1"
        if begin not in _DIALECTS:
            problems.append(f"KALSHI_FIX_BEGIN_STRING must be one of {', '.join(_DIALECTS)} (got {begin!r})")
        key_file = required("KALSHI_PRIVATE_KEY_FILE")
        heartbeat_text = environ.get("KALSHI_FIX_HEARTBEAT_INTERVAL", "").strip()
        heartbeat = whole("KALSHI_FIX_HEARTBEAT_INTERVAL", heartbeat_text, 1, 3600) if heartbeat_text \
            else DEFAULT_HEARTBEAT_INTERVAL
        rest_url = environ.get("KALSHI_REST_URL", "").strip().rstrip("/") or None
        tls = environ.get("KALSHI_FIX_TLS", "").strip()
        if tls not in ("", "0", "1"):
            problems.append(f"KALSHI_FIX_TLS must be 0 or 1 (got {tls!r})")
        reconnect_text = environ.get("KALSHI_FIX_RECONNECT_INTERVAL", "").strip()
        reconnect = whole("KALSHI_FIX_RECONNECT_INTERVAL", reconnect_text, 1, 3600) if reconnect_text else None
        flags_text = environ.get("KALSHI_FIX_LOGON_FLAGS", "").strip()
        flags = None
        if flags_text:
            try:
                flags = LogonFlags.model_validate_json(flags_text)
            except ValidationError as exc:
                problems.append(f"KALSHI_FIX_LOGON_FLAGS is not a set of Logon switches: {exc.errors()[0]['msg']}")
        state_dir = environ.get("KALSHI_CONFORMANCE_STATE_DIR", "").strip()
        if problems:
            raise ClientEnvError("; ".join(problems))
        return cls(host, port, target, begin, key_id, Path(key_file), rest_url, heartbeat, tls == "1", reconnect,
                   flags, Path(state_dir) if state_dir else None)
