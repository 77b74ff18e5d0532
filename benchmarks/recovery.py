"""Recovery benchmark: how long the engine takes to recover from a sequence gap. Prints JSON.

    .venv/bin/python benchmarks/recovery.py [--gap 10000]

- KalshiRT: the simulator (a subprocess) drops its next ``--gap`` messages to the engine (the acks
  of ``--gap`` resting orders) through its control port; a TestRequest's answer then shows the gap.
  Timed from the engine's ResendRequest to the last replayed ack applied to the book.
- KalshiNR: one dropped ack; timed from the gap seen to logged on again with the book held, and
  to the book confirmed by reconciliation against the simulator's REST API (the lost ack healed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from order_roundtrip import Orders, simulated_account  # noqa: E402

from fixengine.config import EngineConfig, LogonFlags, RestConfig, SessionConfig  # noqa: E402
from fixengine.engine import Engine  # noqa: E402
from fixengine.events import LoggedOn, ResendRequested, SequenceGap  # noqa: E402
from fixengine.kalshi.facts import SessionType  # noqa: E402
from fixengine.orders.entry import BookHeld, BookReleased  # noqa: E402
from fixengine.orders.book import OrderAccepted  # noqa: E402
from fixengine.reconcile.runner import ReconciliationDone  # noqa: E402
from fixengine.rest import local_url  # noqa: E402


def fault(control_port: int, **request: object) -> None:
    with socket.create_connection(("127.0.0.1", control_port), timeout=10) as sock:
        sock.sendall(json.dumps(request).encode() + b"\n")
        answer = json.loads(sock.makefile().readline())
    if not answer.get("ok"):
        raise RuntimeError(f"simulator refused the fault {request}: {answer}")


async def rt_gap(root: Path, key_id: str, port: int, control: int, gap: int) -> dict[str, object]:
    config = EngineConfig(data_dir=root / "rt", sessions=[SessionConfig(
        name="rt", host="127.0.0.1", port=port, tls=False, session_type=SessionType.RT, api_key_id=key_id,
        private_key_file=root / "k.pem", heartbeat_interval=30, logon=LogonFlags(reset_seq_num=True),
    )])
    async with Engine(config) as engine:
        await engine.wait_logged_on()
        events = engine.events()
        orders = Orders(engine)
        fault(control, fault="drop_outbound", key_id=key_id, count=gap)
        placed = []
        for _ in range(gap):
            placed.append(await engine.submit("rt", orders.make()))
            if len(placed) % 500 == 0:
                await asyncio.sleep(0)  # let the sends go out in batches
        await asyncio.sleep(0)  # the last batch goes out
        # Every ack is dropped; the answer to this TestRequest is the first message after the gap.
        test_request = asyncio.create_task(engine.test_request("rt", timeout=60))
        resend = await events.wait_for(ResendRequested, timeout=60)
        started = time.perf_counter()
        waiting = {p.key for p in placed}
        while waiting:
            event = await events.wait_for(OrderAccepted, timeout=60)
            waiting.discard(event.order.key)
        elapsed = time.perf_counter() - started
        await test_request
        return {
            "gap_messages": gap, "resend_range": [resend.begin, resend.end],
            "seconds_resend_to_last_applied": round(elapsed, 3), "messages_per_s": round(gap / elapsed),
        }


async def nr_gap(root: Path, key_id: str, port: int, control: int, rest_port: int) -> dict[str, object]:
    config = EngineConfig(data_dir=root / "nr", sessions=[SessionConfig(
        name="nr", host="127.0.0.1", port=port, tls=False, session_type=SessionType.NR, api_key_id=key_id,
        private_key_file=root / "k.pem", heartbeat_interval=30, reconnect_interval=1,
    )], rest=RestConfig(base_url=local_url(rest_port), reconcile_interval=0))
    async with Engine(config) as engine:
        events = engine.events()
        await engine.wait_logged_on()
        await events.wait_for(BookReleased, timeout=30)  # the first reconciliation, after the logon
        orders = Orders(engine)
        await engine.submit("nr", orders.make())
        await events.wait_for(OrderAccepted)
        fault(control, fault="drop_outbound", key_id=key_id, count=1)
        await engine.submit("nr", orders.make())  # its ack is dropped
        await engine.submit("nr", orders.make())  # its ack shows the gap
        await events.wait_for(SequenceGap, timeout=30)
        started = time.perf_counter()
        await events.wait_for(LoggedOn, timeout=30)
        logged_on = time.perf_counter() - started
        await events.wait_for(BookHeld, timeout=30)
        held = time.perf_counter() - started
        done = await events.wait_for(ReconciliationDone, timeout=30)
        await events.wait_for(BookReleased, timeout=30)
        confirmed = time.perf_counter() - started
        return {
            "seconds_gap_to_logged_on": round(logged_on, 3), "seconds_gap_to_book_held": round(held, 3),
            "seconds_gap_to_confirmed_book": round(confirmed, 3), "reconciliation": done.describe(),
            "note": "includes reconnect_interval = 1 s of backoff before the new Logon",
        }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gap", type=int, default=10_000, help="messages lost in the KalshiRT gap")
    args = parser.parse_args()
    account = simulated_account("fixengine-recovery-", listeners="KalshiNR,KalshiRT", control=True, rest=True)
    with account as (root, key_id, _, ports, control):
        assert control is not None
        # NR first: its reconciliation proves the account's whole book, which must not hold
        # the RT run's orders (placed by another engine, they would be unexplained).
        nr = await nr_gap(root, key_id, ports["KalshiNR"], control, ports["rest"])
        results = {"rt": await rt_gap(root, key_id, ports["KalshiRT"], control, args.gap), "nr": nr}
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
