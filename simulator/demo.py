"""The Quick start: the simulator in-process, fresh keys, a signed Logon in both dialects over TLS,
a refused Logon to show what a refusal looks like, heartbeats, a TestRequest, and a clean Logout."""

from __future__ import annotations

import asyncio
import sys
import tempfile
import uuid
from datetime import datetime
from pathlib import Path
from typing import TextIO

from fixengine.config import EngineConfig, LogonFlags, SessionConfig
from fixengine.fix.dialect import Dialect
from fixengine.engine import Engine
from fixengine.errors import LogonRefusedError
from decimal import Decimal

from fixengine.events import HeartbeatReceived, SessionEvent
from fixengine.orders.book import OrderEvent, PositionChanged, Status
from fixengine.orders.requests import CancelOrder, NewOrder, ReplaceOrder
from fixengine.kalshi.prices import Action, Contract
from fixengine.kalshi.facts import SessionType
from fixengine.kalshi.signing import public_key_pem, load_private_key, write_keypair
from simulator.events import SimEvent
from simulator.config import FIX44_LISTENER, AccountConfig, MarketEntry, SimulatorConfig, TlsConfig
from simulator.server import Simulator

HEARTBEATS = 2
DEMO_MARKET = "KXHIGHNY-26NOV22-T45"


def _stamp(at: datetime | None = None) -> str:
    return (at or datetime.now().astimezone()).astimezone().strftime("%H:%M:%S.%f")[:-3]


async def run_demo(out: TextIO = sys.stdout) -> int:
    def say(who: str, session: str, text: str, at: datetime | None = None) -> None:
        print(f"{_stamp(at)}  {who:<9} {session:<13} {text}", file=out, flush=True)

    with tempfile.TemporaryDirectory(prefix="fixengine-demo-") as tmp:
        root = Path(tmp)
        names = ("nr-fixt11", "nr-fix44", "unknown-key")
        key_ids = {name: str(uuid.uuid4()) for name in names}
        for name in names:
            write_keypair(root / f"{name}.pem", root / f"{name}.pub.pem")
        say("demo", "", f"generated 2048-bit RSA keys in {root}")

        accounts = [  # the simulator knows two of the three keys
            AccountConfig(
                api_key_id=key_ids[n],
                public_key_pem=public_key_pem(load_private_key(file=root / f"{n}.pem")).decode(),
            )
            for n in ("nr-fixt11", "nr-fix44")
        ]
        sim_config = SimulatorConfig(
            data_dir=root / "simulator",
            listeners={SessionType.NR.value: 0, FIX44_LISTENER: 0},
            tls=TlsConfig(enabled=True),
            accounts=accounts,
            markets=[MarketEntry(ticker=DEMO_MARKET)],
            enforce_write_budget=True,  # as Kalshi: the demo's few orders are far inside premier's budget
        )
        loop = asyncio.get_running_loop()

        def on_sim_event(event: SimEvent) -> None:
            text = event.kind.replace("_", " ") + (f": {event.detail}" if event.detail else "")
            loop.call_soon_threadsafe(say, "simulator", event.session_type, text)

        with Simulator(sim_config, on_event=on_sim_event) as sim:
            assert sim.tls_cert_file is not None

            def session(name: str, dialect: Dialect, listener: str) -> SessionConfig:
                return SessionConfig(
                    name=name,
                    host="127.0.0.1",
                    port=sim.ports[listener],
                    tls=True,
                    tls_ca_file=sim.tls_cert_file,
                    dialect=dialect,
                    session_type=SessionType.NR,
                    api_key_id=key_ids[name],
                    private_key_file=root / f"{name}.pem",
                    heartbeat_interval=1,
                    logon=LogonFlags(reset_seq_num=True),
                )

            config = EngineConfig(
                data_dir=root / "engine",
                sessions=[
                    session("nr-fixt11", Dialect.FIXT11, SessionType.NR.value),
                    session("nr-fix44", Dialect.FIX44, FIX44_LISTENER),
                    session("unknown-key", Dialect.FIXT11, SessionType.NR.value),
                ],
            )
            engine = Engine(config)
            events = engine.events()

            names = {key_ids[n]: n for n in names}

            def show_one(event: object) -> None:
                if isinstance(event, SessionEvent):
                    say("engine", event.session, event.describe(), event.at)
                elif isinstance(event, OrderEvent):
                    say("orders", names.get(event.order.account, ""), event.describe())
                elif isinstance(event, PositionChanged):
                    say("orders", names.get(event.account, ""), event.describe())

            async def show() -> None:
                async for event in events:
                    show_one(event)

            printer = asyncio.create_task(show())
            await engine.start()
            try:
                good = ["nr-fixt11", "nr-fix44"]
                await engine.wait_logged_on(good, timeout=15)
                try:
                    await engine.wait_logged_on(["unknown-key"], timeout=15)
                except LogonRefusedError as exc:
                    say("demo", exc.session, f"refused as expected: {exc.reason}")
                watch = engine.events()
                seen = {name: 0 for name in good}
                while min(seen.values()) < HEARTBEATS:
                    event = await watch.next(timeout=10)
                    if isinstance(event, HeartbeatReceived) and event.session in seen:
                        seen[event.session] += 1
                watch.close()
                for name in good:
                    rtt = await engine.test_request(name)
                    say("demo", name, f"TestRequest answered in {rtt * 1000:.2f} ms")
                await trade(engine, say)
            finally:
                await engine.stop()
                printer.cancel()
                for event in events.drain():  # what arrived while we were logging out
                    show_one(event)
                events.close()
        say("demo", "", "done: both dialects logged on, traded, and logged out cleanly")
    return 0


async def trade(engine: Engine, say) -> None:  # type: ignore[no-untyped-def]
    """Place, amend, fill and cancel an order; the two sessions trade with each other."""
    watch = engine.events()

    async def until(key: str, done) -> None:  # type: ignore[no-untyped-def]
        while not done(engine.book.order(key)):
            await watch.next(timeout=10)

    say("demo", "nr-fixt11", f"offering 10 YES on {DEMO_MARKET} at $0.56 (selling YES = buying NO at $0.44)")
    offer = await engine.submit("nr-fixt11", NewOrder.create(
        ticker=DEMO_MARKET, action=Action.SELL, contract=Contract.YES, quantity=Decimal(10), price=Decimal("0.56")))
    await until(offer.key, lambda o: o.status is Status.NEW)
    say("demo", "nr-fixt11", "amending it to 8 at $0.55")
    await engine.replace("nr-fixt11", ReplaceOrder.create(order=offer.key, quantity=Decimal(8), price=Decimal("0.55")))
    await until(offer.key, lambda o: o.pending is None)
    say("demo", "nr-fix44", "buying 5 YES at up to $0.55 (FIX 4.4 session)")
    bid = await engine.submit("nr-fix44", NewOrder.create(
        ticker=DEMO_MARKET, action=Action.BUY, contract=Contract.YES, quantity=Decimal(5), price=Decimal("0.55")))
    await until(bid.key, lambda o: o.status.terminal)
    await until(offer.key, lambda o: o.cum_qty == 5)
    say("demo", "nr-fixt11", "cancelling the rest of the offer")
    await engine.cancel("nr-fixt11", CancelOrder.create(order=offer.key))
    await until(offer.key, lambda o: o.status.terminal)
    watch.close()


def main() -> int:
    return asyncio.run(run_demo())

