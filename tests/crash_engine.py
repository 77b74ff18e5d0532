"""A real engine process for crash tests: logs on, submits one order, and SIGKILLs itself at the
instant the test names. Usage: python -m tests.crash_engine CONFIG.json POINT

POINT is where the process dies: ``before-journal`` (the intent is not yet written),
``before-send`` (written, not yet sent) or ``after-send`` (sent, before any report). The hooks wrap
the engine's own methods in this process only; nothing in the product knows about them.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from decimal import Decimal

from fixengine.config import EngineConfig
from fixengine.engine import Engine
from fixengine.order_entry import OrderEntry
from fixengine.orders.journal import Journal
from fixengine.orders.requests import NewOrder
from fixengine.prices import Action, Contract


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
