"""The REST API's response bodies, as Kalshi's current (fixed-point) Trade API v2 writes them
(rest-spec §4, §7, §8, §9). They are the OpenAPI document's schemas; ``simulator.rest_format``
fills them. Money is a ``*_dollars`` string, a count a ``*_fp`` string with 2 decimals, times are
RFC 3339 except the few Unix-second fields Kalshi keeps (``updated_ts``, fill ``ts``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Side = Literal["yes", "no"]
BookSide = Literal["bid", "ask"]


class _Body(BaseModel):
    model_config = ConfigDict(frozen=True)


class Order(_Body):
    order_id: str = Field(description="the exchange's order id (FIX OrderID, tag 37)")
    user_id: str
    client_order_id: str = Field(description="the FIX ClOrdID (11) the order was entered with")
    ticker: str
    outcome_side: Side
    book_side: BookSide
    side: Side = Field(description="deprecated: outcome_side")
    action: Literal["buy"] = Field(description="deprecated: every order buys its outcome side")
    type: Literal["limit"]
    status: Literal["resting", "canceled", "executed"]
    yes_price_dollars: str
    no_price_dollars: str
    initial_count_fp: str
    fill_count_fp: str
    remaining_count_fp: str
    taker_fill_cost_dollars: str
    maker_fill_cost_dollars: str
    taker_fees_dollars: str
    maker_fees_dollars: str
    expiration_time: str | None
    created_time: str
    last_update_time: str
    self_trade_prevention_type: Literal["taker_at_cross", "maker"]
    order_group_id: str | None
    cancel_order_on_pause: bool
    subaccount_number: int
    exchange_index: int


class Fill(_Body):
    fill_id: str
    trade_id: str = Field(description="same as fill_id")
    order_id: str
    ticker: str
    market_ticker: str = Field(description="same as ticker")
    exchange_index: int
    outcome_side: Side
    book_side: BookSide
    purchased_side: Side
    side: Side = Field(description="deprecated: outcome_side")
    action: Literal["buy"] = Field(description="deprecated")
    count_fp: str
    yes_price_dollars: str
    no_price_dollars: str
    is_taker: bool
    fee_cost: str = Field(description="dollars")
    created_time: str
    ts: int = Field(description="Unix seconds (legacy)")
    subaccount_number: int


class MarketPosition(_Body):
    ticker: str
    exchange_index: int
    position_fp: str = Field(description="net contracts: positive YES, negative NO")
    market_exposure_dollars: str
    total_traded_dollars: str
    realized_pnl_dollars: str
    fees_paid_dollars: str
    last_updated_ts: str | None


class EventPosition(_Body):
    event_ticker: str
    total_cost_dollars: str
    total_cost_shares_fp: str
    event_exposure_dollars: str
    realized_pnl_dollars: str
    fees_paid_dollars: str


class Settlement(_Body):
    ticker: str
    event_ticker: str
    exchange_index: int
    market_result: Side
    yes_count_fp: str
    no_count_fp: str
    yes_total_cost_dollars: str
    no_total_cost_dollars: str
    revenue: int = Field(description="cents")
    value: int = Field(description="cents paid per YES contract")
    fee_cost: str = Field(description="dollars")
    settled_time: str


class PriceRange(_Body):
    start: str
    end: str
    step: str


class Market(_Body):
    ticker: str
    event_ticker: str
    market_type: Literal["binary"]
    status: Literal["active", "inactive", "closed", "finalized"]
    result: Literal["yes", "no", ""]
    yes_bid_dollars: str
    yes_ask_dollars: str
    no_bid_dollars: str
    no_ask_dollars: str
    last_price_dollars: str
    volume_fp: str
    price_level_structure: str
    price_ranges: list[PriceRange]
    settlement_ts: str | None
    exchange_index: int


class ExchangeIndexStatus(_Body):
    exchange_index: int
    description: str
    exchange_active: bool
    trading_active: bool
    intra_exchange_transfers_active: bool


class ExchangeStatus(_Body):
    exchange_active: bool
    trading_active: bool
    intra_exchange_transfers_active: bool
    exchange_estimated_resume_time: str | None
    exchange_index_statuses: list[ExchangeIndexStatus]


class UserDataTimestamp(_Body):
    as_of_time: str = Field(description="the moment the portfolio endpoints' data reflects")


class Balance(_Body):
    balance: int = Field(description="available cash, cents (sub-cent truncated)")
    balance_dollars: str
    portfolio_value: int = Field(description="positions at their market's last trade price, cents")
    updated_ts: int = Field(description="Unix seconds")


class OrderList(_Body):
    orders: list[Order]
    cursor: str


class OrderOne(_Body):
    order: Order


class FillList(_Body):
    fills: list[Fill]
    cursor: str


class PositionList(_Body):
    market_positions: list[MarketPosition]
    event_positions: list[EventPosition]
    cursor: str


class SettlementList(_Body):
    settlements: list[Settlement]
    cursor: str


class MarketList(_Body):
    markets: list[Market]
    cursor: str


class MarketOne(_Body):
    market: Market


class ErrorDetail(_Body):
    code: str
    message: str
    details: str = ""


class ErrorBody(_Body):
    """Kalshi's nested error body (401, 404 ...)."""

    error: ErrorDetail


class BareError(_Body):
    """Kalshi's body for a bad query parameter (400), e.g. ``limit`` above its maximum."""

    msg: str


class ThrottledError(_Body):
    error: Literal["too many requests"]


# --- simulator admin (not Kalshi's) -------------------------------------------------------------


class AdminFill(_Body):
    quantity: str = Field(description="contracts to fill, up to the order's remaining count", examples=["1.00"])


class AdminSettle(_Body):
    result: Side
