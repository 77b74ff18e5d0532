"""Prices and quantities on Kalshi's wire: the one place where YES/NO and cents/dollars are decided.

Kalshi runs one book per market, on the YES contract. Side (54) 1 buys YES and 2 sells YES, and
Price (44) is always the YES price; buying NO at q is selling YES at 1 - q (spec §10.1). Prices are
integer cents on the wire unless the session logged on with UseDollars (21005=Y), when they are
dollars with up to 4 decimals (§10.3). In the application model every price is a ``Decimal`` in
dollars of the contract it names, and every quantity a ``Decimal`` number of contracts.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import Enum

ONE = Decimal(1)
CENT = Decimal("0.01")
TICK = Decimal("0.0001")  # the finest price Kalshi quotes (subpenny markets)
QTY_STEP = Decimal("0.01")  # fractional contracts trade in hundredths


class Contract(str, Enum):
    YES = "yes"
    NO = "no"


class Action(str, Enum):
    BUY = "buy"
    SELL = "sell"


class WireSide(str, Enum):
    """Side (54) on Kalshi's YES book."""

    BUY_YES = "1"
    SELL_YES = "2"  # Kalshi's dictionary calls it SELL_NO: selling YES is buying NO


class PriceError(ValueError):
    """A price or quantity that cannot go on the wire; the message says why."""


@dataclass(frozen=True, slots=True)
class YesQuote:
    """An order as the YES book sees it: the wire side and the YES price in dollars."""

    side: WireSide
    yes_price: Decimal


def to_yes_book(action: Action, contract: Contract, price: Decimal) -> YesQuote:
    """Buy YES at p -> (1, p); sell YES at p -> (2, p); buy NO at q -> (2, 1-q); sell NO at q -> (1, 1-q)."""
    if contract is Contract.YES:
        side = WireSide.BUY_YES if action is Action.BUY else WireSide.SELL_YES
        return YesQuote(side, price)
    side = WireSide.SELL_YES if action is Action.BUY else WireSide.BUY_YES
    return YesQuote(side, ONE - price)


def contract_price(yes_price: Decimal, contract: Contract) -> Decimal:
    """The price of ``contract`` when YES trades at ``yes_price`` (LastPx is always the YES price)."""
    return yes_price if contract is Contract.YES else ONE - yes_price


def check_price(price: Decimal, what: str = "price") -> Decimal:
    """A contract price: strictly between $0 and $1, at most 4 decimals."""
    if not price.is_finite():
        raise PriceError(f"{what} {price} is not a number")
    if not Decimal(0) < price < ONE:
        raise PriceError(f"{what} {price} must be between $0 and $1 (exclusive): a contract pays $1 or nothing")
    if price != price.quantize(TICK):
        raise PriceError(f"{what} {price} has more than 4 decimals; Kalshi's finest tick is $0.0001")
    return price


def check_quantity(quantity: Decimal, what: str = "quantity") -> Decimal:
    """A number of contracts: positive, in steps of 0.01."""
    if not quantity.is_finite() or quantity <= 0:
        raise PriceError(f"{what} {quantity} must be a positive number of contracts")
    if quantity != quantity.quantize(QTY_STEP):
        raise PriceError(f"{what} {quantity} must be a multiple of 0.01 contracts")
    return quantity


def format_price(yes_price: Decimal, use_dollars: bool) -> str:
    """Price (44) as the session sends it: integer cents, or dollars with 4 decimals (21005=Y)."""
    if use_dollars:
        return str(yes_price.quantize(TICK))
    cents = yes_price * 100
    if cents != cents.to_integral_value():
        raise PriceError(
            f"price {yes_price} is not a whole cent; this session sends cents "
            "(log on with use_dollars = true for subpenny prices)"
        )
    return str(int(cents))


# Reports repeat the same few prices and quantities; Decimals are immutable, so one object per
# distinct text serves every order that holds it (memory is per distinct value, not per order).
@functools.lru_cache(maxsize=8192)
def _decimal(text: str) -> Decimal:
    return Decimal(text)


@functools.lru_cache(maxsize=8192)
def parse_price(text: str, use_dollars: bool) -> Decimal:
    """A price field (44, 31, 6) as received: cents or dollars per the session's 21005."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise PriceError(f"price {text!r} is not a number") from None
    return value if use_dollars else value / 100


def format_quantity(quantity: Decimal) -> str:
    """OrderQty (38): contracts with 2 decimals, as Kalshi reports them."""
    return str(quantity.quantize(QTY_STEP))


def parse_decimal(text: str, what: str) -> Decimal:
    try:
        return _decimal(text)
    except InvalidOperation:
        raise PriceError(f"{what} {text!r} is not a number") from None
