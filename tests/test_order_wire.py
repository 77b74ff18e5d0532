"""Orders on the wire: what the engine sends validates against the dialect's dictionary, and what
Kalshi reports reads back into typed values, in cents and in dollars."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal as D

import pytest
import quickfix as fix

from fixengine.fix.dialect import Dialect
from fixengine.fix.framing import encode, parse
from fixengine.orders.reports import CxlRejResponseTo, ExecType, OrdStatus, RejectCode
from fixengine.orders.requests import NewOrder, SelfTradePrevention, TimeInForce
from fixengine.orders.wire import (
    OrderRef,
    ReportError,
    cancel_fields,
    mass_cancel_fields,
    new_order_fields,
    parse_cancel_reject,
    parse_execution_report,
    replace_fields,
)
from fixengine.kalshi.prices import Action, Contract, PriceError, WireSide

NOW = datetime(2026, 11, 21, 17, 0, 0, 123000, tzinfo=timezone.utc)
HEADER = [(34, "2"), (49, "key"), (56, "KalshiNR"), (52, "20261121-17:00:00.123")]


def validate(dictionaries, dialect: Dialect, msg_type: str, body) -> None:
    session, app = dictionaries[dialect]
    text = encode(dialect.begin_string, [(35, msg_type), *HEADER, *body]).decode()
    if dialect.is_fixt:
        fix.DataDictionary.validate(fix.Message(text, session, app, True), session, app)
    else:
        session.validate(fix.Message(text, session, True))


def full_order(**kw) -> NewOrder:
    fields = dict(
        ticker="HIGHNY-23DEC31", action=Action.BUY, contract=Contract.NO, quantity=D("10.5"), price=D("0.55"),
        time_in_force=TimeInForce.GTD, expire_time=datetime(2026, 12, 1, tzinfo=timezone.utc), post_only=True,
        self_trade_prevention=SelfTradePrevention.MAKER, max_execution_cost=D("12.50"), cancel_on_pause=True,
        subaccount=3, ex_destination=1, client_order_id="c-1",
    )
    fields.update(kw)
    return NewOrder.create(**fields)


@pytest.mark.parametrize("dialect", list(Dialect))
def test_every_order_message_validates(dictionaries, dialect) -> None:
    body = new_order_fields(full_order(), use_dollars=False, now=NOW)
    f = dict(body)
    assert (f[54], f[44], f[38], f[59], f[126], f[18]) == ("2", "45", "10.50", "6", "20261201-00:00:00.000", "6")
    assert (f[2964], f[21009], f[21006], f[79], f[100]) == ("2", "12.50", "Y", "3", "1")
    validate(dictionaries, dialect, "D", body)
    ref = OrderRef("c-1", "O-1", "HIGHNY-23DEC31", WireSide.SELL_YES, D("10.50"), D("0.45"))
    validate(dictionaries, dialect, "F", cancel_fields(ref, "k-1", now=NOW))
    replace = replace_fields(ref, "r-1", quantity=D(8), yes_price=D("0.4"), time_in_force=None, expire_time=None,
                             use_dollars=True, now=NOW)
    assert dict(replace)[44] == "0.4000" and 59 not in dict(replace)  # omitting 59 keeps the expiry on Kalshi
    validate(dictionaries, dialect, "G", replace)
    validate(dictionaries, dialect, "q", mass_cancel_fields("m-1", now=NOW))


def test_a_subpenny_price_needs_a_dollar_session() -> None:
    order = full_order(price=D("0.555"))
    with pytest.raises(PriceError, match="not a whole cent"):
        new_order_fields(order, use_dollars=False, now=NOW)
    assert dict(new_order_fields(order, use_dollars=True, now=NOW))[44] == "0.4450"


def trade_report(price: str, use_dollars: bool):
    body = [
        (37, "O-1"), (11, "c-1"), (17, "4;7;1"), (150, "F"), (39, "1"), (55, "HIGHNY-23DEC31"), (54, "1"),
        (38, "10.00"), (44, price), (151, "6.00"), (14, "4.00"), (6, price), (31, price), (32, "4.00"),
        (880, "t-1"), (1057, "N"), (704, "4.00"), (705, "0.00"),
        (136, "2"), (137, "0.07"), (138, "USD"), (139, "4"), (891, "0"), (137, "0.01"), (138, "USD"), (139, "4"), (891, "0"),
        (1703, "1"), (1704, "-1.88"), (1705, "BALANCE"),
    ]
    return parse(encode("FIXT.1.1", [(35, "8"), *HEADER, *body]))


@pytest.mark.parametrize("price, use_dollars", [("45", False), ("0.4500", True)])
def test_trade_report_reads_in_either_unit(price, use_dollars) -> None:
    report = parse_execution_report(trade_report(price, use_dollars), use_dollars=use_dollars)
    assert (report.exec_type, report.ord_status, report.side) == (ExecType.TRADE, OrdStatus.PARTIALLY_FILLED, WireSide.BUY_YES)
    assert report.yes_price == D("0.45") and report.shard == 1
    assert report.fill is not None
    assert (report.fill.yes_price, report.fill.quantity, report.fill.fee, report.fill.aggressor) == (D("0.45"), D(4), D("0.08"), False)
    assert (report.long_qty, report.short_qty) == (D(4), D(0))
    assert report.fill.balance_change == D("-1.88")


def test_reject_report_carries_a_typed_reason() -> None:
    body = [(37, "NONE"), (11, "c-1"), (17, "5;1"), (150, "8"), (39, "8"), (55, "X"), (54, "1"), (151, "0"), (14, "0"),
            (6, "0"), (103, "3"), (58, "INSUFFICIENT_BALANCE")]
    report = parse_execution_report(parse(encode("FIX.4.4", [(35, "8"), *HEADER, *body])), use_dollars=False)
    assert report.reason is not None and report.reason.code is RejectCode.INSUFFICIENT_BALANCE and report.reason.number == 3


def test_unreadable_reports_say_what_is_missing() -> None:
    with pytest.raises(ReportError, match=r"without ExecID \(17\)"):
        parse_execution_report([(150, "0"), (39, "0"), (54, "1")], use_dollars=False)
    with pytest.raises(ReportError, match="value we do not know"):
        parse_execution_report([(150, "Z"), (39, "0"), (54, "1")], use_dollars=False)
    with pytest.raises(ReportError, match="Trade ExecutionReport without LastPx"):
        parse_execution_report([(150, "F"), (39, "1"), (54, "1"), (17, "1;1"), (37, "o"), (55, "X")], use_dollars=False)


def test_cancel_reject() -> None:
    body = [(37, "O-1"), (11, "k-1"), (41, "c-1"), (39, "0"), (434, "1"), (102, "1"), (58, "ORDER_NOT_FOUND")]
    reject = parse_cancel_reject(parse(encode("FIXT.1.1", [(35, "9"), *HEADER, *body])))
    assert (reject.cl_ord_id, reject.orig_cl_ord_id, reject.response_to) == ("k-1", "c-1", CxlRejResponseTo.CANCEL)
    assert reject.reason.number == 1 and reject.reason.code is RejectCode.ORDER_NOT_FOUND
