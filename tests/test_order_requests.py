"""Order requests and the YES/NO price conventions: refused before anything is sent, with the field named."""

from __future__ import annotations

import os
import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal as D

import pytest

from fixengine.orders.requests import CancelOrder, InvalidOrderError, NewOrder, ReplaceOrder, TimeInForce, new_cl_ord_id
from fixengine.kalshi.prices import (
    Action,
    Contract,
    PriceError,
    WireSide,
    contract_price,
    format_price,
    parse_price,
    to_yes_book,
)


def new(**kw) -> NewOrder:
    fields = dict(ticker="HIGHNY-23DEC31", action=Action.BUY, contract=Contract.YES, quantity=D("10"), price=D("0.45"))
    fields.update(kw)
    return NewOrder.create(**fields)


@pytest.mark.parametrize(
    "action, contract, price, side, yes_price",
    [
        (Action.BUY, Contract.YES, "0.45", WireSide.BUY_YES, "0.45"),  # 54=1 44=45
        (Action.BUY, Contract.NO, "0.55", WireSide.SELL_YES, "0.45"),  # 54=2 44=45
        (Action.SELL, Contract.YES, "0.45", WireSide.SELL_YES, "0.45"),
        (Action.SELL, Contract.NO, "0.30", WireSide.BUY_YES, "0.70"),
    ],
)
def test_yes_no_intent_on_the_yes_book(action, contract, price, side, yes_price) -> None:
    quote = to_yes_book(action, contract, D(price))
    assert (quote.side, quote.yes_price) == (side, D(yes_price))
    assert contract_price(quote.yes_price, contract) == D(price)


def test_price_units_per_session() -> None:
    assert format_price(D("0.45"), use_dollars=False) == "45"
    assert format_price(D("0.45"), use_dollars=True) == "0.4500"
    assert format_price(D("0.0123"), use_dollars=True) == "0.0123"
    with pytest.raises(PriceError, match="not a whole cent; this session sends cents"):
        format_price(D("0.455"), use_dollars=False)
    assert parse_price("45", use_dollars=False) == D("0.45")
    assert parse_price("0.4500", use_dollars=True) == D("0.45")


def test_a_valid_order_gets_a_uuid_clordid_and_an_explicit_time_in_force() -> None:
    order = new()
    assert len(order.client_order_id) == 36 and order.time_in_force is TimeInForce.GTC
    assert order.yes_quote.side is WireSide.BUY_YES


@pytest.mark.parametrize(
    "fields, problem",
    [
        (dict(price=D("1.00")), "price: price 1.00 must be between $0 and $1"),
        (dict(price=D("0")), "price: price 0 must be between $0 and $1"),
        (dict(price=D("0.12345")), "price: price 0.12345 has more than 4 decimals"),
        (dict(quantity=D("0")), "quantity: quantity 0 must be a positive number of contracts"),
        (dict(quantity=D("1.005")), "quantity: quantity 1.005 must be a multiple of 0.01 contracts"),
        (dict(ticker="bad ticker!"), "ticker: 'bad ticker!' is not a market ticker"),
        (dict(client_order_id="has space"), "client_order_id: must be 1-64 characters"),
        (dict(client_order_id="x" * 65), "client_order_id: must be 1-64 characters"),
        (dict(time_in_force=TimeInForce.GTD), "expire_time is required with time_in_force GTD"),
        (dict(expire_time=datetime.now(timezone.utc)), "expire_time is only allowed with time_in_force GTD"),
        (dict(time_in_force=TimeInForce.GTD, expire_time=datetime(2030, 1, 1)), "expire_time must carry a time zone"),
        (dict(post_only=True, time_in_force=TimeInForce.IOC), "post_only cannot rest, so it cannot be combined with IOC"),
        (dict(subaccount=64), "subaccount: Input should be less than or equal to 63"),
        (dict(max_execution_cost=D("-1")), "max_execution_cost: must be a positive dollar amount"),
        (dict(action="hold"), "action: Input should be 'buy' or 'sell'"),
        (dict(colour="red"), "colour: unknown field"),
    ],
)
def test_invalid_orders_name_the_field(fields, problem) -> None:
    with pytest.raises(InvalidOrderError) as info:
        new(**fields)
    assert any(problem in p for p in info.value.problems), info.value.problems


def test_gtd_in_the_past_is_detectable_before_sending() -> None:
    soon = datetime.now(timezone.utc) - timedelta(seconds=1)
    assert new(time_in_force=TimeInForce.GTD, expire_time=soon).expires_in_past()


def test_replace_and_cancel_requests() -> None:
    assert ReplaceOrder.create(order="c1", price=D("0.5")).quantity is None
    with pytest.raises(InvalidOrderError, match="must change quantity, price or time_in_force"):
        ReplaceOrder.create(order="c1")
    with pytest.raises(InvalidOrderError, match="only be amended to DAY, GTC or GTD"):
        ReplaceOrder.create(order="c1", time_in_force=TimeInForce.IOC)
    assert CancelOrder.create(order="c1").client_order_id != "c1"


def test_new_cl_ord_ids_are_random_uuids_never_repeated_by_a_forked_child() -> None:
    """They come from a pool of random bytes: a child forked with the pool full must not give
    the ClOrdIDs its parent will give next."""
    ids = [new_cl_ord_id() for _ in range(1000)]
    assert len(set(ids)) == 1000
    assert all(uuid.UUID(i).version == 4 and uuid.UUID(i).variant == uuid.RFC_4122 and str(uuid.UUID(i)) == i for i in ids)
    assert {i[19] for i in ids} == set("89ab") and {i[14] for i in ids} == {"4"}
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next ten, then out
        os.write(write, ",".join(new_cl_ord_id() for _ in range(10)).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    with os.fdopen(read) as pipe:
        child = set(pipe.read().split(","))
    assert len(child) == 10 and not child & {new_cl_ord_id() for _ in range(10)}
