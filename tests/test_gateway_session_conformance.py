"""The gateway's OMS acceptor against QuickFIX's own FIX 4.4 session acceptance scenarios.

The scenarios (``../shared/quickfix-at/fix44/*.def``, QuickFIX's ``test/definitions/server/fix44``)
are played over TCP by ``tests.helpers.quickfix_at`` against one ``OmsAcceptors`` with the product's
settings (``acceptor_settings``), as QuickFIX's Ruby harness plays them against its ``at`` program.
Upstream's ``at`` answers application messages with an echo; here ``AtEchoApplication`` does the
same through ``OmsAcceptors``' ``application=`` hook (the session layer under test does not depend
on what the application does with an order). The runner itself is tested at the end.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
import quickfix as fix

from fixengine.config import GatewayConfig, OmsClientConfig
from fixengine.gateway.acceptor import OmsAcceptors, OmsApplication, session_id
from tests.helpers.quickfix_at import (
    DEFAULT_TIMEOUT,
    Action,
    Connection,
    DefSyntaxError,
    ScenarioFailure,
    compare,
    expand_time,
    fixify,
    parse_def,
    prepare,
    run_scenario,
    run_steps,
    show,
)
from tests.helpers.sessions import unused_port

AT_DIR = Path(__file__).resolve().parents[1] / ".." / "shared" / "quickfix-at" / "fix44"
HOST = "127.0.0.1"

# Scenarios that cannot apply to the gateway's acceptor, each with the reason.
NOT_APPLICABLE: dict[str, str] = {}

# --- the at-like application --------------------------------------------------------------------------

MSG_NEW_ORDER_SINGLE, MSG_SECURITY_DEFINITION, MSG_EMAIL = "D", "d", "C"


class AtEchoApplication(OmsApplication):
    """QuickFIX's ``at`` application (``src/at_application.h``) on the gateway's acceptor:
    NewOrderSingle, SecurityDefinition and Email are sent straight back; a NewOrderSingle with
    PossResend (97) Y whose ClOrdID this session has already seen is dropped (the seen-set is
    cleared at logout); any other application message is refused with UnsupportedMessageType,
    which QuickFIX answers with a BusinessMessageReject (35=j, 380=3)."""

    def __init__(self, *args: object, **kwargs: object):
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._seen: set[tuple[str, str]] = set()

    def onLogout(self, session_id: fix.SessionID) -> None:
        self._seen.clear()  # as at's onLogout: m_cracker.reset()
        super().onLogout(session_id)

    def on_app(self, client: str, message: fix.Message, raw: str) -> None:
        header = message.getHeader()
        msg_type = header.getField(35)
        # the session the message came in on: ours is its reverse
        sid = fix.SessionID(header.getField(8), header.getField(56), header.getField(49))
        if msg_type == MSG_NEW_ORDER_SINGLE:
            poss_resend = header.isSetField(97) and header.getField(97) == "Y"
            seen = (message.getField(11), sid.toString())
            if poss_resend and seen in self._seen:
                return
            self._seen.add(seen)
        elif msg_type not in (MSG_SECURITY_DEFINITION, MSG_EMAIL):
            raise fix.UnsupportedMessageType()
        fix.Session.sendToTarget(fix.Message(message), sid)


# --- the acceptor under test --------------------------------------------------------------------------


@dataclass
class Acceptor:
    port: int
    client: OmsClientConfig
    acceptors: OmsAcceptors

    def wait_idle(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Wait until the scenario before has left no connection behind: QuickFIX has dropped the
        session's last connection (a scenario may end by closing its own side, 1b)."""
        sid = session_id(self.client)
        deadline = time.monotonic() + timeout
        while fix.Session.isSessionRegistered(sid) and time.monotonic() < deadline:
            time.sleep(0.01)  # QuickFIX has no notification of a connection dropped: poll
        assert not fix.Session.isSessionRegistered(sid), f"the session is still connected after {timeout:g} s"


@pytest.fixture(scope="module")
def acceptor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Acceptor]:
    """One OMS acceptor (the product's settings) serving TW44 -> ISLD with the echo application,
    its hand-off loop running on a thread of its own."""
    port = unused_port()
    client = OmsClientConfig(
        name="at", sender_comp_id="TW44", target_comp_id="ISLD", port=port, session="any",
        max_quantity=Decimal(1_000_000), max_notional=Decimal(1_000_000), reset_on_logon=True,
    )
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="quickfix-at-loop", daemon=True)
    thread.start()
    acceptors = OmsAcceptors(GatewayConfig(), [client], tmp_path_factory.mktemp("quickfix-at"), lambda events: None,
                             application=AtEchoApplication)
    acceptors.start(loop)
    try:
        _wait_listening(port)
        yield Acceptor(port, client, acceptors)
    finally:
        asyncio.run_coroutine_threadsafe(acceptors.stop(), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


def _wait_listening(port: int, timeout: float = DEFAULT_TIMEOUT) -> None:
    """As the upstream runner, poll the port until the acceptor takes connections."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection((HOST, port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.05)  # nothing to wait on but the port itself


def _scenarios() -> list[object]:
    if not AT_DIR.is_dir():
        reason = f"QuickFIX's acceptance scenarios are not at {AT_DIR.resolve()} (../shared/quickfix-at/fix44)"
        return [pytest.param(None, id="quickfix-at", marks=pytest.mark.skip(reason=reason))]
    params = []
    for path in sorted(AT_DIR.glob("*.def")):
        marks = [pytest.mark.skip(reason=NOT_APPLICABLE[path.stem])] if path.stem in NOT_APPLICABLE else []
        params.append(pytest.param(path, id=path.stem, marks=marks))
    return params


@pytest.mark.parametrize("scenario", _scenarios())
def test_scenario(acceptor: Acceptor, scenario: Path) -> None:
    acceptor.wait_idle()
    run_scenario(scenario, HOST, acceptor.port)


def test_every_not_applicable_scenario_exists() -> None:
    if not AT_DIR.is_dir():
        pytest.skip(f"no scenarios at {AT_DIR.resolve()}")
    stems = {path.stem for path in AT_DIR.glob("*.def")}
    assert set(NOT_APPLICABLE) <= stems


# --- the runner itself --------------------------------------------------------------------------------

S = "\x01"


def wire(text: str) -> bytes:
    return text.replace("|", S).encode("latin-1")


LOGON_REPLY = "8=FIX.4.4|9=63|35=A|34=1|49=ISLD|52=20240102-03:04:05.678|56=TW44|98=0|108=30|10=123|"
LOGON_EXPECTED = "8=FIX.4.4|9=63|35=A|34=1|49=ISLD|52=00000000-00:00:00.000|56=TW44|98=0|108=30|10=0|"


def test_the_comparator_accepts_a_match_and_patterns() -> None:
    assert compare(wire(LOGON_EXPECTED), wire(LOGON_REPLY)) is None
    # SendingTime without milliseconds also matches; TransactTime only has to start with a timestamp
    assert compare(wire("35=0|52=0|"), wire("35=0|52=20240102-03:04:05|")) is None
    assert compare(wire("35=D|60=0|"), wire("35=D|60=20240102-03:04:05.123456|")) is None


@pytest.mark.parametrize(("received", "reason"), [
    (LOGON_REPLY.replace("108=30", "108=31"), "value of tag 108 should be '30' but was '31'"),
    (LOGON_REPLY.replace("9=63", "9=64"), "value of tag 9 should be '63' but was '64'"),
    (LOGON_REPLY.replace("98=0|", ""), "number of fields does not match: expected 10, received 9"),
    (LOGON_REPLY.replace("98=0|108=30", "108=30|98=0"), "field 8: expected tag 98 but found tag 108"),
    (LOGON_REPLY.replace("10=123", "10=12"), "value of tag 10 ('12') does not match its pattern"),
    (LOGON_REPLY.replace(".678", ".67"), "value of tag 52 ('20240102-03:04:05.67') does not match its pattern"),
    (LOGON_REPLY.replace("52=20240102-03:04:05.678", "52=now"), "value of tag 52 ('now') does not match its pattern"),
], ids=["wrong-value", "wrong-body-length", "missing-field", "reordered-fields", "bad-checksum", "bad-millis", "bad-time"])
def test_the_comparator_refuses(received: str, reason: str) -> None:
    assert compare(wire(LOGON_EXPECTED), wire(received)) == reason


def test_body_length_and_checksum_are_those_quickfix_writes() -> None:
    message = fix.Message()
    header = message.getHeader()
    header.setField(fix.BeginString("FIX.4.4"))
    header.setField(fix.MsgType("D"))
    header.setField(fix.MsgSeqNum(2))
    header.setField(fix.SenderCompID("TW44"))
    header.setField(52, "20240102-03:04:05")
    header.setField(fix.TargetCompID("ISLD"))
    for field in (fix.ClOrdID("ID"), fix.HandlInst("3"), fix.OrdType("1"), fix.Side("1"), fix.Symbol("INTC")):
        message.setField(field)
    line = "8=FIX.4.4|35=D|34=2|49=TW44|52=20240102-03:04:05|56=ISLD|11=ID|21=3|40=1|54=1|55=INTC|"
    assert show(fixify(wire(line))) == show(message.toString())


def test_fixify_keeps_what_the_line_writes() -> None:
    # a BodyLength written by hand stays (wrong on purpose), and only the CheckSum is added
    written = wire("8=FIX.4.4|9=5|35=0|")
    assert fixify(written) == written + f"10={sum(written) % 256:03d}\x01".encode()
    # a CheckSum written by hand stays; the BodyLength inserted counts up to it
    assert fixify(wire("8=FIX.4.4|35=0|10=256|")) == wire("8=FIX.4.4|9=5|35=0|10=256|")
    # both written: nothing changes; not starting with 8=: nothing changes
    assert fixify(wire("8=FIX.4.4|9=52|35=0|10=0|")) == wire("8=FIX.4.4|9=52|35=0|10=0|")
    assert fixify(wire("35=0|8=FIX.4.4|34=2|")) == wire("35=0|8=FIX.4.4|34=2|")


def test_time_placeholders() -> None:
    now = datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    # whole seconds; a time ahead is rounded up, so that it stays at least N s ahead of the reader
    assert expand_time("52=<TIME>|122=<TIME-121>|60=<TIME+10>|42=<TIME+121>|", now) == (
        "52=20240102-03:04:05|122=20240102-03:02:04|60=20240102-03:04:16|42=20240102-03:06:07|")
    exact = now.replace(microsecond=0)
    assert expand_time("<TIME>|<TIME+10>|<TIME-1>", exact) == "20240102-03:04:05|20240102-03:04:15|20240102-03:04:04"


def test_the_parser_reads_steps_and_connection_numbers() -> None:
    text = wire("# a comment\n\niCONNECT\nI8=FIX.4.4|35=0|\ni2,CONNECT\r\nE2,8=FIX.4.4|35=0|\ne2,DISCONNECT\n"
                "i1,DISCONNECT\neDISCONNECT")
    steps = parse_def(text)
    assert [(s.line, s.action, s.connection) for s in steps] == [
        (3, Action.CONNECT, 1), (4, Action.SEND, 1), (5, Action.CONNECT, 2), (6, Action.EXPECT, 2),
        (7, Action.EXPECT_DISCONNECT, 2), (8, Action.DISCONNECT, 1), (9, Action.EXPECT_DISCONNECT, 1),
    ]
    assert steps[3].text == "8=FIX.4.4\x0135=0\x01"
    with pytest.raises(DefSyntaxError, match="x.def:2: syntax error"):
        parse_def("iCONNECT\nXnonsense\n", "x.def")
    with pytest.raises(DefSyntaxError, match="not supported"):
        parse_def("eCONNECT\n")


def test_every_scenario_parses() -> None:
    if not AT_DIR.is_dir():
        pytest.skip(f"no scenarios at {AT_DIR.resolve()}")
    for path in AT_DIR.glob("*.def"):
        assert parse_def(path.read_bytes(), path.name), path.name


class _Peer:
    """A listening socket that plays the acceptor for the runner's own tests: it sends ``script``
    in pieces once a connection comes, then closes it or keeps it open."""

    def __init__(self, chunks: list[bytes], close: bool):
        self.server = socket.create_server((HOST, 0))
        self.port = self.server.getsockname()[1]
        self.received = bytearray()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._serve, args=(chunks, close), daemon=True)
        self.thread.start()

    def _serve(self, chunks: list[bytes], close: bool) -> None:
        conn, _ = self.server.accept()
        with conn:
            conn.settimeout(5)
            self.received += conn.recv(4096)
            for chunk in chunks:
                conn.sendall(chunk)
            if not close:
                self.done.wait(10)
        self.server.close()


def test_the_runner_frames_and_compares_over_a_socket() -> None:
    logon = fixify(wire("8=FIX.4.4|35=A|34=1|49=ISLD|52=20240102-03:04:05.678|56=TW44|98=0|108=30|"))
    peer = _Peer([logon[:7], logon[7:20], logon[20:]], close=True)
    steps = parse_def(wire(f"iCONNECT\nI8=FIX.4.4|35=A|34=1|\nE{LOGON_EXPECTED}\neDISCONNECT\n"))
    run_steps(steps, HOST, peer.port, timeout=5)
    assert bytes(peer.received) == prepare("8=FIX.4.4\x0135=A\x0134=1\x01")


def test_a_failure_names_the_file_line_and_both_messages() -> None:
    reply = fixify(wire("8=FIX.4.4|35=A|34=1|49=ISLD|52=20240102-03:04:05.678|56=TW44|98=0|108=31|"))
    peer = _Peer([reply], close=True)
    steps = parse_def(wire(f"iCONNECT\nI8=FIX.4.4|35=A|\n# the logon reply\nE{LOGON_EXPECTED}\n"))
    with pytest.raises(ScenarioFailure) as failure:
        run_steps(steps, HOST, peer.port, name="x.def", timeout=5)
    text = str(failure.value)
    assert text.startswith("x.def:4: value of tag 108 should be '30' but was '31'")
    assert f"expected: {LOGON_EXPECTED}" in text
    assert f"received: {show(reply)}" in text


def test_an_expected_message_that_never_comes_times_out() -> None:
    peer = _Peer([b"8=FIX.4.4\x019=5"], close=False)
    steps = parse_def(wire(f"iCONNECT\nI8=FIX.4.4|35=A|\nE{LOGON_EXPECTED}\n"))
    started = time.monotonic()
    with pytest.raises(ScenarioFailure, match=r"x.def:3: no complete message within 0.5 s(.|\n)*received: 8=FIX.4.4\|9=5"):
        run_steps(steps, HOST, peer.port, name="x.def", timeout=0.5)
    assert time.monotonic() - started < 5
    peer.done.set()


def test_expecting_a_disconnection_fails_on_data_and_on_silence() -> None:
    peer = _Peer([wire("8=FIX.4.4|9=5|35=0|10=000|")], close=False)
    with pytest.raises(ScenarioFailure, match="expected disconnection, got data"):
        run_steps(parse_def("iCONNECT\nI8=FIX.4.4\x01\neDISCONNECT\n"), HOST, peer.port, timeout=5)
    peer.done.set()
    silent = _Peer([], close=False)
    with pytest.raises(ScenarioFailure, match="connection still open after 0.3 s"):
        run_steps(parse_def("iCONNECT\nI8=FIX.4.4\x01\neDISCONNECT\n"), HOST, silent.port, timeout=0.3)
    silent.done.set()


def test_a_connection_closed_before_the_message_fails() -> None:
    peer = _Peer([], close=True)
    conn = Connection(HOST, peer.port)
    conn.send(b"hello")
    with pytest.raises(Exception, match="disconnected, expected data"):
        conn.read_message(5)
    conn.close()
