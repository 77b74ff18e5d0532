"""The connection machine of an initiator session, without sockets: every way a connection can
end, and the event it means (QuickFIX/Go tests its states the same way)."""

from __future__ import annotations

from fixengine.session import connection as conn
from fixengine.session.connection import SILENCE_INTERVALS, End, Ending, Party, Phase

HEARTBEAT = 30


def test_a_logon_sent_starts_a_fresh_connection_that_remembers_its_reset_flag() -> None:
    c = conn.logon_sent(sequence_reset=True)
    assert c.phase is Phase.CONNECTING and c.sequence_reset and c.first_logout is None


def test_their_logon_with_a_reset_marks_the_connection_reset() -> None:
    c = conn.logon_sent(sequence_reset=False)
    conn.logon_received(c, sequence_reset=True)
    assert c.sequence_reset


def test_a_logout_from_them_after_logon_is_logged_out_by_the_counterparty_with_their_text() -> None:
    c = conn.logon_sent(False)
    conn.logged_on(c)
    conn.logout_received(c, "Maintenance")
    conn.logout_sent(c)  # QuickFIX answers it: not the first Logout
    assert c.first_logout is Party.THEM
    assert conn.ended(c, silence=0.1, heartbeat_interval=HEARTBEAT) == Ending(End.LOGGED_OUT, "Maintenance", True)


def test_our_logout_first_is_logged_out_by_us() -> None:
    c = conn.logon_sent(False)
    conn.logged_on(c)
    conn.logout_sent(c)
    conn.logout_received(c, None)
    assert conn.ended(c, 0.1, HEARTBEAT) == Ending(End.LOGGED_OUT, "", False)


def test_a_drop_after_enough_silence_is_a_heartbeat_timeout() -> None:
    c = conn.logon_sent(False)
    conn.logged_on(c)
    silence = SILENCE_INTERVALS * HEARTBEAT
    ending = conn.ended(c, silence, HEARTBEAT)
    assert ending.end is End.LOGGED_OUT and ending.silence == silence and ending.by_counterparty
    assert ending.reason == "heartbeat timeout: the counterparty went silent"


def test_a_drop_without_silence_is_a_lost_connection() -> None:
    c = conn.logon_sent(False)
    conn.logged_on(c)
    assert conn.ended(c, SILENCE_INTERVALS * HEARTBEAT - 1, HEARTBEAT) == Ending(End.LOGGED_OUT, "connection lost", True)


def test_a_logout_answering_our_logon_is_a_refusal_with_their_text() -> None:
    c = conn.logon_sent(False)
    conn.logout_received(c, "Invalid TargetCompID")
    assert c.refused
    assert conn.ended(c, 0.0, HEARTBEAT) == Ending(End.REFUSED, "Invalid TargetCompID", True)


def test_a_reject_before_logon_is_the_refusal_reason_with_the_clock_skew_it_measured() -> None:
    c = conn.logon_sent(False)
    conn.reject_received(c, "SendingTime accuracy problem", " (our clock is 12.0 s ahead of the counterparty's)")
    ending = conn.ended(c, 0.0, HEARTBEAT)
    assert ending == Ending(End.REFUSED, "SendingTime accuracy problem (our clock is 12.0 s ahead of the counterparty's)", True)


def test_a_logout_without_text_before_logon_still_says_it_was_refused() -> None:
    c = conn.logon_sent(False)
    conn.logout_received(c, None)
    assert conn.ended(c, 0.0, HEARTBEAT).reason == "Logout without a reason"


def test_a_reject_after_logon_is_no_refusal() -> None:
    c = conn.logon_sent(False)
    conn.logged_on(c)
    conn.reject_received(c, "Required tag missing")
    assert c.reject_text is None and not c.refused


def test_silence_before_any_answer_is_unanswered() -> None:
    c = conn.logon_sent(False)
    conn.logout_sent(c)  # our own Logout on a logon timeout is no answer from them
    assert conn.ended(c, 10.0, HEARTBEAT) == Ending(End.UNANSWERED)
