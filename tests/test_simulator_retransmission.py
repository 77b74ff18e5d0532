"""What the simulator resends and what it refuses, as Kalshi does (spec §7.3): ResendRequest and
SequenceReset are "not supported" on sessions without retransmission (a Reject); on KalshiRT a
ResendRequest is served within MessageRetentionPeriod (20200) and rejected beyond it."""

from __future__ import annotations

import pytest

from conformance.harness import TICKER, RawClient
from fixengine.fix.framing import encode
from fixengine.kalshi.facts import SessionType
from simulator.config import MarketEntry
from simulator.faults import LinkFaults
from simulator.fix.retention import RetentionWindow

NR, RT, DC = SessionType.NR.value, SessionType.RT.value, SessionType.DC.value
HOUR = 3600.0


@pytest.fixture
def connect(make_key, start_simulator):
    """``connect(target, extra_logon_fields)``: a raw client logged on to that session type."""
    key = make_key()
    sim, events = start_simulator([key.account()], markets=[MarketEntry(ticker=TICKER)])
    clients: list[RawClient] = []

    def open_session(target: str, extra: list[tuple[int, str]] = ()) -> tuple[object, object, RawClient]:
        client = RawClient(sim, key, target=target)
        clients.append(client)
        reply = client.logon(extra=extra)
        assert (reply[35], reply[34]) == ("A", "1"), reply
        events.wait_for("logged_on", key.key_id)
        return sim, key, client

    open_session.events = events  # type: ignore[attr-defined]
    yield open_session
    for client in clients:
        client.close()


def assert_rejected(reply: dict[int, str], ref_seq: int, ref_msg_type: str, ref_tag: int) -> None:
    assert reply[35] == "3", reply
    assert (reply[45], reply[372], reply[371], reply[373]) == (str(ref_seq), ref_msg_type, str(ref_tag), "5")


@pytest.mark.parametrize("target", [NR, DC])
def test_resend_request_is_not_supported_without_retransmission(connect, target) -> None:
    _, _, client = connect(target)
    seq = client.send("2", [(7, "1"), (16, "0")])
    assert_rejected(client.read(), seq, "2", 35)
    client.test_request("after")  # the session goes on, its numbering intact
    heartbeat = client.read()
    assert (heartbeat[35], heartbeat[112], heartbeat[34]) == ("0", "after", "3")


def test_sequence_reset_is_not_supported_without_retransmission(connect) -> None:
    _, _, client = connect(NR)
    seq = client.send("4", [(123, "Y"), (36, "10")])
    assert_rejected(client.read(), seq, "4", 35)


def test_rt_resends_within_the_window_with_poss_dup(connect) -> None:
    _, _, client = connect(RT, [(20200, "3")])
    client.order("R1")
    acks = [client.read() for _ in range(2)]  # PendingNew, New
    assert [a[150] for a in acks] == ["A", "0"]
    client.send("2", [(7, "2"), (16, "0")])
    resent = [client.read() for _ in range(2)]
    assert [(m[34], m[43], m[150]) for m in resent] == [("2", "Y", "A"), ("3", "Y", "0")]
    assert all(122 in m for m in resent)  # OrigSendingTime on each copy


def test_rt_rejects_a_resend_request_beyond_the_window(connect) -> None:
    sim, key, client = connect(RT)
    client.order("R1")
    [client.read() for _ in range(2)]
    sim.faults.shorten_retention(key.key_id, 0)
    seq = client.send("2", [(7, "2"), (16, "0")])
    assert_rejected(client.read(), seq, "2", 7)
    sim.faults.clear(key.key_id)  # the configured window again: served
    client.send("2", [(7, "2"), (16, "3")])
    assert [client.read()[43] for _ in range(2)] == ["Y", "Y"]


# --- the window itself, on a clock the test moves ----------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def sent_over(window: RetentionWindow, clock: Clock, seq_nums: range, every: float) -> None:
    for seq in seq_nums:
        window.sent(seq)
        clock.now += every


def test_the_window_defaults_to_24_hours() -> None:
    clock = Clock()
    window = RetentionWindow(clock=clock)
    window.logged_on(reset=True, retention_hours=None)
    sent_over(window, clock, range(1, 51), HOUR)  # one message an hour
    assert window.oldest_kept() == 28  # sent less than 24 hours ago


def test_message_retention_period_sets_the_window_up_to_72_hours() -> None:
    clock = Clock()
    window = RetentionWindow(clock=clock)
    window.logged_on(reset=True, retention_hours="3")
    sent_over(window, clock, range(1, 101), HOUR)
    assert window.oldest_kept() == 99
    window.logged_on(reset=False, retention_hours="72")  # a later Logon may lengthen it
    assert window.oldest_kept() == 30


def test_a_reset_logon_forgets_what_was_sent_and_resends_are_not_counted_twice() -> None:
    clock = Clock()
    window = RetentionWindow(clock=clock)
    sent_over(window, clock, range(1, 6), 10.0)
    window.sent(2)  # a retransmission of 2: not newer
    clock.now += 24 * HOUR - 25.0
    assert window.oldest_kept() == 4  # 1 to 3 went more than 24 hours ago
    window.logged_on(reset=True, retention_hours=None)
    assert window.oldest_kept() == 1
    window.sent(1)
    assert window.oldest_kept(seconds=0) == 2  # a zero window keeps nothing already sent


def test_an_out_of_sequence_logout_does_not_make_a_missing_message_look_received(connect) -> None:
    sim, key, client = connect(RT)
    client.seq += 1  # MsgSeqNum 2 never goes out
    client.test_request("gap")  # 3: too high
    assert client.read()[35] == "2"  # the simulator asks for 2 ...
    client.send("5", [])  # 4: ... and we log out instead
    assert client.read()[35] == "5"
    client.sock.close()
    connect.events.wait_for("closed", key.key_id)  # the key is free to log on again
    client.reconnect(sim)
    assert client.logon(reset=False)[35] == "A"  # 5, without a reset
    resend = client.read()
    assert (resend[35], resend[7]) == ("2", "2")  # 2 is still missing, not counted by the Logout


def test_rt_resends_the_reports_after_a_gap_fill_of_its_own(connect) -> None:
    """The sequence_reset fault (GapFill 2 -> 10) skips 3..9 as Kalshi would: numbers it used for
    messages it does not resend. A ResendRequest that starts among them, or at the GapFill itself
    (a client that missed it), gets one GapFill up to the first report, then the reports; the
    messages behind the skipped numbers never reach the client."""
    sim, key, client = connect(RT)
    assert sim.faults.sequence_reset(key.key_id, gap_fill=True, new_seq_no=10) == 10
    assert client.read()[36] == "10"
    client.order("after-gap")
    acks = [client.read() for _ in range(2)]
    assert [(a[34], a[150]) for a in acks] == [("10", "A"), ("11", "0")]
    for begin in ("3", "2"):
        client.send("2", [(7, begin), (16, "0")])
        gap_fill = client.read()
        assert (gap_fill[35], gap_fill[34], gap_fill[43], gap_fill[123], gap_fill[36]) == ("4", begin, "Y", "Y", "10")
        resent = [client.read() for _ in range(2)]
        assert [(m[34], m[43], m[150]) for m in resent] == [("10", "Y", "A"), ("11", "Y", "0")]
    client.test_request("after resends")  # nothing else came (no trailing GapFill), numbering intact
    heartbeat = client.read()
    assert (heartbeat[35], heartbeat[112], heartbeat[34]) == ("0", "after resends", "12")


def test_the_heartbeats_behind_skipped_numbers_stay_off_the_wire_and_spend_no_fault() -> None:
    link = LinkFaults("key", abort=lambda: None)

    def heartbeat(seq: int, test_req_id: str) -> bytes:
        return encode("FIXT.1.1", [(35, "0"), (34, str(seq)), (112, test_req_id)])

    link.hide_heartbeat("skipped")
    link.hide_heartbeat("skipped")
    link.drop(1)
    link.clear()  # faults only: the acceptor's own numbering is not one
    link.drop(1)
    assert link.outbound(heartbeat(3, "skipped")).chunks == ()
    assert link.outbound(heartbeat(4, "other")).chunks == ()  # the drop, not spent on 3
    assert link.outbound(heartbeat(5, "skipped")).chunks == ()
    assert link.outbound(heartbeat(6, "skipped")).chunks == (heartbeat(6, "skipped"),)  # two were announced
    assert not link.armed  # the relay goes back to copying bytes
