"""Market settlement reports (35=UMS, spec §15): which sessions receive them, and what they say.

Pure: the venue tells it each session's Logon (``logged_on``) and hands it a settlement's events
(``write``), under its lock, and sends the messages it returns. Settling is the one operator action
FIX hears of.

Who: KalshiPT sessions unless their Logon said 20127=N, KalshiRT and KalshiNR sessions whose Logon
said 20127=Y, each as of its latest Logon. A session receives the entries of its own account only,
whatever session type it is.

Simulator choices where Kalshi's documents are silent:

* MarketSettlementPartyID (20109) is the account id; ClearingBusinessDate (715) the New York date
  of the settlement.
* An account's entries are paged ``page_size`` to a report (``SimulatorConfig.settlement_page_size``):
  TotNumMarketSettlementReports (20106) on every page, LastFragment (893) N until the last. Every
  session of the account gets the same pages under the same MarketSettlementReportIDs (20105), so a
  client that hears them twice can count them once. An account holds one position per market, so
  it has one entry; ``report_pages`` pages any number.
* Amounts: the payout (1704, PAYOUT) and the fee (137) in dollars, 2 decimals unless the amount has
  more: Kalshi rounds balances down to $0.0001 and charges the rest as the fee, so a payout has up
  to 4 and a fee as many as it takes (1704 + 137 is the payout before the fee).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal

from fixengine.fix.tags import (
    CLEARING_BUSINESS_DATE,
    COLLATERAL_AMOUNT_CHANGE,
    COLLATERAL_AMOUNT_TYPE,
    LAST_FRAGMENT,
    LONG_QTY,
    MARKET_RESULT,
    MARKET_SETTLEMENT_PARTY_ID,
    MARKET_SETTLEMENT_PARTY_ROLE,
    MARKET_SETTLEMENT_REPORT_ID,
    MISC_FEE_AMT,
    MISC_FEE_BASIS,
    MISC_FEE_CURR,
    MISC_FEE_TYPE,
    MSG_MARKET_SETTLEMENT_REPORT,
    NO_COLLATERAL_AMOUNT_CHANGES,
    NO_MARKET_SETTLEMENT_PARTY_IDS,
    NO_MISC_FEES,
    RECEIVE_SETTLEMENT_REPORTS,
    SETTL_PRICE,
    SHORT_QTY,
    SYMBOL,
    TOT_NUM_MARKET_SETTLEMENT_REPORTS,
)
from fixengine.kalshi.facts import SessionType
from fixengine.kalshi.prices import CENT, format_quantity
from fixengine.orders.wire import Fields
from simulator.exchange.matching import NEW_YORK, Event, MarketSettled, Settled
from simulator.fix.order_reports import Outgoing

DEFAULT_PAGE_SIZE = 100  # party entries a report carries
CUSTOMER_ACCOUNT = "24"  # MarketSettlementPartyRole (20110)
ZERO = Decimal(0)

# How a report's groups nest, for ``simulator.fix.grouped``: count tag -> an entry's tags in order.
UMS_GROUPS: Mapping[int, tuple[int, ...]] = {
    NO_MARKET_SETTLEMENT_PARTY_IDS: (
        MARKET_SETTLEMENT_PARTY_ID, MARKET_SETTLEMENT_PARTY_ROLE, LONG_QTY, SHORT_QTY, NO_COLLATERAL_AMOUNT_CHANGES,
        NO_MISC_FEES,
    ),
    NO_COLLATERAL_AMOUNT_CHANGES: (COLLATERAL_AMOUNT_CHANGE, COLLATERAL_AMOUNT_TYPE),
    NO_MISC_FEES: (MISC_FEE_AMT, MISC_FEE_CURR, MISC_FEE_TYPE, MISC_FEE_BASIS),
}


def receives_settlement_reports(session_type: SessionType, logon_flags: Mapping[int, str]) -> bool:
    """Whether a session logged on with ``logon_flags`` is sent settlement reports (spec §4.2, §15)."""
    asked = logon_flags.get(RECEIVE_SETTLEMENT_REPORTS)
    if session_type is SessionType.PT:
        return asked != "N"
    return session_type in (SessionType.NR, SessionType.RT) and asked == "Y"


def _dollars(amount: Decimal) -> str:
    cents = amount.quantize(CENT)
    return str(cents) if cents == amount else format(amount, "f")  # exact: the fee may be under $0.0001


def _entry(settled: Settled) -> Fields:
    net = settled.net_yes
    return [
        (MARKET_SETTLEMENT_PARTY_ID, settled.account_id),
        (MARKET_SETTLEMENT_PARTY_ROLE, CUSTOMER_ACCOUNT),
        (LONG_QTY, format_quantity(max(net, ZERO))),
        (SHORT_QTY, format_quantity(max(-net, ZERO))),
        (NO_COLLATERAL_AMOUNT_CHANGES, "1"),
        (COLLATERAL_AMOUNT_CHANGE, _dollars(settled.payout)),
        (COLLATERAL_AMOUNT_TYPE, "PAYOUT"),
        (NO_MISC_FEES, "1"),
        (MISC_FEE_AMT, _dollars(settled.fee)),
        (MISC_FEE_CURR, "USD"),
        (MISC_FEE_TYPE, "4"),  # exchange fees
        (MISC_FEE_BASIS, "0"),  # absolute
    ]


def report_pages(market: MarketSettled, entries: Sequence[Settled], page_size: int, business_date: date,
                 report_ids: Sequence[str]) -> list[Fields]:
    """The reports of one batch: ``entries`` (at least one) ``page_size`` to a page, the pages
    named by ``report_ids`` (one each, in order)."""
    if page_size < 1:
        raise ValueError(f"page_size {page_size} must be at least 1")
    pages = [entries[i:i + page_size] for i in range(0, len(entries), page_size)]
    if len(report_ids) != len(pages):
        raise ValueError(f"{len(pages)} pages need as many report ids, not {len(report_ids)}")
    out = []
    for n, (page, report_id) in enumerate(zip(pages, report_ids), 1):
        fields: Fields = [
            (MARKET_SETTLEMENT_REPORT_ID, report_id),
            (SYMBOL, market.ticker),
            (CLEARING_BUSINESS_DATE, business_date.strftime("%Y%m%d")),
            (TOT_NUM_MARKET_SETTLEMENT_REPORTS, str(len(pages))),
            (MARKET_RESULT, market.result),
            (LAST_FRAGMENT, "Y" if n == len(pages) else "N"),
            (SETTL_PRICE, str((market.settlement_price * 100).quantize(CENT))),  # cents, 2 decimals
            (NO_MARKET_SETTLEMENT_PARTY_IDS, str(len(page))),
        ]
        for settled in page:
            fields += _entry(settled)
        out.append(fields)
    return out


class SettlementReports:
    """Which sessions receive settlement reports, and the reports of each settlement."""

    def __init__(self, page_size: int = DEFAULT_PAGE_SIZE):
        if page_size < 1:
            raise ValueError(f"settlement page size {page_size} must be at least 1")
        self._page_size = page_size
        self._sessions: dict[str, tuple[str, bool]] = {}  # session id -> (account, receives reports)
        self._reports = 0  # numbers MarketSettlementReportIDs

    def logged_on(self, session_id: str, session_type: SessionType, account_id: str,
                  logon_flags: Mapping[int, str]) -> None:
        self._sessions[session_id] = (account_id, receives_settlement_reports(session_type, logon_flags))

    def write(self, events: Iterable[Event], now: datetime) -> list[Outgoing]:
        """The reports for the settlements among ``events``: to each entitled session of each
        account that held a position, that account's entries."""
        events = list(events)
        out: list[Outgoing] = []
        business_date = now.astimezone(NEW_YORK).date()
        for market in (e for e in events if isinstance(e, MarketSettled)):
            by_account: dict[str, list[Settled]] = {}
            for e in events:
                if isinstance(e, Settled) and e.ticker == market.ticker:
                    by_account.setdefault(e.account_id, []).append(e)
            for account_id, entries in by_account.items():
                sessions = [s for s, (a, receives) in self._sessions.items() if a == account_id and receives]
                if not sessions:
                    continue
                pages = -(-len(entries) // self._page_size)
                ids = [self._next_id(market.ticker) for _ in range(pages)]
                for fields in report_pages(market, entries, self._page_size, business_date, ids):
                    out += [Outgoing(session_id, MSG_MARKET_SETTLEMENT_REPORT, fields) for session_id in sessions]
        return out

    def _next_id(self, ticker: str) -> str:
        self._reports += 1
        return f"settle-{ticker}-{self._reports}"
