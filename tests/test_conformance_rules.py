"""The always-on rules P1 ... P16 (conformance.rules) on transcripts built from real FIX messages
(fixengine.fix.framing.encode): for each rule a transcript it passes and one it fails, the finding
naming the rule and the index of the message that broke it."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from conformance.library import load_library
from conformance.model import Direction, Evidence, Rule, WireMessage
from conformance.profile import Profile, ProfileSession
from conformance.rules import CHECKS, CONNECTS_PER_MINUTE, check_rules
from fixengine.fix.framing import encode
from fixengine.fix.timestamps import utc_timestamp
from fixengine.kalshi.facts import TEXT_TIER_NOT_ALLOWED, SessionType

KEY = "0b6c5f0e-8d1a-4c57-9a52-2f1f3c7d9e01"
OTHER_KEY = "7d2e4b9a-1c3f-4e6d-8a0b-5f9c2d1e3a47"
NR, RT, DC = SessionType.NR.value, SessionType.RT.value, SessionType.DC.value
T0 = 1_790_000_000.0
TICKER = "CONF-ORD"
RULES = load_library().rules


class Wire:
    """A transcript built message by message; each message is real FIX with a stamped header
    (49/56 by direction, 34 counted per connection and direction, 52 from the capture time)."""

    def __init__(self) -> None:
        self.messages: list[WireMessage] = []
        self._seq: dict[tuple[int, Direction], int] = {}

    def send(self, direction: Direction, conn: int, msg_type: str, body: list[tuple[int, str]] | None = None, *,
             at: float, session: str = NR, seq: int | None = None, begin: str = "FIXT.1.1",
             sender: str | None = None, target: str | None = None, sending_time: str | None = None) -> int:
        n = seq if seq is not None else self._seq.get((conn, direction), 0) + 1
        self._seq[(conn, direction)] = n
        client = direction is Direction.FROM_CLIENT
        stamp = sending_time or utc_timestamp(datetime.fromtimestamp(at, timezone.utc))
        header = [(35, msg_type), (49, sender or (KEY if client else session)),
                  (56, target or (session if client else KEY)), (34, str(n)), (52, stamp)]
        raw = encode(begin, header + (body or [])).decode()
        self.messages.append(WireMessage(at=at, connection=conn, direction=direction, session=session, raw=raw))
        return len(self.messages) - 1

    def client(self, conn: int, msg_type: str, body: list[tuple[int, str]] | None = None, **kw) -> int:  # type: ignore[no-untyped-def]
        return self.send(Direction.FROM_CLIENT, conn, msg_type, body, **kw)

    def sim(self, conn: int, msg_type: str, body: list[tuple[int, str]] | None = None, **kw) -> int:  # type: ignore[no-untyped-def]
        return self.send(Direction.TO_CLIENT, conn, msg_type, body, **kw)

    def logon(self, conn: int, at: float, *, flags: list[tuple[int, str]] | None = None, reset: bool = True,
              answered: bool = True, **kw) -> int:  # type: ignore[no-untyped-def]
        """The client's Logon (141=Y unless ``reset`` is off) and, if ``answered``, the simulator's reply."""
        body = [(98, "0"), (108, "4"), *([(141, "Y")] if reset else []), (1137, "9"), *(flags or [])]
        index = self.client(conn, "A", body, at=at, **kw)
        if answered:
            self.sim(conn, "A", [(98, "0"), (108, "4"), (1137, "9")], at=at + 0.01,
                     **{k: v for k, v in kw.items() if k == "session"})
        return index

    def order(self, conn: int, at: float, clordid: str, *, price: str = "30", quantity: str = "1",
              ord_type: str = "2", **kw) -> int:  # type: ignore[no-untyped-def]
        return self.client(conn, "D", [(11, clordid), (38, quantity), (40, ord_type), (44, price), (54, "1"),
                                       (55, TICKER), (59, "1")], at=at, **kw)

    def evidence(self) -> Evidence:
        return Evidence(messages=list(self.messages), heartbeat_interval=4.0, started=T0,
                        ended=(self.messages[-1].at if self.messages else T0) + 1.0)


def breaches(wire: Wire, rule: str | None = None, profile: Profile | None = None,
             key_id: str | None = KEY) -> list[tuple[str | None, int | None]]:
    findings = check_rules(wire.evidence(), profile or Profile(), RULES, key_id=key_id)
    return [(f.rule, f.message) for f in findings if rule is None or f.rule == rule]


def an_ordinary_session(wire: Wire, conn: int = 1, t: float = T0) -> None:
    """Logon, an order and its ack, a TestRequest answered, heartbeats, Logout both ways."""
    wire.logon(conn, t)
    wire.order(conn, t + 0.1, f"ord-{conn}-1")
    wire.sim(conn, "8", [(11, f"ord-{conn}-1"), (17, "1;1"), (150, "0"), (39, "0")], at=t + 0.11)
    wire.sim(conn, "1", [(112, "CONF-1")], at=t + 1.0)
    wire.client(conn, "0", [(112, "CONF-1")], at=t + 1.01)
    wire.sim(conn, "0", at=t + 4.0)
    wire.client(conn, "0", at=t + 4.5)
    wire.client(conn, "5", at=t + 6.0)
    wire.sim(conn, "5", at=t + 6.01)


def test_an_ordinary_session_breaks_no_rule() -> None:
    wire = Wire()
    an_ordinary_session(wire)
    an_ordinary_session(wire, conn=2, t=T0 + 30)
    assert breaches(wire) == []


def test_every_rule_of_the_library_has_a_check_and_findings_carry_the_rule() -> None:
    assert set(CHECKS) == set(RULES) == {f"P{n}" for n in range(1, 17)}
    wire = Wire()
    wire.client(1, "0", at=T0)
    only_p1 = check_rules(wire.evidence(), Profile(), [RULES["P1"]], key_id=KEY)
    assert [(f.rule, f.message) for f in only_p1] == [("P1", 0)]
    assert only_p1[0].expected and only_p1[0].seen == "35=0"


# --- P1 --------------------------------------------------------------------------------------------


def test_p1_passes_a_fix44_logon_on_a_fix44_profile() -> None:
    wire = Wire()
    wire.client(1, "A", [(98, "0"), (108, "4"), (141, "Y")], at=T0, begin="FIX.4.4")
    wire.sim(1, "A", [(98, "0"), (108, "4")], at=T0 + 0.01, begin="FIX.4.4")
    wire.client(1, "0", at=T0 + 1, begin="FIX.4.4")
    profile = Profile(sessions=[ProfileSession(type=SessionType.NR, dialect="fix44")])
    assert breaches(wire, "P1", profile) == []


def test_p1_fails_a_first_message_that_is_not_a_logon_a_wrong_begin_string_and_no_1137() -> None:
    wire = Wire()
    not_logon = wire.client(1, "0", at=T0)
    wire.logon(2, T0 + 1)
    fix44 = wire.client(2, "0", at=T0 + 2, begin="FIX.4.4")
    no_1137 = wire.client(3, "A", [(98, "0"), (108, "4"), (141, "Y")], at=T0 + 3)
    assert breaches(wire, "P1") == [("P1", not_logon), ("P1", fix44), ("P1", no_1137)]


# --- P2 --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("key_id", [KEY, None], ids=["given", "from the first logon"])
def test_p2_passes_the_key_and_the_connections_session(key_id: str | None) -> None:
    wire = Wire()
    an_ordinary_session(wire)
    wire.logon(2, T0 + 10, session=RT, reset=False)
    assert breaches(wire, "P2", key_id=key_id) == []


def test_p2_fails_another_sender_and_a_target_other_than_the_connections() -> None:
    wire = Wire()
    wire.logon(1, T0)
    stranger = wire.client(1, "0", at=T0 + 1, sender=OTHER_KEY)
    wrong_target = wire.client(1, "0", at=T0 + 2, target=RT)
    assert breaches(wire, "P2") == [("P2", stranger), ("P2", wrong_target)]
    assert breaches(wire, "P2", key_id=None) == [("P2", stranger), ("P2", wrong_target)]


# --- P3 --------------------------------------------------------------------------------------------


def test_p3_passes_milliseconds_or_finer_within_30_seconds() -> None:
    wire = Wire()
    wire.logon(1, T0)
    early = datetime.fromtimestamp(T0 + 1 - 29.5, timezone.utc)
    wire.client(1, "0", at=T0 + 1, sending_time=utc_timestamp(early))
    wire.client(1, "0", at=T0 + 1.2, sending_time=early.strftime("%Y%m%d-%H:%M:%S.%f"))  # microseconds
    assert breaches(wire, "P3") == []


def test_p3_fails_seconds_only_and_a_clock_31_seconds_off() -> None:
    wire = Wire()
    wire.logon(1, T0)
    seconds = wire.client(1, "0", at=T0 + 1, sending_time=datetime.fromtimestamp(T0 + 1, timezone.utc)
                          .strftime("%Y%m%d-%H:%M:%S"))
    skewed = wire.client(1, "0", at=T0 + 2,
                         sending_time=utc_timestamp(datetime.fromtimestamp(T0 + 2 + 31, timezone.utc)))
    assert breaches(wire, "P3") == [("P3", seconds), ("P3", skewed)]


# --- P4 --------------------------------------------------------------------------------------------


def test_p4_passes_possdup_copies_a_sequence_reset_and_rt_continuity() -> None:
    wire = Wire()
    wire.logon(1, T0, session=RT)  # 34=1
    wire.client(1, "0", at=T0 + 1, session=RT)  # 2
    wire.client(1, "0", at=T0 + 2, session=RT)  # 3
    wire.sim(1, "2", [(7, "2"), (16, "0")], at=T0 + 3, session=RT)
    wire.client(1, "4", [(43, "Y"), (122, "20260101-00:00:00.000"), (123, "Y"), (36, "4")], at=T0 + 3.1,
                session=RT, seq=2)  # a gap fill over 2..3, sent with its old number
    wire.client(1, "0", at=T0 + 4, session=RT, seq=4)
    wire.client(1, "4", [(36, "10")], at=T0 + 5, session=RT, seq=5)  # Reset mode: next is 10
    wire.client(1, "0", at=T0 + 6, session=RT, seq=10)
    wire.logon(2, T0 + 10, session=RT, reset=False, seq=11)  # continues above 10
    wire.client(2, "0", at=T0 + 11, session=RT, seq=12)
    assert breaches(wire, "P4") == []


def test_p4_fails_a_reset_logon_not_at_1_a_gap_and_a_lower_number_on_the_next_connection() -> None:
    wire = Wire()
    reset_at_2 = wire.logon(1, T0, seq=2)
    wire.client(1, "0", at=T0 + 1, seq=3)
    gap = wire.client(1, "0", at=T0 + 2, seq=5)
    wire.logon(2, T0 + 10, session=RT)
    wire.client(2, "0", at=T0 + 11, session=RT, seq=2)
    wire.client(2, "0", at=T0 + 12, session=RT, seq=3)
    lower = wire.logon(3, T0 + 20, session=RT, reset=False, seq=3)
    assert breaches(wire, "P4") == [("P4", reset_at_2), ("P4", gap), ("P4", lower)]


# --- P5 --------------------------------------------------------------------------------------------


def test_p5_passes_a_resend_request_on_rt() -> None:
    wire = Wire()
    wire.logon(1, T0, session=RT)
    wire.client(1, "2", [(7, "1"), (16, "0")], at=T0 + 1, session=RT)
    assert breaches(wire, "P5") == []


def test_p5_fails_a_resend_request_on_nr_and_a_sequence_reset_on_dc() -> None:
    wire = Wire()
    wire.logon(1, T0)
    resend = wire.client(1, "2", [(7, "1"), (16, "0")], at=T0 + 1)
    wire.logon(2, T0 + 2, session=DC)
    reset = wire.client(2, "4", [(123, "Y"), (36, "5")], at=T0 + 3, session=DC)
    assert breaches(wire, "P5") == [("P5", resend), ("P5", reset)]


# --- P6 --------------------------------------------------------------------------------------------


def test_p6_passes_a_logon_without_sub_id_or_password() -> None:
    wire = Wire()
    an_ordinary_session(wire)
    assert breaches(wire, "P6") == []


def test_p6_fails_sender_sub_id_on_logon_and_a_password() -> None:
    wire = Wire()
    sub_id = wire.logon(1, T0, flags=[(50, "trader-1")])
    password = wire.logon(2, T0 + 5, flags=[(553, "user"), (554, "secret")])
    assert breaches(wire, "P6") == [("P6", sub_id), ("P6", password)]
    assert "secret" not in str(check_rules(wire.evidence(), Profile(), RULES, key_id=KEY))


# --- P7 --------------------------------------------------------------------------------------------


def test_p7_passes_a_retry_under_the_same_clordid_after_exchange_unavailable_and_a_possdup_copy() -> None:
    wire = Wire()
    wire.logon(1, T0)
    wire.order(1, T0 + 1, "a-Z_0-9+=:/x")
    wire.sim(1, "8", [(11, "a-Z_0-9+=:/x"), (150, "8"), (39, "8"), (58, "EXCHANGE_UNAVAILABLE"), (103, "99")],
             at=T0 + 1.1)
    wire.order(1, T0 + 2, "a-Z_0-9+=:/x")  # Kalshi asks for exactly this
    wire.client(1, "D", [(43, "Y"), (122, "20260101-00:00:00.000"), (11, "a-Z_0-9+=:/x"), (38, "1"), (40, "2"),
                         (44, "30"), (54, "1"), (55, TICKER)], at=T0 + 3, seq=3)
    wire.client(1, "F", [(11, "c" * 64), (41, "a-Z_0-9+=:/x"), (54, "1"), (55, TICKER)], at=T0 + 4, seq=4)
    assert breaches(wire, "P7") == []


def test_p7_fails_a_long_or_odd_clordid_and_reuse_for_a_new_request() -> None:
    wire = Wire()
    wire.logon(1, T0)
    too_long = wire.order(1, T0 + 1, "x" * 65)
    odd = wire.order(1, T0 + 2, "ord 1")
    wire.order(1, T0 + 3, "ord-1")
    wire.sim(1, "8", [(11, "ord-1"), (150, "0"), (39, "0")], at=T0 + 3.1)
    reused_by_cancel = wire.client(1, "F", [(11, "ord-1"), (41, "ord-1"), (54, "1"), (55, TICKER)], at=T0 + 4)
    reused_by_order = wire.order(1, T0 + 5, "ord-1")
    assert breaches(wire, "P7") == [("P7", too_long), ("P7", odd), ("P7", reused_by_cancel), ("P7", reused_by_order)]


# --- P8 --------------------------------------------------------------------------------------------


def test_p8_passes_cents_dollars_under_21005_and_a_replace_without_price() -> None:
    wire = Wire()
    wire.logon(1, T0)
    wire.order(1, T0 + 1, "c-1", price="1", quantity="2.50")
    wire.order(1, T0 + 2, "c-2", price="99")
    wire.logon(2, T0 + 3, flags=[(21005, "Y")])
    wire.order(2, T0 + 4, "d-1", price="0.3050")
    wire.order(2, T0 + 5, "d-2", price=".5")
    wire.client(2, "G", [(11, "d-3"), (41, "d-1"), (38, "3"), (40, "2"), (54, "1"), (55, TICKER)], at=T0 + 6)
    assert breaches(wire, "P8") == []


def test_p8_fails_market_orders_off_grid_prices_and_sub_cent_quantities() -> None:
    wire = Wire()
    wire.logon(1, T0)
    market = wire.order(1, T0 + 1, "o-1", ord_type="1")
    dollars_without_21005 = wire.order(1, T0 + 2, "o-2", price="0.30")
    hundred = wire.order(1, T0 + 3, "o-3", price="100")
    sub_cent_quantity = wire.order(1, T0 + 4, "o-4", quantity="1.005")
    wire.logon(2, T0 + 5, flags=[(21005, "Y")])
    cents_with_21005 = wire.order(2, T0 + 6, "o-5", price="30")
    five_decimals = wire.order(2, T0 + 7, "o-6", price="0.30001")
    assert breaches(wire, "P8") == [("P8", market), ("P8", dollars_without_21005), ("P8", hundred),
                                    ("P8", sub_cent_quantity), ("P8", cents_with_21005), ("P8", five_decimals)]


# --- P9 --------------------------------------------------------------------------------------------


def test_p9_passes_each_sessions_own_requests() -> None:
    wire = Wire()
    wire.logon(1, T0)
    wire.order(1, T0 + 1, "o-1")
    wire.client(1, "UOG", [(20131, "1"), (20132, "10")], at=T0 + 2)
    wire.client(1, "q", [(11, "mc-1"), (530, "6")], at=T0 + 3)
    wire.logon(2, T0 + 4, session=DC)
    wire.client(2, "U1", [(21001, "1;1")], at=T0 + 5, session=DC)
    assert breaches(wire, "P9") == []


def test_p9_fails_unsupported_types_and_a_repeat_after_380_3() -> None:
    wire = Wire()
    wire.logon(1, T0)
    status_request = wire.client(1, "H", [(11, "s-1"), (54, "1"), (55, TICKER)], at=T0 + 1)
    wire.logon(2, T0 + 2, session=DC)
    order_on_dc = wire.order(2, T0 + 3, "o-1", session=DC)
    first = wire.client(1, "UOG", [(20131, "1"), (20132, "10")], at=T0 + 4)
    wire.sim(1, "j", [(45, str(3)), (380, "3"), (58, "Unsupported message type")], at=T0 + 4.1)
    assert wire.messages[first].raw.find("\x0134=3\x01") > 0  # the 45 above is this request's 34
    again = wire.client(1, "UOG", [(20131, "1"), (20132, "10")], at=T0 + 5)
    assert breaches(wire, "P9") == [("P9", status_request), ("P9", order_on_dc), ("P9", again)]


# --- P10 -------------------------------------------------------------------------------------------


def test_p10_passes_mass_cancels_a_second_apart_on_nr() -> None:
    wire = Wire()
    wire.logon(1, T0)
    wire.client(1, "q", [(11, "mc-1"), (530, "6")], at=T0 + 1)
    wire.client(1, "q", [(11, "mc-2"), (530, "6")], at=T0 + 2)
    assert breaches(wire, "P10") == []


def test_p10_fails_a_mass_cancel_on_rt_and_two_within_a_second() -> None:
    wire = Wire()
    wire.logon(1, T0, session=RT)
    on_rt = wire.client(1, "q", [(11, "mc-1"), (530, "6")], at=T0 + 1, session=RT)
    wire.logon(2, T0 + 2)
    wire.client(2, "q", [(11, "mc-2"), (530, "6")], at=T0 + 3)
    too_soon = wire.client(2, "q", [(11, "mc-3"), (530, "6")], at=T0 + 3.5)
    assert breaches(wire, "P10") == [("P10", on_rt), ("P10", too_soon)]


# --- P11 -------------------------------------------------------------------------------------------

BASIC = Profile(tier="basic")  # 100 Write tokens a second, no burst: 10 requests at 10 tokens each


def test_p11_passes_the_tiers_budget_in_every_second() -> None:
    wire = Wire()
    wire.logon(1, T0)
    for n in range(10):
        wire.order(1, T0 + 1 + n * 0.05, f"o-{n}")
    for n in range(10, 20):
        wire.order(1, T0 + 2 + (n - 10) * 0.05, f"o-{n}")  # the first ten are a second old
    assert breaches(wire, "P11", BASIC) == []


def test_p11_fails_the_first_request_over_the_budget_once_per_burst() -> None:
    wire = Wire()
    wire.logon(1, T0)
    indexes = [wire.order(1, T0 + 1 + n * 0.05, f"o-{n}") for n in range(12)]
    later = [wire.order(1, T0 + 5 + n * 0.05, f"p-{n}") for n in range(11)]
    assert breaches(wire, "P11", BASIC) == [("P11", indexes[10]), ("P11", later[10])]
    assert breaches(wire, "P11") == []  # premier: 2000 tokens a second


# --- P12 -------------------------------------------------------------------------------------------


def test_p12_passes_orders_between_the_logon_reply_and_the_logout() -> None:
    wire = Wire()
    an_ordinary_session(wire)
    assert breaches(wire, "P12") == []


def test_p12_fails_an_order_before_the_logon_reply_and_one_after_the_logout() -> None:
    wire = Wire()
    wire.logon(1, T0, answered=False)
    early = wire.order(1, T0 + 0.005, "o-1")
    wire.sim(1, "A", [(98, "0"), (108, "4")], at=T0 + 0.01)
    wire.client(1, "5", at=T0 + 1)
    late = wire.order(1, T0 + 1.1, "o-2")
    assert breaches(wire, "P12") == [("P12", early), ("P12", late)]


# --- P13 -------------------------------------------------------------------------------------------


def test_p13_passes_a_reject_about_a_standard_fields_value() -> None:
    wire = Wire()
    wire.logon(1, T0)
    wire.sim(1, "8", [(11, "o-1"), (150, "0"), (39, "0"), (44, "abc")], at=T0 + 1)
    wire.client(1, "3", [(45, "2"), (371, "44"), (373, "6"), (372, "8")], at=T0 + 1.1)
    assert breaches(wire, "P13") == []


def test_p13_fails_rejects_of_kalshis_custom_tags_and_messages() -> None:
    wire = Wire()
    wire.logon(1, T0)
    wire.sim(1, "8", [(11, "o-1"), (150, "F"), (39, "2"), (21030, "0.10")], at=T0 + 1)  # 34=2
    custom_tag = wire.client(1, "3", [(45, "2"), (371, "21030"), (373, "3"), (372, "8")], at=T0 + 1.1)
    wire.sim(1, "8", [(11, "o-1"), (150, "F"), (39, "2"), (715, "20260101")], at=T0 + 2)  # 34=3
    unknown_tag = wire.client(1, "3", [(45, "3"), (371, "715"), (373, "2")], at=T0 + 2.1)
    wire.sim(1, "UMS", [(20105, "s-1"), (55, TICKER), (893, "Y")], at=T0 + 3)  # 34=4
    custom_type = wire.client(1, "3", [(45, "4"), (373, "11")], at=T0 + 3.1)
    assert breaches(wire, "P13") == [("P13", custom_tag), ("P13", unknown_tag), ("P13", custom_type)]


# --- P14 -------------------------------------------------------------------------------------------


def test_p14_passes_a_quiet_listener_beside_a_trading_session() -> None:
    wire = Wire()
    wire.logon(1, T0, flags=[(20126, "Y"), (21011, "Y")])
    wire.client(1, "0", at=T0 + 1)
    wire.logon(2, T0 + 2, sender=OTHER_KEY, session=RT)
    wire.order(2, T0 + 3, "o-1", sender=OTHER_KEY, session=RT)
    assert breaches(wire, "P14") == []


def test_p14_fails_orders_cancels_and_mass_cancels_on_a_listener() -> None:
    wire = Wire()
    wire.logon(1, T0, flags=[(20126, "Y"), (21011, "Y")])
    order = wire.order(1, T0 + 1, "o-1")
    cancel = wire.client(1, "F", [(11, "c-1"), (41, "o-1"), (54, "1"), (55, TICKER)], at=T0 + 2)
    mass = wire.client(1, "q", [(11, "mc-1"), (530, "6")], at=T0 + 3)
    assert breaches(wire, "P14") == [("P14", order), ("P14", cancel), ("P14", mass)]


# --- P15 -------------------------------------------------------------------------------------------


def test_p15_passes_an_answer_in_time_and_does_not_judge_a_session_the_simulator_ended() -> None:
    wire = Wire()
    wire.logon(1, T0)
    wire.sim(1, "1", [(112, "CONF-1")], at=T0 + 1)
    wire.client(1, "0", [(112, "CONF-1")], at=T0 + 4.9)  # HeartBtInt is 4 s
    wire.sim(1, "1", [(112, "CONF-2")], at=T0 + 6)
    wire.sim(1, "5", [(58, "bye")], at=T0 + 6.5)
    wire.sim(1, "0", at=T0 + 11)
    assert breaches(wire, "P15") == []


def test_p15_fails_a_test_request_unanswered_or_answered_late_or_with_another_112() -> None:
    wire = Wire()
    wire.logon(1, T0)
    unanswered = wire.sim(1, "1", [(112, "CONF-1")], at=T0 + 1)
    late = wire.sim(1, "1", [(112, "CONF-2")], at=T0 + 2)
    wire.client(1, "0", [(112, "CONF-2")], at=T0 + 6.5)
    wrong_id = wire.sim(1, "1", [(112, "CONF-3")], at=T0 + 7)
    wire.client(1, "0", [(112, "CONF-X")], at=T0 + 7.1)
    wire.sim(1, "0", at=T0 + 12)
    assert breaches(wire, "P15") == [("P15", unanswered), ("P15", late), ("P15", wrong_id)]


# --- P16 -------------------------------------------------------------------------------------------


def test_p16_passes_ten_connections_a_minute_and_one_retry_per_permanent_refusal() -> None:
    wire = Wire()
    for n in range(CONNECTS_PER_MINUTE):
        wire.logon(n + 1, T0 + n * 5)
    wire.logon(99, T0 + 60.5)  # the first connection is more than a minute old
    for n, text in enumerate([TEXT_TIER_NOT_ALLOWED, "Invalid TargetCompID", "Logon signature does not verify"]):
        wire.logon(200 + n, T0 + 200 + n * 10, session=RT, reset=False, answered=False)
        wire.sim(200 + n, "5", [(58, text)], at=T0 + 200.1 + n * 10, session=RT)
    wire.logon(210, T0 + 300, session=RT, reset=False)  # the one retry after the last refusal: accepted
    assert breaches(wire, "P16") == []


def test_p16_fails_an_eleventh_connection_in_a_minute_and_a_second_retry_after_the_same_refusal() -> None:
    wire = Wire()
    firsts = [wire.logon(n + 1, T0 + n * 5) for n in range(CONNECTS_PER_MINUTE + 1)]
    for n in range(3):
        wire.logon(100 + n, T0 + 200 + n * 10, session=RT, reset=False, answered=False)
        wire.sim(100 + n, "5", [(58, TEXT_TIER_NOT_ALLOWED)], at=T0 + 200.1 + n * 10, session=RT)
    third_try = 2 * (CONNECTS_PER_MINUTE + 1) + 4  # the Logon of connection 102
    assert wire.messages[third_try].connection == 102
    assert breaches(wire, "P16") == [("P16", firsts[CONNECTS_PER_MINUTE]), ("P16", third_try)]


def test_findings_come_in_message_order_then_rule_order() -> None:
    wire = Wire()
    wire.logon(1, T0, flags=[(20126, "Y"), (21011, "Y"), (50, "x")])
    wire.order(1, T0 + 1, "o-1", ord_type="1")
    assert breaches(wire) == [("P6", 0), ("P8", 2), ("P14", 2)]
    assert isinstance(RULES["P8"], Rule) and RULES["P1"].note  # P1's note says TLS is not on the wire
