"""``fixengine serve``'s HTTP endpoint around a real engine and gateway, as the service runs it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

from fixengine.admin.server import AdminServer
from fixengine.config import EngineConfig
from fixengine.engine import Engine
from fixengine.gateway.service import Gateway
from tests.helpers.gateway import gateway_config, oms_client_entry, reconciled, running_gateway

TOKEN = "s3cret-admin-token"  # the admin bearer token of ``admin_config``


@contextlib.asynccontextmanager
async def served(config: EngineConfig) -> AsyncIterator[tuple[Engine, Gateway, AdminServer]]:
    """The engine, its gateway and the started AdminServer (``admin.url``); all stopped after."""
    async with running_gateway(config) as (engine, gateway):
        admin = AdminServer(config, engine, gateway)
        await admin.start()
        try:
            yield engine, gateway, admin
        finally:
            await admin.stop()


def admin_config(tmp_path: Path, sim: Any, desk: Any, other: Any, **settings: Any) -> EngineConfig:
    """Two Kalshi sessions (``desk-kalshi``, ``other``; reconciled at logon), two OMS clients on
    ``desk-kalshi`` (``desk``, ``desk-b``), the admin endpoint on any free port with ``TOKEN``."""
    from conformance.harness import session_to

    token = tmp_path / "admin.token"
    token.write_text(TOKEN + "\n")
    token.chmod(0o600)
    clients = [oms_client_entry("desk", "OMS1", "desk-kalshi"), oms_client_entry("desk-b", "OMS2", "desk-kalshi")]
    return gateway_config(tmp_path / "serve", session_to(sim, desk, name="desk-kalshi"), session_to(sim, other, name="other"),
                          clients=clients, rest=reconciled(sim), admin={"port": 0, "token_file": str(token)}, **settings)


@contextlib.asynccontextmanager
async def served_over_http(config: EngineConfig) -> AsyncIterator[tuple[Engine, Gateway, AdminServer, httpx.AsyncClient]]:
    """``served``, with an HTTP client on the admin URL."""
    async with served(config) as (engine, gateway, admin):
        async with httpx.AsyncClient(base_url=admin.url or "", timeout=5) as http:
            yield engine, gateway, admin, http


async def wait_ready(http: httpx.AsyncClient, timeout: float = 20.0) -> None:
    """Until ``/readyz`` answers 200 (logged on, books confirmed); fails with its reasons."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while (answer := await http.get("/readyz")).status_code != 200:
        assert loop.time() < deadline, answer.json()
        await asyncio.sleep(0.05)  # polling an HTTP endpoint: the interval, not a synchronisation
