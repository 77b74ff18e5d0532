"""The simulator's order wire: FIX requests to matching-engine calls, matching events to Kalshi's
ExecutionReports, OrderCancelRejects and OrderMassCancelReports (spec §10-§11).

Pure: the FIX application parses with ``parse_*`` and sends what ``ReportWriter.write`` returns.
How each session sees its reports follows the flags of its Logon (``SessionFlags``).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal

from fixengine.fix.tags import (
    AGGRESSOR_INDICATOR,
    ALWAYS_EMIT_NEW_BEFORE_TRADE,
    AVG_PX,
    BUSINESS_REJECT_REASON,
    BUSINESS_REJECT_REF_ID,
    CANCEL_ORDER_ON_PAUSE,
    CL_ORD_ID,
    COLLATERAL_AMOUNT_CHANGE,
    COLLATERAL_AMOUNT_TYPE,
    CUM_QTY,
    CXL_REJ_REASON,
    CXL_REJ_RESPONSE_TO,
    ENABLE_IOC_CANCEL_REPORT,
    EXEC_ID,
    EXEC_INST,
    EXEC_TYPE,
    EXPIRE_TIME,
    LAST_PX,
    LAST_QTY,
    LEAVES_QTY,
    LONG_QTY,
    MASS_ACTION_REPORT_ID,
    MASS_CANCEL_REJECT_REASON,
    MASS_CANCEL_REQUEST_TYPE,
    MASS_CANCEL_RESPONSE,
    MAX_EXECUTION_COST,
    MISC_FEE_AMT,
    MISC_FEE_BASIS,
    MISC_FEE_CURR,
    MISC_FEE_TYPE,
    MSG_BUSINESS_MESSAGE_REJECT,
    MSG_EXECUTION_REPORT,
    MSG_ORDER_CANCEL_REJECT,
    MSG_ORDER_MASS_CANCEL_REPORT,
    MSG_SEQ_NUM,
    MSG_TYPE,
    NO_COLLATERAL_AMOUNT_CHANGES,
    NO_MISC_FEES,
    ORD_REJ_REASON,
    ORD_STATUS,
    ORD_TYPE,
    ORDER_ID,
    ORDER_QTY,
    ORIG_CL_ORD_ID,
    PRESERVE_ORIGINAL_ORDER_QTY,
    PRICE,
    REF_MSG_TYPE,
    REF_SEQ_NUM,
    SELF_TRADE_PREVENTION_TYPE,
    SHORT_QTY,
    SIDE,
    SKIP_PENDING_EXEC_REPORTS,
    SKIP_PENDING_EXEC_REPORTS_LEGACY,
    SYMBOL,
    TEXT,
    TIME_IN_FORCE,
    TOTAL_AFFECTED_ORDERS,
    TRANSACT_TIME,
    TRD_MATCH_ID,
    USE_DOLLARS,
    USE_EXPIRED_ORD_STATUS,
)
from fixengine.orders.reports import PENDING_EXEC_ID, OrdStatus
from fixengine.orders.requests import SelfTradePrevention, TimeInForce
from fixengine.orders.wire import (
    EXEC_INST_POST_ONLY,
    MASS_CANCEL_FOR_SESSION,
    ORD_TYPE_LIMIT,
    Fields,
)
from fixengine.fix.timestamps import parse_utc_timestamp, utc_timestamp
from fixengine.kalshi.prices import PriceError, WireSide, format_price, format_quantity, parse_price
from simulator.fix.drop_copy import DropCopyLog, copy_targets, listeners_copy
from simulator.exchange.matching import (
    Accepted,
    Canceled,
    CancelRefused,
    Event,
    Expired,
    OrderSnapshot,
    OrderSpec,
    PositionMoved,
    Rejected,
    Replaced,
    Traded,
)


@dataclass(frozen=True, slots=True)
class SessionFlags:
    """The Logon switches that change what a session's reports look like."""

    use_dollars: bool = False  # 21005
    skip_pending: bool = False  # 21011 (legacy 21003)
    ioc_cancel_report: bool = False  # 21007
    preserve_order_qty: bool = False  # 21008
    expired_status: bool = False  # 21012
    new_before_trade: bool = False  # 21026

    @classmethod
    def from_logon(cls, flags: Mapping[int, str]) -> "SessionFlags":
        on = {tag for tag, value in flags.items() if value == "Y"}
        return cls(
            use_dollars=USE_DOLLARS in on,
            skip_pending=bool(on & {SKIP_PENDING_EXEC_REPORTS, SKIP_PENDING_EXEC_REPORTS_LEGACY}),
            ioc_cancel_report=ENABLE_IOC_CANCEL_REPORT in on,
            preserve_order_qty=PRESERVE_ORIGINAL_ORDER_QTY in on,
            expired_status=USE_EXPIRED_ORD_STATUS in on,
            new_before_trade=ALWAYS_EMIT_NEW_BEFORE_TRADE in on,
        )


@dataclass(frozen=True, slots=True)
class Outgoing:
    session_id: str  # SessionID string of the session that entered the order
    msg_type: str
    fields: Fields
    account: str = ""  # the exchange account an execution report is about ("": not one)


class RequestError(ValueError):
    """A request the exchange answers with a reject (the text is Kalshi's code)."""


def _get(f: Mapping[int, str], tag: int) -> str:
    value = f.get(tag)
    if not value:
        raise RequestError("INVALID_ORDER")
    return value


def parse_new_order(f: Mapping[int, str], account_id: str, session_id: str, use_dollars: bool) -> OrderSpec:
    try:
        side = WireSide(_get(f, SIDE))
        price = parse_price(_get(f, PRICE), use_dollars)
        quantity = Decimal(_get(f, ORDER_QTY))
        tif = TimeInForce(f.get(TIME_IN_FORCE, TimeInForce.GTC.value))
        stp = SelfTradePrevention(f[SELF_TRADE_PREVENTION_TYPE]) if f.get(SELF_TRADE_PREVENTION_TYPE) else None
        cost = Decimal(f[MAX_EXECUTION_COST]) if f.get(MAX_EXECUTION_COST) else None
        expire = _parse_time(f[EXPIRE_TIME]) if f.get(EXPIRE_TIME) else None
    except (ValueError, PriceError, ArithmeticError):
        raise RequestError("INVALID_ORDER") from None
    if f.get(ORD_TYPE, ORD_TYPE_LIMIT) != ORD_TYPE_LIMIT:
        raise RequestError("INVALID_ORDER")  # limit orders only
    return OrderSpec(
        account_id=account_id,
        session_id=session_id,
        cl_ord_id=_get(f, CL_ORD_ID),
        ticker=_get(f, SYMBOL),
        side=side,
        yes_price=price,
        quantity=quantity,
        time_in_force=tif,
        expire_time=expire,
        post_only=f.get(EXEC_INST) == EXEC_INST_POST_ONLY,
        self_trade_prevention=stp,
        max_execution_cost=cost,
        cancel_on_pause=f.get(CANCEL_ORDER_ON_PAUSE) == "Y",
    )


def _parse_time(text: str) -> datetime:
    parsed = parse_utc_timestamp(text)
    if parsed is None:
        raise ValueError(text)
    return parsed


class ReportWriter:
    """Turns matching events into the messages each session receives. Numbers ExecIDs like
    Kalshi (``clock;event``, shard 0): one clock tick per request, one event number per report."""

    def __init__(self) -> None:
        self._clock = 0
        self._event = 0
        self.listeners: dict[str, set[str]] = {}  # account -> its listener sessions (20126=Y)
        self.drop_copy = DropCopyLog()

    def _exec_id(self) -> str:
        self._event += 1
        return f"{self._clock};{self._event}"

    def write(
        self, events: list[Event], flags: Mapping[str, SessionFlags], now: datetime, requester: str
    ) -> list[Outgoing]:
        """The messages for one request's events. ``requester``: the session that sent the request
        (rejects of unknown orders go back to it)."""
        self._clock += 1
        out: list[Outgoing] = []
        last_trade: dict[str, int] = {}  # order id -> index in ``out`` of its latest Trade report
        traded_takers = {e.taker.order_id for e in events if isinstance(e, Traded)}
        positions = {(e.account_id, e.ticker): e.net_yes for e in events if isinstance(e, PositionMoved)}
        for event in events:
            if isinstance(event, Accepted):
                f = flags.get(event.order.session_id, SessionFlags())
                if not f.skip_pending:
                    out.append(self._er(event.order, "A", "A", f, now, pending=True))
                if f.new_before_trade or event.order.order_id not in traded_takers:
                    out.append(self._er(event.order, "0", _status(event.order), f, now))
            elif isinstance(event, Traded):
                for snap, aggressor, fee in ((event.maker, False, event.maker_fee), (event.taker, True, event.taker_fee)):
                    f = flags.get(snap.session_id, SessionFlags())
                    net = positions.get((snap.account_id, snap.ticker), Decimal(0))
                    balance = _balance_change(snap.side, event.yes_price, event.quantity, fee, net)
                    extra: Fields = [
                        (LAST_PX, format_price(event.yes_price, f.use_dollars)),
                        (LAST_QTY, format_quantity(event.quantity)),
                        (TRD_MATCH_ID, event.trade_id),
                        (AGGRESSOR_INDICATOR, "Y" if aggressor else "N"),
                        (LONG_QTY, format_quantity(max(net, Decimal(0)))),
                        (SHORT_QTY, format_quantity(max(-net, Decimal(0)))),
                        (NO_MISC_FEES, "1"),
                        (MISC_FEE_AMT, str(fee)),
                        (MISC_FEE_CURR, "USD"),
                        (MISC_FEE_TYPE, "4"),
                        (MISC_FEE_BASIS, "0"),
                        (NO_COLLATERAL_AMOUNT_CHANGES, "1"),
                        (COLLATERAL_AMOUNT_CHANGE, str(balance)),
                        (COLLATERAL_AMOUNT_TYPE, "BALANCE"),
                    ]
                    last_trade[snap.order_id] = len(out)
                    out.append(self._er(snap, "F", _status(snap), f, now, extra=extra))
            elif isinstance(event, Canceled):
                f = flags.get(event.order.session_id, SessionFlags())
                if event.text == "IMMEDIATE_OR_CANCELLED" and event.order.order_id in last_trade and not f.ioc_cancel_report:
                    # Without 21007 a partly filled IOC gets no cancel report of its own: its last
                    # Trade report carries the final state (Canceled, nothing left) instead.
                    i = last_trade[event.order.order_id]
                    out[i] = _final(out[i])
                    continue
                if not f.skip_pending and event.orig_cl_ord_id is not None:
                    out.append(self._er(event.order, "6", "6", f, now, pending=True, cl=event.cl_ord_id, orig=event.orig_cl_ord_id))
                extra = [(TEXT, event.text)] if event.text else []
                out.append(self._er(event.order, "4", "4", f, now, cl=event.cl_ord_id, orig=event.orig_cl_ord_id, extra=extra, done=True))
            elif isinstance(event, Expired):
                f = flags.get(event.order.session_id, SessionFlags())
                code = "C" if f.expired_status else "4"
                out.append(self._er(event.order, code, code, f, now, extra=[(TEXT, event.text)], done=True))
            elif isinstance(event, Replaced):
                f = flags.get(event.order.session_id, SessionFlags())
                if not f.skip_pending:
                    out.append(self._er(event.order, "E", "E", f, now, pending=True, orig=event.orig_cl_ord_id))
                out.append(self._er(event.order, "5", _status(event.order), f, now, orig=event.orig_cl_ord_id))
            elif isinstance(event, Rejected):
                out.append(self._reject(event, flags.get(event.spec.session_id, SessionFlags()), now))
            elif isinstance(event, CancelRefused):
                out.append(self._cancel_reject(event, requester))
        return self._copied(out, flags, now)

    def _copied(self, out: list[Outgoing], flags: Mapping[str, SessionFlags], now: datetime) -> list[Outgoing]:
        """Keep each persistent execution report for drop copy, and copy each to the account's
        listener sessions (spec §13, §14). Pending reports go to neither (a listener skips them: 21011)."""
        copies: list[Outgoing] = []
        for item in out:
            if item.msg_type != MSG_EXECUTION_REPORT or not item.account:
                continue
            # On every report's path: ExecID and ExecType are the two fields after it (see ``_er``).
            fields = item.fields
            at = next(i for i, (tag, _) in enumerate(fields) if tag == EXEC_ID)
            exec_id, exec_type = fields[at][1], fields[at + 1][1]
            if exec_id == PENDING_EXEC_ID:
                continue
            entered = flags.get(item.session_id)
            dollars = entered is not None and entered.use_dollars
            if exec_type != "8":  # rejects are not replayed
                self.drop_copy.record(item.account, exec_id, fields, dollars, now)
            if item.account in self.listeners:
                for listener in copy_targets(self.listeners, item.account, item.session_id):
                    to = flags.get(listener, SessionFlags()).use_dollars
                    copies.append(Outgoing(listener, item.msg_type, listeners_copy(fields, dollars, to), item.account))
        return out + copies if copies else out

    def _er(
        self,
        o: OrderSnapshot,
        exec_type: str,
        status: str,
        f: SessionFlags,
        now: datetime,
        *,
        pending: bool = False,
        cl: str | None = None,
        orig: str | None = None,
        extra: Fields | None = None,
        done: bool = False,
    ) -> Outgoing:
        leaves = Decimal(0) if done else o.leaves_qty
        quantity = o.quantity if f.preserve_order_qty else o.cum_qty + leaves
        fields: Fields = [
            (ORDER_ID, o.order_id),
            (CL_ORD_ID, cl or o.cl_ord_id),
        ]
        if orig:
            fields.append((ORIG_CL_ORD_ID, orig))
        fields += [
            (EXEC_ID, PENDING_EXEC_ID if pending else self._exec_id()),
            (EXEC_TYPE, exec_type),
            (ORD_STATUS, status),
            (SYMBOL, o.ticker),
            (SIDE, o.side.value),
            (ORDER_QTY, format_quantity(quantity)),
            (PRICE, format_price(o.yes_price, f.use_dollars)),
            (LEAVES_QTY, format_quantity(leaves)),
            (CUM_QTY, format_quantity(o.cum_qty)),
            (AVG_PX, _avg(o, f.use_dollars)),
            (TRANSACT_TIME, utc_timestamp(now)),
        ]
        fields += extra or []
        return Outgoing(o.session_id, MSG_EXECUTION_REPORT, fields, o.account_id)

    def _reject(self, event: Rejected, f: SessionFlags, now: datetime) -> Outgoing:
        spec = event.spec
        try:
            price = format_price(spec.yes_price, f.use_dollars)
        except PriceError:
            price = str(spec.yes_price)
        fields: Fields = [
            (ORDER_ID, "NONE"),
            (CL_ORD_ID, spec.cl_ord_id),
            (EXEC_ID, self._exec_id()),
            (EXEC_TYPE, "8"),
            (ORD_STATUS, "8"),
            (SYMBOL, spec.ticker),
            (SIDE, spec.side.value),
            (ORDER_QTY, format_quantity(spec.quantity)),
            (PRICE, price),
            (LEAVES_QTY, "0.00"),
            (CUM_QTY, "0.00"),
            (AVG_PX, "0"),
            (TRANSACT_TIME, utc_timestamp(now)),
            (ORD_REJ_REASON, str(event.ord_rej_reason)),
            (TEXT, event.text),
        ]
        return Outgoing(spec.session_id, MSG_EXECUTION_REPORT, fields, spec.account_id)

    def _cancel_reject(self, event: CancelRefused, requester: str) -> Outgoing:
        status = event.order.status.value if event.order is not None else OrdStatus.REJECTED.value
        fields: Fields = [
            (ORDER_ID, event.order_id or "NONE"),
            (CL_ORD_ID, event.cl_ord_id),
            (ORIG_CL_ORD_ID, event.orig_cl_ord_id),
            (ORD_STATUS, status),
            (CXL_REJ_RESPONSE_TO, "1" if event.response_to == "cancel" else "2"),
            (CXL_REJ_REASON, str(event.reason)),
            (TEXT, event.text),
        ]
        return Outgoing(requester, MSG_ORDER_CANCEL_REJECT, fields)


def business_reject(session_id: str, request: Mapping[int, str], reason: int, text: str) -> Outgoing:
    """BusinessMessageReject (35=j) of a request the exchange never saw (spec §18.2)."""
    fields: Fields = [(REF_SEQ_NUM, request.get(MSG_SEQ_NUM, "0")), (REF_MSG_TYPE, request.get(MSG_TYPE, ""))]
    if request.get(CL_ORD_ID):
        fields.append((BUSINESS_REJECT_REF_ID, request[CL_ORD_ID]))
    fields += [(BUSINESS_REJECT_REASON, str(reason)), (TEXT, text)]
    return Outgoing(session_id, MSG_BUSINESS_MESSAGE_REJECT, fields)


def mass_cancel_report(cl_ord_id: str, session_id: str, count: int, fixt: bool, refused: str | None = None) -> Outgoing:
    """OrderMassCancelReport (35=r): 531=6, every order of the session cancelled; or (``refused``,
    Kalshi's Text) 531=0 with MassCancelRejectReason 99, nothing cancelled (spec §10.6)."""
    fields: Fields = [(CL_ORD_ID, cl_ord_id), (ORDER_ID, str(uuid.uuid4()))]
    if fixt:  # MassActionReportID is required in FIX 5.0 SP2 and unknown to FIX 4.4
        fields.append((MASS_ACTION_REPORT_ID, fields[1][1]))
    fields.append((MASS_CANCEL_REQUEST_TYPE, MASS_CANCEL_FOR_SESSION))
    if refused is not None:
        fields += [(MASS_CANCEL_RESPONSE, "0"), (MASS_CANCEL_REJECT_REASON, "99"), (TEXT, refused)]
    else:
        fields += [(MASS_CANCEL_RESPONSE, "6"), (TOTAL_AFFECTED_ORDERS, str(count))]  # orders of the session cancelled
    return Outgoing(session_id, MSG_ORDER_MASS_CANCEL_REPORT, fields)


def _final(trade: Outgoing) -> Outgoing:
    replaced = {ORD_STATUS: "4", LEAVES_QTY: "0.00"}
    return replace(trade, fields=[(t, replaced.get(t, v)) for t, v in trade.fields])


def _balance_change(side: WireSide, yes_price: Decimal, quantity: Decimal, fee: Decimal, net_after: Decimal) -> Decimal:
    """The account's cash change from one fill (1704, BALANCE): the price paid for the contracts
    (YES price to buy YES, 1 - price to buy NO), the fee, and $1 back per YES/NO pair netted."""
    bought_yes = side is WireSide.BUY_YES
    paid = quantity * (yes_price if bought_yes else 1 - yes_price)
    net_before = net_after - quantity if bought_yes else net_after + quantity
    netted = max(Decimal(0), abs(net_before) - abs(net_after))
    return -paid - fee + netted


def _status(o: OrderSnapshot) -> str:
    return o.status.value


def _avg(o: OrderSnapshot, use_dollars: bool) -> str:
    if o.avg_yes_price is None:
        return "0"
    value = o.avg_yes_price if use_dollars else o.avg_yes_price * 100
    return str(value.quantize(Decimal("0.0001")))
