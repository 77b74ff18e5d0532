"""The simulator's Logon checks, as one pure function: fields in, a decision out.

The order is Kalshi's (spec §24.2): BeginString/1137, CompIDs bound to the port, one connection per
key, API tier, SendingTime, signature, the ResetSeqNumFlag rule, then flag compatibility. The first
failing check decides the Logout text the counterparty sees.
"""

from __future__ import annotations

from collections.abc import Container, Mapping
from dataclasses import dataclass
from datetime import datetime

from cryptography.hazmat.primitives.asymmetric import rsa

from fixengine.fix.dialect import APPL_VER_ID_FIX50SP2
from fixengine.fix.tags import (
    ALWAYS_EMIT_NEW_BEFORE_TRADE,
    BEGIN_STRING,
    CANCEL_ORDERS_ON_DISCONNECT,
    DEFAULT_APPL_VER_ID,
    ENABLE_IOC_CANCEL_REPORT,
    ENCRYPT_METHOD,
    HEART_BT_INT,
    LISTENER_SESSION,
    MESSAGE_RETENTION_PERIOD,
    MSG_SEQ_NUM,
    MSG_TYPE,
    PRESERVE_ORIGINAL_ORDER_QTY,
    RAW_DATA,
    RAW_DATA_LENGTH,
    RECEIVE_SETTLEMENT_REPORTS,
    RESET_SEQ_NUM_FLAG,
    SENDER_COMP_ID,
    SENDER_SUB_ID,
    SENDING_TIME,
    SKIP_PENDING_EXEC_REPORTS,
    SKIP_PENDING_EXEC_REPORTS_LEGACY,
    SPLIT_COLLATERAL_RETURN,
    TARGET_COMP_ID,
    USE_DOLLARS,
    USE_EXPIRED_ORD_STATUS,
)
from fixengine.kalshi.facts import (
    LISTENER_ALLOWED,
    MAX_RETENTION_HOURS,
    RESET_REQUIRED,
    RETENTION_ALLOWED,
    SETTLEMENT_REPORTS_ALLOWED,
    TEXT_ALREADY_EXISTS,
    TEXT_INVALID_TARGET,
    TEXT_TIER_NOT_ALLOWED,
    SessionType,
)
from fixengine.fix.timestamps import parse_utc_timestamp as parse_sending_time
from fixengine.kalshi.signing import logon_prehash, verify
from simulator.config import ListenerSpec

# 373 SessionRejectReason for a SendingTime outside the tolerance.
REJECT_SENDING_TIME_ACCURACY = 10

_BOOLEAN_FLAGS = {
    CANCEL_ORDERS_ON_DISCONNECT: "CancelOrdersOnDisconnect",
    LISTENER_SESSION: "ListenerSession",
    RECEIVE_SETTLEMENT_REPORTS: "ReceiveSettlementReports",
    USE_DOLLARS: "UseDollars",
    SKIP_PENDING_EXEC_REPORTS_LEGACY: "SkipPendingExecReports (legacy 21003)",
    ENABLE_IOC_CANCEL_REPORT: "EnableIocCancelReport",
    PRESERVE_ORIGINAL_ORDER_QTY: "PreserveOriginalOrderQty",
    SKIP_PENDING_EXEC_REPORTS: "SkipPendingExecReports",
    USE_EXPIRED_ORD_STATUS: "UseExpiredOrdStatus",
    ALWAYS_EMIT_NEW_BEFORE_TRADE: "AlwaysEmitNewBeforeTrade",
    SPLIT_COLLATERAL_RETURN: "SplitCollateralReturn",
    RESET_SEQ_NUM_FLAG: "ResetSeqNumFlag",
}


@dataclass(frozen=True)
class Account:
    api_key_id: str
    public_key: rsa.RSAPublicKey
    tier: str
    account_id: str = ""  # the exchange account the key trades for; "": its own (api_key_id)

    @property
    def owner(self) -> str:
        return self.account_id or self.api_key_id


@dataclass(frozen=True)
class LogonPolicy:
    sending_time_tolerance: float
    min_heartbeat_interval: int
    fix_tiers: frozenset[str]


@dataclass(frozen=True)
class Refusal:
    """Why a Logon is refused: the Logout Text, and a SessionRejectReason when a Reject comes first."""

    text: str
    reject_reason: int | None = None


def check_logon(
    fields: Mapping[int, str],
    listener: ListenerSpec,
    accounts: Mapping[str, Account],
    connected_keys: Container[str],
    policy: LogonPolicy,
    now: datetime,
) -> Refusal | None:
    """None when the Logon may proceed, else the first ``Refusal`` in Kalshi's order."""
    # 1. BeginString and DefaultApplVerID
    begin_string = fields.get(BEGIN_STRING, "")
    if begin_string != listener.dialect.begin_string:
        return Refusal(f"Unsupported BeginString {begin_string}: this port speaks {listener.dialect.begin_string}")
    if listener.dialect.is_fixt and fields.get(DEFAULT_APPL_VER_ID) != APPL_VER_ID_FIX50SP2:
        return Refusal(f"DefaultApplVerID (1137) must be {APPL_VER_ID_FIX50SP2} (FIX50SP2)")

    # 2. TargetCompID bound to the port, SenderCompID a known API key
    target = fields.get(TARGET_COMP_ID, "")
    if target not in {t.value for t in listener.session_types}:
        return Refusal(TEXT_INVALID_TARGET)
    session_type = SessionType(target)
    key_id = fields.get(SENDER_COMP_ID, "")
    account = accounts.get(key_id)
    if account is None:
        return Refusal("Invalid SenderCompID: unknown API key")

    # 3. one connection per API key
    if key_id in connected_keys:
        return Refusal(TEXT_ALREADY_EXISTS)

    # 4. API tier
    if account.tier not in policy.fix_tiers:
        return Refusal(TEXT_TIER_NOT_ALLOWED)

    # 5. SendingTime within tolerance
    sending_time = parse_sending_time(fields.get(SENDING_TIME, ""))
    if sending_time is None:
        return Refusal("SendingTime (52) is missing or malformed", REJECT_SENDING_TIME_ACCURACY)
    if abs((sending_time - now).total_seconds()) > policy.sending_time_tolerance:
        return Refusal("SendingTime accuracy problem", REJECT_SENDING_TIME_ACCURACY)

    # 6. signature over 52, 35, 34, 49, 56 exactly as sent
    signature = fields.get(RAW_DATA)
    if not signature:
        return Refusal("Signature missing: RawData (96) is required")
    if RAW_DATA_LENGTH in fields and fields[RAW_DATA_LENGTH] != str(len(signature.encode("latin-1"))):
        return Refusal("RawDataLength (95) does not match the length of RawData (96)")
    prehash = logon_prehash(
        fields.get(SENDING_TIME, ""), fields.get(MSG_TYPE, ""), fields.get(MSG_SEQ_NUM, ""), key_id, target
    )
    if not verify(account.public_key, prehash, signature):
        return Refusal("Invalid signature: RawData (96) does not verify for this API key")

    # 7. ResetSeqNumFlag on sessions without retransmission
    if session_type in RESET_REQUIRED and fields.get(RESET_SEQ_NUM_FLAG) != "Y":
        return Refusal(f"ResetSeqNumFlag (141) must be Y on {target}")

    # 8. flag compatibility
    return _check_flags(fields, session_type, policy)


def _check_flags(fields: Mapping[int, str], session_type: SessionType, policy: LogonPolicy) -> Refusal | None:
    target = session_type.value
    if SENDER_SUB_ID in fields:
        return Refusal("SenderSubID (50) is not allowed on Logon")
    if fields.get(ENCRYPT_METHOD, "0") != "0":
        return Refusal("EncryptMethod (98) must be 0")
    heartbeat = fields.get(HEART_BT_INT, "")
    if not heartbeat.isdigit() or int(heartbeat) < policy.min_heartbeat_interval:
        return Refusal(f"HeartBtInt (108) must be a whole number of seconds >= {policy.min_heartbeat_interval}")
    for tag, name in _BOOLEAN_FLAGS.items():
        if tag in fields and fields[tag] not in ("Y", "N"):
            return Refusal(f"{name} ({tag}) must be Y or N")

    def on(tag: int) -> bool:
        return fields.get(tag) == "Y"

    if on(LISTENER_SESSION):
        if session_type not in LISTENER_ALLOWED:
            return Refusal(f"ListenerSession (20126) is not allowed on {target}")
        if not (on(SKIP_PENDING_EXEC_REPORTS) or on(SKIP_PENDING_EXEC_REPORTS_LEGACY)):
            return Refusal("ListenerSession (20126) requires SkipPendingExecReports (21011)=Y")
        if on(CANCEL_ORDERS_ON_DISCONNECT):
            return Refusal("CancelOrdersOnDisconnect (8013) is not allowed on a listener session")
    if on(RECEIVE_SETTLEMENT_REPORTS) and session_type not in SETTLEMENT_REPORTS_ALLOWED:
        return Refusal(f"ReceiveSettlementReports (20127) is not allowed on {target}")
    if MESSAGE_RETENTION_PERIOD in fields:
        if session_type not in RETENTION_ALLOWED:
            return Refusal(f"MessageRetentionPeriod (20200) is not allowed on {target}")
        hours = fields[MESSAGE_RETENTION_PERIOD]
        if not hours.isdigit() or not 1 <= int(hours) <= MAX_RETENTION_HOURS:
            return Refusal(f"MessageRetentionPeriod (20200) must be 1 to {MAX_RETENTION_HOURS} hours")
    return None
