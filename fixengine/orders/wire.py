"""Orders on the wire: requests to FIX fields, and FIX reports to typed values.

Both directions are pure functions over ``(tag, value)`` lists, the same in both dialects (the
session adds the header, BeginString included). The QuickFIX callback hands over a received message
as its raw string and parsing happens in the asyncio loop, keeping the callback short.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from fixengine.fix.timestamps import utc_timestamp
from fixengine.fix.tags import (
    AGGRESSOR_INDICATOR,
    ALLOC_ACCOUNT,
    AVG_PX,
    CANCEL_ORDER_ON_PAUSE,
    CL_ORD_ID,
    COLLATERAL_AMOUNT_CHANGE,
    COLLATERAL_AMOUNT_TYPE,
    CUM_QTY,
    CXL_REJ_REASON,
    CXL_REJ_RESPONSE_TO,
    EX_DESTINATION,
    EXEC_ID,
    EXEC_INST,
    EXEC_TYPE,
    EXPIRE_TIME,
    LAST_PX,
    LAST_QTY,
    LEAVES_QTY,
    LONG_QTY,
    MASS_CANCEL_REQUEST_TYPE,
    MAX_EXECUTION_COST,
    MISC_FEE_AMT,
    ORD_REJ_REASON,
    ORD_STATUS,
    ORD_TYPE,
    ORDER_ID,
    ORDER_QTY,
    ORIG_CL_ORD_ID,
    POSS_DUP_FLAG,
    PRICE,
    SECONDARY_CL_ORD_ID,
    SELF_TRADE_PREVENTION_TYPE,
    SHORT_QTY,
    SIDE,
    SYMBOL,
    TEXT,
    TIME_IN_FORCE,
    TRANSACT_TIME,
    TRD_MATCH_ID,
)
from fixengine.orders.reports import (
    CancelReject,
    CxlRejResponseTo,
    ExecType,
    ExecutionReport,
    Fill,
    OrdStatus,
    Reason,
)
from fixengine.orders.requests import NewOrder, TimeInForce
from fixengine.kalshi.prices import PriceError, WireSide, format_price, format_quantity, parse_decimal, parse_price

Fields = list[tuple[int, str]]  # (tag, value) in wire order; the simulator's codec uses it too

ORD_TYPE_LIMIT = "2"
EXEC_INST_POST_ONLY = "6"
MASS_CANCEL_FOR_SESSION = "6"


class ReportError(ValueError):
    """A report we cannot read (a required field missing or malformed); the message says which."""


def new_order_fields(order: NewOrder, *, use_dollars: bool, now: datetime) -> Fields:
    """NewOrderSingle (35=D) body. Raises ``PriceError`` if the price does not fit the session's units."""
    quote = order.yes_quote
    fields: Fields = [
        (CL_ORD_ID, order.client_order_id),
        (SYMBOL, order.ticker),
        (SIDE, quote.side.value),
        (TRANSACT_TIME, utc_timestamp(now)),
        (ORDER_QTY, format_quantity(order.quantity)),
        (ORD_TYPE, ORD_TYPE_LIMIT),
        (PRICE, format_price(quote.yes_price, use_dollars)),
        (TIME_IN_FORCE, order.time_in_force.value),
    ]
    if order.expire_time is not None:
        fields.append((EXPIRE_TIME, utc_timestamp(order.expire_time)))
    if order.post_only:
        fields.append((EXEC_INST, EXEC_INST_POST_ONLY))
    if order.self_trade_prevention is not None:
        fields.append((SELF_TRADE_PREVENTION_TYPE, order.self_trade_prevention.value))
    if order.max_execution_cost is not None:
        fields.append((MAX_EXECUTION_COST, str(order.max_execution_cost)))
    if order.cancel_on_pause:
        fields.append((CANCEL_ORDER_ON_PAUSE, "Y"))
    if order.subaccount is not None:
        fields.append((ALLOC_ACCOUNT, str(order.subaccount)))
    if order.ex_destination is not None:
        fields.append((EX_DESTINATION, str(order.ex_destination)))
    if order.order_group_id is not None:
        fields.append((SECONDARY_CL_ORD_ID, order.order_group_id))
    return fields


@dataclass(frozen=True, slots=True)
class OrderRef:
    """What a cancel or replace must repeat about the order (Kalshi checks they match)."""

    cl_ord_id: str  # the order's current ClOrdID (41 on the request)
    order_id: str | None
    ticker: str
    side: WireSide
    quantity: Decimal
    yes_price: Decimal


def cancel_fields(ref: OrderRef, cl_ord_id: str, *, now: datetime) -> Fields:
    """OrderCancelRequest (35=F)."""
    fields: Fields = [(CL_ORD_ID, cl_ord_id), (ORIG_CL_ORD_ID, ref.cl_ord_id)]
    if ref.order_id:
        fields.append((ORDER_ID, ref.order_id))
    fields += [
        (SYMBOL, ref.ticker),
        (SIDE, ref.side.value),
        (TRANSACT_TIME, utc_timestamp(now)),
        (ORDER_QTY, format_quantity(ref.quantity)),
    ]
    return fields


def replace_fields(
    ref: OrderRef,
    cl_ord_id: str,
    *,
    quantity: Decimal | None,
    yes_price: Decimal | None,
    time_in_force: TimeInForce | None,
    expire_time: datetime | None,
    use_dollars: bool,
    now: datetime,
) -> Fields:
    """OrderCancelReplaceRequest (35=G): 38 is the new total; 44 only when the price changes;
    59/126 only when the expiry changes (omitting them keeps it, on Kalshi)."""
    fields: Fields = [(CL_ORD_ID, cl_ord_id), (ORIG_CL_ORD_ID, ref.cl_ord_id)]
    if ref.order_id:
        fields.append((ORDER_ID, ref.order_id))
    fields += [
        (SYMBOL, ref.ticker),
        (SIDE, ref.side.value),
        (TRANSACT_TIME, utc_timestamp(now)),
        (ORDER_QTY, format_quantity(quantity if quantity is not None else ref.quantity)),
        (ORD_TYPE, ORD_TYPE_LIMIT),
        (PRICE, format_price(yes_price if yes_price is not None else ref.yes_price, use_dollars)),
    ]
    if time_in_force is not None:
        fields.append((TIME_IN_FORCE, time_in_force.value))
        if expire_time is not None:
            fields.append((EXPIRE_TIME, utc_timestamp(expire_time)))
    return fields


def mass_cancel_fields(cl_ord_id: str, *, now: datetime) -> Fields:
    """OrderMassCancelRequest (35=q): Kalshi supports only "cancel for session" (530=6)."""
    return [
        (CL_ORD_ID, cl_ord_id),
        (MASS_CANCEL_REQUEST_TYPE, MASS_CANCEL_FOR_SESSION),
        (TRANSACT_TIME, utc_timestamp(now)),
    ]


# --- reading reports ----------------------------------------------------------------------------


def first_values(fields: Iterable[tuple[int, str]]) -> dict[int, str]:
    """Tag -> value, the first occurrence of each tag (group entries are read separately)."""
    out: dict[int, str] = {}
    for tag, value in fields:
        out.setdefault(tag, value)
    return out


def read_reason(f: Mapping[int, str], code_tag: int) -> Reason:
    """Text (58) and the numeric reason code in ``code_tag`` (OrdRejReason, CxlRejReason,
    BusinessRejectReason, MassCancelRejectReason): a code that is not a whole number is left out."""
    code = f.get(code_tag, "")
    return Reason.of(f.get(TEXT), int(code) if code.isdigit() else None)


def _required(f: Mapping[int, str], tag: int, name: str) -> str:
    value = f.get(tag)
    if value is None or value == "":
        raise ReportError(f"ExecutionReport without {name} ({tag})")
    return value


def _decimal(f: Mapping[int, str], tag: int, name: str) -> Decimal | None:
    value = f.get(tag)
    if value is None:
        return None
    try:
        return parse_decimal(value, f"{name} ({tag})")
    except PriceError as exc:
        raise ReportError(str(exc)) from None


def _price(f: Mapping[int, str], tag: int, use_dollars: bool) -> Decimal | None:
    value = f.get(tag)
    if value is None:
        return None
    try:
        return parse_price(value, use_dollars)
    except PriceError as exc:
        raise ReportError(f"{exc} in tag {tag}") from None


def _fees(fields: list[tuple[int, str]]) -> Decimal:
    """Sum of MiscFeeAmt (137) in the NoMiscFees group."""
    total = Decimal(0)
    for tag, value in fields:
        if tag == MISC_FEE_AMT:
            total += Decimal(value)
    return total


def _balance_change(fields: list[tuple[int, str]]) -> Decimal | None:
    """CollateralAmountChange (1704) of the entry whose type (1705) is BALANCE, if any."""
    amount = None
    for tag, value in fields:
        if tag == COLLATERAL_AMOUNT_CHANGE:
            amount = value
        elif tag == COLLATERAL_AMOUNT_TYPE and value == "BALANCE" and amount is not None:
            try:
                return Decimal(amount)
            except ArithmeticError:
                raise ReportError(f"CollateralAmountChange (1704) {amount!r} is not a number") from None
    return None


def _order_id(value: str) -> str:
    """OrderID (37), "" for none: a reject of an order the exchange never created says ``NONE``."""
    return "" if value == "NONE" else value


def parse_execution_report(fields: list[tuple[int, str]], *, use_dollars: bool, account: str | None = None) -> ExecutionReport:
    f = first_values(fields)
    try:
        exec_type = ExecType(_required(f, EXEC_TYPE, "ExecType"))
        ord_status = OrdStatus(_required(f, ORD_STATUS, "OrdStatus"))
        side = WireSide(_required(f, SIDE, "Side"))
    except ValueError as exc:
        raise ReportError(f"ExecutionReport with a value we do not know: {exc}") from None
    exec_id = _required(f, EXEC_ID, "ExecID")
    fill = None
    if exec_type is ExecType.TRADE:
        last_px, last_qty = _price(f, LAST_PX, use_dollars), _decimal(f, LAST_QTY, "LastQty")
        if last_px is None or last_qty is None:
            raise ReportError("Trade ExecutionReport without LastPx (31) or LastQty (32)")
        aggressor = f.get(AGGRESSOR_INDICATOR)
        fill = Fill(
            exec_id, f.get(TRD_MATCH_ID), last_px, last_qty, _fees(fields),
            None if aggressor is None else aggressor == "Y", _balance_change(fields),
        )
    reason = None
    if TEXT in f or ORD_REJ_REASON in f:
        reason = read_reason(f, ORD_REJ_REASON)
    cum = _decimal(f, CUM_QTY, "CumQty") or Decimal(0)
    leaves = _decimal(f, LEAVES_QTY, "LeavesQty") or Decimal(0)
    return ExecutionReport(
        exec_id=exec_id,
        exec_type=exec_type,
        ord_status=ord_status,
        order_id=_order_id(_required(f, ORDER_ID, "OrderID")),
        cl_ord_id=f.get(CL_ORD_ID, ""),
        orig_cl_ord_id=f.get(ORIG_CL_ORD_ID),
        ticker=_required(f, SYMBOL, "Symbol"),
        side=side,
        order_qty=_decimal(f, ORDER_QTY, "OrderQty") or cum + leaves,
        cum_qty=cum,
        leaves_qty=leaves,
        yes_price=_price(f, PRICE, use_dollars),
        avg_yes_price=_price(f, AVG_PX, use_dollars),
        fill=fill,
        long_qty=_decimal(f, LONG_QTY, "LongQty"),
        short_qty=_decimal(f, SHORT_QTY, "ShortQty"),
        reason=reason,
        poss_dup=f.get(POSS_DUP_FLAG) == "Y",
        account=account,
    )


def parse_cancel_reject(fields: list[tuple[int, str]]) -> CancelReject:
    f = first_values(fields)
    try:
        response_to = CxlRejResponseTo(_required(f, CXL_REJ_RESPONSE_TO, "CxlRejResponseTo"))
        status = OrdStatus(f[ORD_STATUS]) if f.get(ORD_STATUS) else None
    except ValueError as exc:
        raise ReportError(f"OrderCancelReject with a value we do not know: {exc}") from None
    return CancelReject(
        cl_ord_id=_required(f, CL_ORD_ID, "ClOrdID"),
        orig_cl_ord_id=f.get(ORIG_CL_ORD_ID),
        order_id=f.get(ORDER_ID),
        ord_status=status,
        response_to=response_to,
        reason=read_reason(f, CXL_REJ_REASON),
    )
