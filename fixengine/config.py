"""Engine configuration: pydantic models loaded from TOML, with Kalshi's session rules enforced.

A configuration either loads completely or raises ``ConfigError`` listing every problem, each naming
the field (``session[0].logon.listener``) and the reason. Nothing is sent on a config that fails here.
"""

from __future__ import annotations

import ipaddress
import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from fixengine._toml import problems_from_validation, read_toml
from fixengine.errors import ConfigError, KeyLoadError, Problem
from fixengine.fix.dialect import Dialect
from fixengine.fix.tags import (
    MSG_NEW_ORDER_SINGLE,
    MSG_ORDER_CANCEL_REPLACE_REQUEST,
    MSG_ORDER_CANCEL_REQUEST,
    MSG_ORDER_MASS_CANCEL_REQUEST,
    MSG_ORDER_MASS_STATUS_REQUEST,
    MSG_ORDER_STATUS_REQUEST,
    ALWAYS_EMIT_NEW_BEFORE_TRADE,
    CANCEL_ORDERS_ON_DISCONNECT,
    ENABLE_IOC_CANCEL_REPORT,
    LISTENER_SESSION,
    MESSAGE_RETENTION_PERIOD,
    PRESERVE_ORIGINAL_ORDER_QTY,
    RECEIVE_SETTLEMENT_REPORTS,
    SKIP_PENDING_EXEC_REPORTS,
    SPLIT_COLLATERAL_RETURN,
    USE_DOLLARS,
    USE_EXPIRED_ORD_STATUS,
)
from fixengine.kalshi.facts import (
    LISTENER_ALLOWED,
    ORDER_ENTRY,
    PORTS,
    RESET_REQUIRED,
    RETENTION_ALLOWED,
    SETTLEMENT_REPORTS_ALLOWED,
    TIERS,
    SessionType,
)


_KALSHI_HOST = re.compile(r"(^|\.)kalshi\.(com|co)$", re.IGNORECASE)


def is_kalshi_host(host: str) -> bool:
    return bool(_KALSHI_HOST.search(host.rstrip(".")))


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LogonFlags(_Model):
    """Kalshi's Logon switches (spec §4.2). ``False``/``None`` means the flag is not sent."""

    reset_seq_num: bool = Field(True, description="141 ResetSeqNumFlag")
    cancel_orders_on_disconnect: bool = Field(False, description="8013 CancelOrdersOnDisconnect")
    listener: bool = Field(False, description="20126 ListenerSession (read-only)")
    receive_settlement_reports: bool = Field(False, description="20127 ReceiveSettlementReports")
    message_retention_hours: Annotated[int, Field(ge=1, le=72)] | None = Field(
        None, description="20200 MessageRetentionPeriod, hours"
    )
    use_dollars: bool = Field(False, description="21005 UseDollars: prices in dollars, not cents")
    skip_pending_exec_reports: bool = Field(False, description="21011 SkipPendingExecReports")
    enable_ioc_cancel_report: bool = Field(False, description="21007 EnableIocCancelReport")
    preserve_original_order_qty: bool = Field(False, description="21008 PreserveOriginalOrderQty")
    use_expired_ord_status: bool = Field(False, description="21012 UseExpiredOrdStatus")
    always_emit_new_before_trade: bool = Field(False, description="21026 AlwaysEmitNewBeforeTrade")
    split_collateral_return: bool = Field(False, description="21027 SplitCollateralReturn")

    def wire_fields(self) -> list[tuple[int, str]]:
        """The Kalshi flag fields to add to the Logon (141 is left to QuickFIX's ResetOnLogon)."""
        booleans = [
            (CANCEL_ORDERS_ON_DISCONNECT, self.cancel_orders_on_disconnect),
            (LISTENER_SESSION, self.listener),
            (RECEIVE_SETTLEMENT_REPORTS, self.receive_settlement_reports),
            (USE_DOLLARS, self.use_dollars),
            (SKIP_PENDING_EXEC_REPORTS, self.skip_pending_exec_reports),
            (ENABLE_IOC_CANCEL_REPORT, self.enable_ioc_cancel_report),
            (PRESERVE_ORIGINAL_ORDER_QTY, self.preserve_original_order_qty),
            (USE_EXPIRED_ORD_STATUS, self.use_expired_ord_status),
            (ALWAYS_EMIT_NEW_BEFORE_TRADE, self.always_emit_new_before_trade),
            (SPLIT_COLLATERAL_RETURN, self.split_collateral_return),
        ]
        fields = [(tag, "Y") for tag, on in booleans if on]
        if self.message_retention_hours is not None:
            fields.append((MESSAGE_RETENTION_PERIOD, str(self.message_retention_hours)))
        return fields


class SessionConfig(_Model):
    """One FIX session to Kalshi (or to the simulator)."""

    name: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")]
    host: Annotated[str, Field(min_length=1)]
    port: Annotated[int, Field(ge=1, le=65535)]
    tls: bool = True
    tls_ca_file: Path | None = Field(
        None, description="CA bundle to verify the server with; default: the system bundle"
    )
    dialect: Dialect = Dialect.FIXT11
    session_type: SessionType
    api_key_id: Annotated[str, Field(min_length=1, pattern=r"^[^\x00-\x20|=]+$")]
    private_key_file: Path | None = None
    private_key_env: str | None = None
    heartbeat_interval: Annotated[int, Field(ge=1, le=3600)] = 30
    reconnect_interval: Annotated[int, Field(ge=1, le=3600)] = Field(
        5, description="seconds before the first reconnect attempt; doubled (with jitter) each failed attempt"
    )
    reconnect_max_interval: Annotated[int, Field(ge=1, le=3600)] = Field(
        60, description="the longest wait between reconnect attempts"
    )
    logon: LogonFlags = LogonFlags()
    account: Annotated[str, Field(min_length=1)] | None = Field(
        None, description="the Kalshi account this key trades for; sessions naming the same account share its "
                          "book (Kalshi allows one connection per key, so a drop-copy or listener session beside a "
                          "trading one uses a second key of the account); default: the api_key_id"
    )

    @property
    def account_id(self) -> str:
        """The account the session's orders, reports and positions belong to in the book."""
        return self.account or self.api_key_id

    @property
    def kalshi_host(self) -> bool:
        return is_kalshi_host(self.host)

    @property
    def target_comp_id(self) -> str:
        return self.session_type.value

    @property
    def sender_comp_id(self) -> str:
        return self.api_key_id

    @model_validator(mode="after")
    def _kalshi_rules(self) -> "SessionConfig":
        problems = session_rule_problems(self)
        if problems:
            raise ValueError("; ".join(problems))
        return self


def session_rule_problems(s: SessionConfig) -> list[str]:
    """Kalshi's Logon rules (spec §1, §4, §7.4, §14) as readable sentences naming the field."""
    out: list[str] = []
    t = s.session_type
    flags = s.logon
    if (s.private_key_file is None) == (s.private_key_env is None):
        out.append("set exactly one of private_key_file or private_key_env")
    if s.reconnect_max_interval < s.reconnect_interval:
        out.append("reconnect_max_interval must be at least reconnect_interval")
    if t in RESET_REQUIRED and not flags.reset_seq_num:
        out.append(f"logon.reset_seq_num must be true on {t.value}: it has no retransmission (141=Y required)")
    if flags.listener and t not in LISTENER_ALLOWED:
        out.append(f"logon.listener (20126) is only allowed on KalshiNR and KalshiRT, not {t.value}")
    if flags.listener and not flags.skip_pending_exec_reports:
        out.append("logon.listener (20126) requires logon.skip_pending_exec_reports (21011) = true")
    if flags.listener and flags.cancel_orders_on_disconnect:
        out.append("logon.cancel_orders_on_disconnect (8013) is not allowed on a listener session (20126)")
    if flags.cancel_orders_on_disconnect and t not in ORDER_ENTRY:
        out.append(f"logon.cancel_orders_on_disconnect (8013) applies to order entry (KalshiNR, KalshiRT), not {t.value}")
    if flags.receive_settlement_reports and t not in SETTLEMENT_REPORTS_ALLOWED:
        out.append(f"logon.receive_settlement_reports (20127) is not available on {t.value}")
    if flags.message_retention_hours is not None and t not in RETENTION_ALLOWED:
        out.append(
            f"logon.message_retention_hours (20200) applies to retransmission sessions (KalshiRT, KalshiPT), not {t.value}"
        )
    if s.kalshi_host:
        if not s.tls:
            out.append(f"tls must be true for {s.host}: Kalshi accepts only TLS 1.2+")
        if s.dialect is not Dialect.FIXT11:
            out.append(f"dialect must be fixt11 for {s.host}: Kalshi's gateway speaks FIXT.1.1/FIX50SP2 only")
        if s.heartbeat_interval <= 3:
            out.append(f"heartbeat_interval must be greater than 3 seconds for {s.host} (got {s.heartbeat_interval})")
        if s.port != PORTS[t]:
            out.append(
                f"port {s.port} does not serve {t.value} on Kalshi; {t.value} is on port {PORTS[t]}"
            )
        try:
            uuid.UUID(s.api_key_id)
        except ValueError:
            out.append(f"api_key_id must be a Kalshi API key id (a UUID), got {s.api_key_id!r}")
    return out


class EmbeddedSimulatorConfig(_Model):
    """Start the local simulator inside the engine process (for trying things out and for tests)."""

    config: Path = Field(description="the simulator's own TOML config")
    generate_keys: bool = Field(
        True, description="create a missing session key and register it with the simulator"
    )


class RestConfig(_Model):
    """Kalshi's REST API, where the engine proves its book (``fixengine.reconciliation``). Each
    order-entry session's account is reconciled with that session's own API key."""

    base_url: Annotated[str, Field(pattern=r"^https?://[^\s]+/trade-api/v2$")] = Field(
        "https://external-api.kalshi.com/trade-api/v2",
        description="production; demo https://external-api.demo.kalshi.co/trade-api/v2; the simulator http://127.0.0.1:PORT/trade-api/v2",
    )
    tier: str = Field("premier", description="API usage tier: sizes the client's token bucket")
    reconcile_interval: Annotated[float, Field(ge=0)] = Field(
        300.0, description="seconds between periodic reconciliations; 0: only after each logon and on demand"
    )
    staleness_timeout: Annotated[float, Field(gt=0)] = Field(
        15.0, description="how long to re-read REST until its data is newer than the last FIX report"
    )
    timeout: Annotated[float, Field(gt=0)] = Field(10.0, description="per HTTP request, seconds")

    @model_validator(mode="after")
    def _known_tier(self) -> "RestConfig":
        if self.tier not in TIERS:
            raise ValueError(f"tier {self.tier!r} is not one of {', '.join(TIERS)}")
        return self


# --- the OMS gateway's session map (``fixengine serve``, issue 12) ------------------------------

# Subaccount number in 79 AllocAccount: 0 is the primary account; 0-63 in Kalshi's current docs
# (0-32 before 2026H2), spec §10.7 and the NewOrderSingle table.
MAX_SUBACCOUNT = 63
# What an OMS may send on order entry (FIX 4.4 MsgTypes): NewOrderSingle, OrderCancelRequest,
# OrderCancelReplaceRequest, OrderMassCancelRequest, OrderStatusRequest, OrderMassStatusRequest.
ORDER_ENTRY_MSG_TYPES: tuple[str, ...] = (
    MSG_NEW_ORDER_SINGLE, MSG_ORDER_CANCEL_REQUEST, MSG_ORDER_CANCEL_REPLACE_REQUEST,
    MSG_ORDER_MASS_CANCEL_REQUEST, MSG_ORDER_STATUS_REQUEST, MSG_ORDER_MASS_STATUS_REQUEST,
)
_COMP_ID = r"^[!-~]+$"  # printable ASCII, no spaces (QuickFIX writes it into file names and settings)


class GatewayConfig(_Model):
    """The OMS-facing FIX 4.4 acceptor of ``fixengine serve``. Its listening ports are per client
    (``[[oms_client]]``); clients that share a port share one acceptor.

    ``[gateway]`` and ``[[oms_client]]`` come together: a gateway without clients would listen on no
    port, and clients without a gateway would be silently ignored; either is reported as a problem."""

    host: Annotated[str, Field(min_length=1)] = Field(
        "127.0.0.1", description="address the OMS acceptors bind to; 0.0.0.0 for every interface"
    )
    data_dir: Path | None = Field(
        None, description="the gateway's own stores (OMS-side sessions, ClOrdID map); default data_dir/gateway"
    )
    shutdown_grace: Annotated[float, Field(ge=0, allow_inf_nan=False)] = Field(
        10.0, description="seconds a stop waits for orders in flight to be answered by Kalshi (a second SIGTERM: none)"
    )
    tier: str = Field(
        "premier", description="API usage tier of the Kalshi keys the gateway trades on: sets each Kalshi "
                               "session's write budget, shared between its OMS clients (spec §8)"
    )
    request_cost: Annotated[int, Field(ge=1)] = Field(
        10, description="write tokens one order, cancel or amend costs (Kalshi's default cost, spec §8)"
    )
    throttle_reject_reason: Literal[8, 0] = Field(
        8, description="BusinessRejectReason (380) of a rate refusal: 8, throttle limit exceeded (as Kalshi; from FIX 5.0, "
                       "read by most FIX 4.4 engines), or 0, Other (for an OMS whose FIX 4.4 dictionary refuses 8)"
    )
    failed_logon_limit: Annotated[int, Field(ge=1)] = Field(
        5, description="refused Logons from one address before it is locked out"
    )
    lockout: Annotated[float, Field(gt=0, allow_inf_nan=False)] = Field(
        300.0, description="seconds an address stays locked out after failed_logon_limit refused Logons "
                           "(counted within the last lockout seconds)"
    )
    # --- TLS on the OMS ports (absent: plain TCP) ---
    tls_cert_file: Path | None = Field(
        None, description="PEM certificate (chain) the OMS ports present; set (with tls_key_file): OMSs connect over TLS 1.2+"
    )
    tls_key_file: Path | None = Field(None, description="its private key, PEM (readable by its owner only)")
    tls_client_ca_file: Path | None = Field(
        None, description="PEM CA bundle: every OMS must present a client certificate issued by it; absent: none asked"
    )

    @field_validator("tier")
    @classmethod
    def _known_tier(cls, value: str) -> str:
        if value not in TIERS:
            raise ValueError(f"tier {value!r} is not one of {', '.join(TIERS)}")
        return value

    @model_validator(mode="after")
    def _tls_pairs(self) -> GatewayConfig:
        problems = []
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            missing = "tls_key_file" if self.tls_key_file is None else "tls_cert_file"
            problems.append(Problem(missing, "tls_cert_file and tls_key_file go together"))
        if self.tls_client_ca_file is not None and self.tls_cert_file is None:
            problems.append(Problem("tls_client_ca_file", "client certificates need TLS: set tls_cert_file and tls_key_file"))
        if problems:
            raise _as_validation_error(type(self).__name__, problems)
        return self


class AdminConfig(_Model):
    """The service's HTTP endpoint (``fixengine serve``): health, status, the status page, metrics, and
    admin actions. Reading is open to whoever reaches it (bind it to loopback or a private network);
    every state change is a POST with the bearer token from ``token_file``."""

    host: Annotated[str, Field(min_length=1)] = Field("127.0.0.1", description="address the admin server binds to")
    port: Annotated[int, Field(ge=0, le=65535)] = Field(8280, description="its port; 0: any free port")
    token_file: Path | None = Field(
        None, description="file holding the bearer token for admin actions (readable by its owner only); "
                          "absent: every admin action is refused (401)"
    )


class DropCopyConfig(_Model):
    """Whose execution reports a drop-copy client receives copies of."""

    clients: list[str] = Field(default_factory=list, description="names of order-entry [[oms_client]]s")
    subaccounts: list[Annotated[int, Field(ge=0, le=MAX_SUBACCOUNT)]] = Field(
        default_factory=list, description="every order-entry client trading on one of these subaccounts (79)"
    )

    @model_validator(mode="after")
    def _something(self) -> "DropCopyConfig":
        if not self.clients and not self.subaccounts:
            raise ValueError("name at least one client or subaccount to copy")
        return self


class OmsClientConfig(_Model):
    """One OMS allowed to trade through the gateway: who it is, where it connects, the Kalshi session
    that carries its orders and what it may do.

    CompIDs are as the OMS writes them: ``sender_comp_id`` is the OMS's SenderCompID (49) and
    ``target_comp_id`` is the TargetCompID (56) it addresses the gateway with. A 35=q OrderMassCancel
    needs both ``"q"`` in ``message_types`` and ``may_mass_cancel = true`` (off by default: one
    message cancels everything the client has)."""

    name: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")]
    sender_comp_id: Annotated[str, Field(min_length=1, max_length=64, pattern=_COMP_ID)] = Field(
        description="the OMS's SenderCompID (49)"
    )
    target_comp_id: Annotated[str, Field(min_length=1, max_length=64, pattern=_COMP_ID)] = Field(
        description="the TargetCompID (56) the OMS addresses the gateway with"
    )
    port: Annotated[int, Field(ge=1, le=65535)] = Field(description="the gateway port this OMS connects to")
    session: Annotated[str, Field(min_length=1)] | None = Field(
        None, description="name of the [[session]] (KalshiNR or KalshiRT, not a listener) that carries its orders; "
                          "required except on a drop-copy client"
    )
    subaccount: Annotated[int, Field(ge=0, le=MAX_SUBACCOUNT)] | None = Field(
        None, description="79 AllocAccount on its orders: Kalshi subaccount number, 0 = primary; absent: not sent"
    )
    message_types: Annotated[list[str], Field(min_length=1)] = Field(
        default_factory=lambda: list(ORDER_ENTRY_MSG_TYPES),
        description="FIX 4.4 MsgTypes (35) the client may send; others are rejected",
    )
    ticker_pattern: str = Field(
        ".*", description="regular expression a ticker (55) must match in full, e.g. '^KXHIGHNY-'"
    )
    max_quantity: Annotated[Decimal, Field(gt=0, allow_inf_nan=False)] | None = Field(
        None, description="largest OrderQty (38) of one order, in contracts; required except on a drop-copy client"
    )
    max_notional: Annotated[Decimal, Field(gt=0, allow_inf_nan=False)] | None = Field(
        None, description="largest OrderQty x Price of one order, in dollars; required except on a drop-copy client"
    )
    may_mass_cancel: bool = Field(False, description="whether 35=q OrderMassCancelRequest is allowed")
    reset_on_logon: bool = Field(
        False, description="start both sequences from 1 at every logon (the OMS's choice; off keeps them for resends)"
    )
    cancel_on_disconnect: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = Field(
        None, description="seconds after the client's session ends (or the gateway starts without it) before its "
                          "own live orders are cancelled; absent: never. Other clients' orders are untouched"
    )
    # --- its share of the Kalshi session's write budget ([gateway] tier) ---
    rate_share: Annotated[Decimal, Field(gt=0, allow_inf_nan=False)] = Field(
        Decimal(1), description="weight of this client in its Kalshi session's write budget (shares are relative)"
    )
    burst: Annotated[int, Field(ge=1)] | None = Field(
        None, description="requests the client may send at once above its share's rate; default: one second of its share"
    )
    when_throttled: Literal["refuse", "queue"] = Field(
        "refuse", description="over its share: refuse at once (35=j 380=8, naming the quota) or queue for up to queue_timeout"
    )
    queue_timeout: Annotated[float, Field(gt=0, allow_inf_nan=False)] = Field(
        1.0, description="longest a queued request waits for budget before it is refused (when_throttled = \"queue\")"
    )
    # --- who may log on as this client ---
    password_file: Path | None = Field(
        None, description="file holding the password the OMS sends in 554 Password on its Logon (readable by "
                          "its owner only); absent: no password asked"
    )
    allowed_addresses: list[str] = Field(
        default_factory=list, description="IP addresses or networks (CIDR) the client may connect from; empty: any"
    )
    slow_consumer_timeout: Annotated[float, Field(gt=0, allow_inf_nan=False)] = Field(
        10.0, description="seconds the client may leave the gateway's reports unread before it is disconnected"
    )
    drop_copy: DropCopyConfig | None = Field(
        None, description="a read-only drop-copy session: receives copies of these clients' execution reports, "
                          "sends no orders"
    )

    @field_validator("allowed_addresses")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for address in value:
            try:
                ipaddress.ip_network(address, strict=False)
            except ValueError:
                raise ValueError(f"{address!r} is not an IP address or network") from None
        return value

    @model_validator(mode="after")
    def _order_entry_needs(self) -> OmsClientConfig:
        if self.drop_copy is None:
            missing = [f for f in ("session", "max_quantity", "max_notional") if getattr(self, f) is None]
            if missing:
                raise ValueError(f"{', '.join(missing)} required on an order-entry client (only a drop_copy client has none)")
        return self

    @field_validator("message_types")
    @classmethod
    def _known_message_types(cls, value: list[str]) -> list[str]:
        unknown = [t for t in value if t not in ORDER_ENTRY_MSG_TYPES]
        if unknown:
            raise ValueError(
                f"{', '.join(map(repr, unknown))} not supported; the gateway takes {', '.join(ORDER_ENTRY_MSG_TYPES)}"
            )
        repeated = sorted({t for t in value if value.count(t) > 1})
        if repeated:
            raise ValueError(f"{', '.join(map(repr, repeated))} listed more than once")
        return value

    @field_validator("ticker_pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from None
        return value

    @model_validator(mode="after")
    def _mass_cancel_needs_q(self) -> OmsClientConfig:
        if self.may_mass_cancel and "q" not in self.message_types:
            raise ValueError("may_mass_cancel = true needs \"q\" (OrderMassCancelRequest) in message_types")
        return self

    def allows_ticker(self, ticker: str) -> bool:
        return re.fullmatch(self.ticker_pattern, ticker) is not None


def gateway_map_problems(
    sessions: Iterable[tuple[str, SessionType | None, bool]],
    clients: Iterable[Mapping[str, Any]],
    gateway: bool,
) -> list[Problem]:
    """The session map's cross-checks, as ``Problem``s naming the field. ``sessions`` are (name,
    type or None if unknown, is a listener); ``clients`` carry name, sender_comp_id, target_comp_id,
    port and session where readable (a missing or malformed value is skipped: it is reported elsewhere).
    Works on typed models and on raw TOML alike, so a file with broken fields still gets these."""
    sessions = list(sessions)
    clients = list(clients)
    out: list[Problem] = []
    if clients and not gateway:
        out.append(Problem("oms_client", "[[oms_client]] needs a [gateway] section"))
    if gateway and not clients:
        out.append(Problem("gateway", "[gateway] has no [[oms_client]]: it would listen on no port"))
    by_name = {name: (t, listener) for name, t, listener in sessions}
    seen_names: dict[str, int] = {}
    seen_pairs: dict[tuple[str, str], tuple[int, Any]] = {}
    for i, c in enumerate(clients):
        where = f"oms_client[{i}]"
        name = c.get("name")
        if isinstance(name, str):
            if name in seen_names:
                out.append(Problem(f"{where}.name", f"{name!r} is already the name of oms_client[{seen_names[name]}]"))
            else:
                seen_names[name] = i
        session = c.get("session")
        if isinstance(session, str) and session:
            if session not in by_name:
                known = ", ".join(repr(n) for n in by_name) or "none"
                out.append(Problem(f"{where}.session", f"no [[session]] named {session!r} (sessions: {known})"))
            else:
                t, listener = by_name[session]
                if t is not None and t not in ORDER_ENTRY:
                    out.append(Problem(
                        f"{where}.session",
                        f"{session!r} is a {t.value} session; orders go on order entry (KalshiNR, KalshiRT)",
                    ))
                elif listener:
                    out.append(Problem(
                        f"{where}.session", f"{session!r} is a listener session (20126): it cannot send orders"
                    ))
        sender, target, port = c.get("sender_comp_id"), c.get("target_comp_id"), c.get("port")
        if isinstance(sender, str) and isinstance(target, str):
            pair = (sender, target)
            if pair in seen_pairs:
                j, other_port = seen_pairs[pair]
                if other_port == port:
                    reason = (f"{sender} -> {target} on port {port} is also oms_client[{j}]: "
                              "a Logon on that port could not be told apart")
                else:
                    reason = (f"{sender} -> {target} is also oms_client[{j}] (port {other_port}): "
                              "QuickFIX session ids and their stores must be distinct")
                out.append(Problem(f"{where}.sender_comp_id", reason))
            else:
                seen_pairs[pair] = (i, port)
    copying = {c.get("name"): isinstance(c.get("drop_copy"), Mapping) for c in clients}
    for i, c in enumerate(clients):
        copy = c.get("drop_copy")
        names = copy.get("clients") if isinstance(copy, Mapping) else None
        for j, name in enumerate(names if isinstance(names, list) else []):
            if name not in copying:
                out.append(Problem(f"oms_client[{i}].drop_copy.clients[{j}]", f"no [[oms_client]] named {name!r}"))
            elif copying[name]:
                out.append(Problem(f"oms_client[{i}].drop_copy.clients[{j}]",
                                   f"{name!r} is a drop-copy client itself: it has no orders to copy"))
    return out


def _typed_map_problems(config: EngineConfig) -> list[Problem]:
    sessions = [(s.name, s.session_type, s.logon.listener) for s in config.sessions]
    clients = [c.model_dump() for c in config.oms_clients]
    return gateway_map_problems(sessions, clients, config.gateway is not None)


def _raw_map_problems(raw: dict[str, Any]) -> list[Problem]:
    """The same checks on a file that did not validate, best effort."""
    sessions = []
    for s in raw.get("session") if isinstance(raw.get("session"), list) else []:
        if isinstance(s, dict) and isinstance(s.get("name"), str):
            try:
                t: SessionType | None = SessionType(s.get("session_type"))
            except ValueError:
                t = None
            logon = s.get("logon")
            sessions.append((s["name"], t, isinstance(logon, dict) and logon.get("listener") is True))
    clients_raw = raw.get("oms_client")
    clients = [c if isinstance(c, dict) else {} for c in clients_raw] if isinstance(clients_raw, list) else []
    gateway = raw.get("gateway") is not None
    if clients_raw is not None and not isinstance(clients_raw, list):
        return []  # reported as a type error
    return gateway_map_problems(sessions, clients, gateway)


def _as_validation_error(title: str, problems: list[Problem]) -> ValidationError:
    """``Problem``s raised from a model validator with their own locations (pydantic keeps them)."""
    details: list[InitErrorDetails] = []
    for p in problems:
        loc: list[str | int] = []
        for part in p.where.split("."):
            m = re.fullmatch(r"(\w+)\[(\d+)\]", part)
            loc.extend([m.group(1), int(m.group(2))] if m else [part])
        details.append(InitErrorDetails(
            type=PydanticCustomError("gateway_map", "{reason}", {"reason": p.reason}), loc=tuple(loc), input=None
        ))
    return ValidationError.from_exception_data(title, details)


class EngineConfig(_Model):
    data_dir: Path = Field(Path("var"), description="default home of stores, logs and generated dictionaries")
    store_dir: Path | None = Field(None, description="QuickFIX message stores; default data_dir/store")
    log_dir: Path | None = Field(None, description="message logs; default data_dir/log")
    message_log: bool = Field(True, description="write every FIX message of both sides to an append-only log (signatures, passwords redacted)")
    journal_sync: Literal["normal", "full"] = Field(
        "normal", description="normal: the journal survives a killed process; full: also a host crash (fsync per commit)"
    )
    sessions: Annotated[list[SessionConfig], Field(min_length=1, alias="session")]
    embedded_simulator: EmbeddedSimulatorConfig | None = None
    rest: RestConfig | None = Field(None, description="reconciliation over Kalshi's REST API; absent: off")
    gateway: GatewayConfig | None = Field(None, description="the OMS gateway of fixengine serve; absent: off")
    oms_clients: list[OmsClientConfig] = Field(
        default_factory=list, alias="oms_client", description="the OMS session map; requires [gateway]"
    )
    admin: AdminConfig = Field(AdminConfig(), description="fixengine serve's HTTP endpoint: health, status, metrics, admin")
    kalshi_maintenance: bool | None = Field(
        None, description="follow Kalshi's weekly maintenance (Thursdays 03:00-05:00 New York time): new orders and "
                          "amends refused locally, sessions dropped in it reconnect when it ends; absent: on when a "
                          "session connects to a Kalshi host (the simulator pauses only when its [maintenance] is on)"
    )

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @property
    def follows_maintenance(self) -> bool:
        """Whether the engine enforces Kalshi's weekly maintenance window (``kalshi_maintenance``)."""
        if self.kalshi_maintenance is not None:
            return self.kalshi_maintenance
        return any(s.kalshi_host for s in self.sessions)

    @model_validator(mode="after")
    def _unique(self) -> "EngineConfig":
        problems: list[str] = []
        names = [s.name for s in self.sessions]
        for name in sorted({n for n in names if names.count(n) > 1}):
            problems.append(f"session name {name!r} is used more than once")
        ids = [(s.dialect, s.api_key_id, s.session_type) for s in self.sessions]
        for dialect, key, session_type in sorted({i for i in ids if ids.count(i) > 1}):
            problems.append(
                f"two sessions are both {key} -> {session_type.value} in {dialect.value}; QuickFIX needs them distinct"
            )
        keys = [s.api_key_id for s in self.sessions if s.kalshi_host]
        for key in sorted({k for k in keys if keys.count(k) > 1}):
            problems.append(
                f"api_key_id {key} is used by more than one Kalshi session; Kalshi allows one connection per key"
            )
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @model_validator(mode="after")
    def _session_map(self) -> EngineConfig:
        problems = _typed_map_problems(self)
        if problems:
            raise _as_validation_error(type(self).__name__, problems)
        return self

    @property
    def gateway_path(self) -> Path | None:
        """The gateway's store directory, or None without a gateway."""
        if self.gateway is None:
            return None
        return self.gateway.data_dir or self.data_dir / "gateway"

    def oms_client(self, name: str) -> OmsClientConfig:
        for c in self.oms_clients:
            if c.name == name:
                return c
        raise KeyError(name)

    @property
    def store_path(self) -> Path:
        return self.store_dir or self.data_dir / "store"

    @property
    def journal_path(self) -> Path:
        return self.data_dir / "journal.log"

    @property
    def legacy_journal_path(self) -> Path:
        """Where the SQLite versions kept the journal: read into ``journal_path`` once."""
        return self.data_dir / "journal.sqlite"

    @property
    def log_path(self) -> Path:
        return self.log_dir or self.data_dir / "log"

    @property
    def external_accounts(self) -> frozenset[str]:
        """Accounts with a listener or drop-copy session: the engine sees the orders their other keys
        enter (external orders), so reconciliation adopts one it has not seen instead of reporting it."""
        return frozenset(s.account_id for s in self.sessions if s.logon.listener or s.session_type is SessionType.DC)

    def session(self, name: str) -> SessionConfig:
        for s in self.sessions:
            if s.name == name:
                return s
        raise KeyError(name)


# --- loading ---------------------------------------------------------------------------------


def _resolve_paths(raw: dict[str, Any], base: Path) -> dict[str, Any]:
    """Paths in a config file are relative to that file, not to the working directory."""

    def fix(table: dict[str, Any], keys: tuple[str, ...]) -> None:
        for key in keys:
            value = table.get(key)
            if isinstance(value, str):
                p = Path(value).expanduser()
                table[key] = str(p if p.is_absolute() else base / p)

    fix(raw, ("data_dir", "store_dir", "log_dir"))
    for s in raw.get("session", []) if isinstance(raw.get("session"), list) else []:
        if isinstance(s, dict):
            fix(s, ("private_key_file", "tls_ca_file"))
    if isinstance(raw.get("embedded_simulator"), dict):
        fix(raw["embedded_simulator"], ("config",))
    if isinstance(raw.get("gateway"), dict):
        fix(raw["gateway"], ("data_dir", "tls_cert_file", "tls_key_file", "tls_client_ca_file"))
    if isinstance(raw.get("admin"), dict):
        fix(raw["admin"], ("token_file",))
    for c in raw.get("oms_client", []) if isinstance(raw.get("oms_client"), list) else []:
        if isinstance(c, dict):
            fix(c, ("password_file",))
    return raw


def load_config(path: str | Path) -> EngineConfig:
    """Load and validate an engine config file; raise ``ConfigError`` with every problem found."""
    path = Path(path)
    raw = _resolve_paths(read_toml(path), path.resolve().parent)
    raw.setdefault("data_dir", str(path.resolve().parent / "var"))
    try:
        return EngineConfig.model_validate(raw)
    except ValidationError as exc:
        problems = problems_from_validation(exc, {"sessions": "session", "oms_clients": "oms_client"})
        if not any(err["type"] == "gateway_map" for err in exc.errors()):
            # the session map's checks did not run (other fields failed): run them on the raw file
            problems.extend(p for p in _raw_map_problems(raw) if p not in problems)
        raise ConfigError(str(path), problems) from None


def check_config(path: str | Path, *, embedded_check: Callable[[Path], list[Problem]] | None = None) -> list[Problem]:
    """Every problem with a config file, including keys that cannot be loaded; [] when it is usable.

    ``embedded_check`` checks the ``[embedded_simulator]`` config file. The product never imports the
    simulator, so its checker is passed in by whoever has it (``fixengine check-config`` does)."""
    from fixengine.kalshi.signing import load_private_key
    from fixengine.secrets import read_secret

    try:
        config = load_config(path)
    except ConfigError as exc:
        return exc.problems
    problems: list[Problem] = []
    embedded = config.embedded_simulator
    for i, s in enumerate(config.sessions):
        if embedded and embedded.generate_keys and s.private_key_file and not s.private_key_file.exists():
            continue  # created on first run
        try:
            load_private_key(file=s.private_key_file, env=s.private_key_env)
        except KeyLoadError as exc:
            field = "private_key_file" if s.private_key_file else "private_key_env"
            problems.append(Problem(f"session[{i}].{field}", str(exc)))
        if s.tls_ca_file is not None and not s.tls_ca_file.is_file():
            problems.append(Problem(f"session[{i}].tls_ca_file", f"{s.tls_ca_file} does not exist"))
    secrets = [("admin.token_file", config.admin.token_file, "admin token file")] + [
        (f"oms_client[{i}].password_file", c.password_file, "password file") for i, c in enumerate(config.oms_clients)
    ]
    for where, path, what in secrets:
        if path is not None:
            try:
                read_secret(path, what)
            except KeyLoadError as exc:
                problems.append(Problem(where, str(exc)))
    if config.gateway is not None:
        problems.extend(_gateway_tls_problems(config.gateway))
    if embedded is not None and embedded_check is not None:
        problems.extend(embedded_check(embedded.config))
    if embedded is not None and config.oms_clients:
        problems.extend(_listener_clashes(config, embedded.config))
    return problems


def _gateway_tls_problems(gateway: GatewayConfig) -> list[Problem]:
    """The OMS ports' certificate, key and client CA, loaded as the gate will load them."""
    import ssl

    from fixengine.secrets import read_private_file

    out: list[Problem] = []
    cert, key, ca = gateway.tls_cert_file, gateway.tls_key_file, gateway.tls_client_ca_file
    if cert is not None and key is not None:
        for where, path in (("gateway.tls_cert_file", cert), ("gateway.tls_key_file", key)):
            if not path.is_file():
                out.append(Problem(where, f"{path} does not exist"))
        if not out:
            try:
                read_private_file(key, "TLS key file")
                ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert, key)
            except KeyLoadError as exc:
                out.append(Problem("gateway.tls_key_file", str(exc)))
            except (OSError, ssl.SSLError) as exc:
                why = getattr(exc, "reason", None) or exc.strerror or str(exc)
                out.append(Problem("gateway.tls_cert_file", f"{cert} and {key} are not a PEM certificate and its key: {why}"))
    if ca is not None:
        if not ca.is_file():
            out.append(Problem("gateway.tls_client_ca_file", f"{ca} does not exist"))
        else:
            try:
                ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_verify_locations(cafile=str(ca))
            except (OSError, ssl.SSLError) as exc:
                why = getattr(exc, "reason", None) or exc.strerror or str(exc)
                out.append(Problem("gateway.tls_client_ca_file", f"{ca} is not a PEM CA bundle: {why}"))
    return out


def _listener_clashes(config: EngineConfig, simulator_config: Path) -> list[Problem]:
    """OMS ports that the embedded simulator also listens on (compared on port alone: both bind on
    this machine). An unreadable simulator file is the embedded check's to report."""
    try:
        raw = read_toml(simulator_config)
    except ConfigError:
        return []
    ports: dict[int, str] = {}
    listeners = raw.get("listeners")
    for name, port in (listeners.items() if isinstance(listeners, dict) else []):
        if isinstance(port, int) and port:
            ports[port] = f"listener {name}"
    for key in ("control_port", "rest_port"):
        if isinstance(raw.get(key), int) and raw[key]:
            ports[raw[key]] = key
    return [
        Problem(f"oms_client[{i}].port", f"port {c.port} is also the embedded simulator's {ports[c.port]} ({simulator_config})")
        for i, c in enumerate(config.oms_clients)
        if c.port in ports
    ]

