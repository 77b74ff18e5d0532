"""A real engine process for crash tests: logs on, submits one order, and SIGKILLs itself at the
instant the test names. Usage: python -m tests.crash_engine CONFIG.json POINT

POINT is where the process dies: ``before-journal`` (the intent is not yet written),
``before-send`` (written, not yet sent), ``after-send`` (sent, before any report) or
``after-receive`` (QuickFIX has counted the order's New as received, the loop has not yet
journaled it). The hooks wrap
the engine's own methods in this process only; nothing in the product knows about them.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from decimal import Decimal


from fixengine.config import EngineConfig
from fixengine.engine import Engine
from fixengine.orders.entry import OrderEntry
from fixengine.orders.journal import Journal
from fixengine.orders.requests import NewOrder
from fixengine.kalshi.prices import Action, Contract


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


async def main(config_path: str, point: str) -> None:
    spec = json.loads(open(config_path).read())
    config = EngineConfig.model_validate(spec["engine"])
    if point == "before-journal":
        Journal.record_new = lambda self, *a, **k: die()  # type: ignore[method-assign]
    elif point == "before-send":
        OrderEntry._transmit = lambda self, *a, **k: die()  # type: ignore[method-assign]
    elif point == "after-send":
        original = OrderEntry._transmit

        def send_then_die(self, *a, **k):  # type: ignore[no-untyped-def]
            original(self, *a, **k)
            die()

        OrderEntry._transmit = send_then_die  # type: ignore[method-assign]
    engine = Engine(config)
    if point == "after-receive":
        name = config.sessions[0].name

        def die_unjournaled(self, messages):  # type: ignore[no-untyped-def]
            # Whether the PendingNew comes in the New's batch or alone depends on timing: either
            # way the loop has journaled neither (as if it were busy) when the process dies.
            acks = [raw for _, _, raw in messages if "\x01150=0\x01" in raw]
            if not acks:
                return
            seq = int(acks[-1].split("\x0134=", 1)[1].split("\x01", 1)[0])
            session = engine._quickfix.lookup(name)
            deadline = time.monotonic() + 5
            while session.getExpectedTargetNum() <= seq and time.monotonic() < deadline:
                time.sleep(0.001)  # QuickFIX's thread counts it as soon as the callback returns
            die()

        OrderEntry.on_messages = die_unjournaled  # type: ignore[method-assign]
    await engine.start()
    await engine.wait_logged_on()
    print("logged on", flush=True)
    order = NewOrder.create(
        ticker=spec["ticker"], action=Action.BUY, contract=Contract.YES, quantity=Decimal("5"),
        price=Decimal("0.40"), client_order_id=spec["client_order_id"],
    )
    await engine.submit(config.sessions[0].name, order)
    await asyncio.sleep(30)  # never reached: the hook kills the process first


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
