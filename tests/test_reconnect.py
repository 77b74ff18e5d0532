"""The reconnect policy, pure (backoff, jitter, cap, which refusals are final), and the engine
following it against a real simulator: a dropped session comes back by itself, an unreachable one
is tried less and less often, "already exists" is waited out, a permanent refusal stops."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance.harness import session_to
from fixengine.engine import Engine
from fixengine.errors import LogonRefusedError
from fixengine.events import ConnectionFailed, LoggedOn, LoggedOut, LogonSent, ReconnectScheduled, SessionStopped
from fixengine.kalshi.facts import SessionType
from fixengine.session.reconnect import Backoff, Retry, classify_refusal, retry_delay
from tests.helpers.sessions import engine_config, plain_session, unused_port

# --- the policy -------------------------------------------------------------------------------


@given(
    initial=st.floats(0.1, 30), cap=st.floats(0.1, 600), attempt=st.integers(0, 1000), draw=st.floats(0, 0.999999)
)
def test_backoff_doubles_with_bounded_jitter_and_never_passes_the_cap(initial, cap, attempt, draw) -> None:
    backoff = Backoff(initial, max(cap, initial))
    base = min(backoff.cap, initial * 2.0 ** min(attempt, 64))
    delay = backoff.delay(attempt, draw)
    assert 0.8 * base - 1e-9 <= delay <= min(backoff.cap, 1.2 * base) + 1e-9
    assert delay <= backoff.cap


def test_backoff_grows_until_the_cap() -> None:
    backoff = Backoff(1.0, 30.0, jitter=0.0)
    assert [backoff.delay(a, 0.5) for a in range(7)] == [1, 2, 4, 8, 16, 30, 30]


@pytest.mark.parametrize(
    "text, retry",
    [
        ("Invalid TargetCompID", Retry.NEVER),
        ("API usage level is not allowed for FIX", Retry.NEVER),
        ("Invalid SenderCompID: unknown API key", Retry.NEVER),
        ("Invalid signature: RawData (96) does not verify for this API key", Retry.NEVER),
        ("ResetSeqNumFlag (141) must be Y on KalshiNR", Retry.NEVER),
        ("ListenerSession (20126) is not allowed on KalshiDC", Retry.NEVER),
        ("already exists", Retry.WAIT_OUT),
        ("SendingTime accuracy problem (our clock is 45.0 s behind the counterparty's)", Retry.BACKOFF),
        ("Exchange maintenance", Retry.BACKOFF),
        ("Logout without a reason", Retry.BACKOFF),
    ],
)
def test_which_refusals_are_final(text, retry) -> None:
    assert classify_refusal(text) is retry


def test_already_exists_waits_out_the_servers_heartbeat_timeout() -> None:
    backoff = Backoff(1.0, 60.0)
    assert retry_delay(Retry.WAIT_OUT, 0, backoff, heartbeat_interval=30, draw=0.0) == 60  # never sooner
    assert retry_delay(Retry.WAIT_OUT, 0, backoff, heartbeat_interval=30, draw=0.5) == 66  # jittered above it
    assert retry_delay(Retry.NEVER, 0, backoff, heartbeat_interval=30, draw=0.5) is None
    assert retry_delay(Retry.BACKOFF, 0, backoff, heartbeat_interval=30, draw=0.5) == 1


# --- the engine following it ------------------------------------------------------------------


async def test_a_session_logged_out_by_the_counterparty_comes_back_by_itself(tmp_path, make_key, start_simulator) -> None:
    key = make_key()
    sim, _ = start_simulator([key.account()])
    engine = Engine(engine_config(tmp_path, session_to(sim, key, reconnect_interval=1)))
    events = engine.events()
    await engine.start()
    try:
        await engine.wait_logged_on()
        await asyncio.to_thread(sim.logout, key.key_id, "Exchange maintenance")
        await events.wait_for(LoggedOut)
        scheduled = await events.wait_for(ReconnectScheduled)
        assert scheduled.attempt == 1 and 0.8 <= scheduled.delay <= 1.2
        await events.wait_for(LoggedOn, timeout=10)
        assert engine.is_logged_on("s1")
    finally:
        await engine.stop()


async def test_an_unreachable_address_is_tried_less_and_less_often(tmp_path, make_key) -> None:
    key = make_key()
    engine = Engine(engine_config(tmp_path, plain_session(key, "127.0.0.1", unused_port(), reconnect_interval=1)))
    events = engine.events()
    await engine.start()
    try:
        await events.wait_for(ConnectionFailed, timeout=10)
        first = await events.wait_for(ReconnectScheduled, timeout=5)
        second = await events.wait_for(ReconnectScheduled, timeout=15)
        assert (first.attempt, second.attempt) == (1, 2)
        assert second.delay > first.delay  # ~1 s, then ~2 s (± 20%)
    finally:
        await engine.stop()


async def test_already_exists_is_waited_out_then_logs_on(tmp_path, make_key, start_simulator) -> None:
    key = make_key()
    sim, _ = start_simulator([key.account()], min_heartbeat_interval=1)
    first = Engine(engine_config(tmp_path / "first", session_to(sim, key)))
    await first.start()
    await first.wait_logged_on()
    second = Engine(engine_config(
        tmp_path / "second", session_to(sim, key, session_type=SessionType.RT, reconnect_interval=1, heartbeat_interval=1),
    ))
    events = second.events()
    await second.start()
    try:
        with pytest.raises(LogonRefusedError) as refused:
            await second.wait_logged_on(timeout=10)
        assert refused.value.reason == "already exists" and not refused.value.permanent
        scheduled = await events.wait_for(ReconnectScheduled)
        assert scheduled.delay >= 2  # two of our heartbeat intervals: the server's timeout
        await first.stop()  # the other connection goes away
        await events.wait_for(LoggedOn, timeout=15)
    finally:
        await first.stop()
        await second.stop()


async def test_a_permanent_refusal_stops_and_says_why(tmp_path, make_key, start_simulator) -> None:
    key = make_key()
    sim, sim_events = start_simulator([key.account(tier="advanced")])
    engine = Engine(engine_config(tmp_path, session_to(sim, key, reconnect_interval=1)))
    events = engine.events()
    await engine.start()
    try:
        stopped = await events.wait_for(SessionStopped)
        assert stopped.reason == "API usage level is not allowed for FIX"
        with pytest.raises(LogonRefusedError) as refused:
            await engine.wait_logged_on(timeout=1)
        assert refused.value.permanent
        with pytest.raises(asyncio.TimeoutError):  # a retry would come within ~1 s
            await events.wait_for(LogonSent, timeout=3)
    finally:
        await engine.stop()
