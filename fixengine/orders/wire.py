"""Orders on the wire: requests to FIX fields, and FIX reports to typed values.

Both directions are pure functions over ``(tag, value)`` lists, the same in both dialects (the
session adds the header, BeginString included). The QuickFIX callback hands over a received message
as its raw string and parsing happens in the asyncio loop, keeping the callback short.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal

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

Fields = list[tuple[int, str]]

ORD_TYPE_LIMIT = "2"
EXEC_INST_POST_ONLY = "6"
MASS_CANCEL_FOR_SESSION = "6"


class ReportError(ValueError):
    """A report we cannot read (a required field missing or malformed); the message says which."""


def utc_timestamp(at: datetime) -> str:
    """UTCTimestamp with milliseconds, as Kalshi writes it."""
    return at.strftime("%Y%m%d-%H:%M:%S.") + f"{at.microsecond // 1000:03d}"


def parse_utc_timestamp(value: str) -> datetime | None:
    """UTCTimestamp ``YYYYMMDD-HH:MM:SS[.fff…]`` as an aware datetime, or None if malformed."""
    for fmt in ("%Y%m%d-%H:%M:%S.%f", "%Y%m%d-%H:%M:%S"):
        try:
            # strptime's %f takes at most 6 digits; nanosecond stamps are cut to microseconds.
            head, dot, frac = value.partition(".")
            text = f"{head}.{frac[:6]}" if dot else head
            return datetime.strptime(text, fmt).replace(tzinfo=timezone.utc)
        except ValueError:
            continue
    return None


def new_order_fields(order: NewOrder, *, use_dollars: bool, now: datetime) -> Fields:
    """NewOrderSingle (35=D) body. Raises ``PriceError`` if the price does not fit the session's units."""
    quote = order.yes_quote
    fields: Fields = [
        (11, order.client_order_id),
        (55, order.ticker),
        (54, quote.side.value),
        (60, utc_timestamp(now)),
        (38, format_quantity(order.quantity)),
        (40, ORD_TYPE_LIMIT),
        (44, format_price(quote.yes_price, use_dollars)),
        (59, order.time_in_force.value),
    ]
    if order.expire_time is not None:
        fields.append((126, utc_timestamp(order.expire_time)))
    if order.post_only:
        fields.append((18, EXEC_INST_POST_ONLY))
    if order.self_trade_prevention is not None:
        fields.append((2964, order.self_trade_prevention.value))
    if order.max_execution_cost is not None:
        fields.append((21009, str(order.max_execution_cost)))
    if order.cancel_on_pause:
        fields.append((21006, "Y"))
    if order.subaccount is not None:
        fields.append((79, str(order.subaccount)))
    if order.ex_destination is not None:
        fields.append((100, str(order.ex_destination)))
    if order.order_group_id is not None:
        fields.append((526, order.order_group_id))
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
    fields: Fields = [(11, cl_ord_id), (41, ref.cl_ord_id)]
    if ref.order_id:
        fields.append((37, ref.order_id))
    fields += [(55, ref.ticker), (54, ref.side.value), (60, utc_timestamp(now)), (38, format_quantity(ref.quantity))]
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
    fields: Fields = [(11, cl_ord_id), (41, ref.cl_ord_id)]
    if ref.order_id:
        fields.append((37, ref.order_id))
    fields += [
        (55, ref.ticker),
        (54, ref.side.value),
        (60, utc_timestamp(now)),
        (38, format_quantity(quantity if quantity is not None else ref.quantity)),
        (40, ORD_TYPE_LIMIT),
        (44, format_price(yes_price if yes_price is not None else ref.yes_price, use_dollars)),
    ]
    if time_in_force is not None:
        fields.append((59, time_in_force.value))
        if expire_time is not None:
            fields.append((126, utc_timestamp(expire_time)))
    return fields


def mass_cancel_fields(cl_ord_id: str, *, now: datetime) -> Fields:
    """OrderMassCancelRequest (35=q): Kalshi supports only "cancel for session" (530=6)."""
    return [(11, cl_ord_id), (530, MASS_CANCEL_FOR_SESSION), (60, utc_timestamp(now))]


# --- reading reports ----------------------------------------------------------------------------


def first_values(fields: Iterable[tuple[int, str]]) -> dict[int, str]:
    """Tag -> value, the first occurrence of each tag (group entries are read separately)."""
    out: dict[int, str] = {}
    for tag, value in fields:
        out.setdefault(tag, value)
    return out


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
        if tag == 137:
            total += Decimal(value)
    return total


def _balance_change(fields: list[tuple[int, str]]) -> Decimal | None:
    """CollateralAmountChange (1704) of the entry whose type (1705) is BALANCE, if any."""
    amount = None
    for tag, value in fields:
        if tag == 1704:
            amount = value
        elif tag == 1705 and value == "BALANCE" and amount is not None:
            try:
                return Decimal(amount)
            except ArithmeticError:
                raise ReportError(f"CollateralAmountChange (1704) {amount!r} is not a number") from None
    return None


def _order_id(value: str) -> str:
    """OrderID (37), "" for none: a reject of an order the exchange never created says ``NONE``."""
    return "" if value == "NONE" else value


def parse_execution_report(fields: list[tuple[int, str]], *, use_dollars: bool) -> ExecutionReport:
    f = first_values(fields)
    try:
        exec_type = ExecType(_required(f, 150, "ExecType"))
        ord_status = OrdStatus(_required(f, 39, "OrdStatus"))
        side = WireSide(_required(f, 54, "Side"))
    except ValueError as exc:
        raise ReportError(f"ExecutionReport with a value we do not know: {exc}") from None
    exec_id = _required(f, 17, "ExecID")
    fill = None
    if exec_type is ExecType.TRADE:
        last_px, last_qty = _price(f, 31, use_dollars), _decimal(f, 32, "LastQty")
        if last_px is None or last_qty is None:
            raise ReportError("Trade ExecutionReport without LastPx (31) or LastQty (32)")
        aggressor = f.get(1057)
        fill = Fill(
            exec_id, f.get(880), last_px, last_qty, _fees(fields),
            None if aggressor is None else aggressor == "Y", _balance_change(fields),
        )
    reason = None
    if 58 in f or 103 in f:
        reason = Reason.of(f.get(58), int(f[103]) if f.get(103, "").isdigit() else None)
    cum = _decimal(f, 14, "CumQty") or Decimal(0)
    leaves = _decimal(f, 151, "LeavesQty") or Decimal(0)
    return ExecutionReport(
        exec_id=exec_id,
        exec_type=exec_type,
        ord_status=ord_status,
        order_id=_order_id(_required(f, 37, "OrderID")),
        cl_ord_id=f.get(11, ""),
        orig_cl_ord_id=f.get(41),
        ticker=_required(f, 55, "Symbol"),
        side=side,
        order_qty=_decimal(f, 38, "OrderQty") or cum + leaves,
        cum_qty=cum,
        leaves_qty=leaves,
        yes_price=_price(f, 44, use_dollars),
        avg_yes_price=_price(f, 6, use_dollars),
        fill=fill,
        long_qty=_decimal(f, 704, "LongQty"),
        short_qty=_decimal(f, 705, "ShortQty"),
        reason=reason,
        poss_dup=f.get(43) == "Y",
    )


def parse_cancel_reject(fields: list[tuple[int, str]]) -> CancelReject:
    f = first_values(fields)
    try:
        response_to = CxlRejResponseTo(_required(f, 434, "CxlRejResponseTo"))
        status = OrdStatus(f[39]) if f.get(39) else None
    except ValueError as exc:
        raise ReportError(f"OrderCancelReject with a value we do not know: {exc}") from None
    number = int(f[102]) if f.get(102, "").isdigit() else None
    return CancelReject(
        cl_ord_id=_required(f, 11, "ClOrdID"),
        orig_cl_ord_id=f.get(41),
        order_id=f.get(37),
        ord_status=status,
        response_to=response_to,
        reason=Reason.of(f.get(58), number),
    )
