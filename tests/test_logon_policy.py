"""The simulator's Logon checks as a pure function: every refusal, in Kalshi's order (spec §24.2)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from functools import partial

import pytest

from conformance.harness import signed_logon
from fixengine.fix.dialect import Dialect
from fixengine.kalshi.facts import SessionType
from fixengine.kalshi.signing import generate_private_key
from simulator.config import ListenerSpec
from simulator.fix.logon import Account, LogonPolicy, check_logon, parse_sending_time

NOW = datetime(2026, 11, 21, 17, 0, 0, tzinfo=timezone.utc)
KEY = generate_private_key()
OTHER_KEY = generate_private_key()
KEY_ID = "5d0c4c1e-2222-4000-8000-000000000001"
ACCOUNTS = {KEY_ID: Account(KEY_ID, KEY.public_key(), "premier")}
POLICY = LogonPolicy(sending_time_tolerance=30, min_heartbeat_interval=1, fix_tiers=frozenset({"premier"}))
NR_PORT = ListenerSpec("KalshiNR", Dialect.FIXT11, frozenset({SessionType.NR}), 8228)
RT_PORT = ListenerSpec("KalshiRT", Dialect.FIXT11, frozenset({SessionType.RT}), 8230)
FIX44_PORT = ListenerSpec("fix44", Dialect.FIX44, frozenset(SessionType), 8240)


# The harness's Logon from this module's key, sent at NOW (``private_key=OTHER_KEY`` signs it wrongly).
logon = partial(signed_logon, KEY_ID, private_key=KEY, sent_at=NOW)


def refusal(fields: dict[int, str], listener: ListenerSpec = NR_PORT, connected: set[str] | None = None, accounts=ACCOUNTS):
    result = check_logon(fields, listener, accounts, connected or set(), POLICY, NOW)
    return result.text if result else None


def test_a_correct_logon_is_accepted_in_both_dialects() -> None:
    assert refusal(logon()) is None
    assert refusal(logon(begin="FIX.4.4"), FIX44_PORT) is None
    assert refusal(logon(target="KalshiRT", extra={141: "N"}), RT_PORT) is None  # RT may keep its sequence


@pytest.mark.parametrize(
    "fields, listener, expected",
    [
        (logon(begin="FIX.4.2"), NR_PORT, "Unsupported BeginString FIX.4.2: this port speaks FIXT.1.1"),
        (logon(begin="FIX.4.4"), NR_PORT, "Unsupported BeginString FIX.4.4"),
        (logon(extra={1137: None}), NR_PORT, "DefaultApplVerID (1137) must be 9"),
        (logon(target="KalshiRT"), NR_PORT, "Invalid TargetCompID"),
        (logon(begin="FIX.4.4", target="Kalshi"), FIX44_PORT, "Invalid TargetCompID"),
        (logon(extra={49: "unknown-key"}), NR_PORT, "Invalid SenderCompID: unknown API key"),
        (logon(sent_at=NOW - timedelta(seconds=31)), NR_PORT, "SendingTime accuracy problem"),
        (logon(sent_at=NOW + timedelta(seconds=31)), NR_PORT, "SendingTime accuracy problem"),
        (logon(extra={52: "yesterday"}), NR_PORT, "SendingTime (52) is missing or malformed"),
        (logon(extra={96: None}), NR_PORT, "Signature missing: RawData (96) is required"),
        (logon(extra={95: "12"}), NR_PORT, "RawDataLength (95) does not match"),
        (logon(private_key=OTHER_KEY), NR_PORT, "Invalid signature"),
        (logon(extra={34: "2"}), NR_PORT, "Invalid signature"),  # the signature covers MsgSeqNum as sent
        (logon(reset=False), NR_PORT, "ResetSeqNumFlag (141) must be Y on KalshiNR"),
        (logon(extra={141: "N"}), NR_PORT, "ResetSeqNumFlag (141) must be Y on KalshiNR"),
        (logon(extra={50: "trader1"}), NR_PORT, "SenderSubID (50) is not allowed on Logon"),
        (logon(extra={108: "0"}), NR_PORT, "HeartBtInt (108) must be a whole number of seconds >= 1"),
        (logon(extra={21005: "yes"}), NR_PORT, "UseDollars (21005) must be Y or N"),
        (logon(extra={20126: "Y"}), NR_PORT, "ListenerSession (20126) requires SkipPendingExecReports (21011)=Y"),
        (logon(extra={20126: "Y", 21011: "Y", 8013: "Y"}), NR_PORT, "CancelOrdersOnDisconnect (8013) is not allowed on a listener"),
        (logon(extra={20200: "24"}), NR_PORT, "MessageRetentionPeriod (20200) is not allowed on KalshiNR"),
        (logon(target="KalshiRT", extra={20200: "73"}), RT_PORT, "MessageRetentionPeriod (20200) must be 1 to 72 hours"),
        (logon(target="KalshiDC", extra={20127: "Y"}), FIX44_PORT, "Unsupported BeginString FIXT.1.1: this port speaks FIX.4.4"),
        (logon(begin="FIX.4.4", target="KalshiDC", extra={20127: "Y"}), FIX44_PORT, "ReceiveSettlementReports (20127) is not allowed on KalshiDC"),
        (logon(begin="FIX.4.4", target="KalshiDC", extra={20126: "Y", 21011: "Y"}), FIX44_PORT, "ListenerSession (20126) is not allowed on KalshiDC"),
    ],
)
def test_each_refusal_names_the_problem(fields, listener, expected) -> None:
    text = refusal(fields, listener)
    assert text is not None and text.startswith(expected), text


def test_legacy_21003_satisfies_the_listener_rule() -> None:
    assert refusal(logon(extra={20126: "Y", 21003: "Y"})) is None


def test_second_connection_for_a_key_already_exists() -> None:
    assert refusal(logon(), connected={KEY_ID}) == "already exists"
    # ... across session types too: one connection per API key
    assert refusal(logon(target="KalshiRT", extra={141: "N"}), RT_PORT, connected={KEY_ID}) == "already exists"


def test_tier_below_premier_is_not_allowed_for_fix() -> None:
    advanced = {KEY_ID: Account(KEY_ID, KEY.public_key(), "advanced")}
    assert refusal(logon(), accounts=advanced) == "API usage level is not allowed for FIX"


def test_checks_run_in_kalshi_order() -> None:
    # Wrong port AND stale AND badly signed: the port binding is reported first.
    fields = logon(target="KalshiRT", sent_at=NOW - timedelta(minutes=5), private_key=OTHER_KEY)
    assert refusal(fields) == "Invalid TargetCompID"
    # Stale and badly signed: the clock is reported before the signature, with 373=10.
    result = check_logon(logon(sent_at=NOW - timedelta(minutes=5), private_key=OTHER_KEY), NR_PORT, ACCOUNTS, set(), POLICY, NOW)
    assert result is not None and result.text == "SendingTime accuracy problem" and result.reject_reason == 10
    # Already connected beats a bad tier.
    advanced = {KEY_ID: Account(KEY_ID, KEY.public_key(), "advanced")}
    assert refusal(logon(), accounts=advanced, connected={KEY_ID}) == "already exists"


def test_sending_time_parsing() -> None:
    assert parse_sending_time("20261121-17:00:00.123") == NOW.replace(microsecond=123000)
    assert parse_sending_time("20261121-17:00:00") == NOW
    assert parse_sending_time("20261121-17:00:00.123456789") == NOW.replace(microsecond=123456)
    assert parse_sending_time("2026-11-21T17:00:00") is None
