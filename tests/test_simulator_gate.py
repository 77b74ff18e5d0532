"""The simulator's acceptor seen from a raw FIX client: Logons the engine would never send (its
config forbids them) still get Kalshi's answer, and garbage is dropped."""

from __future__ import annotations

import socket

import pytest

from conformance.harness import sending_time_now, signed_logon, to_wire
from fixengine.fix.framing import FrameReader, encode, parse
from fixengine.kalshi.facts import SessionType


def logon_from(key, **options: object) -> bytes:
    """The harness's signed Logon for ``key`` (with ResetSeqNumFlag unless ``reset=False``), as bytes."""
    return to_wire(signed_logon(key.key_id, key.private_key, **options))  # type: ignore[arg-type]


def exchange(port: int, data: bytes, timeout: float = 10.0) -> list[dict[int, str]]:
    """Send ``data``, then read messages until the simulator closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        frames = FrameReader()
        messages = []
        while chunk := sock.recv(65536):
            frames.feed(chunk)
            while (message := frames.next_message()) is not None:
                messages.append(dict(parse(message)))
        return messages


def logout_text(messages: list[dict[int, str]]) -> str:
    assert messages and messages[-1][35] == "5", messages
    return messages[-1].get(58, "")


@pytest.fixture
def nr_port(make_key, start_simulator):
    key = make_key()
    sim, events = start_simulator([key.account()])
    return key, sim.ports[SessionType.NR.value], events


def test_missing_reset_flag_on_nr(nr_port) -> None:
    key, port, _ = nr_port
    assert logout_text(exchange(port, logon_from(key, reset=False))) == "ResetSeqNumFlag (141) must be Y on KalshiNR"


def test_listener_without_skip_pending(nr_port) -> None:
    key, port, _ = nr_port
    text = logout_text(exchange(port, logon_from(key, extra={20126: "Y"})))
    assert text == "ListenerSession (20126) requires SkipPendingExecReports (21011)=Y"


def test_sender_sub_id_on_logon(nr_port) -> None:
    key, port, _ = nr_port
    assert logout_text(exchange(port, logon_from(key, extra={50: "desk-7"}))) == "SenderSubID (50) is not allowed on Logon"


def test_refusal_logout_is_addressed_back_to_the_client(nr_port) -> None:
    key, port, _ = nr_port
    [logout] = exchange(port, logon_from(key, target="KalshiRT"))
    assert (logout[8], logout[35], logout[49], logout[56], logout[34]) == ("FIXT.1.1", "5", "KalshiRT", key.key_id, "1")
    assert logout[58] == "Invalid TargetCompID"


def test_first_message_not_a_logon_is_dropped(nr_port) -> None:
    key, port, events = nr_port
    heartbeat = encode("FIXT.1.1", [(35, "0"), (34, "1"), (49, key.key_id), (52, sending_time_now()), (56, "KalshiNR")])
    assert exchange(port, heartbeat) == []
    assert "first message is not a Logon" in events.wait_for("closed").detail


def test_garbage_is_dropped(nr_port) -> None:
    _, port, events = nr_port
    assert exchange(port, b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n" * 3) == []
    assert "does not start with a FIX header" in events.wait_for("closed").detail


def test_admitted_logon_is_answered_by_quickfix_with_a_logon(nr_port) -> None:
    key, port, _ = nr_port
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(logon_from(key))
        frames = FrameReader()
        while (message := frames.next_message()) is None:
            frames.feed(sock.recv(65536))
    reply = dict(parse(message))
    assert (reply[35], reply[49], reply[56], reply[141], reply[1137]) == ("A", "KalshiNR", key.key_id, "Y", "9")
