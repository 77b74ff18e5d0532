"""An OMS's FIX 4.4 and the engine, translated both ways: pure functions, no I/O, no clock.

In: ``translate`` takes one message an OMS sent (its fields as ``(tag, value)`` pairs, 35 included,
as ``fixengine.fix.framing.parse`` gives them, or a tag -> value mapping) and returns either a
``Translated`` engine request (``NewOrder``, ``CancelOrder``, ``ReplaceOrder``, a ``MassCancel`` of
the client's own open orders, or a ``StatusRequest``: OrderStatusRequest H and OrderMassStatusRequest
AF, which Kalshi has neither of, answered from the book by ``status_reports`` with ExecType I) or a
refusal naming the tag and the reason, which is never sent to Kalshi:

- ``SessionRefusal`` (Reject 35=3, RefTagID 371, SessionRejectReason 373): malformed input, a
  required tag missing, a value that is not a number;
- ``BusinessRefusal`` (BusinessMessageReject 35=j, 380): a MsgType the gateway does not support (3)
  or the client is not entitled to (6);
- ``OrderRefusal`` (ExecutionReport 150=8/39=8, OrdRejReason 103, Text 58): a well-formed new order
  that is refused: off-grid price, quantity not in 0.01 steps, bad ticker format, a duplicate
  ClOrdID, a ticker, size or notional the client is not entitled to;
- ``CancelRefusal`` (OrderCancelReject 35=9, CxlRejReason 102): a refused cancel or replace;
- ``MassCancelRefusal`` (OrderMassCancelReport 35=r, 531=0, 532): a refused mass cancel.

Each refusal says which tag (``tag``) and why (``text``) and makes its own OMS message (``message``).

Out: ``reports`` turns one order event of the book (``fixengine.orders.book``) into the FIX 4.4
messages for the OMS session that owns the order: ExecutionReports (35=8) carrying the OMS's own
ClOrdID/OrigClOrdID (kept per order in an ``OmsChain``), Kalshi's OrderID (37), an ExecID from the
session's ``ExecIds`` counter, and ExecType/OrdStatus/CumQty/LeavesQty/AvgPx as FIX 4.4's order
state change matrices have them: a fill during a pending cancel or replace keeps the order's
current ClOrdID and OrdStatus 6/E; Kalshi's folded New+Trade (a fill as the first news of an
order) becomes a New then a Trade; a fill that ends an IOC with its rest cancelled becomes a Trade
then a Canceled. A refused cancel or replace becomes an OrderCancelReject (35=9). Every message is
a ``OmsMessage`` (MsgType and body fields): the OMS session adds the header and validates it.

Conventions (Kalshi's own, spec §10.1): Symbol (55) is the Kalshi market ticker; Side (54) 1 buys
YES and 2 sells YES; Price (44), LastPx (31) and AvgPx (6) are dollars of YES, plain decimals
(``0.45``); quantities are contracts in steps of 0.01; the fee is Commission (12) with CommType
(13) 3 (absolute, dollars). TimeInForce (59) absent means Day, as in FIX (not Kalshi's GTC).

How an OMS buys NO: it sells YES. Buying NO at q is Side=2 at Price=1-q (buy 10 NO at $0.30:
54=2, 38=10, 44=0.70); selling NO at q is Side=1 at Price=1-q. The notional an entitlement limits
is what the order can cost: quantity x price for a buy of YES, quantity x (1 - price) for a sell.

One module on purpose (about 800 lines): both directions share one vocabulary (the OMS's ClOrdID
chain, the reason codes, the state matrices), and reading them side by side is how a mismatch
between what the gateway accepts and what it reports gets seen.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Final

from fixengine._evolve import evolve
from fixengine.errors import InvalidOrderError
from fixengine.fix.tags import (
    COMM_TYPE,
    COMMISSION,
    LAST_RPT_REQUESTED,
    MASS_STATUS_REQ_ID,
    MASS_STATUS_REQ_TYPE,
    MSG_ORDER_MASS_STATUS_REQUEST,
    MSG_ORDER_STATUS_REQUEST,
    ORD_STATUS_REQ_ID,
    SECONDARY_CL_ORD_ID,
    TOT_NUM_REPORTS,
    AVG_PX,
    BUSINESS_REJECT_REASON,
    BUSINESS_REJECT_REF_ID,
    CL_ORD_ID,
    CUM_QTY,
    CXL_REJ_REASON,
    CXL_REJ_RESPONSE_TO,
    EXEC_ID,
    EXEC_INST,
    EXEC_TYPE,
    EXPIRE_TIME,
    LAST_PX,
    LAST_QTY,
    LEAVES_QTY,
    MASS_CANCEL_REJECT_REASON,
    MASS_CANCEL_REQUEST_TYPE,
    MASS_CANCEL_RESPONSE,
    MSG_BUSINESS_MESSAGE_REJECT,
    MSG_EXECUTION_REPORT,
    MSG_NEW_ORDER_SINGLE,
    MSG_ORDER_CANCEL_REJECT,
    MSG_ORDER_CANCEL_REPLACE_REQUEST,
    MSG_ORDER_CANCEL_REQUEST,
    MSG_ORDER_MASS_CANCEL_REPORT,
    MSG_ORDER_MASS_CANCEL_REQUEST,
    MSG_REJECT,
    MSG_SEQ_NUM,
    MSG_TYPE,
    ORD_REJ_REASON,
    ORD_STATUS,
    ORD_TYPE,
    ORDER_ID,
    ORDER_QTY,
    ORIG_CL_ORD_ID,
    PRICE,
    REF_MSG_TYPE,
    REF_SEQ_NUM,
    REF_TAG_ID,
    SESSION_REJECT_REASON,
    SIDE,
    SYMBOL,
    TEXT,
    TIME_IN_FORCE,
    TOTAL_AFFECTED_ORDERS,
    TRANSACT_TIME,
)
from fixengine.fix.framing import plain
from fixengine.fix.timestamps import parse_utc_timestamp, utc_timestamp
from fixengine.kalshi.prices import (
    CENT,
    ONE,
    QTY_STEP,
    Action,
    Contract,
    contract_price,
    format_quantity,
)
from fixengine.orders.book import (
    CancelRejected,
    Order,
    OrderAccepted,
    OrderCanceled,
    OrderEvent,
    OrderExpired,
    OrderFilled,
    OrderPending,
    OrderRejected,
    OrderReplaced,
    Status,
)
from fixengine.orders.reports import CxlRejResponseTo, Reason
from fixengine.orders.requests import (
    TICKER,
    CancelOrder,
    NewOrder,
    ReplaceOrder,
    TimeInForce,
    new_cl_ord_id,
)
from fixengine.orders.wire import (
    EXEC_INST_POST_ONLY,
    ORD_TYPE_LIMIT,
    Fields,
    first_values,
)

# --- FIX 4.4 values the engine's vocabulary (fixengine.fix.tags) does not need --------------------

COMM_TYPE_ABSOLUTE: Final[str] = "3"
NONE_ID: Final[str] = "NONE"  # OrderID (37) of an order the exchange never had
NO_SYMBOL: Final[str] = "[N/A]"  # Symbol (55) of a refusal that named none

# SessionRejectReason (373)
INVALID_TAG_NUMBER: Final[int] = 0
REQUIRED_TAG_MISSING: Final[int] = 1
VALUE_INCORRECT: Final[int] = 5
INCORRECT_DATA_FORMAT: Final[int] = 6
TAG_APPEARS_MORE_THAN_ONCE: Final[int] = 13
# BusinessRejectReason (380)
UNSUPPORTED_MESSAGE_TYPE: Final[int] = 3
NOT_AUTHORIZED: Final[int] = 6
# OrdRejReason (103)
BROKER_OPTION: Final[int] = 0
UNKNOWN_SYMBOL: Final[int] = 1
EXCEEDS_LIMIT: Final[int] = 3
DUPLICATE_ORDER: Final[int] = 6
UNSUPPORTED_CHARACTERISTIC: Final[int] = 11
INCORRECT_QUANTITY: Final[int] = 13
OTHER: Final[int] = 99
# CxlRejReason (102)
TOO_LATE_TO_CANCEL: Final[int] = 0
UNKNOWN_ORDER: Final[int] = 1
ALREADY_PENDING: Final[int] = 3
DUPLICATE_CL_ORD_ID: Final[int] = 6
# MassCancelRequestType (530) the gateway serves, and MassCancelResponse (531) 0 = rejected
MASS_CANCEL_BY_SYMBOL: Final[str] = "1"
MASS_CANCEL_ALL: Final[str] = "7"
MASS_CANCEL_REJECTED: Final[str] = "0"
MASS_CANCEL_NOT_SUPPORTED: Final[int] = 0

# The codes FIX 4.4 knows: Kalshi's others (e.g. CxlRejReason 18) go out as 99, Other.
FIX44_ORD_REJ_REASONS: Final = frozenset({0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 99})
FIX44_CXL_REJ_REASONS: Final = frozenset({0, 1, 2, 3, 4, 5, 6, 99})
FIX44_SIDES: Final = frozenset("123456789ABCDEFG")
FIX44_MASS_CANCEL_TYPES: Final = frozenset("1234567")

# Status requests: Kalshi has neither; the gateway answers them from the book.
EXEC_TYPE_ORDER_STATUS: Final[str] = "I"
MASS_STATUS_BY_SYMBOL: Final[str] = "1"
MASS_STATUS_ALL: Final[str] = "7"
UNKNOWN_ORDER_REJ_REASON: Final[int] = 5  # OrdRejReason (103) 5: unknown order

SUPPORTED: Final = frozenset({MSG_NEW_ORDER_SINGLE, MSG_ORDER_CANCEL_REQUEST, MSG_ORDER_CANCEL_REPLACE_REQUEST,
                              MSG_ORDER_MASS_CANCEL_REQUEST, MSG_ORDER_STATUS_REQUEST, MSG_ORDER_MASS_STATUS_REQUEST})
SIDE_BUY_YES: Final[str] = "1"
SIDE_SELL_YES: Final[str] = "2"

_TIME_IN_FORCE = {t.value: t for t in TimeInForce}
_ORD_STATUS = {
    Status.PENDING_NEW: "A",
    Status.NEW: "0",
    Status.PARTIALLY_FILLED: "1",
    Status.FILLED: "2",
    Status.PENDING_CANCEL: "6",
    Status.PENDING_REPLACE: "E",
    Status.CANCELED: "4",
    Status.REJECTED: "8",
    Status.EXPIRED: "C",
}
_REQUEST_FIELD_TAG = {"ticker": SYMBOL, "quantity": ORDER_QTY, "price": PRICE, "time_in_force": TIME_IN_FORCE,
                      "expire_time": EXPIRE_TIME, "post_only": EXEC_INST}


def ord_status(order: Order) -> str:
    """The order's OrdStatus (39) in FIX 4.4."""
    return _ORD_STATUS[order.status]



# --- who may do what ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Entitlements:
    """What one OMS client may send. ``ticker_pattern`` must match the whole ticker."""

    max_quantity: Decimal  # contracts per order
    max_notional: Decimal  # dollars per order (see the module docstring)
    msg_types: frozenset[str] = SUPPORTED
    ticker_pattern: str = r".*"
    may_mass_cancel: bool = False

    def ticker_allowed(self, ticker: str) -> bool:
        return re.fullmatch(self.ticker_pattern, ticker) is not None


# --- what goes to the OMS -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OmsMessage:
    """One message for the OMS: its MsgType and body fields; the session adds the header."""

    msg_type: str
    fields: Fields


@dataclass
class ExecIds:
    """ExecIDs (17) unique in one OMS session: ``prefix`` then a counter. Journal ``last`` (or use a
    prefix unique per run) to keep them unique across restarts."""

    prefix: str = ""
    last: int = 0

    def __call__(self) -> str:
        self.last += 1
        return f"{self.prefix}{self.last}"


@dataclass(frozen=True, slots=True)
class OmsChain:
    """The OMS's ClOrdIDs of one order: the one it stands under, a cancel (F) or replace (G) in
    flight, and what the OMS has been told (acknowledged; a final state reported)."""

    cl_ord_id: str
    pending: str | None = None
    pending_type: str | None = None  # MsgType of the request in flight: F or G
    acknowledged: bool = False
    done: bool = False
    traded: Decimal = Decimal(0)  # sum of LastQty x LastPx told: AvgPx when Kalshi's is not known
    cum_qty: Decimal = Decimal(0)  # the CumQty (14) last told
    # The OrderQty (38) the OMS asked for (last replace included). Kalshi's reports shrink 38 to
    # CumQty + LeavesQty on a cancel unless the session asks otherwise (21008); FIX 4.4 keeps it.
    order_qty: Decimal | None = None

    def quantity(self, order: Order) -> Decimal:
        return self.order_qty if self.order_qty is not None else order.quantity

    def requested(self, cl_ord_id: str, msg_type: str) -> OmsChain:
        """A cancel (F) or replace (G) of the OMS was passed on to the engine."""
        return evolve(self, pending=cl_ord_id, pending_type=msg_type)


# --- refusals -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SessionRefusal:
    """Reject (35=3): the message is malformed."""

    ref_seq_num: int
    ref_msg_type: str
    tag: int
    reason: int  # SessionRejectReason (373)
    text: str

    def message(self, exec_ids: ExecIds, now: datetime) -> OmsMessage:
        fields: Fields = [(REF_SEQ_NUM, str(self.ref_seq_num)), (REF_TAG_ID, str(self.tag))]
        if self.ref_msg_type:
            fields.append((REF_MSG_TYPE, self.ref_msg_type))
        fields += [(SESSION_REJECT_REASON, str(self.reason)), (TEXT, self.text)]
        return OmsMessage(MSG_REJECT, fields)


@dataclass(frozen=True, slots=True)
class BusinessRefusal:
    """BusinessMessageReject (35=j): a MsgType not supported or not entitled."""

    ref_seq_num: int
    ref_msg_type: str
    ref_id: str  # the request's ClOrdID, if it had one
    reason: int  # BusinessRejectReason (380)
    text: str
    tag: int = MSG_TYPE

    def message(self, exec_ids: ExecIds, now: datetime) -> OmsMessage:
        fields: Fields = [(REF_SEQ_NUM, str(self.ref_seq_num)), (REF_MSG_TYPE, self.ref_msg_type)]
        if self.ref_id:
            fields.append((BUSINESS_REJECT_REF_ID, self.ref_id))
        fields += [(BUSINESS_REJECT_REASON, str(self.reason)), (TEXT, self.text)]
        return OmsMessage(MSG_BUSINESS_MESSAGE_REJECT, fields)


@dataclass(frozen=True, slots=True)
class OrderRefusal:
    """ExecutionReport 150=8/39=8: a well-formed new order the gateway refuses."""

    cl_ord_id: str
    ticker: str
    side: str
    quantity: Decimal | None
    price: Decimal | None
    tag: int
    reason: int  # OrdRejReason (103)
    text: str

    def message(self, exec_ids: ExecIds, now: datetime) -> OmsMessage:
        fields: Fields = [
            (ORDER_ID, NONE_ID), (CL_ORD_ID, self.cl_ord_id), (EXEC_ID, exec_ids()), (EXEC_TYPE, "8"),
            (ORD_STATUS, "8"), (SYMBOL, self.ticker or NO_SYMBOL), (SIDE, self.side),
        ]
        if self.quantity is not None:
            fields.append((ORDER_QTY, plain(self.quantity)))
        if self.price is not None:
            fields += [(ORD_TYPE, ORD_TYPE_LIMIT), (PRICE, plain(self.price))]
        fields += [(LEAVES_QTY, "0"), (CUM_QTY, "0"), (AVG_PX, "0"), (TRANSACT_TIME, utc_timestamp(now)),
                   (ORD_REJ_REASON, str(self.reason)), (TEXT, self.text)]
        return OmsMessage(MSG_EXECUTION_REPORT, fields)


@dataclass(frozen=True, slots=True)
class CancelRefusal:
    """OrderCancelReject (35=9): a cancel or replace the gateway refuses; the order is as it was."""

    cl_ord_id: str
    orig_cl_ord_id: str
    order_id: str
    ord_status: str  # the order's OrdStatus; 8 for an order the client does not have
    response_to: CxlRejResponseTo
    tag: int
    reason: int  # CxlRejReason (102)
    text: str

    def message(self, exec_ids: ExecIds, now: datetime) -> OmsMessage:
        return OmsMessage(MSG_ORDER_CANCEL_REJECT, [
            (ORDER_ID, self.order_id or NONE_ID), (CL_ORD_ID, self.cl_ord_id), (ORIG_CL_ORD_ID, self.orig_cl_ord_id),
            (ORD_STATUS, self.ord_status), (CXL_REJ_RESPONSE_TO, self.response_to.value),
            (CXL_REJ_REASON, str(self.reason)), (TEXT, self.text),
        ])


@dataclass(frozen=True, slots=True)
class MassCancelRefusal:
    """OrderMassCancelReport (35=r) with MassCancelResponse 0: the mass cancel is refused."""

    cl_ord_id: str
    request_type: str
    tag: int
    reason: int  # MassCancelRejectReason (532)
    text: str

    def message(self, exec_ids: ExecIds, now: datetime) -> OmsMessage:
        return OmsMessage(MSG_ORDER_MASS_CANCEL_REPORT, [
            (CL_ORD_ID, self.cl_ord_id), (ORDER_ID, NONE_ID), (MASS_CANCEL_REQUEST_TYPE, self.request_type),
            (MASS_CANCEL_RESPONSE, MASS_CANCEL_REJECTED), (MASS_CANCEL_REJECT_REASON, str(self.reason)),
            (TEXT, self.text),
        ])


Refusal = SessionRefusal | BusinessRefusal | OrderRefusal | CancelRefusal | MassCancelRefusal


# --- accepted requests ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MassCancel:
    """Cancel the client's own open orders (all, or those on ``ticker``): the book keys in ``orders``."""

    request_type: str  # MassCancelRequestType (530): 1 by Symbol, 7 all
    orders: tuple[str, ...]
    ticker: str | None = None


@dataclass(frozen=True, slots=True)
class StatusRequest:
    """OrderStatusRequest (H) of one order, or OrderMassStatusRequest (AF) of the client's open
    orders (all, or those on ``ticker``): answered from the book by ``status_reports``, never sent
    to Kalshi."""

    request_id: str  # OrdStatusReqID (790) or MassStatusReqID (584), echoed on every report
    mass: bool
    orders: tuple[str, ...]  # book keys: the order asked about (H), or the open orders covered (AF)
    cl_ord_id: str = ""  # H: the ClOrdID asked about, answered even when unknown
    ticker: str = ""
    side: str = ""


@dataclass(frozen=True, slots=True)
class Translated:
    """An OMS request the engine can act on, with the OMS's own ClOrdIDs to answer with."""

    request: NewOrder | CancelOrder | ReplaceOrder | MassCancel | StatusRequest
    cl_ord_id: str  # the OMS's ClOrdID (11)
    orig_cl_ord_id: str | None = None  # the OMS's OrigClOrdID (41) on F and G
    order_key: str | None = None  # the book's key of the order F and G change


def mass_cancel_report(cl_ord_id: str, mass_cancel: MassCancel) -> OmsMessage:
    """OrderMassCancelReport (35=r) accepting a mass cancel: how many orders it covers."""
    return OmsMessage(MSG_ORDER_MASS_CANCEL_REPORT, [
        (CL_ORD_ID, cl_ord_id), (ORDER_ID, NONE_ID), (MASS_CANCEL_REQUEST_TYPE, mass_cancel.request_type),
        (MASS_CANCEL_RESPONSE, mass_cancel.request_type), (TOTAL_AFFECTED_ORDERS, str(len(mass_cancel.orders))),
    ])


# --- inbound ----------------------------------------------------------------------------------------


class _Malformed(Exception):
    def __init__(self, tag: int, reason: int, text: str):
        super().__init__(text)
        self.tag, self.reason, self.text = tag, reason, text


class _Refused(Exception):
    def __init__(self, tag: int, reason: int, text: str):
        super().__init__(text)
        self.tag, self.reason, self.text = tag, reason, text


_NAMES = {CL_ORD_ID: "ClOrdID", ORIG_CL_ORD_ID: "OrigClOrdID", SIDE: "Side", SYMBOL: "Symbol", ORDER_QTY: "OrderQty",
          ORD_TYPE: "OrdType", PRICE: "Price", TIME_IN_FORCE: "TimeInForce", EXPIRE_TIME: "ExpireTime",
          EXEC_INST: "ExecInst", MASS_CANCEL_REQUEST_TYPE: "MassCancelRequestType", MSG_TYPE: "MsgType"}


def _name(tag: int) -> str:
    return f"{_NAMES.get(tag, 'tag')} ({tag})"


def _required(f: Mapping[int, str], tag: int) -> str:
    value = f.get(tag)
    if not value:
        raise _Malformed(tag, REQUIRED_TAG_MISSING, f"{_name(tag)} is missing")
    return value


def _number(f: Mapping[int, str], tag: int) -> Decimal:
    text = _required(f, tag)
    try:
        value = Decimal(text)
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite():
        raise _Malformed(tag, INCORRECT_DATA_FORMAT, f"{_name(tag)} {text!r} is not a number")
    return value


def _maybe_number(text: str | None) -> Decimal | None:
    try:
        value = Decimal(text) if text else None
    except InvalidOperation:
        return None
    return value if value is not None and value.is_finite() else None


def _side(f: Mapping[int, str]) -> str:
    side = _required(f, SIDE)
    if side not in FIX44_SIDES:
        raise _Malformed(SIDE, VALUE_INCORRECT, f"Side (54) {side!r} is not a FIX 4.4 side")
    if side not in (SIDE_BUY_YES, SIDE_SELL_YES):
        raise _Refused(SIDE, UNSUPPORTED_CHARACTERISTIC,
                       f"Side (54) {side} is not supported: 1 buys YES, 2 sells YES (which buys NO)")
    return side


def _ticker(f: Mapping[int, str], entitlements: Entitlements) -> str:
    ticker = _required(f, SYMBOL)
    if not TICKER.match(ticker):
        raise _Refused(SYMBOL, UNKNOWN_SYMBOL, f"Symbol (55) {ticker!r} is not a Kalshi market ticker")
    if not entitlements.ticker_allowed(ticker):
        raise _Refused(SYMBOL, BROKER_OPTION, f"Symbol (55) {ticker} is not a market this client may trade")
    return ticker


def _size_and_price(f: Mapping[int, str], side: str, entitlements: Entitlements, tick: Decimal) -> tuple[Decimal, Decimal]:
    """OrderQty (38) and the limit Price (44), checked against the grid and the entitlements."""
    quantity = _number(f, ORDER_QTY)
    ord_type = _required(f, ORD_TYPE)
    if ord_type != ORD_TYPE_LIMIT:
        raise _Refused(ORD_TYPE, UNSUPPORTED_CHARACTERISTIC, f"OrdType (40) {ord_type}: Kalshi takes limit orders (40=2) only")
    price = _number(f, PRICE)
    if quantity <= 0 or quantity != quantity.quantize(QTY_STEP):
        raise _Refused(ORDER_QTY, INCORRECT_QUANTITY, f"OrderQty (38) {quantity} must be a positive multiple of 0.01")
    if not Decimal(0) < price < ONE:
        raise _Refused(PRICE, OTHER, f"Price (44) {price} must be between 0 and 1 dollar of YES (exclusive)")
    if price % tick:
        raise _Refused(PRICE, OTHER, f"Price (44) {price} is off the market's ${plain(tick)} grid")
    if quantity > entitlements.max_quantity:
        raise _Refused(ORDER_QTY, EXCEEDS_LIMIT,
                       f"OrderQty (38) {quantity} is above the {entitlements.max_quantity} this client may send per order")
    notional = quantity * (price if side == SIDE_BUY_YES else ONE - price)
    if notional > entitlements.max_notional:
        raise _Refused(ORDER_QTY, EXCEEDS_LIMIT,
                       f"OrderQty (38) {quantity} at Price (44) {price} costs ${plain(notional)}, above the "
                       f"${plain(entitlements.max_notional)} this client may send per order")
    return quantity, price


def _invalid(exc: InvalidOrderError) -> _Refused:
    """The engine's own validation refused what the gateway let through: name the tag if we can."""
    first = exc.problems[0] if exc.problems else ""
    tag = _REQUEST_FIELD_TAG.get(first.partition(":")[0], 0)
    return _Refused(tag, OTHER, "; ".join(exc.problems) or str(exc))


def _new_order(f: Mapping[int, str], entitlements: Entitlements, orders: Mapping[str, Order],
               new_id: Callable[[], str], subaccount: int | None, tick: Decimal) -> Translated:
    cl_ord_id = _required(f, CL_ORD_ID)
    side = _side(f)
    ticker = _ticker(f, entitlements)
    if cl_ord_id in orders:
        raise _Refused(CL_ORD_ID, DUPLICATE_ORDER, f"ClOrdID (11) {cl_ord_id} was used before by this client")
    quantity, price = _size_and_price(f, side, entitlements, tick)
    tif_text = f.get(TIME_IN_FORCE) or TimeInForce.DAY.value
    tif = _TIME_IN_FORCE.get(tif_text)
    if tif is None:
        raise _Refused(TIME_IN_FORCE, UNSUPPORTED_CHARACTERISTIC, f"TimeInForce (59) {tif_text} is not supported")
    expire_time = None
    if tif is TimeInForce.GTD:
        expire_time = parse_utc_timestamp(_required(f, EXPIRE_TIME))
        if expire_time is None:
            raise _Malformed(EXPIRE_TIME, INCORRECT_DATA_FORMAT, f"ExpireTime (126) {f[EXPIRE_TIME]!r} is not a UTCTimestamp")
    exec_inst = set((f.get(EXEC_INST) or "").split())
    if exec_inst - {EXEC_INST_POST_ONLY}:
        raise _Refused(EXEC_INST, UNSUPPORTED_CHARACTERISTIC,
                       f"ExecInst (18) {f[EXEC_INST]}: only 6 (post only) is supported")
    try:
        request = NewOrder.create(
            ticker=ticker, action=Action.BUY if side == SIDE_BUY_YES else Action.SELL, contract=Contract.YES,
            quantity=quantity, price=price, time_in_force=tif, expire_time=expire_time,
            post_only=EXEC_INST_POST_ONLY in exec_inst, subaccount=subaccount, client_order_id=new_id(),
            order_group_id=f.get(SECONDARY_CL_ORD_ID) or None,  # joins a Kalshi order group (its kill switch), as on Kalshi
        )
    except InvalidOrderError as exc:
        raise _invalid(exc) from None
    return Translated(request, cl_ord_id)


def _order_to_change(f: Mapping[int, str], orders: Mapping[str, Order]) -> tuple[str, str, Order]:
    cl_ord_id = _required(f, CL_ORD_ID)
    orig = _required(f, ORIG_CL_ORD_ID)
    order = orders.get(orig)
    if order is None:
        raise _Refused(ORIG_CL_ORD_ID, UNKNOWN_ORDER, f"OrigClOrdID (41) {orig} is not an order of this client")
    if cl_ord_id in orders:
        raise _Refused(CL_ORD_ID, DUPLICATE_CL_ORD_ID, f"ClOrdID (11) {cl_ord_id} was used before by this client")
    if order.status.terminal:
        raise _Refused(ORIG_CL_ORD_ID, TOO_LATE_TO_CANCEL, f"order {orig} is already {order.status.value}")
    if order.pending is not None:
        raise _Refused(ORIG_CL_ORD_ID, ALREADY_PENDING, f"order {orig} already has a cancel or replace in flight")
    ticker = f.get(SYMBOL)
    if ticker and ticker != order.ticker:
        raise _Refused(SYMBOL, UNKNOWN_ORDER, f"Symbol (55) {ticker} is not the order's {order.ticker}")
    side = f.get(SIDE)
    if side and side != order.side.value:
        raise _Refused(SIDE, UNKNOWN_ORDER, f"Side (54) {side} is not the order's {order.side.value}")
    return cl_ord_id, orig, order


def _cancel(f: Mapping[int, str], orders: Mapping[str, Order], new_id: Callable[[], str]) -> Translated:
    cl_ord_id, orig, order = _order_to_change(f, orders)
    return Translated(CancelOrder.create(order=order.key, client_order_id=new_id()), cl_ord_id, orig, order.key)


def _replace(f: Mapping[int, str], entitlements: Entitlements, orders: Mapping[str, Order],
             new_id: Callable[[], str], tick: Decimal) -> Translated:
    cl_ord_id, orig, order = _order_to_change(f, orders)
    try:
        quantity, yes_price = _size_and_price(f, order.side.value, entitlements, tick)
    except _Refused as exc:  # its codes are OrdRejReason's; on a 35=9 they are all "Other"
        raise _Refused(exc.tag, OTHER, exc.text) from None
    if quantity < order.cum_qty:
        raise _Refused(ORDER_QTY, OTHER, f"OrderQty (38) {quantity} is below the {order.cum_qty} already filled")
    try:
        request = ReplaceOrder.create(order=order.key, quantity=quantity,
                                      price=contract_price(yes_price, order.contract), client_order_id=new_id())
    except InvalidOrderError as exc:
        raise _invalid(exc) from None
    return Translated(request, cl_ord_id, orig, order.key)


def _mass_cancel(f: Mapping[int, str], entitlements: Entitlements, orders: Mapping[str, Order]) -> Translated:
    cl_ord_id = _required(f, CL_ORD_ID)
    kind = _required(f, MASS_CANCEL_REQUEST_TYPE)
    if kind not in FIX44_MASS_CANCEL_TYPES:
        raise _Malformed(MASS_CANCEL_REQUEST_TYPE, VALUE_INCORRECT, f"MassCancelRequestType (530) {kind!r} is not a FIX 4.4 value")
    if not entitlements.may_mass_cancel:
        raise _Refused(MSG_TYPE, OTHER, "this client is not entitled to mass-cancel")
    if kind not in (MASS_CANCEL_BY_SYMBOL, MASS_CANCEL_ALL):
        raise _Refused(MASS_CANCEL_REQUEST_TYPE, MASS_CANCEL_NOT_SUPPORTED,
                       f"MassCancelRequestType (530) {kind}: only 1 (by Symbol) and 7 (all orders) are supported")
    ticker = _required(f, SYMBOL) if kind == MASS_CANCEL_BY_SYMBOL else None
    keys = dict.fromkeys(o.key for o in orders.values()
                         if not o.status.terminal and (ticker is None or o.ticker == ticker))
    return Translated(MassCancel(kind, tuple(keys), ticker), cl_ord_id)


def _status(f: Mapping[int, str], orders: Mapping[str, Order]) -> Translated:
    cl_ord_id = _required(f, CL_ORD_ID)
    order = orders.get(cl_ord_id)
    request = StatusRequest(f.get(ORD_STATUS_REQ_ID, ""), False, (order.key,) if order is not None else (),
                            cl_ord_id, f.get(SYMBOL, ""), f.get(SIDE, ""))
    return Translated(request, cl_ord_id)


def _mass_status(f: Mapping[int, str], orders: Mapping[str, Order]) -> Translated:
    request_id = _required(f, MASS_STATUS_REQ_ID)
    kind = _required(f, MASS_STATUS_REQ_TYPE)
    if kind not in (MASS_STATUS_BY_SYMBOL, MASS_STATUS_ALL):
        raise _Malformed(MASS_STATUS_REQ_TYPE, VALUE_INCORRECT,
                         f"MassStatusReqType (585) {kind}: only 1 (by Symbol) and 7 (all orders) are served")
    ticker = _required(f, SYMBOL) if kind == MASS_STATUS_BY_SYMBOL else None
    keys = sorted({o.key for o in orders.values()
                   if not o.status.terminal and (ticker is None or o.ticker == ticker)})
    return Translated(StatusRequest(request_id, True, tuple(keys), ticker=ticker or ""), "")


def status_reports(request: StatusRequest, book: Mapping[str, Order], chains: Mapping[str, OmsChain],
                   exec_ids: ExecIds, now: datetime) -> list[OmsMessage]:
    """The answer to a status request, from the book (``book``: key -> order; ``chains``: key -> the
    OMS's chain). Each order is one ExecutionReport with ExecType I (Order Status) and its current
    state; an unknown order (H) is answered with OrdStatus 8 and OrdRejReason 5; a mass status with
    no open orders is one such report with TotNumReports 0."""
    echo = [(MASS_STATUS_REQ_ID if request.mass else ORD_STATUS_REQ_ID, request.request_id)] if request.request_id else []
    known = [book[k] for k in request.orders if k in book]
    if not known:
        fields: Fields = [
            (ORDER_ID, NONE_ID), (CL_ORD_ID, request.cl_ord_id or NONE_ID), (EXEC_ID, exec_ids()),
            (EXEC_TYPE, EXEC_TYPE_ORDER_STATUS), (ORD_STATUS, _ORD_STATUS[Status.REJECTED]),
            (SYMBOL, request.ticker or NO_SYMBOL), (SIDE, request.side if request.side in FIX44_SIDES else SIDE_BUY_YES),
            (LEAVES_QTY, "0"), (CUM_QTY, "0"), (AVG_PX, "0"), (TRANSACT_TIME, utc_timestamp(now)),
        ]
        if request.mass:
            fields += [(TOT_NUM_REPORTS, "0"), (LAST_RPT_REQUESTED, "Y")]
        else:
            fields += [(ORD_REJ_REASON, str(UNKNOWN_ORDER_REJ_REASON)),
                       (TEXT, f"ClOrdID (11) {request.cl_ord_id} is not an order of this client")]
        return [OmsMessage(MSG_EXECUTION_REPORT, fields + echo)]
    out = []
    for i, order in enumerate(known, 1):
        chain = chains.get(order.key) or OmsChain(order.key)
        extra = list(echo)
        if request.mass:
            extra += [(TOT_NUM_REPORTS, str(len(known)))] + ([(LAST_RPT_REQUESTED, "Y")] if i == len(known) else [])
        out.append(_report(order, exec_ids, now, chain=chain, exec_type=EXEC_TYPE_ORDER_STATUS,
                           ord_status=_ORD_STATUS[order.status], cl_ord_id=chain.cl_ord_id, extra=extra))
    return out


def _seq_num(f: Mapping[int, str]) -> int:
    text = f.get(MSG_SEQ_NUM, "")
    return int(text) if text.isdigit() else 0


def _repeated(fields: Iterable[tuple[int, str]] | Mapping[int, str]) -> int | None:
    """The first tag of the body that appears twice (the gateway takes no repeating groups)."""
    if isinstance(fields, Mapping):
        return None
    seen: set[int] = set()
    for tag, _ in fields:
        if tag in seen:
            return tag
        seen.add(tag)
    return None


def translate(
    fields: Iterable[tuple[int, str]] | Mapping[int, str],
    entitlements: Entitlements,
    orders: Mapping[str, Order],
    *,
    tick: Decimal = CENT,
    new_id: Callable[[], str] = new_cl_ord_id,
    subaccount: int | None = None,
) -> Translated | Refusal:
    """One message from an OMS client: an engine request, or a refusal naming the tag and the reason.

    ``orders`` maps every ClOrdID this client has used (each of an order's chain) to the book's
    snapshot of the order: it decides duplicates, what F and G change, and what a mass cancel
    covers (the client's own orders only). ``tick`` is the price grid (whole cents are on every
    Kalshi market's grid); ``new_id`` makes the ClOrdIDs sent to Kalshi; ``subaccount`` is the
    client's AllocAccount (79) from the session map."""
    fields = list(fields.items()) if isinstance(fields, Mapping) else list(fields)
    f = first_values(fields)
    seq, msg_type = _seq_num(f), f.get(MSG_TYPE, "")
    if not msg_type:
        return SessionRefusal(seq, "", MSG_TYPE, REQUIRED_TAG_MISSING, "MsgType (35) is missing")
    if msg_type not in SUPPORTED:
        return BusinessRefusal(seq, msg_type, f.get(CL_ORD_ID, ""), UNSUPPORTED_MESSAGE_TYPE,
                               f"MsgType (35) {msg_type} is not supported by this gateway")
    if msg_type not in entitlements.msg_types:
        return BusinessRefusal(seq, msg_type, f.get(CL_ORD_ID, ""), NOT_AUTHORIZED,
                               f"MsgType (35) {msg_type}: this client is not entitled to send it")
    repeated = _repeated(fields)
    if repeated is not None:
        return SessionRefusal(seq, msg_type, repeated, TAG_APPEARS_MORE_THAN_ONCE,
                              f"{_name(repeated)} appears more than once")
    try:
        if msg_type == MSG_NEW_ORDER_SINGLE:
            return _new_order(f, entitlements, orders, new_id, subaccount, tick)
        if msg_type == MSG_ORDER_CANCEL_REQUEST:
            return _cancel(f, orders, new_id)
        if msg_type == MSG_ORDER_CANCEL_REPLACE_REQUEST:
            return _replace(f, entitlements, orders, new_id, tick)
        if msg_type == MSG_ORDER_STATUS_REQUEST:
            return _status(f, orders)
        if msg_type == MSG_ORDER_MASS_STATUS_REQUEST:
            return _mass_status(f, orders)
        return _mass_cancel(f, entitlements, orders)
    except _Malformed as exc:
        return SessionRefusal(seq, msg_type, exc.tag, exc.reason, exc.text)
    except _Refused as exc:
        return _refusal(msg_type, f, orders, exc)


def _refusal(msg_type: str, f: Mapping[int, str], orders: Mapping[str, Order], exc: _Refused) -> Refusal:
    if msg_type == MSG_NEW_ORDER_SINGLE:
        return OrderRefusal(f.get(CL_ORD_ID, ""), f.get(SYMBOL, ""), f.get(SIDE, SIDE_BUY_YES),
                            _maybe_number(f.get(ORDER_QTY)), _maybe_number(f.get(PRICE)), exc.tag, exc.reason, exc.text)
    if msg_type in (MSG_ORDER_CANCEL_REQUEST, MSG_ORDER_CANCEL_REPLACE_REQUEST):
        orig = f.get(ORIG_CL_ORD_ID, "")
        order = orders.get(orig)
        response_to = CxlRejResponseTo.CANCEL if msg_type == MSG_ORDER_CANCEL_REQUEST else CxlRejResponseTo.REPLACE
        return CancelRefusal(
            f.get(CL_ORD_ID, ""), orig, (order.order_id if order is not None else None) or NONE_ID,
            _ORD_STATUS[order.status] if order is not None else _ORD_STATUS[Status.REJECTED],
            response_to, exc.tag, exc.reason, exc.text,
        )
    kind = f.get(MASS_CANCEL_REQUEST_TYPE, "")
    return MassCancelRefusal(f.get(CL_ORD_ID, ""), kind if kind in FIX44_MASS_CANCEL_TYPES else MASS_CANCEL_ALL,
                             exc.tag, exc.reason, exc.text)


# --- outbound ---------------------------------------------------------------------------------------


def _avg_px(order: Order, chain: OmsChain, cum: Decimal) -> str:
    if not cum:
        return "0"
    if order.avg_yes_price is not None:
        return plain(order.avg_yes_price)
    return plain((chain.traded / cum).quantize(Decimal("0.0001")))


def _report(order: Order, exec_ids: ExecIds, now: datetime, *, exec_type: str, ord_status: str, cl_ord_id: str,
            orig_cl_ord_id: str | None = None, cum_qty: Decimal | None = None, leaves_qty: Decimal | None = None,
            extra: Iterable[tuple[int, str]] = (), chain: OmsChain | None = None) -> OmsMessage:
    cum = order.cum_qty if cum_qty is None else cum_qty
    leaves = order.leaves_qty if leaves_qty is None else leaves_qty
    fields: Fields = [(ORDER_ID, order.order_id or NONE_ID), (CL_ORD_ID, cl_ord_id)]
    if orig_cl_ord_id is not None:
        fields.append((ORIG_CL_ORD_ID, orig_cl_ord_id))
    fields += [
        (EXEC_ID, exec_ids()), (EXEC_TYPE, exec_type), (ORD_STATUS, ord_status),
        (SYMBOL, order.ticker), (SIDE, order.side.value),
        (ORDER_QTY, format_quantity(chain.quantity(order) if chain is not None else order.quantity)),
        (ORD_TYPE, ORD_TYPE_LIMIT), (PRICE, plain(order.yes_price)),
        (LEAVES_QTY, format_quantity(leaves)), (CUM_QTY, format_quantity(cum)),
        (AVG_PX, _avg_px(order, chain or OmsChain(cl_ord_id), cum)),
        (TRANSACT_TIME, utc_timestamp(now)),
        *extra,
    ]
    return OmsMessage(MSG_EXECUTION_REPORT, fields)


def _reason_fields(reason: Reason | None, code_tag: int, allowed: frozenset[int]) -> Fields:
    """The reject code FIX 4.4 knows (else 99, Other) and Kalshi's text, as it said it."""
    if reason is None:
        return [(code_tag, str(OTHER))]
    number = reason.number if reason.number in allowed else OTHER
    return [(code_tag, str(number))] + ([(TEXT, reason.text)] if reason.text else [])


def _ack(order: Order, chain: OmsChain, exec_ids: ExecIds, now: datetime) -> OmsMessage:
    """The New an OMS expects before anything else happens to its order."""
    return _report(order, exec_ids, now, chain=chain, exec_type="0", ord_status="0", cl_ord_id=chain.cl_ord_id,
                   cum_qty=Decimal(0), leaves_qty=chain.quantity(order))


def reports(event: OrderEvent, chain: OmsChain, exec_ids: ExecIds, now: datetime) -> tuple[list[OmsMessage], OmsChain]:
    """What the OMS that owns the order is told of ``event``, and its chain afterwards.

    An event it need not hear of (a second New, an outcome still unknown) gives no message."""
    out, chain = _reports(event, chain, exec_ids, now)
    return out, _told(out, chain)


def _told(out: list[OmsMessage], chain: OmsChain) -> OmsChain:
    """The chain with the CumQty of the last ExecutionReport in ``out``."""
    for message in reversed(out):
        if message.msg_type == MSG_EXECUTION_REPORT:
            cum = next(v for t, v in message.fields if t == CUM_QTY)
            return evolve(chain, cum_qty=Decimal(cum))
    return chain


def _reports(event: OrderEvent, chain: OmsChain, exec_ids: ExecIds, now: datetime) -> tuple[list[OmsMessage], OmsChain]:
    order = event.order
    status = _ORD_STATUS[order.status]
    out: list[OmsMessage] = []
    if isinstance(event, OrderPending):
        if order.status is Status.PENDING_NEW:
            out.append(_report(order, exec_ids, now, chain=chain, exec_type="A", ord_status="A", cl_ord_id=chain.cl_ord_id))
        elif chain.pending is not None and order.status in (Status.PENDING_CANCEL, Status.PENDING_REPLACE):
            out.append(_report(order, exec_ids, now, chain=chain, exec_type=status, ord_status=status, cl_ord_id=chain.pending,
                               orig_cl_ord_id=chain.cl_ord_id))
        return out, chain
    if isinstance(event, OrderAccepted):
        if chain.acknowledged or chain.done:
            return out, chain
        out.append(_report(order, exec_ids, now, chain=chain, exec_type="0", ord_status=status, cl_ord_id=chain.cl_ord_id))
        return out, evolve(chain, acknowledged=True)
    if isinstance(event, OrderFilled):
        fill = event.fill
        chain = evolve(chain, traded=chain.traded + fill.quantity * fill.yes_price)
        if not chain.acknowledged and not chain.done:
            out.append(_ack(order, chain, exec_ids, now))  # Kalshi folded New and Trade into one report
        trade = [(LAST_QTY, format_quantity(fill.quantity)), (LAST_PX, plain(fill.yes_price)),
                 (COMMISSION, plain(fill.fee)), (COMM_TYPE, COMM_TYPE_ABSOLUTE)]
        ends = order.status in (Status.CANCELED, Status.EXPIRED) and not chain.done
        if ends:
            # the fill that ended an IOC (or FOK): first the Trade on a working order, then its end
            working = "2" if order.cum_qty >= chain.quantity(order) else "1"
            out.append(_report(order, exec_ids, now, chain=chain, exec_type="F", ord_status=working, cl_ord_id=chain.cl_ord_id,
                               leaves_qty=max(chain.quantity(order) - order.cum_qty, Decimal(0)), extra=trade))
            end = _ORD_STATUS[order.status]
            if working == "1":
                out.append(_report(order, exec_ids, now, chain=chain, exec_type=end, ord_status=end, cl_ord_id=chain.cl_ord_id,
                                   leaves_qty=Decimal(0), extra=_text(order.reason)))
        else:
            out.append(_report(order, exec_ids, now, chain=chain, exec_type="F", ord_status=status, cl_ord_id=chain.cl_ord_id,
                               extra=trade))
        done = chain.done or order.status.terminal
        if done and order.status is Status.FILLED:
            chain = evolve(chain, pending=None, pending_type=None)
        return out, evolve(chain, acknowledged=True, done=done)
    if isinstance(event, (OrderCanceled, OrderExpired)):
        if chain.done:
            return out, chain
        by_request = isinstance(event, OrderCanceled) and chain.pending is not None and chain.pending_type == MSG_ORDER_CANCEL_REQUEST
        cl_ord_id = chain.pending if by_request and chain.pending is not None else chain.cl_ord_id
        out.append(_report(order, exec_ids, now, chain=chain, exec_type=status, ord_status=status, cl_ord_id=cl_ord_id,
                           orig_cl_ord_id=chain.cl_ord_id if by_request else None, leaves_qty=Decimal(0),
                           extra=_text(order.reason)))
        return out, evolve(chain, cl_ord_id=cl_ord_id, pending=None, pending_type=None, acknowledged=True, done=True)
    if isinstance(event, OrderReplaced):
        new_id = chain.pending or chain.cl_ord_id
        chain = evolve(chain, order_qty=order.quantity)  # the replace's new total quantity
        out.append(_report(order, exec_ids, now, chain=chain, exec_type="5", ord_status=status, cl_ord_id=new_id,
                           orig_cl_ord_id=chain.cl_ord_id))
        return out, evolve(chain, cl_ord_id=new_id, pending=None, pending_type=None, acknowledged=True,
                            done=order.status.terminal)
    if isinstance(event, OrderRejected):
        if order.status is Status.REJECTED and not chain.done:
            out.append(_report(order, exec_ids, now, chain=chain, exec_type="8", ord_status="8", cl_ord_id=chain.cl_ord_id,
                               cum_qty=Decimal(0), leaves_qty=Decimal(0),
                               extra=_reason_fields(order.reason, ORD_REJ_REASON, FIX44_ORD_REJ_REASONS)))
            return out, evolve(chain, done=True)
        if order.status is Status.NEW and not chain.acknowledged:  # a retry found it on the exchange
            out.append(_report(order, exec_ids, now, chain=chain, exec_type="0", ord_status="0", cl_ord_id=chain.cl_ord_id))
            return out, evolve(chain, acknowledged=True)
        return out, chain  # outcome unknown: the order may live; its next report tells
    if isinstance(event, CancelRejected):
        reject = event.reject
        out.append(OmsMessage(MSG_ORDER_CANCEL_REJECT, [
            (ORDER_ID, order.order_id or NONE_ID), (CL_ORD_ID, chain.pending or chain.cl_ord_id),
            (ORIG_CL_ORD_ID, chain.cl_ord_id), (ORD_STATUS, status),
            (CXL_REJ_RESPONSE_TO, reject.response_to.value),
            *_reason_fields(reject.reason, CXL_REJ_REASON, FIX44_CXL_REJ_REASONS),
        ]))
        return out, evolve(chain, pending=None, pending_type=None)
    return out, chain


def _text(reason: Reason | None) -> Fields:
    return [(TEXT, reason.text)] if reason is not None and reason.text else []


def catch_up(order: Order, chain: OmsChain, engine_pending: str | None, exec_ids: ExecIds,
             now: datetime) -> tuple[list[OmsMessage], OmsChain]:
    """After a restart: what the OMS must still be told of ``order`` (the book's snapshot now),
    given what it was told (``chain``). Fills missed in between are told as one Trade of their
    sum (LastPx their average); ``engine_pending`` is the engine's ClOrdID of the OMS's cancel or
    replace in flight, to tell whether it was done or refused."""
    if chain.done:
        return [], chain
    out: list[OmsMessage] = []
    status = _ORD_STATUS[order.status]
    if order.status is Status.REJECTED:
        out.append(_report(order, exec_ids, now, chain=chain, exec_type="8", ord_status="8", cl_ord_id=chain.cl_ord_id,
                           cum_qty=Decimal(0), leaves_qty=Decimal(0),
                           extra=_reason_fields(order.reason, ORD_REJ_REASON, FIX44_ORD_REJ_REASONS)))
        return out, _told(out, evolve(chain, done=True))
    if order.order_id is None and order.status is Status.PENDING_NEW:
        return out, chain  # no news from the exchange yet
    if not chain.acknowledged:
        out.append(_ack(order, chain, exec_ids, now))
        chain = evolve(chain, acknowledged=True)
    missed = order.cum_qty - chain.cum_qty
    if missed > 0:
        total = order.avg_yes_price * order.cum_qty if order.avg_yes_price is not None else None
        last_px = (total - chain.traded) / missed if total is not None else order.yes_price
        last_px = last_px.quantize(Decimal("0.0001")) if last_px != last_px.to_integral_value() else last_px
        chain = evolve(chain, traded=chain.traded + missed * last_px)
        working = "2" if order.cum_qty >= chain.quantity(order) else "1"
        ord_status = status if order.status in (Status.PENDING_CANCEL, Status.PENDING_REPLACE) else working
        out.append(_report(order, exec_ids, now, chain=chain, exec_type="F", ord_status=ord_status,
                           cl_ord_id=chain.cl_ord_id, cum_qty=order.cum_qty,
                           leaves_qty=Decimal(0) if working == "2" else max(chain.quantity(order) - order.cum_qty, Decimal(0)),
                           extra=[(LAST_QTY, format_quantity(missed)), (LAST_PX, plain(last_px))]))
    if chain.pending is not None and order.pending is None:
        by_request = chain.pending_type == MSG_ORDER_CANCEL_REQUEST and order.status is Status.CANCELED
        replaced = chain.pending_type == MSG_ORDER_CANCEL_REPLACE_REQUEST and order.cl_ord_id == engine_pending
        if by_request:
            out.append(_report(order, exec_ids, now, chain=chain, exec_type="4", ord_status="4", cl_ord_id=chain.pending,
                               orig_cl_ord_id=chain.cl_ord_id, leaves_qty=Decimal(0), extra=_text(order.reason)))
            return out, _told(out, evolve(chain, cl_ord_id=chain.pending, pending=None, pending_type=None, done=True))
        if replaced:
            chain = evolve(chain, order_qty=order.quantity)
            out.append(_report(order, exec_ids, now, chain=chain, exec_type="5", ord_status=status, cl_ord_id=chain.pending,
                               orig_cl_ord_id=chain.cl_ord_id))
            chain = evolve(chain, cl_ord_id=chain.pending, pending=None, pending_type=None)
        elif order.status not in (Status.FILLED,):
            response_to = CxlRejResponseTo.CANCEL if chain.pending_type == MSG_ORDER_CANCEL_REQUEST else CxlRejResponseTo.REPLACE
            out.append(OmsMessage(MSG_ORDER_CANCEL_REJECT, [
                (ORDER_ID, order.order_id or NONE_ID), (CL_ORD_ID, chain.pending), (ORIG_CL_ORD_ID, chain.cl_ord_id),
                (ORD_STATUS, status), (CXL_REJ_RESPONSE_TO, response_to.value), (CXL_REJ_REASON, str(TOO_LATE_TO_CANCEL)
                                                                                  if order.status.terminal else str(OTHER)),
            ]))
            chain = evolve(chain, pending=None, pending_type=None)
    if order.status in (Status.CANCELED, Status.EXPIRED):
        out.append(_report(order, exec_ids, now, chain=chain, exec_type=status, ord_status=status, cl_ord_id=chain.cl_ord_id,
                           leaves_qty=Decimal(0), extra=_text(order.reason)))
        chain = evolve(chain, done=True)
    elif order.status is Status.FILLED:
        chain = evolve(chain, done=True, pending=None, pending_type=None)
    return out, _told(out, chain)
