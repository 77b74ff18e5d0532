"""The supervision policy, without sockets or a loop: each session event moves the session's phase
and says what the shell must do."""

from __future__ import annotations

from datetime import datetime, timezone

from fixengine.config import SessionConfig
from fixengine.events import ConnectionFailed, HeartbeatReceived, LoggedOn, LoggedOut, LogonRefused
from fixengine.session.application import LogonUnanswered
from fixengine.session.reconnect import Retry
from fixengine.session.supervisor import DROP, Phase, SessionStatus, step

NOW = datetime(2026, 11, 30, tzinfo=timezone.utc)


def status() -> SessionStatus:
    config = SessionConfig(name="nr", session_type="KalshiNR", api_key_id="key", private_key_env="KEY", host="127.0.0.1", port=1)
    return SessionStatus(config)


def test_logging_on_clears_the_refusal_the_failure_and_the_attempts_and_cancels_the_timers() -> None:
    s = status()
    s.refusal, s.failure, s.attempt = "no", "refused", 3
    what = step(s, LoggedOn("nr", NOW, 30, False))
    assert s.phase is Phase.LOGGED_ON and (s.refusal, s.failure, s.attempt) == (None, None, 0)
    assert what.cancel_timers and what.publish and what.reconnect is None


def test_a_logout_reconnects_after_the_backoff() -> None:
    s = status()
    step(s, LoggedOn("nr", NOW, 30, False))
    what = step(s, LoggedOut("nr", NOW, "Maintenance", True))
    assert not s.logged_on and what.reconnect is Retry.BACKOFF and what.publish


def test_a_refusal_that_may_pass_is_retried_and_remembered_for_waiters() -> None:
    s = status()
    what = step(s, LogonRefused("nr", NOW, "Rate limit exceeded"))
    assert s.refusal == "Rate limit exceeded" and s.phase is not Phase.STOPPED
    assert what.reconnect is not None and what.reconnect is not Retry.NEVER and what.stopped is None


def test_a_refusal_for_good_stops_the_session_and_says_so() -> None:
    s = status()
    what = step(s, LogonRefused("nr", NOW, "Invalid signature"))
    assert s.phase is Phase.STOPPED and s.stopped_reason == "Invalid signature"
    assert what.reconnect is None and what.cancel_timers
    assert what.stopped is not None and what.stopped.reason == "Invalid signature"


def test_the_same_connect_failure_is_reported_once_per_streak() -> None:
    s = status()
    assert step(s, ConnectionFailed("nr", NOW, "connection refused")).publish
    assert step(s, ConnectionFailed("nr", NOW, "connection refused")) == DROP
    assert step(s, ConnectionFailed("nr", NOW, "TLS handshake failed")).publish


def test_an_unanswered_logon_is_probed_not_published() -> None:
    what = step(status(), LogonUnanswered("nr", NOW))
    assert not what.publish and what.probe and what.probe_if_reachable


def test_other_session_events_are_published_and_leave_the_phase() -> None:
    s = status()
    what = step(s, HeartbeatReceived("nr", NOW, None))
    assert what.publish and s.phase is Phase.CONNECTING
