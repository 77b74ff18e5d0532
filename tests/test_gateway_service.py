"""An OMS that speaks only FIX 4.4 trades on the simulator through the gateway: new, amend, cancel,
fills, rejects, status; it gets what it missed while away, resends on request, and heals made on
the Kalshi side; its book ends equal to the exchange's."""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal as D

import pytest

from conformance.harness import session_to
from fixengine.events import BookReleased, ReconciliationDone
from fixengine.fix.store import next_sequence_numbers
from fixengine.gateway.translate import OmsMessage
from fixengine.kalshi.prices import Action, Contract
from fixengine.orders.book import OrderAccepted, OrderCanceled, OrderFilled
from fixengine.orders.requests import NewOrder, TimeInForce
from simulator.config import MarketEntry
from tests.helpers.gateway import (
    TICKER,
    RawOms,
    gateway_config,
    oms_client_entry,
    oms_differences,
    oms_for,
    oms_logged_on,
    reconciled,
    running_gateway,
    wait_until,
)


def is_report(cl_ord_id: str, exec_type: str):  # type: ignore[no-untyped-def]
    return lambda r: r.msg_type == "8" and r.get(11) == cl_ord_id and r.get(150) == exec_type


@pytest.fixture
def market(make_key, start_simulator):
    """The simulator with one market, the OMS's account and another trader's."""
    desk, other = make_key(), make_key()
    sim, events = start_simulator([desk.account(), other.account()], markets=[MarketEntry(ticker=TICKER)], rest_port=0)
    return sim, desk, other


async def reconciled_once(engine):  # type: ignore[no-untyped-def]
    """The engine's events, once each session's first reconciliation has released its book."""
    events = engine.events()
    await engine.wait_logged_on()
    for _ in engine.config.sessions:
        await events.wait_for(BookReleased, timeout=15)
    return events


def sessions(sim, desk, other):  # type: ignore[no-untyped-def]
    return session_to(sim, desk, name="desk-kalshi"), session_to(sim, other, name="other")


async def sell_into(engine, price: str, quantity: str) -> None:  # type: ignore[no-untyped-def]
    """The other trader sells YES at ``price`` (IOC), filling the OMS's resting bids."""
    order = NewOrder.create(ticker=TICKER, action=Action.SELL, contract=Contract.YES, quantity=D(quantity),
                            price=D(price), time_in_force=TimeInForce.IOC)
    await engine.submit("other", order)


async def test_an_oms_places_amends_cancels_and_sees_fills(tmp_path, market) -> None:
    sim, desk, other = market
    config = gateway_config(tmp_path / "serve", *sessions(sim, desk, other))
    async with running_gateway(config) as (engine, gateway):
        await engine.wait_logged_on()
        async with oms_logged_on(config, "desk", tmp_path / "oms") as oms:
            first = oms.new_order(TICKER, "1", D(10), D("0.40"))
            await oms.wait_for(is_report(first, "0"))
            amended = oms.replace(first, quantity=D(6), price=D("0.41"))
            replaced = await oms.wait_for(is_report(amended, "5"))
            assert (replaced.get(41), replaced.get(38), replaced.get(44)) == (first, "6.00", "0.41")

            await sell_into(engine, "0.41", "2")
            trade = await oms.wait_for(is_report(amended, "F"))
            assert (trade.get(32), trade.get(31), trade.get(14), trade.get(151), trade.get(39)) == ("2.00", "0.41", "2.00", "4.00", "1")
            assert trade.get(13) == "3" and trade.get(12) is not None  # the fee, in dollars (a maker pays none here)

            cancel = oms.cancel(amended)
            canceled = await oms.wait_for(is_report(cancel, "4"))
            assert (canceled.get(41), canceled.get(38), canceled.get(14), canceled.get(151)) == (amended, "6.00", "2.00", "0.00")

            status_id = oms.status(first)
            answer = await oms.wait_for(lambda r: r.msg_type == "8" and r.get(150) == "I")
            assert (answer.get(11), answer.get(39), answer.get(790)) == (cancel, "4", status_id)

            assert oms_differences(oms, sim) == []
            assert oms.unflagged_duplicates == []
            exec_ids = [r.get(17) for r in oms.received if r.msg_type == "8"]
            assert len(exec_ids) == len(set(exec_ids))


async def test_a_marketable_order_is_acknowledged_then_filled(tmp_path, market) -> None:
    """Kalshi folds New and Trade into one report for an order that trades at once: the OMS sees
    a New first, then the Trade."""
    sim, desk, other = market
    config = gateway_config(tmp_path / "serve", *sessions(sim, desk, other))
    async with running_gateway(config) as (engine, gateway):
        await engine.wait_logged_on()
        rest = NewOrder.create(ticker=TICKER, action=Action.SELL, contract=Contract.YES, quantity=D(5), price=D("0.55"))
        events = engine.events()
        await engine.submit("other", rest)
        await events.wait_for(OrderAccepted)
        async with oms_logged_on(config, "desk", tmp_path / "oms") as oms:
            taker = oms.new_order(TICKER, "1", D(5), D("0.60"))
            trade = await oms.wait_for(is_report(taker, "F"))
            kinds = [r.get(150) for r in oms.received if r.get(11) == taker]
            assert kinds.index("0") < kinds.index("F")
            assert (trade.get(39), trade.get(14), trade.get(31), trade.get(6)) == ("2", "5.00", "0.55", "0.55")
            assert oms_differences(oms, sim) == []


@pytest.mark.parametrize("fields, tag, why", [
    ({44: "0.405"}, "44", "Price"),
    ({38: "1.005"}, "38", "OrderQty"),
    ({38: "5000"}, "38", "OrderQty"),
    ({55: "not a ticker!"}, "55", "Symbol"),
], ids=["off-grid-price", "quantity-step", "over-max-quantity", "ticker-format"])
async def test_invalid_orders_are_refused_by_the_gateway_and_never_reach_kalshi(tmp_path, market, fields, tag, why) -> None:
    sim, desk, other = market
    config = gateway_config(tmp_path / "serve", *sessions(sim, desk, other))
    async with running_gateway(config) as (engine, gateway):
        await engine.wait_logged_on()
        async with oms_logged_on(config, "desk", tmp_path / "oms") as oms:
            base = {11: "bad-1", 55: TICKER, 54: "1", 60: "20261130-12:00:00.000", 38: "10", 40: "2", 44: "0.40"}
            base.update(fields)
            oms.send("D", list(base.items()))
            refused = await oms.wait_for(is_report("bad-1", "8"))
            assert why in refused.get(58) and f"({tag})" in refused.get(58), refused.get(58)
            assert refused.get(39) == "8" and refused.get(37) == "NONE"
            assert sim.exchange.open_orders(desk.key_id) == []
            assert not engine.book.orders


async def test_duplicate_client_order_ids_and_unsupported_messages_are_refused(tmp_path, market) -> None:
    sim, desk, other = market
    config = gateway_config(tmp_path / "serve", *sessions(sim, desk, other))
    async with running_gateway(config) as (engine, gateway):
        await engine.wait_logged_on()
        async with oms_logged_on(config, "desk", tmp_path / "oms") as oms:
            oms.new_order(TICKER, "1", D(1), D("0.30"), cl_ord_id="same-1")
            await oms.wait_for(is_report("same-1", "0"))
            oms.send("D", [(11, "same-1"), (55, TICKER), (54, "1"), (60, "20261130-12:00:00.000"), (38, "1"), (40, "2"),
                           (44, "0.31")])
            duplicate = await oms.wait_for(is_report("same-1", "8"))
            assert duplicate.get(103) == "6" and "ClOrdID (11)" in duplicate.get(58)
            oms.send("c", [(320, "sd-1"), (321, "3")])  # SecurityDefinitionRequest: not order entry
            reject = await oms.wait_for(lambda r: r.msg_type == "j")
            assert (reject.get(372), reject.get(380)) == ("c", "3")
            assert len(sim.exchange.open_orders(desk.key_id)) == 1


async def test_an_oms_away_gets_everything_it_missed_when_it_logs_on_again(tmp_path, market) -> None:
    sim, desk, other = market
    config = gateway_config(tmp_path / "serve", *sessions(sim, desk, other))
    async with running_gateway(config) as (engine, gateway):
        await engine.wait_logged_on()
        oms = oms_for(config, "desk", tmp_path / "oms")
        await oms.start()
        await oms.wait_logged_on()
        bid = oms.new_order(TICKER, "1", D(10), D("0.45"))
        await oms.wait_for(is_report(bid, "0"))
        await oms.stop()

        events = engine.events()
        await sell_into(engine, "0.45", "3")
        await sell_into(engine, "0.44", "4")
        for _ in range(2):
            await events.wait_for(OrderFilled, "desk-kalshi", timeout=10)  # the OMS's order, not the seller's

        again = oms_for(config, "desk", tmp_path / "oms")  # same store: it knows where it stopped
        await again.start()
        try:
            await again.wait_logged_on()
            await again.wait_for(lambda r: r.get(150) == "F" and r.get(14) == "7.00")
            missed = [r for r in again.received if r.get(150) == "F"]
            assert all(r.poss_dup for r in missed)  # QuickFIX's resends from the gateway's store
            assert oms_differences(again, sim) == [] and again.unflagged_duplicates == []
        finally:
            await again.stop()


async def test_a_resend_request_over_any_range_is_answered_with_poss_dup_copies(tmp_path, market) -> None:
    sim, desk, other = market
    config = gateway_config(tmp_path / "serve", *sessions(sim, desk, other))
    async with running_gateway(config) as (engine, gateway):
        await engine.wait_logged_on()
        async with oms_logged_on(config, "desk", tmp_path / "oms") as oms:
            for price in ("0.30", "0.31"):
                await oms.wait_for(is_report(oms.new_order(TICKER, "1", D(1), D(price)), "0"))
            originals = {r.seq: r for r in oms.received if r.msg_type == "8"}
        next_seq, _ = next_sequence_numbers(tmp_path / "oms")
        # The same OMS, on a bare socket (QuickFIX would drop copies it has seen): any range.
        raw = RawOms(config.oms_client("desk").port, "OMS1", "FIXENGINE")
        try:
            raw.send("A", [(98, "0"), (108, "30")], seq=next_seq)
            assert (await asyncio.to_thread(raw.read))[35] == "A"
            first, last = min(originals) + 1, max(originals)
            raw.send("2", [(7, str(first)), (16, str(last))])
            copies = {}
            while len(copies) < len([s for s in originals if first <= s <= last]):
                message = await asyncio.to_thread(raw.read)
                if message[35] == "8":
                    copies[int(message[34])] = message
            for seq, copy in copies.items():
                assert copy[43] == "Y" and copy[17] == originals[seq].get(17) and copy[11] == originals[seq].get(11)
        finally:
            raw.close()


async def test_heals_on_the_kalshi_side_reach_the_oms(tmp_path, market) -> None:
    """A fill and a cancel the FIX session never reported, found by reconciliation, become
    ExecutionReports with the right cumulative quantities."""
    sim, desk, other = market
    config = gateway_config(tmp_path / "serve", *sessions(sim, desk, other),
                            rest=reconciled(sim))
    async with running_gateway(config) as (engine, gateway):
        events = await reconciled_once(engine)
        async with oms_logged_on(config, "desk", tmp_path / "oms") as oms:
            to_fill = oms.new_order(TICKER, "1", D(10), D("0.40"))
            to_cancel = oms.new_order(TICKER, "1", D(4), D("0.39"))
            for cl in (to_fill, to_cancel):
                await oms.wait_for(is_report(cl, "0"))
            await asyncio.to_thread(sim.admin.add_fill, oms.order(to_fill).order_id, D(3))
            await asyncio.to_thread(sim.admin.cancel_order, oms.order(to_cancel).order_id)
            findings = await engine.reconcile("desk-kalshi")
            assert findings.clean
            trade = await oms.wait_for(is_report(to_fill, "F"))
            assert (trade.get(32), trade.get(14), trade.get(151), trade.get(39)) == ("3.00", "3.00", "7.00", "1")
            canceled = await oms.wait_for(is_report(to_cancel, "4"))
            assert (canceled.get(14), canceled.get(151), canceled.get(38)) == ("0.00", "0.00", "4.00")
            assert oms_differences(oms, sim) == [] and oms.unflagged_duplicates == []
        await events.wait_for(ReconciliationDone)


async def test_a_restarted_gateway_tells_the_oms_what_happened_while_it_was_down(tmp_path, market) -> None:
    sim, desk, other = market
    config = gateway_config(tmp_path / "serve", *sessions(sim, desk, other),
                            rest=reconciled(sim))
    oms = oms_for(config, "desk", tmp_path / "oms")
    async with running_gateway(config) as (engine, gateway):
        await engine.wait_logged_on()
        events = engine.events()
        await events.wait_for(BookReleased, timeout=15)
        await oms.start()
        await oms.wait_logged_on()
        bid = oms.new_order(TICKER, "1", D(10), D("0.45"))
        await oms.wait_for(is_report(bid, "0"))
    # The whole service is down; the exchange fills and cancels the order meanwhile.
    order_id = oms.order(bid).order_id
    await asyncio.to_thread(sim.admin.add_fill, order_id, D(4))
    await asyncio.to_thread(sim.admin.cancel_order, order_id)
    async with running_gateway(config) as (engine, gateway):
        await engine.wait_logged_on()
        canceled = await oms.wait_for(is_report(bid, "4"), timeout=30)  # after its reconciliation heals
        trade = next(r for r in oms.received if r.get(150) == "F")
        assert (trade.get(32), trade.get(14)) == ("4.00", "4.00") and canceled.get(14) == "4.00"
        assert oms_differences(oms, sim) == [] and oms.unflagged_duplicates == []
    await oms.stop()


async def test_a_report_that_is_not_valid_fix44_is_never_sent_and_raises_an_alert(tmp_path, market) -> None:
    sim, desk, other = market
    config = gateway_config(tmp_path / "serve", *sessions(sim, desk, other))
    async with running_gateway(config) as (engine, gateway):
        async with oms_logged_on(config, "desk", tmp_path / "oms") as oms:
            gateway._emit("desk", OmsMessage("8", [(37, "O-1"), (11, "x"), (17, "1"), (150, "F")]))  # no OrdStatus ...
            gateway._emit("desk", OmsMessage("j", [(45, "1"), (372, "D"), (380, "3"), (58, "after the bad one")]))
            after = await oms.wait_for(lambda r: r.msg_type == "j")
            assert after.get(58) == "after the bad one"
            assert not [r for r in oms.received if r.msg_type == "8"]
            assert len(gateway.alerts) == 1 and "Required tag missing" in gateway.alerts[0]


async def test_a_clients_subaccount_goes_on_its_orders(tmp_path, market) -> None:
    sim, desk, other = market
    kalshi, trader = sessions(sim, desk, other)
    config = gateway_config(tmp_path / "serve", kalshi, trader, clients=[oms_client_entry("desk", "OMS1", kalshi.name, subaccount=3)])
    async with running_gateway(config) as (engine, gateway):
        await engine.wait_logged_on()
        async with oms_logged_on(config, "desk", tmp_path / "oms") as oms:
            placed = oms.new_order(TICKER, "1", D(1), D("0.30"))
            await oms.wait_for(is_report(placed, "0"))
    sent = (config.log_path / "desk-kalshi.messages.log").read_text()
    assert "|35=D|" in sent and "|79=3|" in sent


async def test_an_nr_gap_healed_by_reconciliation_reaches_the_oms(tmp_path, market) -> None:
    """Kalshi's reports of an OMS order are lost in an NR gap: reconciliation finds the order and
    the OMS is told, its book equal to the exchange's."""
    sim, desk, other = market
    config = gateway_config(tmp_path / "serve", *sessions(sim, desk, other),
                            rest=reconciled(sim))
    async with running_gateway(config) as (engine, gateway):
        await reconciled_once(engine)
        async with oms_logged_on(config, "desk", tmp_path / "oms") as oms:
            await oms.wait_for(is_report(oms.new_order(TICKER, "1", D(1), D("0.30")), "0"))
            sim.faults.drop_outbound(desk.key_id, 2)  # PendingNew and New of the next order: never read
            lost = oms.new_order(TICKER, "1", D(2), D("0.31"))
            assert await asyncio.to_thread(sim.faults.wait_spent, desk.key_id)
            shows_gap = oms.new_order(TICKER, "1", D(1), D("0.32"))  # its reports show the gap
            await oms.wait_for(is_report(lost, "0"), timeout=30)  # after the hold and the reconciliation
            await oms.wait_for(is_report(shows_gap, "0"), timeout=30)
            assert oms_differences(oms, sim) == [] and oms.unflagged_duplicates == []


async def test_cancel_on_disconnect_cancels_only_that_clients_orders_after_its_grace(tmp_path, market) -> None:
    sim, desk, other = market
    kalshi, trader = sessions(sim, desk, other)
    config = gateway_config(tmp_path / "serve", kalshi, trader, clients=[
        oms_client_entry("desk", "OMS1", kalshi.name, cancel_on_disconnect=0.5),
        oms_client_entry("steady", "OMS2", kalshi.name),
    ])
    async with running_gateway(config) as (engine, gateway):
        await engine.wait_logged_on()
        async with oms_logged_on(config, "steady", tmp_path / "steady") as steady:
            kept = steady.new_order(TICKER, "1", D(2), D("0.30"))
            await steady.wait_for(is_report(kept, "0"))
            leaver = oms_for(config, "desk", tmp_path / "desk")
            await leaver.start()
            try:
                await leaver.wait_logged_on()
                await wait_until(lambda: gateway.cancel_deadline("desk") is None)  # logged on: nothing due
                doomed = leaver.new_order(TICKER, "1", D(3), D("0.31"))
                await leaver.wait_for(is_report(doomed, "0"))
                events = engine.events()
            finally:
                await leaver.stop()
            canceled = await events.wait_for(OrderCanceled, timeout=10)
            assert canceled.order.order_id == leaver.order(doomed).order_id
            open_ids = {o.order_id for o in sim.exchange.open_orders(desk.key_id)}
            assert steady.order(kept).order_id in open_ids and leaver.order(doomed).order_id not in open_ids

            back = oms_for(config, "desk", tmp_path / "desk")  # same store: the cancel is waiting for it
            await back.start()
            try:
                await back.wait_logged_on()
                await back.wait_for(lambda r: r.get(150) == "4", timeout=10)
                assert oms_differences(back, sim) == [] and back.unflagged_duplicates == []
            finally:
                await back.stop()


async def test_a_client_back_within_its_grace_keeps_its_orders(tmp_path, market) -> None:
    sim, desk, other = market
    kalshi, trader = sessions(sim, desk, other)
    config = gateway_config(tmp_path / "serve", kalshi, trader,
                            clients=[oms_client_entry("desk", "OMS1", kalshi.name, cancel_on_disconnect=60)])
    async with running_gateway(config) as (engine, gateway):
        await engine.wait_logged_on()
        assert gateway.cancel_deadline("desk") is not None  # not connected since the start: the grace runs
        oms = oms_for(config, "desk", tmp_path / "desk")
        await oms.start()
        try:
            await oms.wait_logged_on()
            placed = oms.new_order(TICKER, "1", D(3), D("0.31"))
            await oms.wait_for(is_report(placed, "0"))
        finally:
            await oms.stop()
        await wait_until(lambda: gateway.cancel_deadline("desk") is not None)
        again = oms_for(config, "desk", tmp_path / "desk")
        await again.start()
        try:
            await again.wait_logged_on()
            await wait_until(lambda: gateway.cancel_deadline("desk") is None)  # back in time: nothing cancelled
            assert len(sim.exchange.open_orders(desk.key_id)) == 1
        finally:
            await again.stop()


async def test_a_stop_waits_for_orders_in_flight_and_a_second_signal_cuts_it_short(tmp_path, market, caplog) -> None:
    """``serve``'s stop refuses new orders and waits (up to shutdown_grace) for Kalshi to answer
    what is in flight; a second signal (``hurry``) stops at once."""
    from fixengine.serve import serve

    caplog.set_level(logging.INFO, logger="fixengine.serve")
    sim, desk, other = market
    config = gateway_config(tmp_path / "serve", *sessions(sim, desk, other))
    config = config.model_copy(update={"gateway": config.gateway.model_copy(update={"shutdown_grace": 60.0})})
    stop, hurry, listening = asyncio.Event(), asyncio.Event(), asyncio.Event()
    service = asyncio.ensure_future(serve(config, stop, announce=lambda line: listening.set(), hurry=hurry))
    try:
        await asyncio.wait_for(listening.wait(), 20)
        await served_through_a_stop(config, sim, desk, tmp_path, stop, hurry, service, caplog)
    finally:
        stop.set()
        hurry.set()
        await asyncio.wait_for(service, 30)
    assert "(second signal)" in caplog.text


async def served_through_a_stop(config, sim, desk, tmp_path, stop, hurry, service, caplog) -> None:  # type: ignore[no-untyped-def]
    async with oms_logged_on(config, "desk", tmp_path / "oms") as oms:
        await oms.wait_for(is_report(oms.new_order(TICKER, "1", D(1), D("0.30")), "0"))
        sim.faults.drop_outbound(desk.key_id, 2)  # Kalshi's answers to the next order never arrive
        unanswered = oms.new_order(TICKER, "1", D(1), D("0.31"))
        assert await asyncio.to_thread(sim.faults.wait_spent, desk.key_id)
        stop.set()
        await wait_until(lambda: "new orders refused" in caplog.text)  # the stop has begun its wind-down
        refused = oms.new_order(TICKER, "1", D(1), D("0.32"))  # while the stop waits
        answer = await oms.wait_for(is_report(refused, "8"))
        assert "stopping" in answer.get(58)
        assert not service.done() and oms.order(unanswered).ord_status in (None, "A")  # still waiting for Kalshi
        hurry.set()
        await asyncio.wait_for(service, 30)
