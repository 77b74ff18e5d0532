"""fixengine: a FIX connectivity engine for Kalshi, on the quickfix bindings."""

from fixengine.config import EngineConfig, LogonFlags, RestConfig, SessionConfig, check_config, load_config
from fixengine.fix.dialect import Dialect
from fixengine.engine import Engine, EventStream
from fixengine.errors import ConfigError, FixEngineError, KeyLoadError, LogonRefusedError, SessionUnavailableError
from fixengine.kalshi.facts import SessionType
from fixengine.reconcile.runner import ReconciliationDone, ReconciliationFailed
from fixengine.kalshi.signing import Signer

__all__ = [
    "ConfigError",
    "Dialect",
    "Engine",
    "EngineConfig",
    "EventStream",
    "FixEngineError",
    "KeyLoadError",
    "LogonFlags",
    "LogonRefusedError",
    "ReconciliationDone",
    "ReconciliationFailed",
    "RestConfig",
    "SessionConfig",
    "SessionType",
    "SessionUnavailableError",
    "Signer",
    "check_config",
    "load_config",
]
