"""The status vocabulary, worst-of aggregation, Kalshi's maintenance window and readiness: pure."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from fixengine.admin.status import State, as_table, in_maintenance, readiness, session_state, status_document, worst
from fixengine.engine import SessionHealth


def health(name: str = "nr", phase: str = "logged_on", *, held: bool = False, reason: str | None = None) -> SessionHealth:
    return SessionHealth(name=name, session_type="KalshiNR", phase=phase, reason=reason, book_held=held,
                         next_out_seq=3, next_in_seq=4, last_in=None, last_out=None, reconnect_attempts=0,
                         reconnect_at=None)


def test_worst_of_is_the_worst_whatever_the_order() -> None:
    states = [State.CONNECTED, State.STOPPED, State.HELD, State.DISCONNECTED]
    assert worst(states) == worst(reversed(states)) == State.STOPPED
    assert worst([State.CONNECTED, State.HELD]) == State.HELD
    assert worst([State.MAINTENANCE, State.HELD]) == State.MAINTENANCE
    assert worst([]) == State.CONNECTED


@pytest.mark.parametrize(("utc", "paused"), [
    ("2026-03-05T08:30:00", True),   # Thursday 03:30 EST (UTC-5)
    ("2026-03-12T07:30:00", True),   # Thursday 03:30 EDT (UTC-4), after the March 8 change
    ("2026-03-12T08:59:59", True),   # 04:59:59 EDT
    ("2026-03-12T09:00:00", False),  # 05:00 EDT: over
    ("2026-03-12T06:59:59", False),  # 02:59:59 EDT: not yet
    ("2026-11-05T08:00:00", True),   # Thursday 03:00 EST, after the November 1 change
    ("2026-11-05T07:30:00", False),  # 02:30 EST
    ("2027-03-18T07:00:00", True),   # 2027: 03:00 EDT (change on March 14)
    ("2026-03-11T08:30:00", False),  # a Wednesday
])
def test_kalshis_weekly_maintenance_follows_new_york_time_across_dst(utc: str, paused: bool) -> None:
    assert in_maintenance(datetime.fromisoformat(utc).replace(tzinfo=timezone.utc)) is paused


def test_session_states_in_the_fixed_vocabulary() -> None:
    assert session_state(health(), maintenance=False, stopping=False) is State.CONNECTED
    assert session_state(health(held=True), maintenance=False, stopping=False) is State.HELD
    assert session_state(health(), maintenance=True, stopping=False) is State.MAINTENANCE
    assert session_state(health(phase="waiting"), maintenance=False, stopping=False) is State.DISCONNECTED
    assert session_state(health(phase="stopped"), maintenance=True, stopping=False) is State.STOPPED
    assert session_state(health(phase="disabled"), maintenance=False, stopping=False) is State.STOPPED
    assert session_state(health(), maintenance=False, stopping=True) is State.STOPPED


def test_readiness_names_every_reason() -> None:
    sessions = [health("a"), health("b", "waiting", reason="connection refused"), health("c", held=True)]
    ready, reasons = readiness(sessions, maintenance=True, stopping=True)
    assert not ready
    assert reasons == [
        "the service is stopping: new orders are refused",
        "Kalshi's weekly maintenance (Thursdays 03:00-05:00 New York time): a trading pause",
        "b is not logged on (waiting: connection refused)",
        "c: its book is held until reconciliation confirms it",
    ]
    assert readiness([health("a")], maintenance=False, stopping=False) == (True, [])


def test_the_document_aggregates_worst_of_and_the_table_shows_it() -> None:
    now = datetime(2026, 11, 30, 15, 0, tzinfo=timezone.utc)
    doc = status_document([health("a"), health("b", "waiting")], [], now=now)
    assert (doc["state"], doc["ready"]) == ("disconnected", False)
    text = as_table(doc)
    assert "service: disconnected" in text and "NOT READY" in text and "b is not logged on" in text
