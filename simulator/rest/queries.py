"""The REST API's list and lookup endpoints as pure functions of a snapshot: filter, order, page,
format. The HTTP layer (``simulator.rest_api``) only parses parameters and calls these.

Orders, fills and settlements come newest first; positions and markets in ticker order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Literal, TypeVar

from simulator.rest import format as fmt
from simulator.rest import models as m
from simulator.rest.paging import page
from simulator.rest.state import MarketView, Snapshot

T = TypeVar("T")
OrderStatusFilter = Literal["resting", "canceled", "executed"]
SettlementStatusFilter = Literal["unsettled", "settled", "all"]
MarketStatusFilter = Literal["unopened", "open", "paused", "closed", "settled"]
# GET /markets ``status`` filter -> the Market ``status`` it selects (rest-spec §7).
_MARKET_FILTER = {"unopened": "initialized", "open": "active", "paused": "inactive", "closed": "closed",
                  "settled": "finalized"}


class ResourceMissing(LookupError):
    """An order or market the exchange does not know (404)."""


def _in_window(moment: datetime, min_ts: int | None, max_ts: int | None) -> bool:
    seconds = moment.timestamp()
    return (min_ts is None or seconds >= min_ts) and (max_ts is None or seconds <= max_ts)


def _newest_first(items: Iterable[T], keep: Callable[[T], bool]) -> list[T]:
    return [item for item in reversed(tuple(items)) if keep(item)]


def balance(snap: Snapshot, account_id: str) -> m.Balance:
    return fmt.balance_body(snap.account(account_id), snap.markets)


def orders(snap: Snapshot, account_id: str, *, limit: int, cursor: str | None = None,
           status: OrderStatusFilter | None = None, ticker: str | None = None, event_ticker: str | None = None,
           min_ts: int | None = None, max_ts: int | None = None) -> m.OrderList:
    events = _event_set(event_ticker)
    chosen = _newest_first(snap.account(account_id).orders, lambda r: (
        (status is None or fmt.order_status(r) == status)
        and (ticker is None or r.order.ticker == ticker)
        and (events is None or fmt.event_ticker(r.order.ticker) in events)
        and _in_window(r.created_time, min_ts, max_ts)
    ))
    rows, next_cursor = page(chosen, lambda r: r.seq, limit, cursor, descending=True)
    return m.OrderList(orders=[fmt.order_body(r) for r in rows], cursor=next_cursor)


def order(snap: Snapshot, account_id: str, order_id: str) -> m.OrderOne:
    for record in snap.account(account_id).orders:
        if record.order.order_id == order_id:
            return m.OrderOne(order=fmt.order_body(record))
    raise ResourceMissing(f"order {order_id} not found")


def fills(snap: Snapshot, account_id: str, *, limit: int, cursor: str | None = None, ticker: str | None = None,
          order_id: str | None = None, min_ts: int | None = None, max_ts: int | None = None) -> m.FillList:
    chosen = _newest_first(snap.account(account_id).fills, lambda f: (
        (ticker is None or f.ticker == ticker)
        and (order_id is None or f.order_id == order_id)
        and _in_window(f.created_time, min_ts, max_ts)
    ))
    rows, next_cursor = page(chosen, lambda f: f.seq, limit, cursor, descending=True)
    return m.FillList(fills=[fmt.fill_body(f) for f in rows], cursor=next_cursor)


def positions(snap: Snapshot, account_id: str, *, limit: int, cursor: str | None = None, ticker: str | None = None,
              event_ticker: str | None = None, count_filter: Sequence[str] = (),
              settlement_status: SettlementStatusFilter = "unsettled") -> m.PositionList:
    """``count_filter``: keep rows where each named figure (``position``, ``total_traded``) is non-zero."""
    def keep(p) -> bool:  # type: ignore[no-untyped-def]
        market = snap.markets.get(p.ticker)
        settled = market is not None and market.result is not None
        return (
            (settlement_status == "all" or settled == (settlement_status == "settled"))
            and (ticker is None or p.ticker == ticker)
            and (event_ticker is None or fmt.event_ticker(p.ticker) == event_ticker)
            and ("position" not in count_filter or p.net_yes != 0)
            and ("total_traded" not in count_filter or p.total_traded != 0)
        )

    chosen = sorted((p for p in snap.account(account_id).positions if keep(p)), key=lambda p: p.ticker)
    rows, next_cursor = page(chosen, lambda p: p.ticker, limit, cursor, descending=False)
    return m.PositionList(market_positions=[fmt.position_body(p) for p in rows],
                          event_positions=fmt.event_positions(rows), cursor=next_cursor)


def settlements(snap: Snapshot, account_id: str, *, limit: int, cursor: str | None = None,
                ticker: str | None = None, event_ticker: str | None = None, min_ts: int | None = None,
                max_ts: int | None = None) -> m.SettlementList:
    chosen = _newest_first(snap.account(account_id).settlements, lambda s: (
        (ticker is None or s.ticker == ticker)
        and (event_ticker is None or fmt.event_ticker(s.ticker) == event_ticker)
        and _in_window(s.settled_time, min_ts, max_ts)
    ))
    rows, next_cursor = page(chosen, lambda s: s.seq, limit, cursor, descending=True)
    return m.SettlementList(settlements=[fmt.settlement_body(s) for s in rows], cursor=next_cursor)


def markets(snap: Snapshot, *, limit: int, cursor: str | None = None, status: MarketStatusFilter | None = None,
            tickers: Sequence[str] = (), event_ticker: str | None = None) -> m.MarketList:
    def keep(market: MarketView) -> bool:
        return (
            (status is None or fmt.market_status(market) == _MARKET_FILTER[status])
            and (not tickers or market.config.ticker in tickers)
            and (event_ticker is None or fmt.event_ticker(market.config.ticker) == event_ticker)
        )

    chosen = sorted((mk for mk in snap.markets.values() if keep(mk)), key=lambda mk: mk.config.ticker)
    rows, next_cursor = page(chosen, lambda mk: mk.config.ticker, limit, cursor, descending=False)
    return m.MarketList(markets=[fmt.market_body(mk) for mk in rows], cursor=next_cursor)


def market(snap: Snapshot, ticker: str) -> m.MarketOne:
    found = snap.markets.get(ticker)
    if found is None:
        raise ResourceMissing(f"market {ticker} not found")
    return m.MarketOne(market=fmt.market_body(found))


def user_data_timestamp(snap: Snapshot) -> m.UserDataTimestamp:
    return m.UserDataTimestamp(as_of_time=fmt.rfc3339(snap.as_of) or "")


def _event_set(event_ticker: str | None) -> set[str] | None:
    """GET /portfolio/orders takes a comma list of event tickers."""
    return None if not event_ticker else {e.strip() for e in event_ticker.split(",") if e.strip()}
