"""The simulator's side of settlement (spec §15), without a network: what a settlement pays (scalar
results and the rounding fee included), who is sent reports, how they are paged, and that the
message QuickFIX sends keeps its groups and validates in both dialects."""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal as D

import pytest
import quickfix as fix

from fixengine.fix.dialect import Dialect
from fixengine.fix.framing import parse
from fixengine.kalshi.facts import SessionType
from fixengine.kalshi.prices import WireSide
from fixengine.orders.settlement import MarketResult, parse_settlement_report
from simulator.exchange.matching import AccountState, Exchange, MarketConfig, MarketSettled, Settled
from simulator.fix.grouped import grouped_message
from simulator.fix.settlement_reports import UMS_GROUPS, SettlementReports, receives_settlement_reports, report_pages
from tests.helpers.orders import order_spec

NOW = datetime(2026, 11, 30, 3, 0, tzinfo=timezone.utc)  # 22:00 on the 29th in New York
T = "SCALAR-1"
Y, N = "20127=Y", "20127=N"


def flags(*which: str) -> dict[int, str]:
    return {20127: w[-1] for w in which}


@pytest.mark.parametrize(("session_type", "logon", "receives"), [
    (SessionType.PT, flags(), True),
    (SessionType.PT, flags(Y), True),
    (SessionType.PT, flags(N), False),
    (SessionType.NR, flags(), False),
    (SessionType.NR, flags(Y), True),
    (SessionType.RT, flags(), False),
    (SessionType.RT, flags(Y), True),
    (SessionType.DC, flags(Y), False),
])
def test_who_receives_settlement_reports(session_type, logon, receives) -> None:
    assert receives_settlement_reports(session_type, logon) is receives


# --- what a settlement pays ---------------------------------------------------------------------


def traded(yes_qty: str, no_qty: str) -> Exchange:
    """alice long ``yes_qty`` YES, from the house, and bob long ``no_qty`` NO, from carol."""
    ex = Exchange([MarketConfig(T)], [AccountState(a, D(100)) for a in ("alice", "bob", "house", "carol")])
    ex.submit(order_spec(T, "house", "h1", WireSide.SELL_YES, "0.41", 50), NOW)
    ex.submit(order_spec(T, "carol", "c1", WireSide.BUY_YES, "0.39", 50), NOW)
    ex.submit(order_spec(T, "alice", "a1", WireSide.BUY_YES, "0.41", yes_qty), NOW)
    ex.submit(order_spec(T, "bob", "b1", WireSide.SELL_YES, "0.39", no_qty), NOW)
    return ex


def cash(ex: Exchange) -> D:
    accounts = ex.accounts()
    held = sum((max(a.positions.get(T, D(0)), D(0)) for a in accounts), D(0))
    return sum((a.balance + a.reserved for a in accounts), D(0)) + held + ex.fees_collected


def test_a_scalar_settlement_pays_yes_the_price_and_no_the_rest_rounded_down() -> None:
    ex = traded("3.33", "2.57")
    before, alice, bob = cash(ex), ex.account("alice").balance, ex.account("bob").balance
    events = ex.settle_market(T, "scalar", NOW, D("0.306"))
    assert MarketSettled(T, "scalar", D("0.306")) in events
    settled = {e.account_id: e for e in events if isinstance(e, Settled)}
    # 3.33 x 0.306 = 1.01898 and 2.57 x 0.694 = 1.78358: paid to $0.0001, the rest is a fee
    assert (settled["alice"].payout, settled["alice"].fee) == (D("1.0189"), D("0.00008"))
    assert (settled["bob"].payout, settled["bob"].fee, settled["bob"].net_yes) == (D("1.7835"), D("0.00008"), D("-2.57"))
    assert ex.account("alice").balance == alice + D("1.0189") and ex.account("bob").balance == bob + D("1.7835")
    assert cash(ex) == before and ex.settlement(T) == "scalar"


@pytest.mark.parametrize(("result", "price", "message"), [
    ("scalar", None, "needs a price"),
    ("scalar", D("1.5"), "needs a price"),
    ("scalar", D("0.30001"), "needs a price"),
    ("yes", D("1"), "only for a scalar"),
    ("void", None, "'yes', 'no' or 'scalar'"),
])
def test_a_settlement_the_exchange_cannot_make_changes_nothing(result, price, message) -> None:
    ex = traded("1", "1")
    with pytest.raises(ValueError, match=message):
        ex.settle_market(T, result, NOW, price)
    assert ex.settlement(T) is None and ex.account("alice").positions[T] == 1


# --- the reports ----------------------------------------------------------------------------------


def settled(account: str, net: str, payout: str, fee: str = "0") -> Settled:
    return Settled(account, T, "scalar", D(net), D(payout), D(fee))


def test_a_batch_larger_than_a_page_takes_several_pages() -> None:
    market = MarketSettled(T, "scalar", D("0.306"))
    entries = [settled("a", "3.33", "1.0189", "0.00008"), settled("a", "-2", "1.388"), settled("a", "1", "0.306")]
    pages = report_pages(market, entries, 2, date(2026, 11, 29), ["r1", "r2"])
    first, second = (dict(p) for p in pages)
    assert [first[20105], second[20105]] == ["r1", "r2"] and first[20106] == second[20106] == "2"
    assert (first[893], second[893], first[20108], second[20108]) == ("N", "Y", "2", "1")
    assert (first[715], first[730], first[20107], first[55]) == ("20261129", "30.60", "scalar", T)
    party = pages[0][pages[0].index((20108, "2")) + 1:]
    assert party[:12] == [(20109, "a"), (20110, "24"), (704, "3.33"), (705, "0.00"), (1703, "1"), (1704, "1.0189"),
                          (1705, "PAYOUT"), (136, "1"), (137, "0.00008"), (138, "USD"), (139, "4"), (891, "0")]
    assert (party[12:16]) == [(20109, "a"), (20110, "24"), (704, "0.00"), (705, "2.00")]
    read = [parse_settlement_report(p, account="a") for p in pages]
    assert [len(r.parties) for r in read] == [2, 1] and sum((r.payout for r in read), D(0)) == D("2.7129")
    with pytest.raises(ValueError, match="as many report ids"):
        report_pages(market, entries, 2, date(2026, 11, 29), ["r1"])


def test_each_entitled_session_gets_its_own_accounts_entry_under_the_accounts_report_ids() -> None:
    reports = SettlementReports(page_size=1)
    reports.logged_on("pt-a", SessionType.PT, "a", flags())
    reports.logged_on("rt-a", SessionType.RT, "a", flags(Y))
    reports.logged_on("nr-a", SessionType.NR, "a", flags())  # did not ask
    reports.logged_on("nr-b", SessionType.NR, "b", flags(Y))
    reports.logged_on("pt-c", SessionType.PT, "c", flags(N))  # opted out
    reports.logged_on("pt-d", SessionType.PT, "d", flags())  # holds nothing in the market
    events = [MarketSettled(T, "no", D(0)), settled("a", "2", "0"), settled("b", "-3", "3"), settled("c", "1", "0")]
    out = reports.write(events, NOW)
    assert sorted(o.session_id for o in out) == ["nr-b", "pt-a", "rt-a"]
    by = {o.session_id: dict(o.fields) for o in out}
    assert by["pt-a"] == by["rt-a"] and by["pt-a"][20109] == "a" and by["nr-b"][20109] == "b"
    assert by["pt-a"][20105] != by["nr-b"][20105] and by["nr-b"][730] == "0.00" and by["nr-b"][1704] == "3.00"
    assert {o.msg_type for o in out} == {"UMS"} and by["nr-b"][715] == "20261129"  # New York's date
    reports.logged_on("rt-a", SessionType.RT, "a", flags())  # its next Logon did not ask
    assert sorted(o.session_id for o in reports.write(events, NOW)) == ["nr-b", "pt-a"]
    assert reports.write([settled("a", "2", "0")], NOW) == []  # no market settled among them


@pytest.mark.parametrize("dialect", list(Dialect))
def test_the_message_keeps_its_groups_and_validates(dictionaries, dialect: Dialect) -> None:
    market = MarketSettled(T, "yes", D(1))
    (fields,) = report_pages(market, [settled("a", "4", "4"), settled("b", "-1", "0")], 5, date(2026, 11, 29), ["r1"])
    message = grouped_message(dialect.begin_string, "UMS", fields, UMS_GROUPS)
    header = message.getHeader()
    for tag, value in ((49, "KalshiPT"), (56, "key"), (34, "2"), (52, "20261130-03:00:00.000")):
        header.setField(tag, value)
    text = message.toString()
    session, app = dictionaries[dialect]
    if dialect.is_fixt:
        fix.DataDictionary.validate(fix.Message(text, session, app, True), session, app)
    else:
        session.validate(fix.Message(text, session, True))
    r = parse_settlement_report(parse(text.encode()), account="a")
    assert (r.result, [p.party_id for p in r.parties], [p.net_yes for p in r.parties]) == (
        MarketResult.YES, ["a", "b"], [D(4), D(-1)])
    # without the groups QuickFIX sorts the body by tag: the entries fall apart
    flat = fix.Message(f"8={dialect.begin_string}\x019=0\x0135=UMS\x01" + "".join(f"{t}={v}\x01" for t, v in fields)
                       + "10=000\x01", False).toString()
    assert flat.index("\x01704=") < flat.index("\x0120109=")
