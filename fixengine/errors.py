"""Typed errors. Every error fixengine raises on purpose derives from ``FixEngineError`` and
carries a message a user can act on: it names the field or file and the reason."""

from __future__ import annotations

from dataclasses import dataclass


class FixEngineError(Exception):
    """Base class of every error fixengine raises on purpose."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a configuration: where (a dotted field path) and why."""

    where: str
    reason: str

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}" if self.where else self.reason


class ConfigError(FixEngineError):
    """A configuration cannot be used. ``problems`` lists every reason, not just the first."""

    def __init__(self, source: str, problems: list[Problem]):
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{source}: {len(problems)} problem(s)\n{lines}")


class KeyLoadError(FixEngineError):
    """A private or public key could not be loaded (missing, unsafe permissions, not a PEM key)."""


class LogonRefusedError(FixEngineError):
    """The counterparty refused our Logon; ``reason`` is its Text (58) when it gave one.
    ``permanent``: the engine has stopped trying (otherwise it keeps retrying with backoff)."""

    def __init__(self, session: str, reason: str, permanent: bool = True):
        self.session = session
        self.reason = reason
        self.permanent = permanent
        retrying = "" if permanent else " (still retrying)"
        super().__init__(f"session {session}: logon refused: {reason}{retrying}")


class SessionUnavailableError(FixEngineError):
    """A session did not reach the state we waited for (logged on, logged out) in time."""
