"""A gateway around a real engine, its OMS clients, and the checks the gateway tests share."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from fixengine.config import EngineConfig, RestConfig, SessionConfig
from fixengine.engine import Engine
from fixengine.fix.framing import FrameReader, encode, parse
from fixengine.fix.timestamps import utc_timestamp
from fixengine.gateway.service import Gateway
from fixengine.oms_client import OmsClient
from fixengine.orders.wire import first_values
from tests.helpers.sessions import unused_port

TICKER = "KXGATE-26DEC31-T50"


def gateway_config(data_dir: Path, *sessions: SessionConfig, clients: list[dict[str, Any]] | None = None,
                   **settings: Any) -> EngineConfig:
    """An engine with a gateway; by default one OMS client, ``desk``, on a free port, trading
    through the first session, entitled to everything."""
    if clients is None:
        clients = [oms_client_entry("desk", "OMS1", sessions[0].name)]
    return EngineConfig.model_validate({
        "data_dir": data_dir, "sessions": [s.model_dump() for s in sessions], "gateway": {},
        "oms_client": clients, **settings,
    })


def reconciled(sim: Any) -> RestConfig:
    """Reconciliation against the simulator's REST API at every logon (none periodic)."""
    return RestConfig(base_url=sim.rest_url, reconcile_interval=0, staleness_timeout=10)


def oms_client_entry(name: str, sender: str, session: str, **entitlements: Any) -> dict[str, Any]:
    entry = dict(name=name, sender_comp_id=sender, target_comp_id="FIXENGINE", port=unused_port(), session=session,
                 max_quantity="1000", max_notional="1000", may_mass_cancel=True)
    entry.update(entitlements)
    return entry


@contextlib.asynccontextmanager
async def running_gateway(config: EngineConfig) -> AsyncIterator[tuple[Engine, Gateway]]:
    """The engine and its gateway, started as ``fixengine serve`` starts them; stopped after."""
    engine = Engine(config)
    gateway = Gateway(config, engine)
    await engine.start()
    try:
        gateway.start()
        yield engine, gateway
    finally:
        await engine.stop()
        await gateway.stop()


def oms_for(config: EngineConfig, client: str, store_dir: Path) -> OmsClient:
    c = config.oms_client(client)
    return OmsClient(host="127.0.0.1", port=c.port, sender_comp_id=c.sender_comp_id,
                     target_comp_id=c.target_comp_id, store_dir=store_dir, heartbeat_interval=5)


@contextlib.asynccontextmanager
async def oms_logged_on(config: EngineConfig, client: str, store_dir: Path) -> AsyncIterator[OmsClient]:
    oms = oms_for(config, client, store_dir)
    await oms.start()
    try:
        await oms.wait_logged_on()
        yield oms
    finally:
        await oms.stop()


def oms_differences(oms: OmsClient, sim: Any) -> list[str]:
    """Where the OMS's own book and the exchange disagree, order by order."""
    found = []
    for order in oms.orders.values():
        if order.order_id is None or order.order_id == "NONE":
            continue
        theirs = sim.exchange.order(order.order_id)
        status = "4" if theirs.status.value == "C" else theirs.status.value  # Kalshi reports an expiry as 150=4
        expected = (status, theirs.cum_qty, theirs.leaves_qty)
        mine = (order.ord_status, order.cum_qty, order.leaves_qty)
        if mine != expected:
            found.append(f"{order.cl_ord_id}: OMS {mine} vs exchange {expected}")
    return found


async def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Yield to the loop until ``condition`` holds (something the loop does on an event no test
    can subscribe to), failing after ``timeout``."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"condition not met within {timeout}s")
        await asyncio.sleep(0.005)


class RawOms:
    """A FIX 4.4 OMS over a bare socket, for what a QuickFIX client hides (it drops resent copies
    it has already seen): logs on with a given MsgSeqNum and reads every message as it comes."""

    def __init__(self, port: int, sender: str, target: str, timeout: float = 10.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sender, self.target = sender, target
        self.frames = FrameReader()
        self.seq = 0

    def send(self, msg_type: str, fields: list[tuple[int, str]], seq: int | None = None) -> None:
        self.seq = seq if seq is not None else self.seq + 1
        header = [(35, msg_type), (34, str(self.seq)), (49, self.sender),
                  (52, utc_timestamp(datetime.now(timezone.utc))), (56, self.target)]
        self.sock.sendall(encode("FIX.4.4", header + fields))

    def read(self) -> dict[int, str]:
        while (message := self.frames.next_message()) is None:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("the gateway closed the connection")
            self.frames.feed(chunk)
        return first_values(parse(message))

    def close(self) -> None:
        self.sock.close()
