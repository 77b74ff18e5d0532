"""Scripted answers to order entry for conformance scenarios: the simulator follows a script when a
client trades a reserved scenario market, so that a client that takes no instructions runs an order
scenario through its normal flow, or when a script is armed for a key's next order
(``Simulator.faults``: ``reject_next_order``, ``unavailable_next_order``,
``session_reject_next_order``, ``business_reject_next_order``, ``drift_next_order``).

Reserved tickers (the conformance runner lists those that must reach the exchange as markets):

| ticker | what the simulator does |
|---|---|
| ``CONF-REJECT-<TEXT>`` | every NewOrderSingle is rejected (35=8 150=8) with Text <TEXT> and the OrdRejReason Kalshi gives it (``REJECT_CODES``, e.g. ``CONF-REJECT-INSUFFICIENT_BALANCE``: 103=3); nothing reaches the exchange, so the market need not be listed |
| ``CONF-UNAVAILABLE`` | the order is entered and rests, but is answered 150=8 58=EXCHANGE_UNAVAILABLE 103=99 (OrderID NONE): an unknown outcome (spec §11.4, v1.0.30). While it rests the exchange itself refuses the same ClOrdID again (ORDER_ALREADY_EXISTS, 103=6); REST shows it, a cancel ends it |
| ``CONF-SESSION-REJECT`` | every NewOrderSingle is answered with a session Reject 35=3 373=5 371=44, 45 = its MsgSeqNum; nothing entered |
| ``CONF-BUSINESS-REJECT`` | every NewOrderSingle is answered with BusinessMessageReject 35=j 380=6 (not authorized); nothing entered |
| ``CONF-FILL`` | just before the order arrives the house offers its quantity at its price on the other side: it fills at once, as taker (its New folded into the Trade unless 21026=Y) |
| ``CONF-SETTLE`` | as ``CONF-FILL``: a market whose positions a scenario settles (``Simulator.admin.settle_market``) |
| ``CONF-PARTIAL`` | the same with half the quantity (rounded down to 0.01): a GTC order rests the rest, an IOC's rest is cancelled (IMMEDIATE_OR_CANCELLED), a FOK is cancelled (FOK_INSUFFICIENT_VOLUME) |
| ``CONF-FILLS`` | the order rests, then the house takes it in two fills (half, then the rest); the second Trade report's ExecID is the first's on shard 1 (``c;e`` then ``c;e;1``, LastMkt 30=1): two executions, not a duplicate |
| ``CONF-EXPIRE`` | the order rests, then the market closes and opens again at once: the order ends as an expiry does (150=C with 21012=Y, else 150=4; Text MARKET_CLOSED) |
| ``CONF-RACE`` | a cancel (35=F) of an order on it: pending cancel (150=6, unless 21011=Y), then the house fills the order in full, then the cancel is refused (35=9 102=0, too late) |
| ``CONF-CXL-REJECT`` | every cancel and replace is refused (35=9, order unchanged) with CxlRejReason 0, 1, 2, 6, 18 and 99 in turn, per session |
| ``CONF-DRIFT`` | the reports answering a request on it carry fields a v1.03 dictionary lacks (30, 715, 21030, 21031, 1057 and the undefined 21999); the first such answer on a session is followed by one unsolicited MarketSettlementReport (35=UMS) for ``CONF-DRIFT-SETTLED`` |

The house is the simulator's own account (``config.HOUSE_ACCOUNT``, opened when first needed); what
it leaves resting after a script is withdrawn. Its orders have no FIX session, so their reports
are written but sent nowhere.

Cost on the common path: ``OrderScripts.script_for`` is one test of an empty dict and one
``str.startswith`` per order-entry request.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import ROUND_DOWN, Decimal
from enum import Enum
from typing import TYPE_CHECKING

from fixengine.fix.tags import (
    AGGRESSOR_INDICATOR,
    AVG_PX,
    CL_ORD_ID,
    CLEARING_BUSINESS_DATE,
    CUM_QTY,
    CXL_REJ_REASON,
    CXL_REJ_RESPONSE_TO,
    EXEC_ID,
    EXEC_TYPE,
    LEAVES_QTY,
    MSG_EXECUTION_REPORT,
    MSG_MARKET_SETTLEMENT_REPORT,
    MSG_NEW_ORDER_SINGLE,
    MSG_ORDER_CANCEL_REJECT,
    MSG_ORDER_CANCEL_REPLACE_REQUEST,
    MSG_ORDER_CANCEL_REQUEST,
    MSG_REJECT,
    MSG_SEQ_NUM,
    ORD_REJ_REASON,
    ORD_STATUS,
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
    TRANSACT_TIME,
)
from fixengine.fix.timestamps import utc_timestamp
from fixengine.kalshi.prices import PriceError, WireSide, format_price, format_quantity
from fixengine.orders.reports import PENDING_EXEC_ID
from simulator.config import HOUSE_ACCOUNT
from simulator.exchange.matching import (
    NEW_YORK,
    Event,
    Exchange,
    MarketSettled,
    MarketStatus,
    OrderSnapshot,
    OrderSpec,
    Rejected,
    Settled,
)
from simulator.fix.order_reports import Outgoing, RequestError, SessionFlags, business_reject, parse_new_order
from simulator.fix.settlement_reports import report_pages

if TYPE_CHECKING:  # annotations only: faults.py holds the scripts and stays free of the exchange
    from simulator.exchange.venue import Venue

PREFIX = "CONF-"
REJECT_PREFIX = "CONF-REJECT-"
DRIFT_SETTLED_TICKER = "CONF-DRIFT-SETTLED"
HOUSE_SESSION = "conformance-house"  # no FIX session has this id: the house's reports go nowhere
HOUSE_BALANCE = Decimal("1000000")
QTY_STEP = Decimal("0.01")

# Text (58) -> the OrdRejReason (103) Kalshi gives it (spec §11.3-§11.4).
REJECT_CODES: Mapping[str, int] = {
    "INSUFFICIENT_BALANCE": 3, "EXCEEDED_ORDER_GROUP_RISK_LIMIT": 3, "EXCEEDED_PER_MARKET_RISK_LIMIT": 3,
    "EXCEEDED_SELL_POSITION_FLOOR": 3, "MARKET_NOT_FOUND": 1, "MARKET_ALREADY_CLOSED": 2, "MARKET_INACTIVE": 2,
    "EXCHANGE_PAUSED": 2, "TRADING_PAUSED": 2, "ORDER_ALREADY_EXISTS": 6, "INVALID_ORDER": 11,
    "ORDER_GROUP_NOT_FOUND": 11, "CUSTOMER_ACCOUNT_NOT_FOUND": 15, "PERMISSION_DENIED_FOR_CUSTOMER_ACCOUNT": 15,
    "EXPIRED": 8, "EXCHANGE_UNAVAILABLE": 99, "INTERNAL_ERROR": 99,
}
UNAVAILABLE = "EXCHANGE_UNAVAILABLE"
NOT_AUTHORIZED = 6  # BusinessRejectReason (380)
TEXT_NOT_AUTHORIZED = "Not authorized"
TEXT_VALUE_INCORRECT = "Value is incorrect (out of range) for this tag"
# CxlRejReason (102) and a Text Kalshi uses with it (spec §11.7), refused in this order.
CANCEL_REFUSALS: tuple[tuple[int, str], ...] = (
    (0, "CANNOT_UPDATE_FILLED_ORDER"), (1, "ORDER_NOT_FOUND"), (2, "ORDER_AMEND_IN_PROGRESS"),
    (6, "ORDER_ALREADY_EXISTS"), (18, "SELF_CROSS_ATTEMPT"), (99, "INVALID_PRICE"),
)
# Fields CONF-DRIFT adds to a report: Kalshi's later additions, and one no dictionary defines.
LAST_MKT = 30
SINGLE_MARKET_COLLATERAL_RETURN = 21030
RANGED_MARKET_COLLATERAL_RETURN = 21031
UNDEFINED_TAG = 21999


class Kind(str, Enum):
    REJECT = "reject"
    UNAVAILABLE = "unavailable"
    SESSION_REJECT = "session_reject"
    BUSINESS_REJECT = "business_reject"
    FILL = "fill"
    PARTIAL = "partial"
    FILLS = "fills"
    EXPIRE = "expire"
    RACE = "race"
    CXL_REJECT = "cxl_reject"
    DRIFT = "drift"


@dataclass(frozen=True, slots=True)
class Script:
    kind: Kind
    text: str = ""  # REJECT: Kalshi's Text
    code: int = 0  # REJECT: OrdRejReason (103); BUSINESS_REJECT: BusinessRejectReason (380)


_D, _F, _G = MSG_NEW_ORDER_SINGLE, MSG_ORDER_CANCEL_REQUEST, MSG_ORDER_CANCEL_REPLACE_REQUEST
# The requests each kind answers; others on its market go through as usual.
_ANSWERS: Mapping[Kind, frozenset[str]] = {
    Kind.REJECT: frozenset({_D}), Kind.UNAVAILABLE: frozenset({_D}), Kind.SESSION_REJECT: frozenset({_D}),
    Kind.BUSINESS_REJECT: frozenset({_D}), Kind.FILL: frozenset({_D}), Kind.PARTIAL: frozenset({_D}),
    Kind.FILLS: frozenset({_D}), Kind.EXPIRE: frozenset({_D}), Kind.RACE: frozenset({_F}), Kind.CXL_REJECT: frozenset({_F, _G}),
    Kind.DRIFT: frozenset({_D, _F, _G}),
}
_TICKERS: Mapping[str, Script] = {
    "CONF-UNAVAILABLE": Script(Kind.UNAVAILABLE),
    "CONF-SESSION-REJECT": Script(Kind.SESSION_REJECT),
    "CONF-BUSINESS-REJECT": Script(Kind.BUSINESS_REJECT, code=NOT_AUTHORIZED),
    "CONF-FILL": Script(Kind.FILL),
    "CONF-PARTIAL": Script(Kind.PARTIAL),
    "CONF-FILLS": Script(Kind.FILLS),
    "CONF-EXPIRE": Script(Kind.EXPIRE),
    "CONF-SETTLE": Script(Kind.FILL),  # as CONF-FILL, for a position the run settles (kalshi/ums/01)
    "CONF-RACE": Script(Kind.RACE),
    "CONF-CXL-REJECT": Script(Kind.CXL_REJECT),
    "CONF-DRIFT": Script(Kind.DRIFT),
}
# Tickers the exchange must list for their scripts to work (the others never reach it).
LISTED_TICKERS = tuple(t for t, s in _TICKERS.items()
                       if s.kind not in (Kind.SESSION_REJECT, Kind.BUSINESS_REJECT))


def ticker_script(ticker: str) -> Script | None:
    """The script a reserved ticker follows; None for any other ticker."""
    if not ticker.startswith(PREFIX):
        return None
    if ticker.startswith(REJECT_PREFIX):
        text = ticker[len(REJECT_PREFIX):]
        return Script(Kind.REJECT, text, REJECT_CODES[text]) if text in REJECT_CODES else None
    return _TICKERS.get(ticker)


@dataclass(frozen=True, slots=True)
class Request:
    """One order-entry request as the acceptor received it, and how to pass it to the exchange."""

    session_id: str
    account_id: str
    msg_type: str
    fields: Mapping[int, str]
    handle: Callable[[], list[Outgoing]]  # the request through the exchange, as without a script


class OrderScripts:
    """Scripts armed per API key (one-shot, for its next NewOrderSingle) and what the reserved
    tickers need to remember per session; thread-safe (armed from any thread, run on QuickFIX's)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._armed: dict[str, list[Script]] = {}
        self._refusals: dict[str, int] = {}  # session -> how many CONF-CXL-REJECT refusals it has had
        self._drifted: set[str] = set()  # sessions that had CONF-DRIFT's settlement report
        self._house_orders = 0

    def arm(self, key_id: str, script: Script) -> None:
        with self._lock:
            self._armed.setdefault(key_id, []).append(script)

    def clear(self, key_id: str) -> None:
        with self._lock:
            self._armed.pop(key_id, None)

    def script_for(self, key_id: str, msg_type: str, fields: Mapping[int, str]) -> Script | None:
        """The script that answers this request, if any: one armed for the key (taken), else the
        one its ticker follows."""
        if self._armed and msg_type == _D:  # the common case, without the lock
            with self._lock:
                armed = self._armed.get(key_id)
                if armed:
                    script = armed.pop(0)
                    if not armed:
                        del self._armed[key_id]
                    return script
        script = ticker_script(fields.get(SYMBOL, ""))
        return script if script is not None and msg_type in _ANSWERS[script.kind] else None

    def run(self, script: Script, venue: Venue, request: Request) -> list[Outgoing]:
        """The messages that answer ``request`` under ``script``, to send as the exchange's own."""
        kind = script.kind
        if kind is Kind.REJECT:
            return _reject(venue, request, script.text, script.code)
        if kind is Kind.UNAVAILABLE:
            return as_unavailable(request.handle(), request.session_id, request.fields.get(CL_ORD_ID, ""))
        if kind is Kind.SESSION_REJECT:
            return [session_reject(request)]
        if kind is Kind.BUSINESS_REJECT:
            return [business_reject(request.session_id, request.fields, script.code or NOT_AUTHORIZED,
                                    TEXT_NOT_AUTHORIZED)]
        if kind in (Kind.FILL, Kind.PARTIAL):
            return self._met(venue, request, half=kind is Kind.PARTIAL)
        if kind is Kind.FILLS:
            return self._two_fills(venue, request)
        if kind is Kind.EXPIRE:
            return _expire(venue, request)
        if kind is Kind.RACE:
            return _race(venue, request)
        if kind is Kind.CXL_REJECT:
            with self._lock:
                turn = self._refusals.get(request.session_id, 0)
                self._refusals[request.session_id] = turn + 1
            return [_cancel_refusal(venue, request, *CANCEL_REFUSALS[turn % len(CANCEL_REFUSALS)])]
        return self._drift(venue, request)

    def _house_cl_ord_id(self) -> str:
        with self._lock:
            self._house_orders += 1
            return f"house-{self._house_orders}"

    def _met(self, venue: Venue, request: Request, half: bool) -> list[Outgoing]:
        """The house rests the other side (all of it, or half) at the order's price; the order comes
        next, then whatever the house has left is withdrawn."""
        spec = _spec(venue, request)
        if spec is None:
            return request.handle()
        quantity = _half(spec.quantity) if half else spec.quantity
        side = WireSide.SELL_YES if spec.side is WireSide.BUY_YES else WireSide.BUY_YES
        house = OrderSpec(HOUSE_ACCOUNT, HOUSE_SESSION, self._house_cl_ord_id(), spec.ticker, side, spec.yes_price,
                          quantity)
        out = venue.reported(lambda ex, now: _house(ex).submit(house, now) if quantity > 0 else [])
        out += request.handle()
        return out + venue.reported(lambda ex, now: _withdraw(ex, now, spec.ticker))

    def _two_fills(self, venue: Venue, request: Request) -> list[Outgoing]:
        out = request.handle()
        cl_ord_id = request.fields.get(CL_ORD_ID, "")
        resting = _report(out, request.session_id, cl_ord_id, "0")
        if resting is None or resting.get(ORD_STATUS) != "0":
            return out
        order_id, quantity = resting[ORDER_ID], Decimal(resting[LEAVES_QTY])
        first = _half(quantity) or quantity
        fill = venue.reported(lambda ex, now: _house_takes(ex, now, order_id, first))
        out += fill
        if quantity > first:
            second = venue.reported(lambda ex, now: _house_takes(ex, now, order_id, quantity - first))
            trade = _report(fill, request.session_id, cl_ord_id, "F")
            out += on_shard(second, request.session_id, trade[EXEC_ID], 1) if trade is not None else second
        return out

    def _drift(self, venue: Venue, request: Request) -> list[Outgoing]:
        today = venue.read(lambda ex, history, now: now).astimezone(NEW_YORK).date()
        out = drifted(request.handle(), request.session_id, today.strftime("%Y%m%d"))
        with self._lock:
            first = request.session_id not in self._drifted
            self._drifted.add(request.session_id)
        if first:
            market = MarketSettled(DRIFT_SETTLED_TICKER, "no", Decimal(0))
            nothing = Settled(request.account_id, DRIFT_SETTLED_TICKER, "no", Decimal(0), Decimal(0))
            (page,) = report_pages(market, [nothing], 1, today, [f"conf-drift-{len(self._drifted)}"])
            out.append(Outgoing(request.session_id, MSG_MARKET_SETTLEMENT_REPORT, page))
        return out


# --- the scripts' parts (pure but for the venue calls) ---------------------------------------------


def _spec(venue: Venue, request: Request) -> OrderSpec | None:
    flags = venue.session_flags(request.session_id)
    try:
        return parse_new_order(request.fields, request.account_id, request.session_id, flags.use_dollars)
    except RequestError:
        return None


def _half(quantity: Decimal) -> Decimal:
    return (quantity / 2).quantize(QTY_STEP, rounding=ROUND_DOWN)


def _house(ex: Exchange) -> Exchange:
    try:
        ex.account(HOUSE_ACCOUNT)
    except KeyError:
        ex.open_account(HOUSE_ACCOUNT, HOUSE_BALANCE)
    return ex


def _withdraw(ex: Exchange, now: datetime, ticker: str) -> list[Event]:
    """Cancel what the scripts' house orders left resting on ``ticker``."""
    events: list[Event] = []
    for order in ex.open_orders(HOUSE_ACCOUNT):
        if order.ticker == ticker and order.session_id == HOUSE_SESSION:
            events += ex.cancel_order(order.order_id, now)
    return events


def _house_takes(ex: Exchange, now: datetime, order_id: str, quantity: Decimal) -> list[Event]:
    """The house fills ``quantity`` of an open order (the order is the maker); nothing if it cannot."""
    try:
        return _house(ex).fill_against(order_id, quantity, HOUSE_ACCOUNT, now)
    except ValueError:  # no longer open (ended meanwhile): nothing to fill
        return []


def _reject(venue: Venue, request: Request, text: str, code: int) -> list[Outgoing]:
    spec = _spec(venue, request)
    if spec is None:  # unreadable: rejected all the same, with what it carried
        f = request.fields
        side = WireSide.SELL_YES if f.get(SIDE) == WireSide.SELL_YES.value else WireSide.BUY_YES
        spec = OrderSpec(request.account_id, request.session_id, f.get(CL_ORD_ID, ""), f.get(SYMBOL, ""), side,
                         Decimal("0.5"), Decimal(0))
    rejected = Rejected(spec, text, code)
    return venue.reported(lambda ex, now: [rejected], request.session_id)


def session_reject(request: Request) -> Outgoing:
    """Reject (35=3) of an order request, as Kalshi's session layer refuses a bad value (373=5)."""
    return Outgoing(request.session_id, MSG_REJECT, [
        (REF_SEQ_NUM, request.fields.get(MSG_SEQ_NUM, "0")),
        (REF_TAG_ID, str(PRICE)),
        (REF_MSG_TYPE, request.msg_type),
        (SESSION_REJECT_REASON, "5"),
        (TEXT, TEXT_VALUE_INCORRECT),
    ])


def _report(out: list[Outgoing], session_id: str, cl_ord_id: str, exec_type: str) -> dict[int, str] | None:
    """The first execution report to ``session_id`` about ``cl_ord_id`` with ``exec_type``."""
    for item in out:
        if item.session_id == session_id and item.msg_type == MSG_EXECUTION_REPORT:
            fields = dict(item.fields)
            if fields.get(CL_ORD_ID) == cl_ord_id and fields.get(EXEC_TYPE) == exec_type:
                return fields
    return None


def as_unavailable(out: list[Outgoing], session_id: str, cl_ord_id: str) -> list[Outgoing]:
    """``out`` with the order's acknowledgement to ``session_id`` (its pending and New reports)
    replaced by a reject with EXCHANGE_UNAVAILABLE: the order lives, its sender is told the outcome
    is unknown. Left as it is when there is no New (refused, or folded into a fill)."""
    def ack(item: Outgoing) -> bool:
        if item.session_id != session_id or item.msg_type != MSG_EXECUTION_REPORT:
            return False
        fields = dict(item.fields)
        return fields.get(CL_ORD_ID) == cl_ord_id and fields.get(EXEC_TYPE) in ("A", "0")

    new = next((i for i, item in enumerate(out) if ack(item) and dict(item.fields)[EXEC_TYPE] == "0"), None)
    if new is None:
        return out
    changed = {ORDER_ID: "NONE", EXEC_TYPE: "8", ORD_STATUS: "8", LEAVES_QTY: "0.00", CUM_QTY: "0.00", AVG_PX: "0"}
    fields = [(tag, changed.get(tag, value)) for tag, value in out[new].fields]
    reject = replace(out[new], fields=fields + [(ORD_REJ_REASON, str(REJECT_CODES[UNAVAILABLE])), (TEXT, UNAVAILABLE)])
    return [reject if i == new else item for i, item in enumerate(out) if i == new or not ack(item)]


def on_shard(out: list[Outgoing], session_id: str, exec_id: str, shard: int) -> list[Outgoing]:
    """``out`` with the Trade report to ``session_id`` numbered ``exec_id`` on exchange index
    ``shard`` (``c;e;shard``, LastMkt 30 = shard)."""
    def moved(item: Outgoing) -> Outgoing:
        if item.session_id != session_id or item.msg_type != MSG_EXECUTION_REPORT or dict(item.fields).get(EXEC_TYPE) != "F":
            return item
        fields = [(EXEC_ID, f"{exec_id};{shard}") if tag == EXEC_ID else (tag, value) for tag, value in item.fields]
        return replace(item, fields=[*fields, (LAST_MKT, str(shard))])
    return [moved(item) for item in out]


def drifted(out: list[Outgoing], session_id: str, business_date: str) -> list[Outgoing]:
    """``out`` with the execution reports to ``session_id`` carrying CONF-DRIFT's extra fields."""
    def drift(item: Outgoing) -> Outgoing:
        if item.session_id != session_id or item.msg_type != MSG_EXECUTION_REPORT:
            return item
        have = {tag for tag, _ in item.fields}
        extra = [(LAST_MKT, "0"), (CLEARING_BUSINESS_DATE, business_date), (SINGLE_MARKET_COLLATERAL_RETURN, "0.01"),
                 (RANGED_MARKET_COLLATERAL_RETURN, "0.01"), (AGGRESSOR_INDICATOR, "N"), (UNDEFINED_TAG, "conformance")]
        return replace(item, fields=[*item.fields, *((t, v) for t, v in extra if t not in have)])
    return [drift(item) for item in out]


def _open_order(venue: Venue, account_id: str, cl_ord_id: str) -> OrderSnapshot | None:
    return venue.read(lambda ex, history, now: next(
        (o for o in ex.open_orders(account_id) if o.cl_ord_id == cl_ord_id), None))


def pending_cancel(order: OrderSnapshot, cl_ord_id: str, orig_cl_ord_id: str, flags: SessionFlags, now: datetime
                   ) -> Outgoing:
    """The Pending Cancel report (150=6) of a cancel request, as the exchange sends it first."""
    try:
        price = format_price(order.yes_price, flags.use_dollars)
    except PriceError:
        price = str(order.yes_price)
    return Outgoing(order.session_id, MSG_EXECUTION_REPORT, [
        (ORDER_ID, order.order_id), (CL_ORD_ID, cl_ord_id), (ORIG_CL_ORD_ID, orig_cl_ord_id),
        (EXEC_ID, PENDING_EXEC_ID), (EXEC_TYPE, "6"), (ORD_STATUS, "6"), (SYMBOL, order.ticker),
        (SIDE, order.side.value), (ORDER_QTY, format_quantity(order.quantity)), (PRICE, price),
        (LEAVES_QTY, format_quantity(order.leaves_qty)), (CUM_QTY, format_quantity(order.cum_qty)),
        (AVG_PX, "0"), (TRANSACT_TIME, utc_timestamp(now)),
    ], order.account_id)


def _race(venue: Venue, request: Request) -> list[Outgoing]:
    """Pending cancel, the house fills the order in full, then the cancel comes too late."""
    f = request.fields
    order = _open_order(venue, request.account_id, f.get(ORIG_CL_ORD_ID, ""))
    if order is None:
        return request.handle()
    flags = venue.session_flags(request.session_id)
    out: list[Outgoing] = []
    if not flags.skip_pending:
        now = venue.read(lambda ex, history, at: at)
        out.append(pending_cancel(order, f.get(CL_ORD_ID, ""), order.cl_ord_id, flags, now))
    out += venue.reported(lambda ex, now: _house_takes(ex, now, order.order_id, order.leaves_qty))
    return out + request.handle()


def _expire(venue: Venue, request: Request) -> list[Outgoing]:
    """The order rests, then its market closes (ending it as an expiry) and opens again."""
    out = request.handle()
    ticker = request.fields.get(SYMBOL, "")
    if _report(out, request.session_id, request.fields.get(CL_ORD_ID, ""), "0") is None:
        return out

    def close_and_open(ex: Exchange, now: datetime) -> list[Event]:
        return [*ex.set_market_status(ticker, MarketStatus.CLOSED, now), *ex.set_market_status(ticker, MarketStatus.OPEN, now)]
    return out + venue.reported(close_and_open)


def _cancel_refusal(venue: Venue, request: Request, reason: int, text: str) -> Outgoing:
    """OrderCancelReject (35=9) of a cancel or replace, the order left as it is."""
    f = request.fields
    order = _open_order(venue, request.account_id, f.get(ORIG_CL_ORD_ID, ""))
    return Outgoing(request.session_id, MSG_ORDER_CANCEL_REJECT, [
        (ORDER_ID, order.order_id if order is not None else "NONE"),
        (CL_ORD_ID, f.get(CL_ORD_ID, "")),
        (ORIG_CL_ORD_ID, f.get(ORIG_CL_ORD_ID, "")),
        (ORD_STATUS, order.status.value if order is not None else "8"),
        (CXL_REJ_RESPONSE_TO, "1" if request.msg_type == _F else "2"),
        (CXL_REJ_REASON, str(reason)),
        (TEXT, text),
    ])
