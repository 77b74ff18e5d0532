"""Simulator configuration: listeners, TLS, logon policy and the account registry, from TOML."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import time
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from fixengine._toml import problems_from_validation, read_toml
from fixengine.fix.dialect import Dialect
from fixengine.errors import ConfigError, KeyLoadError, Problem
from fixengine.kalshi.facts import (
    DEFAULT_REQUEST_COST,
    FIX_TIERS,
    PORTS,
    SENDING_TIME_TOLERANCE_S,
    TIERS,
    WRITE_RATE,
    SessionType,
    write_capacity,
)
from fixengine.kalshi.maintenance import WEEKDAYS, WeeklySchedule
from fixengine.kalshi.signing import load_public_key
from simulator.exchange.matching import MarketConfig, MarketStatus

FIX44_LISTENER = "fix44"
HOUSE_ACCOUNT = "house"  # the simulator's own account for seed orders (it has no FIX session)
DEFAULT_FIX44_PORT = 8240


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)


class AccountConfig(_Model):
    """An API key the simulator knows: its id, its public key and the account's API tier."""

    api_key_id: Annotated[str, Field(min_length=1, pattern=r"^[^\x00-\x20|=]+$")]
    public_key_file: Path | None = None
    public_key_pem: str | None = None
    tier: str = "premier"
    balance: Decimal = Field(Decimal("10000"), ge=0, description="starting cash, dollars")
    account: str | None = Field(
        None, description="api_key_id of the [[account]] whose account this key also trades for (a second key, as "
                          "Kalshi requires for a drop-copy or listener session beside a trading one: one connection "
                          "per key); absent: an account of its own"
    )

    @property
    def account_id(self) -> str:
        """The exchange account this key trades for."""
        return self.account or self.api_key_id

    @field_validator("tier")
    @classmethod
    def _known_tier(cls, v: str) -> str:
        if v not in TIERS:
            raise ValueError(f"unknown tier {v!r}; one of {', '.join(TIERS)}")
        return v

    @model_validator(mode="after")
    def _one_key(self) -> "AccountConfig":
        if (self.public_key_file is None) == (self.public_key_pem is None):
            raise ValueError("set exactly one of public_key_file or public_key_pem")
        return self

    def public_key(self) -> rsa.RSAPublicKey:
        if self.public_key_pem is not None:
            return load_public_key(self.public_key_pem.encode(), f"account {self.api_key_id} public_key_pem")
        assert self.public_key_file is not None
        try:
            data = self.public_key_file.read_bytes()
        except OSError as exc:
            raise KeyLoadError(f"public key file {self.public_key_file} cannot be read: {exc.strerror}") from None
        return load_public_key(data, f"public key file {self.public_key_file}")


class MarketEntry(_Model):
    """A market the simulator trades: its ticker, state and price grid (dollars)."""

    ticker: Annotated[str, Field(min_length=1)]
    status: MarketStatus = MarketStatus.OPEN
    tick: Decimal = Decimal("0.01")

    @model_validator(mode="after")
    def _grid(self) -> "MarketEntry":
        self.market()  # the tick must divide $1
        return self

    def market(self) -> MarketConfig:
        return MarketConfig(self.ticker, self.status, self.tick)


class SeedOrder(_Model):
    """Resting liquidity placed when the simulator starts (GTC), so a lone client can trade."""

    ticker: Annotated[str, Field(min_length=1)]
    side: Literal["buy_yes", "sell_yes"]
    price: Decimal = Field(description="YES price, dollars")
    quantity: Decimal = Field(gt=0)
    account: str = Field(HOUSE_ACCOUNT, description="an [[account]] api_key_id, or the house account")


class TlsConfig(_Model):
    enabled: bool = False
    cert_file: Path | None = Field(None, description="PEM certificate; absent: self-signed at start-up")
    key_file: Path | None = None

    @model_validator(mode="after")
    def _pair(self) -> "TlsConfig":
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("set both cert_file and key_file, or neither (a self-signed pair is made)")
        return self


class MaintenanceConfig(_Model):
    """Kalshi's weekly maintenance (spec §7.5): a trading pause; sessions are logged out as it
    begins and Logons refused until it ends. Off by default, so that a test run on a Thursday
    morning in New York is not paused; the window is Kalshi's unless changed."""

    enabled: bool = False
    weekday: Literal[WEEKDAYS] = "thursday"  # type: ignore[valid-type]
    start: time = time(3, 0)
    end: time = time(5, 0)
    timezone: str = "America/New_York"

    @model_validator(mode="after")
    def _window(self) -> "MaintenanceConfig":
        self.schedule()  # start before end, a known time zone
        return self

    def schedule(self) -> WeeklySchedule:
        return WeeklySchedule(WEEKDAYS.index(self.weekday), self.start, self.end, self.timezone)


class TokenBudget(_Model):
    """A token bucket: ``capacity`` tokens, refilled at ``refill_rate`` tokens a second."""

    refill_rate: Annotated[float, Field(gt=0)]
    capacity: Annotated[float, Field(gt=0)]


class ReadBudget(TokenBudget):
    """A REST read token bucket. A request costs 10 tokens (a single order 2), as on Kalshi
    (rest-spec §10.1)."""


class WriteBudget(TokenBudget):
    """A FIX Write token bucket (per API key and shard). Every order-entry request costs 10 tokens,
    Kalshi's default cost (spec §8)."""

    @model_validator(mode="after")
    def _holds_a_request(self) -> "WriteBudget":
        if self.capacity < DEFAULT_REQUEST_COST:
            raise ValueError(f"capacity {self.capacity:g} is below one request's {DEFAULT_REQUEST_COST} tokens: "
                             "no order could ever pass")
        return self


# Kalshi's read budgets per API usage tier (rest-spec §10.1): Basic and Advanced buckets hold 2 s of
# refill, the tiers above 1 s.
READ_BUDGETS: dict[str, ReadBudget] = {
    "basic": ReadBudget(refill_rate=200, capacity=400),
    "advanced": ReadBudget(refill_rate=300, capacity=600),
    "expert": ReadBudget(refill_rate=600, capacity=600),
    "premier": ReadBudget(refill_rate=1000, capacity=1000),
    "paragon": ReadBudget(refill_rate=2000, capacity=2000),
    "prime": ReadBudget(refill_rate=4000, capacity=4000),
    "prestige": ReadBudget(refill_rate=10000, capacity=10000),
}
assert set(READ_BUDGETS) == set(TIERS)
# Kalshi's write budgets per tier (spec §8): Basic's bucket holds 1 s of refill, the tiers above 2 s.
WRITE_BUDGETS: dict[str, WriteBudget] = {
    tier: WriteBudget(refill_rate=rate, capacity=write_capacity(tier)) for tier, rate in WRITE_RATE.items()
}


def _default_listeners() -> dict[str, int]:
    ports = {t.value: p for t, p in PORTS.items()}
    ports[FIX44_LISTENER] = DEFAULT_FIX44_PORT
    return ports


class SimulatorConfig(_Model):
    host: str = Field("127.0.0.1", description="address the listeners bind to")
    data_dir: Path = Path("var/simulator")
    listeners: dict[str, Annotated[int, Field(ge=0, le=65535)]] = Field(
        default_factory=_default_listeners,
        description="session type (or 'fix44') -> port; 0 picks a free port",
    )
    tls: TlsConfig = TlsConfig()
    sending_time_tolerance: Annotated[float, Field(gt=0)] = SENDING_TIME_TOLERANCE_S
    min_heartbeat_interval: Annotated[int, Field(ge=1)] = Field(
        1, description="smallest HeartBtInt accepted; Kalshi's live gateway wants more than 3"
    )
    fix_tiers: tuple[str, ...] = FIX_TIERS
    clock_offset: float = Field(0.0, description="seconds added to the simulator's clock (skew tests)")
    logon_timeout: Annotated[float, Field(gt=0)] = 10.0
    control_port: Annotated[int, Field(ge=0, le=65535)] | None = Field(
        None, description="fault-injection control port on 127.0.0.1 (JSON lines); 0 picks a free port, absent: off"
    )
    rest_port: Annotated[int, Field(ge=0, le=65535)] | None = Field(
        None, description="REST API port on 127.0.0.1 (Kalshi Trade API v2 portfolio subset); 0 picks a free port, absent: off"
    )
    rest_lag: Annotated[float, Field(ge=0)] = Field(
        0.0, description="seconds a REST read may lag the exchange (Kalshi's read-after-write staleness); 0: always fresh"
    )
    rest_read_budgets: dict[str, ReadBudget] = Field(
        default_factory=dict, description="tier -> REST read token bucket; tiers not listed get Kalshi's budget"
    )
    # Off unless asked for: tests and benchmarks drive one premier key at thousands of orders a
    # second, far past its 100 a second. The demo turns it on; config/simulator.toml says how.
    enforce_write_budget: bool = Field(
        False, description="answer FIX order entry beyond the key's Write budget (its tier's token bucket; mass "
                           "cancel at most once a second) with 35=j 380=8 'Rate limit exceeded', as Kalshi does; "
                           "off: unlimited"
    )
    write_budgets: dict[str, WriteBudget] = Field(
        default_factory=dict, description="tier -> FIX Write token bucket; tiers not listed get Kalshi's budget"
    )
    message_log: bool = True
    maintenance: MaintenanceConfig = Field(MaintenanceConfig(), description="Kalshi's weekly maintenance window")
    accounts: list[AccountConfig] = Field(default_factory=list, alias="account")
    markets: list[MarketEntry] = Field(default_factory=list, alias="market")
    seed_orders: list[SeedOrder] = Field(default_factory=list, alias="seed_order")
    house_balance: Decimal = Field(Decimal("1000000"), ge=0, description="cash of the house account")
    drop_copy_request_interval: Annotated[float, Field(ge=0)] = Field(
        1.0, description="seconds a KalshiDC session must wait between EventResendRequests (35=U1); sooner is "
                         "refused with EventResendReject reason 1 (Kalshi publishes no figure)"
    )
    settlement_page_size: Annotated[int, Field(ge=1)] = Field(
        100, description="party entries a settlement report (35=UMS) carries; more take further pages (893=N)"
    )

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("listeners")
    @classmethod
    def _known_listeners(cls, v: dict[str, int]) -> dict[str, int]:
        known = {t.value for t in SessionType} | {FIX44_LISTENER}
        unknown = sorted(set(v) - known)
        if unknown:
            raise ValueError(f"unknown listener {', '.join(unknown)}; use {', '.join(sorted(known))}")
        return v

    @field_validator("rest_read_budgets", "write_budgets")
    @classmethod
    def _known_budget_tiers(cls, v: dict[str, TokenBudget]) -> dict[str, TokenBudget]:
        unknown = sorted(set(v) - set(TIERS))
        if unknown:
            raise ValueError(f"unknown tier {', '.join(unknown)}; one of {', '.join(TIERS)}")
        return v

    def read_budget(self, tier: str) -> ReadBudget:
        """The REST read bucket of an account of ``tier``."""
        return self.rest_read_budgets.get(tier, READ_BUDGETS[tier])

    def write_budget(self, tier: str) -> WriteBudget:
        """The FIX Write bucket of an account of ``tier`` (used when ``enforce_write_budget``)."""
        return self.write_budgets.get(tier, WRITE_BUDGETS[tier])

    @field_validator("fix_tiers")
    @classmethod
    def _known_tiers(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [t for t in v if t not in TIERS]
        if unknown:
            raise ValueError(f"unknown tier {', '.join(unknown)}; one of {', '.join(TIERS)}")
        return v

    @model_validator(mode="after")
    def _unique_accounts(self) -> "SimulatorConfig":
        ids = [a.api_key_id for a in self.accounts]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"api_key_id {', '.join(dup)} is listed more than once")
        owners = {a.api_key_id: a for a in self.accounts}
        for a in self.accounts:
            if a.account is None:
                continue
            owner = owners.get(a.account)
            if owner is None or owner.account is not None:
                raise ValueError(f"account {a.api_key_id}: account {a.account!r} must be the api_key_id of another "
                                 "[[account]] that has an account of its own")
            if "balance" in a.model_fields_set:
                raise ValueError(f"account {a.api_key_id}: balance belongs to the account of {a.account}; set it there")
        return self

    def listener_specs(self) -> list["ListenerSpec"]:
        specs = []
        for name, port in self.listeners.items():
            if name == FIX44_LISTENER:
                specs.append(ListenerSpec(name, Dialect.FIX44, frozenset(SessionType), port))
            else:
                specs.append(ListenerSpec(name, Dialect.FIXT11, frozenset({SessionType(name)}), port))
        return specs


@dataclass(frozen=True)
class ListenerSpec:
    """One listening port: which dialect it speaks and which TargetCompIDs it serves."""

    name: str
    dialect: Dialect
    session_types: frozenset[SessionType]
    port: int


def load_simulator_config(path: str | Path, overrides: dict[str, Any] | None = None) -> SimulatorConfig:
    """Load and validate a simulator config; raise ``ConfigError`` with every problem found."""
    path = Path(path)
    base = path.resolve().parent
    raw = read_toml(path)
    raw.update(overrides or {})
    raw["data_dir"] = str(base / Path(raw.get("data_dir", "var/simulator")).expanduser())
    for account in raw.get("account", []) if isinstance(raw.get("account"), list) else []:
        if isinstance(account, dict) and isinstance(account.get("public_key_file"), str):
            account["public_key_file"] = str(base / Path(account["public_key_file"]).expanduser())
    if isinstance(raw.get("tls"), dict):
        for key in ("cert_file", "key_file"):
            if isinstance(raw["tls"].get(key), str):
                raw["tls"][key] = str(base / Path(raw["tls"][key]).expanduser())
    try:
        config = SimulatorConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(str(path), problems_from_validation(exc, {"accounts": "account", "markets": "market", "seed_orders": "seed_order"})) from None
    problems = []
    for i, account in enumerate(config.accounts):
        try:
            account.public_key()
        except KeyLoadError as exc:
            problems.append(Problem(f"account[{i}]", str(exc)))
    if problems:
        raise ConfigError(str(path), problems)
    return config


def check_embedded_config(path: Path) -> list[Problem]:
    """The problems of an engine config's ``[embedded_simulator]`` file, named under that section
    (what ``fixengine check-config`` passes to ``check_config``)."""
    try:
        load_simulator_config(path)
    except ConfigError as exc:
        return [Problem(f"embedded_simulator.config ({exc.source}) {p.where}".rstrip(), p.reason) for p in exc.problems]
    return []
