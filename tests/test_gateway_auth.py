"""Who may log on to the OMS gateway: the password in 554, the address allow-list, the lockout after
repeated failures, client certificates over TLS. Decided by the gate before QuickFIX sees the
Logon, so a refused Logon moves no sequence number; garbage and silence are closed with the reason
logged. The rules first (``LogonCheck``, no sockets), then the gateway over real loopback sockets."""

from __future__ import annotations

import asyncio
import datetime
import logging
import socket
import ssl
import time
import uuid
from decimal import Decimal as D
from pathlib import Path

import pytest
import quickfix as fix
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from conformance.harness import session_to
from fixengine.config import OmsClientConfig
from fixengine.fix.framing import FrameReader, encode, parse
from fixengine.gateway import gate
from fixengine.gateway.acceptor import session_id
from fixengine.gateway.gate import for_quickfix, refusal
from fixengine.gateway.logon_check import BAD_CREDENTIALS, Admitted, LogonCheck, Refused
from simulator.config import MarketEntry
from tests.helpers.gateway import (
    TICKER,
    RawOms,
    gateway_config,
    oms_client_entry,
    oms_for,
    running_gateway,
    wait_until,
    write_password,
)

PASSWORD = "correct horse battery staple"
HOME = "127.0.0.1"

# --- the rules, without sockets ------------------------------------------------------------------------


def client(name: str = "desk", sender: str = "OMS1", port: int = 9000, **settings: object) -> OmsClientConfig:
    return OmsClientConfig(name=name, sender_comp_id=sender, target_comp_id="FIXENGINE", port=port, session="nr",
                           max_quantity=D(1), max_notional=D(1), **settings)  # type: ignore[arg-type]


def logon(sender: str = "OMS1", password: str | None = None) -> dict[int, str]:
    fields = {8: "FIX.4.4", 35: "A", 34: "1", 49: sender, 56: "FIXENGINE", 98: "0", 108: "30"}
    if password is not None:
        fields[554] = password
    return fields


def checker(limit: int = 3, lockout: float = 60.0, **settings: object) -> LogonCheck:
    check = LogonCheck(failed_logon_limit=limit, lockout=lockout, **settings)  # type: ignore[arg-type]
    check.serve([client(), client("open", "OMS2"), client("office", "OMS3", allowed_addresses=["10.0.0.0/8", "192.168.1.7"])],
                {"desk": PASSWORD, "open": None, "office": PASSWORD})
    return check


def test_the_right_password_is_admitted_and_a_client_without_one_takes_any() -> None:
    check = checker()
    assert check.decide(logon(password=PASSWORD), 9000, HOME, 0.0) == Admitted("desk")
    assert check.decide(logon("OMS2"), 9000, HOME, 0.0) == Admitted("open")
    assert check.decide(logon("OMS2", password="whatever"), 9000, HOME, 0.0) == Admitted("open")


def test_a_wrong_or_missing_password_is_refused_without_saying_which() -> None:
    check = checker()
    wrong = check.decide(logon(password="guess"), 9000, HOME, 0.0)
    missing = check.decide(logon(), 9000, HOME, 1.0)
    assert isinstance(wrong, Refused) and isinstance(missing, Refused)
    assert wrong.text == missing.text == BAD_CREDENTIALS and wrong.answer
    assert "wrong Password" in wrong.reason and "no Password" in missing.reason  # the log knows
    assert "guess" not in wrong.reason and PASSWORD not in wrong.reason


def test_compids_or_a_port_no_client_has_are_closed_without_an_answer() -> None:
    check = checker()
    for fields, port in [(logon("NOBODY", PASSWORD), 9000), (logon(password=PASSWORD), 9001)]:
        refused = check.decide(fields, port, HOME, 0.0)
        assert isinstance(refused, Refused) and not refused.answer and refused.text == ""
        assert "no client" in refused.reason


def test_an_address_outside_the_allow_list_is_refused_whatever_the_password() -> None:
    check = checker()
    assert check.decide(logon("OMS3", PASSWORD), 9000, "10.1.2.3", 0.0) == Admitted("office")
    assert check.decide(logon("OMS3", PASSWORD), 9000, "192.168.1.7", 0.0) == Admitted("office")
    assert check.decide(logon("OMS3", PASSWORD), 9000, "::ffff:10.9.9.9", 0.0) == Admitted("office")  # IPv4 via IPv6
    refused = check.decide(logon("OMS3", PASSWORD), 9000, "192.168.1.8", 0.0)
    assert isinstance(refused, Refused) and refused.text == BAD_CREDENTIALS
    assert "192.168.1.8 is not in its allowed_addresses" in refused.reason


def test_failures_lock_the_address_out_even_for_the_right_password_until_the_lockout_passes() -> None:
    check = checker(limit=3, lockout=60.0)
    for at in (0.0, 1.0):
        assert check.decide(logon(password="guess"), 9000, HOME, at).text == BAD_CREDENTIALS  # type: ignore[union-attr]
    third = check.decide(logon(password="guess"), 9000, HOME, 2.0)
    assert isinstance(third, Refused) and third.text == BAD_CREDENTIALS and "now locked out for 60 s" in third.reason
    locked = check.decide(logon(password=PASSWORD), 9000, HOME, 3.0)
    assert isinstance(locked, Refused) and locked.text == "locked out for 59 s" and "not checked" in locked.reason
    assert check.decide(logon(password=PASSWORD), 9000, "10.0.0.1", 3.0) == Admitted("desk")  # another address
    assert check.locked_out(HOME, 61.9) and not check.locked_out(HOME, 62.0)
    assert check.decide(logon(password=PASSWORD), 9000, HOME, 62.0) == Admitted("desk")


def test_only_failures_within_the_window_count_and_an_admission_clears_them() -> None:
    check = checker(limit=3, lockout=60.0)
    for at in (0.0, 1.0, 70.0):  # the first two are out of the window by the third
        assert check.decide(logon(password="guess"), 9000, HOME, at).text == BAD_CREDENTIALS  # type: ignore[union-attr]
    assert check.decide(logon(password=PASSWORD), 9000, HOME, 71.0) == Admitted("desk")
    for at in (72.0, 73.0):
        check.decide(logon(password="guess"), 9000, HOME, at)
    assert not check.locked_out(HOME, 74.0)  # the admission at 71 started the count again


def test_remembered_refusals_are_bounded_whatever_the_number_of_addresses() -> None:
    check = checker(limit=3, lockout=60.0, max_tracked=100)
    for n in range(1000):
        check.decide(logon(password="guess"), 9000, f"10.0.{n // 256}.{n % 256}", n / 1000)
    assert check.tracked_addresses <= 100


def test_quickfix_gets_the_gates_token_and_never_the_password() -> None:
    wire = encode("FIX.4.4", [(35, "A"), (34, "1"), (49, "OMS1"), (52, "20260101-00:00:00.000"), (56, "FIXENGINE"),
                              (98, "0"), (108, "30"), (554, PASSWORD), (141, "Y")])
    relayed = for_quickfix(parse(wire), "tok3n")
    frames = FrameReader()
    frames.feed(relayed)
    assert frames.next_message() == relayed  # BodyLength and CheckSum right
    fields = parse(relayed)
    assert (554, "tok3n") in fields and PASSWORD.encode() not in relayed
    assert [t for t, _ in fields if t != 554] == [8, 9, 35, 34, 49, 52, 56, 98, 108, 141, 10]


def test_a_refusal_is_a_logout_numbered_1_with_the_compids_swapped() -> None:
    fields = dict(parse(refusal(logon(), "logon refused: bad credentials", datetime.datetime.now(datetime.UTC))))
    assert (fields[8], fields[35], fields[34], fields[49], fields[56]) == ("FIX.4.4", "5", "1", "FIXENGINE", "OMS1")
    assert fields[58] == "logon refused: bad credentials"


# --- the gateway, over loopback ---------------------------------------------------------------------------


@pytest.fixture
def market(make_key, start_simulator):  # type: ignore[no-untyped-def]
    desk = make_key()
    sim, _ = start_simulator([desk.account()], markets=[MarketEntry(ticker=TICKER)])
    return sim, desk


def desk_config(tmp_path: Path, market, **entry: object):  # type: ignore[no-untyped-def]
    sim, desk = market
    gateway = entry.pop("gateway", {})
    clients = [oms_client_entry("desk", "OMS1", "desk-kalshi", **entry)]
    return gateway_config(tmp_path / "serve", session_to(sim, desk, name="desk-kalshi"), clients=clients,
                          gateway=gateway)


def raw_logon(raw: RawOms, seq: int, password: str | None) -> dict[int, str]:
    """Send a Logon numbered ``seq``; the gateway's first answer."""
    fields = [(98, "0"), (108, "30")] + ([(554, password)] if password is not None else [])
    raw.send("A", fields, seq=seq)
    return raw.read()


def numbers(gateway, client: str) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    """The client's session's next sender and target MsgSeqNum, as QuickFIX has them."""
    session = gateway._acceptors.lookup(client)
    return session.getExpectedSenderNum(), session.getExpectedTargetNum()


def stored_numbers(config, client: str) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    """The same, as the session's FileStore has them on disk."""
    c = config.oms_client(client)
    text = (config.gateway_path / "sessions" / f"FIX.4.4-{c.target_comp_id}-{c.sender_comp_id}.seqnums").read_text()
    sender, target = text.split(":")
    return int(sender), int(target)


async def read(raw: RawOms) -> dict[int, str]:
    return await asyncio.to_thread(raw.read)


async def idle(client: OmsClientConfig) -> None:
    """Until QuickFIX has let go of the client's last connection (it drops a second one meanwhile)."""
    await wait_until(lambda: not fix.Session.isSessionRegistered(session_id(client)))


async def closed(raw: RawOms) -> bool:
    """Whether the gateway has closed the connection (what it still sends before is skipped)."""
    try:
        while True:
            await read(raw)
    except (EOFError, ConnectionError, ssl.SSLError):
        return True


async def test_a_wrong_password_is_refused_and_moves_no_sequence_number(tmp_path, market, caplog) -> None:
    caplog.set_level(logging.INFO, "fixengine")
    config = desk_config(tmp_path, market, password_file=str(write_password(tmp_path / "desk.pw", PASSWORD)))
    async with running_gateway(config) as (engine, gateway):
        await engine.wait_logged_on()
        oms = oms_for(config, "desk", tmp_path / "oms", password=PASSWORD)
        await oms.start()
        try:
            await oms.wait_logged_on()  # the right password: the OMS client sends it as 554
            bid = oms.new_order(TICKER, "1", D(1), D("0.30"))
            await oms.wait_for(lambda r: r.get(11) == bid and r.get(150) == "0")
        finally:
            await oms.stop()
        await idle(config.oms_client("desk"))  # its Logout counted, its connection gone
        before = numbers(gateway, "desk")
        assert stored_numbers(config, "desk") == before and before[1] > 2

        for given in ("guess", None):
            raw = RawOms(config.oms_client("desk").port, "OMS1", "FIXENGINE")
            try:
                answer = await asyncio.to_thread(raw_logon, raw, before[1], given)
                assert (answer[35], answer[34], answer[49], answer[56]) == ("5", "1", "FIXENGINE", "OMS1")
                assert answer[58] == "logon refused: bad credentials"
                assert await closed(raw)
            finally:
                raw.close()
        assert numbers(gateway, "desk") == before and stored_numbers(config, "desk") == before

        # The right password again: the session goes on from where it was.
        await idle(config.oms_client("desk"))
        raw = RawOms(config.oms_client("desk").port, "OMS1", "FIXENGINE")
        try:
            answer = await asyncio.to_thread(raw_logon, raw, before[1], PASSWORD)
            assert (answer[35], int(answer[34])) == ("A", before[0])
            raw.send("5", [])
            assert (await read(raw))[35] == "5"
        finally:
            raw.close()
    log = caplog.text
    assert "wrong Password (554)" in log and "no Password (554)" in log and "admitted" in log
    assert PASSWORD not in log
    # Nor in any file the service wrote (message logs, stores, journals), only in its own file.
    for path in (tmp_path / "serve").rglob("*"):
        if path.is_file():
            assert PASSWORD.encode() not in path.read_bytes(), path


async def test_an_address_not_allowed_is_refused(tmp_path, market, caplog) -> None:
    config = desk_config(tmp_path, market, allowed_addresses=["192.0.2.0/24"])
    async with running_gateway(config) as (engine, gateway):
        raw = RawOms(config.oms_client("desk").port, "OMS1", "FIXENGINE")
        try:
            answer = await asyncio.to_thread(raw_logon, raw, 1, None)
            assert (answer[35], answer[58]) == ("5", "logon refused: bad credentials")
            assert await closed(raw)
        finally:
            raw.close()
        assert numbers(gateway, "desk") == (1, 1)
    assert "address 127.0.0.1 is not in its allowed_addresses" in caplog.text


async def test_repeated_failures_lock_the_address_out_until_the_lockout_passes(tmp_path, market) -> None:
    lockout = 2.0
    config = desk_config(tmp_path, market, password_file=str(write_password(tmp_path / "desk.pw", PASSWORD)),
                         gateway={"failed_logon_limit": 2, "lockout": lockout})
    port = config.oms_client("desk").port

    async def attempt(password: str) -> dict[int, str]:
        raw = RawOms(port, "OMS1", "FIXENGINE")
        try:
            answer = await asyncio.to_thread(raw_logon, raw, 1, password)
            if answer[35] == "A":
                raw.send("5", [])
                await read(raw)
            return answer
        finally:
            raw.close()

    async with running_gateway(config) as (engine, gateway):
        for _ in range(2):
            assert (await attempt("guess"))[58] == "logon refused: bad credentials"
        locked_at = time.monotonic()
        answer = await attempt(PASSWORD)
        assert (answer[35], answer[58]) == ("5", f"locked out for {lockout:g} s")
        # The lockout is a span of time: let it pass (nothing else to wait on).
        await asyncio.sleep(max(0.0, locked_at + lockout - time.monotonic()) + 0.05)
        assert (await attempt(PASSWORD))[35] == "A"
        # the one admitted Logon and its Logout, both ways (QuickFIX counts ours just after answering it)
        await wait_until(lambda: numbers(gateway, "desk") == (3, 3))


async def test_garbage_silence_and_other_first_messages_are_closed_with_the_reason_logged(tmp_path, market, caplog,
                                                                                         monkeypatch) -> None:
    monkeypatch.setattr(gate, "LOGON_TIMEOUT", 0.5)
    config = desk_config(tmp_path, market)
    port = config.oms_client("desk").port
    heartbeat = encode("FIX.4.4", [(35, "0"), (34, "1"), (49, "OMS1"), (52, "20260101-00:00:00.000"), (56, "FIXENGINE")])
    async with running_gateway(config) as (engine, gateway):
        for first, reason in [(b"GET / HTTP/1.1\r\nHost: gateway\r\n\r\n", "not FIX: stream does not start with a FIX header"),
                              (b"", "no whole first message within 0.5 s"),
                              (heartbeat, "the first message is not a FIX.4.4 Logon (8=FIX.4.4, 35=0)")]:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                where = "%s:%d" % sock.getsockname()
                sock.sendall(first)
                assert await asyncio.to_thread(sock.recv, 4096) == b""  # closed, not a word
            assert f"connection from {where} closed: {reason}" in caplog.text
        assert numbers(gateway, "desk") == (1, 1)


async def test_a_logon_straight_to_quickfix_is_refused(tmp_path, market) -> None:
    """QuickFIX's own port (on every interface: QuickFIX 1.16 has no bind address) takes only what
    came through the gate. CompIDs of this test's own: the bindings keep the traceback of the
    RejectLogon that refuses it, and with it the acceptor and its sessions, for good (in this
    process's QuickFIX session registry)."""
    sim, desk = market
    sender = f"DIRECT{uuid.uuid4().hex[:8].upper()}"
    config = gateway_config(tmp_path / "serve", session_to(sim, desk, name="desk-kalshi"),
                            clients=[oms_client_entry("desk", sender, "desk-kalshi")])
    async with running_gateway(config) as (engine, gateway):
        raw = RawOms(gateway._acceptors.internal_port(config.oms_client("desk").port), sender, "FIXENGINE")
        try:
            answer = await asyncio.to_thread(raw_logon, raw, 1, None)
            assert answer[35] == "5" and "logon refused" in answer[58]
            assert not gateway.is_logged_on("desk")
        finally:
            raw.close()


async def test_a_client_added_by_a_reload_has_its_password_read_and_checked(tmp_path, market) -> None:
    config = desk_config(tmp_path, market)
    sim, desk = market
    added = config.model_copy(update={"oms_clients": [*config.oms_clients, OmsClientConfig.model_validate(
        oms_client_entry("late", "OMS9", "desk-kalshi", password_file=str(write_password(tmp_path / "late.pw", "s3cret"))))]})
    async with running_gateway(config) as (engine, gateway):
        assert any("late: listening on" in line for line in gateway.reload(added))
        for given, expected in [("nope", "5"), ("s3cret", "A")]:
            raw = RawOms(added.oms_client("late").port, "OMS9", "FIXENGINE")
            try:
                assert (await asyncio.to_thread(raw_logon, raw, 1, given))[35] == expected
            finally:
                raw.close()


async def test_a_sighup_reload_reads_a_running_clients_password_again(tmp_path, market) -> None:
    password_file = write_password(tmp_path / "desk.pw", "one")
    config = desk_config(tmp_path, market, password_file=str(password_file), reset_on_logon=True)

    async def answer_to(password: str) -> str:
        raw = RawOms(config.oms_client("desk").port, "OMS1", "FIXENGINE")
        try:
            answer = (await asyncio.to_thread(raw_logon, raw, 1, password))[35]
            if answer == "A":
                raw.send("5", [])
                await read(raw)
            return answer
        finally:
            raw.close()
            await idle(config.oms_client("desk"))

    async with running_gateway(config) as (engine, gateway):
        assert await answer_to("one") == "A"
        write_password(password_file, "two")
        gateway.reload(config)  # the same map: only the password file changed
        assert (await answer_to("one"), await answer_to("two")) == ("5", "A")


# --- TLS with client certificates -------------------------------------------------------------------------


def _key_and_name(common_name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Name]:
    return ec.generate_private_key(ec.SECP256R1()), x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write(directory: Path, stem: str, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate) -> tuple[Path, Path]:
    key_path, cert_path = directory / f"{stem}.key", directory / f"{stem}.pem"
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


def _certificate(subject: x509.Name, key: ec.EllipticCurvePrivateKey, issuer: x509.Name,
                 signer: ec.EllipticCurvePrivateKey, *, ca: bool, ip: str | None = None) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(key.public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ip is not None:
        import ipaddress

        builder = builder.add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]),
                                        critical=False)
    return builder.sign(signer, hashes.SHA256())


def make_pki(directory: Path) -> dict[str, Path]:
    """A CA for OMS client certificates; the gateway's server certificate (self-signed, for
    127.0.0.1); a client certificate from the CA, and one from nobody the gateway trusts."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca_name = _key_and_name("OMS client CA")
    ca = _certificate(ca_name, ca_key, ca_name, ca_key, ca=True)
    server_key, server_name = _key_and_name("127.0.0.1")
    server = _certificate(server_name, server_key, server_name, server_key, ca=True, ip="127.0.0.1")
    client_key, client_name = _key_and_name("desk")
    client_cert = _certificate(client_name, client_key, ca_name, ca_key, ca=False)
    rogue_key, rogue_name = _key_and_name("rogue")
    rogue = _certificate(rogue_name, rogue_key, rogue_name, rogue_key, ca=False)
    out = {}
    out["ca"], _ = _write(directory, "ca", ca_key, ca)
    out["server"], out["server_key"] = _write(directory, "server", server_key, server)
    out["client"], out["client_key"] = _write(directory, "client", client_key, client_cert)
    out["rogue"], out["rogue_key"] = _write(directory, "rogue", rogue_key, rogue)
    return out


def client_context(pki: dict[str, Path], cert: str | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki["server"]))
    if cert is not None:
        context.load_cert_chain(pki[cert], pki[f"{cert}_key"])
    return context


async def test_tls_with_a_client_certificate_required(tmp_path, market, caplog) -> None:
    caplog.set_level(logging.INFO, "fixengine")
    pki = make_pki(tmp_path / "pki")
    config = desk_config(tmp_path, market, gateway={
        "tls_cert_file": str(pki["server"]), "tls_key_file": str(pki["server_key"]), "tls_client_ca_file": str(pki["ca"])})
    port = config.oms_client("desk").port
    async with running_gateway(config) as (engine, gateway):
        raw = await asyncio.to_thread(RawOms, port, "OMS1", "FIXENGINE", 10.0, client_context(pki, "client"))
        try:
            assert (await asyncio.to_thread(raw_logon, raw, 1, None))[35] == "A"
            raw.send("5", [])
            assert (await read(raw))[35] == "5"
        finally:
            raw.close()
        assert "Logon from 127.0.0.1" in caplog.text and "(certificate CN=desk)" in caplog.text

        for cert in (None, "rogue"):
            # TLS 1.3: the client finishes its handshake before the gateway has checked its
            # certificate, so the refusal shows on the first read (or already on the Logon).
            try:
                raw = await asyncio.to_thread(RawOms, port, "OMS1", "FIXENGINE", 10.0, client_context(pki, cert))
            except (ssl.SSLError, ConnectionError):
                continue
            try:
                with pytest.raises((ssl.SSLError, EOFError, ConnectionError)):
                    await asyncio.to_thread(raw_logon, raw, 1, None)
            finally:
                raw.close()
        with socket.create_connection(("127.0.0.1", port), timeout=10) as plain:  # no TLS at all
            plain.sendall(encode("FIX.4.4", [(35, "A"), (34, "1"), (49, "OMS1"), (56, "FIXENGINE"), (98, "0"), (108, "30")]))
            assert await asyncio.to_thread(plain.recv, 4096) == b""
        await wait_until(lambda: numbers(gateway, "desk") == (3, 3))
    handshakes = [r.getMessage() for r in caplog.records if "TLS handshake failed" in r.getMessage()]
    assert len(handshakes) == 3 and all("connection from 127.0.0.1:" in m for m in handshakes), handshakes


# --- configuration and reload ------------------------------------------------------------------------------

ENGINE_TOML = """
data_dir = "var"
[[session]]
name = "s"
host = "127.0.0.1"
port = 1
tls = false
session_type = "KalshiNR"
api_key_id = "k"
private_key_file = "k.pem"
[gateway]
{gateway}
[[oms_client]]
name = "a"
sender_comp_id = "A"
target_comp_id = "G"
port = 9999
session = "s"
max_quantity = "1"
max_notional = "1"
"""


def gateway_problems(tmp_path: Path, gateway: str) -> dict[str, str]:
    from fixengine.config import check_config

    path = tmp_path / "engine.toml"
    path.write_text(ENGINE_TOML.format(gateway=gateway))
    return {p.where: p.reason for p in check_config(path) if p.where.startswith("gateway")}


def test_check_config_names_each_tls_problem_by_its_field(tmp_path) -> None:
    assert gateway_problems(tmp_path, 'tls_cert_file = "c.pem"') == {
        "gateway.tls_key_file": "tls_cert_file and tls_key_file go together"}
    assert set(gateway_problems(tmp_path, 'tls_client_ca_file = "ca.pem"')) == {"gateway.tls_client_ca_file"}
    pki = make_pki(tmp_path / "pki")
    ok = f'tls_cert_file = "{pki["server"]}"\ntls_key_file = "{pki["server_key"]}"\ntls_client_ca_file = "{pki["ca"]}"'
    assert gateway_problems(tmp_path, ok) == {}
    pki["server_key"].chmod(0o644)
    assert "readable by group or others" in gateway_problems(tmp_path, ok)["gateway.tls_key_file"]
    pki["server_key"].chmod(0o600)
    (tmp_path / "junk.pem").write_text("not a certificate\n")
    junk = ok.replace(str(pki["server"]), str(tmp_path / "junk.pem")).replace(str(pki["ca"]), str(tmp_path / "junk.pem"))
    assert set(gateway_problems(tmp_path, junk)) == {"gateway.tls_cert_file", "gateway.tls_client_ca_file"}
    missing = ok.replace(str(pki["ca"]), str(tmp_path / "nowhere.pem"))
    assert gateway_problems(tmp_path, missing) == {"gateway.tls_client_ca_file": f"{tmp_path / 'nowhere.pem'} does not exist"}


async def test_a_reload_reads_the_passwords_again(tmp_path) -> None:
    from fixengine.config import GatewayConfig
    from fixengine.gateway.acceptor import OmsAcceptors
    from tests.helpers.sessions import unused_port

    password_file = write_password(tmp_path / "desk.pw", "one")
    desk = client(port=unused_port(), password_file=password_file, reset_on_logon=True)
    acceptors = OmsAcceptors(GatewayConfig(), [desk], tmp_path / "sessions", lambda events: None)
    acceptors.start(asyncio.get_running_loop())

    async def logs_on(password: str) -> bool:
        raw = RawOms(desk.port, "OMS1", "FIXENGINE")
        try:
            answer = await asyncio.to_thread(raw_logon, raw, 1, password)
            if answer[35] == "A":
                raw.send("5", [])
                await read(raw)
            return answer[35] == "A"
        finally:
            raw.close()
            await idle(desk)

    try:
        assert await logs_on("one") and not await logs_on("two")
        write_password(password_file, "two")
        assert acceptors.reconfigure([desk]) == []
        assert await logs_on("two") and not await logs_on("one")
        password_file.chmod(0o644)  # unusable now: the password it had stays
        [said] = acceptors.reconfigure([desk])
        assert "readable by group or others" in said and "previous password stays" in said
        assert await logs_on("two")
    finally:
        await acceptors.stop()

