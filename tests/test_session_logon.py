"""The engine logs on to the simulator over real loopback sockets, in both dialects; each refusal
reaches the engine's user as the counterparty's reason."""

from __future__ import annotations

import asyncio
import re

import pytest

from conformance.harness import session_to
from fixengine.config import LogonFlags
from fixengine.fix.dialect import Dialect
from fixengine.engine import Engine
from fixengine.errors import LogonRefusedError
from fixengine.events import HeartbeatReceived, LoggedOn, LoggedOut, LogonSent, ReconnectScheduled, SessionRejectReceived
from fixengine.kalshi.facts import SessionType
from fixengine.kalshi.signing import Signer, generate_private_key
from tests.helpers.sessions import TLS_ON, engine_config

BOTH = [Dialect.FIXT11, Dialect.FIX44]


@pytest.mark.parametrize("dialect", BOTH)
async def test_signed_logon_heartbeats_and_clean_logout(tmp_path, make_key, start_simulator, dialect) -> None:
    key = make_key()
    sim, sim_events = start_simulator([key.account()])
    engine = Engine(engine_config(tmp_path, session_to(sim, key, dialect=dialect, heartbeat_interval=1)))
    events = engine.events()
    await engine.start()
    try:
        sent = await events.wait_for(LogonSent)
        assert sent.msg_seq_num == 1
        logged_on = await events.wait_for(LoggedOn)
        assert logged_on.heartbeat_interval == 1
        assert sim_events.wait_for("logged_on", key.key_id).detail == dialect.begin_string
        # Several heartbeat intervals pass with the session up: heartbeats flow, no logout.
        for _ in range(3):
            event = await events.wait_for(HeartbeatReceived, timeout=5)
            assert event.test_req_id is None
        assert engine.is_logged_on("s1")
        rtt = await engine.test_request("s1")
        assert 0 < rtt < 2
    finally:
        await engine.stop()
    out = await events.wait_for(LoggedOut)
    assert out.by_counterparty is False
    assert not engine.is_logged_on("s1")
    # Logging out because the engine stops schedules no reconnect.
    assert not [e for e in events.drain() if isinstance(e, ReconnectScheduled)]
    sim_events.wait_for("logged_out", key.key_id)


async def test_both_dialects_at_once_over_tls(tmp_path, make_key, start_simulator) -> None:
    a, b = make_key(), make_key()
    sim, _ = start_simulator([a.account(), b.account()], tls=TLS_ON)
    config = engine_config(
        tmp_path,
        session_to(sim, a, name="fixt", dialect=Dialect.FIXT11),
        session_to(sim, b, name="fix44", dialect=Dialect.FIX44),
    )
    assert all(s.tls for s in config.sessions)
    async with Engine(config) as engine:
        await engine.wait_logged_on(timeout=15)
        assert engine.is_logged_on("fixt") and engine.is_logged_on("fix44")


async def refusal_reason(tmp_path, config, signers=None) -> str:
    engine = Engine(config, signers=signers)
    await engine.start()
    try:
        with pytest.raises(LogonRefusedError) as info:
            await engine.wait_logged_on(timeout=15)
        return info.value.reason
    finally:
        await engine.stop()


async def test_wrong_target_for_the_port_is_refused(tmp_path, make_key, start_simulator) -> None:
    key = make_key()
    sim, _ = start_simulator([key.account()])
    on_dc_port = session_to(sim, key, session_type=SessionType.NR, listener=SessionType.DC.value)
    assert await refusal_reason(tmp_path, engine_config(tmp_path, on_dc_port)) == "Invalid TargetCompID"


async def test_fix44_logon_on_a_fixt_port_is_refused_naming_the_begin_string(tmp_path, make_key, start_simulator) -> None:
    key = make_key()
    sim, _ = start_simulator([key.account()])
    fix44_on_nr_port = session_to(sim, key, dialect=Dialect.FIX44, listener=SessionType.NR.value)
    reason = await refusal_reason(tmp_path, engine_config(tmp_path, fix44_on_nr_port))
    assert reason == "Unsupported BeginString FIX.4.4: this port speaks FIXT.1.1"


@pytest.mark.parametrize("dialect", BOTH)
async def test_unknown_api_key_is_refused(tmp_path, make_key, start_simulator, dialect) -> None:
    known, unknown = make_key(), make_key()
    sim, _ = start_simulator([known.account()])
    reason = await refusal_reason(tmp_path, engine_config(tmp_path, session_to(sim, unknown, dialect=dialect)))
    assert reason == "Invalid SenderCompID: unknown API key"


@pytest.mark.parametrize("dialect", BOTH)
async def test_second_connection_with_the_same_key_already_exists(tmp_path, make_key, start_simulator, dialect) -> None:
    key = make_key()
    sim, _ = start_simulator([key.account()])
    first = Engine(engine_config(tmp_path, session_to(sim, key, dialect=dialect)))
    await first.start()
    try:
        await first.wait_logged_on()
        # Same key on another session type (and so another QuickFIX session id): Kalshi allows one
        # FIX connection per API key.
        other = session_to(sim, key, dialect=dialect, session_type=SessionType.RT)
        assert await refusal_reason(tmp_path, engine_config(tmp_path, other)) == "already exists"
        assert first.is_logged_on("s1")
    finally:
        await first.stop()


@pytest.mark.parametrize("dialect", BOTH)
async def test_tier_not_allowed_for_fix(tmp_path, make_key, start_simulator, dialect) -> None:
    key = make_key()
    sim, _ = start_simulator([key.account(tier="advanced")])
    reason = await refusal_reason(tmp_path, engine_config(tmp_path, session_to(sim, key, dialect=dialect)))
    assert reason == "API usage level is not allowed for FIX"


@pytest.mark.parametrize("dialect", BOTH)
async def test_stale_sending_time_is_rejected_then_logged_out(tmp_path, make_key, start_simulator, dialect) -> None:
    key = make_key()
    sim, _ = start_simulator([key.account()], clock_offset=45.0)  # the exchange's clock runs 45 s ahead
    engine = Engine(engine_config(tmp_path, session_to(sim, key, dialect=dialect)))
    events = engine.events()
    await engine.start()
    try:
        with pytest.raises(LogonRefusedError) as info:
            await engine.wait_logged_on(timeout=15)
        # The Reject's own SendingTime tells how far off our clock is.
        skew = re.fullmatch(r"SendingTime accuracy problem \(our clock is ([\d.]+) s behind the counterparty's\)", info.value.reason)
        assert skew is not None and 44 <= float(skew.group(1)) <= 47, info.value.reason
        assert not info.value.permanent  # a clock can be fixed: the engine keeps trying
        reject = await events.wait_for(SessionRejectReceived)
        assert (reject.reason_code, reject.ref_msg_type, reject.ref_seq_num) == (10, "A", 1)
    finally:
        await engine.stop()


@pytest.mark.parametrize("dialect", BOTH)
async def test_bad_signature_is_refused(tmp_path, make_key, start_simulator, dialect) -> None:
    key = make_key()
    sim, _ = start_simulator([key.account()])
    impostor = {"s1": Signer(key.key_id, generate_private_key())}  # right key id, wrong private key
    reason = await refusal_reason(tmp_path, engine_config(tmp_path, session_to(sim, key, dialect=dialect)), impostor)
    assert reason == "Invalid signature: RawData (96) does not verify for this API key"


async def test_refused_session_is_not_retried_blindly(tmp_path, make_key, start_simulator) -> None:
    known, unknown = make_key(), make_key()
    sim, sim_events = start_simulator([known.account()])
    engine = Engine(engine_config(tmp_path, session_to(sim, unknown)))
    await engine.start()
    try:
        with pytest.raises(LogonRefusedError):
            await engine.wait_logged_on(timeout=15)
        sim_events.wait_for("refused", unknown.key_id)
        after_refusal = engine.events()
        # reconnect_interval is 1 s: a blind retry would send another Logon within ~2 s.
        with pytest.raises(asyncio.TimeoutError):
            await after_refusal.wait_for(LogonSent, timeout=3)
    finally:
        await engine.stop()


@pytest.mark.parametrize("dialect", BOTH)
async def test_counterparty_logout_reaches_the_user_with_its_text(tmp_path, make_key, start_simulator, dialect) -> None:
    key = make_key()
    sim, _ = start_simulator([key.account()])
    engine = Engine(engine_config(tmp_path, session_to(sim, key, dialect=dialect, reconnect_interval=30)))
    events = engine.events()
    await engine.start()
    try:
        await engine.wait_logged_on()
        assert await asyncio.to_thread(sim.logout, key.key_id, "Exchange maintenance") == 1
        out = await events.wait_for(LoggedOut)
        assert (out.reason, out.by_counterparty) == ("Exchange maintenance", True)
        assert not engine.is_logged_on("s1")
    finally:
        await engine.stop()


@pytest.mark.parametrize("dialect", BOTH)
async def test_configured_logon_flags_reach_the_counterparty(tmp_path, make_key, start_simulator, dialect) -> None:
    key = make_key()
    sim, _ = start_simulator([key.account()])
    flags = LogonFlags(
        reset_seq_num=False,
        cancel_orders_on_disconnect=True,
        use_dollars=True,
        skip_pending_exec_reports=True,
        enable_ioc_cancel_report=True,
        preserve_original_order_qty=True,
        use_expired_ord_status=True,
        always_emit_new_before_trade=True,
        split_collateral_return=True,
        receive_settlement_reports=True,
        message_retention_hours=48,
    )
    session = session_to(sim, key, dialect=dialect, session_type=SessionType.RT, logon=flags)
    async with Engine(engine_config(tmp_path, session)) as engine:
        await engine.wait_logged_on()
        received = sim.logon_flags(key.key_id)
    expected = {tag: "Y" for tag in (8013, 20127, 21005, 21007, 21008, 21011, 21012, 21026, 21027)}
    expected[20200] = "48"
    assert {t: v for t, v in received.items() if t != 141} == expected
    assert received.get(141, "N") == "N"  # RT keeps its sequence numbers when asked to


async def test_listener_session_flags(tmp_path, make_key, start_simulator) -> None:
    key = make_key()
    sim, _ = start_simulator([key.account()])
    listener = LogonFlags(listener=True, skip_pending_exec_reports=True)
    async with Engine(engine_config(tmp_path, session_to(sim, key, logon=listener))) as engine:
        await engine.wait_logged_on()
        assert sim.logon_flags(key.key_id) == {141: "Y", 20126: "Y", 21011: "Y"}


async def test_message_log_has_every_message_and_never_the_signature(tmp_path, make_key, start_simulator) -> None:
    key = make_key()
    sim, _ = start_simulator([key.account()])
    config = engine_config(tmp_path, session_to(sim, key))
    engine = Engine(config)
    events = engine.events()
    await engine.start()
    try:
        sent = await events.wait_for(LogonSent)
        await engine.wait_logged_on()
    finally:
        await engine.stop()
    log_text = (config.log_path / "s1.messages.log").read_text()
    lines = log_text.splitlines()
    assert any("|35=A|" in line and line.split(" ")[2] == ">" for line in lines)  # our Logon, outgoing
    assert any("|35=A|" in line and line.split(" ")[2] == "<" for line in lines)  # theirs, incoming
    assert any("|35=5|" in line for line in lines)  # the Logout exchange
    assert "|96=<redacted>|" in log_text and "|95=344|" in log_text
    assert sent.msg_seq_num == 1
    assert not re.search(r"\|96=(?!<redacted>)", log_text)  # no signature anywhere
