"""Settlement reports (35=UMS, spec §15) in the engine, without a network: reading them, what they
do to the book (positions closed, cash credited, pages summed, each page once) and the journal
that replays them."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal as D

import pytest

from fixengine.config import SessionConfig
from fixengine.fix.framing import parse
from fixengine.kalshi.facts import SessionType
from fixengine.orders.book import OrderBook, PositionChanged
from fixengine.orders.entry import OrderEntry, ReportUnreadable
from fixengine.orders.journal import Journal, replay_book
from fixengine.orders.reports import ExecutionReport
from fixengine.orders.settlement import MarketResult, MarketSettled, SettlementReport, parse_settlement_report
from fixengine.orders.wire import ReportError
from tests.helpers.journal import assert_journal_replays
from tests.helpers.orders import BOOK_TICKER, book_order
from tests.helpers.reports import FakeExchange

ACCOUNT = "key-1"
# Kalshi's own example (spec §15), 893 after the group as Kalshi writes it.
KALSHI_EXAMPLE = [
    (20105, "settle-123"), (55, "HIGHNY-23DEC31"), (715, "20231231"), (20107, "yes"), (730, "100.00"), (20108, "1"),
    (20109, "user-456"), (20110, "24"), (704, "100"), (705, "0"), (1703, "1"), (1704, "100.00"), (1705, "PAYOUT"),
    (136, "1"), (137, "0.00"), (138, "USD"), (139, "4"), (891, "0"), (893, "Y"),
]


def entry_fields(party: str, long: str, short: str, payout: str, fee: str) -> list[tuple[int, str]]:
    return [(20109, party), (20110, "24"), (704, long), (705, short), (1703, "1"), (1704, payout), (1705, "PAYOUT"),
            (136, "1"), (137, fee), (138, "USD"), (139, "4"), (891, "0")]


def page(report_id: str, *entries: list[tuple[int, str]], last: str = "Y", pages: int = 1, result: str = "scalar",
         price: str = "30.60", ticker: str = BOOK_TICKER) -> list[tuple[int, str]]:
    """A report as QuickFIX hands it over: top-level fields in tag order, then the group."""
    fields = [(55, ticker), (715, "20261130"), (730, price), (893, last), (20105, report_id), (20106, str(pages)),
              (20107, result), (20108, str(len(entries)))]
    for e in entries:
        fields += e
    return fields


def report(report_id: str, *entries: list[tuple[int, str]], **kw: object) -> SettlementReport:
    return parse_settlement_report(page(report_id, *entries, **kw), account=ACCOUNT)  # type: ignore[arg-type]


# --- reading ----------------------------------------------------------------------------------


def test_kalshis_example_reads_as_written() -> None:
    r = parse_settlement_report(KALSHI_EXAMPLE, account=ACCOUNT)
    assert (r.account, r.report_id, r.ticker, r.business_date) == (ACCOUNT, "settle-123", "HIGHNY-23DEC31", date(2023, 12, 31))
    assert (r.result, r.settlement_price, r.last_fragment, r.total_reports) == (MarketResult.YES, D(1), True, None)
    (party,) = r.parties
    assert (party.party_id, party.role, party.long_qty, party.short_qty) == ("user-456", 24, D(100), D(0))
    assert (party.payout, party.fee, r.net_yes, r.payout) == (D(100), D(0), D(100), D(100))


def test_a_scalar_report_in_quickfix_order_with_a_rounding_fee() -> None:
    r = report("p1", entry_fields(ACCOUNT, "3.33", "0", "1.0189", "0.00008"))
    assert (r.result, r.settlement_price, r.payout, r.fee, r.net_yes) == (
        MarketResult.SCALAR, D("0.306"), D("1.0189"), D("0.00008"), D("3.33"))
    # pre-fee payout = 1704 + 137 (§15): the position at the settlement price
    assert r.payout + r.fee == D("3.33") * D("0.306")


def test_the_older_spellings_read_too() -> None:
    """Before 2026-04: MarketResult ``Yes``, CollateralAmountType 2 (Payout) with the amount in cents."""
    fields = [(t, v) for t, v in KALSHI_EXAMPLE if t not in (1704, 1705, 20107)]
    fields += [(20107, "Yes")]
    at = next(i for i, (t, _) in enumerate(fields) if t == 1703) + 1
    fields[at:at] = [(1704, "10000"), (1705, "2")]
    r = parse_settlement_report(fields, account=ACCOUNT)
    assert (r.result, r.payout) == (MarketResult.YES, D(100))


def test_without_a_collateral_group_the_payout_is_worked_out() -> None:
    entry = [(20109, "u"), (20110, "24"), (704, "0"), (705, "4"), (136, "1"), (137, "0.01"), (138, "USD"), (139, "4"),
             (891, "0")]
    r = report("p1", entry, result="no", price="0.00")
    assert (r.payout, r.net_yes) == (D("3.99"), D(-4))  # 4 NO at $1, less the fee


@pytest.mark.parametrize(("change", "message"), [
    (lambda f: [x for x in f if x[0] != 20105], r"MarketSettlementReportID \(20105\)"),
    (lambda f: [x for x in f if x[0] != 55], r"Symbol \(55\)"),
    (lambda f: [(t, "2023-12-31" if t == 715 else v) for t, v in f], r"ClearingBusinessDate \(715\)"),
    (lambda f: [(t, "void" if t == 20107 else v) for t, v in f], r"MarketResult \(20107\) 'void'"),
    (lambda f: [(t, "101" if t == 730 else v) for t, v in f], r"SettlementPrice \(730\)"),
    (lambda f: [(t, "x" if t == 730 else v) for t, v in f], r"SettlementPrice \(730\)"),
    (lambda f: [(t, "2" if t == 20108 else v) for t, v in f], r"NoMarketSettlementPartyIDs \(20108\) is 2 but 1"),
    (lambda f: [x for x in f if x[0] != 20110], r"party entry 1 without MarketSettlementPartyRole \(20110\)"),
    (lambda f: [(t, "lots" if t == 704 else v) for t, v in f], r"LongQty \(704\)"),
    (lambda f: [(t, "?" if t == 893 else v) for t, v in f], r"LastFragment \(893\)"),
])
def test_a_report_that_cannot_be_read_names_the_field(change, message) -> None:
    with pytest.raises(ReportError, match=message):
        parse_settlement_report(change(KALSHI_EXAMPLE), account=ACCOUNT)


# --- the book ---------------------------------------------------------------------------------


def filled_book(qty: str = "10") -> OrderBook:
    """An account long ``qty`` YES, its fill's cash change (1704 BALANCE) known."""
    book, x = OrderBook(), FakeExchange("c1", D(qty))
    book.submit(book_order("c1", qty=qty), ACCOUNT)
    book.apply(x.new())
    book.apply(with_cash_change(x.trade(D(qty)), D("-4.67")))
    return book


def with_cash_change(trade: ExecutionReport, change: D) -> ExecutionReport:
    assert trade.fill is not None
    return replace(trade, fill=replace(trade.fill, balance_change=change))


def test_a_fills_cash_change_counts_once() -> None:
    book = filled_book()
    assert book.cash(ACCOUNT) == D("-4.67") and book.position(ACCOUNT, BOOK_TICKER) == 10
    x = FakeExchange("c1", D(10))
    x.clock = 1  # the same Trade report again (same ExecID): nothing changes
    assert book.apply(with_cash_change(x.trade(D(10)), D("-4.67"))) == []
    assert book.cash(ACCOUNT) == D("-4.67")


def test_a_report_closes_the_position_and_credits_the_payout_once() -> None:
    book = filled_book()
    settled = report("p1", entry_fields("u", "10", "0", "3.0600", "0"))
    events = book.apply(settled)
    assert events == [
        PositionChanged(ACCOUNT, BOOK_TICKER, D(0)),
        MarketSettled(ACCOUNT, BOOK_TICKER, MarketResult.SCALAR, D("0.306"), D(10), D("3.06"), D(0), "p1", True),
    ]
    assert book.position(ACCOUNT, BOOK_TICKER) == 0 and book.cash(ACCOUNT) == D("-4.67") + D("3.06")
    assert book.apply(settled) == [] and book.cash(ACCOUNT) == D("-1.61")  # the same 20105 again
    s = book.settlement(ACCOUNT, BOOK_TICKER)
    assert s is not None and (s.result, s.payout, s.reports, s.complete) == (MarketResult.SCALAR, D("3.06"), 1, True)
    assert book.settlement("other", BOOK_TICKER) is None and book.cash("other") == 0


def test_the_pages_of_a_batch_add_up() -> None:
    book = filled_book("12")
    first = report("p1", entry_fields("u", "5", "0", "5.00", "0.00"), entry_fields("u", "4", "0", "4.00", "0.00"),
                   last="N", pages=2, result="yes", price="100.00")
    second = report("p2", entry_fields("u", "3", "0", "2.9999", "0.0001"), pages=2, result="yes", price="100.00")
    (_, one) = book.apply(first)
    assert not one.complete and one.payout == 9 and book.position(ACCOUNT, BOOK_TICKER) == 0
    (two,) = book.apply(second)  # the position is zero already: only the settlement
    assert two.complete and "more pages" in one.describe() and "more pages" not in two.describe()
    s = book.settlement(ACCOUNT, BOOK_TICKER)
    assert s is not None and (s.net_yes, s.payout, s.fee, s.reports, s.complete) == (D(12), D("11.9999"), D("0.0001"), 2, True)
    assert book.cash(ACCOUNT) == D("-4.67") + D("11.9999")
    assert book.apply(first) == [] and book.apply(second) == [] and book.cash(ACCOUNT) == D("-4.67") + D("11.9999")


def test_the_same_report_id_for_another_account_is_another_report() -> None:
    book = OrderBook()
    book.apply(report("p1", entry_fields("u", "1", "0", "0.3060", "0")))
    other = parse_settlement_report(page("p1", entry_fields("v", "2", "0", "0.6120", "0")), account="key-2")
    book.apply(other)
    assert (book.cash(ACCOUNT), book.cash("key-2")) == (D("0.306"), D("0.612"))


# --- the journal and order entry ----------------------------------------------------------------


def test_the_journal_keeps_each_page_once_and_replays_it(tmp_path) -> None:
    journal, book = Journal(tmp_path / "j.db"), OrderBook()
    first = report("p1", entry_fields("u", "6", "0", "1.8360", "0"), last="N", pages=2)
    second = report("p2", entry_fields("u", "4", "0", "1.2240", "0"), pages=2)
    for r in (first, second, first):
        if journal.record_report(r):
            book.apply(r)
    assert journal.record_report(second) is False
    journal.close()
    again = Journal(tmp_path / "j.db")
    try:
        replayed = replay_book(again)
        assert replayed == book and book.cash(ACCOUNT) == D("3.06")
        assert [e for e in again.replay()] == [first, second]
    finally:
        again.close()


def pt_session(tmp_path) -> SessionConfig:
    return SessionConfig(name="pt", host="127.0.0.1", port=1, tls=False, session_type=SessionType.PT,
                         api_key_id=ACCOUNT, private_key_file=tmp_path / "k.pem")


def raw(fields: list[tuple[int, str]], seq: int) -> str:
    header = [(8, "FIXT.1.1"), (9, "0"), (35, "UMS"), (34, str(seq))]
    return "".join(f"{t}={v}\x01" for t, v in header + fields + [(10, "000")])


def test_order_entry_journals_a_report_for_the_sessions_account_and_publishes_it_once(tmp_path) -> None:
    published: list[object] = []
    entry = OrderEntry(Journal(tmp_path / "j.db"), {"pt": pt_session(tmp_path)}, lambda s, m, f: True,
                       published.append, lambda _: True, lambda _: None)
    text = raw(page("p1", entry_fields("user-9", "3.33", "0", "1.0189", "0.00008")), 2)
    assert parse(text.encode())[2] == (35, "UMS")
    entry.on_messages([("pt", "UMS", text)])
    entry.on_messages([("pt", "UMS", raw(page("p1", entry_fields("user-9", "3.33", "0", "1.0189", "0.00008")), 3))])
    (settled,) = published  # resent (a PossDup, or a second session of the account): applied once
    assert isinstance(settled, MarketSettled) and (settled.session, settled.account) == ("pt", ACCOUNT)
    assert entry.book.cash(ACCOUNT) == D("1.0189")
    entry.on_messages([("pt", "UMS", raw([(t, v) for t, v in page("p2") if t != 20107], 4))])
    (unreadable,) = published[1:]
    assert isinstance(unreadable, ReportUnreadable) and "MarketResult (20107)" in unreadable.error
    assert_journal_replays(entry.journal, entry.book)
    entry.journal.close()
