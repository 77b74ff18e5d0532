"""The engine's drop copy and listener sessions, against the simulator over real sockets: keys that
share one account, ``engine.replay``, the book recovered exactly from a KalshiDC replay after reports
were lost on KalshiNR (with REST confirming it, or healing alone when the drop copy refuses), and
orders entered elsewhere seen on a listener as external orders."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from decimal import Decimal as D

import pytest

from conformance.harness import session_to
from fixengine.config import EngineConfig, LogonFlags, RestConfig
from fixengine.engine import Engine
from fixengine.stream import EventStream
from fixengine.errors import DropCopyRefusedError, FixEngineError, InvalidOrderError, SessionUnavailableError
from fixengine.fix.dialect import Dialect
from fixengine.events import (
    BookReleased,
    DropCopyRefused,
    DropCopyReplayed,
    LoggedOut,
    OrderAccepted,
    OrderEvent,
    OrderFilled,
    ReconciliationDone,
    SequenceGap,
)
from fixengine.kalshi.facts import SessionType
from fixengine.kalshi.prices import Action, Contract
from fixengine.orders.book import EXTERNAL_PREFIX, Status
from fixengine.reconcile.compare import Kind
from simulator.config import MarketEntry
from tests.helpers.orders import new_order, yes_bid

TICKER = "DROPCOPY-1"


@pytest.fixture
def exchange(make_key, start_simulator):
    desk, dc, watch, elsewhere, other = (make_key() for _ in range(5))
    accounts = [desk.account(), dc.account(of=desk), watch.account(of=desk), elsewhere.account(of=desk), other.account()]
    sim, _ = start_simulator(accounts, markets=[MarketEntry(ticker=TICKER)], rest_port=0, drop_copy_request_interval=0)
    return sim, desk, dc, watch, elsewhere, other


def config(tmp_path, sim, *sessions, name: str = "engine") -> EngineConfig:  # type: ignore[no-untyped-def]
    return EngineConfig(data_dir=tmp_path / name, sessions=list(sessions),
                        rest=RestConfig(base_url=sim.rest_url, reconcile_interval=0, staleness_timeout=10))


def trading(sim, desk, dc, other, dialect: Dialect = Dialect.FIXT11) -> list:  # type: ignore[no-untyped-def]
    """The desk on KalshiNR, its drop copy on KalshiDC (a second key of the account), another account."""
    return [session_to(sim, desk, name="desk", dialect=dialect),
            session_to(sim, dc, name="dc", session_type=SessionType.DC, account=desk.key_id, dialect=dialect),
            session_to(sim, other, name="other", dialect=dialect)]


@contextlib.asynccontextmanager
async def trading_engine(tmp_path, sim, desk, dc, other, dialect: Dialect = Dialect.FIXT11  # type: ignore[no-untyped-def]
                         ) -> AsyncIterator[tuple[Engine, EventStream]]:
    """An engine trading for the desk and the other account, with the desk's drop copy; every book released."""
    engine = Engine(config(tmp_path, sim, *trading(sim, desk, dc, other, dialect)))
    events = engine.events()
    await engine.start()
    try:
        await released(engine, events, "desk", "other")
        yield engine, events
    finally:
        await engine.stop()


async def released(engine: Engine, events, *sessions: str) -> None:  # type: ignore[no-untyped-def]
    """Every named session logged on and its book confirmed (every logon holds until reconciled)."""
    await engine.wait_logged_on()
    while any(engine.is_book_held(s) for s in sessions):
        with contextlib.suppress(TimeoutError):
            await events.wait_for(BookReleased, timeout=1.0)


def differences(engine: Engine, sim, account: str) -> list[str]:  # type: ignore[no-untyped-def]
    """Where the engine's book and the exchange disagree about ``account``."""
    found = []
    mine = [o for o in engine.book.orders.values() if o.account == account and o.order_id is not None]
    for o in mine:
        theirs = sim.exchange.order(o.order_id)
        if (o.status.value, o.cum_qty, o.leaves_qty) != (theirs.status.name.lower(), theirs.cum_qty, theirs.leaves_qty):
            found.append(f"{o.key}: engine {o.status.value} {o.cum_qty}/{o.leaves_qty} vs "
                         f"{theirs.status.name} {theirs.cum_qty}/{theirs.leaves_qty}")
    known = {o.order_id for o in mine}
    found += [f"unknown {s.order_id}" for s in sim.exchange.open_orders(account) if s.order_id not in known]
    if engine.book.position(account, TICKER) != sim.exchange.account(account).positions.get(TICKER, D(0)):
        found.append(f"position {engine.book.position(account, TICKER)}")
    return found


async def fills_lost_on_nr(engine: Engine, events, sim, desk) -> list[str]:  # type: ignore[no-untyped-def]
    """Two resting bids of the desk are filled by the other account while every report of the fills is
    lost on the desk's KalshiNR session; a TestRequest then shows the gap. The bids' keys."""
    bids = [await engine.submit("desk", yes_bid(TICKER, price)) for price in ("0.40", "0.41")]
    for _ in bids:
        await events.wait_for(OrderAccepted)
    sim.faults.drop_outbound(desk.key_id, 2)  # the two Trade reports of the desk's bids
    sell = await engine.submit("other", new_order(TICKER, Action.BUY, Contract.NO, price="0.60", qty=10))
    while engine.book.order(sell.key).status is not Status.FILLED:
        await events.wait_for(OrderFilled)
    assert await asyncio.to_thread(sim.faults.wait_spent, desk.key_id)
    with contextlib.suppress(SessionUnavailableError):  # the answer comes after the gap: the session resets
        await engine.test_request("desk", timeout=2)
    await events.wait_for(SequenceGap)
    return [b.key for b in bids]


async def test_fills_lost_on_nr_come_back_from_the_drop_copy_and_rest_agrees(tmp_path, exchange) -> None:
    sim, desk, dc, _, _, other = exchange
    async with trading_engine(tmp_path, sim, desk, dc, other) as (engine, events):
        bids = await fills_lost_on_nr(engine, events, sim, desk)
        replayed = await events.wait_for(DropCopyReplayed, timeout=20)
        assert replayed.session == "dc" and replayed.count >= 2  # from the last report the book had: the fills
        done = await events.wait_for(ReconciliationDone, "desk", timeout=20)
        # REST found the book already right: nothing missed, nothing healed.
        assert done.findings.discrepancies == [], done.describe()
        await released(engine, events, "desk")
        assert [engine.book.order(k).status for k in bids] == [Status.FILLED, Status.FILLED]
        assert differences(engine, sim, desk.key_id) == []
        assert engine.book.position(desk.key_id, TICKER) == D(10)


async def test_when_the_drop_copy_refuses_rest_alone_heals_the_book(tmp_path, exchange) -> None:
    sim, desk, dc, _, _, other = exchange
    async with trading_engine(tmp_path, sim, desk, dc, other) as (engine, events):
        sim.faults.refuse_next_event_resend(dc.key_id, 2)  # server error
        bids = await fills_lost_on_nr(engine, events, sim, desk)
        refused = await events.wait_for(DropCopyRefused, timeout=20)
        assert (refused.session, refused.reason) == ("dc", 2)
        done = await events.wait_for(ReconciliationDone, "desk", timeout=20)
        assert done.findings.clean and Kind.FILL_MISSED in {d.kind for d in done.findings.discrepancies}
        await released(engine, events, "desk")
        assert [engine.book.order(k).status for k in bids] == [Status.FILLED, Status.FILLED]
        assert differences(engine, sim, desk.key_id) == []


@pytest.mark.parametrize("dialect", [Dialect.FIXT11, Dialect.FIX44])
async def test_replay_answers_with_a_count_or_a_clear_error(tmp_path, exchange, dialect) -> None:
    sim, desk, dc, _, _, other = exchange
    async with trading_engine(tmp_path, sim, desk, dc, other, dialect) as (engine, events):
        await engine.submit("desk", yes_bid(TICKER))
        accepted = await events.wait_for(OrderAccepted)
        first = engine.book.last_exec_ids[(desk.key_id, 0)]
        assert await engine.replay("dc", first) == 1  # the order's New, seen before: the book is unchanged
        assert engine.book.order(accepted.order.key) == accepted.order

        clock, event = first.split(";")
        with pytest.raises(DropCopyRefusedError) as refused:
            await engine.replay("dc", first, until=f"{int(clock) + 5};{event}")
        assert refused.value.reason == 4 and "EndExecID" in str(refused.value)
        with pytest.raises(FixEngineError, match="since: 'yesterday' is not a Kalshi ExecID"):
            await engine.replay("dc", "yesterday")
        with pytest.raises(FixEngineError, match="a replay needs a KalshiDC session"):
            await engine.replay("desk", first)
        engine.disable_session("dc")
        await events.wait_for(LoggedOut, "dc")
        with pytest.raises(SessionUnavailableError, match="not logged on"):
            await engine.replay("dc", first)


@pytest.mark.parametrize("dialect", [Dialect.FIXT11, Dialect.FIX44])
async def test_a_listener_sees_orders_entered_elsewhere_as_external_orders_and_never_sends_one(tmp_path, exchange, dialect) -> None:
    sim, desk, _, watch, elsewhere, other = exchange
    listener = session_to(sim, watch, name="watch", account=desk.key_id, dialect=dialect,
                          logon=LogonFlags(reset_seq_num=True, listener=True, skip_pending_exec_reports=True))
    watcher = Engine(config(tmp_path, sim, listener, name="watcher"))
    trader = Engine(config(tmp_path, sim, session_to(sim, elsewhere, name="desk", account=desk.key_id),
                           session_to(sim, other, name="other"), name="trader"))
    seen, traded = watcher.events(), trader.events()
    await watcher.start()
    await trader.start()
    try:
        await watcher.wait_logged_on()
        await released(trader, traded, "desk", "other")
        resting = await trader.submit("desk", yes_bid(TICKER, "0.40"))
        filled = await trader.submit("desk", yes_bid(TICKER, "0.45"))
        await trader.submit("other", new_order(TICKER, Action.BUY, Contract.NO, price="0.55", qty=10))
        while trader.book.order(filled.key).status is not Status.FILLED:
            await traded.wait_for(OrderFilled)

        def watched() -> list[tuple[D, Status]]:
            return sorted((o.yes_price, o.status) for o in watcher.book.orders.values())

        while watched() != [(D("0.40"), Status.NEW), (D("0.45"), Status.FILLED)]:
            await seen.wait_for(OrderEvent, timeout=10)
        external = sorted(watcher.book.orders.values(), key=lambda o: o.yes_price)
        assert [o.order_id for o in external] == [trader.book.order(k).order_id for k in (resting.key, filled.key)]
        assert [(o.key.startswith(EXTERNAL_PREFIX), o.external, o.account) for o in external] == [
            (True, True, desk.key_id)] * 2
        assert watcher.book.position(desk.key_id, TICKER) == D(5)
        assert differences(watcher, sim, desk.key_id) == []
        findings = await watcher.reconcile("watch")  # the account's orders are all known: nothing unexplained
        assert findings.discrepancies == [], findings

        with pytest.raises(InvalidOrderError, match="listener"):
            await watcher.submit("watch", yes_bid(TICKER))
        assert watcher.message_counts.get(("watch", "out", "D"), 0) == 0
    finally:
        seen.close()
        traded.close()
        await trader.stop()
        await watcher.stop()
