"""``evolve`` makes what ``dataclasses.replace`` makes, for the snapshots it is used on."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone
from decimal import Decimal as D

import pytest

from fixengine._evolve import evolve
from fixengine.gateway.translate import OmsChain
from fixengine.kalshi.prices import Action, Contract
from fixengine.orders.book import OrderAccepted, OrderBook, Status
from fixengine.orders.requests import NewOrder


def _order():  # type: ignore[no-untyped-def]
    request = NewOrder.create(ticker="T-1", action=Action.BUY, contract=Contract.YES, quantity=D(3), price=D("0.30"))
    return OrderBook().submit(request, "acct")


@pytest.mark.parametrize("changes", [{}, {"status": Status.NEW, "cum_qty": D(1)}, {"key": "k2", "pending": None}])
def test_an_order_evolved_equals_the_same_order_replaced(changes) -> None:  # type: ignore[no-untyped-def]
    order = _order()
    assert evolve(order, **changes) == dataclasses.replace(order, **changes)
    assert evolve(order, **changes) is not order


def test_inherited_and_keyword_fields_are_copied_too() -> None:
    event = OrderAccepted(_order())
    at = datetime(2026, 12, 1, tzinfo=timezone.utc)
    assert evolve(event, session="s1", at=at) == dataclasses.replace(event, session="s1", at=at)
    chain = OmsChain("c1", order_qty=D(5))
    assert evolve(chain, pending="c2", pending_type="F") == dataclasses.replace(chain, pending="c2", pending_type="F")


def test_a_name_that_is_no_field_is_refused_as_replace_refuses_it() -> None:
    with pytest.raises(TypeError, match=r"Order has no field \['stauts'\]"):
        evolve(_order(), stauts=Status.NEW)


def test_only_frozen_slotted_dataclasses_are_taken() -> None:
    @dataclasses.dataclass
    class Mutable:
        x: int

    with pytest.raises(TypeError, match="frozen, slotted dataclass"):
        evolve(Mutable(1), x=2)
