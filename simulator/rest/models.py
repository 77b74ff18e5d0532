"""The REST API's response bodies, as Kalshi's current (fixed-point) Trade API v2 writes them
(rest-spec §4, §7, §8, §9). They are the OpenAPI document's schemas; ``simulator.rest_format``
fills them. Money is a ``*_dollars`` string, a count a ``*_fp`` string with 2 decimals, times are
RFC 3339 except the few Unix-second fields Kalshi keeps (``updated_ts``, fill ``ts``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Side = Literal["yes", "no"]
Result = Literal["yes", "no", "scalar"]
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
    market_result: Result
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
    """Every field of Kalshi's current Market (rest-spec §7), deprecated ones included (Kalshi still
    sends them), and the two OpenAPI 3.34 added (``settlement_bounds_type``, ``settlement_floor_dollars``).
    Times are RFC 3339; money ``*_dollars``, counts ``*_fp`` strings."""

    ticker: str
    event_ticker: str
    market_type: Literal["binary"]
    title: str = Field(description="deprecated: yes_sub_title and no_sub_title")
    subtitle: str = Field(description="deprecated")
    yes_sub_title: str
    no_sub_title: str
    created_time: str
    updated_time: str = Field(description="the last change of the market's terms (not trading)")
    open_time: str
    close_time: str
    expected_expiration_time: str | None
    expiration_time: str = Field(description="deprecated: latest_expiration_time")
    latest_expiration_time: str
    settlement_timer_seconds: int
    status: Literal["active", "inactive", "closed", "finalized"]
    yes_bid_dollars: str
    yes_bid_size_fp: str
    yes_ask_dollars: str
    yes_ask_size_fp: str
    no_bid_dollars: str
    no_ask_dollars: str
    last_price_dollars: str
    volume_fp: str
    volume_24h_fp: str
    result: Literal["yes", "no", "scalar", ""]
    can_close_early: bool
    open_interest_fp: str
    notional_value_dollars: str = Field(description="what one contract pays at most")
    liquidity_dollars: str = Field(description="deprecated: always 0.0000")
    previous_yes_bid_dollars: str = Field(description="a day ago")
    previous_yes_ask_dollars: str = Field(description="a day ago")
    previous_price_dollars: str = Field(description="the last trade a day ago")
    settlement_value_dollars: str | None = Field(description="what a YES contract paid; null until settled")
    settlement_ts: str | None
    settlement_bounds_type: Literal["default", "floor"]
    settlement_floor_dollars: str | None
    expiration_value: str
    occurrence_datetime: str | None
    fee_waiver_expiration_time: str | None
    early_close_condition: str | None
    strike_type: Literal["greater", "greater_or_equal", "less", "less_or_equal", "between", "functional", "custom",
                         "structured"] | None
    floor_strike: None = Field(description="a number where the market has a strike; the simulator's have none")
    cap_strike: None = Field(description="a number where the market has a strike; the simulator's have none")
    functional_strike: str | None
    custom_strike: dict[str, str] | None
    rules_primary: str
    rules_secondary: str
    mve_collection_ticker: str | None
    mve_selected_legs: list[dict[str, str]] | None = Field(description="the legs of a multivariate market")
    primary_participant_key: str | None
    price_level_structure: str
    price_ranges: list[PriceRange]
    is_provisional: bool
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


class MaintenanceWindow(_Body):
    start_datetime: str
    end_datetime: str


class TradingHours(_Body):
    open_time: str = Field(description="HH:MM, New York time")
    close_time: str


class StandardHours(_Body):
    start_time: str
    end_time: str
    monday: list[TradingHours]
    tuesday: list[TradingHours]
    wednesday: list[TradingHours]
    thursday: list[TradingHours]
    friday: list[TradingHours]
    saturday: list[TradingHours]
    sunday: list[TradingHours]


class Schedule(_Body):
    standard_hours: list[StandardHours]
    maintenance_windows: list[MaintenanceWindow]


class ExchangeSchedule(_Body):
    schedule: Schedule


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


class AdminPause(_Body):
    kind: Literal["trading", "exchange"] = Field(
        description="trading: new orders and amends refused, cancels allowed; exchange: cancels refused too")


class AdminClock(_Body):
    to: str = Field(description="ISO 8601 time with its offset: the maintenance calendar's clock from now",
                    examples=["2026-03-12T07:00:00+00:00"])


class AdminSettle(_Body):
    result: Result
    price: str | None = Field(None, description="scalar only: what a YES contract pays, dollars (0 to 1)",
                              examples=["0.3060"])
