"""The simulator's exchange paused as a whole (spec §7.5), pure: a trading pause refuses new orders
(103=2 TRADING_PAUSED) and amends but takes cancels; an exchange pause refuses cancels too; resting
orders survive unless entered with CancelOrderOnPause, which go as the pause begins."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal as D

from fixengine.kalshi.maintenance import PauseKind
from fixengine.kalshi.prices import WireSide
from fixengine.orders.reports import OrdStatus
from simulator.exchange.matching import (
    AccountState,
    Accepted,
    Canceled,
    CancelRefused,
    CxlRejReason,
    Exchange,
    MarketConfig,
    OrdRejReason,
    Rejected,
)
from tests.helpers.orders import order_spec

BUY = WireSide.BUY_YES
A, B = "KXA-1", "KXB-1"
NOW = datetime(2026, 3, 12, 7, 30, tzinfo=timezone.utc)  # Thursday 03:30 New York time


def exchange_with_two_resting_orders() -> Exchange:
    """``keep`` rests in A; ``goes`` (CancelOrderOnPause) rests in B."""
    x = Exchange([MarketConfig(A), MarketConfig(B)], [AccountState("acct", D(100))])
    x.submit(order_spec(A, "acct", "keep", BUY, "0.30", 2), NOW)
    x.submit(order_spec(B, "acct", "goes", BUY, "0.20", 3, cancel_on_pause=True), NOW)
    return x


def test_a_pause_cancels_only_the_cancel_on_pause_orders_in_every_market_and_releases_their_cash() -> None:
    x = exchange_with_two_resting_orders()
    reserved = x.account("acct").reserved
    events = x.pause(PauseKind.TRADING, NOW)
    assert [(type(e), e.order.cl_ord_id, e.text) for e in events] == [(Canceled, "goes", "TRADING_PAUSED")]
    assert [o.cl_ord_id for o in x.open_orders()] == ["keep"]
    assert x.account("acct").reserved == reserved - D("0.60")
    assert x.pause(PauseKind.EXCHANGE, NOW) == []  # already paused: nothing more to cancel
    assert x.pause(None, NOW) == [] and x.paused is None


def test_a_trading_pause_refuses_new_orders_and_amends_but_takes_cancels() -> None:
    x = exchange_with_two_resting_orders()
    x.pause(PauseKind.TRADING, NOW)
    [rejected] = x.submit(order_spec(A, "acct", "new", BUY, "0.25", 1), NOW)
    assert isinstance(rejected, Rejected)
    assert (rejected.text, rejected.ord_rej_reason) == ("TRADING_PAUSED", OrdRejReason.EXCHANGE_CLOSED) == ("TRADING_PAUSED", 2)
    [refused] = x.replace("acct", "keep", "keep-2", D(1), None, NOW)
    assert isinstance(refused, CancelRefused)
    assert (refused.text, refused.reason, refused.order_id) == ("TRADING_PAUSED", CxlRejReason.OTHER, "O1")
    [canceled] = x.cancel("acct", "keep", "keep-x", NOW)
    assert isinstance(canceled, Canceled) and canceled.order.status is OrdStatus.CANCELED


def test_an_exchange_pause_refuses_cancels_too_and_the_order_stays() -> None:
    x = exchange_with_two_resting_orders()
    x.pause(PauseKind.EXCHANGE, NOW)
    assert x.submit(order_spec(A, "acct", "new", BUY, "0.25", 1), NOW)[0].text == "EXCHANGE_PAUSED"
    [refused] = x.cancel("acct", "keep", "keep-x", NOW)
    assert isinstance(refused, CancelRefused) and refused.response_to == "cancel"
    assert (refused.text, refused.order_id, refused.order.status) == ("EXCHANGE_PAUSED", "O1", OrdStatus.NEW)
    assert "O1" in [o.order_id for o in x.open_orders()]


def test_after_the_pause_orders_trade_again() -> None:
    x = exchange_with_two_resting_orders()
    x.pause(PauseKind.TRADING, NOW)
    x.pause(None, NOW)
    assert isinstance(x.submit(order_spec(A, "acct", "new", BUY, "0.25", 1), NOW)[0], Accepted)
