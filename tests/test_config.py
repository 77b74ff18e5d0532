"""Config loading: the example files, and every Kalshi rule as a readable problem naming the field."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from fixengine.config import check_config, load_config
from fixengine.errors import ConfigError
from fixengine.kalshi.signing import write_keypair

CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"

SESSION = """
[[session]]
name = "s"
host = "{host}"
port = {port}
tls = {tls}
dialect = "{dialect}"
session_type = "{session_type}"
api_key_id = "{key_id}"
private_key_file = "key.pem"
heartbeat_interval = {hb}
"""

KEY_ID = "8a3e7c1e-3333-4000-8000-000000000001"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "engine.toml"
    path.write_text(textwrap.dedent(text))
    return path


def session(**kw: object) -> str:
    values = dict(
        host="fix.demo.kalshi.co", port=8228, tls="true", dialect="fixt11", session_type="KalshiNR", key_id=KEY_ID, hb=30
    )
    values.update(kw)
    return SESSION.format(**values)


def problems_of(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    return [str(p) for p in info.value.problems]


def test_example_configs_have_valid_structure() -> None:
    for name in ("local.toml", "kalshi-demo.toml", "kalshi-prod.toml"):
        config = load_config(CONFIG_DIR / name)
        assert config.sessions
    prod = load_config(CONFIG_DIR / "kalshi-prod.toml")
    assert prod.sessions[0].kalshi_host and prod.sessions[0].tls


def test_local_config_checks_ok_because_its_keys_are_generated() -> None:
    assert check_config(CONFIG_DIR / "local.toml") == []


def test_demo_config_checks_ok_once_its_key_is_in_the_environment(tmp_path, monkeypatch) -> None:
    write_keypair(tmp_path / "k.pem", tmp_path / "k.pub.pem")
    monkeypatch.delenv("KALSHI_DEMO_PRIVATE_KEY", raising=False)
    missing = check_config(CONFIG_DIR / "kalshi-demo.toml")
    assert [str(p) for p in missing] == [
        "session[0].private_key_env: environment variable KALSHI_DEMO_PRIVATE_KEY is not set or empty (expected a PEM private key)"
    ]
    monkeypatch.setenv("KALSHI_DEMO_PRIVATE_KEY", (tmp_path / "k.pem").read_text())
    assert check_config(CONFIG_DIR / "kalshi-demo.toml") == []


def test_valid_kalshi_session(tmp_path) -> None:
    config = load_config(write(tmp_path, session()))
    s = config.sessions[0]
    assert s.target_comp_id == "KalshiNR" and s.sender_comp_id == KEY_ID
    assert s.private_key_file == tmp_path / "key.pem"  # relative to the config file
    assert config.store_path == tmp_path / "var" / "store" and config.log_path == tmp_path / "var" / "log"


def test_store_and_log_paths(tmp_path) -> None:
    config = load_config(write(tmp_path, 'store_dir = "st"\nlog_dir = "/tmp/fe-logs"\n' + session()))
    assert config.store_path == tmp_path / "st" and config.log_path == Path("/tmp/fe-logs")


@pytest.mark.parametrize(
    "text, expected",
    [
        (session(tls="false"), "session[0]: tls must be true for fix.demo.kalshi.co: Kalshi accepts only TLS 1.2+"),
        (session(dialect="fix44"), "session[0]: dialect must be fixt11 for fix.demo.kalshi.co"),
        (session(hb=3), "session[0]: heartbeat_interval must be greater than 3 seconds for fix.demo.kalshi.co (got 3)"),
        (session(port=8229), "session[0]: port 8229 does not serve KalshiNR on Kalshi; KalshiNR is on port 8228"),
        (session(key_id="my-key"), "session[0]: api_key_id must be a Kalshi API key id (a UUID), got 'my-key'"),
        (session(session_type="KalshiXX"), "session[0].session_type: Input should be 'KalshiNR'"),
        (session(dialect="fix42"), "session[0].dialect: Input should be 'fix44' or 'fixt11'"),
        (session(port=70000), "session[0].port: Input should be less than or equal to 65535"),
        (session() + "\n[session.logon]\nreset_seq_num = false\n", "logon.reset_seq_num must be true on KalshiNR"),
        (session() + "\n[session.logon]\nlistener = true\n", "logon.listener (20126) requires logon.skip_pending_exec_reports (21011) = true"),
        (
            session() + "\n[session.logon]\nlistener = true\nskip_pending_exec_reports = true\ncancel_orders_on_disconnect = true\n",
            "logon.cancel_orders_on_disconnect (8013) is not allowed on a listener session (20126)",
        ),
        (session() + "\n[session.logon]\nmessage_retention_hours = 24\n", "logon.message_retention_hours (20200) applies to retransmission sessions"),
        (session(session_type="KalshiRT", port=8230) + "\n[session.logon]\nmessage_retention_hours = 96\n", "session[0].logon.message_retention_hours: Input should be less than or equal to 72"),
        (session(session_type="KalshiDC", port=8229) + "\n[session.logon]\nreceive_settlement_reports = true\n", "logon.receive_settlement_reports (20127) is not available on KalshiDC"),
        (session() + "\n[session.logon]\nuse_dollar = true\n", "session[0].logon.use_dollar: unknown setting (check the spelling)"),
        (session() + 'private_key_env = "K"\n', "session[0]: set exactly one of private_key_file or private_key_env"),
        ("", "session: required setting is missing"),
        (session() + session(), "session name 's' is used more than once"),
        (session(host="127.0.0.1", tls="false") + session(host="127.0.0.1", tls="false").replace('name = "s"', 'name = "t"'), "QuickFIX needs them distinct"),
    ],
)
def test_rule_violations_name_the_field_and_reason(tmp_path, text, expected) -> None:
    problems = problems_of(tmp_path, text)
    assert any(expected in p for p in problems), problems


def test_every_problem_is_reported_not_just_the_first(tmp_path) -> None:
    problems = problems_of(tmp_path, session(tls="false", hb=2, port=8230))
    joined = "\n".join(problems)
    assert "tls must be true" in joined and "heartbeat_interval" in joined and "port 8230" in joined


def test_local_hosts_may_use_plain_tcp_fix44_and_short_heartbeats(tmp_path) -> None:
    config = load_config(write(tmp_path, session(host="127.0.0.1", tls="false", dialect="fix44", hb=1, port=9000, key_id="local")))
    assert not config.sessions[0].kalshi_host


def test_not_toml_and_missing_file(tmp_path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "[[session]\nname="))
    with pytest.raises(ConfigError, match="file does not exist"):
        load_config(tmp_path / "missing.toml")


def test_check_config_reports_unloadable_keys(tmp_path) -> None:
    path = write(tmp_path, session())
    assert [str(p) for p in check_config(path)] == [
        f"session[0].private_key_file: private key file {tmp_path / 'key.pem'} does not exist"
    ]
    write_keypair(tmp_path / "key.pem", tmp_path / "key.pub.pem")
    (tmp_path / "key.pem").chmod(0o644)
    assert "readable by group or others" in str(check_config(path)[0])
    (tmp_path / "key.pem").chmod(0o600)
    assert check_config(path) == []
