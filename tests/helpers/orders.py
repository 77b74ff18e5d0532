"""Orders as tests write them: the engine's ``NewOrder`` and the simulator exchange's ``OrderSpec``
are different requests, so they have different factories."""

from __future__ import annotations

from decimal import Decimal as D

from fixengine.kalshi.prices import Action, Contract, WireSide
from fixengine.orders.requests import NewOrder
from simulator.exchange.matching import OrderSpec

BOOK_TICKER = "HIGHNY-23DEC31"  # the market of the pure order-book tests (and of FakeExchange's reports)


def new_order(ticker: str, action: Action = Action.BUY, contract: Contract = Contract.YES, *,
              qty: str | int = "10", price: str = "0.45", **fields: object) -> NewOrder:
    """An engine order: ten YES bought at 45 cents unless the test says otherwise."""
    return NewOrder.create(ticker=ticker, action=action, contract=contract, quantity=D(qty), price=D(price), **fields)


def yes_bid(ticker: str, price: str = "0.40") -> NewOrder:
    """Five YES bid at ``price``: the small order the hold, recovery and reconciliation tests place and follow."""
    return new_order(ticker, qty=5, price=price)


def book_order(cl: str = "c1", qty: str = "10", **fields: object) -> NewOrder:
    """An order for the pure book tests, with the ClOrdID the FakeExchange's reports name."""
    return new_order(BOOK_TICKER, qty=qty, client_order_id=cl, **fields)


def order_spec(ticker: str, account: str, cl: str, side: WireSide, price: str, qty: str | int,
               **fields: object) -> OrderSpec:
    """An order as the simulator's matching engine takes it, from session ``S-<account>`` unless told."""
    fields.setdefault("session_id", f"S-{account}")
    return OrderSpec(account_id=account, cl_ord_id=cl, side=side, yes_price=D(price), quantity=D(qty), ticker=ticker,
                     **fields)  # type: ignore[arg-type]
