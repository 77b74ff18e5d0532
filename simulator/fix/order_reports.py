"""The simulator's order wire: FIX requests to matching-engine calls, matching events to Kalshi's
ExecutionReports, OrderCancelRejects and OrderMassCancelReports (spec §10-§11).

Pure: the FIX application parses with ``parse_*`` and sends what ``ReportWriter.write`` returns.
How each session sees its reports follows the flags of its Logon (``SessionFlags``).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from fixengine.orders.reports import OrdStatus
from fixengine.orders.requests import SelfTradePrevention, TimeInForce
from fixengine.orders.wire import parse_utc_timestamp, utc_timestamp
from fixengine.kalshi.prices import PriceError, WireSide, format_price, format_quantity, parse_price
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

Fields = list[tuple[int, str]]
PENDING_EXEC_ID = "-1;-1"


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
            use_dollars=21005 in on,
            skip_pending=bool(on & {21011, 21003}),
            ioc_cancel_report=21007 in on,
            preserve_order_qty=21008 in on,
            expired_status=21012 in on,
            new_before_trade=21026 in on,
        )


@dataclass(frozen=True, slots=True)
class Outgoing:
    session_id: str  # SessionID string of the session that entered the order
    msg_type: str
    fields: Fields


class RequestError(ValueError):
    """A request the exchange answers with a reject (the text is Kalshi's code)."""


def _get(f: Mapping[int, str], tag: int) -> str:
    value = f.get(tag)
    if not value:
        raise RequestError("INVALID_ORDER")
    return value


def parse_new_order(f: Mapping[int, str], account_id: str, session_id: str, use_dollars: bool) -> OrderSpec:
    try:
        side = WireSide(_get(f, 54))
        price = parse_price(_get(f, 44), use_dollars)
        quantity = Decimal(_get(f, 38))
        tif = TimeInForce(f.get(59, TimeInForce.GTC.value))
        stp = SelfTradePrevention(f[2964]) if f.get(2964) else None
        cost = Decimal(f[21009]) if f.get(21009) else None
        expire = _parse_time(f[126]) if f.get(126) else None
    except (ValueError, PriceError, ArithmeticError):
        raise RequestError("INVALID_ORDER") from None
    if f.get(40, "2") != "2":
        raise RequestError("INVALID_ORDER")  # limit orders only
    return OrderSpec(
        account_id=account_id,
        session_id=session_id,
        cl_ord_id=_get(f, 11),
        ticker=_get(f, 55),
        side=side,
        yes_price=price,
        quantity=quantity,
        time_in_force=tif,
        expire_time=expire,
        post_only=f.get(18) == "6",
        self_trade_prevention=stp,
        max_execution_cost=cost,
        cancel_on_pause=f.get(21006) == "Y",
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
                        (31, format_price(event.yes_price, f.use_dollars)),
                        (32, format_quantity(event.quantity)),
                        (880, event.trade_id),
                        (1057, "Y" if aggressor else "N"),
                        (704, format_quantity(max(net, Decimal(0)))),
                        (705, format_quantity(max(-net, Decimal(0)))),
                        (136, "1"), (137, str(fee)), (138, "USD"), (139, "4"), (891, "0"),
                        (1703, "1"), (1704, str(balance)), (1705, "BALANCE"),
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
                extra = [(58, event.text)] if event.text else []
                out.append(self._er(event.order, "4", "4", f, now, cl=event.cl_ord_id, orig=event.orig_cl_ord_id, extra=extra, done=True))
            elif isinstance(event, Expired):
                f = flags.get(event.order.session_id, SessionFlags())
                code = "C" if f.expired_status else "4"
                out.append(self._er(event.order, code, code, f, now, extra=[(58, event.text)], done=True))
            elif isinstance(event, Replaced):
                f = flags.get(event.order.session_id, SessionFlags())
                if not f.skip_pending:
                    out.append(self._er(event.order, "E", "E", f, now, pending=True, orig=event.orig_cl_ord_id))
                out.append(self._er(event.order, "5", _status(event.order), f, now, orig=event.orig_cl_ord_id))
            elif isinstance(event, Rejected):
                out.append(self._reject(event, flags.get(event.spec.session_id, SessionFlags()), now))
            elif isinstance(event, CancelRefused):
                out.append(self._cancel_reject(event, requester))
        return out

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
            (37, o.order_id),
            (11, cl or o.cl_ord_id),
        ]
        if orig:
            fields.append((41, orig))
        fields += [
            (17, PENDING_EXEC_ID if pending else self._exec_id()),
            (150, exec_type),
            (39, status),
            (55, o.ticker),
            (54, o.side.value),
            (38, format_quantity(quantity)),
            (44, format_price(o.yes_price, f.use_dollars)),
            (151, format_quantity(leaves)),
            (14, format_quantity(o.cum_qty)),
            (6, _avg(o, f.use_dollars)),
            (60, utc_timestamp(now)),
        ]
        fields += extra or []
        return Outgoing(o.session_id, "8", fields)

    def _reject(self, event: Rejected, f: SessionFlags, now: datetime) -> Outgoing:
        spec = event.spec
        try:
            price = format_price(spec.yes_price, f.use_dollars)
        except PriceError:
            price = str(spec.yes_price)
        fields: Fields = [
            (37, "NONE"),
            (11, spec.cl_ord_id),
            (17, self._exec_id()),
            (150, "8"),
            (39, "8"),
            (55, spec.ticker),
            (54, spec.side.value),
            (38, format_quantity(spec.quantity)),
            (44, price),
            (151, "0.00"),
            (14, "0.00"),
            (6, "0"),
            (60, utc_timestamp(now)),
            (103, str(event.ord_rej_reason)),
            (58, event.text),
        ]
        return Outgoing(spec.session_id, "8", fields)

    def _cancel_reject(self, event: CancelRefused, requester: str) -> Outgoing:
        status = event.order.status.value if event.order is not None else OrdStatus.REJECTED.value
        fields: Fields = [
            (37, event.order_id or "NONE"),
            (11, event.cl_ord_id),
            (41, event.orig_cl_ord_id),
            (39, status),
            (434, "1" if event.response_to == "cancel" else "2"),
            (102, str(event.reason)),
            (58, event.text),
        ]
        return Outgoing(requester, "9", fields)


def business_reject(session_id: str, request: Mapping[int, str], reason: int, text: str) -> Outgoing:
    """BusinessMessageReject (35=j) of a request the exchange never saw (spec §18.2)."""
    fields: Fields = [(45, request.get(34, "0")), (372, request.get(35, ""))]
    if request.get(11):
        fields.append((379, request[11]))
    fields += [(380, str(reason)), (58, text)]
    return Outgoing(session_id, "j", fields)


def mass_cancel_report(cl_ord_id: str, session_id: str, count: int, fixt: bool) -> Outgoing:
    """OrderMassCancelReport (35=r): 531=6, every order of the session cancelled."""
    fields: Fields = [(11, cl_ord_id), (37, str(uuid.uuid4()))]
    if fixt:  # MassActionReportID is required in FIX 5.0 SP2 and unknown to FIX 4.4
        fields.append((1369, fields[1][1]))
    fields += [(530, "6"), (531, "6"), (533, str(count))]
    return Outgoing(session_id, "r", fields)


def _final(trade: Outgoing) -> Outgoing:
    replaced = {39: "4", 151: "0.00"}
    return Outgoing(trade.session_id, trade.msg_type, [(t, replaced.get(t, v)) for t, v in trade.fields])


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
