"""The simulator's matching engine: a pure state machine fed orders and the time, emitting events."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone
from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fixengine.orders.reports import OrdStatus, RejectCode
from fixengine.orders.requests import SelfTradePrevention, TimeInForce
from fixengine.kalshi.prices import WireSide
from simulator.exchange.matching import (
    MARKET_CLOSED,
    MAX_COST_EXCEEDED,
    ORDER_EXPIRED,
    AccountState,
    Accepted,
    Canceled,
    CancelRefused,
    Exchange,
    Expired,
    MarketConfig,
    MarketStatus,
    OrderSpec,
    PositionMoved,
    Rejected,
    Replaced,
    Traded,
    cost_per_contract,
    day_deadline,
    taker_fee,
)
from tests.helpers.orders import order_spec

BUY, SELL = WireSide.BUY_YES, WireSide.SELL_YES
TICKER = "HIGHNY-26MAR02"
NOW = datetime(2026, 3, 2, 15, 0, tzinfo=timezone.utc)  # 10:00 in New York (EST)


def make_exchange(*accounts: str, balance: D = D(1000), markets: list[MarketConfig] | None = None) -> Exchange:
    return Exchange(markets or [MarketConfig(TICKER)], [AccountState(a, balance) for a in accounts or "ABC"])


def only(events: list, kind: type) -> list:
    return [e for e in events if isinstance(e, kind)]


def kinds(events: list) -> list[type]:
    return [type(e) for e in events]


def trades(events: list) -> list[tuple[str, D, D]]:
    """(maker order id, price, quantity) of each fill."""
    return [(t.maker.order_id, t.yes_price, t.quantity) for t in only(events, Traded)]


def accepted_id(events: list) -> str:
    return only(events, Accepted)[0].order.order_id


# --- fills and priority ---------------------------------------------------------------------


def test_new_partial_then_full_fill_at_the_makers_price() -> None:
    x = make_exchange()
    ev = x.submit(order_spec(TICKER, "A", "a1", SELL, "0.40", 10), NOW)
    assert kinds(ev) == [Accepted]
    maker = ev[0].order
    assert (maker.status, maker.leaves_qty, maker.cum_qty, maker.avg_yes_price) == (OrdStatus.NEW, 10, 0, None)
    assert x.offers(TICKER)[0].order_id == maker.order_id

    ev = x.submit(order_spec(TICKER, "B", "b1", BUY, "0.45", 4), NOW)
    assert kinds(ev) == [Accepted, Traded, PositionMoved, PositionMoved]
    trade = ev[1]
    assert (trade.yes_price, trade.quantity, trade.trade_id) == (D("0.40"), 4, "T1")
    assert trade.taker.status is OrdStatus.FILLED and trade.taker.avg_yes_price == D("0.40")
    assert trade.maker.status is OrdStatus.PARTIALLY_FILLED
    assert (trade.maker.cum_qty, trade.maker.leaves_qty) == (4, 6)
    assert trade.taker_fee == D("0.07") and trade.maker_fee == 0  # 0.07*4*0.4*0.6 = 0.0672 -> 0.07
    assert ev[2:] == [PositionMoved("B", TICKER, D(4)), PositionMoved("A", TICKER, D(-4))]

    ev = x.submit(order_spec(TICKER, "C", "c1", BUY, "0.50", 6), NOW)
    assert trades(ev) == [(maker.order_id, D("0.40"), 6)]
    assert ev[1].maker.status is OrdStatus.FILLED and ev[1].maker.leaves_qty == 0
    assert x.offers(TICKER) == [] and x.bids(TICKER) == [] and x.open_orders() == []
    assert x.order(maker.order_id).cum_qty == 10


def test_same_price_fills_in_arrival_order() -> None:
    x = make_exchange("A", "B", "C")
    first = accepted_id(x.submit(order_spec(TICKER, "A", "a1", SELL, "0.40", 5), NOW))
    second = accepted_id(x.submit(order_spec(TICKER, "C", "c1", SELL, "0.40", 5), NOW))
    ev = x.submit(order_spec(TICKER, "B", "b1", BUY, "0.40", 7), NOW)
    assert trades(ev) == [(first, D("0.40"), 5), (second, D("0.40"), 2)]
    assert [o.leaves_qty for o in x.offers(TICKER)] == [3]


def test_better_price_fills_first_whatever_the_arrival() -> None:
    x = make_exchange()
    worse = accepted_id(x.submit(order_spec(TICKER, "A", "a1", SELL, "0.42", 3), NOW))
    better = accepted_id(x.submit(order_spec(TICKER, "C", "c1", SELL, "0.40", 3), NOW))
    ev = x.submit(order_spec(TICKER, "B", "b1", BUY, "0.45", 10), NOW)
    assert trades(ev) == [(better, D("0.40"), 3), (worse, D("0.42"), 3)]
    taker = only(ev, Traded)[-1].taker
    assert taker.avg_yes_price == D("0.41") and taker.leaves_qty == 4
    assert [(o.yes_price, o.leaves_qty) for o in x.bids(TICKER)] == [(D("0.45"), 4)]


def test_bids_are_matched_highest_first() -> None:
    x = make_exchange()
    low = accepted_id(x.submit(order_spec(TICKER, "A", "a1", BUY, "0.55", 2), NOW))
    high = accepted_id(x.submit(order_spec(TICKER, "C", "c1", BUY, "0.60", 2), NOW))
    ev = x.submit(order_spec(TICKER, "B", "b1", SELL, "0.50", 3), NOW)
    assert trades(ev) == [(high, D("0.60"), 2), (low, D("0.55"), 1)]


def test_buying_no_crosses_a_yes_bid() -> None:
    x = make_exchange()
    bid = accepted_id(x.submit(order_spec(TICKER, "A", "a1", BUY, "0.60", 5), NOW))  # A bids 60c for YES: reserves $3.00
    ev = x.submit(order_spec(TICKER, "B", "b1", SELL, "0.55", 5), NOW)  # B buys NO at 45c: reserves $2.25
    assert trades(ev) == [(bid, D("0.60"), 5)]  # at the bid: B's NO costs 40c
    fee = taker_fee(D(5), D("0.60"))
    assert fee == D("0.09")  # 0.07*5*0.6*0.4 = 0.084
    a, b = x.account("A"), x.account("B")
    assert a.positions == {TICKER: D(5)} and b.positions == {TICKER: D(-5)}
    assert a.balance == D(1000) - D("3.00") and a.reserved == 0
    assert b.balance == D(1000) - D("2.00") - fee and b.reserved == 0  # NO at 40c: 5c improvement back
    assert x.fees_collected == fee


# --- cancel ---------------------------------------------------------------------------------


def test_cancel_releases_collateral_and_takes_the_cancels_cl_ord_id() -> None:
    x = make_exchange()
    x.submit(order_spec(TICKER, "A", "a1", BUY, "0.30", 10), NOW)
    assert x.account("A").reserved == D("3.00") and x.account("A").balance == D(997)
    ev = x.cancel("A", "a1", "a1-x", NOW)
    assert kinds(ev) == [Canceled]
    c = ev[0]
    assert (c.cl_ord_id, c.orig_cl_ord_id, c.text) == ("a1-x", "a1", None)
    assert (c.order.status, c.order.cl_ord_id, c.order.leaves_qty) == (OrdStatus.CANCELED, "a1-x", 0)
    assert x.account("A").reserved == 0 and x.account("A").balance == D(1000)
    assert x.bids(TICKER) == []


def test_cancel_of_a_partially_filled_order_keeps_its_fills() -> None:
    x = make_exchange()
    x.submit(order_spec(TICKER, "A", "a1", BUY, "0.30", 10), NOW)
    x.submit(order_spec(TICKER, "B", "b1", SELL, "0.30", 4), NOW)
    c = x.cancel("A", "a1", "a2", NOW)[0]
    assert (c.order.cum_qty, c.order.leaves_qty, c.order.status) == (4, 0, OrdStatus.CANCELED)
    assert x.account("A").reserved == 0 and x.account("A").positions == {TICKER: D(4)}


def test_cancel_rejects() -> None:
    x = make_exchange()
    ev = x.cancel("A", "nope", "x1", NOW)
    assert ev == [CancelRefused("A", "x1", "nope", None, 1, RejectCode.ORDER_NOT_FOUND.value, "cancel")]

    x.submit(order_spec(TICKER, "A", "a1", BUY, "0.30", 2), NOW)
    x.submit(order_spec(TICKER, "A", "a2", BUY, "0.31", 2), NOW)
    dup = x.cancel("A", "a1", "a2", NOW)[0]  # a2 is the ClOrdID of an open order
    assert (dup.reason, dup.text, dup.order_id) == (6, "ORDER_ALREADY_EXISTS", "O1")
    assert x.cancel("B", "a1", "x2", NOW)[0].reason == 1  # another account's order is unknown

    x.submit(order_spec(TICKER, "B", "b1", SELL, "0.30", 2), NOW)  # fills a2 (best bid 0.31)
    filled = x.cancel("A", "a2", "x3", NOW)[0]
    assert (filled.reason, filled.text, filled.order.status) == (0, "CANNOT_UPDATE_FILLED_ORDER", OrdStatus.FILLED)

    x.cancel("A", "a1", "x4", NOW)
    for orig in ("a1", "x4"):  # cancelled: too late, by the original or the cancel's ClOrdID
        again = x.cancel("A", orig, "x5", NOW)[0]
        assert isinstance(again, CancelRefused) and again.reason == 0 and again.response_to == "cancel"


def test_cancel_must_name_the_current_cl_ord_id() -> None:
    x = make_exchange()
    x.submit(order_spec(TICKER, "A", "a1", BUY, "0.30", 2), NOW)
    x.replace("A", "a1", "a2", None, D("0.31"), NOW)
    assert x.cancel("A", "a1", "x1", NOW)[0].reason == 1
    assert isinstance(x.cancel("A", "a2", "x1", NOW)[0], Canceled)


# --- replace --------------------------------------------------------------------------------


def test_replace_price_loses_priority() -> None:
    x = make_exchange()
    a = accepted_id(x.submit(order_spec(TICKER, "A", "a1", BUY, "0.41", 5), NOW))
    c = accepted_id(x.submit(order_spec(TICKER, "C", "c1", BUY, "0.40", 5), NOW))
    ev = x.replace("A", "a1", "a2", None, D("0.40"), NOW)
    assert kinds(ev) == [Replaced]
    r = ev[0]
    assert (r.orig_cl_ord_id, r.order.cl_ord_id, r.order.yes_price, r.order.order_id) == ("a1", "a2", D("0.40"), a)
    assert [o.order_id for o in x.bids(TICKER)] == [c, a]
    assert x.account("A").reserved == D("2.00") and x.account("A").balance == D(998)
    assert trades(x.submit(order_spec(TICKER, "B", "b1", SELL, "0.40", 3), NOW)) == [(c, D("0.40"), 3)]


def test_replace_quantity_down_keeps_priority_and_up_loses_it() -> None:
    x = make_exchange()
    a = accepted_id(x.submit(order_spec(TICKER, "A", "a1", BUY, "0.40", 5), NOW))
    c = accepted_id(x.submit(order_spec(TICKER, "C", "c1", BUY, "0.40", 5), NOW))
    r = x.replace("A", "a1", "a2", D(3), None, NOW)[0]
    assert (r.order.quantity, r.order.leaves_qty) == (3, 3)
    assert x.account("A").reserved == D("1.20")
    assert [o.order_id for o in x.bids(TICKER)] == [a, c]
    x.replace("A", "a2", "a3", D(6), None, NOW)
    assert [o.order_id for o in x.bids(TICKER)] == [c, a]
    assert x.account("A").reserved == D("2.40")


def test_replace_quantity_counts_fills() -> None:
    x = make_exchange()
    x.submit(order_spec(TICKER, "A", "a1", BUY, "0.40", 10), NOW)
    x.submit(order_spec(TICKER, "B", "b1", SELL, "0.40", 4), NOW)
    r = x.replace("A", "a1", "a2", D(6), None, NOW)[0]
    assert (r.order.quantity, r.order.cum_qty, r.order.leaves_qty) == (6, 4, 2)
    assert x.account("A").reserved == D("0.80")

    too_small = x.replace("A", "a2", "a3", D(3), None, NOW)
    assert kinds(too_small) == [CancelRefused]
    assert (too_small[0].reason, too_small[0].text) == (2, "INVALID_AMEND_QTY_FOR_ORDER")
    assert too_small[0].response_to == "replace" and too_small[0].order.leaves_qty == 2

    ev = x.replace("A", "a2", "a3", D(4), None, NOW)
    assert kinds(ev) == [Canceled]
    assert (ev[0].cl_ord_id, ev[0].orig_cl_ord_id, ev[0].order.status) == ("a3", "a2", OrdStatus.CANCELED)
    assert (ev[0].order.cum_qty, ev[0].order.leaves_qty) == (4, 0)
    assert x.account("A").reserved == 0 and x.bids(TICKER) == []


def test_replace_to_a_crossing_price_trades_at_the_resting_price() -> None:
    x = make_exchange()
    x.submit(order_spec(TICKER, "A", "a1", BUY, "0.40", 5), NOW)
    maker = accepted_id(x.submit(order_spec(TICKER, "B", "b1", SELL, "0.45", 3), NOW))
    ev = x.replace("A", "a1", "a2", None, D("0.50"), NOW)
    assert kinds(ev) == [Replaced, Traded, PositionMoved, PositionMoved]
    t = ev[1]
    assert (t.maker.order_id, t.yes_price, t.quantity) == (maker, D("0.45"), 3)
    assert t.taker.cl_ord_id == "a2" and t.taker_fee == taker_fee(D(3), D("0.45")) == D("0.06")
    assert [(o.yes_price, o.leaves_qty) for o in x.bids(TICKER)] == [(D("0.50"), 2)]
    a = x.account("A")
    assert a.reserved == D("1.00")
    assert a.balance == D(1000) - D("1.35") - D("1.00") - D("0.06")


def test_replace_rejects() -> None:
    x = make_exchange("A", "B", balance=D(10))
    assert x.replace("A", "zz", "a2", D(2), None, NOW)[0].reason == 1
    x.submit(order_spec(TICKER, "A", "a1", BUY, "0.40", 10), NOW)  # $4 reserved, $6 free
    rich = x.replace("A", "a1", "a2", D(30), None, NOW)[0]  # needs $12, has $6 + $4
    assert (rich.reason, rich.text) == (99, "INSUFFICIENT_BALANCE")
    assert x.replace("A", "a1", "a2", None, D("0.405"), NOW)[0].text == "INVALID_PRICE"
    assert x.replace("A", "a1", "a2", None, D("1"), NOW)[0].reason == 99
    assert x.replace("A", "a1", "a1", D(2), None, NOW)[0].reason == 6
    assert x.bids(TICKER)[0].quantity == 10 and x.account("A").reserved == D(4)  # unchanged

    x.submit(order_spec(TICKER, "A", "a9", SELL, "0.45", 1), NOW)
    self_cross = x.replace("A", "a1", "a3", None, D("0.45"), NOW)[0]
    assert (self_cross.reason, self_cross.text) == (18, "SELF_CROSS_ATTEMPT")

    x.submit(order_spec(TICKER, "B", "b1", SELL, "0.40", 10), NOW)  # fills a1
    late = x.replace("A", "a1", "a4", D(12), None, NOW)[0]
    assert (late.reason, late.text) == (0, "CANNOT_UPDATE_FILLED_ORDER")


def test_post_only_order_cannot_be_amended_through_the_book() -> None:
    x = make_exchange()
    x.submit(order_spec(TICKER, "A", "a1", BUY, "0.40", 5, post_only=True), NOW)
    x.submit(order_spec(TICKER, "B", "b1", SELL, "0.45", 5), NOW)
    ev = x.replace("A", "a1", "a2", None, D("0.45"), NOW)
    assert kinds(ev) == [CancelRefused] and ev[0].text == "POST_ONLY_CROSS"
    assert isinstance(x.replace("A", "a1", "a2", None, D("0.44"), NOW)[0], Replaced)


# --- new order rejects ----------------------------------------------------------------------


def test_duplicate_cl_ord_id_of_an_open_order() -> None:
    x = make_exchange()
    x.submit(order_spec(TICKER, "A", "a1", BUY, "0.30", 1), NOW)
    ev = x.submit(order_spec(TICKER, "A", "a1", BUY, "0.31", 1), NOW)
    assert kinds(ev) == [Rejected] and (ev[0].text, ev[0].ord_rej_reason) == ("ORDER_ALREADY_EXISTS", 6)
    assert isinstance(x.submit(order_spec(TICKER, "B", "a1", BUY, "0.31", 1), NOW)[0], Accepted)  # per account
    x.cancel("A", "a1", "a1-cancel", NOW)
    assert isinstance(x.submit(order_spec(TICKER, "A", "a1", BUY, "0.31", 1), NOW)[0], Accepted)  # no longer open


def test_insufficient_balance() -> None:
    x = make_exchange("A", balance=D(10))
    ev = x.submit(order_spec(TICKER, "A", "a1", SELL, "0.40", "16.67"), NOW)  # a NO costs 60c: $10.002
    assert kinds(ev) == [Rejected] and (ev[0].text, ev[0].ord_rej_reason) == ("INSUFFICIENT_BALANCE", 3)
    assert isinstance(x.submit(order_spec(TICKER, "A", "a2", SELL, "0.40", "16.66"), NOW)[0], Accepted)  # $9.996
    assert x.submit(order_spec(TICKER, "A", "a3", BUY, "0.01", 1), NOW)[0].ord_rej_reason == 3  # $0.004 left


def test_taker_fee_must_be_affordable_too() -> None:
    x = make_exchange("A", "B", balance=D(5))
    x.submit(order_spec(TICKER, "A", "a1", SELL, "0.50", 10), NOW)
    assert x.submit(order_spec(TICKER, "B", "b1", BUY, "0.50", 10), NOW)[0].text == "INSUFFICIENT_BALANCE"  # $5 + $0.18 fee
    assert isinstance(x.submit(order_spec(TICKER, "B", "b2", BUY, "0.50", 10, post_only=True), NOW)[1], Canceled)
    ev = x.submit(order_spec(TICKER, "B", "b3", BUY, "0.50", 9), NOW)  # $4.50 + $0.16
    assert only(ev, Traded)[0].taker_fee == D("0.16") and x.account("B").balance == D("0.34")


@pytest.mark.parametrize(
    ("markets", "ticker", "text", "code"),
    [
        ([MarketConfig(TICKER)], "NOPE-1", "MARKET_NOT_FOUND", 1),
        ([MarketConfig(TICKER, MarketStatus.CLOSED)], TICKER, "MARKET_ALREADY_CLOSED", 2),
        ([MarketConfig(TICKER, MarketStatus.PAUSED)], TICKER, "TRADING_PAUSED", 2),
    ],
)
def test_market_rejects(markets: list[MarketConfig], ticker: str, text: str, code: int) -> None:
    x = make_exchange(markets=markets)
    spec = order_spec(ticker, "A", "a1", BUY, "0.30", 1)
    assert x.submit(spec, NOW) == [Rejected(spec, text, code)]
    assert x.account("A").balance == D(1000)


@pytest.mark.parametrize(
    ("price", "qty", "fields"),
    [
        ("0.405", 1, {}),  # off the cent grid
        ("0", 1, {}),
        ("1", 1, {}),
        ("1.20", 1, {}),
        ("0.30", 0, {}),
        ("0.30", "0.001", {}),
        ("0.30", 1, {"time_in_force": TimeInForce.GTD}),  # GTD without ExpireTime
        ("0.30", 1, {"expire_time": NOW + timedelta(hours=1)}),  # ExpireTime without GTD
        ("0.30", 1, {"post_only": True, "time_in_force": TimeInForce.IOC}),
        ("0.30", 1, {"max_execution_cost": D(0)}),
    ],
)
def test_invalid_orders(price: str, qty: str | int, fields: dict[str, object]) -> None:
    x = make_exchange()
    ev = x.submit(order_spec(TICKER, "A", "a1", BUY, price, qty, **fields), NOW)
    assert kinds(ev) == [Rejected] and (ev[0].text, ev[0].ord_rej_reason) == ("INVALID_ORDER", 11)


def test_subpenny_market_grid() -> None:
    x = make_exchange(markets=[MarketConfig(TICKER, tick=D("0.001"))])
    assert isinstance(x.submit(order_spec(TICKER, "A", "a1", BUY, "0.405", 1), NOW)[0], Accepted)
    assert x.submit(order_spec(TICKER, "A", "a2", BUY, "0.4055", 1), NOW)[0].text == "INVALID_ORDER"
    with pytest.raises(ValueError):
        MarketConfig(TICKER, tick=D("0.03"))


# --- time in force, post only ---------------------------------------------------------------


def test_post_only_that_would_cross_is_cancelled_without_fills() -> None:
    x = make_exchange()
    x.submit(order_spec(TICKER, "A", "a1", SELL, "0.40", 5), NOW)
    ev = x.submit(order_spec(TICKER, "B", "b1", BUY, "0.40", 5, post_only=True), NOW)
    assert kinds(ev) == [Accepted, Canceled] and ev[1].text == "POST_ONLY_CROSS"
    assert ev[1].order.cum_qty == 0 and x.account("B").balance == D(1000)
    assert isinstance(x.submit(order_spec(TICKER, "B", "b2", BUY, "0.39", 5, post_only=True), NOW)[0], Accepted)
    assert [o.cl_ord_id for o in x.bids(TICKER)] == ["b2"]


def test_ioc_fills_what_it_can_and_cancels_the_rest() -> None:
    x = make_exchange()
    x.submit(order_spec(TICKER, "A", "a1", SELL, "0.40", 3), NOW)
    ev = x.submit(order_spec(TICKER, "B", "b1", BUY, "0.45", 5, time_in_force=TimeInForce.IOC), NOW)
    assert kinds(ev) == [Accepted, Traded, PositionMoved, PositionMoved, Canceled]
    c = ev[-1]
    assert (c.text, c.cl_ord_id, c.orig_cl_ord_id) == ("IMMEDIATE_OR_CANCELLED", "b1", None)
    assert (c.order.cum_qty, c.order.leaves_qty, c.order.status) == (3, 0, OrdStatus.CANCELED)
    assert x.account("B").reserved == 0 and x.bids(TICKER) == []
    assert x.account("B").balance == D(1000) - D("1.20") - taker_fee(D(3), D("0.40"))


def test_fok_without_enough_volume_is_cancelled_without_fills() -> None:
    x = make_exchange()
    x.submit(order_spec(TICKER, "A", "a1", SELL, "0.40", 3), NOW)
    x.submit(order_spec(TICKER, "C", "c1", SELL, "0.46", 3), NOW)  # does not cross 0.45
    ev = x.submit(order_spec(TICKER, "B", "b1", BUY, "0.45", 5, time_in_force=TimeInForce.FOK), NOW)
    assert kinds(ev) == [Accepted, Canceled] and ev[1].text == "FOK_INSUFFICIENT_VOLUME"
    assert x.account("B").balance == D(1000) and x.offers(TICKER)[0].leaves_qty == 3

    ev = x.submit(order_spec(TICKER, "B", "b2", BUY, "0.46", 5, time_in_force=TimeInForce.FOK), NOW)
    assert [q for _, _, q in trades(ev)] == [3, 2] and not only(ev, Canceled)
    assert only(ev, Traded)[-1].taker.status is OrdStatus.FILLED


def test_gtd_expires_via_expire() -> None:
    x = make_exchange()
    deadline = NOW + timedelta(hours=2)
    ev = x.submit(order_spec(TICKER, "A", "a1", BUY, "0.30", 10, time_in_force=TimeInForce.GTD, expire_time=deadline), NOW)
    assert ev[0].order.expires_at == deadline
    assert x.expire(deadline - timedelta(microseconds=1)) == []
    ev = x.expire(deadline)
    assert kinds(ev) == [Expired] and ev[0].text == ORDER_EXPIRED
    assert ev[0].order.status is OrdStatus.EXPIRED and ev[0].order.leaves_qty == 0
    assert x.account("A").balance == D(1000) and x.account("A").reserved == 0 and x.bids(TICKER) == []


def test_stale_orders_expire_before_anything_else_happens() -> None:
    x = make_exchange()
    deadline = NOW + timedelta(hours=2)
    x.submit(order_spec(TICKER, "A", "a1", SELL, "0.30", 10, time_in_force=TimeInForce.GTD, expire_time=deadline), NOW)
    ev = x.submit(order_spec(TICKER, "B", "b1", BUY, "0.30", 10), deadline)
    assert kinds(ev) == [Expired, Accepted]


def test_gtd_in_the_past_acts_as_ioc() -> None:
    x = make_exchange()
    x.submit(order_spec(TICKER, "A", "a1", SELL, "0.40", 3), NOW)
    spec = order_spec(TICKER, "B", "b1", BUY, "0.45", 5, time_in_force=TimeInForce.GTD, expire_time=NOW)
    ev = x.submit(spec, NOW)
    assert kinds(ev) == [Accepted, Traded, PositionMoved, PositionMoved, Canceled]
    assert ev[-1].text == "IMMEDIATE_OR_CANCELLED" and x.bids(TICKER) == []


@pytest.mark.parametrize(
    ("now", "deadline"),
    [
        (NOW, datetime(2026, 3, 3, 4, 59, 59, 999000, tzinfo=timezone.utc)),  # EST: UTC-5
        (datetime(2026, 7, 1, 12, tzinfo=timezone.utc), datetime(2026, 7, 2, 3, 59, 59, 999000, tzinfo=timezone.utc)),
        # 23:30 in New York (04:30 UTC the next day) still expires that New York day
        (datetime(2026, 3, 3, 4, 30, tzinfo=timezone.utc),
         datetime(2026, 3, 3, 4, 59, 59, 999000, tzinfo=timezone.utc)),
        # just after midnight in New York: the next day's end
        (datetime(2026, 3, 3, 5, 0, tzinfo=timezone.utc), datetime(2026, 3, 4, 4, 59, 59, 999000, tzinfo=timezone.utc)),
        # the day DST starts (Sunday 8 March 2026): 23:59:59.999 EDT
        (datetime(2026, 3, 8, 12, tzinfo=timezone.utc), datetime(2026, 3, 9, 3, 59, 59, 999000, tzinfo=timezone.utc)),
    ],
)
def test_day_deadline_is_end_of_new_york_day(now: datetime, deadline: datetime) -> None:
    assert day_deadline(now) == deadline


def test_day_order_expires_at_new_york_end_of_day() -> None:
    x = make_exchange()
    ev = x.submit(order_spec(TICKER, "A", "a1", BUY, "0.30", 10, time_in_force=TimeInForce.DAY), NOW)
    end = datetime(2026, 3, 3, 4, 59, 59, 999000, tzinfo=timezone.utc)
    assert ev[0].order.expires_at == end
    assert x.expire(end - timedelta(milliseconds=1)) == []
    assert kinds(x.expire(end)) == [Expired]
    assert x.account("A").balance == D(1000)


# --- self-trade prevention ------------------------------------------------------------------


def test_self_trade_prevention_taker_at_cross_is_the_default() -> None:
    x = make_exchange()
    other = accepted_id(x.submit(order_spec(TICKER, "C", "c1", SELL, "0.39", 3), NOW))
    mine = accepted_id(x.submit(order_spec(TICKER, "A", "a1", SELL, "0.40", 5), NOW))
    x.submit(order_spec(TICKER, "C", "c2", SELL, "0.41", 5), NOW)
    ev = x.submit(order_spec(TICKER, "A", "a2", BUY, "0.45", 10), NOW)
    assert trades(ev) == [(other, D("0.39"), 3)]
    c = ev[-1]
    assert isinstance(c, Canceled) and c.text == "TAKER_CANCEL_FOR_SELF_TRADE_PREVENTION"
    assert (c.order.cum_qty, c.order.cl_ord_id) == (3, "a2")
    assert [o.order_id for o in x.offers(TICKER)][0] == mine and x.bids(TICKER) == []


def test_self_trade_prevention_maker_cancels_the_resting_order() -> None:
    x = make_exchange()
    other = accepted_id(x.submit(order_spec(TICKER, "C", "c1", SELL, "0.39", 3), NOW))
    mine = accepted_id(x.submit(order_spec(TICKER, "A", "a1", SELL, "0.40", 5), NOW))
    third = accepted_id(x.submit(order_spec(TICKER, "C", "c2", SELL, "0.41", 5), NOW))
    spec = order_spec(TICKER, "A", "a2", BUY, "0.45", 10, self_trade_prevention=SelfTradePrevention.MAKER)
    ev = x.submit(spec, NOW)
    assert trades(ev) == [(other, D("0.39"), 3), (third, D("0.41"), 5)]
    maker_cancel = only(ev, Canceled)
    assert len(maker_cancel) == 1 and maker_cancel[0].order.order_id == mine
    assert maker_cancel[0].text == "MAKER_CANCEL_FOR_SELF_TRADE_PREVENTION"
    assert ev.index(maker_cancel[0]) < ev.index(only(ev, Traded)[1])  # in book order
    assert x.offers(TICKER) == [] and [(o.cl_ord_id, o.leaves_qty) for o in x.bids(TICKER)] == [("a2", 2)]
    assert x.account("A").reserved == D("0.90")  # only the bid's 2 x 45c


# --- session-wide cancels, market status ----------------------------------------------------


def test_mass_cancel_by_session() -> None:
    x = make_exchange()
    x.submit(order_spec(TICKER, "A", "a1", BUY, "0.30", 1, session_id="s1"), NOW)
    x.submit(order_spec(TICKER, "A", "a2", BUY, "0.31", 1, session_id="s2"), NOW)
    x.submit(order_spec(TICKER, "A", "a3", SELL, "0.70", 1, session_id="s1"), NOW)
    x.submit(order_spec(TICKER, "B", "b1", BUY, "0.32", 1, session_id="s1"), NOW)
    ev = x.mass_cancel("s1", NOW)
    assert [(e.cl_ord_id, e.orig_cl_ord_id, e.order.status) for e in ev] == [
        ("a1", None, OrdStatus.CANCELED), ("a3", None, OrdStatus.CANCELED), ("b1", None, OrdStatus.CANCELED)
    ]
    assert [o.cl_ord_id for o in x.open_orders()] == ["a2"]
    assert x.account("A").reserved == D("0.31") and x.mass_cancel("s1", NOW) == []


def test_cancel_session_orders_on_disconnect() -> None:
    x = make_exchange()
    x.submit(order_spec(TICKER, "A", "a1", BUY, "0.30", 1, session_id="s1"), NOW)
    x.submit(order_spec(TICKER, "A", "a2", BUY, "0.31", 1, session_id="s2"), NOW)
    x.replace("A", "a1", "a1b", D(2), None, NOW)
    ev = x.cancel_session_orders("s1", NOW)
    assert [(type(e), e.cl_ord_id) for e in ev] == [(Canceled, "a1b")]
    assert [o.cl_ord_id for o in x.open_orders("A")] == ["a2"]


def test_pause_cancels_cancel_on_pause_orders_and_refuses_new_ones() -> None:
    x = make_exchange()
    x.submit(order_spec(TICKER, "A", "a1", BUY, "0.30", 1, cancel_on_pause=True), NOW)
    x.submit(order_spec(TICKER, "A", "a2", BUY, "0.31", 1), NOW)
    ev = x.set_market_status(TICKER, MarketStatus.PAUSED, NOW)
    assert [(e.cl_ord_id, e.text) for e in ev] == [("a1", "TRADING_PAUSED")]
    assert x.market(TICKER).status is MarketStatus.PAUSED
    assert x.submit(order_spec(TICKER, "B", "b1", SELL, "0.31", 1), NOW)[0].text == "TRADING_PAUSED"
    assert x.replace("A", "a2", "a3", D(2), None, NOW)[0].text == "TRADING_PAUSED"
    assert isinstance(x.cancel("A", "a2", "a4", NOW)[0], Canceled)  # cancels still allowed
    assert x.set_market_status(TICKER, MarketStatus.OPEN, NOW) == []
    assert isinstance(x.submit(order_spec(TICKER, "B", "b1", SELL, "0.31", 1), NOW)[0], Accepted)


def test_close_ends_every_resting_order_in_that_market_only() -> None:
    other = "OTHER-26MAR02"
    x = make_exchange(markets=[MarketConfig(TICKER), MarketConfig(other)])
    x.submit(order_spec(TICKER, "A", "a1", BUY, "0.30", 1), NOW)
    x.submit(order_spec(TICKER, "B", "b1", SELL, "0.60", 2), NOW)
    x.submit(order_spec(other, "A", "a2", BUY, "0.30", 1), NOW)
    ev = x.set_market_status(TICKER, MarketStatus.CLOSED, NOW)
    assert [(type(e), e.order.cl_ord_id, e.text) for e in ev] == [(Expired, "a1", MARKET_CLOSED),
                                                                  (Expired, "b1", MARKET_CLOSED)]
    assert [o.cl_ord_id for o in x.open_orders()] == ["a2"]
    assert x.account("B").reserved == 0 and x.account("A").reserved == D("0.30")
    assert x.submit(order_spec(TICKER, "A", "a3", BUY, "0.30", 1), NOW)[0].text == "MARKET_ALREADY_CLOSED"


# --- max execution cost ---------------------------------------------------------------------


def test_max_execution_cost() -> None:
    x = make_exchange()
    x.submit(order_spec(TICKER, "A", "a1", SELL, "0.40", 5), NOW)
    x.submit(order_spec(TICKER, "A", "a2", SELL, "0.45", 5), NOW)
    # 5 x 0.40 + 5 x 0.45 = $4.25 to buy 10
    ev = x.submit(order_spec(TICKER, "B", "b1", BUY, "0.50", 10, max_execution_cost=D("4.24")), NOW)
    assert kinds(ev) == [Accepted, Canceled] and ev[1].text == MAX_COST_EXCEEDED
    assert x.account("B").balance == D(1000)
    ev = x.submit(order_spec(TICKER, "B", "b2", BUY, "0.50", 10, max_execution_cost=D("4.25")), NOW)
    assert [q for _, _, q in trades(ev)] == [5, 5]


def test_max_execution_cost_counts_the_no_price_and_the_unfilled_rest_at_the_limit() -> None:
    x = make_exchange()
    x.submit(order_spec(TICKER, "A", "a1", BUY, "0.60", 2), NOW)
    # buy NO: 2 fill at 40c, 3 would rest at 45c: $0.80 + $1.35 = $2.15
    ev = x.submit(order_spec(TICKER, "B", "b1", SELL, "0.55", 5, max_execution_cost=D("2.14")), NOW)
    assert ev[-1].text == MAX_COST_EXCEEDED
    ev = x.submit(order_spec(TICKER, "B", "b2", SELL, "0.55", 5, max_execution_cost=D("2.15")), NOW)
    assert [q for _, _, q in trades(ev)] == [2] and x.offers(TICKER)[0].leaves_qty == 3


# --- money ----------------------------------------------------------------------------------


def test_taker_fee_rounds_up_to_the_cent() -> None:
    assert taker_fee(D(1), D("0.50")) == D("0.02")  # 0.0175
    assert taker_fee(D(100), D("0.50")) == D("1.75")
    assert taker_fee(D("0.01"), D("0.01")) == D("0.01")  # 0.00000693
    assert taker_fee(D(10), D("0.90")) == D("0.07")  # 0.063
    assert cost_per_contract(BUY, D("0.30")) == D("0.30") and cost_per_contract(SELL, D("0.30")) == D("0.70")


def test_balances_positions_and_netting() -> None:
    x = make_exchange("A", "B", "C", balance=D(100))
    x.submit(order_spec(TICKER, "B", "b1", SELL, "0.40", 10), NOW)
    x.submit(order_spec(TICKER, "A", "a1", BUY, "0.40", 10), NOW)  # A takes 10 YES at 40c
    fee1 = taker_fee(D(10), D("0.40"))
    assert fee1 == D("0.17")  # 0.168
    assert x.account("A").balance == D(100) - D(4) - fee1 and x.account("A").positions == {TICKER: D(10)}
    assert x.account("B").balance == D(94) and x.account("B").positions == {TICKER: D(-10)}

    x.submit(order_spec(TICKER, "C", "c1", BUY, "0.60", 4), NOW)  # C bids 60c for YES
    ev = x.submit(order_spec(TICKER, "A", "a2", SELL, "0.55", 4), NOW)  # A sells 4 YES (buys 4 NO at 40c): nets 4 pairs
    fee2 = taker_fee(D(4), D("0.60"))
    assert fee2 == D("0.07")  # 0.0672
    assert only(ev, PositionMoved) == [PositionMoved("A", TICKER, D(6)), PositionMoved("C", TICKER, D(4))]
    a = x.account("A")
    # paid 4 x 40c for the NO, got $1 for each of the 4 YES/NO pairs: +$2.40 in all
    assert a.balance == D(100) - D(4) - fee1 - D("1.60") + D(4) - fee2 and a.reserved == 0
    assert a.positions == {TICKER: D(6)}

    x.submit(order_spec(TICKER, "B", "b2", BUY, "0.30", 15), NOW)  # B buys YES back: nets 10, then holds 5 YES
    ev = x.submit(order_spec(TICKER, "C", "c2", SELL, "0.30", 15), NOW)
    b = x.account("B")
    assert b.positions == {TICKER: D(5)}
    assert b.balance == D(94) - D("4.50") + D(10)
    c = x.account("C")
    assert c.positions == {TICKER: D(-11)}  # sold 15: 4 netted, 11 NO left
    assert c.balance == D(100) - D("2.40") - D("10.50") + D(4) - taker_fee(D(15), D("0.30"))
    assert_cash_conserved(x, D(300))


def test_snapshots_are_immutable() -> None:
    x = make_exchange()
    snap = x.submit(order_spec(TICKER, "A", "a1", BUY, "0.30", 1), NOW)[0].order
    with pytest.raises(dataclasses.FrozenInstanceError):
        snap.leaves_qty = D(0)  # type: ignore[misc]
    x.cancel("A", "a1", "a2", NOW)
    assert snap.leaves_qty == 1 and snap.status is OrdStatus.NEW  # an old snapshot does not move
    assert x.account("A") is not x.account("A")  # copies, not the exchange's state


def test_naive_time_is_refused() -> None:
    with pytest.raises(ValueError):
        make_exchange().submit(order_spec(TICKER, "A", "a1", BUY, "0.30", 1), datetime(2026, 3, 2, 15))


# --- properties -----------------------------------------------------------------------------


def open_interest(x: Exchange) -> D:
    """YES contracts held; each is one half of a YES/NO pair funded by exactly $1."""
    return sum((max(q, D(0)) for a in x.accounts() for q in a.positions.values()), D(0))


def assert_cash_conserved(x: Exchange, initial: D) -> None:
    accounts = x.accounts()
    total = sum((a.balance + a.reserved for a in accounts), D(0)) + open_interest(x) + x.fees_collected
    assert total == initial


def check_invariants(x: Exchange, initial: D, tickers: list[str], events: list) -> None:
    assert_cash_conserved(x, initial)
    open_orders = x.open_orders()
    for a in x.accounts():
        assert a.balance >= 0 and a.reserved >= 0
        mine = [o for o in open_orders if o.account_id == a.account_id]
        assert a.reserved == sum((o.leaves_qty * cost_per_contract(o.side, o.yes_price) for o in mine), D(0))
    for o in open_orders:
        assert o.cum_qty >= 0 and o.leaves_qty > 0 and o.cum_qty + o.leaves_qty == o.quantity
    for t in tickers:
        assert sum((a.positions.get(t, D(0)) for a in x.accounts()), D(0)) == 0
        bid, offer = x.best_bid(t), x.best_offer(t)
        assert bid is None or offer is None or bid < offer
        bids, offers = x.bids(t), x.offers(t)
        assert [(-o.yes_price, o.sequence) for o in bids] == sorted((-o.yes_price, o.sequence) for o in bids)
        assert [(o.yes_price, o.sequence) for o in offers] == sorted((o.yes_price, o.sequence) for o in offers)
        assert {o.order_id for o in bids + offers} == {o.order_id for o in open_orders if o.ticker == t}
    for e in events:
        snaps = [e.taker, e.maker] if isinstance(e, Traded) else [getattr(e, "order", None)]
        for s in filter(None, snaps):
            assert s.quantity > 0 and s.cum_qty >= 0 and s.leaves_qty >= 0
        if isinstance(e, Traded):
            assert e.quantity > 0 and e.yes_price == e.maker.yes_price and e.maker.account_id != e.taker.account_id
            buyer = e.taker if e.taker.side is BUY else e.maker
            seller = e.maker if buyer is e.taker else e.taker
            assert buyer.yes_price >= e.yes_price >= seller.yes_price


PRICES = [D("0.45"), D("0.48"), D("0.50"), D("0.52"), D("0.55")]
QUANTITIES = [D(1), D("2.5"), D(5), D(10)]
TICKERS = [TICKER, "OTHER-26MAR02"]
T = TimeInForce
cl_ids = st.integers(0, 20).map(lambda n: f"c{n}")  # reused now and then: duplicates
accounts = st.sampled_from(["A", "B", "C"])

submits = st.tuples(
    st.just("submit"), accounts, cl_ids, st.sampled_from([TICKER, TICKER, TICKER, TICKERS[1]]),
    st.sampled_from([BUY, SELL]), st.sampled_from(PRICES), st.sampled_from(QUANTITIES),
    st.sampled_from([T.GTC, T.GTC, T.GTC, T.DAY, T.GTD, T.IOC, T.FOK]),
    st.sampled_from([-1, 0, 1, 3]),  # GTD expiry, hours from now
    st.sampled_from([False, False, False, True]),  # post only
    st.sampled_from([None, SelfTradePrevention.TAKER_AT_CROSS, SelfTradePrevention.MAKER]),
    st.sampled_from([None, None, None, D(2), D(10)]),  # max execution cost
    st.booleans(), st.sampled_from(["s1", "s2"]),
)
# one cancel/replace in five names a random (account, ClOrdID): mostly unknown orders
random_names = st.tuples(st.integers(0, 4), accounts, cl_ids).map(lambda t: None if t[0] else t[1:])
others = {
    # (kind, which earlier order, its account and current ClOrdID or a random pair, new ClOrdID, ...)
    "cancel": st.tuples(st.just("cancel"), st.integers(0, 50), random_names, cl_ids),
    "replace": st.tuples(st.just("replace"), st.integers(0, 50), random_names, cl_ids,
                         st.sampled_from([None, *QUANTITIES]), st.sampled_from([None, *PRICES])),
    "mass_cancel": st.tuples(st.just("mass_cancel"), st.sampled_from(["s1", "s2"])),
    "wait": st.tuples(st.just("wait"), st.integers(0, 3)),
    "status": st.tuples(st.just("status"), st.sampled_from(TICKERS),
                        st.sampled_from([MarketStatus.OPEN, MarketStatus.OPEN, MarketStatus.PAUSED,
                                         MarketStatus.CLOSED])),
}
# mostly new orders, so that books fill up and trade
kinds_of_operation = st.sampled_from(["submit"] * 10 + ["cancel"] * 3 + ["replace"] * 3 + list(others)[2:])
operations = st.lists(
    kinds_of_operation.flatmap(lambda k: submits if k == "submit" else others[k]), min_size=10, max_size=50
)


def run(ops: list[tuple], balances: list[D]) -> tuple[Exchange, list[list]]:
    x = Exchange([MarketConfig(t) for t in TICKERS],
                 [AccountState(a, b) for a, b in zip("ABC", balances, strict=True)])
    initial = sum(balances, D(0))
    now = NOW
    history = []
    order_ids: list[str] = []  # every accepted order, for cancels and replaces to aim at

    def target(index: int, named: tuple[str, str] | None) -> tuple[str, str]:
        if named is not None or not order_ids:
            return named or ("A", "c0")
        o = x.order(order_ids[index % len(order_ids)])
        return o.account_id, o.cl_ord_id

    for op in ops:
        kind = op[0]
        if kind == "submit":
            (_, acct, cl, ticker, side, price, qty, tif, hours, post, stp, max_cost, cop, session) = op
            expire = now + timedelta(hours=hours) if tif is TimeInForce.GTD else None
            spec = OrderSpec(acct, session, cl, ticker, side, price, qty, tif, expire, post, stp, max_cost, cop)
            events = x.submit(spec, now)
        elif kind == "cancel":
            events = x.cancel(*target(op[1], op[2]), op[3], now)
        elif kind == "replace":
            events = x.replace(*target(op[1], op[2]), op[3], op[4], op[5], now)
        elif kind == "mass_cancel":
            events = x.mass_cancel(op[1], now)
        elif kind == "wait":
            now += timedelta(hours=op[1])
            events = x.expire(now)
        else:
            events = x.set_market_status(op[1], op[2], now)
        check_invariants(x, initial, TICKERS, events)
        order_ids += [e.order.order_id for e in events if isinstance(e, Accepted)]
        history.append(events)
    return x, history


@settings(max_examples=300, deadline=None)
@given(ops=operations, balances=st.lists(st.sampled_from([D(3), D(20), D(100), D(1000)]), min_size=3, max_size=3))
def test_random_operations_keep_the_exchange_consistent(ops: list[tuple], balances: list[D]) -> None:
    _, history = run(ops, balances)
    _, again = run(ops, balances)
    assert history == again  # deterministic: same requests, same events (ids included)
