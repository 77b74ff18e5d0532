"""The session scenarios' judges on evidence written by hand: the failures a well-behaved client never
shows (a cached signature, a late heartbeat, a ResendRequest on KalshiNR, no reconciliation, two
ResendRequests, switches that differ from the profile), and evidence that cannot decide."""

from __future__ import annotations

from conformance.model import Direction, Evidence, FaultMark, RestCall, Verdict, WireMessage
from conformance.profile import Profile, ProfileSession
from conformance.scenarios import JUDGES, load_all
from conformance.scenarios.heartbeat import IDLE_END_MARK
from conformance.scenarios.sequence import DROP_NEXT_MARK
from conformance.scenarios.session import CLOSE_MARK
from conformance.transcript import closed_mark
from fixengine.config import LogonFlags
from fixengine.fix.framing import encode
from fixengine.kalshi.facts import SessionType

load_all()
KEY = "0b0e7a43-5d51-4a55-9a4b-7c6d0a1f2e3d"
T0 = 1_800_000_000.0


def stamp(at: float) -> str:
    from datetime import datetime, timezone

    from fixengine.fix.timestamps import utc_timestamp

    return utc_timestamp(datetime.fromtimestamp(at, timezone.utc))


def wire(at: float, conn: int, inbound: bool, msg_type: str, seq: int, *fields: tuple[int, str],
         session: str = "KalshiNR") -> WireMessage:
    header = [(35, msg_type), (34, str(seq)), (49, KEY if inbound else session), (52, stamp(at)),
              (56, session if inbound else KEY)]
    raw = encode("FIXT.1.1", header + list(fields)).decode("latin-1")
    return WireMessage(at, conn, Direction.FROM_CLIENT if inbound else Direction.TO_CLIENT, session, raw)


def logon(at: float, conn: int, signature: str = "c2ln", seq: int = 1, *extra: tuple[int, str],
          session: str = "KalshiNR") -> list[WireMessage]:
    """The client's Logon and the simulator's answer."""
    fields = [(98, "0"), (108, "4"), (141, "Y"), (95, str(len(signature))), (96, signature), (1137, "9"), *extra]
    return [wire(at, conn, True, "A", seq, *fields, session=session),
            wire(at + 0.01, conn, False, "A", 1, (98, "0"), (108, "4"), session=session)]


def judge(scenario_id: str, evidence: Evidence, profile: Profile = Profile()):
    return JUDGES[scenario_id](evidence, profile)


def test_logon_02_fails_a_signature_sent_twice_and_cannot_compare_masked_ones() -> None:
    fresh = Evidence(messages=[*logon(T0, 1, "AAAA"), *logon(T0 + 2, 2, "BBBB"), *logon(T0 + 4, 3, "CCCC")],
                     heartbeat_interval=4)
    assert judge("kalshi/logon/02", fresh).verdict is Verdict.PASS
    cached = Evidence(messages=[*logon(T0, 1, "AAAA"), *logon(T0 + 2, 2, "BBBB"), *logon(T0 + 4, 3, "AAAA")],
                      heartbeat_interval=4)
    result = judge("kalshi/logon/02", cached)
    assert result.verdict is Verdict.FAIL and result.findings[0].message == 4
    masked = Evidence(messages=[*logon(T0, 1, "****"), *logon(T0 + 2, 2, "****")], heartbeat_interval=4)
    assert judge("kalshi/logon/02", masked).verdict is Verdict.INCONCLUSIVE


def test_hb_01_fails_a_silence_beyond_the_interval_and_its_tolerance() -> None:
    def session(*heartbeats: float) -> Evidence:
        msgs = [*logon(T0, 1), *(wire(T0 + t, 1, True, "0", 2 + i) for i, t in enumerate(heartbeats))]
        return Evidence(messages=msgs, heartbeat_interval=4, faults=[FaultMark(T0 + 13, IDLE_END_MARK)], ended=T0 + 14)

    assert judge("kalshi/hb/01", session(4, 8.9, 12.5)).verdict is Verdict.PASS
    late = judge("kalshi/hb/01", session(4, 9.5, 12.5))  # 5.5 s > 4 x 1.1 + 1
    assert late.verdict is Verdict.FAIL and dict(late.measured)["longest_gap_s"] == 5.5
    assert judge("kalshi/hb/01", Evidence()).verdict is Verdict.INCONCLUSIVE


def nr_gap(*client_after: WireMessage, rest: tuple[RestCall, ...] = ()) -> Evidence:
    """Connection 1 loses MsgSeqNum 3 (dropped at T0+2); the simulator's 4 shows the gap at T0+6."""
    msgs = [*logon(T0, 1), wire(T0 + 1, 1, False, "0", 2), wire(T0 + 6, 1, False, "0", 4), *client_after]
    return Evidence(messages=msgs, heartbeat_interval=4, rest=list(rest),
                    faults=[FaultMark(T0 + 2, f"{DROP_NEXT_MARK} x1"), FaultMark(T0 + 6.1, closed_mark(1, True))])


def test_seq_nr_02_passes_reset_and_reconcile_and_fails_a_resend_request_or_no_reconciliation() -> None:
    orders = RestCall(T0 + 8, "GET", "/trade-api/v2/portfolio/orders", 200)
    good = nr_gap(wire(T0 + 6.05, 1, True, "5", 2), *logon(T0 + 7, 2), rest=(orders,))
    assert judge("kalshi/seq-nr/02", good).verdict is Verdict.PASS, judge("kalshi/seq-nr/02", good)

    resend = nr_gap(wire(T0 + 6.05, 1, True, "2", 2, (7, "3"), (16, "0")), *logon(T0 + 7, 2), rest=(orders,))
    result = judge("kalshi/seq-nr/02", resend)
    assert result.verdict is Verdict.FAIL and "35=2" in result.findings[0].seen

    unreconciled = nr_gap(wire(T0 + 6.05, 1, True, "5", 2), *logon(T0 + 7, 2))
    result = judge("kalshi/seq-nr/02", unreconciled)
    assert result.verdict is Verdict.FAIL and "reconciliation" in result.reason


def test_seq_rt_01_wants_exactly_one_resend_request_for_the_missing_numbers() -> None:
    def rt(*requests: tuple[int, str, str]) -> Evidence:
        msgs = [*logon(T0, 1, session="KalshiRT"), wire(T0 + 1, 1, False, "0", 2, session="KalshiRT"),
                wire(T0 + 6, 1, False, "0", 5, session="KalshiRT")]
        for i, (at_offset, begin, end) in enumerate(requests):
            msgs.append(wire(T0 + at_offset, 1, True, "2", 2 + i, (7, begin), (16, end), session="KalshiRT"))
        msgs.append(wire(T0 + 7, 1, False, "4", 3, (43, "Y"), (123, "Y"), (36, "5"), session="KalshiRT"))
        return Evidence(messages=msgs, heartbeat_interval=4, faults=[FaultMark(T0 + 2, f"{DROP_NEXT_MARK} x2")])

    assert judge("kalshi/seq-rt/01", rt((6.1, "3", "0"))).verdict is Verdict.PASS
    twice = judge("kalshi/seq-rt/01", rt((6.1, "3", "0"), (6.5, "3", "0")))
    assert twice.verdict is Verdict.FAIL and twice.findings[0].seen == "2"
    wrong = judge("kalshi/seq-rt/01", rt((6.1, "2", "0")))
    assert wrong.verdict is Verdict.FAIL and "7=3" in wrong.findings[0].expected


def test_logon_06_compares_the_switches_with_the_profile() -> None:
    dollars = Profile(session=[ProfileSession(type=SessionType.NR, logon=LogonFlags(use_dollars=True))])
    with_dollars = Evidence(messages=logon(T0, 1, "c2ln", 1, (21005, "Y")))
    without = Evidence(messages=logon(T0, 1, "c2ln", 1, (21005, "N")))
    assert judge("kalshi/logon/06", with_dollars, dollars).verdict is Verdict.PASS
    result = judge("kalshi/logon/06", without, dollars)
    assert result.verdict is Verdict.FAIL and "21005=Y" in result.findings[0].expected
    listener = Evidence(messages=logon(T0, 1, "c2ln", 1, (20126, "Y")))
    assert any("21011" in f.expected for f in judge("kalshi/logon/06", listener).findings)


def test_logon_01_fails_a_refused_logon_with_the_simulators_text() -> None:
    refused = [wire(T0, 1, True, "A", 1, (98, "0"), (108, "4"), (141, "Y"), (96, "eA=="), (1137, "9")),
               wire(T0 + 0.01, 1, False, "5", 1, (58, "Invalid signature: RawData (96) does not verify"))]
    result = judge("kalshi/logon/01", Evidence(messages=refused))
    assert result.verdict is Verdict.FAIL and "Invalid signature" in result.findings[0].seen
    short = [wire(T0, 1, True, "A", 1, (98, "0"), (108, "3"), (141, "Y"), (96, "eA=="), (1137, "9")),
             wire(T0 + 0.01, 1, False, "A", 1, (98, "0"), (108, "3"))]
    result = judge("kalshi/logon/01", Evidence(messages=short))
    assert result.verdict is Verdict.FAIL and result.findings[0].seen == "108=3"
    assert judge("kalshi/logon/01", Evidence()).verdict is Verdict.FAIL


def test_seq_nr_01_wants_every_logon_reset() -> None:
    msgs = [*logon(T0, 1), *logon(T0 + 2, 2), *logon(T0 + 4, 3, "c2ln", 7)]
    faults = [FaultMark(T0 + 1, f"{CLOSE_MARK} 1")]
    result = judge("kalshi/seq-nr/01", Evidence(messages=msgs, faults=faults))
    assert result.verdict is Verdict.FAIL and result.findings[0].seen.endswith("34=7")
