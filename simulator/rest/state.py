"""What the REST API reads: immutable snapshots of the exchange and its history, and how stale they
may be.

A ``Snapshot`` is taken under the venue's lock (``capture``) and never changes afterwards, so a
request serves one consistent moment (``as_of``). ``Snapshots`` serves fresh ones when the lag is
0; with a lag it keeps one whole-exchange snapshot until it is ``lag`` seconds old, which is
Kalshi's read-after-write staleness (rest-spec §6.4) and what ``/exchange/user_data_timestamp`` says.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Literal

from simulator.exchange.history import FillRecord, History, OrderRecord, PositionRecord, SettlementRecord
from simulator.exchange.matching import Exchange, MarketConfig, OrderSnapshot


@dataclass(frozen=True, slots=True)
class MarketView:
    config: MarketConfig
    result: Literal["yes", "no", "scalar"] | None  # None: not settled
    best_bid: Decimal | None  # YES prices
    best_offer: Decimal | None
    last_price: Decimal | None
    volume: Decimal
    settled_time: datetime | None
    listed_time: datetime | None = None  # None: not known (the caller's snapshot time stands in)
    bid_size: Decimal = Decimal(0)  # contracts resting at the best bid, and at the best offer
    offer_size: Decimal = Decimal(0)
    open_interest: Decimal = Decimal(0)  # YES contracts held (as many NO are)
    volume_24h: Decimal = Decimal(0)
    day_old_price: Decimal | None = None  # the YES price of the last trade a day ago
    settlement_value: Decimal | None = None  # what a YES contract paid, once settled


@dataclass(frozen=True, slots=True)
class AccountView:
    account_id: str
    balance: Decimal  # free cash, dollars
    updated: datetime | None
    orders: tuple[OrderRecord, ...]  # in creation order
    fills: tuple[FillRecord, ...]  # in time order
    positions: tuple[PositionRecord, ...]
    settlements: tuple[SettlementRecord, ...]


@dataclass(frozen=True, slots=True)
class Snapshot:
    as_of: datetime  # the exchange's time when it was taken
    markets: Mapping[str, MarketView]
    accounts: Mapping[str, AccountView]  # only the accounts asked for

    def account(self, account_id: str) -> AccountView:
        return self.accounts.get(account_id) or AccountView(account_id, Decimal(0), None, (), (), (), ())


Reader = Callable[[Callable[[Exchange, History, datetime], Snapshot]], Snapshot]


def capture(exchange: Exchange, history: History, now: datetime, account_ids: Iterable[str] | None) -> Snapshot:
    """Copy what REST shows of the given accounts (None: every account). Call under the venue lock."""
    markets = {}
    held: dict[str, Decimal] = {}  # open interest: YES contracts held, by market
    for state in exchange.accounts():
        for ticker, net_yes in state.positions.items():
            if net_yes > 0:
                held[ticker] = held.get(ticker, Decimal(0)) + net_yes
    for market in exchange.markets():
        activity = history.markets.get(market.ticker)
        best_bid, best_offer = exchange.best_bid(market.ticker), exchange.best_offer(market.ticker)
        volume_24h, day_old_price = history.day(market.ticker, now)
        markets[market.ticker] = MarketView(
            market, exchange.settlement(market.ticker), best_bid, best_offer, activity.last_price if activity else None,
            activity.volume if activity else Decimal(0), activity.settled_time if activity else None,
            listed_time=history.listed_time or now,
            bid_size=_size_at(exchange.bids(market.ticker), best_bid),
            offer_size=_size_at(exchange.offers(market.ticker), best_offer),
            open_interest=held.get(market.ticker, Decimal(0)),
            volume_24h=volume_24h, day_old_price=day_old_price,
            settlement_value=activity.settlement_price if activity else None,
        )
    ids = [a.account_id for a in exchange.accounts()] if account_ids is None else account_ids
    accounts = {}
    for account_id in ids:
        try:
            state = exchange.account(account_id)
        except KeyError:
            continue
        h = history.account(account_id)
        accounts[account_id] = AccountView(
            account_id, state.balance, h.updated, tuple(h.orders.values()), tuple(h.fills),
            tuple(h.positions.values()), tuple(h.settlements),
        )
    return Snapshot(now, markets, accounts)


def _size_at(orders: Iterable[OrderSnapshot], price: Decimal | None) -> Decimal:
    return sum((o.leaves_qty for o in orders if o.yes_price == price), Decimal(0))


class Snapshots:
    """Snapshots at most ``lag`` seconds old, from ``read`` (``Venue.read``)."""

    def __init__(self, read: Reader, lag: float, monotonic: Callable[[], float] = time.monotonic):
        self._read = read
        self._lag = lag
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._cached: Snapshot | None = None
        self._taken = 0.0

    def get(self, account_id: str | None = None) -> Snapshot:
        """A snapshot holding ``account_id`` (None: markets only, unless lagging: then everything)."""
        if self._lag <= 0:
            return self._read(lambda ex, hist, now: capture(ex, hist, now, [] if account_id is None else [account_id]))
        with self._lock:
            if self._cached is None or self._monotonic() - self._taken >= self._lag:
                self._cached = self._read(lambda ex, hist, now: capture(ex, hist, now, None))
                self._taken = self._monotonic()
            return self._cached
