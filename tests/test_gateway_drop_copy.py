"""Drop-copy clients: read-only OMS sessions that receive copies of the execution reports of chosen
clients or subaccounts, buffered and resendable like any OMS session, and cannot send orders."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from conformance.harness import session_to
from fixengine.config import EngineConfig
from fixengine.oms_client import OmsClient, Received
from fixengine.orders.requests import NewOrder, TimeInForce
from fixengine.kalshi.prices import Action, Contract
from simulator.config import MarketEntry
from tests.helpers.gateway import TICKER, gateway_config, oms_client_entry, oms_for, oms_logged_on, running_gateway, wait_until
from tests.helpers.sessions import unused_port


@pytest.fixture
def market(make_key, start_simulator):
    desk, other = make_key(), make_key()
    sim, _ = start_simulator([desk.account(), other.account()], markets=[MarketEntry(ticker=TICKER)])
    return sim, desk, other


def drop_copy(name: str, sender: str, port: int, **copy: list) -> dict:  # type: ignore[type-arg]
    return dict(name=name, sender_comp_id=sender, target_comp_id="FIXENGINE", port=port, drop_copy=copy)


def config_for(tmp_path, market) -> EngineConfig:  # type: ignore[no-untyped-def]
    sim, desk, other = market
    port = unused_port()
    clients = [
        oms_client_entry("desk", "OMS1", "desk-kalshi", port=port),
        oms_client_entry("desk-b", "OMS2", "desk-kalshi", port=port, subaccount=1),
        drop_copy("dc-1", "DC1", port, clients=["desk"]),
        drop_copy("dc-2", "DC2", port, clients=["desk"]),
        drop_copy("dc-late", "DC3", port, clients=["desk"]),
        drop_copy("dc-sub", "DC4", port, subaccounts=[1]),
    ]
    return gateway_config(tmp_path / "serve", session_to(sim, desk, name="desk-kalshi"), session_to(sim, other, name="other"),
                          clients=clients)


def copies(oms: OmsClient) -> list[Received]:
    return [r for r in oms.received if r.msg_type == "8"]


def body(r: Received) -> list[tuple[int, str]]:
    """A report without its session header (which differs between sessions by nature)."""
    return [(t, v) for t, v in r.fields if t not in (8, 9, 10, 34, 49, 52, 56, 43, 122)]


async def test_drop_copy_clients_get_identical_streams_of_the_clients_they_copy(tmp_path, market) -> None:
    config = config_for(tmp_path, market)
    async with running_gateway(config) as (engine, gateway):
        await engine.wait_logged_on()
        async with oms_logged_on(config, "dc-1", tmp_path / "dc-1") as dc1, \
                oms_logged_on(config, "dc-2", tmp_path / "dc-2") as dc2, \
                oms_logged_on(config, "dc-sub", tmp_path / "dc-sub") as dc_sub, \
                oms_logged_on(config, "desk", tmp_path / "desk") as desk, \
                oms_logged_on(config, "desk-b", tmp_path / "desk-b") as desk_b:
            resting = desk.new_order(TICKER, "1", D(5), D("0.40"))
            await desk.wait_for(lambda r: r.get(11) == resting and r.get(150) == "0")
            sell = NewOrder.create(ticker=TICKER, action=Action.SELL, contract=Contract.YES, quantity=D(2),
                                   price=D("0.40"), time_in_force=TimeInForce.IOC)
            await engine.submit("other", sell)
            await desk.wait_for(lambda r: r.get(11) == resting and r.get(150) == "F")
            canceled = desk.cancel(resting)
            await desk.wait_for(lambda r: r.get(11) == canceled and r.get(150) == "4")
            b_order = desk_b.new_order(TICKER, "1", D(1), D("0.30"))
            await desk_b.wait_for(lambda r: r.get(11) == b_order and r.get(150) == "0")

            desk_reports = copies(desk)
            await wait_until(lambda: len(copies(dc1)) == len(desk_reports) == len(copies(dc2)), timeout=10)
            assert [body(r) for r in copies(dc1)] == [body(r) for r in copies(dc2)]  # identical streams
            for original, copy in zip(desk_reports, copies(dc1)):
                assert (copy.get(115), copy.get(797), copy.get(17)) == ("OMS1", "Y", f"desk:{original.get(17)}")
                assert [(t, v) for t, v in body(copy) if t not in (115, 797, 17)] == \
                       [(t, v) for t, v in body(original) if t != 17]
            assert {r.get(11) for r in copies(dc1)} == {resting, canceled}  # desk's only, not desk-b's
            await wait_until(lambda: len(copies(dc_sub)) == len(copies(desk_b)), timeout=10)
            assert {r.get(11) for r in copies(dc_sub)} == {b_order}  # subaccount 1: desk-b
            assert dc1.rejected == [] and dc_sub.rejected == []  # valid FIX 4.4 to a QuickFIX client

            # a drop-copy client cannot trade
            sent = dc1.new_order(TICKER, "1", D(1), D("0.30"))
            refusal = await dc1.wait_for(lambda r: r.get(11) == sent or r.get(379) == sent)
            assert refusal.msg_type in ("j", "8") and (refusal.msg_type == "j" or refusal.get(150) == "8")
            assert all(o.key != sent and o.cl_ord_id != sent for o in engine.book.orders.values())

        # dc-late was never logged on: its copies wait, and arrive when it logs on
        late = oms_for(config, "dc-late", tmp_path / "dc-late")
        await late.start()
        try:
            await late.wait_logged_on()
            await wait_until(lambda: len(copies(late)) == len(desk_reports), timeout=10)
            assert [body(r) for r in copies(late)] == [body(r) for r in copies(dc1)]
        finally:
            await late.stop()
