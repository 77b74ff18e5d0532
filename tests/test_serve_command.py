"""``fixengine serve`` as a user runs it: a real process with the embedded simulator, an OMS trading
through it, a client added by SIGHUP without disconnecting the first, a clean stop on SIGTERM."""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import sys
import time
from decimal import Decimal as D
from pathlib import Path

import httpx

from fixengine.oms_client import OmsClient
from tests.helpers.gateway import wait_until
from tests.helpers.sessions import unused_port

CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"
TICKER = "KXHIGHNY-26NOV22-T45"  # config/simulator.toml's market, with resting sells at 0.55


def local_config(tmp_path: Path, port: int) -> Path:
    """config/local.toml in ``tmp_path``: its own data, the simulator on free ports, desk-a and
    desk-b on ``port``."""
    sim = (CONFIG_DIR / "simulator.toml").read_text().replace('data_dir = "../var/simulator"', 'data_dir = "var/sim"')
    (tmp_path / "sim.toml").write_text(re.sub(r"(?m)^(Kalshi[A-Z]+|fix44) = \d+", r"\1 = 0", sim))
    local = (CONFIG_DIR / "local.toml").read_text()
    local = local.replace('data_dir = "../var/local"', 'data_dir = "var"').replace('config = "simulator.toml"', 'config = "sim.toml"')
    local = local.replace("../var/local/", "var/").replace("port = 9876", f"port = {port}").replace("port = 8280", "port = 0")
    path = tmp_path / "local.toml"
    path.write_text(local)
    return path


def oms(port: int, sender: str, store: Path) -> OmsClient:
    return OmsClient(host="127.0.0.1", port=port, sender_comp_id=sender, target_comp_id="FIXENGINE", store_dir=store)


async def test_serve_trades_adds_a_client_on_sighup_and_stops_cleanly(tmp_path) -> None:
    port, new_port = unused_port(), unused_port()
    config = local_config(tmp_path, port)
    log_path = tmp_path / "serve.log"
    with log_path.open("w") as log_file:
        proc = subprocess.Popen([sys.executable, "-m", "fixengine", "serve", "--config", str(config)],
                                stdout=subprocess.PIPE, stderr=log_file, text=True, cwd=tmp_path)
    desk_a = oms(port, "DESK_A", tmp_path / "oms-a")
    desk_c = oms(new_port, "DESK_C", tmp_path / "oms-c")
    try:
        line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 60)  # type: ignore[union-attr]
        assert f"listening on 127.0.0.1:{port}" in line and "desk-a (DESK_A->FIXENGINE" in line, line
        await desk_a.start()
        await desk_a.wait_logged_on(timeout=20)
        bought = desk_a.new_order(TICKER, "1", D(2), D("0.60"))
        await desk_a.wait_for(lambda r: desk_a.order(bought).done, timeout=20)
        assert (desk_a.order(bought).ord_status, desk_a.order(bought).cum_qty) == ("2", D(2))

        with config.open("a") as f:
            f.write(f'\n[[oms_client]]\nname = "desk-c"\nsender_comp_id = "DESK_C"\ntarget_comp_id = "FIXENGINE"\n'
                    f'port = {new_port}\nsession = "kalshi-nr"\nmax_quantity = "10"\nmax_notional = "10"\n')
        proc.send_signal(signal.SIGHUP)
        await desk_c.start()
        await desk_c.wait_logged_on(timeout=20)
        assert desk_a.is_logged_on()
        again = desk_a.new_order(TICKER, "1", D(1), D("0.60"))  # desk-a's session went on untouched
        await desk_a.wait_for(lambda r: desk_a.order(again).done, timeout=20)

        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(asyncio.to_thread(proc.wait), 60) == 0
        log = log_path.read_text()
        assert log.count("OMS desk-a logged on") == 1, log  # never disconnected by the reload
        assert "reload: desk-c: listening on" in log and log.count("logged out by us") == 2, log
        assert "OMS desk-a logged out" in log and "Traceback" not in log
    finally:
        if proc.poll() is None:
            proc.kill()
        await desk_a.stop()
        await desk_c.stop()


def test_an_unsafe_admin_token_file_stops_serve_before_anything_logs_on(tmp_path) -> None:
    config = local_config(tmp_path, unused_port())
    token = tmp_path / "admin.token"
    token.write_text("secret\n")
    token.chmod(0o644)
    config.write_text(config.read_text().replace("port = 0\n", f'port = 0\ntoken_file = "{token}"\n', 1))
    result = subprocess.run([sys.executable, "-m", "fixengine", "serve", "--config", str(config)],
                            capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert result.returncode == 1 and "admin token file" in result.stderr and "chmod 600" in result.stderr, result.stderr
    assert "logged on" not in result.stderr and "Traceback" not in result.stderr


def test_serve_without_a_gateway_says_so(tmp_path) -> None:
    path = tmp_path / "engine.toml"
    path.write_text((CONFIG_DIR / "kalshi-demo.toml").read_text().split("[gateway]")[0].split("[[oms_client]]")[0])
    result = subprocess.run([sys.executable, "-m", "fixengine", "serve", "--config", str(path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "serve needs a [gateway] section" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


async def test_sigterm_with_hundreds_of_orders_in_flight_answers_each_before_the_logout(tmp_path) -> None:
    """The OMS keeps sending after the SIGTERM until the gateway refuses an order for stopping (as
    an OMS that reads its reports would): readiness goes false first, and every order the gateway
    received (its message log says which) gets its final ack, or a refusal saying the gateway is
    stopping, before the gateway logs the OMS out; exit 0 within the grace period."""
    port = unused_port()
    config = local_config(tmp_path, port)
    # Hundreds at once are within a Prestige key's write budget: none is refused for its rate.
    config.write_text(config.read_text().replace("[gateway]\n", '[gateway]\ntier = "prestige"\n', 1))
    log_path = tmp_path / "serve.log"
    with log_path.open("w") as log_file:
        proc = subprocess.Popen([sys.executable, "-m", "fixengine", "serve", "--config", str(config)],
                                stdout=subprocess.PIPE, stderr=log_file, text=True, cwd=tmp_path)
    desk = oms(port, "DESK_A", tmp_path / "oms-a")
    http = httpx.AsyncClient(timeout=5)
    try:
        line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 60)  # type: ignore[union-attr]
        assert "listening on" in line, line
        http.base_url = line.split("status and admin at ")[1].split(";")[0]
        await desk.start()
        await desk.wait_logged_on(timeout=20)
        assert (await http.get("/readyz")).status_code == 200
        for i in range(300):
            desk.new_order(TICKER, "1", D(1), D("0.30") + D(i % 15) / 100)
        proc.send_signal(signal.SIGTERM)  # while they are on their way, and more keep coming
        started = time.monotonic()

        async def not_ready() -> httpx.Response:  # the stop's first step
            while (answer := await http.get("/readyz")).status_code == 200:
                pass
            return answer
        readiness = asyncio.ensure_future(not_ready())
        def refused_for_stopping() -> bool:
            return any(r.get(39) == "8" and "stopping" in (r.get(58) or "") for r in desk.received)

        i = 0
        while not refused_for_stopping() and i < 3000:  # until the gateway says it is stopping
            desk.new_order(TICKER, "1", D(1), D("0.30") + D(i % 15) / 100)
            i += 1
            await asyncio.sleep(0.002)  # an OMS sending at its own pace, not a wait for anything
        assert refused_for_stopping(), "the gateway never refused an order for stopping"
        answer = await asyncio.wait_for(readiness, 10)
        assert answer.status_code == 503 and "stopping" in answer.json()["not_ready"][0]
        assert await asyncio.wait_for(asyncio.to_thread(proc.wait), 60) == 0
        assert time.monotonic() - started < 10 + 5  # [gateway] shutdown_grace, then the logouts
        journal = (tmp_path / "var" / "gateway" / "journal.log").read_bytes()
        assert journal.endswith(b"\n;\n"), "the gateway's journal was not committed at the stop"
        messages = (tmp_path / "var" / "log" / "oms-desk-a.messages.log").read_text()
        received = re.findall(r"< [^\n]*\|35=D\|[^\n]*\|11=([^|]+)\|", messages)
        assert len(received) > 300
        await wait_until(lambda: desk.logouts, timeout=10)
        before_logout = {r.get(11): r.get(39) for r in desk.received[: desk.logouts[0]] if r.msg_type == "8"}
        unanswered = [c for c in received if before_logout.get(c) not in ("0", "8")]
        assert unanswered == [], f"{len(unanswered)} of {len(received)} received orders not answered before the Logout"
        refused = [desk.order(c).text for c in received if desk.order(c).ord_status == "8"]
        assert refused and all("stopping" in (text or "") for text in refused), refused[:3]
        log = log_path.read_text()
        assert "Traceback" not in log
        assert log.index("OMS desk-a logged out") < log.index("kalshi-nr: logged out by us"), log  # OMSs first
    finally:
        if proc.poll() is None:
            proc.kill()
        await desk.stop()
        await http.aclose()
