"""Orders end to end: the engine's API, real FIX sessions, the simulator's exchange. Each test
places real liquidity from a second account and asserts both books."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from conformance.harness import session_to
from fixengine.config import LogonFlags
from fixengine.fix.dialect import Dialect
from fixengine.engine import Engine
from fixengine.orders.entry import MassCancelDone, ThrottledError
from fixengine.orders.book import (
    OrderAccepted,
    OrderCanceled,
    OrderFilled,
    OrderRejected,
    OrderReplaced,
    Status,
)
from fixengine.orders.reports import RejectCode
from fixengine.orders.requests import CancelOrder, InvalidOrderError, NewOrder, ReplaceOrder, TimeInForce
from fixengine.kalshi.prices import Action, Contract
from simulator.config import MarketEntry
from tests.helpers.orders import new_order
from tests.helpers.sessions import engine_config

TICKER = "HIGHNY-23DEC31"


@pytest.fixture(params=[Dialect.FIXT11, Dialect.FIX44], ids=["fixt11", "fix44"])
def dialect(request) -> Dialect:
    return request.param


@pytest.fixture(params=[False, True], ids=["cents", "dollars"])
def use_dollars(request) -> bool:
    return request.param


@pytest.fixture
async def trading(tmp_path, make_key, start_simulator, dialect, use_dollars):
    """An engine with a maker and a taker session (two API keys) on one simulated market."""
    maker, taker = make_key(), make_key()
    sim, _ = start_simulator(
        [maker.account(), taker.account()], markets=[MarketEntry(ticker=TICKER), MarketEntry(ticker="CLOSED-1", status="closed")]
    )
    flags = LogonFlags(use_dollars=use_dollars)
    config = engine_config(
        tmp_path,
        session_to(sim, maker, name="maker", dialect=dialect, logon=flags),
        session_to(sim, taker, name="taker", dialect=dialect, logon=flags),
    )
    engine = Engine(config)
    await engine.start()
    await engine.wait_logged_on()
    try:
        yield engine, sim, maker, taker
    finally:
        await engine.stop()


async def test_new_partial_then_full_fill_at_the_makers_price(trading) -> None:
    engine, sim, maker, taker = trading
    events = engine.events()
    offer = await engine.submit("maker", new_order(TICKER, Action.SELL, qty="10", price="0.44"))
    accepted = await events.wait_for(OrderAccepted)
    assert accepted.order.key == offer.key and accepted.order.status is Status.NEW
    bid = await engine.submit("taker", new_order(TICKER, Action.BUY, qty="4", price="0.45"))
    fills = [await events.wait_for(OrderFilled) for _ in range(2)]
    by_key = {f.order.key: f for f in fills}
    assert by_key[bid.key].order.status is Status.FILLED  # New folded into the Trade
    assert by_key[bid.key].fill.yes_price == D("0.44") and by_key[bid.key].fill.aggressor is True
    assert by_key[offer.key].order.status is Status.PARTIALLY_FILLED and by_key[offer.key].order.leaves_qty == D(6)
    # Collateral: the taker paid 4 x $0.44 and a $0.07 fee; the maker put up 4 x (1 - 0.44) for NO.
    assert by_key[bid.key].fill.balance_change == D("-1.83") and by_key[bid.key].fill.fee == D("0.07")
    assert by_key[offer.key].fill.balance_change == D("-2.24")
    rest = await engine.submit("taker", new_order(TICKER, Action.BUY, qty="6", price="0.44"))
    while not all(engine.book.order(k).status is Status.FILLED for k in (offer.key, rest.key)):
        await events.wait_for(OrderFilled)
    assert engine.book.position(taker.key_id, TICKER) == D(10)
    assert engine.book.position(maker.key_id, TICKER) == D(-10)
    assert sim.exchange.account(taker.key_id).positions[TICKER] == D(10)
    assert sim.exchange.account(maker.key_id).positions[TICKER] == D(-10)


async def test_buy_no_crosses_a_yes_bid(trading) -> None:
    engine, sim, maker, taker = trading
    events = engine.events()
    await engine.submit("maker", new_order(TICKER, Action.BUY, Contract.YES, qty="5", price="0.40"))
    await events.wait_for(OrderAccepted)
    no = await engine.submit("taker", new_order(TICKER, Action.BUY, Contract.NO, qty="5", price="0.60"))
    filled = await events.wait_for(OrderFilled)
    while filled.order.key != no.key:
        filled = await events.wait_for(OrderFilled)
    assert filled.order.status is Status.FILLED and filled.fill.yes_price == D("0.40")
    assert sim.exchange.account(taker.key_id).positions[TICKER] == D(-5)  # 5 NO


async def test_cancel_and_cancel_of_an_unknown_order(trading) -> None:
    engine, sim, _, _ = trading
    events = engine.events()
    placed = await engine.submit("maker", new_order(TICKER))
    await events.wait_for(OrderAccepted)
    await engine.cancel("maker", CancelOrder.create(order=placed.key))
    canceled = await events.wait_for(OrderCanceled)
    assert canceled.order.status is Status.CANCELED and canceled.order.cum_qty == 0
    assert sim.exchange.open_orders() == []
    with pytest.raises(InvalidOrderError, match="is canceled"):
        await engine.cancel("maker", CancelOrder.create(order=placed.key))


async def test_requests_of_one_loop_turn_go_out_in_order_after_one_commit(trading) -> None:
    """Group commit: five orders and a cancel of the first, requested without yielding to the
    loop, are journaled together and reach the exchange in the order they were requested."""
    engine, sim, maker, _ = trading
    events = engine.events()
    placed = [await engine.submit("maker", new_order(TICKER, price=f"0.3{i}")) for i in range(5)]
    await engine.cancel("maker", CancelOrder.create(order=placed[0].key))
    canceled = await events.wait_for(OrderCanceled)
    assert canceled.order.key == placed[0].key
    while any(engine.book.order(p.key).status is Status.PENDING_NEW for p in placed[1:]):
        await events.wait_for(OrderAccepted)
    resting = sorted(o.yes_price for o in sim.exchange.open_orders(maker.key_id))
    assert resting == [D("0.31"), D("0.32"), D("0.33"), D("0.34")]


async def test_replace_price_and_quantity(trading) -> None:
    engine, sim, _, _ = trading
    events = engine.events()
    placed = await engine.submit("maker", new_order(TICKER, qty="10", price="0.40"))
    await events.wait_for(OrderAccepted)
    await engine.replace("maker", ReplaceOrder.create(order=placed.key, quantity=D(7), price=D("0.42")))
    replaced = await events.wait_for(OrderReplaced)
    o = replaced.order
    assert (o.quantity, o.yes_price, o.leaves_qty, o.status) == (D(7), D("0.42"), D(7), Status.NEW)
    [resting] = sim.exchange.open_orders()
    assert (resting.quantity, resting.yes_price) == (D(7), D("0.42"))


async def test_insufficient_balance_and_closed_market_are_typed_rejects(trading) -> None:
    engine, _, _, _ = trading
    events = engine.events()
    await engine.submit("taker", new_order(TICKER, qty="100000", price="0.50"))
    rejected = await events.wait_for(OrderRejected)
    assert rejected.order.status is Status.REJECTED
    assert (rejected.order.reason.code, rejected.order.reason.number) == (RejectCode.INSUFFICIENT_BALANCE, 3)
    closed = NewOrder.create(ticker="CLOSED-1", action=Action.BUY, contract=Contract.YES, quantity=D(1), price=D("0.5"))
    await engine.submit("taker", closed)
    rejected = await events.wait_for(OrderRejected)
    assert rejected.order.reason.code is RejectCode.MARKET_ALREADY_CLOSED and rejected.order.reason.number == 2


async def test_ioc_partial_fill_ends_canceled(trading) -> None:
    engine, _, _, _ = trading
    events = engine.events()
    await engine.submit("maker", new_order(TICKER, Action.SELL, qty="3", price="0.45"))
    await events.wait_for(OrderAccepted)
    ioc = await engine.submit("taker", new_order(TICKER, qty="5", price="0.45", time_in_force=TimeInForce.IOC))
    while not engine.book.order(ioc.key).status.terminal:
        await events.next(timeout=10)
    done = engine.book.order(ioc.key)
    assert (done.status, done.cum_qty, done.leaves_qty) == (Status.CANCELED, D(3), D(0))


async def test_invalid_requests_are_refused_before_sending(trading) -> None:
    engine, sim, _, _ = trading
    await engine.submit("taker", new_order(TICKER, client_order_id="dup-1"))
    with pytest.raises(InvalidOrderError, match="client_order_id: client_order_id dup-1 was used before"):
        await engine.submit("taker", new_order(TICKER, client_order_id="dup-1"))
    with pytest.raises(InvalidOrderError, match="no order nope"):
        await engine.cancel("taker", CancelOrder.create(order="nope"))


async def test_mass_cancel_cancels_the_sessions_orders_once_a_second(trading) -> None:
    engine, sim, maker, _ = trading
    events = engine.events()
    first = await engine.submit("maker", new_order(TICKER, price="0.30"))
    second = await engine.submit("maker", new_order(TICKER, price="0.31"))
    for _ in range(2):
        await events.wait_for(OrderAccepted)
    await engine.mass_cancel("maker")
    done = await events.wait_for(MassCancelDone)
    assert done.accepted and done.session == "maker"
    while not all(engine.book.order(k).status is Status.CANCELED for k in (first.key, second.key)):
        await events.wait_for(OrderCanceled)
    assert sim.exchange.open_orders(maker.key_id) == []
    with pytest.raises(ThrottledError, match="one per second"):
        await engine.mass_cancel("maker")
