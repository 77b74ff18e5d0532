"""An OMS that stops reading: the gateway drops it after its ``slow_consumer_timeout`` with the
reason logged, holds back what QuickFIX has for it meanwhile (so the service's memory stays
bounded), and the other clients keep trading.

First the acceptors alone (what they expose: bytes held for a client, why it was dropped). Then,
marked slow, the service: for about a minute (``DURATION``) a client keeps logging on, asking for large answers (a resend of
everything the gateway ever sent it and the status of each of its orders) and never reading one
byte of them, while another client on the same port places and cancels orders. The service runs as
``fixengine serve`` in a process of its own; its resident memory is sampled twice a second the whole
time, and must stay within ``RSS_BOUND`` of what it was before the slow client stopped reading.
Measured on a 2-core machine: about 9 MB of growth over the minute (the other client's orders
among it). Without the gate (QuickFIX's acceptor on the public port, as before it) QuickFIX queues
everything in memory and the service grew by 1.4 MB a second, 85 MB in the minute, without end."""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import time
from datetime import datetime, timezone
from decimal import Decimal as D
from pathlib import Path

import pytest

from conformance.harness import session_to
from fixengine.config import GatewayConfig, OmsClientConfig
from fixengine.fix.framing import encode
from fixengine.fix.timestamps import utc_timestamp
from fixengine.gateway.acceptor import OmsAcceptors
from fixengine.gateway.gate import HIGH_WATER
from simulator.config import MarketEntry
from tests.helpers.gateway import TICKER, RawOms, ServeProcess, gateway_config, oms_client_entry, oms_for, wait_until
from tests.helpers.sessions import unused_port

DURATION = 60.0  # seconds the slow client misbehaves for, under load
SLOW_TIMEOUT = 3.0  # its slow_consumer_timeout
RESTING = 300  # its resting orders: each mass status asks about all of them
RSS_BOUND = 40 * 1024 * 1024  # the service's memory may grow this much over the minute, no more
TRADE_TIMEOUT = 10.0  # the other client's every order and cancel is answered within this


class NonReader:
    """An OMS on a bare socket that reads its Logon answer and then never reads again, with a
    small receive buffer so that the kernel holds little for it. It keeps sending, which is how it
    finds out that it has been disconnected."""

    def __init__(self, port: int, sender: str, target: str):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.settimeout(10)
        self.sock.connect(("127.0.0.1", port))
        self.sender, self.target = sender, target
        self.seq = 0

    def send(self, msg_type: str, fields: list[tuple[int, str]]) -> None:
        self.seq += 1
        header = [(35, msg_type), (34, str(self.seq)), (49, self.sender),
                  (52, utc_timestamp(datetime.now(timezone.utc))), (56, self.target)]
        self.sock.sendall(encode("FIX.4.4", header + fields))

    def logon(self, seq: int) -> bool:
        """Log on as message ``seq`` and read the answer: the last thing it ever reads. False if
        the gateway would not have it (its last session is not over yet)."""
        self.seq = seq - 1
        try:
            self.send("A", [(98, "0"), (108, "30")])
            answer = self.sock.recv(4096)
        except OSError:
            return False
        return b"\x0135=A\x01" in answer

    def close(self) -> None:
        self.sock.close()


async def test_the_acceptors_hold_back_a_client_that_stops_reading_and_drop_it_after_its_timeout(tmp_path) -> None:
    port = unused_port()
    lazy = OmsClientConfig(name="lazy", sender_comp_id="LAZY", target_comp_id="GW", port=port, session="nr",
                           max_quantity=D(1), max_notional=D(1), slow_consumer_timeout=1.0)
    acceptors = OmsAcceptors(GatewayConfig(), [lazy], tmp_path, lambda events: None)
    acceptors.start(asyncio.get_running_loop())
    client = None
    try:
        client = await asyncio.to_thread(NonReader, port, "LAZY", "GW")
        assert await asyncio.to_thread(client.logon, 1)
        await wait_until(lambda: acceptors.is_logged_on("lazy"))
        news = [(148, "headline"), (33, "1"), (58, "x" * 4000)]  # News: 4 kB each
        for _ in range(200):  # the kernel's buffers fill first, then the gate's: a few MB
            for _ in range(50):
                acceptors.send("lazy", "B", news)
            with contextlib.suppress(TimeoutError):  # the gate relays on its own thread
                await wait_until(lambda: acceptors.buffered("lazy") > HIGH_WATER, 0.2)
                break
        assert acceptors.buffered("lazy") > HIGH_WATER
        held_from = time.monotonic()
        assert acceptors.buffered("lazy") < HIGH_WATER + 2 * 2**20  # it stopped taking more from QuickFIX
        await wait_until(lambda: acceptors.last_disconnect("lazy") is not None, timeout=10)
        assert time.monotonic() - held_from >= 0.9  # its timeout (1 s), less the polling's slack
        reason = acceptors.last_disconnect("lazy")
        assert reason is not None and reason.startswith("slow consumer: ") and "bytes not read for" in reason
        assert acceptors.buffered("lazy") == 0
        await wait_until(lambda: not acceptors.is_logged_on("lazy"))
    finally:
        if client is not None:
            client.close()
        await acceptors.stop()


def expected_target(store: Path, client: str) -> int:
    """The MsgSeqNum the gateway expects next from ``client``, from its QuickFIX store on disk."""
    text = (store / f"FIX.4.4-FIXENGINE-{client}.seqnums").read_text()
    return int(text.split(":")[1])


async def build_history(port: int, count: int, statuses: int) -> None:
    """The slow client, still a good one: ``count`` resting orders, each acknowledged, and
    ``statuses`` mass status requests answered: what a resend of everything sends it again."""
    raw = RawOms(port, "SLOW", "FIXENGINE")
    try:
        raw.send("A", [(98, "0"), (108, "30")], seq=1)
        assert (await asyncio.to_thread(raw.read))[35] == "A"
        for n in range(count):
            price = f"0.{1 + n % 20:02d}"
            raw.send("D", [(11, f"rest-{n}"), (55, TICKER), (54, "1"), (60, utc_timestamp(datetime.now(timezone.utc))),
                           (38, "1"), (40, "2"), (44, price)])
        acked = 0
        while acked < count:
            message = await asyncio.to_thread(raw.read)
            if message[35] == "8" and message.get(150) == "0":
                acked += 1
            assert message.get(150) != "8" and message[35] != "j", message  # nothing refused
        for n in range(statuses):
            raw.send("AF", [(584, f"before-{n}"), (585, "7")])
        answered = 0
        while answered < statuses * count:
            message = await asyncio.to_thread(raw.read)
            answered += message[35] == "8" and message.get(150) == "I"
        raw.send("5", [])
        while (await asyncio.to_thread(raw.read))[35] != "5":
            pass
    finally:
        raw.close()


async def logged_on_again(port: int, store: Path) -> NonReader:
    """The slow client logged on once more, as the next message its session expects. QuickFIX
    drops a second connection while it still holds the one the gate has just dropped: try again
    (nothing tells a client outside the process when that is over)."""
    for _ in range(100):
        client = NonReader(port, "SLOW", "FIXENGINE")
        if await asyncio.to_thread(client.logon, expected_target(store, "SLOW")):
            return client
        client.close()
        await asyncio.sleep(0.1)
    raise AssertionError("the slow client could not log on again")


async def misbehave(port: int, store: Path, until: float, rounds: list[float]) -> None:
    """Until ``until``: log on, ask for everything, never read; once dropped, again. Each round's
    seconds from its last read to the drop go to ``rounds``."""
    while time.monotonic() < until:
        client = await logged_on_again(port, store)
        stopped_reading = time.monotonic()
        try:
            client.send("AF", [(584, f"all-{client.seq}"), (585, "7")])  # status of every order
            while time.monotonic() < until:
                client.send("2", [(7, "1"), (16, "0")])  # ResendRequest: everything, again
                await asyncio.sleep(0.5)  # pacing the requests, not a wait on anything
        except OSError:  # the gateway has dropped it: its sends fail
            rounds.append(time.monotonic() - stopped_reading)
        finally:
            client.close()


async def trade_once(oms) -> float:  # type: ignore[no-untyped-def]
    """Place a resting bid and cancel it; the seconds that took."""
    started = time.monotonic()
    bid = oms.new_order(TICKER, "1", D(1), D("0.40"))
    await oms.wait_for(lambda r: r.get(11) == bid and r.get(150) == "0", timeout=TRADE_TIMEOUT)
    cancel = oms.cancel(bid)
    await oms.wait_for(lambda r: r.get(11) == cancel and r.get(150) == "4", timeout=TRADE_TIMEOUT)
    return time.monotonic() - started


async def trade(oms, until: float, round_trips: list[float]) -> None:  # type: ignore[no-untyped-def]
    """The other client, meanwhile: a bid placed and cancelled, again and again."""
    while time.monotonic() < until:
        round_trips.append(await trade_once(oms))


async def sample_rss(serve: ServeProcess, done: asyncio.Event, samples: list[tuple[float, int]]) -> None:
    while not done.is_set():
        samples.append((time.monotonic(), serve.rss()))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), 0.5)  # the sampling period


@pytest.mark.slow
async def test_a_client_that_stops_reading_is_dropped_and_the_service_stays_bounded(tmp_path, make_key,
                                                                                   start_simulator) -> None:
    desk = make_key()
    sim, _ = start_simulator([desk.account()], markets=[MarketEntry(ticker=TICKER)])
    slow = oms_client_entry("slow", "SLOW", "desk-kalshi", slow_consumer_timeout=SLOW_TIMEOUT,
                            when_throttled="queue", queue_timeout=30.0)
    # The same port, the same acceptor. It trades as fast as it is answered: over its share of the
    # write budget, its requests wait their turn rather than being refused.
    trader = oms_client_entry("trader", "TRADER", "desk-kalshi", port=slow["port"], when_throttled="queue")
    config = gateway_config(tmp_path / "serve", session_to(sim, desk, name="desk-kalshi"), clients=[slow, trader],
                            message_log=True)
    store = config.gateway_path / "sessions"
    serve = ServeProcess(config, tmp_path)
    oms = oms_for(config, "trader", tmp_path / "trader")
    try:
        await serve.listening()
        await oms.start()
        await oms.wait_logged_on(timeout=20)
        await trade_once(oms)
        await build_history(slow["port"], RESTING, statuses=5)

        baseline = serve.rss()
        rounds: list[float] = []
        round_trips: list[float] = []
        samples: list[tuple[float, int]] = []
        started = time.monotonic()
        until = started + DURATION
        done = asyncio.Event()
        sampling = asyncio.ensure_future(sample_rss(serve, done, samples))
        try:
            await asyncio.gather(misbehave(slow["port"], store, until, rounds), trade(oms, until, round_trips))
        finally:
            done.set()
            await sampling
        ended = time.monotonic()
        samples.append((ended, serve.rss()))

        assert ended - started >= DURATION
        # Dropped each time, never before its timeout, and not long after it either.
        assert len(rounds) >= 5, rounds
        assert all(SLOW_TIMEOUT <= waited < SLOW_TIMEOUT + 20 for waited in rounds), rounds
        # The bound held the whole minute, not just at the end.
        assert samples[0][0] - started < 1 and len(samples) >= DURATION * 1.5
        peak = max(rss for _, rss in samples)
        assert peak - baseline < RSS_BOUND, (f"RSS {baseline / 2**20:.0f} MB -> peak {peak / 2**20:.0f} MB",
                                             [(round(t - started), rss // 2**20) for t, rss in samples[::10]])
        # The other client traded all along.
        assert len(round_trips) >= DURATION and max(round_trips) < TRADE_TIMEOUT, round_trips

        assert await serve.stop() == 0
        log = serve.log()
        drops = re.findall(r"OMS slow: connection from 127\.0\.0\.1:\d+ ended: slow consumer: (\d+) bytes not read "
                           r"for ([\d.]+) s", log)
        assert len(drops) >= len(rounds), log[-3000:]
        assert all(int(buffered) > 0 and float(waited) >= SLOW_TIMEOUT for buffered, waited in drops), drops
        assert "Traceback" not in log and "OMS trader: connection" not in log.split("stopping")[0]
    finally:
        await oms.stop()
        if serve.proc.poll() is None:
            serve.proc.kill()
