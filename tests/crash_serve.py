"""A real ``fixengine serve`` process for the gateway's kill tests: it serves (as the command does)
and SIGKILLs itself at the step of the order pipeline the test names.
Usage: python -m tests.crash_serve CONFIG.json POINT

POINT (``none``: serve until SIGTERM, as ``fixengine serve``):

- ``request-received``: QuickFIX has counted the OMS's order as received; the gateway has not
  journaled it.
- ``request-journaled``: the gateway has committed the request and its ClOrdID map; the engine has
  not committed its intent (nothing sent).
- ``sent-to-kalshi``: the order is on the wire to Kalshi.
- ``report-received``: QuickFIX has Kalshi's first report; the engine has not journaled it.
- ``report-journaled``: the engine has journaled and applied a report; the gateway has not
  translated it.
- ``report-translated``: the gateway has committed the OMS's reports; none is sent.
- ``report-forwarded``: a report is in the OMS session's store and on the wire; not yet marked.

The hooks wrap the product's own methods in this process only; nothing in the product knows them.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time

from fixengine.config import EngineConfig
from fixengine.gateway.acceptor import OmsAcceptors, OmsReceived
from fixengine.gateway.service import Gateway
from fixengine.orders.entry import OrderEntry
from fixengine.serve import serve


def die() -> None:
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def after(cls: type, name: str) -> None:
    original = getattr(cls, name)

    def call_then_die(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        original(self, *args, **kwargs)
        die()

    setattr(cls, name, call_then_die)


def install(point: str) -> None:
    if point == "request-received":
        original = Gateway._on_oms_events

        def die_unjournaled(self, batch):  # type: ignore[no-untyped-def]
            orders = [e for e in batch if isinstance(e, OmsReceived) and e.msg_type == "D"]
            if not orders:
                return original(self, batch)
            session = self._acceptors.lookup(orders[0].client)
            deadline = time.monotonic() + 5
            while session.getExpectedTargetNum() <= orders[-1].seq and time.monotonic() < deadline:
                time.sleep(0.001)  # QuickFIX counts it as soon as its callback returns
            die()

        Gateway._on_oms_events = die_unjournaled  # type: ignore[method-assign]
    elif point == "request-journaled":
        OrderEntry.flush = lambda self: die()  # type: ignore[method-assign]
    elif point == "sent-to-kalshi":
        after(OrderEntry, "_transmit")
    elif point == "report-received":
        OrderEntry.on_messages = lambda self, messages: die()  # type: ignore[method-assign]
    elif point == "report-journaled":
        Gateway._on_engine_event = lambda self, event: die() if type(event).__name__.startswith("Order") else None  # type: ignore[method-assign]
    elif point == "report-translated":
        OmsAcceptors.send = lambda self, *a, **k: die()  # type: ignore[method-assign]
    elif point == "report-forwarded":
        after(OmsAcceptors, "send")
    elif point != "none":
        raise SystemExit(f"unknown point {point!r}")


async def main(config_path: str, point: str) -> None:
    config = EngineConfig.model_validate(json.loads(open(config_path).read()))
    install(point)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await serve(config, stop, announce=lambda line: print(line, flush=True))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
