"""The simulator's drop copy (KalshiDC, EventResendRequest U1 -> reports, then U2 or U3) and listener
sessions (20126=Y: every report of the account as it happens, order entry refused), over raw FIX on
real sockets, with keys that share one account."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from conformance.harness import TICKER, RawClient, sending_time_now
from fixengine.kalshi.facts import SessionType
from simulator.config import MarketEntry
from simulator.fix.drop_copy import BEGIN_TOO_SMALL, END_TOO_LARGE, TOO_MANY_REQUESTS, BadExecID, DropCopyLog, Kept, Refused

DC = SessionType.DC.value
T0 = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def exchange(make_key, start_simulator):
    desk, dc, listener, other = make_key(), make_key(), make_key(), make_key()
    accounts = [desk.account(), dc.account(of=desk), listener.account(of=desk), other.account()]
    # Replays answered at once: the one-a-second limit is the log's own test below.
    sim, _ = start_simulator(accounts, markets=[MarketEntry(ticker=TICKER)], drop_copy_request_interval=0)
    return sim, desk, dc, listener, other


def read_until(client: RawClient, msg_type: str, limit: int = 20) -> list[dict[int, str]]:
    """Messages up to and including the first of ``msg_type`` (heartbeats skipped)."""
    seen = []
    for _ in range(limit):
        message = client.read()
        if message[35] == "0":
            continue
        seen.append(message)
        if message[35] == msg_type:
            return seen
    raise AssertionError(f"no 35={msg_type} in {seen}")


def sell_yes(client: RawClient, cl_ord_id: str, price: str = "40") -> int:
    return client.send("D", [(11, cl_ord_id), (55, TICKER), (54, "2"), (38, "1"), (40, "2"), (44, price), (59, "1"),
                             (60, sending_time_now())])


def reports(messages: list[dict[int, str]]) -> list[dict[int, str]]:
    return [m for m in messages if m[35] == "8"]


def trade_on_desk(sim, desk, other) -> tuple[RawClient, list[dict[int, str]]]:  # type: ignore[no-untyped-def]
    """The desk rests a buy, has an order rejected, and is filled by the other account: the desk's
    reports as it received them."""
    trader, seller = RawClient(sim, desk), RawClient(sim, other)
    assert trader.logon()[35] == "A" and seller.logon()[35] == "A"
    trader.order("rest-1")
    received = read_until(trader, "8") + read_until(trader, "8")  # pending new, then new
    trader.order("bad-1", ticker="NO-SUCH-MARKET")
    received += read_until(trader, "8")
    sell_yes(seller, "sell-1")
    received += read_until(trader, "8")
    seller.close()
    return trader, received


def test_a_drop_copy_replays_the_accounts_persistent_reports_by_exec_id(exchange) -> None:
    sim, desk, dc, _, other = exchange
    trader, received = trade_on_desk(sim, desk, other)
    persistent = [r for r in reports(received) if r[17] != "-1;-1" and r[150] != "8"]
    assert [r[150] for r in persistent] == ["0", "F"]  # the reject and the pending report are not replayed

    copy = RawClient(sim, dc, target=DC)
    assert copy.logon()[35] == "A"
    request = copy.send("U1", [(21001, "0;0")])
    answer = read_until(copy, "U2")
    assert [(r[17], r[37], r[150], r[14]) for r in reports(answer)] == [(r[17], r[37], r[150], r[14]) for r in persistent]
    assert answer[-1][45] == str(request) and answer[-1][21003] == "2"

    # One report, bounds inclusive.
    copy.send("U1", [(21001, persistent[1][17]), (21002, persistent[1][17])])
    again = read_until(copy, "U2")
    assert [r[17] for r in reports(again)] == [persistent[1][17]] and again[-1][21003] == "1"
    trader.close()
    copy.close()


def test_a_drop_copy_refuses_what_it_cannot_replay(exchange) -> None:
    sim, desk, dc, _, other = exchange
    trader, received = trade_on_desk(sim, desk, other)
    latest = [r for r in reports(received) if r[17] != "-1;-1"][-1][17]
    clock, event = latest.split(";")
    copy = RawClient(sim, dc, target=DC)
    assert copy.logon()[35] == "A"

    sim.faults.refuse_next_event_resend(dc.key_id, 2)
    request = copy.send("U1", [(21001, "0;0")])
    [refused] = read_until(copy, "U3")
    assert (refused[45], refused[21004]) == (str(request), "2")

    # EndExecID beyond the latest on its shard: reason 4.
    copy.send("U1", [(21001, "0;0"), (21002, f"{int(clock) + 1};{event}")])
    [refused] = read_until(copy, "U3")
    assert refused[21004] == str(END_TOO_LARGE)

    # Not an ExecID, or bounds on two shards: a session Reject naming the field.
    request = copy.send("U1", [(21001, "yesterday")])
    [reject] = read_until(copy, "3")
    assert (reject[45], reject[371], reject[373]) == (str(request), "21001", "6")
    request = copy.send("U1", [(21001, "1;1"), (21002, "9;9;1")])
    [reject] = read_until(copy, "3")
    assert (reject[45], reject[371]) == (str(request), "21002")
    trader.close()
    copy.close()


def test_a_listener_gets_every_report_of_the_account_in_its_own_price_unit_and_cannot_trade(exchange) -> None:
    sim, desk, _, listener, other = exchange
    watch = RawClient(sim, listener)
    assert watch.logon(extra=[(20126, "Y"), (21011, "Y"), (21005, "Y")])[35] == "A"
    trader, received = trade_on_desk(sim, desk, other)
    sent = [r for r in reports(received) if r[17] != "-1;-1"]
    copies = [read_until(watch, "8")[-1] for _ in sent]
    assert [(c[17], c[37], c[150]) for c in copies] == [(r[17], r[37], r[150]) for r in sent]
    # The desk trades in cents; the listener logged on with UseDollars (21005=Y).
    assert (sent[0][44], copies[0][44]) == ("40", "0.4000")
    assert copies[-1][31] == "0.4000" and copies[-1][14] == "1.00"

    for msg_type, fields in (("D", [(11, "w-1"), (55, TICKER), (54, "1"), (38, "1"), (40, "2"), (44, "0.40")]),
                             ("F", [(11, "w-2"), (41, "rest-1"), (55, TICKER), (54, "1")]),
                             ("q", [(11, "w-3"), (530, "6")])):
        request = watch.send(msg_type, fields)
        [refused] = read_until(watch, "j")
        assert (refused[45], refused[372], refused[380]) == (str(request), msg_type, "6")
        assert "listener" in refused[58]
    assert sim.exchange.open_orders(desk.key_id) == []  # the desk's order was filled; nothing new entered
    trader.close()
    watch.close()


# --- the drop-copy log, pure -------------------------------------------------------------------


def kept(log: DropCopyLog, *exec_ids: str, at: datetime = T0) -> None:
    for exec_id in exec_ids:
        log.record("acct", exec_id, [(17, exec_id)], False, at)


def ids(found: list[Kept] | Refused) -> list[str]:
    assert not isinstance(found, Refused), found
    return [k.fields[0][1] for k in found]


def test_the_log_replays_inclusive_bounds_on_the_requested_shard_only() -> None:
    log = DropCopyLog()
    kept(log, "1;1", "2;2", "2;3;1", "3;4", "10;5")
    assert ids(log.replay("s", "acct", "2;2", "3;4", T0)) == ["2;2", "3;4"]
    assert ids(log.replay("s", "acct", "0;0", None, T0 + timedelta(seconds=1))) == ["1;1", "2;2", "3;4", "10;5"]
    assert ids(log.replay("s", "acct", "0;0;1", None, T0 + timedelta(seconds=2))) == ["2;3;1"]
    assert ids(log.replay("s", "other", "0;0", None, T0 + timedelta(seconds=3))) == []


def test_the_log_keeps_three_hours_and_refuses_a_begin_before_them() -> None:
    log = DropCopyLog()
    kept(log, "1;1", "1;2")
    kept(log, "5;3", at=T0 + timedelta(hours=2))
    later = T0 + timedelta(hours=3, minutes=1)
    for begin in ("1;1", "1;2", "0;0"):  # at or before the last report that aged out
        refused = log.replay(f"s-{begin}", "acct", begin, None, later)
        assert isinstance(refused, Refused) and refused.reason == BEGIN_TOO_SMALL
    assert ids(log.replay("u", "acct", "1;3", None, later)) == ["5;3"]  # after the last report aged out
    assert isinstance(end := log.replay("v", "acct", "1;3", "6;0", later), Refused) and end.reason == END_TOO_LARGE


def test_the_log_allows_one_request_a_second_per_session() -> None:
    log = DropCopyLog()
    kept(log, "1;1")
    assert ids(log.replay("s", "acct", "0;0", None, T0)) == ["1;1"]
    refused = log.replay("s", "acct", "0;0", None, T0 + timedelta(milliseconds=999))
    assert isinstance(refused, Refused) and refused.reason == TOO_MANY_REQUESTS
    assert ids(log.replay("other-session", "acct", "0;0", None, T0 + timedelta(milliseconds=999))) == ["1;1"]
    assert ids(log.replay("s", "acct", "0;0", None, T0 + timedelta(seconds=1))) == ["1;1"]


@pytest.mark.parametrize("begin, end, tag", [("x", None, 21001), ("1;2;3;4", None, 21001), ("1;1", "2;2;1", 21002),
                                              ("1;1", "two", 21002)])
def test_the_log_names_the_malformed_bound(begin: str, end: str | None, tag: int) -> None:
    with pytest.raises(BadExecID) as caught:
        DropCopyLog().replay("s", "acct", begin, end, T0)
    assert caught.value.tag == tag
