"""fixengine: a FIX connectivity engine for Kalshi, on the quickfix bindings."""

from fixengine.config import EngineConfig, LogonFlags, RestConfig, SessionConfig, check_config, load_config
from fixengine.dialect import Dialect
from fixengine.engine import Engine, EventStream
from fixengine.errors import ConfigError, FixEngineError, KeyLoadError, LogonRefused, SessionUnavailable
from fixengine.kalshi import SessionType
from fixengine.reconciliation import ReconciliationDone, ReconciliationFailed
from fixengine.signing import Signer

__all__ = [
    "ConfigError",
    "Dialect",
    "Engine",
    "EngineConfig",
    "EventStream",
    "FixEngineError",
    "KeyLoadError",
    "LogonFlags",
    "LogonRefused",
    "ReconciliationDone",
    "ReconciliationFailed",
    "RestConfig",
    "SessionConfig",
    "SessionType",
    "SessionUnavailable",
    "Signer",
    "check_config",
    "load_config",
]
