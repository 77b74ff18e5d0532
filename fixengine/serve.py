"""``fixengine serve``: the engine and the OMS gateway as one long-running service."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from fixengine.admin.server import AdminServer
from fixengine.config import EngineConfig
from fixengine.engine import Engine
from fixengine.errors import FixEngineError, JournalWriteError
from fixengine.gateway.service import Gateway
from fixengine.heap import HeapKeeper
from fixengine.orders.entry import OrderEntryHalted

log = logging.getLogger("fixengine.serve")


def listening_line(config: EngineConfig, ports: list[int], admin_url: str | None = None) -> str:
    """The one line that says where the service listens."""
    assert config.gateway is not None
    clients = ", ".join(
        f"{c.name} ({c.sender_comp_id}->{c.target_comp_id} on {c.port}, "
        f"{'drop copy' if c.drop_copy is not None else 'via ' + str(c.session)})" for c in config.oms_clients
    )
    where = ", ".join(f"{config.gateway.host}:{p}" for p in ports)
    admin = f"; status and admin at {admin_url}" if admin_url else ""
    return f"fixengine serve: OMS gateway listening on {where}{admin}; clients: {clients}"


async def serve(config: EngineConfig, stop: asyncio.Event, announce: Callable[[str], None] = print, *,
                reload: asyncio.Event | None = None, read_config: Callable[[], EngineConfig] | None = None,
                hurry: asyncio.Event | None = None) -> None:
    """Run the Kalshi sessions and the OMS gateway until ``stop`` is set, then stop: readiness
    false (the admin endpoint's ``stopping``), new orders refused and what is in flight given
    ``[gateway] shutdown_grace`` seconds to be answered (``_wind_down``; none if ``hurry`` is set: a
    second SIGTERM), the OMS sessions logged out (each has had an answer to what it sent), then
    the Kalshi sessions (a report that still comes is journaled and kept for the OMS's next logon),
    and the journals closed. If order entry halts (its journal cannot be written), the same stop
    follows, and ``JournalWriteError`` says why once it is done. The heap is kept frozen while it runs (``HeapKeeper``): no full garbage collection walks
    the book while orders wait. Each time ``reload`` is set (SIGHUP), the session map
    is read again (``read_config``) and applied without disconnecting anyone (``Gateway.reload``)."""
    engine = Engine(config)
    gateway = Gateway(config, engine)
    admin = AdminServer(config, engine, gateway, stopping=stop.is_set)  # reads the token: a bad file stops us here
    heap = HeapKeeper()
    engine.observe(lambda event: stop.set() if isinstance(event, OrderEntryHalted) else None)
    await engine.start()
    heap.start()
    try:
        gateway.start()  # same turn as engine.start(): no report can come in between
        url = await admin.start()
        announce(listening_line(config, gateway.ports, url))
        while not stop.is_set():
            waits = [asyncio.ensure_future(stop.wait())] + ([asyncio.ensure_future(reload.wait())] if reload else [])
            _, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()
            if reload is not None and reload.is_set() and not stop.is_set():
                reload.clear()
                _reload(gateway, read_config)
        await _wind_down(gateway, config.gateway.shutdown_grace if config.gateway else 0.0, hurry)
        log.info("stopping: logging out the OMSs, then Kalshi")
        await gateway.log_out_clients()
    finally:
        heap.stop()
        await engine.stop()
        await gateway.stop()
        await admin.stop()
        log.info("garbage collection while serving: %s", heap.pauses.summary())
    if engine.halted is not None:
        raise JournalWriteError(f"stopped because order entry halted: {engine.halted}")


async def _wind_down(gateway: Gateway, grace: float, hurry: asyncio.Event | None) -> None:
    """New orders refused, then up to ``grace`` seconds for what is in flight to be answered by
    Kalshi (sooner if ``hurry`` is set: a second SIGTERM)."""
    gateway.drain()
    if not gateway.in_flight():
        return
    log.info("stopping: new orders refused; waiting up to %.0fs for %d requests in flight", grace, gateway.in_flight())
    waits = [asyncio.ensure_future(gateway.settled())] + ([asyncio.ensure_future(hurry.wait())] if hurry else [])
    done, pending = await asyncio.wait(waits, timeout=grace, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    if gateway.in_flight():
        log.warning("stopping with %d requests still unanswered by Kalshi (%s)", gateway.in_flight(),
                    "second signal" if hurry is not None and hurry.is_set() else f"{grace:.0f}s grace passed")


def _reload(gateway: Gateway, read_config: Callable[[], EngineConfig] | None) -> None:
    if read_config is None:
        return
    try:
        config = read_config()
    except FixEngineError as exc:
        log.error("reload: the config has problems; nothing changed:\n%s", exc)
        return
    for line in gateway.reload(config) or ["nothing changed"]:
        log.info("reload: %s", line)
