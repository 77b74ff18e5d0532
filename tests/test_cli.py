"""The commands as a user runs them: real subprocesses, real exit codes, real output."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"


def run(*args: str, timeout: float = 60, **kw) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, timeout=timeout, **kw)


def test_check_config_ok_and_exit_zero() -> None:
    result = run("fixengine", "check-config", str(CONFIG_DIR / "local.toml"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("local.toml: OK")


def test_check_config_lists_every_problem_and_exits_one(tmp_path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        textwrap.dedent(
            """
            [[session]]
            name = "prod"
            host = "mm.fix.elections.kalshi.com"
            port = 8228
            tls = false
            session_type = "KalshiRT"
            api_key_id = "not-a-uuid"
            private_key_file = "missing.pem"
            heartbeat_interval = 2
            """
        )
    )
    result = run("fixengine", "check-config", str(bad))
    assert result.returncode == 1
    out = result.stdout
    assert "problem(s)" in out
    for expected in ("tls must be true", "heartbeat_interval must be greater than 3", "port 8228 does not serve KalshiRT", "api_key_id must be a Kalshi API key id"):
        assert expected in out, out
    assert "Traceback" not in out + result.stderr


def test_run_with_a_bad_config_is_an_error_message_not_a_traceback(tmp_path) -> None:
    result = run("fixengine", "run", "--config", str(tmp_path / "nope.toml"))
    assert result.returncode == 1
    assert "file does not exist" in result.stderr and "Traceback" not in result.stderr


def test_keygen_writes_a_private_key_only_its_owner_can_read(tmp_path) -> None:
    result = run("fixengine", "keygen", str(tmp_path / "k.pem"))
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE((tmp_path / "k.pem").stat().st_mode) == 0o600
    assert (tmp_path / "k.pub.pem").read_text().startswith("-----BEGIN PUBLIC KEY-----")
    again = run("fixengine", "keygen", str(tmp_path / "k.pem"))
    assert again.returncode == 1 and "already exists" in again.stderr


def test_simulator_prints_where_it_listens_and_stops_on_sigterm(tmp_path) -> None:
    config = tmp_path / "sim.toml"
    config.write_text('data_dir = "var"\n[listeners]\nKalshiNR = 0\nfix44 = 0\n')
    proc = subprocess.Popen(
        [sys.executable, "-m", "simulator", "--config", str(config)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("fixengine-simulator listening on 127.0.0.1 (plain TCP): KalshiNR="), line
        assert "fix44=" in line
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


def test_quick_start_demo_logs_on_in_both_dialects_and_out_cleanly() -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    result = run("fixengine", "demo", timeout=120, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    for session in ("nr-fixt11", "nr-fix44"):
        assert f"engine    {session}" in out
    assert out.count("logged on (HeartBtInt 1s, sequence numbers reset)") == 2  # KalshiNR: 141=Y
    assert "refused as expected: Invalid SenderCompID: unknown API key" in out
    assert out.count("TestRequest answered") == 2
    assert out.count("logged out by us") == 2
    # the order flow: placed, amended, filled across the two sessions, the rest cancelled
    assert "replaced: sell 8.00 YES" in out
    assert "filled: buy 5.00 YES" in out and "as taker, fee $0.09" in out
    assert "canceled: sell 5.00 YES" in out
    assert "done:" in out and "Traceback" not in result.stderr


def test_run_with_the_embedded_simulator_logs_on_and_out_on_sigint(tmp_path) -> None:
    (tmp_path / "sim.toml").write_text('data_dir = "var/sim"\n[listeners]\nKalshiNR = 0\nfix44 = 0\n')
    local = (CONFIG_DIR / "local.toml").read_text()
    local = local.replace('data_dir = "../var/local"', 'data_dir = "var"').replace('config = "simulator.toml"', 'config = "sim.toml"')
    local = local.replace("../var/local/keys/", "keys/")
    (tmp_path / "local.toml").write_text(local)
    proc = subprocess.Popen(
        [sys.executable, "-m", "fixengine", "run", "--config", str(tmp_path / "local.toml")],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        assert proc.stdout is not None
        logged_on: set[str] = set()
        for line in proc.stdout:
            if "logged on" in line:
                logged_on.add(line.split("fixengine.engine: ")[1].split(":")[0])
            if logged_on == {"kalshi-nr", "kalshi-nr-fix44"}:
                break
        assert logged_on == {"kalshi-nr", "kalshi-nr-fix44"}
        proc.send_signal(signal.SIGINT)
        rest = proc.communicate(timeout=30)[0]
        assert proc.returncode == 0, rest
        assert rest.count("logged out by us") == 2, rest
    finally:
        if proc.poll() is None:
            proc.kill()
    assert stat.S_IMODE((tmp_path / "keys" / "kalshi-nr.pem").stat().st_mode) == 0o600
