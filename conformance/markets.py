"""The markets a conformance run's simulator lists: the reserved scenario tickers that must reach its
exchange (``simulator.scripted`` scripts the rest of what they do) and the plain ones instructions
name. Liquidity comes from the scripts (``CONF-FILL`` and friends bring the house's side when an
order arrives), so no market is seeded: what one scenario trades never starves another.
"""

from __future__ import annotations

from simulator.config import MarketEntry
from simulator.scripted import LISTED_TICKERS

ORDER_TICKER = "CONF-ORD"  # plain order entry: orders rest, nothing fills them
YES_NO_TICKER = "CONF-YESNO"  # the YES/NO price convention (buy NO at 30 cents is sent as 54=2 44=70)
SESSION_TICKER = "CONF-SESSION"  # the session scenarios' resting orders, filled by the runner on cue
SELF_TRADE_TICKER = "CONF-STP"  # kalshi/ord/07: the client's own orders meet (self-trade prevention)

PLAIN_TICKERS = (ORDER_TICKER, YES_NO_TICKER, SESSION_TICKER, SELF_TRADE_TICKER)


def run_markets() -> list[MarketEntry]:
    """Every market a run lists, in a stable order."""
    tickers = dict.fromkeys([*PLAIN_TICKERS, *LISTED_TICKERS])
    return [MarketEntry(ticker=t) for t in tickers]
