"""Kalshi's FIX session facts, in one place: session types, their ports and which Logon rules apply.

Source: ../shared/kalshi/fix-spec.md §1.1, §2, §4.2, §7.4 (current docs where pages disagree).
"""

from __future__ import annotations

from enum import Enum


class SessionType(str, Enum):
    """Kalshi's session types; the value is the TargetCompID (56), bound to its own port."""

    NR = "KalshiNR"
    DC = "KalshiDC"
    RT = "KalshiRT"
    PT = "KalshiPT"
    RFQ = "KalshiRFQ"
    MD = "KalshiMD"


PORTS: dict[SessionType, int] = {
    SessionType.NR: 8228,
    SessionType.DC: 8229,
    SessionType.RT: 8230,
    SessionType.PT: 8231,
    SessionType.RFQ: 8232,
    SessionType.MD: 8233,
}

# No retransmission: a Logon without ResetSeqNumFlag=Y is refused (§7.4, current docs).
RESET_REQUIRED = frozenset({SessionType.NR, SessionType.DC, SessionType.RFQ, SessionType.MD})
# Where each Logon switch is allowed (§4.2, §14, §15).
LISTENER_ALLOWED = frozenset({SessionType.NR, SessionType.RT})
SETTLEMENT_REPORTS_ALLOWED = frozenset({SessionType.NR, SessionType.RT, SessionType.PT})
RETENTION_ALLOWED = frozenset({SessionType.RT, SessionType.PT})
ORDER_ENTRY = frozenset({SessionType.NR, SessionType.RT})
MAX_RETENTION_HOURS = 72
DEFAULT_RETENTION_HOURS = 24  # MessageRetentionPeriod (20200) when a Logon has none (since 2025-11-24)

# FIX API access by default from Premier up (§1.4).
TIERS = ("basic", "advanced", "expert", "premier", "paragon", "prime", "prestige")
FIX_TIERS = ("premier", "paragon", "prime", "prestige")

SENDING_TIME_TOLERANCE_S = 30

# Logout texts the live gateway is known to send (§6); the engine recognises them by substring.
TEXT_INVALID_TARGET = "Invalid TargetCompID"
TEXT_ALREADY_EXISTS = "already exists"
TEXT_TIER_NOT_ALLOWED = "API usage level is not allowed for FIX"

# Refusals that say the Logon itself is wrong: sending it again gets the same answer (§6; our
# simulator's texts where Kalshi does not publish its own, e.g. for a bad signature).
PERMANENT_REFUSALS = (
    TEXT_INVALID_TARGET,
    TEXT_TIER_NOT_ALLOWED,
    "Invalid SenderCompID",
    "signature",
    "Signature",
    "RawData",
    "BeginString",
    "DefaultApplVerID",
    "ResetSeqNumFlag",
    "is not allowed on",
    "must be Y or N",
    "EncryptMethod",
    "HeartBtInt",
)

# The Write budget (§8; rest-spec §10.1): FIX order entry, order groups and RFQ/quote flow draw on
# the same Write token bucket as REST writes. Tokens refilled per second, by API usage tier:
WRITE_RATE: dict[str, int] = {
    "basic": 100,
    "advanced": 300,
    "expert": 600,
    "premier": 1_000,
    "paragon": 2_000,
    "prime": 4_000,
    "prestige": 8_000,
}
# Seconds of refill the Write bucket holds: 1 on Basic, 2 above (a burst of twice the rate).
WRITE_BURST_SECONDS: dict[str, int] = {tier: 1 if tier == "basic" else 2 for tier in WRITE_RATE}
assert set(WRITE_RATE) == set(TIERS), "a tier without a write budget"
# Tokens one request costs unless Kalshi lists another; per-message FIX costs are not published.
DEFAULT_REQUEST_COST = 10
# OrderMassCancelRequest (35=q): at most one a second, on top of its tokens.
MASS_CANCEL_INTERVAL_S = 1.0
# Client-to-Kalshi messages billed to the Write bucket: order entry (D, F, G, q), order groups (UOG),
# RFQ and quote flow (R, UA, UE on KalshiRT; S, Z, U7 on KalshiRFQ). Session messages are free.
WRITE_MSG_TYPES = frozenset({"D", "F", "G", "q", "UOG", "R", "UA", "UE", "S", "Z", "U7"})
# Requests with ExDestination (100) >= 1 bill that shard's own full-size Write bucket (§8).
SHARD_BILLED_MSG_TYPES = frozenset({"D", "F", "G"})


def write_capacity(tier: str) -> int:
    """Tokens the Write bucket of ``tier`` holds when full."""
    return WRITE_RATE[tier] * WRITE_BURST_SECONDS[tier]
