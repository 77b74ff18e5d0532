"""The simulator accepts what Kalshi accepts and refuses what Kalshi refuses, field by field, in both
dialects, over a real socket with a raw FIX client (as a third-party Kalshi client would talk):

- TransactTime (60), which QuickFIX's FIX 4.4 and FIX 5.0 SP2 dictionaries require on D, F, G and
  q, is not in Kalshi's field tables (fix-spec §10.2, §10.4-§10.6) and Kalshi's own example order
  has none: each of them, without it, gets its execution report, cancel reject or mass cancel
  report, never a Reject (35=3 373=1 371=60);
- a user-defined tag Kalshi does not define gets Kalshi's Reject (fix-spec §18.1): 373=3, "Undefined
  tag received", naming the tag and the message type."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from conformance.harness import NR, TICKER, RawClient
from simulator.config import FIX44_LISTENER, MarketEntry

Message = dict[int, str]


@pytest.fixture(params=[NR, FIX44_LISTENER], ids=["fixt11", "fix44"])
def client(request, make_key, start_simulator):
    """A raw client logged on to KalshiNR, through the FIXT.1.1 port or the FIX 4.4 one."""
    key = make_key()
    sim, events = start_simulator([key.account()], markets=[MarketEntry(ticker=TICKER)],
                                  listeners={NR: 0, FIX44_LISTENER: 0})
    raw = RawClient(sim, key, listener=request.param)
    assert raw.logon()[35] == "A"
    events.wait_for("logged_on", key.key_id)
    yield raw
    raw.close()


def kalshi_order(cl_ord_id: str) -> list[tuple[int, str]]:
    """Kalshi's example NewOrderSingle (fix-spec §10.2), on the simulator's market: no TransactTime."""
    return [(11, cl_ord_id), (38, "10"), (40, "2"), (54, "1"), (55, TICKER), (44, "75"), (59, "1")]


def answers_until(client: RawClient, done: Callable[[Message], bool]) -> list[Message]:
    """What the simulator sends up to and including the first message ``done`` accepts; a Reject or
    BusinessMessageReject on the way fails the test, naming what was refused."""
    seen = []
    while True:
        message = client.read()
        assert message[35] not in ("3", "j"), f"refused: {message}"
        seen.append(message)
        if done(message):
            return seen


def report(exec_type: str, cl_ord_id: str) -> Callable[[Message], bool]:
    return lambda m: m[35] == "8" and m.get(150) == exec_type and m.get(11) == cl_ord_id


def place(client: RawClient, cl_ord_id: str) -> Message:
    """A resting order, entered the harness's way (with TransactTime): its New report."""
    client.order(cl_ord_id)
    return answers_until(client, report("0", cl_ord_id))[-1]


def test_new_order_single_without_transact_time(client: RawClient) -> None:
    fields = kalshi_order("kalshi-example-1")
    assert 60 not in dict(fields)
    client.send("D", fields)
    pending, new = answers_until(client, report("0", "kalshi-example-1"))
    assert (pending[150], pending[39]) == ("A", "A")
    assert (new[39], new[55], new[54], new[38], new[44], new[151]) == ("0", TICKER, "1", "10.00", "75", "10.00")


def test_order_cancel_request_without_transact_time(client: RawClient) -> None:
    order_id = place(client, "to-cancel")[37]
    # Nor OrderQty (38): not required on 35=F since Kalshi v1.0.11 (fix-spec §10.5).
    client.send("F", [(11, "cancel-1"), (41, "to-cancel"), (54, "1"), (55, TICKER)])
    canceled = answers_until(client, report("4", "cancel-1"))[-1]
    assert (canceled[37], canceled[41], canceled[39], canceled[151]) == (order_id, "to-cancel", "4", "0.00")
    client.send("F", [(11, "cancel-2"), (41, "no-such-order"), (54, "1"), (55, TICKER)])
    [reject] = answers_until(client, lambda m: m[35] == "9")
    assert (reject[11], reject[41], reject[434], reject[102]) == ("cancel-2", "no-such-order", "1", "1")


def test_order_cancel_replace_request_without_transact_time(client: RawClient) -> None:
    order_id = place(client, "to-amend")[37]
    client.send("G", [(11, "amend-1"), (41, "to-amend"), (38, "3"), (40, "2"), (54, "1"), (55, TICKER), (44, "41")])
    replaced = answers_until(client, report("5", "amend-1"))[-1]
    assert (replaced[37], replaced[41], replaced[38], replaced[44], replaced[151]) == (order_id, "to-amend", "3.00", "41", "3.00")


def test_order_mass_cancel_request_without_transact_time(client: RawClient) -> None:
    order_id = place(client, "to-sweep")[37]
    client.send("q", [(11, "sweep-1"), (530, "6")])
    seen = answers_until(client, report("4", "to-sweep"))
    [mass] = [m for m in seen if m[35] == "r"]
    assert (mass[11], mass[530], mass[531]) == ("sweep-1", "6", "6")
    assert seen[-1][37] == order_id


def test_undefined_user_defined_tags_get_kalshis_reject(client: RawClient) -> None:
    for tag in (5001, 9999, 20001, 333333):
        seq = client.send("D", [*kalshi_order(f"with-{tag}"), (tag, "x")])
        reject = client.read()
        assert (reject[35], reject[45], reject[58], reject[371], reject[372], reject[373]) == (
            "3", str(seq), "Undefined tag received", str(tag), "D", "3")
    # A Kalshi tag that is defined, but not for 35=D, is still QuickFIX's "not defined for this message".
    seq = client.send("D", [*kalshi_order("with-misplaced"), (20132, "5")])
    reject = client.read()
    assert (reject[35], reject[45], reject[371], reject[373]) == ("3", str(seq), "20132", "2")
    # None of the orders reached the exchange (no report came between); the session goes on.
    client.test_request("after")
    heartbeat = client.read()
    assert (heartbeat[35], heartbeat[112]) == ("0", "after")
