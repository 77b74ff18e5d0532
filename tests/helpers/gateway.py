"""A gateway around a real engine, its OMS clients, and the checks the gateway tests share."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import ssl
import subprocess
import sys
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
    settings.setdefault("admin", {"port": 0})  # tests run side by side: any free port
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


def oms_for(config: EngineConfig, client: str, store_dir: Path, *, password: str | None = None) -> OmsClient:
    c = config.oms_client(client)
    return OmsClient(host="127.0.0.1", port=c.port, sender_comp_id=c.sender_comp_id,
                     target_comp_id=c.target_comp_id, store_dir=store_dir, heartbeat_interval=5, password=password)


def write_password(path: Path, password: str) -> Path:
    """A password file as the gateway wants it: readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(password + "\n")
    path.chmod(0o600)
    return path


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

    def __init__(self, port: int, sender: str, target: str, timeout: float = 10.0,
                 context: ssl.SSLContext | None = None):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        if context is not None:  # TLS, as the gateway's [gateway] tls_* ask
            self.sock = context.wrap_socket(self.sock, server_hostname="127.0.0.1")
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


# --- fixengine serve as a process of its own ----------------------------------------------------

_SERVE = """
import asyncio, json, logging, signal, sys
from fixengine.config import EngineConfig
from fixengine.serve import serve

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)

async def main() -> None:
    config = EngineConfig.model_validate(json.loads(open(sys.argv[1]).read()))
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await serve(config, stop, announce=lambda line: print(line, flush=True))

asyncio.run(main())
"""


class ServeProcess:
    """``fixengine serve`` (the engine and its gateway, as ``fixengine.serve.serve`` runs them) in a
    child process, its log (INFO) in ``log_path``: for what a test measures of the service alone,
    such as its memory."""

    def __init__(self, config: EngineConfig, tmp_path: Path):
        path = tmp_path / "serve.json"
        path.write_text(config.model_dump_json(by_alias=True))
        self.log_path = tmp_path / "serve.log"
        with self.log_path.open("w") as log_file:
            self.proc = subprocess.Popen([sys.executable, "-c", _SERVE, str(path)], stdout=subprocess.PIPE,
                                         stderr=log_file, text=True, cwd=os.getcwd())

    async def listening(self, timeout: float = 30.0) -> None:
        line = await asyncio.wait_for(asyncio.to_thread(self.proc.stdout.readline), timeout)  # type: ignore[union-attr]
        assert "listening on" in line, line + self.log()

    def rss(self) -> int:
        """The process's resident memory now, bytes (VmRSS in /proc/PID/status)."""
        with open(f"/proc/{self.proc.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        raise AssertionError(f"no VmRSS for process {self.proc.pid}")

    def log(self) -> str:
        return self.log_path.read_text()

    async def stop(self, timeout: float = 60.0) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            return await asyncio.wait_for(asyncio.to_thread(self.proc.wait), timeout)
        except TimeoutError:
            self.proc.kill()
            raise
