"""The gateway's pure translation, without sockets: OMS FIX 4.4 requests in (engine requests or
refusals naming the tag), book events out (FIX 4.4 ExecutionReports and OrderCancelRejects), and
every OMS-bound message valid against QuickFIX's FIX 4.4 dictionary."""

from __future__ import annotations

import tempfile
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal as D
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fixengine.gateway.outbound import Fix44Check
from fixengine.gateway.translate import (
    BusinessRefusal,
    CancelRefusal,
    Entitlements,
    ExecIds,
    MassCancel,
    MassCancelRefusal,
    OmsChain,
    OmsMessage,
    OrderRefusal,
    SessionRefusal,
    StatusRequest,
    Translated,
    catch_up,
    mass_cancel_report,
    reports,
    status_reports,
    translate,
)
from fixengine.kalshi.prices import Action, Contract, WireSide
from fixengine.orders.book import Order, OrderBook, OrderEvent, Status
from fixengine.orders.reports import (
    CancelReject,
    CxlRejResponseTo,
    ExecType,
    Fill,
    OrdStatus,
    Reason,
    RejectCode,
)
from fixengine.orders.requests import CancelOrder, NewOrder, ReplaceOrder, TimeInForce
from fixengine.orders.wire import first_values
from tests.helpers.orders import BOOK_TICKER
from tests.helpers.reports import FakeExchange

NOW = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
ENT = Entitlements(max_quantity=D(100), max_notional=D(50), ticker_pattern=r"HIGHNY-.*|KXTEST-.*",
                   may_mass_cancel=True)
NEW_ORDER = [(35, "D"), (34, "7"), (11, "oms-1"), (55, BOOK_TICKER), (54, "1"), (38, "10"), (40, "2"),
             (44, "0.45"), (59, "1"), (60, "20261130-10:00:00.000")]


def ids() -> object:
    counter = iter(range(1, 1000))
    return lambda: f"k-{next(counter)}"


def with_fields(base: list[tuple[int, str]], **changes: str | None) -> list[tuple[int, str]]:
    """``base`` with tag ``tNN`` set to a value (or dropped, for None)."""
    tags = {int(k[1:]): v for k, v in changes.items()}
    out = [(t, tags.get(t, v)) for t, v in base]
    out += [(t, v) for t, v in tags.items() if t not in dict(base)]
    return [(t, v) for t, v in out if v is not None]


def book_with_order(key: str = "k-0", quantity: D = D(10)) -> tuple[OrderBook, FakeExchange]:
    book = OrderBook()
    book.submit(NewOrder.create(ticker=BOOK_TICKER, action=Action.BUY, contract=Contract.YES, quantity=quantity,
                                price=D("0.45"), client_order_id=key))
    return book, FakeExchange(key, quantity)


def keep(message: OmsMessage) -> dict[int, str]:
    """Every OMS-bound message a test looks at is first checked against the FIX 4.4 dictionary."""
    validate(message)
    return first_values(message.fields)


# --- inbound ----------------------------------------------------------------------------------------


def test_a_new_order_single_becomes_a_new_order_on_the_yes_book() -> None:
    result = translate(NEW_ORDER, ENT, {}, new_id=ids())
    assert isinstance(result, Translated) and result.cl_ord_id == "oms-1"
    order = result.request
    assert isinstance(order, NewOrder)
    assert (order.ticker, order.action, order.contract, order.quantity, order.price) == (
        BOOK_TICKER, Action.BUY, Contract.YES, D(10), D("0.45"))
    assert order.time_in_force is TimeInForce.GTC and order.client_order_id == "k-1"


def test_an_oms_order_joins_a_kalshi_order_group_by_its_secondary_cl_ord_id() -> None:
    """SecondaryClOrdID (526) is Kalshi's order-group id on a NewOrderSingle: passed on as it is."""
    result = translate(with_fields(NEW_ORDER, t526="0b9e7c1e-2f1c-4a8e-9d2f-6c1f3b8a7e10"), ENT, {}, new_id=ids())
    assert isinstance(result, Translated) and isinstance(result.request, NewOrder)
    assert result.request.order_group_id == "0b9e7c1e-2f1c-4a8e-9d2f-6c1f3b8a7e10"
    plain = translate(NEW_ORDER, ENT, {}, new_id=ids())
    assert isinstance(plain, Translated) and plain.request.order_group_id is None  # type: ignore[union-attr]


def test_an_oms_buys_no_by_selling_yes_at_one_minus_the_price() -> None:
    """Buy 10 NO at $0.30: 54=2 at 44=0.70."""
    result = translate(with_fields(NEW_ORDER, t54="2", t44="0.70"), ENT, {}, new_id=ids())
    assert isinstance(result, Translated) and isinstance(result.request, NewOrder)
    assert result.request.yes_quote.side is WireSide.SELL_YES and result.request.yes_quote.yes_price == D("0.70")


def test_no_time_in_force_means_day_and_gtd_carries_its_expiry() -> None:
    day = translate(with_fields(NEW_ORDER, t59=None), ENT, {})
    assert isinstance(day, Translated) and day.request.time_in_force is TimeInForce.DAY  # type: ignore[union-attr]
    gtd = translate(with_fields(NEW_ORDER, t59="6", t126="20261201-00:00:00"), ENT, {})
    assert isinstance(gtd, Translated) and gtd.request.expire_time == datetime(2026, 12, 1, tzinfo=UTC)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("changes", "kind", "tag", "reason"),
    [
        ({"t44": "0.455"}, OrderRefusal, 44, 99),  # off the cent grid
        ({"t44": "1"}, OrderRefusal, 44, 99),
        ({"t38": "1.005"}, OrderRefusal, 38, 13),  # not in 0.01 steps
        ({"t38": "0"}, OrderRefusal, 38, 13),
        ({"t55": "not a ticker!"}, OrderRefusal, 55, 1),
        ({"t55": "OTHER-26JAN"}, OrderRefusal, 55, 0),  # a market the client may not trade
        ({"t38": "101"}, OrderRefusal, 38, 3),  # above max quantity
        ({"t38": "90", "t44": "0.60"}, OrderRefusal, 38, 3),  # $54 notional, above $50
        ({"t40": "1"}, OrderRefusal, 40, 11),  # market order
        ({"t54": "5"}, OrderRefusal, 54, 11),  # sell short
        ({"t59": "2"}, OrderRefusal, 59, 11),  # at the opening
        ({"t18": "G"}, OrderRefusal, 18, 11),
        ({"t44": None}, SessionRefusal, 44, 1),
        ({"t11": None}, SessionRefusal, 11, 1),
        ({"t38": "ten"}, SessionRefusal, 38, 6),
        ({"t54": "Z"}, SessionRefusal, 54, 5),
        ({"t59": "6"}, SessionRefusal, 126, 1),  # GTD without ExpireTime
        ({"t59": "6", "t126": "tomorrow"}, SessionRefusal, 126, 6),
    ],
)
def test_a_new_order_is_refused_naming_the_tag(changes: dict[str, str | None], kind: type, tag: int, reason: int) -> None:
    result = translate(with_fields(NEW_ORDER, **changes), ENT, {})
    assert isinstance(result, kind), result
    assert (result.tag, result.reason) == (tag, reason), result  # type: ignore[attr-defined]
    assert f"({tag})" in result.text  # type: ignore[attr-defined]
    message = keep(result.message(ExecIds("x"), NOW))  # type: ignore[attr-defined]
    if kind is OrderRefusal:
        assert (message[150], message[39], message[103]) == ("8", "8", str(reason))
        assert message[11] == "oms-1" and message[37] == "NONE"
    else:
        assert (message[45], message[371], message[373]) == ("7", str(tag), str(reason))


def test_a_new_order_with_a_clordid_used_before_is_refused_as_duplicate() -> None:
    book, _ = book_with_order()
    result = translate(NEW_ORDER, ENT, {"oms-1": book.order("k-0")})
    assert isinstance(result, OrderRefusal) and (result.tag, result.reason) == (11, 6)


def test_a_repeated_tag_is_a_session_reject() -> None:
    result = translate(NEW_ORDER + [(55, "KXTEST-26JAN")], ENT, {})
    assert isinstance(result, SessionRefusal) and (result.tag, result.reason) == (55, 13)


def test_unsupported_and_unentitled_msg_types_get_a_business_reject() -> None:
    status = translate([(35, "BE"), (34, "3"), (11, "s-1")], ENT, {})
    assert isinstance(status, BusinessRefusal) and (status.tag, status.reason) == (35, 3)
    no_replace = Entitlements(max_quantity=D(1), max_notional=D(1), msg_types=frozenset({"D", "F"}))
    replace = translate([(35, "G"), (34, "4"), (11, "r-1"), (41, "oms-1")], no_replace, {})
    assert isinstance(replace, BusinessRefusal) and replace.reason == 6
    for refusal in (status, replace):
        message = keep(refusal.message(ExecIds(), NOW))
        assert message[372] == refusal.ref_msg_type and message[380] == str(refusal.reason)


CANCEL = [(35, "F"), (34, "8"), (11, "oms-2"), (41, "oms-1"), (55, BOOK_TICKER), (54, "1"), (38, "10")]
REPLACE = [(35, "G"), (34, "9"), (11, "oms-3"), (41, "oms-1"), (55, BOOK_TICKER), (54, "1"), (38, "20"), (40, "2"),
           (44, "0.50")]


def live_order() -> Order:
    book, exchange = book_with_order()
    book.apply(exchange.new())
    return book.order("k-0")


def test_a_cancel_request_names_the_book_order_of_its_origclordid() -> None:
    result = translate(CANCEL, ENT, {"oms-1": live_order()}, new_id=ids())
    assert isinstance(result, Translated) and result.request == CancelOrder(order="k-0", client_order_id="k-1")
    assert (result.cl_ord_id, result.orig_cl_ord_id, result.order_key) == ("oms-2", "oms-1", "k-0")


def test_a_replace_request_carries_the_new_total_and_price() -> None:
    result = translate(REPLACE, ENT, {"oms-1": live_order()}, new_id=ids())
    assert isinstance(result, Translated)
    assert result.request == ReplaceOrder(order="k-0", quantity=D(20), price=D("0.50"), client_order_id="k-1")


def test_cancels_and_replaces_are_refused_with_an_order_cancel_reject() -> None:
    order = live_order()
    done = Order(**{**{s: getattr(order, s) for s in Order.__slots__}, "status": order.status.CANCELED})  # type: ignore[attr-defined]
    cases = [
        (CANCEL, {}, 41, 1, CxlRejResponseTo.CANCEL),
        (with_fields(CANCEL, t11="oms-1"), {"oms-1": order}, 11, 6, CxlRejResponseTo.CANCEL),
        (CANCEL, {"oms-1": done}, 41, 0, CxlRejResponseTo.CANCEL),
        (with_fields(CANCEL, t55="KXTEST-OTHER"), {"oms-1": order}, 55, 1, CxlRejResponseTo.CANCEL),
        (with_fields(REPLACE, t44="0.505"), {"oms-1": order}, 44, 99, CxlRejResponseTo.REPLACE),
        (with_fields(REPLACE, t38="500"), {"oms-1": order}, 38, 99, CxlRejResponseTo.REPLACE),
    ]
    for fields, orders, tag, reason, response_to in cases:
        result = translate(fields, ENT, orders)
        assert isinstance(result, CancelRefusal), result
        assert (result.tag, result.reason, result.response_to) == (tag, reason, response_to), result
        message = keep(result.message(ExecIds(), NOW))
        assert (message[11], message[41], message[434], message[102]) == (
            fields[2][1], "oms-1", response_to.value, str(reason))
        assert message[39] == ("8" if not orders else {"canceled": "4"}.get(orders["oms-1"].status.value, "0"))


def test_a_mass_cancel_covers_the_clients_own_open_orders_only() -> None:
    order = live_order()
    other = Order(**{**{s: getattr(order, s) for s in Order.__slots__}, "key": "k-9", "ticker": "KXTEST-X"})  # type: ignore[attr-defined]
    closed = Order(**{**{s: getattr(order, s) for s in Order.__slots__}, "key": "k-8", "status": order.status.FILLED})  # type: ignore[attr-defined]
    orders = {"oms-1": order, "oms-1b": order, "oms-9": other, "oms-8": closed}
    everything = translate([(35, "q"), (11, "m-1"), (530, "7")], ENT, orders)
    assert isinstance(everything, Translated) and everything.request == MassCancel("7", ("k-0", "k-9"))
    by_symbol = translate([(35, "q"), (11, "m-2"), (530, "1"), (55, "KXTEST-X")], ENT, orders)
    assert isinstance(by_symbol, Translated) and by_symbol.request == MassCancel("1", ("k-9",), "KXTEST-X")
    ack = keep(mass_cancel_report("m-1", everything.request))  # type: ignore[arg-type]
    assert (ack[531], ack[533]) == ("7", "2")


def test_an_order_status_request_is_answered_from_the_book_with_the_omss_clordid() -> None:
    order = live_order()
    asked = translate([(35, "H"), (34, "5"), (11, "oms-1"), (790, "st-1"), (55, BOOK_TICKER), (54, "1")], ENT,
                      {"oms-1": order})
    assert isinstance(asked, Translated) and isinstance(asked.request, StatusRequest)
    [report] = status_reports(asked.request, {"k-0": order}, {"k-0": OmsChain("oms-1")}, ExecIds("s"), NOW)
    f = keep(report)
    assert (f[150], f[39], f[11], f[37], f[790], f[151], f[14]) == ("I", "0", "oms-1", "O-1", "st-1", "10.00", "0.00")


def test_an_order_status_request_for_an_unknown_clordid_says_unknown_order() -> None:
    asked = translate([(35, "H"), (34, "5"), (11, "nobody"), (55, BOOK_TICKER), (54, "2")], ENT, {})
    assert isinstance(asked, Translated) and isinstance(asked.request, StatusRequest)
    [report] = status_reports(asked.request, {}, {}, ExecIds(), NOW)
    f = keep(report)
    assert (f[150], f[39], f[103], f[11], f[55], f[54]) == ("I", "8", "5", "nobody", BOOK_TICKER, "2")


def test_a_mass_status_request_reports_each_open_order_of_the_client_then_says_last() -> None:
    order = live_order()
    other = Order(**{**{s: getattr(order, s) for s in Order.__slots__}, "key": "k-9", "ticker": "KXTEST-X"})  # type: ignore[attr-defined]
    closed = Order(**{**{s: getattr(order, s) for s in Order.__slots__}, "key": "k-8", "status": order.status.FILLED})  # type: ignore[attr-defined]
    orders = {"oms-1": order, "oms-1b": order, "oms-9": other, "oms-8": closed}
    book = {o.key: o for o in orders.values()}
    chains = {"k-0": OmsChain("oms-1b"), "k-9": OmsChain("oms-9")}
    everything = translate([(35, "AF"), (584, "ms-1"), (585, "7")], ENT, orders)
    assert isinstance(everything, Translated) and isinstance(everything.request, StatusRequest)
    reports_ = [keep(m) for m in status_reports(everything.request, book, chains, ExecIds(), NOW)]
    assert [(f[11], f[584], f[911], f.get(912)) for f in reports_] == [("oms-1b", "ms-1", "2", None), ("oms-9", "ms-1", "2", "Y")]
    by_symbol = translate([(35, "AF"), (584, "ms-2"), (585, "1"), (55, "KXTEST-X")], ENT, orders)
    assert isinstance(by_symbol, Translated) and by_symbol.request.orders == ("k-9",)  # type: ignore[union-attr]
    nothing = translate([(35, "AF"), (584, "ms-3"), (585, "1"), (55, "KXTEST-NONE")], ENT, orders)
    [empty] = status_reports(nothing.request, book, chains, ExecIds(), NOW)  # type: ignore[union-attr]
    assert (keep(empty)[911], keep(empty)[912]) == ("0", "Y")
    malformed = translate([(35, "AF"), (584, "ms-4"), (585, "8")], ENT, orders)
    assert isinstance(malformed, SessionRefusal) and (malformed.tag, malformed.reason) == (585, 5)


def test_a_mass_cancel_is_refused_when_not_entitled_or_not_supported() -> None:
    not_entitled = Entitlements(max_quantity=D(1), max_notional=D(1))
    refused = translate([(35, "q"), (11, "m-1"), (530, "7")], not_entitled, {})
    assert isinstance(refused, MassCancelRefusal) and refused.tag == 35
    by_product = translate([(35, "q"), (11, "m-2"), (530, "3")], ENT, {})
    assert isinstance(by_product, MassCancelRefusal) and (by_product.tag, by_product.reason) == (530, 0)
    for r in (refused, by_product):
        assert keep(r.message(ExecIds(), NOW))[531] == "0"


# --- outbound ---------------------------------------------------------------------------------------


def tell(events: list, chain: OmsChain, exec_ids: ExecIds) -> tuple[list[dict[int, str]], OmsChain]:
    out = []
    for event in events:
        if isinstance(event, OrderEvent):
            messages, chain = reports(event, chain, exec_ids, NOW)
            out += [(m.msg_type, keep(m)) for m in messages]
    return out, chain  # type: ignore[return-value]


def er(message: tuple[str, dict[int, str]]) -> tuple[str, ...]:
    msg_type, f = message
    return (msg_type, f[150], f[39], f[11], f.get(41, "-"), f[14], f[151])


def test_new_partial_fill_then_cancel_on_the_oms_chain() -> None:
    book, ex = book_with_order()
    exec_ids, chain = ExecIds("g"), OmsChain("oms-1")
    out, chain = tell(book.apply(ex.new()), chain, exec_ids)
    out2, chain = tell(book.apply(ex.trade(D(4), D("0.44"))), chain, exec_ids)
    book.cancel("k-0", "k-c")
    chain = chain.requested("oms-2", "F")
    out3, chain = tell(book.apply(ex.report(ExecType.PENDING_CANCEL, OrdStatus.PENDING_CANCEL, cl="k-c", orig="k-0")),
                       chain, exec_ids)
    out4, chain = tell(book.apply(ex.trade(D(1), D("0.45"))), chain, exec_ids)  # a fill during the pending cancel
    out5, chain = tell(book.apply(ex.canceled("k-c")), chain, exec_ids)
    assert [er(m) for m in out + out2 + out3 + out4 + out5] == [
        ("8", "0", "0", "oms-1", "-", "0.00", "10.00"),
        ("8", "F", "1", "oms-1", "-", "4.00", "6.00"),
        ("8", "6", "6", "oms-2", "oms-1", "4.00", "6.00"),
        ("8", "F", "6", "oms-1", "-", "5.00", "5.00"),  # keeps the order's ClOrdID, OrdStatus pending cancel
        ("8", "4", "4", "oms-2", "oms-1", "5.00", "0.00"),
    ]
    fill = out2[0][1]
    assert (fill[32], fill[31], fill[12], fill[13], fill[6], fill[37]) == ("4.00", "0.44", "0.01", "3", "0.44", "O-1")
    assert out4[0][1][6] == "0.442"  # (4 x 0.44 + 1 x 0.45) / 5
    execs = [f[17] for _, f in out + out2 + out3 + out4 + out5]
    assert len(set(execs)) == len(execs) and execs[0] == "g1"
    assert chain.done and chain.cl_ord_id == "oms-2"


def test_kalshis_folded_new_and_trade_becomes_a_new_then_a_trade() -> None:
    book, ex = book_with_order()
    out, chain = tell(book.apply(ex.trade(D(10))), OmsChain("oms-1"), ExecIds())
    assert [er(m) for m in out] == [
        ("8", "0", "0", "oms-1", "-", "0.00", "10.00"),
        ("8", "F", "2", "oms-1", "-", "10.00", "0.00"),
    ]
    assert chain.done


def test_an_ioc_fill_that_cancels_the_rest_becomes_a_trade_then_a_cancel() -> None:
    book, ex = book_with_order()
    _, chain = tell(book.apply(ex.new()), OmsChain("oms-1"), ExecIds())
    ex.cum = D(3)
    ioc = ex.report(ExecType.TRADE, OrdStatus.CANCELED, leaves=D(0),
                    fill=Fill("f9", "t9", D("0.45"), D(3), D("0.02"), True),
                    reason=Reason.of("IMMEDIATE_OR_CANCELLED", None))
    out, chain = tell(book.apply(ioc), chain, ExecIds())
    assert [er(m) for m in out] == [
        ("8", "F", "1", "oms-1", "-", "3.00", "7.00"),
        ("8", "4", "4", "oms-1", "-", "3.00", "0.00"),
    ]
    # (no Text: the book keeps no reason for a Trade that ends the order)


def test_a_replace_moves_the_chain_and_reports_the_new_terms() -> None:
    book, ex = book_with_order()
    _, chain = tell(book.apply(ex.new()), OmsChain("oms-1"), ExecIds())
    book.replace("k-0", "k-r", D(20))
    chain = chain.requested("oms-3", "G")
    out, chain = tell(book.apply(ex.replaced("k-r", D(20), D("0.50"))), chain, ExecIds())
    assert [er(m) for m in out] == [("8", "5", "0", "oms-3", "oms-1", "0.00", "20.00")]
    assert (out[0][1][38], out[0][1][44]) == ("20.00", "0.5")
    assert chain.cl_ord_id == "oms-3" and chain.pending is None


def test_a_kalshi_reject_carries_its_code_and_text() -> None:
    book, ex = book_with_order()
    reject = ex.report(ExecType.REJECTED, OrdStatus.REJECTED, leaves=D(0),
                       reason=Reason.of("INSUFFICIENT_BALANCE", 3))
    out, _ = tell(book.apply(reject), OmsChain("oms-1"), ExecIds())
    assert [er(m) for m in out] == [("8", "8", "8", "oms-1", "-", "0.00", "0.00")]
    assert (out[0][1][103], out[0][1][58]) == ("3", "INSUFFICIENT_BALANCE")


def test_an_expiry_is_reported_as_expired() -> None:
    book, ex = book_with_order()
    _, chain = tell(book.apply(ex.new()), OmsChain("oms-1"), ExecIds())
    out, _ = tell(book.apply(ex.report(ExecType.EXPIRED, OrdStatus.EXPIRED, leaves=D(0))), chain, ExecIds())
    assert [er(m) for m in out] == [("8", "C", "C", "oms-1", "-", "0.00", "0.00")]


def test_a_refused_cancel_becomes_an_order_cancel_reject_and_kalshis_code_is_mapped_to_fix44() -> None:
    book, ex = book_with_order()
    _, chain = tell(book.apply(ex.new()), OmsChain("oms-1"), ExecIds())
    book.replace("k-0", "k-r", D(20))
    chain = chain.requested("oms-3", "G")
    refused = CancelReject("k-r", "k-0", "O-1", OrdStatus.NEW, CxlRejResponseTo.REPLACE,
                           Reason.of("SELF_CROSS_ATTEMPT", 18))
    out, chain = tell(book.apply(refused), chain, ExecIds())
    assert len(out) == 1 and out[0][0] == "9"
    f = out[0][1]
    assert (f[11], f[41], f[37], f[39], f[434], f[102], f[58]) == (
        "oms-3", "oms-1", "O-1", "0", "2", "99", "SELF_CROSS_ATTEMPT")  # 18 is not a FIX 4.4 CxlRejReason
    assert chain.pending is None and chain.cl_ord_id == "oms-1"


# --- FIX 4.4 validity and quantities ----------------------------------------------------------------

CHECK = Fix44Check(Path(tempfile.mkdtemp(prefix="fix44-")))  # the dictionary is written once, here


def validate(message: OmsMessage) -> None:
    problem = CHECK.problem(message.msg_type, message.fields)
    assert problem is None, f"{problem}: {message}"


def test_the_dictionary_check_sees_a_bad_message() -> None:
    missing = CHECK.problem("8", [(37, "O-1"), (11, "x"), (17, "1"), (150, "F")])
    assert missing is not None and "Required tag missing" in missing
    # Kalshi's CxlRejReason 18 is not FIX 4.4's (the gateway sends 99)
    wrong = CHECK.problem("9", [(37, "O-1"), (11, "a"), (41, "b"), (39, "0"), (434, "2"), (102, "18")])
    assert wrong is not None and "102" in wrong


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.integers(1, 400).map(lambda n: ("fill", D(n) / 100)), st.just(("cancel", None)),
                          st.just(("new", None))), max_size=12))
def test_random_fills_and_cancels_keep_the_quantities_adding_up(steps: list) -> None:
    quantity = D(10)
    book, ex = book_with_order(quantity=quantity)
    chain, exec_ids, cum_seen = OmsChain("oms-1"), ExecIds(), D(0)
    messages: list[OmsMessage] = []
    for kind, qty in steps:
        if kind == "fill":
            qty = min(qty, quantity - ex.cum)
            if qty <= 0:
                continue
            events = book.apply(ex.trade(qty))
        elif kind == "new":
            events = book.apply(ex.new())
        else:
            events = book.apply(ex.report(ExecType.CANCELED, OrdStatus.CANCELED, leaves=D(0)))
        for event in events:
            if isinstance(event, OrderEvent):
                out, chain = reports(event, chain, exec_ids, NOW)
                messages += out
    for message in messages:
        validate(message)
        f = first_values(message.fields)
        cum, leaves, order_qty = D(f[14]), D(f[151]), D(f[38])
        assert cum >= cum_seen
        cum_seen = cum
        if f[39] in ("2", "4", "C", "8"):  # done: nothing leaves
            assert leaves == 0 and cum <= order_qty and (f[39] != "2" or cum == order_qty)
        else:
            assert cum + leaves == order_qty, f
    assert len({first_values(m.fields)[17] for m in messages}) == len(messages)


# --- after a restart: what the OMS must still be told -------------------------------------------------


def told(book: OrderBook, ex: FakeExchange, key: str = "k-0") -> tuple[OmsChain, ExecIds]:
    """The chain of an order whose New the OMS was told."""
    chain, exec_ids = OmsChain("oms-1", order_qty=D(10)), ExecIds()
    for event in book.apply(ex.new()):
        if isinstance(event, OrderEvent):
            _, chain = reports(event, chain, exec_ids, NOW)
    return chain, exec_ids


def test_catch_up_tells_missed_fills_as_one_trade_then_the_cancel() -> None:
    book, ex = book_with_order()
    chain, exec_ids = told(book, ex)
    book.apply(ex.trade(D(3), D("0.40")))
    book.apply(ex.trade(D(1), D("0.44")))
    book.apply(ex.report(ExecType.CANCELED, OrdStatus.CANCELED, leaves=D(0)))
    out, after = catch_up(book.order("k-0"), chain, None, exec_ids, NOW)
    trade, canceled = (keep(m) for m in out)
    # LastPx: the fills' average from Kalshi's AvgPx; this exchange reports none, so the limit price
    assert (trade[150], trade[32], trade[31], trade[14], trade[151], trade[39]) == ("F", "4.00", "0.45", "4.00", "6.00", "1")
    assert (canceled[150], canceled[14], canceled[151], canceled[38]) == ("4", "4.00", "0.00", "10.00")
    assert after.done and after.cum_qty == D(4)
    assert catch_up(book.order("k-0"), after, None, exec_ids, NOW) == ([], after)  # told once


def test_catch_up_of_a_replace_done_and_a_cancel_refused_while_the_gateway_was_down() -> None:
    book, ex = book_with_order()
    chain, exec_ids = told(book, ex)
    book.replace("k-0", "k-1", D(6))
    book.apply(ex.replaced("k-1", D(6), D("0.46")))
    out, after = catch_up(book.order("k-0"), chain.requested("oms-2", "G"), "k-1", exec_ids, NOW)
    [replaced] = (keep(m) for m in out)
    assert (replaced[150], replaced[11], replaced[41], replaced[38]) == ("5", "oms-2", "oms-1", "6.00")
    assert (after.cl_ord_id, after.pending, after.order_qty) == ("oms-2", None, D(6))

    refused, _ = catch_up(book.order("k-0"), after.requested("oms-3", "F"), "k-2", exec_ids, NOW)
    [reject] = (keep(m) for m in refused)
    assert (refused[0].msg_type, reject[11], reject[41], reject[434]) == ("9", "oms-3", "oms-2", "1")


def test_catch_up_of_an_order_the_exchange_never_got_is_a_reject_with_the_reason() -> None:
    book, _ = book_with_order()
    never = replace(book.order("k-0"), status=Status.REJECTED, reason=Reason(RejectCode.OTHER, None, "never sent"))
    out, after = catch_up(never, OmsChain("oms-1", order_qty=D(10)), None, ExecIds(), NOW)
    [rejected] = (keep(m) for m in out)
    assert (rejected[150], rejected[39], rejected[58]) == ("8", "8", "never sent") and after.done
