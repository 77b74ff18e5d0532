"""A client's conformance profile (TOML): who it is, the sessions and Logon flags it uses and the
features it has, and so which scenarios are mandatory, optional or N/A for it.

    client = "Acme OMS"
    version = "4.2.0"
    tier = "premier"                       # its API usage tier
    features = ["instructions", "mass_cancel"]

    [[session]]
    type = "KalshiNR"                      # TargetCompID
    dialect = "fixt11"                     # or "fix44" (the simulator's FIX 4.4 listener)
    logon = { use_dollars = false }        # the Logon switches it sends (fixengine.LogonFlags names)

Features a scenario may need: ``instructions`` (it acts on the JSON lines the runner writes to its
standard input), ``state`` (it answers ``{"action": "state"}`` with its book), ``mass_cancel``,
``order_groups``, ``drop_copy``, ``listener``, ``settlement``, ``cancel_on_disconnect``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from conformance.model import Scenario
from fixengine._toml import problems_from_validation, read_toml
from fixengine.config import LogonFlags
from fixengine.errors import ConfigError
from fixengine.kalshi.facts import TIERS, SessionType

FEATURES = frozenset({
    "instructions", "state", "mass_cancel", "order_groups", "drop_copy", "listener", "settlement",
    "cancel_on_disconnect",
})


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProfileSession(_Model):
    type: SessionType
    dialect: Literal["fixt11", "fix44"] = "fixt11"
    logon: LogonFlags = LogonFlags()


class Profile(_Model):
    client: str = Field("unnamed client", min_length=1)
    version: str = "unknown"
    tier: Literal[TIERS] = "premier"  # type: ignore[valid-type]
    features: frozenset[str] = frozenset({"instructions"})
    sessions: list[ProfileSession] = Field(
        default_factory=lambda: [ProfileSession(type=SessionType.NR)], alias="session", min_length=1
    )

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("features")
    @classmethod
    def _known_features(cls, v: frozenset[str]) -> frozenset[str]:
        unknown = sorted(v - FEATURES)
        if unknown:
            raise ValueError(f"unknown {', '.join(unknown)}; known: {', '.join(sorted(FEATURES))}")
        return v

    @property
    def session_types(self) -> frozenset[str]:
        return frozenset(s.type.value for s in self.sessions)

    def session(self, session_type: str) -> ProfileSession | None:
        return next((s for s in self.sessions if s.type.value == session_type), None)

    def applies(self, scenario: Scenario) -> str | None:
        """None when ``scenario`` applies to this client; else why it is N/A."""
        if scenario.sessions and not scenario.sessions & self.session_types:
            return f"the profile uses no {' or '.join(sorted(scenario.sessions))} session"
        missing = sorted(scenario.features - self.features)
        if missing:
            return f"the profile declares no {', '.join(missing)}"
        return None


def load_profile(path: str | Path | None) -> Profile:
    """The profile at ``path`` (None: a KalshiNR client that takes instructions); ``ConfigError``
    naming every problem by its field."""
    if path is None:
        return Profile()
    try:
        return Profile.model_validate(read_toml(Path(path)))
    except ValidationError as exc:
        raise ConfigError(str(path), problems_from_validation(exc, {"sessions": "session"})) from None
