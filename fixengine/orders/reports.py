"""What Kalshi reports about orders, as typed immutable values (spec §11).

The dialect layer builds these from ExecutionReport (35=8) and OrderCancelReject (35=9); the order
book consumes them. Prices here are YES prices in dollars, whatever unit the wire used.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import Enum

from fixengine.kalshi.prices import WireSide

# Pending reports carry this ExecID; they are not persistent and never deduplicated (§11.1).
PENDING_EXEC_ID = "-1;-1"


def exec_position(exec_id: str) -> tuple[int, int, int] | None:
    """``clock;event[;shard]`` as (shard, clock, event), which orders a shard's reports (drop copy
    replays by it, §13); None if it is not one (a pending ``-1;-1``, or anything else)."""
    parts = exec_id.split(";")
    if len(parts) not in (2, 3) or not all(p.isdigit() for p in parts):
        return None
    return (int(parts[2]) if len(parts) == 3 else 0), int(parts[0]), int(parts[1])


class ExecType(str, Enum):
    NEW = "0"
    CANCELED = "4"
    REPLACED = "5"
    PENDING_CANCEL = "6"
    REJECTED = "8"
    PENDING_NEW = "A"
    EXPIRED = "C"
    PENDING_REPLACE = "E"
    TRADE = "F"


class OrdStatus(str, Enum):
    NEW = "0"
    PARTIALLY_FILLED = "1"
    FILLED = "2"
    CANCELED = "4"
    REPLACED = "5"
    PENDING_CANCEL = "6"
    REJECTED = "8"
    PENDING_NEW = "A"
    EXPIRED = "C"
    PENDING_REPLACE = "E"


class RejectCode(str, Enum):
    """Kalshi's machine-readable Text (58) on rejects and system cancels (§11.4, §11.7)."""

    EXCHANGE_UNAVAILABLE = "EXCHANGE_UNAVAILABLE"  # outcome unknown: reconcile or retry same ClOrdID
    INTERNAL_ERROR = "INTERNAL_ERROR"
    MARKET_ALREADY_CLOSED = "MARKET_ALREADY_CLOSED"
    MARKET_INACTIVE = "MARKET_INACTIVE"
    EXCHANGE_PAUSED = "EXCHANGE_PAUSED"
    TRADING_PAUSED = "TRADING_PAUSED"
    MARKET_NOT_FOUND = "MARKET_NOT_FOUND"
    ORDER_ALREADY_EXISTS = "ORDER_ALREADY_EXISTS"
    INSUFFICIENT_BALANCE = "INSUFFICIENT_BALANCE"
    EXCEEDED_ORDER_GROUP_RISK_LIMIT = "EXCEEDED_ORDER_GROUP_RISK_LIMIT"
    EXCEEDED_PER_MARKET_RISK_LIMIT = "EXCEEDED_PER_MARKET_RISK_LIMIT"
    EXCEEDED_SELL_POSITION_FLOOR = "EXCEEDED_SELL_POSITION_FLOOR"
    INVALID_ORDER = "INVALID_ORDER"
    ORDER_GROUP_NOT_FOUND = "ORDER_GROUP_NOT_FOUND"
    CUSTOMER_ACCOUNT_NOT_FOUND = "CUSTOMER_ACCOUNT_NOT_FOUND"
    PERMISSION_DENIED_FOR_CUSTOMER_ACCOUNT = "PERMISSION_DENIED_FOR_CUSTOMER_ACCOUNT"
    EXPIRED = "EXPIRED"
    SELF_CROSS_ATTEMPT = "SELF_CROSS_ATTEMPT"
    SELF_CROSS_ATTEMPT_PARTIALLY_FILLED = "SELF_CROSS_ATTEMPT_PARTIALLY_FILLED"
    TAKER_CANCEL_FOR_SELF_TRADE_PREVENTION = "TAKER_CANCEL_FOR_SELF_TRADE_PREVENTION"
    MAKER_CANCEL_FOR_SELF_TRADE_PREVENTION = "MAKER_CANCEL_FOR_SELF_TRADE_PREVENTION"
    FOK_INSUFFICIENT_VOLUME = "FOK_INSUFFICIENT_VOLUME"
    IMMEDIATE_OR_CANCELLED = "IMMEDIATE_OR_CANCELLED"
    POST_ONLY_CROSS = "POST_ONLY_CROSS"
    ORDER_GROUP_CANCEL = "ORDER_GROUP_CANCEL"
    INVALID_PRICE = "INVALID_PRICE"
    INVALID_AMEND_QTY_FOR_ORDER = "INVALID_AMEND_QTY_FOR_ORDER"
    CANNOT_UPDATE_FILLED_ORDER = "CANNOT_UPDATE_FILLED_ORDER"
    ORDER_AMEND_IN_PROGRESS = "ORDER_AMEND_IN_PROGRESS"
    ORDER_NOT_FOUND = "ORDER_NOT_FOUND"
    OTHER = "OTHER"  # a Text we do not know; the original is kept in ``text``

    @classmethod
    def from_text(cls, text: str | None) -> "RejectCode":
        if not text:
            return cls.OTHER
        if text == "NOT_FOUND":  # older spelling of MARKET_NOT_FOUND
            return cls.MARKET_NOT_FOUND
        try:
            return cls(text)
        except ValueError:
            return cls.OTHER

    @property
    def outcome_unknown(self) -> bool:
        """The exchange may or may not have applied the request (v1.0.30)."""
        return self is RejectCode.EXCHANGE_UNAVAILABLE


@dataclass(frozen=True, slots=True)
class Reason:
    """Why something was refused or cancelled: Kalshi's code, its numeric code, its words."""

    code: RejectCode
    number: int | None  # OrdRejReason (103) or CxlRejReason (102)
    text: str

    @classmethod
    def of(cls, text: str | None, number: int | None) -> "Reason":
        return cls(RejectCode.from_text(text), number, text or "")


@dataclass(frozen=True, slots=True)
class Fill:
    exec_id: str
    trade_id: str | None
    yes_price: Decimal
    quantity: Decimal
    fee: Decimal
    aggressor: bool | None
    balance_change: Decimal | None = None  # the account's cash change (1704 with 1705=BALANCE)


@dataclass(frozen=True, slots=True)
class ExecutionReport:
    exec_id: str
    exec_type: ExecType
    ord_status: OrdStatus
    order_id: str
    cl_ord_id: str
    orig_cl_ord_id: str | None
    ticker: str
    side: WireSide
    order_qty: Decimal
    cum_qty: Decimal
    leaves_qty: Decimal
    yes_price: Decimal | None = None
    avg_yes_price: Decimal | None = None
    fill: Fill | None = None
    long_qty: Decimal | None = None  # YES position after a trade (704)
    short_qty: Decimal | None = None  # NO position after a trade (705)
    reason: Reason | None = None
    poss_dup: bool = False
    # The account of the session it came on: an order the book does not know (entered by another key
    # of the account, seen on a listener or drop-copy session) is adopted as an external order of it.
    account: str | None = None

    @property
    def shard(self) -> int:
        """Exchange index: ExecIDs are ``clock;event`` on shard 0, ``clock;event;shard`` elsewhere."""
        parts = self.exec_id.split(";")
        return int(parts[2]) if len(parts) > 2 and parts[2].isdigit() else 0

    @property
    def dedupe_key(self) -> tuple[int, str] | None:
        """What identifies this report forever, or None for a pending report (never deduplicated)."""
        return None if self.exec_id == PENDING_EXEC_ID else (self.shard, self.exec_id)


class CxlRejResponseTo(str, Enum):
    CANCEL = "1"
    REPLACE = "2"


@dataclass(frozen=True, slots=True)
class CancelReject:
    """OrderCancelReject (35=9): the cancel or replace was refused; the order is as it was."""

    cl_ord_id: str
    orig_cl_ord_id: str | None
    order_id: str | None
    ord_status: OrdStatus | None
    response_to: CxlRejResponseTo
    reason: Reason


@dataclass(frozen=True, slots=True)
class PositionFix:
    """Reconciliation's correction of a position the FIX session never reported (a settlement)."""

    account: str
    ticker: str
    net_yes: Decimal


@dataclass(frozen=True, slots=True)
class BusinessReject:
    """BusinessMessageReject (35=j) of one of our order requests, e.g. Kalshi's rate limit (380=8):
    the exchange never processed it. A new order is rejected; a cancel or replace is refused and
    the order stays as it was."""

    ref_msg_type: str  # RefMsgType (372): D, F or G
    cl_ord_id: str  # BusinessRejectRefID (379): the request's ClOrdID
    reason: Reason
