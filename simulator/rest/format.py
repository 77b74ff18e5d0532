"""Exchange records to Kalshi's REST bodies: the one place where the REST API's numbers, times,
sides and statuses are written. Pure functions of a snapshot's records.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta, timezone
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal

from fixengine.orders.reports import OrdStatus
from fixengine.orders.requests import SelfTradePrevention
from fixengine.kalshi.maintenance import WEEKDAYS, PauseKind, Window
from fixengine.kalshi.prices import ONE, WireSide
from simulator.rest import models as m
from simulator.exchange.history import ZERO, FillRecord, OrderRecord, PositionRecord, SettlementRecord
from simulator.exchange.matching import MarketStatus
from simulator.exchange.pauses import PauseState
from simulator.rest.state import AccountView, MarketView

EXCHANGE_INDEX = 0  # one shard
SUBACCOUNT = 0  # the primary subaccount
_FOUR = Decimal("0.0001")
_SIX = Decimal("0.000001")
_CENT = Decimal("0.01")

_STATUS = {
    OrdStatus.NEW: "resting", OrdStatus.PARTIALLY_FILLED: "resting", OrdStatus.FILLED: "executed",
    OrdStatus.CANCELED: "canceled", OrdStatus.EXPIRED: "canceled",
}
_STP = {SelfTradePrevention.TAKER_AT_CROSS: "taker_at_cross", SelfTradePrevention.MAKER: "maker"}
_MARKET_STATUS = {MarketStatus.OPEN: "active", MarketStatus.PAUSED: "inactive", MarketStatus.CLOSED: "closed"}
# A market that trades until the operator settles it is scheduled to close this long after listing.
SCHEDULED_LIFE = timedelta(days=365)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)  # a listing time no snapshot knew
EARLY_CLOSE = "The simulator's operator may settle the market at any time."
RULES = "{ticker} resolves Yes, No or to a scalar value as the simulator's operator settles it."
# Kalshi's labels for the uniform grids; any other tick gets a label of ours.
_LEVEL_STRUCTURE = {Decimal("0.01"): "linear_cent", Decimal("0.001"): "deci_cent"}


# --- numbers and times ---------------------------------------------------------------------------


def dollars(value: Decimal) -> str:
    """Dollars with 4 decimals, or up to 6 when the amount needs them (Kalshi's portfolio precision)."""
    value = value + 0  # -0 -> 0
    exact = value.quantize(_FOUR)
    return str(exact if exact == value else value.quantize(_SIX, ROUND_HALF_EVEN))


def count(value: Decimal) -> str:
    """A contract count, always 2 decimals (signed for positions)."""
    return str((value + 0).quantize(_CENT))


def cents(value: Decimal) -> int:
    """Dollars to integer cents, sub-cent truncated (Kalshi's ``balance``)."""
    return int((value * 100).to_integral_value(ROUND_DOWN))


def rfc3339(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def unix_seconds(moment: datetime | None) -> int:
    return int(moment.timestamp()) if moment is not None else 0


def event_ticker(ticker: str) -> str:
    """Kalshi's market tickers are EVENT-MARKET; the simulator has no events of its own."""
    return ticker.rsplit("-", 1)[0] if "-" in ticker else ticker


def order_status(record: OrderRecord) -> str:
    return _STATUS.get(record.order.status, "resting")


def _outcome(side: WireSide) -> tuple[m.Side, m.BookSide]:
    # Side 1 buys YES (bid); side 2 sells YES, which is buying NO (ask) (rest-spec §3.2).
    return ("yes", "bid") if side is WireSide.BUY_YES else ("no", "ask")


# --- bodies ---------------------------------------------------------------------------------------


def order_body(record: OrderRecord) -> m.Order:
    o = record.order
    outcome, book = _outcome(o.side)
    return m.Order(
        order_id=o.order_id, user_id=o.account_id, client_order_id=record.client_order_id, ticker=o.ticker,
        outcome_side=outcome, book_side=book, side=outcome, action="buy", type="limit",
        status=order_status(record),  # type: ignore[arg-type]
        yes_price_dollars=dollars(o.yes_price), no_price_dollars=dollars(ONE - o.yes_price),
        initial_count_fp=count(record.initial_quantity), fill_count_fp=count(o.cum_qty),
        remaining_count_fp=count(o.leaves_qty),
        taker_fill_cost_dollars=dollars(record.taker_fill_cost), maker_fill_cost_dollars=dollars(record.maker_fill_cost),
        taker_fees_dollars=dollars(record.taker_fees), maker_fees_dollars=dollars(record.maker_fees),
        expiration_time=rfc3339(o.expires_at), created_time=rfc3339(record.created_time) or "",
        last_update_time=rfc3339(record.last_update_time) or "",
        self_trade_prevention_type=_STP[o.self_trade_prevention],  # type: ignore[arg-type]
        order_group_id=None, cancel_order_on_pause=o.cancel_on_pause, subaccount_number=SUBACCOUNT,
        exchange_index=EXCHANGE_INDEX,
    )


def fill_body(fill: FillRecord) -> m.Fill:
    outcome, book = _outcome(fill.side)
    return m.Fill(
        fill_id=fill.trade_id, trade_id=fill.trade_id, order_id=fill.order_id, ticker=fill.ticker,
        market_ticker=fill.ticker, exchange_index=EXCHANGE_INDEX, outcome_side=outcome, book_side=book,
        purchased_side=outcome, side=outcome, action="buy", count_fp=count(fill.quantity),
        yes_price_dollars=dollars(fill.yes_price), no_price_dollars=dollars(ONE - fill.yes_price),
        is_taker=fill.is_taker, fee_cost=dollars(fill.fee), created_time=rfc3339(fill.created_time) or "",
        ts=unix_seconds(fill.created_time), subaccount_number=SUBACCOUNT,
    )


def position_body(p: PositionRecord) -> m.MarketPosition:
    return m.MarketPosition(
        ticker=p.ticker, exchange_index=EXCHANGE_INDEX, position_fp=count(p.net_yes),
        market_exposure_dollars=dollars(p.exposure), total_traded_dollars=dollars(p.total_traded),
        realized_pnl_dollars=dollars(p.realized_pnl), fees_paid_dollars=dollars(p.fees_paid),
        last_updated_ts=rfc3339(p.last_updated),
    )


def event_positions(positions: Iterable[PositionRecord]) -> list[m.EventPosition]:
    """Positions summed per event, in event ticker order."""
    totals: dict[str, list[Decimal]] = {}
    for p in positions:
        t = totals.setdefault(event_ticker(p.ticker), [ZERO] * 5)
        for i, value in enumerate((p.total_traded, p.traded_count, p.exposure, p.realized_pnl, p.fees_paid)):
            t[i] += value
    return [
        m.EventPosition(event_ticker=event, total_cost_dollars=dollars(t[0]), total_cost_shares_fp=count(t[1]),
                        event_exposure_dollars=dollars(t[2]), realized_pnl_dollars=dollars(t[3]),
                        fees_paid_dollars=dollars(t[4]))
        for event, t in sorted(totals.items())
    ]


def settlement_body(s: SettlementRecord) -> m.Settlement:
    return m.Settlement(
        ticker=s.ticker, event_ticker=event_ticker(s.ticker), exchange_index=EXCHANGE_INDEX, market_result=s.result,
        yes_count_fp=count(s.yes_count), no_count_fp=count(s.no_count),
        yes_total_cost_dollars=dollars(s.yes_total_cost), no_total_cost_dollars=dollars(s.no_total_cost),
        revenue=cents(s.revenue), value=int((s.value * 100).to_integral_value(ROUND_HALF_EVEN)), fee_cost=dollars(s.fee_cost),
        settled_time=rfc3339(s.settled_time) or "",
    )


def balance_body(account: AccountView, markets: Mapping[str, MarketView]) -> m.Balance:
    return m.Balance(
        balance=cents(account.balance), balance_dollars=dollars(account.balance),
        portfolio_value=cents(portfolio_value(account.positions, markets)), updated_ts=unix_seconds(account.updated),
    )


def portfolio_value(positions: Iterable[PositionRecord], markets: Mapping[str, MarketView]) -> Decimal:
    """Open positions marked at their market's last trade (YES contracts at p, NO at 1 - p)."""
    total = ZERO
    for p in positions:
        market = markets.get(p.ticker)
        if p.net_yes == 0 or market is None or market.last_price is None:
            continue
        price = market.last_price if p.net_yes > 0 else ONE - market.last_price
        total += abs(p.net_yes) * price
    return total


def market_status(market: MarketView) -> str:
    return "finalized" if market.result is not None else _MARKET_STATUS[market.config.status]


def market_close(market: MarketView) -> datetime:
    """When the market closes (and expires): at its settlement; at listing if it was listed closed;
    else a year on, the schedule of a market that trades until the operator settles it."""
    listed = market.listed_time or _EPOCH
    if market.settled_time is not None:
        return market.settled_time
    return listed if market.config.status is MarketStatus.CLOSED else listed + SCHEDULED_LIFE


def market_body(market: MarketView) -> m.Market:
    """A market in Kalshi's current format (rest-spec §7). The simulator's markets are plain binaries
    with no titles, strikes, calendar or multivariate legs of their own: the ticker stands for the
    titles, and what Kalshi leaves null for such a market is null."""
    ticker, tick = market.config.ticker, market.config.tick
    # An empty side shows as no bid ($0) and no offer ($1): a simulator choice.
    bid = market.best_bid if market.best_bid is not None else ZERO
    ask = market.best_offer if market.best_offer is not None else ONE
    listed = market.listed_time or _EPOCH
    close = rfc3339(market_close(market)) or ""
    value = market.settlement_value
    if value is None and market.result in ("yes", "no"):
        value = ONE if market.result == "yes" else ZERO
    return m.Market(
        ticker=ticker, event_ticker=event_ticker(ticker), market_type="binary",
        title=ticker, subtitle="", yes_sub_title=ticker, no_sub_title=ticker,
        created_time=rfc3339(listed) or "", updated_time=rfc3339(market.settled_time or listed) or "",
        open_time=rfc3339(listed) or "", close_time=close, expected_expiration_time=close, expiration_time=close,
        latest_expiration_time=close, settlement_timer_seconds=0,  # settled the moment the operator says
        status=market_status(market),  # type: ignore[arg-type]
        yes_bid_dollars=dollars(bid), yes_bid_size_fp=count(market.bid_size),
        yes_ask_dollars=dollars(ask), yes_ask_size_fp=count(market.offer_size),
        no_bid_dollars=dollars(ONE - ask), no_ask_dollars=dollars(ONE - bid),
        last_price_dollars=dollars(market.last_price if market.last_price is not None else ZERO),
        volume_fp=count(market.volume), volume_24h_fp=count(market.volume_24h),
        result=market.result or "",  # type: ignore[arg-type]
        can_close_early=True, early_close_condition=EARLY_CLOSE,
        open_interest_fp=count(market.open_interest), notional_value_dollars=dollars(ONE), liquidity_dollars=dollars(ZERO),
        # No quotes of a day ago are kept; the last trade of a day ago is.
        previous_yes_bid_dollars=dollars(ZERO), previous_yes_ask_dollars=dollars(ZERO),
        previous_price_dollars=dollars(market.day_old_price if market.day_old_price is not None else ZERO),
        settlement_value_dollars=dollars(value) if value is not None else None,
        settlement_ts=rfc3339(market.settled_time), settlement_bounds_type="default", settlement_floor_dollars=None,
        expiration_value="", occurrence_datetime=None, fee_waiver_expiration_time=None,
        strike_type=None, floor_strike=None, cap_strike=None, functional_strike=None, custom_strike=None,
        rules_primary=RULES.format(ticker=ticker), rules_secondary="",
        mve_collection_ticker=None, mve_selected_legs=None, primary_participant_key=None,
        price_level_structure=_LEVEL_STRUCTURE.get(tick, f"linear_{dollars(tick)}"),
        price_ranges=[m.PriceRange(start=dollars(ZERO), end=dollars(ONE), step=dollars(tick))],
        is_provisional=False, exchange_index=EXCHANGE_INDEX,
    )


def exchange_status_body(state: PauseState | None = None) -> m.ExchangeStatus:
    """The exchange as a whole (markets also pause one by one): any pause stops trading; an
    exchange pause stops the exchange (rest-spec §8). The resume time is known in the window only."""
    kind = state.kind if state is not None else None
    trading, exchange = kind is None, kind is not PauseKind.EXCHANGE
    index = m.ExchangeIndexStatus(exchange_index=EXCHANGE_INDEX, description="default", exchange_active=exchange,
                                  trading_active=trading, intra_exchange_transfers_active=False)
    return m.ExchangeStatus(exchange_active=exchange, trading_active=trading, intra_exchange_transfers_active=False,
                            exchange_estimated_resume_time=rfc3339(state.resumes) if state is not None else None,
                            exchange_index_statuses=[index])


def exchange_schedule_body(now: datetime, windows: Iterable[Window], weeks: int) -> m.ExchangeSchedule:
    """The simulator's markets trade around the clock; its maintenance windows are its schedule's."""
    every_day = [m.TradingHours(open_time="00:00", close_time="23:59")]
    hours = m.StandardHours(start_time=rfc3339(now) or "", end_time=rfc3339(now + timedelta(weeks=weeks)) or "",
                            **{day: every_day for day in WEEKDAYS})
    maintenance = [m.MaintenanceWindow(start_datetime=rfc3339(w.start) or "", end_datetime=rfc3339(w.end) or "")
                   for w in windows]
    return m.ExchangeSchedule(schedule=m.Schedule(standard_hours=[hours], maintenance_windows=maintenance))


def error_body(code: str, message: str, details: str = "") -> dict[str, object]:
    return m.ErrorBody(error=m.ErrorDetail(code=code, message=message, details=details)).model_dump()


RATE_LIMITED_BODY = {"error": "too many requests"}
