"""Settlement reports end to end (spec §15): the simulator settles markets yes, no and scalar, and
the engine's sessions hear of it over real sockets, in both dialects. KalshiPT (on by default) and
the KalshiNR and KalshiRT sessions that asked (20127=Y) get their account's report; a KalshiNR
session that did not ask gets nothing, and reconciliation closes its positions from REST instead.
Positions and cash follow, the journal replays into the same book, and REST agrees."""

from __future__ import annotations

import asyncio
from decimal import Decimal as D

import pytest

from conformance.harness import session_to
from fixengine.config import EngineConfig, LogonFlags, RestConfig
from fixengine.engine import Engine
from fixengine.fix.dialect import Dialect
from fixengine.kalshi.facts import SessionType
from fixengine.kalshi.prices import Action, Contract
from fixengine.orders.book import OrderFilled
from fixengine.orders.entry import BookReleased
from fixengine.orders.journal import Journal
from fixengine.orders.requests import NewOrder, TimeInForce
from fixengine.orders.settlement import MarketResult, MarketSettled
from fixengine.reconcile.compare import Kind
from fixengine.stream import EventStream
from simulator.config import FIX44_LISTENER, MarketEntry, SeedOrder
from tests.helpers.journal import assert_journal_replays

START = D(10000)  # every account's cash at the start (AccountConfig's default)
# market -> how it settles: (result, what a YES contract pays in dollars, for scalar)
MARKETS = {"UMS-YES": ("yes", None), "UMS-NO": ("no", None), "UMS-SCALAR": ("scalar", "0.3060")}
# session -> (what it buys in every market, how many): NO as well as YES, fractions for the rounding fee
TRADES = {"nr": (Contract.YES, "3.33"), "rt": (Contract.NO, "2.57"), "plain": (Contract.YES, "1"),
          "trader": (Contract.NO, "1.11")}


def liquidity() -> list[SeedOrder]:
    """The house offers YES at 40 cents and bids 39 (offers NO at 61) in every market."""
    return [SeedOrder(ticker=t, side=side, price=D(p), quantity=D(100))
            for t in MARKETS for side, p in (("sell_yes", "0.40"), ("buy_yes", "0.39"))]


async def started(config: EngineConfig, order_entry: set[str]) -> tuple[Engine, EventStream]:
    """An engine logged on, the books of its ``order_entry`` sessions released (reconciled)."""
    engine = Engine(config)
    events = engine.events()
    await engine.start()
    await engine.wait_logged_on()
    released: set[str] = set()
    while config.rest is not None and released != order_entry:
        released.add((await events.wait_for(BookReleased, timeout=20)).session)
    return engine, events


@pytest.mark.parametrize("dialect", list(Dialect))
async def test_a_settlement_reaches_the_sessions_entitled_and_settles_their_books(
        tmp_path, make_key, start_simulator, dialect: Dialect) -> None:
    keys = {name: make_key() for name in ("nr", "rt", "plain", "trader")}
    account = {name: key.key_id for name, key in keys.items()}
    listeners = {t.value: 0 for t in (SessionType.NR, SessionType.RT, SessionType.PT)} | {FIX44_LISTENER: 0}
    sim, _ = start_simulator([k.account() for k in keys.values()], markets=[MarketEntry(ticker=t) for t in MARKETS],
                             seed_orders=liquidity(), listeners=listeners, rest_port=0)
    asks = LogonFlags(reset_seq_num=True, receive_settlement_reports=True)
    nr = session_to(sim, keys["nr"], name="nr", dialect=dialect, logon=asks)
    rt = session_to(sim, keys["rt"], name="rt", dialect=dialect, session_type=SessionType.RT, logon=asks)
    plain = session_to(sim, keys["plain"], name="plain", dialect=dialect)
    data_dir = tmp_path / "engine"

    # The trader's account takes positions on KalshiNR, then its engine watches it on KalshiPT
    # (one connection per API key): the same journal, so the book still holds them.
    trading = EngineConfig(data_dir=data_dir, sessions=[nr, rt, plain, session_to(sim, keys["trader"], name="trader",
                                                                                  dialect=dialect)])
    engine, events = await started(trading, set())
    try:
        for name, (contract, qty) in TRADES.items():
            for ticker in MARKETS:
                price = D("0.40") if contract is Contract.YES else D("0.61")
                await engine.submit(name, NewOrder.create(ticker=ticker, action=Action.BUY, contract=contract,
                                                          quantity=D(qty), price=price, time_in_force=TimeInForce.IOC))
        for _ in range(len(TRADES) * len(MARKETS)):
            await events.wait_for(OrderFilled)
    finally:
        await engine.stop()

    pt = session_to(sim, keys["trader"], name="pt", dialect=dialect, session_type=SessionType.PT)
    watching = EngineConfig(data_dir=data_dir, sessions=[nr, rt, plain, pt],
                            rest=RestConfig(base_url=sim.rest_url, reconcile_interval=0, staleness_timeout=10))
    engine, events = await started(watching, {"nr", "rt", "plain"})
    try:
        book = engine.book
        for name, (contract, qty) in TRADES.items():
            held = D(qty) if contract is Contract.YES else -D(qty)
            assert [book.position(account[name], t) for t in MARKETS] == [held] * len(MARKETS)
        paid = {}
        for ticker, (result, price) in MARKETS.items():
            for s in await asyncio.to_thread(sim.admin.settle_market, ticker, result, price):
                paid[(s.account_id, ticker)] = s
        heard = [await events.wait_for(MarketSettled, timeout=10) for _ in range(3 * len(MARKETS))]
        for name in ("nr", "rt", "plain", "pt"):
            await engine.test_request(name)  # all a session was sent before its Heartbeat has been applied
        assert [e for e in events.drain() if isinstance(e, MarketSettled)] == []

        entitled = {"nr": "nr", "rt": "rt", "pt": "trader"}  # session -> whose account
        assert sorted((e.session, e.ticker) for e in heard) == sorted((s, t) for s in entitled for t in MARKETS)
        for e in heard:
            truth = paid[(e.account, e.ticker)]
            assert e.account == account[entitled[e.session]]
            assert (e.result, e.net_yes, e.payout, e.fee, e.complete) == (
                MarketResult(truth.result), truth.net_yes, truth.payout, truth.fee, True)
            assert e.settlement_price == {"yes": D(1), "no": D(0), "scalar": D("0.306")}[truth.result]
        scalar = paid[(account["nr"], "UMS-SCALAR")]
        assert (scalar.payout, scalar.fee) == (D("1.0189"), D("0.00008"))  # 3.33 x 0.306 = 1.01898

        for name in entitled.values():  # positions closed; cash as the exchange moved it, to the $0.000001
            assert [book.position(account[name], t) for t in MARKETS] == [0, 0, 0]
            assert book.cash(account[name]) == sim.exchange.account(account[name]).balance - START
        unheard = sum((paid[(account["plain"], t)].payout for t in MARKETS), D(0))
        assert book.position(account["plain"], "UMS-YES") == 1
        assert book.cash(account["plain"]) + unheard == sim.exchange.account(account["plain"]).balance - START

        for name in ("nr", "rt", "pt"):  # REST agrees: nothing to heal
            assert (await engine.reconcile(name)).discrepancies == []
        fallback = await engine.reconcile("plain")  # no report: REST's settlements close the positions
        assert fallback.clean and sorted(d.kind for d in fallback.discrepancies) == [Kind.SETTLED] * len(MARKETS)
        assert [book.position(account["plain"], t) for t in MARKETS] == [0, 0, 0]
    finally:
        await engine.stop()
    journal = Journal(watching.journal_path)
    try:
        assert_journal_replays(journal, engine.book)
    finally:
        journal.close()
