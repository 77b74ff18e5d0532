"""The acceptor direction of the conformance tool: QuickFIX's FIX 4.4 acceptance scenarios
(``../shared/quickfix-at/fix44``) played against any acceptor (``conformance.acceptor``), as another
counterparty than the scripts' TW44 (``conformance.at_identity``), judged into the conformance model.

From the inside out: the ``.def`` format, the identity rewrite, the runner against small peers on
real sockets, then real acceptors (the gateway's OMS side as another client, the simulator's FIX 4.4
listener with signed Logons, an acceptor that never heartbeats) and ``fixengine conform acceptor``
as a subprocess, with its exit codes and reports.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import quickfix as fix

from conformance.acceptor import (
    AcceptorSetupError, AcceptorTarget, run_acceptor, run_script, select_defs, wait_reachable,
)
from conformance.acceptor_exclusions import exclusions
from conformance.at_identity import Identity
from conformance.at_wire import Connection
from conformance.harness import ApiKey, SimEvents, sending_time_now
from conformance.model import Direction, Verdict
from conformance.quickfix_at import (
    Action, DefSyntaxError, compare, expand_time, fixify, parse_def, prepare, read_def, read_def_file, show,
)
from fixengine.fix.framing import FrameReader, encode, parse
from fixengine.kalshi.signing import load_public_key, logon_prehash, verify
from simulator.config import FIX44_LISTENER
from simulator.server import Simulator
from tests.helpers.at_acceptor import AT_DIR, HOST, at_acceptor

S = "\x01"
ROOT = Path(__file__).resolve().parents[1]
needs_scenarios = pytest.mark.skipif(not AT_DIR.is_dir(), reason=f"no scenarios at {AT_DIR.resolve()}")


def wire(text: str) -> bytes:
    return text.replace("|", S).encode("latin-1")


LOGON_REPLY = "8=FIX.4.4|9=63|35=A|34=1|49=ISLD|52=20240102-03:04:05.678|56=TW44|98=0|108=30|10=123|"
LOGON_EXPECTED = "8=FIX.4.4|9=63|35=A|34=1|49=ISLD|52=00000000-00:00:00.000|56=TW44|98=0|108=30|10=0|"
NOW = datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)


# --- the .def format --------------------------------------------------------------------------------


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
    # whole seconds; a time ahead is rounded up, so that it stays at least N s ahead of the reader
    assert expand_time("52=<TIME>|122=<TIME-121>|60=<TIME+10>|42=<TIME+121>|", NOW) == (
        "52=20240102-03:04:05|122=20240102-03:02:04|60=20240102-03:04:16|42=20240102-03:06:07|")
    exact = NOW.replace(microsecond=0)
    assert expand_time("<TIME>|<TIME+10>|<TIME-1>", exact) == "20240102-03:04:05|20240102-03:04:15|20240102-03:04:04"


def test_the_parser_reads_steps_connection_numbers_and_the_title() -> None:
    text = wire("# @testcase 14.a\n# @condition Recieve a bad field\n# @expected Send Reject\n\niCONNECT\n"
                "# a heartbeat\n# and its answer\nI8=FIX.4.4|35=0|\ni2,CONNECT\r\nE2,8=FIX.4.4|35=0|\n"
                "e2,DISCONNECT\ni1,DISCONNECT\neDISCONNECT")
    script = read_def(text, "14a_X.def")
    assert [(s.line, s.action, s.connection) for s in script.steps] == [
        (5, Action.CONNECT, 1), (8, Action.SEND, 1), (9, Action.CONNECT, 2), (10, Action.EXPECT, 2),
        (11, Action.EXPECT_DISCONNECT, 2), (12, Action.DISCONNECT, 1), (13, Action.EXPECT_DISCONNECT, 1),
    ]
    # the comments above a step are its note (the @ headers are not); an E line after an I shares its note
    assert [s.note for s in script.steps[:4]] == ["", "a heartbeat and its answer", "", ""]
    assert [s.note for s in parse_def("iCONNECT\n# logout\nI8=FIX.4.4\x01\nE8=FIX.4.4\x01\n")] == ["", "logout", "logout"]
    assert script.steps[3].text == "8=FIX.4.4\x0135=0\x01"
    assert (script.stem, script.title, script.expected) == ("14a_X", "Recieve a bad field", "Send Reject")
    assert read_def("iCONNECT\n", "SessionReset.def").title == "SessionReset"  # no comment: the name
    with pytest.raises(DefSyntaxError, match="x.def:2: syntax error"):
        parse_def("iCONNECT\nXnonsense\n", "x.def")
    with pytest.raises(DefSyntaxError, match="not supported"):
        parse_def("eCONNECT\n")


@needs_scenarios
def test_every_scenario_parses_and_has_a_title() -> None:
    for path in AT_DIR.glob("*.def"):
        script = read_def_file(path)
        assert script.steps and script.title, path.name


# --- playing as another counterparty ----------------------------------------------------------------


def _lines(kind: Action) -> list[bytes]:
    return [expand_time(step.text, NOW).encode("latin-1")
            for path in sorted(AT_DIR.glob("*.def")) for step in read_def_file(path).steps if step.action is kind]


@needs_scenarios
def test_the_scripts_own_identity_changes_no_line() -> None:
    identity = Identity()
    sent, expected = _lines(Action.SEND), _lines(Action.EXPECT)
    assert len(sent) > 200 and len(expected) > 200
    assert [identity.outgoing(line) for line in sent] == sent
    assert [identity.expected(line) for line in expected] == expected


def test_compids_are_rewritten_both_ways_and_body_length_follows() -> None:
    identity = Identity(sender="ACME-OMS-7", target="FIXENGINE-GW")
    logon = wire("8=FIX.4.4|35=A|34=1|49=TW44|52=20240102-03:04:05|56=ISLD|98=0|108=30|")
    assert identity.outgoing(logon) == wire(
        "8=FIX.4.4|35=A|34=1|49=ACME-OMS-7|52=20240102-03:04:05|56=FIXENGINE-GW|98=0|108=30|")
    # the acceptor speaks the other way round; its BodyLength grows by what the CompIDs grew (8 + 6)
    answer = identity.expected(wire(LOGON_EXPECTED))
    assert answer == wire("8=FIX.4.4|9=77|35=A|34=1|49=FIXENGINE-GW|52=00000000-00:00:00.000|56=ACME-OMS-7|"
                          "98=0|108=30|10=0|")
    # ... which is the length the acceptor would write for that message
    assert fixify(answer.replace(b"9=77\x01", b"").replace(b"10=0\x01", b"")).startswith(b"8=FIX.4.4\x019=77\x01")
    # the wrong ones a script sends on purpose stay wrong; a CompID in the other direction's place stays
    assert identity.outgoing(wire("35=D|49=WT|56=DLSI|")) == wire("35=D|49=WT|56=DLSI|")
    assert identity.outgoing(wire("35=D|49=ISLD|56=TW44|")) == wire("35=D|49=ISLD|56=TW44|")
    # BeginString: the scripts' own becomes the acceptor's, another version stays (2i)
    other = Identity(begin_string="FIX.4.2")
    assert other.outgoing(wire("8=FIX.4.4|35=0|")) == wire("8=FIX.4.2|35=0|")
    assert other.outgoing(wire("8=FIX.4.1|35=0|")) == wire("8=FIX.4.1|35=0|")


def _true_length(message: bytes) -> int:
    """The length of the body between BodyLength and CheckSum, whatever BodyLength says."""
    start = message.index(b"\x01", message.index(b"\x019=") + 1) + 1
    return message.rindex(b"\x0110=") + 1 - start


def test_a_length_or_checksum_written_wrong_stays_exactly_as_wrong() -> None:
    identity = Identity(sender="ACME-OMS-7", target="FIXENGINE-GW")
    # 1d_InvalidLogonLengthInvalid: BodyLength 40 for a longer body
    short = fixify(wire("8=FIX.4.4|9=40|35=A|34=1|49=TW44|52=20240102-03:04:05|56=ISLD|98=0|108=30|"))
    moved = fixify(identity.outgoing(short[: short.rindex(b"10=")]))
    assert _true_length(moved) - int(moved.split(b"\x01")[1][2:]) == _true_length(short) - 40 > 0
    # a CheckSum written wrong keeps its distance from the right one; one that is no checksum stays
    line = wire("8=FIX.4.4|9=52|35=0|34=2|49=TW44|52=20240102-03:04:05|56=ISLD|10=121|")
    rewritten = identity.outgoing(line)
    distance = (int(line[-4:-1]) - sum(line[: line.rindex(b"10=")])) % 256
    assert (int(rewritten[-4:-1]) - sum(rewritten[: rewritten.rindex(b"10=")])) % 256 == distance
    for written in (b"10=256\x01", b"10=0\x01"):
        assert identity.outgoing(line.replace(b"10=121\x01", written)).endswith(written)


def test_a_reset_is_added_to_a_logon_numbered_1_and_expected_in_its_answer() -> None:
    identity = Identity(reset_seq_num=True)
    logon = wire("8=FIX.4.4|35=A|34=1|49=TW44|52=20240102-03:04:05|56=ISLD|98=0|108=30|")
    assert identity.adds_reset(logon)
    assert identity.outgoing(logon) == logon.replace(b"108=30\x01", b"108=30\x01141=Y\x01")
    for unchanged in (logon.replace(b"34=1", b"34=5"), logon + b"141=Y\x01", wire("8=FIX.4.4|35=0|34=1|")):
        assert not identity.adds_reset(unchanged)
        assert identity.outgoing(unchanged) == unchanged
    # the answer QuickFIX writes to a reset, as SessionReset.def expects it (9=69, 141 after 108)
    assert identity.expected(wire(LOGON_EXPECTED), answers_reset=True) == wire(
        "8=FIX.4.4|9=69|35=A|34=1|49=ISLD|52=00000000-00:00:00.000|56=TW44|98=0|108=30|141=Y|10=0|")
    assert identity.expected(wire(LOGON_EXPECTED)) == wire(LOGON_EXPECTED)


def test_each_logon_sent_is_signed_over_what_it_carries(make_key: Callable[[], ApiKey]) -> None:
    key = make_key()
    identity = Identity(sender=key.key_id, target="KalshiNR", reset_seq_num=True, sign_key=key.private_key)
    sent = identity.outgoing(wire("8=FIX.4.4|35=A|34=1|49=TW44|52=20240102-03:04:05|56=ISLD|98=0|108=30|"))
    fields = parse(fixify(sent))
    assert [tag for tag, _ in fields][-4:] == [141, 95, 96, 10]  # the signature ends the body
    values = dict(fields)
    assert values[95] == str(len(values[96]))
    prehash = logon_prehash("20240102-03:04:05", "A", "1", key.key_id, "KalshiNR")
    assert verify(load_public_key(key.public_key_file.read_bytes()), prehash, values[96])
    heartbeat = wire("8=FIX.4.4|35=0|34=2|49=TW44|52=20240102-03:04:05|56=ISLD|")
    assert b"96=" not in identity.outgoing(heartbeat)


@pytest.mark.parametrize("field", ["sender", "target", "begin_string"])
def test_an_identity_refuses_what_cannot_be_a_field_value(field: str) -> None:
    for bad in ("", "A=B", "A\x01B"):
        with pytest.raises(ValueError, match=f"^{field} "):
            Identity(**{field: bad})


# --- the runner against small peers -----------------------------------------------------------------


class _Peer:
    """A listening socket that plays the acceptor for the runner's own tests: it sends ``chunks``
    once a connection comes, then closes it or keeps it open."""

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

    def target(self, timeout: float = 5.0, identity: Identity | None = None) -> AcceptorTarget:
        return AcceptorTarget(HOST, self.port, identity or Identity(), timeout, linger=0.5)


def test_the_runner_frames_compares_and_records_both_ways() -> None:
    logon = fixify(wire("8=FIX.4.4|35=A|34=1|49=ISLD|52=20240102-03:04:05.678|56=TW44|98=0|108=30|"))
    peer = _Peer([logon[:7], logon[7:20], logon[20:]], close=True)
    script = read_def(wire(f"iCONNECT\nI8=FIX.4.4|35=A|34=1|108=30|\nE{LOGON_EXPECTED}\neDISCONNECT\n"), "x.def")
    result, evidence = run_script(script, peer.target())
    assert (result.scenario, result.verdict, result.findings) == ("quickfix/fix44/x", Verdict.PASS, ())
    assert bytes(peer.received) == prepare("8=FIX.4.4\x0135=A\x0134=1\x01108=30\x01")
    assert [(m.direction, m.connection, m.raw.encode("latin-1")) for m in evidence.messages] == [
        (Direction.FROM_CLIENT, 1, bytes(peer.received)), (Direction.TO_CLIENT, 1, logon)]
    assert evidence.heartbeat_interval == 30 and evidence.started <= evidence.ended


def test_a_failure_names_the_file_line_what_was_expected_and_what_was_seen() -> None:
    reply = fixify(wire("8=FIX.4.4|35=A|34=1|49=ISLD|52=20240102-03:04:05.678|56=TW44|98=0|108=31|"))
    peer = _Peer([reply], close=True)
    script = read_def(wire(f"iCONNECT\nI8=FIX.4.4|35=A|\n# the logon reply\nE{LOGON_EXPECTED}\n"), "x.def")
    result, evidence = run_script(script, peer.target())
    assert result.verdict is Verdict.FAIL
    assert result.reason == "x.def:4 (the logon reply): value of tag 108 should be '30' but was '31'"
    (finding,) = result.findings
    assert finding.expected == f"x.def:4 (E): {LOGON_EXPECTED}"
    assert finding.seen == show(reply)
    assert finding.message is not None and evidence.messages[finding.message].raw.encode("latin-1") == reply
    assert evidence.messages[finding.message].direction is Direction.TO_CLIENT


def test_an_expected_message_that_never_comes_fails_in_bounded_time() -> None:
    peer = _Peer([b"8=FIX.4.4\x019=5"], close=False)
    script = read_def(wire(f"iCONNECT\nI8=FIX.4.4|35=A|\nE{LOGON_EXPECTED}\n"), "x.def")
    started = time.monotonic()
    result, _ = run_script(script, peer.target(timeout=0.5))
    assert time.monotonic() - started < 5
    assert result.reason == "x.def:3: no complete message within 0.5 s"
    assert result.findings[0].seen == "no complete message within 0.5 s; received: 8=FIX.4.4|9=5"
    peer.done.set()


def test_expecting_a_disconnection_fails_on_data_and_on_silence() -> None:
    peer = _Peer([wire("8=FIX.4.4|9=5|35=0|10=000|")], close=False)
    result, _ = run_script(read_def("iCONNECT\nI8=FIX.4.4\x01\neDISCONNECT\n", "x.def"), peer.target())
    assert (result.verdict, result.reason) == (Verdict.FAIL, "x.def:3: expected disconnection, got data")
    assert result.findings[0].expected == "x.def:3 (eDISCONNECT): the acceptor closes the connection"
    peer.done.set()
    silent = _Peer([], close=False)
    result, _ = run_script(read_def("iCONNECT\nI8=FIX.4.4\x01\neDISCONNECT\n", "x.def"), silent.target(timeout=0.3))
    assert result.reason == "x.def:3: connection still open after 0.3 s, expected disconnection"
    silent.done.set()


def test_a_connection_closed_before_the_message_fails() -> None:
    peer = _Peer([], close=True)
    result, _ = run_script(read_def(wire(f"iCONNECT\nI8=FIX.4.4|35=A|\nE{LOGON_EXPECTED}\n"), "x.def"), peer.target())
    assert (result.verdict, result.reason) == (Verdict.FAIL, "x.def:3: disconnected, expected data")
    conn = Connection(HOST, _Peer([], close=True).port, 5)
    conn.send(b"hello")
    with pytest.raises(Exception, match="disconnected, expected data"):
        conn.read_message(5)
    conn.close()


def test_a_script_on_a_connection_never_opened_is_an_error_not_a_failure() -> None:
    result, _ = run_script(read_def("I8=FIX.4.4\x01\n", "x.def"), AcceptorTarget(HOST, 1))
    assert (result.verdict, result.reason) == (Verdict.ERROR, "x.def:1: connection 1 is not open (the script is wrong)")


def test_a_logon_signature_goes_out_but_never_into_the_evidence(make_key: Callable[[], ApiKey]) -> None:
    key = make_key()
    peer = _Peer([], close=True)
    identity = Identity(sender=key.key_id, target="KalshiNR", sign_key=key.private_key)
    script = read_def(wire("iCONNECT\nI8=FIX.4.4|35=A|34=1|49=TW44|52=<TIME>|56=ISLD|98=0|108=30|\neDISCONNECT\n"),
                      "x.def")
    result, evidence = run_script(script, peer.target(identity=identity))
    assert result.verdict is Verdict.PASS
    signature = dict(parse(bytes(peer.received)))[96]
    assert len(signature) > 100
    assert "\x0196=<redacted>\x01" in evidence.messages[0].raw and signature not in evidence.messages[0].raw


# --- choosing and excluding -------------------------------------------------------------------------


@needs_scenarios
def test_scenarios_are_chosen_by_stem_or_id_and_a_typo_is_an_error(tmp_path: Path) -> None:
    chosen = select_defs(AT_DIR, ["1a_*", "quickfix/fix44/SessionReset"])
    assert [p.stem for p in chosen] == ["1a_ValidLogonMsgSeqNumTooHigh", "1a_ValidLogonWithCorrectMsgSeqNum",
                                        "SessionReset"]
    assert len(select_defs(AT_DIR)) == len(list(AT_DIR.glob("*.def")))
    with pytest.raises(AcceptorSetupError, match=r"^only: '1z_\*' matches no scenario"):
        select_defs(AT_DIR, ["1a_*", "1z_*"])
    with pytest.raises(AcceptorSetupError, match=rf"^defs: {tmp_path / 'none'} is not a directory"):
        select_defs(tmp_path / "none")
    with pytest.raises(AcceptorSetupError, match="^defs: .* holds no .def files"):
        select_defs(tmp_path)


@needs_scenarios
@pytest.mark.parametrize("target", ["KalshiNR", "KalshiRT"])
def test_every_kalshi_exclusion_names_a_scenario_with_a_reason(target: str) -> None:
    excluded = exclusions("kalshi", target)
    stems = {p.stem for p in AT_DIR.glob("*.def")}
    assert excluded and set(excluded) <= stems
    assert all(reason and "{" not in reason for reason in excluded.values())
    assert exclusions("none", target) == {}
    with pytest.raises(ValueError, match="^exclusions: unknown set 'quickfix'"):
        exclusions("quickfix", target)


# --- real acceptors ---------------------------------------------------------------------------------


class _SilentAcceptor:
    """An acceptor that answers a Logon as it should, then never sends anything again (no
    heartbeats, no Logout): each connection stays open until the client closes it."""

    def __init__(self) -> None:
        self.server = socket.create_server((HOST, 0))
        self.port = self.server.getsockname()[1]
        self.threads: list[threading.Thread] = []
        self.accepting = threading.Thread(target=self._accept, daemon=True)
        self.accepting.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return  # closed: stop
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self.threads.append(thread)
            thread.start()

    @staticmethod
    def _serve(conn: socket.socket) -> None:
        frames = FrameReader()
        with conn:
            conn.settimeout(30)
            try:
                while (message := frames.next_message()) is None:
                    if not (data := conn.recv(4096)):
                        return
                    frames.feed(data)
                logon = dict(parse(message))
                conn.sendall(encode(logon[8], [(35, "A"), (34, "1"), (49, logon[56]), (52, sending_time_now()),
                                               (56, logon[49]), (98, "0"), (108, logon[108])]))
                while conn.recv(4096):
                    pass  # silent from here on, until the client goes
            except OSError:
                return

    def close(self) -> None:
        self.server.shutdown(socket.SHUT_RDWR)  # wakes the accept() (a close alone would not)
        self.server.close()
        self.accepting.join(timeout=5)
        for thread in self.threads:
            thread.join(timeout=5)


@pytest.fixture
def silent_acceptor() -> Iterator[_SilentAcceptor]:
    acceptor = _SilentAcceptor()
    yield acceptor
    acceptor.close()


@needs_scenarios
def test_the_gateway_passes_every_scenario_with_other_compids(tmp_path: Path) -> None:
    """Every scenario test_gateway_session_conformance plays, here as client ACME-OMS-7 of gateway
    FIXENGINE-GW (every 49, 56 and BodyLength rewritten), and with nothing but the runner's own close
    between scenarios, as the CLI runs them."""
    with at_acceptor(tmp_path, client_comp_id="ACME-OMS-7", gateway_comp_id="FIXENGINE-GW") as gateway:
        target = AcceptorTarget(HOST, gateway.port, Identity(sender="ACME-OMS-7", target="FIXENGINE-GW"))
        outcome = run_acceptor(target, select_defs(AT_DIR))
    failed = [f"{r.reason}\n  expected: {r.findings[0].expected}\n  seen: {r.findings[0].seen}"
              for r in outcome.results if r.verdict is not Verdict.PASS]
    assert not failed, "\n".join(failed)
    assert len(outcome.results) == len(list(AT_DIR.glob("*.def"))) and outcome.exit_code() == 0
    for path in AT_DIR.glob("*.def"):  # the transcript: one message per I line sent, one per E line read
        steps = read_def_file(path).steps
        messages = outcome.evidence[f"quickfix/fix44/{path.stem}"].messages
        for direction, action in ((Direction.FROM_CLIENT, Action.SEND), (Direction.TO_CLIENT, Action.EXPECT)):
            assert sum(m.direction is direction for m in messages) == sum(s.action is action for s in steps), path


@needs_scenarios
def test_an_acceptor_that_never_heartbeats_fails_at_the_line_that_waits(silent_acceptor: _SilentAcceptor) -> None:
    paths = select_defs(AT_DIR, ["4a_NoDataSentDuringHeartBtInt", "1a_ValidLogonWithCorrectMsgSeqNum"])
    outcome = run_acceptor(AcceptorTarget(HOST, silent_acceptor.port, timeout=1.0, linger=0.5), paths)
    by_id = {r.scenario: r for r in outcome.results}
    heartbeat = by_id["quickfix/fix44/4a_NoDataSentDuringHeartBtInt"]
    assert (heartbeat.verdict, heartbeat.reason) == (
        Verdict.FAIL,
        "4a_NoDataSentDuringHeartBtInt.def:8 (Wait for quickfix to send a heartbeat to us): no complete message within 1 s")
    assert heartbeat.findings[0].expected.startswith("4a_NoDataSentDuringHeartBtInt.def:8 (E): 8=FIX.4.4|9=51|35=0|")
    logout = by_id["quickfix/fix44/1a_ValidLogonWithCorrectMsgSeqNum"]
    assert logout.reason == ("1a_ValidLogonWithCorrectMsgSeqNum.def:9 (logout message and response): "
                             "no complete message within 1 s")
    sent, answered = outcome.evidence[heartbeat.scenario].messages[:2]
    assert (sent.direction, answered.direction) == (Direction.FROM_CLIENT, Direction.TO_CLIENT)
    assert "\x0135=A\x01" in sent.raw and "\x0135=A\x01" in answered.raw
    assert outcome.exit_code() == 1


# --- fixengine conform acceptor ---------------------------------------------------------------------


def _conform(*args: str, block_simulator: bool = False, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``fixengine conform acceptor ...`` in its own process; with ``block_simulator`` the simulator
    cannot be imported (an acceptor run needs none)."""
    code = ("import sys\n"
            + ("sys.modules['simulator'] = None\n" if block_simulator else "")
            + f"sys.argv = ['fixengine', 'conform', 'acceptor', *{list(args)!r}]\n"
            + "from fixengine.cli import main; main()\n")
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


# Fast scenarios a Kalshi acceptor passes, and two it cannot (N/A): no heartbeat waits
SIMULATOR_SUBSET = ("1a_*,1b_*,13b_*,14b_*,14h_*,2a_*,2c_*,2k_*,2q_*,4b_*,7_*,10_MsgSeqNumGreater,RejectResentMessage,"
                    "SessionReset")


@needs_scenarios
def test_cli_passes_the_simulator_with_signed_logons_and_reports(
        tmp_path: Path, make_key: Callable[[], ApiKey],
        start_simulator: Callable[..., tuple[Simulator, SimEvents]]) -> None:
    key = make_key()
    sim, _ = start_simulator([key.account()])
    port = str(sim.ports[FIX44_LISTENER])
    common = ["--port", port, "--sender", key.key_id, "--target", "KalshiNR", "--reset-seq-num"]
    run = _conform(*common, "--sign-key", str(key.private_key_file), "--exclusions", "kalshi",
                   "--only", SIMULATOR_SUBSET, "--report", str(tmp_path / "report"), "--junit", str(tmp_path / "j.xml"))
    assert run.returncode == 0, run.stdout + run.stderr
    assert "PASS  quickfix/fix44/1a_ValidLogonWithCorrectMsgSeqNum\n" in run.stdout
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    verdicts = {r["scenario"]: (r["verdict"], r["reason"]) for r in report["results"]}
    assert len(verdicts) == len(select_defs(AT_DIR, SIMULATOR_SUBSET.split(","))) and report["exit_code"] == 0
    expected_na = exclusions("kalshi", "KalshiNR")
    assert {s: v for s, v in verdicts.items() if v[0] == "N/A"} == {
        f"quickfix/fix44/{stem}": ("N/A", expected_na[stem])
        for stem in ("1a_ValidLogonMsgSeqNumTooHigh", "1b_DuplicateIdentity")}
    assert all(verdict in ("PASS", "N/A") for verdict, _ in verdicts.values())
    junit = ET.parse(tmp_path / "j.xml").getroot()
    assert len(list(junit.iter("testcase"))) == len(verdicts) and not list(junit.iter("failure"))
    for name in ("junit.xml", "report.md", "report.html"):
        assert (tmp_path / "report" / name).stat().st_size > 0
    # unsigned, the same acceptor refuses the Logon: the line that expected the answer fails
    unsigned = _conform(*common, "--only", "1a_ValidLogonWithCorrectMsgSeqNum")
    assert unsigned.returncode == 1
    assert "1a_ValidLogonWithCorrectMsgSeqNum.def:5: " in unsigned.stdout


@needs_scenarios
def test_cli_exit_codes_against_the_gateway(tmp_path: Path) -> None:
    with at_acceptor(tmp_path, client_comp_id="OMS-1", gateway_comp_id="GW") as gateway:
        common = ["--port", str(gateway.port), "--sender", "OMS-1", "--only", "1a_*,2a_*,14h_*,AlreadyLoggedOn"]
        passed = _conform(*common, "--target", "GW")
        assert passed.returncode == 0, passed.stdout + passed.stderr
        assert passed.stdout.endswith("5 PASS; exit code 0\n")
        # a CompID the gateway does not serve: it closes the connection where the script expects its Logon
        broken = _conform(*common, "--target", "GW-X", "--junit", str(tmp_path / "j.xml"))
    assert broken.returncode == 1
    assert ("FAIL  quickfix/fix44/1a_ValidLogonWithCorrectMsgSeqNum  "
            "1a_ValidLogonWithCorrectMsgSeqNum.def:5: disconnected, expected data\n") in broken.stdout
    failures = [failure.text or "" for failure in ET.parse(tmp_path / "j.xml").getroot().iter("failure")]
    assert len(failures) == 5
    assert any("expected: 1a_ValidLogonWithCorrectMsgSeqNum.def:5 (E): 8=FIX.4.4|9=64|35=A|" in f for f in failures)


@needs_scenarios
def test_cli_fails_against_an_acceptor_that_never_heartbeats(silent_acceptor: _SilentAcceptor) -> None:
    run = _conform("--port", str(silent_acceptor.port), "--sender", "TW44", "--target", "ISLD",
                   "--only", "4a_*", "--timeout", "1", block_simulator=True)
    assert run.returncode == 1, run.stderr
    assert ("FAIL  quickfix/fix44/4a_NoDataSentDuringHeartBtInt  4a_NoDataSentDuringHeartBtInt.def:8 "
            "(Wait for quickfix to send a heartbeat to us): no complete message within 1 s\n") in run.stdout


def test_cli_refuses_a_missing_defs_directory(tmp_path: Path) -> None:
    missing = _conform("--port", "1", "--sender", "A", "--target", "B", "--defs", str(tmp_path / "none"))
    assert missing.returncode == 2
    assert "--defs" in missing.stderr and f"{tmp_path / 'none'} is not a directory" in " ".join(missing.stderr.split())


@needs_scenarios
def test_cli_says_when_no_acceptor_is_there() -> None:
    with socket.socket() as unused:  # bound, never listening: nothing answers there
        unused.bind((HOST, 0))
        port = unused.getsockname()[1]
        dead = _conform("--port", str(port), "--sender", "A", "--target", "B", "--connect-wait", "0.3")
    assert dead.returncode == 3
    assert f"no acceptor takes connections at 127.0.0.1:{port}" in dead.stderr


def test_wait_reachable_gives_up_in_time() -> None:
    with socket.socket() as unused:
        unused.bind((HOST, 0))
        started = time.monotonic()
        with pytest.raises(ConnectionError, match="no acceptor takes connections"):
            wait_reachable(HOST, unused.getsockname()[1], 0.3)
    assert time.monotonic() - started < 3
