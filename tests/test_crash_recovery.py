"""The engine process is SIGKILLed around an order's send; a restarted engine has lost nothing
it acknowledged and never puts the order on the exchange twice."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal as D

import pytest

from conformance.harness import session_to
from fixengine.config import LogonFlags
from fixengine.engine import Engine
from fixengine.kalshi.facts import SessionType
from fixengine.orders.book import OrderRejected, Status
from fixengine.orders.requests import NewOrder
from fixengine.kalshi.prices import Action, Contract
from simulator.config import MarketEntry
from tests.helpers.sessions import engine_config

TICKER = "HIGHNY-23DEC31"


def run_until_killed(config, point: str, cl_ord_id: str, tmp_path) -> None:
    spec = {"engine": json.loads(config.model_dump_json(by_alias=True)), "ticker": TICKER, "client_order_id": cl_ord_id}
    path = tmp_path / "crash.json"
    path.write_text(json.dumps(spec))
    proc = subprocess.run(
        [sys.executable, "-m", "tests.crash_engine", str(path), point],
        capture_output=True, text=True, timeout=60, cwd=os.getcwd(),
    )
    assert proc.returncode == -9, proc.stdout + proc.stderr  # SIGKILL, at the named instant
    assert "logged on" in proc.stdout


@pytest.mark.parametrize("session_type", [SessionType.NR, SessionType.RT], ids=["nr", "rt"])
@pytest.mark.parametrize("point", ["before-journal", "before-send", "after-send"])
async def test_sigkill_around_the_send(tmp_path, make_key, start_simulator, point, session_type) -> None:
    key = make_key()
    sim, sim_events = start_simulator([key.account()], markets=[MarketEntry(ticker=TICKER)])
    # RT keeps its sequence across the restart (FileStore) and recovers what it missed by resend.
    reset = session_type is SessionType.NR
    config = engine_config(tmp_path, session_to(sim, key, session_type=session_type, logon=LogonFlags(reset_seq_num=reset)))
    run_until_killed(config, point, "crash-1", tmp_path)
    reached_exchange = point == "after-send"
    # The simulator saw the connection die: QuickFIX has read all it was sent (logged_out comes after
    # the last bytes) and the gate has let the key go (closed), in whichever order.
    sim_events.wait_for_all(("logged_out", "closed"), key.key_id)
    on_exchange = [o for o in sim.exchange.open_orders() if o.cl_ord_id == "crash-1"]
    assert len(on_exchange) == (1 if reached_exchange else 0)

    engine = Engine(config)  # same data_dir: the journal is read back
    events = engine.events()
    await engine.start()
    try:
        await engine.wait_logged_on()
        if point == "before-journal":
            assert "crash-1" not in engine.book.orders  # never acknowledged, never sent: nothing to keep
            return
        if reached_exchange and session_type is SessionType.RT:
            # The ack the killed engine never read is resent after the logon: no retry needed.
            while engine.book.order("crash-1").status is Status.PENDING_NEW:
                await events.next(timeout=10)
            assert engine.book.order("crash-1").status is Status.NEW
            assert len([o for o in sim.exchange.open_orders() if o.cl_ord_id == "crash-1"]) == 1
            return
        recovered = engine.book.order("crash-1")
        if session_type is SessionType.RT and not reached_exchange:
            # QuickFIX's store (it keeps what it sends, to resend it) does not have it: never sent.
            assert recovered.status is Status.REJECTED and recovered.reason.text.startswith("never sent")
            assert not [o for o in sim.exchange.open_orders() if o.cl_ord_id == "crash-1"]
            return
        assert recovered.status is Status.PENDING_NEW and recovered.outcome_unknown
        # Nothing was re-sent on restart ...
        assert len([o for o in sim.exchange.open_orders() if o.cl_ord_id == "crash-1"]) == (1 if reached_exchange else 0)
        # ... and a retry with the same ClOrdID cannot create a second order.
        retry = NewOrder.create(ticker=TICKER, action=Action.BUY, contract=Contract.YES, quantity=D(5),
                                price=D("0.40"), client_order_id="crash-1")
        await engine.submit(config.sessions[0].name, retry)
        if reached_exchange:
            await events.wait_for(OrderRejected)
            assert engine.book.order("crash-1").status is Status.NEW  # it exists on the exchange
        else:
            while engine.book.order("crash-1").status is Status.PENDING_NEW:
                await events.next(timeout=10)
            assert engine.book.order("crash-1").status is Status.NEW
        assert len([o for o in sim.exchange.open_orders() if o.cl_ord_id == "crash-1"]) == 1
    finally:
        await engine.stop()


async def test_cancel_of_an_order_the_exchange_never_got_is_rejected_as_unknown(tmp_path, make_key, start_simulator) -> None:
    """The process died after journaling, before sending: on restart a cancel of that order gets
    Kalshi's OrderCancelReject 102=1 (unknown order), and the book keeps the order as it was."""
    from fixengine.orders.book import CancelRejected
    from fixengine.orders.requests import CancelOrder

    key = make_key()
    sim, sim_events = start_simulator([key.account()], markets=[MarketEntry(ticker=TICKER)])
    config = engine_config(tmp_path, session_to(sim, key, reconnect_interval=1))
    run_until_killed(config, "before-send", "ghost-1", tmp_path)
    sim_events.wait_for("closed", key.key_id)
    async with Engine(config) as engine:
        await engine.wait_logged_on()
        events = engine.events()
        await engine.cancel(config.sessions[0].name, CancelOrder.create(order="ghost-1"))
        rejected = await events.wait_for(CancelRejected)
        assert rejected.reject.reason.number == 1 and rejected.reject.cl_ord_id != "ghost-1"
        assert engine.book.order("ghost-1").status is Status.PENDING_NEW and engine.book.order("ghost-1").pending is None


async def test_a_report_counted_by_quickfix_but_never_journaled_is_asked_for_again(tmp_path, make_key, start_simulator) -> None:
    """KalshiRT without reconciliation: QuickFIX counts a message as received when its callback
    returns; the loop journals it a moment later. Killed in between, the restarted engine asks
    from the last journaled message on, and the lost ack comes back by resend."""
    key = make_key()
    sim, sim_events = start_simulator([key.account()], markets=[MarketEntry(ticker=TICKER)])
    config = engine_config(tmp_path, session_to(sim, key, session_type=SessionType.RT, logon=LogonFlags(reset_seq_num=False)))
    run_until_killed(config, "after-receive", "lost-ack", tmp_path)
    sim_events.wait_for_all(("logged_out", "closed"), key.key_id)
    assert [o.cl_ord_id for o in sim.exchange.open_orders()] == ["lost-ack"]
    engine = Engine(config)
    events = engine.events()
    await engine.start()
    try:
        await engine.wait_logged_on()
        while engine.book.order("lost-ack").status is Status.PENDING_NEW:
            await events.next(timeout=10)
        assert engine.book.order("lost-ack").status is Status.NEW and not engine.book.order("lost-ack").outcome_unknown
    finally:
        await engine.stop()


async def test_a_clean_restart_asks_for_nothing_again(tmp_path, make_key, start_simulator) -> None:
    """The restart's ask-again (above) is for kills only: a clean stop journals how far QuickFIX read."""
    from fixengine.events import LoggedOn, ResendRequested
    from fixengine.orders.book import OrderAccepted

    key = make_key()
    sim, sim_events = start_simulator([key.account()], markets=[MarketEntry(ticker=TICKER)])
    config = engine_config(tmp_path, session_to(sim, key, session_type=SessionType.RT, logon=LogonFlags(reset_seq_num=False)))
    async with Engine(config) as engine:
        events = engine.events()
        await engine.wait_logged_on()
        await engine.submit("s1", NewOrder.create(ticker=TICKER, action=Action.BUY, contract=Contract.YES,
                                                  quantity=D(1), price=D("0.40")))
        await events.wait_for(OrderAccepted)
    sim_events.wait_for_all(("logged_out", "closed"), key.key_id)
    again = Engine(config)
    events = again.events()
    await again.start()
    try:
        await again.wait_logged_on()
        await again.test_request("s1")  # a round trip after the logon: a resend would have come first
        seen = events.drain()
        assert any(isinstance(e, LoggedOn) for e in seen) and not [e for e in seen if isinstance(e, ResendRequested)]
    finally:
        await again.stop()
