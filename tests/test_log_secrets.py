"""No secret in any log: a real ``fixengine --log-format json -v serve`` signs its Kalshi Logon,
signs REST requests for reconciliation, reads an admin token and serves an OMS whose Logon carries
554 Password and which places an order; then every file the run left (the engine's and the
gateway's message logs and stores, journals, the simulator's logs, the admin audit) and the
process's standard output and error are searched for the private key, the signatures actually
sent, the password and the token.

The signatures are random (RSA-PSS), so they are read off the wire: the engine reaches the
simulator's FIX and REST listeners through a recording TCP relay (plain TCP, as a local test
session runs). Nothing in the product knows about it."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import socket
import subprocess
import sys
import threading
from datetime import datetime, timezone
from decimal import Decimal as D
from pathlib import Path

import httpx

from fixengine.fix.framing import FrameReader, parse
from fixengine.fix.timestamps import utc_timestamp
from fixengine.orders.wire import first_values
from simulator.config import MarketEntry, SeedOrder
from tests.helpers.gateway import TICKER, RawOms
from tests.helpers.sessions import unused_port

PASSWORD = "Oms-Pa55word-7f3e9c1a"
ADMIN_TOKEN = "admin-token-5d1b8e0c2a4f"


class RecordingRelay:
    """A TCP relay on a loopback port to ``upstream``: what clients send is kept (``sent``)."""

    def __init__(self, upstream_port: int):
        self.upstream_port = upstream_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._sent = bytearray()
        self._sockets: list[socket.socket] = []
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    @property
    def sent(self) -> bytes:
        with self._lock:
            return bytes(self._sent)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            with self._lock:
                self._sockets += [client, upstream]
            for source, sink, record in ((client, upstream, True), (upstream, client, False)):
                thread = threading.Thread(target=self._pump, args=(source, sink, record), daemon=True)
                self._threads.append(thread)
                thread.start()

    def _pump(self, source: socket.socket, sink: socket.socket, record: bool) -> None:
        try:
            while chunk := source.recv(65536):
                if record:
                    with self._lock:
                        self._sent += chunk
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        # shutdown, not just close: it wakes a thread blocked in accept() or recv() on the socket.
        with self._lock:
            sockets = [self._listener, *self._sockets]
        for s in sockets:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for thread in self._threads:
            thread.join(timeout=5)
            assert not thread.is_alive(), f"relay thread {thread.name} did not end"
        for s in sockets:
            s.close()


def private_file(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")
    path.chmod(0o600)
    return path


def serve_config(tmp_path: Path, key, fix_port: int, rest_port: int, oms_port: int,  # type: ignore[no-untyped-def]
                 password_file: Path, token_file: Path) -> Path:
    path = tmp_path / "serve.toml"
    path.write_text(f"""
data_dir = "{tmp_path / 'serve'}"

[[session]]
name = "kalshi"
host = "127.0.0.1"
port = {fix_port}
tls = false
dialect = "fixt11"
session_type = "KalshiNR"
api_key_id = "{key.key_id}"
private_key_file = "{key.private_key_file}"
heartbeat_interval = 5
reconnect_interval = 1

[session.logon]
reset_seq_num = true

[rest]
base_url = "http://127.0.0.1:{rest_port}/trade-api/v2"
reconcile_interval = 0
staleness_timeout = 10

[gateway]
host = "127.0.0.1"

[admin]
host = "127.0.0.1"
port = 0
token_file = "{token_file}"

[[oms_client]]
name = "desk"
sender_comp_id = "DESK"
target_comp_id = "FIXENGINE"
port = {oms_port}
session = "kalshi"
max_quantity = "1000"
max_notional = "1000"
password_file = "{password_file}"
""")
    return path


def logon_signatures(sent: bytes) -> list[str]:
    """RawData (96) of every Logon in a client's byte stream."""
    frames, found = FrameReader(), []
    frames.feed(sent)
    while (message := frames.next_message()) is not None:
        fields = first_values(parse(message))
        if fields.get(35) == "A" and 96 in fields:
            found.append(fields[96])
    return found


def rest_signatures(sent: bytes) -> list[str]:
    return [m.decode() for m in re.findall(rb"(?im)^kalshi-access-signature:\s*([^\r\n]+)", sent)]


def trade_through_the_gateway(port: int) -> str:
    """As an OMS: log on with a password, buy 2 against the resting sells, wait for the fill, log
    out. Returns the order's ClOrdID."""
    oms = RawOms(port, "DESK", "FIXENGINE", timeout=30)
    try:
        oms.send("A", [(98, "0"), (108, "30"), (553, "DESK"), (554, PASSWORD)], seq=1)
        assert oms.read()[35] == "A"
        cl_ord_id = "secret-test-1"
        oms.send("D", [(11, cl_ord_id), (55, TICKER), (54, "1"), (60, utc_timestamp(datetime.now(timezone.utc))),
                       (38, "2"), (40, "2"), (44, "0.60")])
        while True:
            report = oms.read()
            if report.get(35) == "8" and report.get(11) == cl_ord_id and report.get(39) in ("2", "8", "4"):
                break
        assert (report[39], D(report[14])) == ("2", D(2)), report
        oms.send("5", [])
        while oms.read().get(35) != "5":
            pass
        return cl_ord_id
    finally:
        oms.close()


async def test_no_secret_reaches_any_log_and_json_lines_carry_the_order(tmp_path, make_key, start_simulator) -> None:
    key = make_key()
    sim, _ = start_simulator([key.account()], markets=[MarketEntry(ticker=TICKER)], rest_port=0,
                             seed_orders=[SeedOrder(ticker=TICKER, side="sell_yes", price=D("0.55"), quantity=D(100))])
    fix_relay, rest_relay = RecordingRelay(sim.ports["KalshiNR"]), RecordingRelay(sim.rest_port)
    secrets_dir = tmp_path / "secrets"
    password_file = private_file(secrets_dir / "desk.password", PASSWORD)
    token_file = private_file(secrets_dir / "admin.token", ADMIN_TOKEN)
    oms_port = unused_port()
    config = serve_config(tmp_path, key, fix_relay.port, rest_relay.port, oms_port, password_file, token_file)
    stderr_path = tmp_path / "serve.stderr"
    with stderr_path.open("w") as stderr:
        proc = subprocess.Popen([sys.executable, "-m", "fixengine", "--log-format", "json", "-v", "serve", "--config",
                                 str(config)], stdout=subprocess.PIPE, stderr=stderr, text=True, cwd=tmp_path)
    try:
        line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 60)  # type: ignore[union-attr]
        assert "listening on" in line, line + stderr_path.read_text()
        admin_url = re.search(r"admin at (http://\S+?);", line)
        assert admin_url, line
        cl_ord_id = await asyncio.to_thread(trade_through_the_gateway, oms_port)
        async with httpx.AsyncClient(timeout=10) as http:  # the token travels, and is used
            found = await http.get(f"{admin_url.group(1)}/admin/cl-ord-id/desk/{cl_ord_id}",
                                   headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        assert found.status_code == 200, found.text
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(asyncio.to_thread(proc.wait), 60) == 0, stderr_path.read_text()[-3000:]
        stdout = line + proc.stdout.read()  # type: ignore[union-attr]
    finally:
        if proc.poll() is None:
            proc.kill()
        fix_relay.close()
        rest_relay.close()

    signatures = logon_signatures(fix_relay.sent)
    assert signatures, "the engine's Logon never went through the relay"
    rest_signed = rest_signatures(rest_relay.sent)
    assert rest_signed, "no signed REST request went through the relay (reconciliation)"
    pem_lines = [s for s in key.private_key_file.read_text().splitlines() if s and not s.startswith("-----")]
    secrets = {"the private key": pem_lines, "the Logon signature (96)": signatures,
               "a REST signature": rest_signed, "the OMS password (554)": [PASSWORD], "the admin token": [ADMIN_TOKEN]}

    # Everything the run left, but the secrets' own files (the keys and secrets directories).
    written = {p: p.read_bytes() for p in sorted(tmp_path.rglob("*"))
               if p.is_file() and not p.is_relative_to(secrets_dir) and not p.is_relative_to(key.private_key_file.parent)}
    written[Path("<stdout>")] = stdout.encode()
    log_dir = tmp_path / "serve" / "log"
    assert {log_dir / "kalshi.messages.log", log_dir / "oms-desk.messages.log", stderr_path} <= written.keys()
    leaks = [f"{what} in {path}" for path, data in written.items() for what, values in secrets.items()
             if any(value.encode() in data for value in values)]
    assert leaks == []
    # The Logons are in the audit logs, redacted (not merely missing).
    assert b"|35=A|" in written[log_dir / "kalshi.messages.log"] and b"|96=<redacted>|" in written[log_dir / "kalshi.messages.log"]
    assert b"|554=<redacted>|" in written[log_dir / "oms-desk.messages.log"]

    lines = stderr_path.read_text().splitlines()
    records = [json.loads(text) for text in lines]
    assert records and all(isinstance(r, dict) and {"time", "level", "logger", "message"} <= r.keys() for r in records)
    assert any(r.get("oms_session") == "desk" and r.get("oms_cl_ord_id") == cl_ord_id for r in records)
