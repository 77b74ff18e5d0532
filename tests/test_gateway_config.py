"""The OMS gateway's session map in the engine config: every problem named by its field path, all at once."""

from __future__ import annotations

import textwrap
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import ValidationError

from fixengine.config import EngineConfig, check_config, load_config
from fixengine.kalshi.signing import write_keypair

CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"

SESSIONS = """
data_dir = "var"

[[session]]
name = "nr"
host = "127.0.0.1"
port = 9100
tls = false
session_type = "KalshiNR"
api_key_id = "key-nr"
private_key_file = "key.pem"

[[session]]
name = "dc"
host = "127.0.0.1"
port = 9101
tls = false
session_type = "KalshiDC"
api_key_id = "key-dc"
private_key_file = "key.pem"

[[session]]
name = "listen"
host = "127.0.0.1"
port = 9102
tls = false
session_type = "KalshiRT"
api_key_id = "key-rt"
private_key_file = "key.pem"

[session.logon]
listener = true
skip_pending_exec_reports = true
"""

GATEWAY = """
[gateway]
host = "127.0.0.1"
"""

CLIENT = """
[[oms_client]]
name = "{name}"
sender_comp_id = "{sender}"
target_comp_id = "{target}"
port = {port}
session = "{session}"
max_quantity = "{max_quantity}"
max_notional = "{max_notional}"
ticker_pattern = '{pattern}'
{extra}
"""


def client(**kw: object) -> str:
    values: dict[str, object] = {
        "name": "a", "sender": "OMS_A", "target": "GW", "port": 9876, "session": "nr",
        "max_quantity": "100", "max_notional": "50", "pattern": "^KX.*", "extra": "",
    }
    values.update(kw)
    return CLIENT.format(**values)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "engine.toml"
    path.write_text(textwrap.dedent(text))
    if not (tmp_path / "key.pem").exists():
        write_keypair(tmp_path / "key.pem", tmp_path / "key.pub.pem")
    return path


def problems(tmp_path: Path, text: str) -> list[str]:
    return [str(p) for p in check_config(write(tmp_path, text))]


def test_valid_map_loads_and_checks_ok(tmp_path) -> None:
    text = SESSIONS + GATEWAY + client() + client(
        name="b", sender="OMS_B", subaccount=None, extra='subaccount = 63\nmessage_types = ["D", "F"]\nmay_mass_cancel = false'
    )
    path = write(tmp_path, text)
    assert check_config(path) == []
    config = load_config(path)
    a, b = config.oms_clients
    assert (a.sender_comp_id, a.target_comp_id, a.port, a.session) == ("OMS_A", "GW", 9876, "nr")
    assert a.message_types == ["D", "F", "G", "q", "H", "AF"] and not a.may_mass_cancel and a.subaccount is None
    assert a.max_quantity == Decimal(100) and a.max_notional == Decimal(50)
    assert b.subaccount == 63 and b.message_types == ["D", "F"]
    assert a.allows_ticker("KXHIGHNY-26NOV22-T45") and not a.allows_ticker("HIGHNY-1")
    assert config.gateway is not None and config.gateway.host == "127.0.0.1"
    assert config.gateway_path == tmp_path / "var" / "gateway"
    assert config.oms_client("b") is b


def test_gateway_defaults_and_relative_data_dir(tmp_path) -> None:
    config = load_config(write(tmp_path, SESSIONS + '[gateway]\ndata_dir = "gw"\n' + client()))
    assert config.gateway is not None and config.gateway.host == "127.0.0.1"
    assert config.gateway_path == tmp_path / "gw"


def test_configs_without_a_gateway_are_unchanged(tmp_path) -> None:
    config = load_config(write(tmp_path, SESSIONS))
    assert config.gateway is None and config.oms_clients == [] and config.gateway_path is None


def test_example_configs_carry_a_session_map() -> None:
    local = load_config(CONFIG_DIR / "local.toml")
    assert len(local.oms_clients) == 2 and {c.session for c in local.oms_clients} == {"kalshi-nr"}
    for name in ("kalshi-demo.toml", "kalshi-prod.toml"):
        config = load_config(CONFIG_DIR / name)
        assert config.gateway is not None and len(config.oms_clients) == 1
        assert config.session(config.oms_clients[0].session).session_type.value in ("KalshiNR", "KalshiRT")


def test_local_oms_port_on_a_simulator_listener_is_reported(tmp_path) -> None:
    text = (CONFIG_DIR / "local.toml").read_text().replace("port = 9876", "port = 8240", 1)
    path = tmp_path / "local.toml"
    path.write_text(text.replace('config = "simulator.toml"', f'config = "{CONFIG_DIR / "simulator.toml"}"'))
    found = [str(p) for p in check_config(path)]
    assert any(p.startswith("oms_client[0].port: port 8240 is also the embedded simulator's listener fix44") for p in found), found


@pytest.mark.parametrize(
    "text, expected",
    [
        (client(session="nope"), "oms_client[0].session: no [[session]] named 'nope' (sessions: 'nr', 'dc', 'listen')"),
        (client(session="dc"), "oms_client[0].session: 'dc' is a KalshiDC session; orders go on order entry"),
        (client(session="listen"), "oms_client[0].session: 'listen' is a listener session (20126)"),
        (client() + client(sender="OMS_B"), "oms_client[1].name: 'a' is already the name of oms_client[0]"),
        (client() + client(name="b"), "oms_client[1].sender_comp_id: OMS_A -> GW on port 9876 is also oms_client[0]"),
        (client() + client(name="b", port=9877), "oms_client[1].sender_comp_id: OMS_A -> GW is also oms_client[0] (port 9876)"),
        (client(pattern="^KX[("), "oms_client[0].ticker_pattern: not a valid regular expression"),
        (client(max_quantity="0"), "oms_client[0].max_quantity: Input should be greater than 0"),
        (client(max_notional="-5"), "oms_client[0].max_notional: Input should be greater than 0"),
        (client(max_notional="NaN"), "oms_client[0].max_notional:"),
        (client(extra="subaccount = 64"), "oms_client[0].subaccount: Input should be less than or equal to 63"),
        (client(extra="subaccount = -1"), "oms_client[0].subaccount: Input should be greater than or equal to 0"),
        (client(extra='message_types = ["D", "8"]'), "oms_client[0].message_types: '8' not supported"),
        (client(extra='message_types = ["D", "D"]'), "oms_client[0].message_types: 'D' listed more than once"),
        (client(extra="message_types = []"), "oms_client[0].message_types: List should have at least 1 item"),
        (client(extra='message_types = ["D"]\nmay_mass_cancel = true'), "oms_client[0]: may_mass_cancel = true needs \"q\""),
        (client(port=0), "oms_client[0].port: Input should be greater than or equal to 1"),
        (client(sender="OMS A"), "oms_client[0].sender_comp_id: String should match pattern"),
        (client(extra='max_qty = "5"'), "oms_client[0].max_qty: unknown setting (check the spelling)"),
    ],
)
def test_each_problem_names_its_field(tmp_path, text, expected) -> None:
    found = problems(tmp_path, SESSIONS + GATEWAY + text)
    assert any(p.startswith(expected) for p in found), found


def test_same_pair_on_different_ports_is_fine_when_pairs_differ(tmp_path) -> None:
    text = SESSIONS + GATEWAY + client() + client(name="b", target="GW2") + client(name="c", sender="OMS_C", port=9877)
    assert problems(tmp_path, text) == []


def test_clients_and_gateway_require_each_other(tmp_path) -> None:
    assert problems(tmp_path, SESSIONS + client()) == ["oms_client: [[oms_client]] needs a [gateway] section"]
    assert problems(tmp_path, SESSIONS + GATEWAY) == ["gateway: [gateway] has no [[oms_client]]: it would listen on no port"]


def test_every_problem_of_a_file_is_reported_together(tmp_path) -> None:
    text = (
        SESSIONS
        + client(session="nope", pattern="(")             # no [gateway]; unknown session; bad regex
        + client(max_quantity="0", session="dc")          # duplicate name, same pair on one port, limit, not order entry
    )
    found = problems(tmp_path, text)
    for expected in (
        "oms_client: [[oms_client]] needs a [gateway] section",
        "oms_client[0].session: no [[session]] named 'nope'",
        "oms_client[0].ticker_pattern: not a valid regular expression",
        "oms_client[1].name: 'a' is already the name of oms_client[0]",
        "oms_client[1].sender_comp_id: OMS_A -> GW on port 9876 is also oms_client[0]",
        "oms_client[1].max_quantity: Input should be greater than 0",
        "oms_client[1].session: 'dc' is a KalshiDC session",
    ):
        assert any(p.startswith(expected) for p in found), (expected, found)
    assert len(found) == 7, found


def test_map_checks_without_other_errors_also_report_together(tmp_path) -> None:
    found = problems(tmp_path, SESSIONS + GATEWAY + client(session="nope") + client(session="dc"))
    assert [p.split(":")[0] for p in found] == [
        "oms_client[0].session", "oms_client[1].name", "oms_client[1].session", "oms_client[1].sender_comp_id",
    ], found


def test_programmatic_config_is_checked_too(tmp_path) -> None:
    base = load_config(write(tmp_path, SESSIONS))
    with pytest.raises(ValidationError) as info:
        EngineConfig(
            data_dir=tmp_path, sessions=base.sessions, gateway={},
            oms_client=[{"name": "a", "sender_comp_id": "X", "target_comp_id": "Y", "port": 1, "session": "zz",
                         "max_quantity": 1, "max_notional": 1}],
        )
    assert info.value.errors()[0]["loc"] == ("oms_client", 0, "session")


DROP_COPY = """
[[oms_client]]
name = "risk"
sender_comp_id = "RISK"
target_comp_id = "GW"
port = 9876
{copy}
"""


@pytest.mark.parametrize(
    "text, expected",
    [
        (client() + DROP_COPY.format(copy='drop_copy = { clients = ["nobody"] }'),
         "oms_client[1].drop_copy.clients[0]: no [[oms_client]] named 'nobody'"),
        (client() + DROP_COPY.format(copy='drop_copy = { clients = ["a"] }')
         + DROP_COPY.format(copy='drop_copy = { clients = ["risk"] }').replace('"risk"\nsender_comp_id = "RISK"', '"risk2"\nsender_comp_id = "RISK2"'),
         "oms_client[2].drop_copy.clients[0]: 'risk' is a drop-copy client itself"),
        (client() + DROP_COPY.format(copy="drop_copy = {}"), "oms_client[1].drop_copy: name at least one client or subaccount"),
        (DROP_COPY.format(copy=""), "oms_client[0]: session, max_quantity, max_notional required on an order-entry client"),
        (client(extra='allowed_addresses = ["10.0.0.0/33"]'), "oms_client[0].allowed_addresses: '10.0.0.0/33' is not an IP"),
        (client(extra='when_throttled = "drop"'), "oms_client[0].when_throttled: Input should be 'refuse' or 'queue'"),
        (client(extra='rate_share = "0"'), "oms_client[0].rate_share: Input should be greater than 0"),
    ],
)
def test_service_settings_name_their_field(tmp_path, text, expected) -> None:
    found = problems(tmp_path, SESSIONS + GATEWAY + text)
    assert any(p.startswith(expected) for p in found), found


def test_a_drop_copy_client_needs_no_session_or_limits(tmp_path) -> None:
    path = write(tmp_path, SESSIONS + GATEWAY + client(extra="subaccount = 2")
                 + DROP_COPY.format(copy="drop_copy = { clients = [\"a\"], subaccounts = [2] }"))
    assert check_config(path) == []
    risk = load_config(path).oms_client("risk")
    assert risk.session is None and risk.drop_copy is not None and risk.drop_copy.subaccounts == [2]


@pytest.mark.parametrize("where", ["admin", "password"])
def test_secret_files_readable_by_others_are_reported(tmp_path, where) -> None:
    secret = tmp_path / "secret"
    secret.write_text("hunter2\n")
    secret.chmod(0o644)
    text = SESSIONS + GATEWAY + client(extra=f'password_file = "{secret}"' if where == "password" else "")
    if where == "admin":
        text += f'\n[admin]\ntoken_file = "{secret}"\n'
    found = problems(tmp_path, text)
    field = "admin.token_file" if where == "admin" else "oms_client[0].password_file"
    assert any(p.startswith(f"{field}:") and "readable by group or others" in p and "chmod 600" in p for p in found), found
    assert not any("hunter2" in p for p in found)
    secret.chmod(0o600)
    assert problems(tmp_path, text) == []


def test_unknown_tier_is_named(tmp_path) -> None:
    found = problems(tmp_path, SESSIONS + GATEWAY.replace('host = "127.0.0.1"', 'host = "127.0.0.1"\ntier = "gold"') + client())
    assert any(p.startswith("gateway.tier: tier 'gold' is not one of") for p in found), found
