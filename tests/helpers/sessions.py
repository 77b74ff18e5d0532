"""Engine and session configs for tests; sessions aimed at the simulator come from
``conformance.harness.session_to``."""

from __future__ import annotations

import socket
import uuid
from pathlib import Path

from fixengine.config import EngineConfig, SessionConfig
from fixengine.fix.dialect import Dialect
from fixengine.kalshi.facts import SessionType
from simulator.config import TlsConfig

TLS_ON = TlsConfig(enabled=True)  # a simulator that speaks TLS with a self-signed certificate


def engine_config(tmp_path: Path, *sessions: SessionConfig) -> EngineConfig:
    """An engine with its own data directory, so several engines in one test do not share a journal."""
    return EngineConfig(data_dir=tmp_path / f"engine-{uuid.uuid4().hex[:6]}", sessions=list(sessions))


def plain_session(key, host: str, port: int, **settings: object) -> SessionConfig:
    """A FIXT.1.1 KalshiNR session over plain TCP to an address that is not the simulator."""
    return SessionConfig(
        name="s1", host=host, port=port, tls=False, dialect=Dialect.FIXT11, session_type=SessionType.NR,
        api_key_id=key.key_id, private_key_file=key.private_key_file, **settings,  # type: ignore[arg-type]
    )


def unused_port() -> int:
    """A loopback port that was free a moment ago and has no listener."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
