"""The simulator's side of a conformance run: its recording of a client (simulator.recording), every
FIX message both ways on every connection, numbered per connection, refused Logons and what faults
swallow or cut included, and every REST call with its key and status; and the faults the session
scenarios added (a TestRequest on cue, a standing Logon refusal, a reported fill, the simulator
forgetting what it received). Real sockets, a real simulator."""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conformance.harness import TICKER, ApiKey, RawClient, sending_time_now
from fixengine.fix.framing import encode
from fixengine.kalshi.facts import SessionType
from simulator.config import MarketEntry, SimulatorConfig
from simulator.recording import ConnectionEnded, RestRecord, WireRecord
from simulator.server import Simulator

NR, RT = SessionType.NR.value, SessionType.RT.value


class Recorded:
    """What the simulator hands its sinks (on its own threads), with waiting."""

    def __init__(self) -> None:
        self.items: list[WireRecord | ConnectionEnded | RestRecord] = []
        self._changed = threading.Condition()

    def __call__(self, item: WireRecord | ConnectionEnded | RestRecord) -> None:
        with self._changed:
            self.items.append(item)
            self._changed.notify_all()

    def wait_for(self, condition: Callable[[list], bool], timeout: float = 10.0) -> None:
        with self._changed:
            assert self._changed.wait_for(lambda: condition(self.items), timeout), f"not recorded: {self.items}"

    def messages(self, connection: int) -> list[tuple[bool, str]]:
        """(inbound, MsgType) of each message of ``connection``."""
        return [(r.inbound, _msg_type(r.raw)) for r in self.items if isinstance(r, WireRecord) and r.connection == connection]

    def ended(self, connection: int) -> ConnectionEnded | None:
        return next((r for r in self.items if isinstance(r, ConnectionEnded) and r.connection == connection), None)


def _msg_type(raw: bytes) -> str:
    start = raw.index(b"\x0135=") + 4
    return raw[start:raw.index(b"\x01", start)].decode()


@pytest.fixture
def recording(tmp_path: Path, make_key: Callable[[], ApiKey]) -> Iterator[tuple[Simulator, ApiKey, Recorded]]:
    key = make_key()
    recorded = Recorded()
    config = SimulatorConfig(data_dir=tmp_path / "sim", accounts=[key.account()], listeners={NR: 0, RT: 0},
                             rest_port=0, markets=[MarketEntry(ticker=TICKER)])
    sim = Simulator(config, on_wire=recorded, on_rest=recorded)
    sim.start()
    try:
        yield sim, key, recorded
    finally:
        sim.stop()


def test_both_directions_of_every_connection_are_recorded_with_its_number_refused_logon_included(recording) -> None:
    sim, key, recorded = recording
    sim.faults.refuse_next_logon(key.key_id, "not today")
    refused = RawClient(sim, key)
    assert refused.logon(heartbeat=4)[58] == "not today"
    refused.close()
    recorded.wait_for(lambda _: recorded.ended(1) is not None)

    client = RawClient(sim, key)
    assert client.logon(heartbeat=4)[35] == "A"
    client.test_request("T1")
    assert client.read()[112] == "T1"
    client.close()
    recorded.wait_for(lambda _: recorded.ended(2) is not None)

    assert recorded.messages(1) == [(True, "A"), (False, "5")]
    assert recorded.ended(1).by_client  # type: ignore[union-attr]
    assert recorded.messages(2) == [(True, "A"), (False, "A"), (True, "1"), (False, "0")]
    wire = [r for r in recorded.items if isinstance(r, WireRecord)]
    assert {(r.session, r.key_id) for r in wire} == {(NR, key.key_id)}
    assert all(r.raw.startswith(b"8=FIXT.1.1\x01") and r.raw.endswith(b"\x01") for r in wire)
    assert [r.at for r in wire] == sorted(r.at for r in wire)


def test_what_silence_swallows_and_a_close_cuts_is_recorded_as_it_crossed_the_wire(recording) -> None:
    sim, key, recorded = recording
    client = RawClient(sim, key)
    client.logon(heartbeat=4)
    sim.faults.go_silent(key.key_id)
    client.test_request("lost")  # QuickFIX never sees it: the relay swallows it
    recorded.wait_for(lambda _: (True, "1") in recorded.messages(1))
    client.close()
    recorded.wait_for(lambda _: recorded.ended(1) is not None)
    assert recorded.messages(1) == [(True, "A"), (False, "A"), (True, "1")]

    again = RawClient(sim, key)
    again.logon(heartbeat=4)
    sim.faults.close(key.key_id, mid_message=True)
    again.test_request("cut")  # its Heartbeat goes out half-written, then the simulator closes
    recorded.wait_for(lambda _: recorded.ended(2) is not None)
    last = [r for r in recorded.items if isinstance(r, WireRecord) and r.connection == 2][-1]
    assert not last.inbound and b"\x0110=" not in last.raw  # half a message: no CheckSum
    assert not recorded.ended(2).by_client  # type: ignore[union-attr]
    again.close()


def test_rest_calls_are_recorded_with_method_path_status_and_key(recording) -> None:
    sim, key, recorded = recording
    with urllib.request.urlopen(f"{sim.rest_url}/exchange/status?probe=1", timeout=5) as answer:
        assert answer.status == 200
    unsigned = urllib.request.Request(f"{sim.rest_url}/portfolio/balance", headers={"KALSHI-ACCESS-KEY": key.key_id})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(unsigned, timeout=5)
    assert refused.value.code == 401
    recorded.wait_for(lambda items: len([r for r in items if isinstance(r, RestRecord)]) == 2)
    status, balance = [r for r in recorded.items if isinstance(r, RestRecord)]
    assert (status.method, status.path, status.status, status.key_id) == \
        ("GET", "/trade-api/v2/exchange/status?probe=1", 200, None)
    assert (balance.method, balance.path, balance.status, balance.key_id) == \
        ("GET", "/trade-api/v2/portfolio/balance", 401, key.key_id)
    assert status.at <= balance.at


def read_until(client: RawClient, done: Callable[[dict[int, str]], bool]) -> dict[int, str]:
    while not done(message := client.read()):
        pass
    return message


def test_a_testrequest_on_cue_and_a_standing_logon_refusal(recording) -> None:
    sim, key, _ = recording
    sim.faults.refuse_next_logon(key.key_id, "come back later", count=2)
    for _ in range(2):
        refused = RawClient(sim, key)
        assert refused.logon(heartbeat=4)[58] == "come back later"
        refused.close()
    client = RawClient(sim, key)
    assert client.logon(heartbeat=4)[35] == "A"
    sim.faults.test_request(key.key_id, "CONF-9")
    request = client.read()
    assert (request[35], request[112]) == ("1", "CONF-9")
    client.close()


def test_a_reported_fill_reaches_the_orders_session(recording) -> None:
    sim, key, _ = recording
    client = RawClient(sim, key)
    client.logon(heartbeat=4)
    client.order("c1")
    order_id = read_until(client, lambda m: m.get(150) == "0")[37]
    sim.admin.add_fill(order_id, "1", report=True)
    fill = read_until(client, lambda m: m.get(35) == "8")
    assert (fill[150], fill[11], fill[32]) == ("F", "c1", "1.00")
    client.close()


def send_as(client: RawClient, seq: int, msg_type: str, fields: list[tuple[int, str]]) -> None:
    header = [(35, msg_type), (34, str(seq)), (49, client.key.key_id), (52, sending_time_now()), (56, client.target)]
    client.sock.sendall(encode(client.begin, header + fields))


def test_a_forgotten_range_is_asked_for_again_and_a_possdup_copy_not_applied_twice(recording) -> None:
    sim, key, _ = recording
    client = RawClient(sim, key, target=RT)
    client.logon(heartbeat=4)
    order = [(11, "c1"), (55, TICKER), (54, "1"), (38, "1"), (40, "2"), (44, "40"), (59, "1"), (60, sending_time_now())]
    send_as(client, 2, "D", order)
    read_until(client, lambda m: m.get(150) == "0")
    sim.faults.forget_inbound(key.key_id, 2)
    send_as(client, 3, "0", [])  # too high now: the simulator asks for 2 on
    request = read_until(client, lambda m: m.get(35) == "2")
    assert (request[7], request[16]) == ("2", "0")
    sent = order[:-1] + [(60, order[-1][1])]
    send_as(client, 2, "D", [(43, "Y"), (122, sending_time_now()), *sent])
    send_as(client, 3, "4", [(43, "Y"), (122, sending_time_now()), (123, "Y"), (36, "4")])
    send_as(client, 4, "1", [(112, "after")])
    # Up to the answer to "after" (an idle Heartbeat of the simulator's may come first): no report
    # and no Reject for the copy on the way.
    answer = read_until(client, lambda m: m.get(35) in ("8", "3") or (m.get(35) == "0" and m.get(112) == "after"))
    assert (answer[35], answer.get(112)) == ("0", "after")
    assert len(sim.exchange.open_orders()) == 1
    client.close()
