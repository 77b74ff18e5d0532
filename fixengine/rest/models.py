"""Kalshi REST response objects, in their current format (fixed-point strings only, Aug–Sep 2026).

Source: ../shared/kalshi/rest-spec.md §3 (formats), §4 (portfolio), §7 (markets), §8 (exchange).

- Money is a ``Decimal`` in dollars, read from the ``*_dollars`` strings (and ``fee_cost``); counts
  are a ``Decimal`` number of contracts, read from the ``*_fp`` strings. Neither passes through
  float: a JSON float is refused rather than rounded. The few integer-cent fields Kalshi still
  sends (``balance``, ``portfolio_value``, settlement ``revenue``/``value``) stay ``int`` cents.
- Times are timezone-aware ``datetime``s: RFC 3339 strings, except ``Balance.updated_ts`` (Unix
  seconds).
- Unknown fields are ignored (Kalshi adds fields most weeks); a missing required field is a
  ``pydantic.ValidationError`` naming it. Deprecated direction fields (``side``, ``action``) are
  not modelled on purpose: reconcile on ``outcome_side``/``book_side`` (§3.2).
- Fields the reconciliation needs are required; fields Kalshi documents as nullable, or that
  arrived with exchange sharding, are optional (``exchange_index`` defaults to shard 0).
"""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Annotated, Literal

from pydantic import AliasChoices, AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, model_validator


def _fixed_point(value: object) -> Decimal:
    """A Kalshi fixed-point string (or an exact JSON number) as a Decimal; never via float."""
    if isinstance(value, bool):
        raise ValueError("expected a decimal string, got a boolean")
    if isinstance(value, float):
        # A float has already lost exactness (0.1 is not 0.1): refuse instead of guessing.
        raise ValueError("expected a decimal string, got a float (floats cannot hold cents exactly)")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            raise ValueError(f"{value!r} is not a decimal number") from None
    else:
        raise ValueError(f"expected a decimal string, got {type(value).__name__}")
    if not number.is_finite():
        raise ValueError(f"{value!r} is not a finite number")
    return number


def _unix_seconds(value: object) -> datetime:
    """Unix seconds (an integer) as an aware UTC datetime."""
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        raise ValueError(f"expected Unix seconds as an integer, got {type(value).__name__}")
    if isinstance(value, Decimal) and value != value.to_integral_value():
        raise ValueError(f"expected whole Unix seconds, got {value}")
    return datetime.fromtimestamp(int(value), tz=timezone.utc)


Dollars = Annotated[Decimal, BeforeValidator(_fixed_point)]
"""Dollars from a ``*_dollars`` string, e.g. ``"0.5600"`` -> ``Decimal("0.5600")``."""
Count = Annotated[Decimal, BeforeValidator(_fixed_point)]
"""Contracts from a ``*_fp`` string, e.g. ``"10.00"``; signed where the field is (``position_fp``)."""
UnixTime = Annotated[datetime, BeforeValidator(_unix_seconds)]
Timestamp = AwareDatetime  # RFC 3339 with an offset or Z; a naive time is refused

OutcomeSide = Literal["yes", "no"]
BookSide = Literal["bid", "ask"]
OrderStatus = Literal["resting", "canceled", "executed"]

# outcome_side and book_side carry the same bit on Kalshi's single YES book (§3.2).
_BOOK_SIDE_OF = {"yes": "bid", "no": "ask"}


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class _Directed(_Model):
    """Shared check for objects that carry both direction fields."""

    @model_validator(mode="after")
    def _sides_agree(self) -> _Directed:
        outcome, book = getattr(self, "outcome_side"), getattr(self, "book_side")
        if _BOOK_SIDE_OF[outcome] != book:
            raise ValueError(
                f"outcome_side {outcome!r} contradicts book_side {book!r} "
                "(yes goes with bid, no with ask on Kalshi's YES book)"
            )
        return self


class ShardBalance(_Model):
    exchange_index: int
    balance: Dollars


class Balance(_Model):
    """``GET /portfolio/balance`` (§4.1). ``balance`` truncates sub-cent amounts: prefer
    ``balance_dollars``."""

    balance: int  # cents
    balance_dollars: Dollars
    portfolio_value: int  # cents
    updated_ts: UnixTime
    balance_breakdown: list[ShardBalance] = []


class MarketPosition(_Model):
    """One row of ``market_positions`` in ``GET /portfolio/positions`` (§4.2).
    ``position_fp`` > 0 holds YES contracts, < 0 holds NO contracts (FIX LongQty/ShortQty)."""

    ticker: str
    position_fp: Count
    market_exposure_dollars: Dollars
    total_traded_dollars: Dollars
    realized_pnl_dollars: Dollars
    fees_paid_dollars: Dollars
    last_updated_ts: Timestamp | None = None
    exchange_index: int = 0


class RestOrder(_Directed):
    """``GET /portfolio/orders[/{order_id}]`` (§4.3). ``client_order_id`` is ``""`` when none was
    given; ``remaining_count_fp`` is 0 once canceled or executed."""

    order_id: str
    client_order_id: str
    ticker: str
    status: OrderStatus
    outcome_side: OutcomeSide
    book_side: BookSide
    yes_price_dollars: Dollars
    initial_count_fp: Count
    fill_count_fp: Count
    remaining_count_fp: Count
    created_time: Timestamp | None = None
    last_update_time: Timestamp | None = None
    expiration_time: Timestamp | None = None
    no_price_dollars: Dollars | None = None
    taker_fill_cost_dollars: Dollars | None = None
    maker_fill_cost_dollars: Dollars | None = None
    taker_fees_dollars: Dollars | None = None
    maker_fees_dollars: Dollars | None = None
    user_id: str | None = None
    type: str | None = None
    self_trade_prevention_type: str | None = None
    order_group_id: str | None = None
    cancel_order_on_pause: bool | None = None
    subaccount_number: int | None = None
    exchange_index: int = 0


class RestFill(_Directed):
    """One row of ``GET /portfolio/fills`` (§4.4). Join to orders by ``order_id``: REST fills carry
    no ``client_order_id`` since Mar 2026. ``fee_cost`` is dollars."""

    fill_id: str
    trade_id: str
    order_id: str
    ticker: str = Field(validation_alias=AliasChoices("ticker", "market_ticker"))
    outcome_side: OutcomeSide
    book_side: BookSide
    count_fp: Count
    yes_price_dollars: Dollars
    is_taker: bool
    fee_cost: Dollars
    created_time: Timestamp
    no_price_dollars: Dollars | None = None
    subaccount_number: int | None = None
    exchange_index: int = 0


class Settlement(_Model):
    """One row of ``GET /portfolio/settlements`` (§4.5). ``revenue`` and ``value`` are cents."""

    ticker: str
    market_result: str  # yes / no / scalar (older: void)
    yes_count_fp: Count
    no_count_fp: Count
    yes_total_cost_dollars: Dollars
    no_total_cost_dollars: Dollars
    revenue: int  # cents
    fee_cost: Dollars
    settled_time: Timestamp
    event_ticker: str | None = None
    value: int | None = None  # cents per YES contract (scalar markets)
    exchange_index: int = 0


class ShardStatus(_Model):
    exchange_index: int
    exchange_active: bool
    trading_active: bool
    description: str | None = None
    intra_exchange_transfers_active: bool | None = None


class ExchangeStatus(_Model):
    """``GET /exchange/status`` (§8). The top-level flags are shard 0's."""

    exchange_active: bool
    trading_active: bool
    exchange_estimated_resume_time: Timestamp | None = None
    intra_exchange_transfers_active: bool | None = None
    exchange_index_statuses: list[ShardStatus] = []


class PriceRange(_Model):
    """Prices from ``start`` to ``end`` (inclusive) in steps of ``step`` dollars."""

    start: Dollars
    end: Dollars
    step: Dollars

    def __contains__(self, price: object) -> bool:
        if not isinstance(price, Decimal) or not self.start <= price <= self.end or self.step <= 0:
            return False
        return (price - self.start) % self.step == 0


class Market(_Model):
    """``GET /markets[/{ticker}]`` (§7), the fields the engine uses. ``status`` is the response
    vocabulary (initialized, active, inactive, closed, determined, disputed, amended, finalized),
    kept as a string because Kalshi adds values."""

    ticker: str
    status: str
    price_ranges: list[PriceRange]
    event_ticker: str | None = None
    market_type: str | None = None
    price_level_structure: str | None = None
    open_time: Timestamp | None = None
    close_time: Timestamp | None = None
    result: str | None = None
    exchange_index: int = 0

    def on_grid(self, price: Decimal) -> bool:
        """Whether ``price`` (YES dollars) is on this market's price grid (off-grid is rejected)."""
        return any(price in r for r in self.price_ranges)


__all__ = [
    "Balance",
    "BookSide",
    "ExchangeStatus",
    "RestFill",
    "Market",
    "MarketPosition",
    "RestOrder",
    "OrderStatus",
    "OutcomeSide",
    "PriceRange",
    "Settlement",
    "ShardBalance",
    "ShardStatus",
]
