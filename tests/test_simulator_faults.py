"""Fault injection in the simulator, seen at the wire by a raw FIX client: every fault is armed through
``Simulator.faults`` (one test through the control port) and its effect read off the socket."""

from __future__ import annotations

import json
import re
import socket
import time

import pytest

from conformance.harness import TICKER, TRAILER, RawClient
from fixengine.fix.framing import FrameReader, FramingError, checksum, encode, parse
from simulator.config import MarketEntry
from simulator.faults import FaultError, rest_of_message


@pytest.fixture
def logged_on(make_key, start_simulator):
    """A simulator with one market, and a raw client logged on to it."""
    key = make_key()
    sim, events = start_simulator([key.account()], markets=[MarketEntry(ticker=TICKER)])
    client = RawClient(sim, key)
    reply = client.logon()
    assert (reply[35], reply[34]) == ("A", "1")
    events.wait_for("logged_on", key.key_id)  # QuickFIX answers the Logon a moment before it counts it
    yield sim, key, client, events
    client.close()


def test_drop_outbound_leaves_a_sequence_gap(logged_on) -> None:
    sim, key, client, _ = logged_on
    sim.faults.drop_outbound(key.key_id, 2)
    for test_req_id in ("t1", "t2", "t3"):
        client.test_request(test_req_id)
    heartbeat = client.read()
    assert (heartbeat[35], heartbeat[112], heartbeat[34]) == ("0", "t3", "4")  # 2 and 3 never came
    client.test_request("t4")
    assert client.read()[34] == "5"  # and nothing more is dropped


def test_duplicate_next_resends_the_next_application_message_as_poss_dup(logged_on) -> None:
    sim, key, client, _ = logged_on
    sim.faults.duplicate_next(key.key_id)
    client.test_request("admin")
    assert 43 not in client.read()  # session messages are not duplicated
    client.order("c-1")
    original, copy = client.read(), client.read()
    assert (original[35], copy[35], copy[34], copy[43], copy[122]) == ("8", "8", original[34], "Y", original[52])
    assert 43 not in original
    assert {t: v for t, v in copy.items() if t not in (9, 10, 43, 52, 122)} == {
        t: v for t, v in original.items() if t not in (9, 10, 52)
    }
    after = client.read()
    assert int(after[34]) == int(original[34]) + 1 and 43 not in after


def test_garble_next_sends_a_framed_message_with_a_broken_field(logged_on) -> None:
    sim, key, client, _ = logged_on
    sim.faults.garble_next(key.key_id)
    client.test_request("g1")
    garbled = client.read_frame()
    frames = FrameReader()
    frames.feed(garbled)
    assert frames.next_message() == garbled  # BodyLength and CheckSum add up...
    with pytest.raises(FramingError, match="malformed field"):
        parse(garbled)  # ...yet the message cannot be read
    assert b"\x01112g1\x01" in garbled  # its last field lost its '='
    garbled_seq = int(re.search(rb"\x0134=(\d+)\x01", garbled).group(1))
    client.test_request("g2")
    heartbeat = client.read()
    assert (heartbeat[112], int(heartbeat[34])) == ("g2", garbled_seq + 1)


def test_bad_checksum_next(logged_on) -> None:
    sim, key, client, _ = logged_on
    sim.faults.bad_checksum_next(key.key_id)
    client.test_request("c1")
    bad = client.read_frame()
    body_end = len(bad) - 7
    assert bad[body_end:].startswith(b"10=") and bad[body_end + 3 : body_end + 6].decode() != checksum(bad[:body_end])
    frames = FrameReader()
    frames.feed(bad)
    with pytest.raises(FramingError, match="CheckSum"):
        frames.next_message()
    client.test_request("c2")
    assert client.read()[112] == "c2"  # the next one is sound


def test_go_silent_keeps_the_socket_open_and_answers_nothing(logged_on) -> None:
    sim, key, client, _ = logged_on
    sim.faults.go_silent(key.key_id)
    client.test_request("anyone there?")
    client.sock.settimeout(1.0)
    with pytest.raises(socket.timeout):  # no bytes at all, and no EOF either: the socket is open
        client.sock.recv(65536)
    client.test_request("still?")  # sending still works
    with pytest.raises(socket.timeout):
        client.sock.recv(65536)


def test_silent_session_is_dropped_by_the_simulator_while_the_client_socket_stays_open(make_key, start_simulator) -> None:
    key = make_key()
    sim, events = start_simulator([key.account()])
    stale = RawClient(sim, key)
    assert stale.logon(heartbeat=1)[35] == "A"
    sim.faults.go_silent(key.key_id)
    # QuickFIX hears nothing from the client and gives up after 2.4 heartbeat intervals...
    events.wait_for("logged_out", key.key_id, timeout=10)
    # ...so the key may log on again, while the old socket still looks open to its client.
    fresh = RawClient(sim, key)
    assert fresh.logon(heartbeat=1)[35] == "A"
    stale.sock.settimeout(0.5)
    with pytest.raises(socket.timeout):
        stale.sock.recv(65536)
    stale.close()
    fresh.test_request("fresh")
    assert fresh.read()[112] == "fresh"  # the stale connection's end did not disturb the new one
    fresh.close()


def test_close_abruptly(logged_on) -> None:
    sim, key, client, events = logged_on
    sim.faults.close(key.key_id)
    assert client.read_until_closed() == b""  # EOF, no Logout
    events.wait_for("closed", key.key_id)


def test_close_mid_message_sends_part_of_a_frame_then_eof(logged_on) -> None:
    sim, key, client, _ = logged_on
    sim.faults.close(key.key_id, mid_message=True)
    client.test_request("half")
    data = client.read_until_closed()
    assert data.startswith(b"8=FIXT.1.1\x01") and TRAILER.search(data) is None
    frames = FrameReader()
    frames.feed(data)
    assert frames.next_message() is None  # a frame that never completes


def test_delay_holds_every_outbound_message_back_until_cleared(logged_on) -> None:
    sim, key, client, _ = logged_on
    sim.faults.delay(key.key_id, 1.0)
    started = time.monotonic()
    client.test_request("d1")
    client.test_request("d2")
    assert client.read()[112] == "d1"
    first = time.monotonic() - started
    assert client.read()[112] == "d2"  # order kept...
    second = time.monotonic() - started
    assert 1.0 <= first and second < 1.9  # ...and a latency, not one delay after another
    sim.faults.clear(key.key_id)
    started = time.monotonic()
    client.test_request("d3")
    assert client.read()[112] == "d3"
    assert time.monotonic() - started < 1.0


def test_sequence_reset_gap_fill_and_reset_keep_the_session_usable(logged_on) -> None:
    sim, key, client, _ = logged_on
    assert sim.faults.sequence_reset(key.key_id, gap_fill=True, new_seq_no=10) == 10
    gap_fill = client.read()
    assert (gap_fill[35], gap_fill[34], gap_fill[123], gap_fill[36]) == ("4", "2", "Y", "10")
    client.test_request("after gap fill")
    heartbeat = client.read()
    assert (heartbeat[112], heartbeat[34]) == ("after gap fill", "10")

    assert sim.faults.sequence_reset(key.key_id, gap_fill=False, new_seq_no=20) == 20
    reset = client.read()
    assert (reset[35], reset[123], reset[36]) == ("4", "N", "20")
    client.order("after-reset")  # application messages both ways, numbered on from the reset
    pending, new = client.read(), client.read()
    assert (pending[34], new[34], new[11], new[150]) == ("20", "21", "after-reset", "0")

    assert sim.faults.sequence_reset(key.key_id) == 32  # default NewSeqNo: the reset's own 34 (22) + 10
    reset = client.read()
    assert (reset[34], reset[123], reset[36]) == ("22", "Y", "32")
    with pytest.raises(FaultError, match="must be above"):
        sim.faults.sequence_reset(key.key_id, new_seq_no=2)


def test_refuse_next_logon_then_the_following_logon_works(make_key, start_simulator) -> None:
    key = make_key()
    sim, events = start_simulator([key.account()])
    sim.faults.refuse_next_logon(key.key_id, "Exchange closed for maintenance")
    refused = RawClient(sim, key)
    logout = refused.logon()
    assert (logout[35], logout[58]) == ("5", "Exchange closed for maintenance")
    refused.close()
    assert events.wait_for("refused", key.key_id).detail.endswith("Exchange closed for maintenance")
    client = RawClient(sim, key)
    assert client.logon()[35] == "A"
    client.close()


def test_skewed_clock_rejects_a_logon_for_its_sending_time(make_key, start_simulator) -> None:
    key = make_key()
    sim, _ = start_simulator([key.account()])
    sim.faults.skew_clock(60)  # the simulator's clock a minute ahead: our SendingTime looks stale
    client = RawClient(sim, key)
    reject = client.logon()
    logout = client.read()
    client.close()
    assert (reject[35], reject[373], reject[45]) == ("3", "10", "1")
    assert (logout[35], logout[58]) == ("5", "SendingTime accuracy problem")
    sim.faults.skew_clock(0)
    client = RawClient(sim, key)
    assert client.logon()[35] == "A"
    client.close()


def test_rate_limit_answers_orders_with_business_reject_before_the_exchange(logged_on) -> None:
    sim, key, client, _ = logged_on
    sim.faults.rate_limit(key.key_id, 1)
    seq = client.order("limited")
    reject = client.read()
    assert (reject[35], reject[380], reject[58]) == ("j", "8", "Rate limit exceeded")
    assert (reject[45], reject[372], reject[379]) == (str(seq), "D", "limited")
    assert sim.exchange.open_orders(key.key_id) == []  # never reached the exchange
    client.order("allowed")
    report = client.read()
    while report.get(150) != "0":
        report = client.read()
    assert report[11] == "allowed"
    assert [o.cl_ord_id for o in sim.exchange.open_orders(key.key_id)] == ["allowed"]


def test_faults_name_the_key_they_cannot_reach(make_key, start_simulator) -> None:
    key = make_key()
    sim, _ = start_simulator([key.account()])
    with pytest.raises(FaultError, match=f"API key {key.key_id} has no connection"):
        sim.faults.drop_outbound(key.key_id, 1)
    with pytest.raises(FaultError, match=f"API key {key.key_id} has no session logged on"):
        sim.faults.sequence_reset(key.key_id)
    with pytest.raises(FaultError, match="unknown API key 'nobody'"):
        sim.faults.rate_limit("nobody", 1)
    with pytest.raises(FaultError, match="count must be a whole number >= 1"):
        sim.faults.rate_limit(key.key_id, 0)


def test_faults_through_the_control_port(make_key, start_simulator) -> None:
    key = make_key()
    sim, events = start_simulator([key.account()], control_port=0)
    assert sim.control_port and f"control port 127.0.0.1:{sim.control_port}" in events.wait_for("listening").detail
    client = RawClient(sim, key)
    client.logon()
    events.wait_for("logged_on", key.key_id)
    with socket.create_connection(("127.0.0.1", sim.control_port), timeout=5) as control:
        replies = control.makefile("rb")

        def ask(request: object) -> dict:
            control.sendall((request if isinstance(request, str) else json.dumps(request)).encode() + b"\n")
            return json.loads(replies.readline())

        assert ask({"fault": "drop_outbound", "key_id": key.key_id, "count": 1}) == {"ok": True}
        client.test_request("x1")
        client.test_request("x2")
        heartbeat = client.read()
        assert (heartbeat[112], heartbeat[34]) == ("x2", "3")
        assert ask({"fault": "sequence_reset", "key_id": key.key_id, "new_seq_no": 7}) == {"ok": True, "result": 7}
        assert client.read()[36] == "7"

        assert ask({"fault": "go_silent", "key_id": "nobody"}) == {
            "ok": False, "error": "unknown API key 'nobody': not an account of this simulator"
        }
        assert ask({"fault": "explode", "key_id": key.key_id})["error"].startswith("unknown fault 'explode'; one of: ")
        assert ask({"fault": "drop_outbound", "key_id": key.key_id, "cnt": 1})["error"] == (
            "drop_outbound: missing a required argument: 'count'"
        )
        assert ask("not json")["error"].startswith("not JSON")
    client.close()


def test_framing_starts_only_where_a_half_copied_message_ends() -> None:
    message = encode("FIXT.1.1", [(35, "0"), (34, "2"), (49, "KalshiNR"), (52, "20261121-17:00:00.000"), (56, "k")])
    assert rest_of_message(b"", message) == 0
    assert rest_of_message(message, message) == 0
    for cut in (1, 10, len(message) - 8, len(message) - 4, len(message) - 1):
        assert rest_of_message(message[:cut], message[cut:] + message) == len(message) - cut
    assert rest_of_message(message[:10], message[10:20]) == -1
