"""Kalshi's additions merged into the quickfix base dictionaries: Kalshi's messages parse and
validate with validation on, in both dialects, and what Kalshi does not require is not required."""

from __future__ import annotations

from pathlib import Path

import pytest
import quickfix as fix

from fixengine.fix.dialect import Dialect
from fixengine.errors import FixEngineError
from fixengine.fix import dictionary
from fixengine.fix.dictionary import base_dictionary_dir, build_dictionaries, fix44_as_the_gateway_speaks
from fixengine.fix.framing import encode

HEADER = [(34, "2"), (49, "KalshiNR"), (56, "key"), (52, "20261121-17:00:00.000")]

KALSHI_MESSAGES = {
    "UOG create": [(35, "UOG"), *HEADER, (20131, "1"), (20132, "100")],
    "UOH": [(35, "UOH"), *HEADER, (20130, "9f1b5f0e-7a4e-4d5b-9f1b-5f0e7a4e4d5b"), (20132, "100"), (79, "0")],
    "U1": [(35, "U1"), *HEADER, (21001, "12345;67890"), (21002, "12350;67895")],
    "U2": [(35, "U2"), *HEADER, (45, "7"), (21003, "12")],
    "U3": [(35, "U3"), *HEADER, (45, "7"), (21004, "3"), (58, "BeginExecID too small")],
    "UMS": [
        (35, "UMS"), *HEADER, (20105, "settle-123"), (55, "HIGHNY-23DEC31"), (715, "20231231"), (20107, "yes"),
        (730, "100.00"), (20108, "1"), (20109, "user-456"), (20110, "24"), (704, "100"), (705, "0"),
        (1703, "1"), (1704, "100.00"), (1705, "PAYOUT"), (136, "1"), (137, "0.00"), (138, "USD"), (139, "4"),
        (891, "0"), (893, "Y"),
    ],
    "U9": [(35, "U9"), *HEADER, (117, "q-1"), (298, "0")],
    "Kalshi trade report": [
        (35, "8"), *HEADER, (37, "o-1"), (11, "c-1"), (17, "4;7"), (150, "F"), (39, "1"), (55, "HIGHNY-23DEC31"),
        (54, "1"), (38, "10.00"), (44, "45"), (151, "6.00"), (14, "4.00"), (6, "45"), (31, "45"), (32, "4.00"),
        (60, "20261121-17:00:00.000"), (880, "t-1"), (1057, "Y"), (704, "4.00"), (705, "0"),
        (136, "1"), (137, "0.07"), (138, "USD"), (139, "4"), (891, "0"),
        (1703, "1"), (1704, "-1.80"), (1705, "BALANCE"), (79, "0"),
    ],
    "Kalshi order": [
        (35, "D"), *HEADER, (11, "c-1"), (55, "HIGHNY-23DEC31"), (54, "2"), (38, "10"), (40, "2"), (44, "45"),
        (59, "1"), (60, "20261121-17:00:00.000"), (18, "6"), (2964, "2"), (21006, "Y"), (21009, "12.50"), (79, "3"),
    ],
}


# Order entry as Kalshi's tables have it (fix-spec §10.2, §10.4-§10.6): no TransactTime (60).
WITHOUT_TRANSACT_TIME = {
    "D": [(35, "D"), *HEADER, (11, "c-1"), (38, "10"), (40, "2"), (54, "1"), (55, "HIGHNY-23DEC31"), (44, "75"), (59, "1")],
    "F": [(35, "F"), *HEADER, (11, "c-2"), (41, "c-1"), (54, "1"), (55, "HIGHNY-23DEC31")],
    "G": [(35, "G"), *HEADER, (11, "c-3"), (41, "c-1"), (38, "5"), (40, "2"), (54, "1"), (55, "HIGHNY-23DEC31"), (44, "76")],
    "q": [(35, "q"), *HEADER, (11, "c-4"), (530, "6")],
}


def parse_and_validate(dialect: Dialect, dictionaries, text: bytes) -> fix.Message:
    session, app = dictionaries[dialect]
    if dialect.is_fixt:
        message = fix.Message(text.decode(), session, app, True)
        fix.DataDictionary.validate(message, session, app)
    else:
        message = fix.Message(text.decode(), session, True)
        session.validate(message)
    return message


@pytest.mark.parametrize("dialect", list(Dialect))
@pytest.mark.parametrize("name", list(KALSHI_MESSAGES))
def test_kalshi_messages_validate(dictionaries, dialect: Dialect, name: str) -> None:
    text = encode(dialect.begin_string, KALSHI_MESSAGES[name])
    message = parse_and_validate(dialect, dictionaries, text)
    assert message.getHeader().getField(35) == KALSHI_MESSAGES[name][0][1]


@pytest.mark.parametrize("dialect", list(Dialect))
def test_logon_with_every_kalshi_flag_validates(dictionaries, dialect: Dialect) -> None:
    fields = [(35, "A"), (34, "1"), (49, "key"), (56, "KalshiRT"), (52, "20261121-17:00:00.000"), (98, "0"), (108, "30")]
    fields += [(95, "4"), (96, "abcd"), (141, "Y")]
    fields += [(tag, "Y") for tag in (8013, 20127, 21005, 21007, 21008, 21011, 21012, 21026, 21027)]
    fields += [(20200, "24")]
    if dialect.is_fixt:
        fields.append((1137, "9"))
    session, _ = dictionaries[dialect]
    message = fix.Message(encode(dialect.begin_string, fields).decode(), session, True)
    session.validate(message)


@pytest.mark.parametrize("dialect", list(Dialect))
def test_validation_stays_on(dictionaries, dialect: Dialect) -> None:
    """A wrong enum value in a Kalshi field is still caught: the merge did not switch checks off."""
    bad = [(35, "UOG"), *HEADER, (20131, "9")]
    with pytest.raises(fix.IncorrectTagValue):
        parse_and_validate(dialect, dictionaries, encode(dialect.begin_string, bad))
    missing = [(35, "U1"), *HEADER]
    with pytest.raises(fix.RequiredTagMissing):
        parse_and_validate(dialect, dictionaries, encode(dialect.begin_string, missing))
    unknown_type = [(35, "UZZ"), *HEADER]
    with pytest.raises(fix.InvalidMessageType):
        parse_and_validate(dialect, dictionaries, encode(dialect.begin_string, unknown_type))


@pytest.mark.parametrize("msg_type", list(WITHOUT_TRANSACT_TIME))
def test_order_entry_without_transact_time_is_kalshis_not_the_gateways(dictionaries, tmp_path: Path, msg_type: str) -> None:
    """Both Kalshi dialects take D, F, G and q without TransactTime; the OMS gateway's FIX 4.4 (the
    acceptor's stock FIX44.xml and what the gateway checks its own messages with) still requires it."""
    for dialect in Dialect:
        parse_and_validate(dialect, dictionaries, encode(dialect.begin_string, WITHOUT_TRANSACT_TIME[msg_type]))
    text = encode("FIX.4.4", WITHOUT_TRANSACT_TIME[msg_type]).decode()
    for path in (base_dictionary_dir() / "FIX44.xml", fix44_as_the_gateway_speaks(tmp_path)):
        standard = fix.DataDictionary(str(path))
        with pytest.raises(fix.RequiredTagMissing) as missing:
            standard.validate(fix.Message(text, standard, True))
        assert missing.value.field == 60


# What Kalshi sends, as its tables have it: a mass cancel report with 11, 37, 531 (§10.6) and a cancel
# reject without OrigClOrdID (§11.7): no MassCancelRequestType (530), no MassActionReportID (1369).
KALSHI_SENDS = {
    "r": [(35, "r"), *HEADER, (11, "mc-1"), (37, "op-1"), (531, "6")],
    "9": [(35, "9"), *HEADER, (37, "NONE"), (11, "c-9"), (39, "8"), (434, "1"), (102, "1"), (58, "ORDER_NOT_FOUND")],
}


@pytest.mark.parametrize("dialect", list(Dialect))
@pytest.mark.parametrize("msg_type", list(KALSHI_SENDS))
def test_what_kalshi_sends_passes_the_engines_checks(dictionaries, dialect: Dialect, msg_type: str) -> None:
    message = parse_and_validate(dialect, dictionaries, encode(dialect.begin_string, KALSHI_SENDS[msg_type]))
    assert message.getHeader().getField(35) == msg_type


def test_a_relax_must_name_a_field_its_message_lists(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A stale <relax> (the base dictionary moved the field, or a typo) is an error naming both."""
    text = dictionary.additions_path().read_text()
    for bad, error in (('<relax message="NewOrderSingle" field="QuoteReqID"/>', "QuoteReqID: NewOrderSingle does not list it"),
                       ('<relax message="NewOrderSingel" field="TransactTime"/>', "unknown message NewOrderSingel")):
        additions = tmp_path / f"{len(error)}.xml"
        additions.write_text(text.replace("</application>", bad + "</application>"))
        monkeypatch.setattr(dictionary, "additions_path", lambda path=additions: path)
        with pytest.raises(FixEngineError, match=error):
            build_dictionaries(Dialect.FIXT11, tmp_path / "out")


def test_merged_files_are_reused_when_unchanged(tmp_path: Path) -> None:
    first = build_dictionaries(Dialect.FIXT11, tmp_path)
    second = build_dictionaries(Dialect.FIXT11, tmp_path)
    assert first == second
    assert first.session != first.application
    assert sorted(p.name.split("-")[0] for p in tmp_path.glob("*.xml")) == ["FIX50SP2", "FIXT11"]


def test_kalshi_dialect_keeps_only_the_messages_kalshi_supports(dictionaries) -> None:
    """35=AE (TradeCaptureReport) is standard FIX but not Kalshi's: the fixt11 application
    dictionary does not know it; FIX 4.4 keeps the whole standard for OMSs."""
    trade_capture = [(35, "AE"), *HEADER, (571, "r-1"), (17, "e-1")]
    with pytest.raises(fix.InvalidMessageType):
        parse_and_validate(Dialect.FIXT11, dictionaries, encode("FIXT.1.1", trade_capture))
    _, fix44 = dictionaries[Dialect.FIX44]
    assert fix44.isMsgType("AE")
