"""Order groups end to end (spec §12): the engine's API over real FIX sessions to the simulator,
in both dialects, and the simulator's UOG wire seen by a raw FIX client. The group machine's own
tests, without sockets, are in test_order_group_machine.py."""

from __future__ import annotations

import contextlib
import re
from decimal import Decimal as D

import pytest

from conformance.harness import RawClient, sending_time_now, session_to
from fixengine.config import LogonFlags
from fixengine.engine import Engine
from fixengine.errors import InvalidOrderError, OrderGroupError, SessionUnavailableError
from fixengine.fix.dialect import Dialect
from fixengine.kalshi.facts import SessionType
from fixengine.kalshi.prices import Action
from fixengine.orders.book import (
    OrderAccepted,
    OrderCanceled,
    OrderEvent,
    OrderFilled,
    OrderRejected,
    Status,
)
from fixengine.orders.groups import (
    OrderGroupConfirmed,
    OrderGroupRefused,
    OrderGroupTriggered,
)
from fixengine.orders.reports import RejectCode
from fixengine.session.events import SessionRejectReceived
from fixengine.stream import EventStream
from simulator.config import FIX44_LISTENER, MarketEntry
from tests.helpers.orders import new_order
from tests.helpers.sessions import engine_config

TICKER = "GROUPS-26DEC31"
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
KINDS = {
    "fixt11-NR": (Dialect.FIXT11, SessionType.NR),
    "fixt11-RT": (Dialect.FIXT11, SessionType.RT),
    "fix44-NR": (Dialect.FIX44, SessionType.NR),
}


@pytest.fixture(params=list(KINDS))
def kind(request) -> tuple[Dialect, SessionType]:
    return KINDS[request.param]


async def trading_engine(tmp_path, make_key, start_simulator, dialect=Dialect.FIXT11, session_type=SessionType.NR):
    maker, taker, maker_too = make_key(), make_key(), make_key()
    sim, _ = start_simulator([maker.account(), taker.account(), maker_too.account(of=maker)],
                             markets=[MarketEntry(ticker=TICKER)])
    sim.maker_too = maker_too  # type: ignore[attr-defined]  # a second key of the maker's account, for raw FIX
    config = engine_config(
        tmp_path,
        session_to(sim, maker, name="maker", dialect=dialect, session_type=session_type),
        session_to(sim, taker, name="taker", dialect=dialect, session_type=session_type),
    )
    engine = Engine(config)
    await engine.start()
    await engine.wait_logged_on()
    return engine, sim


@pytest.fixture
async def trading(tmp_path, make_key, start_simulator, kind):
    """A maker and a taker (two API keys) on one market, in the dialect and session type of ``kind``."""
    engine, sim = await trading_engine(tmp_path, make_key, start_simulator, *kind)
    try:
        yield engine, sim
    finally:
        await engine.stop()


@pytest.fixture
async def fixt_trading(tmp_path, make_key, start_simulator):
    engine, sim = await trading_engine(tmp_path, make_key, start_simulator)
    try:
        yield engine, sim
    finally:
        await engine.stop()


async def until(events: EventStream, kind: type[OrderEvent], key: str) -> OrderEvent:
    """The next ``kind`` event of the order ``key``."""
    while True:
        event = await events.wait_for(kind, timeout=10)
        if event.order.key == key:
            return event


async def member(engine: Engine, events: EventStream, group_id: str, qty: int, price: str, **fields: object) -> str:
    """A maker's offer of YES in the group, accepted; its key."""
    placed = await engine.submit("maker", new_order(TICKER, Action.SELL, qty=qty, price=price, order_group_id=group_id, **fields))
    await until(events, OrderAccepted, placed.key)
    return placed.key


async def take(engine: Engine, events: EventStream, key: str, qty: int) -> None:
    """The taker buys ``qty`` YES at 40 cents, filling the maker's order ``key``."""
    await engine.submit("taker", new_order(TICKER, Action.BUY, qty=qty, price="0.40"))
    while (await until(events, OrderFilled, key)).order.cum_qty < qty:
        pass


def kalshi_refuses_a_member(sim, group_id: str, dialect: Dialect, session_type: SessionType) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """What the simulator answers a member order of ``group_id`` sent on a bare socket by the maker's
    second key (the engine itself refuses it before sending): (Text, OrdRejReason)."""
    client = RawClient(sim, sim.maker_too, target=session_type.value,
                       listener=FIX44_LISTENER if dialect is Dialect.FIX44 else None)
    try:
        assert client.logon()[35] == "A"
        client.send("D", [(11, "raw-member"), (55, TICKER), (54, "2"), (38, "1"), (40, "2"), (44, "60"), (59, "1"),
                          (60, sending_time_now()), (526, group_id)])
        while (report := client.read())[35] != "8" or report[150] == "A":
            pass
        return report[58], report[103]
    finally:
        client.close()


def is_open(sim, engine: Engine, key: str) -> bool:
    return engine.book.order(key).order_id in {o.order_id for o in sim.exchange.open_orders()}


# --- the engine's API, both dialects ----------------------------------------------------------


async def test_create_update_trigger_reset_delete(trading, kind) -> None:
    engine, sim = trading
    events = engine.events()
    group = await engine.create_order_group("maker", 100)
    assert UUID.match(group.group_id) and group.contracts_limit == 100 and group.subaccount == 0
    confirmed = await events.wait_for(OrderGroupConfirmed)
    assert confirmed.group == group and confirmed.session == "maker"
    gid = group.group_id
    updated = await engine.update_order_group("maker", gid, 50)
    assert (updated.group_id, updated.contracts_limit) == (gid, 50)

    resting = await member(engine, events, gid, 10, "0.60")
    triggered = await engine.trigger_order_group("maker", gid)
    assert triggered.group_id == gid and triggered.contracts_limit is None  # echoed on create/update only
    canceled = await until(events, OrderCanceled, resting)
    assert canceled.order.reason is not None and canceled.order.reason.code is RejectCode.ORDER_GROUP_CANCEL
    assert (await events.wait_for(OrderGroupTriggered, timeout=10)).orders == [resting]

    with pytest.raises(InvalidOrderError, match=f"order group {gid} is triggered"):  # refused before it is sent
        await engine.submit("maker", new_order(TICKER, Action.SELL, qty=1, price="0.60", order_group_id=gid))
    assert engine.message_counts.get(("maker", "out", "D"), 0) == 1  # the member only
    assert kalshi_refuses_a_member(sim, gid, *kind) == (RejectCode.EXCEEDED_ORDER_GROUP_RISK_LIMIT.value, "3")

    await engine.reset_order_group("maker", gid)
    again = await member(engine, events, gid, 2, "0.60")
    deleted = await engine.delete_order_group("maker", gid)
    assert deleted.group_id == gid
    assert (await until(events, OrderCanceled, again)).order.reason.code is RejectCode.ORDER_GROUP_CANCEL  # type: ignore[union-attr]
    assert not is_open(sim, engine, again)

    with pytest.raises(OrderGroupError) as gone:
        await engine.reset_order_group("maker", gid)
    assert (gone.value.code, gone.value.number, gone.value.session_reject) == ("ORDER_GROUP_NOT_FOUND", 1, False)
    assert (await events.wait_for(OrderGroupRefused)).reason.code is RejectCode.ORDER_GROUP_NOT_FOUND
    orphan = await engine.submit("maker", new_order(TICKER, Action.SELL, qty=1, price="0.60", order_group_id=gid))
    assert (await until(events, OrderRejected, orphan.key)).order.reason.code is RejectCode.ORDER_GROUP_NOT_FOUND  # type: ignore[union-attr]


async def test_a_malformed_group_id_is_a_session_reject_matched_to_its_request(trading) -> None:
    engine, _ = trading
    events = engine.events()
    with pytest.raises(OrderGroupError) as malformed:
        await engine.reset_order_group("maker", "not-a-uuid")
    error = malformed.value
    assert error.session_reject and (error.ref_tag, error.number) == (20130, 6) and "UUID" in error.text
    reject = await events.wait_for(SessionRejectReceived)
    assert (reject.ref_msg_type, reject.ref_tag, reject.reason_code) == ("UOG", 20130, 6)
    # The session goes on: the next request is answered, and matched to its own request.
    assert UUID.match((await engine.create_order_group("maker", 5)).group_id)


async def test_an_answer_that_never_comes_times_out_then_is_given_up_at_logout(fixt_trading) -> None:
    engine, sim = fixt_trading
    events = engine.events()
    sim.faults.drop_outbound(engine.config.session("maker").api_key_id, 1)  # the UOH is lost on the way
    with pytest.raises(SessionUnavailableError, match="outcome is unknown"):
        await engine.create_order_group("maker", 5, timeout=1)
    # The next message shows the gap; KalshiNR cannot resend, so the session logs out, and with it
    # the request is given up (its late answer can never be taken for another's).
    with contextlib.suppress(SessionUnavailableError):
        await engine.test_request("maker", timeout=5)
    given_up = await events.wait_for(OrderGroupRefused, timeout=15)
    assert given_up.session == "maker" and "outcome is unknown" in given_up.reason.text


# --- the 15-second window, driven by the simulator's clock -------------------------------------


async def test_fills_within_15_seconds_over_the_limit_trigger_the_group(fixt_trading) -> None:
    engine, sim = fixt_trading
    events = engine.events()
    gid = (await engine.create_order_group("maker", 5)).group_id
    resting = await member(engine, events, gid, 10, "0.60")  # never crossed: the trigger cancels it
    await take(engine, events, await member(engine, events, gid, 3, "0.40"), 3)
    assert is_open(sim, engine, resting)  # 3 of 5
    await take(engine, events, await member(engine, events, gid, 3, "0.40"), 3)  # 6 in 15 s > 5

    triggered = await events.wait_for(OrderGroupTriggered, timeout=10)
    assert (triggered.session, triggered.group_id, triggered.orders) == ("maker", gid, [resting])
    order = engine.book.order(resting)
    assert order.status is Status.CANCELED and order.reason is not None and order.reason.code is RejectCode.ORDER_GROUP_CANCEL
    assert not is_open(sim, engine, resting)

    with pytest.raises(InvalidOrderError, match="triggered"):  # known from the cancels: refused before it is sent
        await engine.submit("maker", new_order(TICKER, Action.SELL, qty=1, price="0.60", order_group_id=gid))
    assert kalshi_refuses_a_member(sim, gid, Dialect.FIXT11, SessionType.NR)[0] == RejectCode.EXCEEDED_ORDER_GROUP_RISK_LIMIT.value
    await engine.reset_order_group("maker", gid)
    assert is_open(sim, engine, await member(engine, events, gid, 1, "0.60"))


async def test_fills_further_apart_than_15_seconds_do_not_add_up(fixt_trading) -> None:
    engine, sim = fixt_trading
    events = engine.events()
    gid = (await engine.create_order_group("maker", 5)).group_id
    resting = await member(engine, events, gid, 10, "0.60")
    await take(engine, events, await member(engine, events, gid, 3, "0.40"), 3)
    sim.faults.skew_clock(16)  # the exchange's clock moves on 16 s: the first fill leaves the window
    await take(engine, events, await member(engine, events, gid, 3, "0.40"), 3)
    await engine.test_request("maker")  # every report sent before this answer has been applied
    assert not [e for e in events.drain() if isinstance(e, (OrderGroupTriggered, OrderCanceled))]
    assert is_open(sim, engine, resting) and engine.book.order(resting).status is Status.NEW
    # ... while a third fill inside the (moved) window does add up with the second: 6 > 5.
    await take(engine, events, await member(engine, events, gid, 3, "0.40"), 3)
    assert (await events.wait_for(OrderGroupTriggered, timeout=10)).orders == [resting]


# --- subaccounts ----------------------------------------------------------------------------------


async def test_a_group_made_for_a_subaccount_is_managed_and_joined_only_with_it(fixt_trading) -> None:
    engine, sim = fixt_trading
    events = engine.events()
    group = await engine.create_order_group("maker", 10, subaccount=3)
    assert group.subaccount == 3  # 79 echoed
    with pytest.raises(OrderGroupError) as mismatch:
        await engine.trigger_order_group("maker", group.group_id)  # as the primary account
    assert (mismatch.value.code, mismatch.value.session_reject) == ("ORDER_GROUP_NOT_FOUND", False)
    assert "ORDER_GROUP_NOT_FOUND" in str(mismatch.value)

    stranger = await engine.submit("maker", new_order(TICKER, Action.SELL, qty=1, price="0.60", order_group_id=group.group_id))
    assert (await until(events, OrderRejected, stranger.key)).order.reason.code is RejectCode.ORDER_GROUP_NOT_FOUND  # type: ignore[union-attr]
    joined = await member(engine, events, group.group_id, 1, "0.60", subaccount=3)
    await engine.trigger_order_group("maker", group.group_id, subaccount=3)
    assert (await until(events, OrderCanceled, joined)).order.reason.code is RejectCode.ORDER_GROUP_CANCEL  # type: ignore[union-attr]


# --- refused before anything is sent -------------------------------------------------------------


async def test_order_groups_are_refused_on_drop_copy_and_listener_sessions(tmp_path, make_key, start_simulator) -> None:
    dc, listener = make_key(), make_key()
    sim, _ = start_simulator([dc.account(), listener.account()], markets=[MarketEntry(ticker=TICKER)])
    config = engine_config(
        tmp_path,
        session_to(sim, dc, name="dc", session_type=SessionType.DC),
        session_to(sim, listener, name="watch", logon=LogonFlags(reset_seq_num=True, listener=True,
                                                                  skip_pending_exec_reports=True)),
    )
    engine = Engine(config)
    await engine.start()
    try:
        await engine.wait_logged_on()
        with pytest.raises(InvalidOrderError, match="session: dc is KalshiDC"):
            await engine.create_order_group("dc", 5)
        with pytest.raises(InvalidOrderError, match="session: watch is a listener"):
            await engine.create_order_group("watch", 5)
        assert [k for k in engine.message_counts if k[2] == "UOG"] == []
    finally:
        await engine.stop()


# --- the simulator's wire, as a raw client sees it -------------------------------------------------


def test_the_simulator_answers_uog_with_uoh_35j_or_35_3(make_key, start_simulator) -> None:
    key = make_key()
    sim, _ = start_simulator([key.account()], markets=[MarketEntry(ticker=TICKER)])
    client = RawClient(sim, key)
    try:
        assert client.logon()[35] == "A"
        client.send("UOG", [(20131, "1"), (20132, "25"), (79, "4")])
        created = client.read()
        assert created[35] == "UOH" and UUID.match(created[20130]) and (created[20132], created[79]) == ("25", "4")

        cases = [
            ([(20131, "2"), (20130, "0123")], 20130, "6"),  # not a UUID
            ([(20131, "1"), (20130, created[20130]), (20132, "5")], 20130, "5"),  # an id on Create
            ([(20131, "1")], 20132, "1"),  # Create without a limit
            ([(20131, "5"), (20130, created[20130]), (20132, "1000001")], 20132, "5"),  # over 1,000,000
            ([(20131, "7"), (20130, created[20130])], 20131, "5"),  # no such action (the dictionary says)
            ([(20132, "5")], 20131, "1"),  # no action at all
        ]
        for fields, tag, reason in cases:
            seq = client.send("UOG", fields)
            reject = client.read()
            assert (reject[35], reject[45], reject[372], reject[371], reject[373]) == ("3", str(seq), "UOG", str(tag), reason), fields

        seq = client.send("UOG", [(20131, "2"), (20130, created[20130])])  # managed as the primary: not found
        refused = client.read()
        assert (refused[35], refused[45], refused[372], refused[380], refused[58]) == ("j", str(seq), "UOG", "1", "ORDER_GROUP_NOT_FOUND")
        client.send("UOG", [(20131, "2"), (20130, created[20130]), (79, "4")])
        reset = client.read()
        assert (reset[35], reset[20130], reset[79]) == ("UOH", created[20130], "4") and 20132 not in reset
    finally:
        client.close()


def test_fills_count_for_the_order_groups_of_maker_and_taker_alike(make_key, start_simulator) -> None:
    """A member order that takes liquidity counts its fills too (the taker side of a trade)."""
    key, other = make_key(), make_key()
    sim, _ = start_simulator([key.account(), other.account()], markets=[MarketEntry(ticker=TICKER)])
    client, seller = RawClient(sim, key), RawClient(sim, other)
    try:
        client.logon()
        seller.logon()
        client.send("UOG", [(20131, "1"), (20132, "2")])
        gid = client.read()[20130]
        seller.send("D", [(11, "s1"), (55, TICKER), (54, "2"), (38, "5"), (40, "2"), (44, "40"), (59, "1"), (60, sending_time_now())])
        while seller.read().get(150) != "0":
            pass
        client.send("D", [(11, "rest"), (55, TICKER), (54, "1"), (38, "1"), (40, "2"), (44, "10"), (59, "1"), (60, sending_time_now()), (526, gid)])
        client.send("D", [(11, "take"), (55, TICKER), (54, "1"), (38, "3"), (40, "2"), (44, "40"), (59, "1"), (60, sending_time_now()), (526, gid)])
        reports = []
        while not any(r.get(11) == "rest" and r.get(150) == "4" for r in reports):
            reports.append(client.read())
        canceled = next(r for r in reports if r.get(11) == "rest" and r.get(150) == "4")
        assert canceled[58] == "ORDER_GROUP_CANCEL" and D(canceled[151]) == 0
        assert [o for o in sim.exchange.open_orders() if o.cl_ord_id == "rest"] == []
    finally:
        client.close()
        seller.close()
