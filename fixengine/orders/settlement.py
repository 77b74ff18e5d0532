"""Market settlement reports (35=UMS, spec §15): reading them, and what they do to an account.

Kalshi reports a market's settlement on KalshiPT (unless the Logon said 20127=N) and on KalshiRT
and KalshiNR sessions that logged on with 20127=Y. A batch may take several reports (pages): each
has its own MarketSettlementReportID (20105), all name the market (55), and the last says
LastFragment (893) = Y. Each party entry is a settled position (704 YES, 705 NO), its payout net
of the rounding fee (1704 with 1705=PAYOUT, dollars) and that fee (137).

A session receives only its own account's entries, so a report is read as settling the account of
the session it came on (``SettlementReport.account``). Pure: no I/O, no clock. The book keeps a
``Ledger`` (each account's cash as FIX reported it, and its settled markets); the journal records
the reports and replays them into it. A report applied twice (the same 20105 for the same
account: a resend, a replay, a second session of the account) changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import Enum

from fixengine._event import _StampedLater
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
    NO_COLLATERAL_AMOUNT_CHANGES,
    NO_MARKET_SETTLEMENT_PARTY_IDS,
    NO_MISC_FEES,
    SETTL_PRICE,
    SHORT_QTY,
    SYMBOL,
    TOT_NUM_MARKET_SETTLEMENT_REPORTS,
)
from fixengine.kalshi.prices import ONE, PriceError, parse_decimal
from fixengine.orders.wire import ReportError, first_values

ZERO = Decimal(0)
HUNDRED = Decimal(100)
PAYOUT = "PAYOUT"
# Before 2026-04 CollateralAmountType was a number (1 Balance, 2 Payout) and the amount was in
# cents (spec §15, §23 item 18); the strings came with dollars.
_LEGACY_PAYOUT = "2"
# The tags of one party entry, nested groups included (dictionary order: 20109 first).
_PARTY_TAGS = frozenset({
    MARKET_SETTLEMENT_PARTY_ROLE, LONG_QTY, SHORT_QTY, NO_COLLATERAL_AMOUNT_CHANGES, COLLATERAL_AMOUNT_CHANGE,
    COLLATERAL_AMOUNT_TYPE, NO_MISC_FEES, MISC_FEE_AMT, MISC_FEE_CURR, MISC_FEE_TYPE, MISC_FEE_BASIS,
})


class MarketResult(str, Enum):
    """MarketResult (20107). Older documents spell it ``Yes``: read without regard to case."""

    YES = "yes"
    NO = "no"
    SCALAR = "scalar"


@dataclass(frozen=True, slots=True)
class SettlementParty:
    """One party entry: a position settled and what it paid."""

    party_id: str  # MarketSettlementPartyID (20109): Kalshi's name for the account
    role: int  # MarketSettlementPartyRole (20110): 24, customer account
    long_qty: Decimal  # YES contracts settled (704)
    short_qty: Decimal  # NO contracts settled (705)
    payout: Decimal  # dollars credited, net of the fee (1704, 1705=PAYOUT); worked out when not reported
    fee: Decimal  # dollars (137)

    @property
    def net_yes(self) -> Decimal:
        return self.long_qty - self.short_qty


@dataclass(frozen=True, slots=True)
class SettlementReport:
    """One MarketSettlementReport (35=UMS) page, for the account of the session it came on."""

    account: str  # the account it settles (the API key's account, as positions are kept)
    report_id: str  # MarketSettlementReportID (20105): differs on every page
    ticker: str  # Symbol (55): groups the pages of a batch
    business_date: date  # ClearingBusinessDate (715)
    result: MarketResult
    settlement_price: Decimal  # what a YES contract pays before fees, dollars (730 is cents)
    parties: tuple[SettlementParty, ...] = ()
    total_reports: int | None = None  # TotNumMarketSettlementReports (20106): pages in the batch
    last_fragment: bool = True  # LastFragment (893); absent: the batch is this one page

    @property
    def net_yes(self) -> Decimal:
        """The position this page settled (positive YES, negative NO)."""
        return sum((p.net_yes for p in self.parties), ZERO)

    @property
    def payout(self) -> Decimal:
        return sum((p.payout for p in self.parties), ZERO)

    @property
    def fee(self) -> Decimal:
        return sum((p.fee for p in self.parties), ZERO)


# --- reading ------------------------------------------------------------------------------------


def _required(f: Mapping[int, str], tag: int, name: str) -> str:
    value = f.get(tag)
    if not value:
        raise ReportError(f"MarketSettlementReport without {name} ({tag})")
    return value


def _number(value: str, name: str, tag: int) -> Decimal:
    try:
        return parse_decimal(value, f"{name} ({tag})")
    except PriceError as exc:
        raise ReportError(f"MarketSettlementReport: {exc}") from None


def _whole(value: str, name: str, tag: int) -> int:
    if not value.isdigit():
        raise ReportError(f"MarketSettlementReport: {name} ({tag}) {value!r} is not a whole number")
    return int(value)


def _party_entries(fields: Iterable[tuple[int, str]]) -> list[list[tuple[int, str]]]:
    """The fields of each party entry, in wire order: from a 20109 to the next one, or to the
    first tag that belongs to no entry (Kalshi's example puts 893 after the group)."""
    entries: list[list[tuple[int, str]]] = []
    current: list[tuple[int, str]] | None = None
    for tag, value in fields:
        if tag == MARKET_SETTLEMENT_PARTY_ID:
            current = [(tag, value)]
            entries.append(current)
        elif current is not None and tag in _PARTY_TAGS:
            current.append((tag, value))
        else:
            current = None
    return entries


def _party(entry: list[tuple[int, str]], n: int, price: Decimal) -> SettlementParty:
    where = f"party entry {n}"
    f = first_values(entry)
    role = f.get(MARKET_SETTLEMENT_PARTY_ROLE)
    if not role:
        raise ReportError(f"MarketSettlementReport {where} without MarketSettlementPartyRole (20110)")
    long_qty = _number(f.get(LONG_QTY, "0"), f"{where} LongQty", LONG_QTY)
    short_qty = _number(f.get(SHORT_QTY, "0"), f"{where} ShortQty", SHORT_QTY)
    fee = sum((_number(v, f"{where} MiscFeeAmt", t) for t, v in entry if t == MISC_FEE_AMT), ZERO)
    payout: Decimal | None = None
    amount: str | None = None
    for tag, value in entry:
        if tag == COLLATERAL_AMOUNT_CHANGE:
            amount = value
        elif tag == COLLATERAL_AMOUNT_TYPE and amount is not None:
            kind, amount_text, amount = value.upper(), amount, None
            if kind not in (PAYOUT, _LEGACY_PAYOUT):
                continue  # a BALANCE entry is not the settlement's payout
            paid = _number(amount_text, f"{where} CollateralAmountChange", COLLATERAL_AMOUNT_CHANGE)
            paid = paid / HUNDRED if kind == _LEGACY_PAYOUT else paid
            payout = paid if payout is None else payout + paid
    if payout is None:  # no collateral group: what the position pays at the settlement price, less the fee
        payout = long_qty * price + short_qty * (ONE - price) - fee
    return SettlementParty(f[MARKET_SETTLEMENT_PARTY_ID], _whole(role, f"{where} MarketSettlementPartyRole",
                                                                  MARKET_SETTLEMENT_PARTY_ROLE),
                           long_qty, short_qty, payout, fee)


def parse_settlement_report(fields: list[tuple[int, str]], *, account: str) -> SettlementReport:
    """A MarketSettlementReport (35=UMS) as received, read for ``account``. Raises ``ReportError``
    naming the field when a required one is missing or malformed."""
    f = first_values(fields)
    report_id = _required(f, MARKET_SETTLEMENT_REPORT_ID, "MarketSettlementReportID")
    ticker = _required(f, SYMBOL, "Symbol")
    day = _required(f, CLEARING_BUSINESS_DATE, "ClearingBusinessDate")
    try:
        business_date = datetime.strptime(day, "%Y%m%d").date()
    except ValueError:
        raise ReportError(f"MarketSettlementReport: ClearingBusinessDate (715) {day!r} is not YYYYMMDD") from None
    text = _required(f, MARKET_RESULT, "MarketResult")
    try:
        result = MarketResult(text.lower())
    except ValueError:
        raise ReportError(f"MarketSettlementReport: MarketResult (20107) {text!r} is not yes, no or scalar") from None
    cents = _number(_required(f, SETTL_PRICE, "SettlementPrice"), "SettlementPrice", SETTL_PRICE)
    if not ZERO <= cents <= HUNDRED:
        raise ReportError(f"MarketSettlementReport: SettlementPrice (730) {cents} is not 0 to 100 cents")
    price = cents / HUNDRED
    last = f.get(LAST_FRAGMENT, "Y")
    if last not in ("Y", "N"):
        raise ReportError(f"MarketSettlementReport: LastFragment (893) {last!r} must be Y or N")
    total = f.get(TOT_NUM_MARKET_SETTLEMENT_REPORTS)
    entries = _party_entries(fields)
    declared = f.get(NO_MARKET_SETTLEMENT_PARTY_IDS)
    if declared is not None and _whole(declared, "NoMarketSettlementPartyIDs", NO_MARKET_SETTLEMENT_PARTY_IDS) != len(entries):
        raise ReportError(f"MarketSettlementReport: NoMarketSettlementPartyIDs (20108) is {declared} "
                          f"but {len(entries)} entries follow")
    return SettlementReport(
        account=account, report_id=report_id, ticker=ticker, business_date=business_date, result=result,
        settlement_price=price, parties=tuple(_party(e, n, price) for n, e in enumerate(entries, 1)),
        total_reports=None if total is None else _whole(total, "TotNumMarketSettlementReports",
                                                        TOT_NUM_MARKET_SETTLEMENT_REPORTS),
        last_fragment=last == "Y",
    )


# --- what it does to the account -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MarketSettled(_StampedLater):
    """A settlement report (35=UMS) for the account: its position in ``ticker`` is closed and
    ``payout`` credited to its cash. One per page of a batch, ``complete`` from the page marked last;
    ``OrderBook.settlement`` sums the pages."""

    account: str
    ticker: str
    result: MarketResult
    settlement_price: Decimal  # what a YES contract pays before fees, dollars
    net_yes: Decimal  # the position this page settled (positive YES, negative NO)
    payout: Decimal  # dollars this page credited, net of fee
    fee: Decimal  # dollars
    report_id: str
    complete: bool  # the batch's last page has arrived

    def describe(self) -> str:
        held = f"{self.net_yes} YES" if self.net_yes >= 0 else f"{-self.net_yes} NO"
        more = "" if self.complete else " (more pages to come)"
        return (f"{self.ticker} settled {self.result.value} at ${self.settlement_price} a YES contract: "
                f"{held} paid ${self.payout} (fee ${self.fee}){more}")


@dataclass(frozen=True, slots=True)
class SettledMarket:
    """What an account's settlement reports for one market said, their pages summed."""

    result: MarketResult
    settlement_price: Decimal  # dollars per YES contract, before fees
    net_yes: Decimal  # the position settled
    payout: Decimal  # dollars, net of fees
    fee: Decimal
    reports: int  # pages applied
    complete: bool  # the page marked last (893=Y) has arrived


@dataclass
class Ledger:
    """Each account's cash as FIX reported it, and its settled markets. ``cash`` is what the
    reports moved since the journal began (fills' BALANCE changes, settlement payouts), dollars: not
    the balance, which FIX never reports."""

    cash: dict[str, Decimal] = field(default_factory=dict)  # account -> dollars
    settled: dict[tuple[str, str], SettledMarket] = field(default_factory=dict)  # (account, ticker) -> ...
    _reports: set[tuple[str, str]] = field(default_factory=set)  # (account, 20105) applied

    def credit(self, account: str, amount: Decimal) -> None:
        self.cash[account] = self.cash.get(account, ZERO) + amount

    def settle(self, report: SettlementReport) -> MarketSettled | None:
        """Apply one page: its payout to the account's cash, its figures to the market's sums.
        None when this page (its 20105, for this account) was applied before."""
        seen = (report.account, report.report_id)
        if seen in self._reports:
            return None
        self._reports.add(seen)
        self.credit(report.account, report.payout)
        key = (report.account, report.ticker)
        before = self.settled.get(key)
        after = SettledMarket(
            report.result, report.settlement_price,
            report.net_yes + (before.net_yes if before else ZERO),
            report.payout + (before.payout if before else ZERO),
            report.fee + (before.fee if before else ZERO),
            1 + (before.reports if before else 0),
            report.last_fragment or (before is not None and before.complete),
        )
        self.settled[key] = after
        return MarketSettled(report.account, report.ticker, report.result, report.settlement_price, report.net_yes,
                             report.payout, report.fee, report.report_id, after.complete)
