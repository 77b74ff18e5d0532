"""A market's REST body (rest-spec §7) from the exchange and its history, without a server: the
day's volume and the price of a day ago move with the clock, the sizes at the touch and the open
interest follow the book and the positions, the schedule follows listing and settlement. (Every
field against Kalshi's own SDK: tests/test_kalshi_sdk.py.)"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal as D

from fixengine.kalshi.prices import WireSide
from simulator.exchange.history import History
from simulator.exchange.matching import AccountState, Exchange, MarketConfig, OrderSpec, Rejected
from simulator.rest import models as m
from simulator.rest.format import SCHEDULED_LIFE, market_body, rfc3339
from simulator.rest.state import capture

T = "KXDAY-26DEC31-T1"
NOW = datetime(2026, 3, 2, 15, 0, tzinfo=timezone.utc)
HOUR = timedelta(hours=1)


def exchange() -> tuple[Exchange, History]:
    return Exchange([MarketConfig(T)], [AccountState("alice", D(100)), AccountState("bob", D(100))]), History(listed_time=NOW)


def order(ex: Exchange, history: History, at: datetime, who: str, side: WireSide, price: str, qty: str) -> None:
    events = ex.submit(OrderSpec(who, "s", f"{who}-{len(history.account(who).orders)}", T, side, D(price), D(qty)), at)
    assert not [e for e in events if isinstance(e, Rejected)]
    history.record(events, at)


def trade(ex: Exchange, history: History, at: datetime, price: str, qty: str) -> None:
    """Alice bids, Bob sells into the bid: ``qty`` contracts trade at ``price``; Alice holds them."""
    order(ex, history, at, "alice", WireSide.BUY_YES, price, qty)
    order(ex, history, at, "bob", WireSide.SELL_YES, price, qty)


def body_at(ex: Exchange, history: History, at: datetime) -> m.Market:
    return market_body(capture(ex, history, at, None).markets[T])


def test_the_days_volume_and_the_price_a_day_ago_follow_the_clock() -> None:
    ex, history = exchange()
    trade(ex, history, NOW, "0.40", "3")
    trade(ex, history, NOW + 20 * HOUR, "0.55", "2")

    def day(body: m.Market) -> tuple[str, str, str, str]:
        return body.volume_fp, body.volume_24h_fp, body.previous_price_dollars, body.last_price_dollars

    assert day(body_at(ex, history, NOW + 23 * HOUR)) == ("5.00", "5.00", "0.0000", "0.5500")
    assert day(body_at(ex, history, NOW + 25 * HOUR)) == ("5.00", "2.00", "0.4000", "0.5500")  # the first is a day old
    trade(ex, history, NOW + 50 * HOUR, "0.60", "1")  # both earlier trades leave the window
    body = body_at(ex, history, NOW + 50 * HOUR)
    assert day(body) == ("6.00", "1.00", "0.5500", "0.6000")
    assert body.open_interest_fp == "6.00"  # Alice's YES (as many NO are Bob's)


def test_sizes_at_the_touch_and_a_schedule_that_ends_at_settlement() -> None:
    ex, history = exchange()
    for price, qty in (("0.40", "3"), ("0.40", "2"), ("0.39", "7")):
        order(ex, history, NOW, "alice", WireSide.BUY_YES, price, qty)
    order(ex, history, NOW, "bob", WireSide.SELL_YES, "0.45", "4")
    body = body_at(ex, history, NOW + HOUR)
    assert (body.yes_bid_dollars, body.yes_bid_size_fp, body.yes_ask_dollars, body.yes_ask_size_fp) == ("0.4000", "5.00", "0.4500", "4.00")
    assert (body.open_interest_fp, body.status, body.result, body.settlement_value_dollars) == ("0.00", "active", "", None)
    assert body.created_time == body.open_time == body.updated_time == rfc3339(NOW)
    assert body.close_time == body.expected_expiration_time == body.latest_expiration_time == rfc3339(NOW + SCHEDULED_LIFE)

    trade(ex, history, NOW + HOUR, "0.45", "1")  # Alice takes one of Bob's
    history.record(ex.settle_market(T, "yes", NOW + 2 * HOUR), NOW + 2 * HOUR)
    body = body_at(ex, history, NOW + 3 * HOUR)
    assert (body.status, body.result, body.settlement_value_dollars, body.open_interest_fp) == ("finalized", "yes", "1.0000", "0.00")
    assert body.settlement_ts == body.close_time == body.latest_expiration_time == body.updated_time == rfc3339(NOW + 2 * HOUR)
    assert (body.yes_bid_size_fp, body.yes_ask_size_fp) == ("0.00", "0.00")  # the close ended every order
