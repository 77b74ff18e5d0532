"""A real engine process for the randomized crash test (tests/test_crash_random.py).

    python -m tests.crash_trader SPEC.json run      # trade in bursts until SIGKILLed
    python -m tests.crash_trader SPEC.json settle   # restart on the same data_dir, recover, dump the book, log out

SPEC.json: ``{"engine": EngineConfig (by alias), "run": id (its ClOrdIDs start with r<id>-), "seed": n,
"patient": bool, "actions_log": path, "book_file": path}``.
The engine is driven only through its public API (``Engine``, ``NewOrder``/``CancelOrder``/
``ReplaceOrder``, ``engine.book``, ``mass_cancel``, events); nothing in it is patched.

Lines on stdout, for the test to aim its kill (``t`` is ``time.monotonic()``, one clock for every
process on the machine):

    starting <t>        just before Engine.start
    logged on <t>
    ready <t>           trading: logged on and, if patient (with [rest]), the book released (or waited for in vain)
    started <n> <t>     burst n started
    book <path>         settle: the book is written (JSON, see ``book_dump``)
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import sys
import time
from decimal import Decimal as D
from pathlib import Path
from typing import TextIO

from fixengine.config import EngineConfig
from fixengine.engine import Engine, EventStream
from fixengine.errors import SessionUnavailableError
from fixengine.kalshi.facts import SessionType
from fixengine.orders.entry import BookUnconfirmedError, ThrottledError
from fixengine.orders.book import Order, Status
from fixengine.orders.requests import CancelOrder, InvalidOrderError, NewOrder, ReplaceOrder, TimeInForce
from fixengine.kalshi.prices import Action, Contract, contract_price
from fixengine.reconcile.runner import ReconciliationDone, ReconciliationFailed
from tests.helpers.waits import caught_up, logged_on_again, released

# Shared with the test: the session name the waits (tests.helpers.waits) use, and the markets.
SESSION = "s1"
REST_MARKET = "CRASH-REST"  # the trader's resting orders; the counterparty's IOCs cross them
TAKE_MARKET = "CRASH-TAKE"  # the house rests here; the trader's IOC/FOK orders take from it
HOUSE_BID, HOUSE_OFFER = D("0.10"), D("0.90")
# The trader's resting orders never cross each other or the house: bids below asks.
BIDS = [D(c) / 100 for c in range(20, 46)]
ASKS = [D(c) / 100 for c in range(55, 81)]
COUNTERPARTY_BUY, COUNTERPARTY_SELL = ASKS[-1], BIDS[0]  # crosses every resting ask / bid of the trader

RELEASE_WAIT_S = 10.0  # reconciliation after a logon normally takes well under a second
LOGON_WAIT_S = 30.0
BURST_ACTIONS = (15, 45)
BURST_GAP_S = (0.05, 0.2)  # ~30 actions every ~0.15 s: ~200 actions/s

# TimeInForce (and post-only) travel in the ClOrdID, so that a retry after a restart can rebuild
# the very request from the book (which keeps no TimeInForce).
TIF_CODES = {"gtc": (TimeInForce.GTC, False), "po": (TimeInForce.GTC, True), "ioc": (TimeInForce.IOC, False),
             "fok": (TimeInForce.FOK, False)}


def say(*words: object) -> None:
    print(*words, flush=True)


def now() -> str:
    return f"{time.monotonic():.6f}"


def yes_side_order(yes_price: D, bid: bool, rng: random.Random) -> tuple[Action, Contract, D]:
    """A (action, contract, price) resting on the bid or ask side of the YES book at ``yes_price``,
    either way of saying it (buy YES = sell NO, sell YES = buy NO)."""
    contract = rng.choice([Contract.YES, Contract.NO])
    if contract is Contract.YES:
        return (Action.BUY if bid else Action.SELL), contract, yes_price
    return (Action.SELL if bid else Action.BUY), contract, 1 - yes_price


class Trader:
    """Random requests in bursts: new orders of every kind, cancels, replaces, mass cancels and
    same-ClOrdID retries of orders whose outcome is unknown. Refusals are expected (and logged)."""

    def __init__(self, engine: Engine, rng: random.Random, run_id: str, log: TextIO):
        self.engine = engine
        self.rng = rng
        self.prefix = f"r{run_id}"
        self.log = log
        self.n = 0
        self.session = engine.config.session(SESSION)
        self.retried: set[str] = set()  # once each, as a user would: not a second retry while one is in flight

    def _cl_ord_id(self, code: str) -> str:
        self.n += 1
        return f"{self.prefix}-{self.n}-{code}"

    def _orders(self, *statuses: Status, settled: bool = True) -> list[Order]:
        return [o for o in self.engine.book.orders.values()
                if o.status in statuses and (not settled or o.pending is None)]

    def _new(self) -> NewOrder:
        rng = self.rng
        code = rng.choices(["gtc", "po", "ioc", "fok"], weights=[50, 15, 25, 10])[0]
        tif, post_only = TIF_CODES[code]
        quantity = D(rng.randint(1, 10))
        if code in ("gtc", "po"):
            bid = rng.random() < 0.5
            yes_price = rng.choice(BIDS if bid else ASKS)
            ticker = REST_MARKET
            if code == "po" and rng.random() < 0.2:  # now and then one that crosses: POST_ONLY_CROSS
                ticker, yes_price = TAKE_MARKET, (HOUSE_OFFER if bid else HOUSE_BID)
        else:
            bid = rng.random() < 0.5
            if rng.random() < 0.8:  # mostly against the house; the rest passive (no fill) or self-crossing
                ticker = TAKE_MARKET
                yes_price = (HOUSE_OFFER if bid else HOUSE_BID) if rng.random() < 0.8 else D("0.50")
            else:
                ticker, yes_price = REST_MARKET, rng.choice(ASKS[:5] if bid else BIDS[-5:])
        action, contract, price = yes_side_order(yes_price, bid, rng)
        return NewOrder.create(ticker=ticker, action=action, contract=contract, quantity=quantity, price=price,
                               time_in_force=tif, post_only=post_only, client_order_id=self._cl_ord_id(code))

    def _retry(self, order: Order) -> NewOrder:
        """The same request again, same ClOrdID (Kalshi refuses it while the first one is open)."""
        tif, post_only = TIF_CODES[order.key.rsplit("-", 1)[1]]
        return NewOrder.create(ticker=order.ticker, action=order.action, contract=order.contract,
                               quantity=order.quantity, price=contract_price(order.yes_price, order.contract),
                               time_in_force=tif, post_only=post_only, client_order_id=order.key)

    async def one_action(self) -> None:
        rng, engine = self.rng, self.engine
        working = self._orders(Status.NEW, Status.PARTIALLY_FILLED)
        unknown = [o for o in self._orders(Status.PENDING_NEW, settled=False)
                   if o.outcome_unknown and o.key not in self.retried]
        roll = rng.random()
        what, detail = "new", ""
        try:
            if unknown and roll < 0.3:
                what, order = "retry", rng.choice(unknown)
                detail = order.key
                self.retried.add(order.key)
                await engine.submit(SESSION, self._retry(order))
            elif roll < 0.5 or not working:
                request = self._new()
                detail = (f"{request.client_order_id} {request.ticker} {request.action.value} "
                          f"{request.contract.value} {request.quantity}@{request.price}")
                await engine.submit(SESSION, request)
            elif roll < 0.75:
                what = "cancel"
                # now and then one not yet acknowledged (maybe never sent, if a restart came between)
                young = self._orders(Status.PENDING_NEW)
                order = rng.choice(young) if young and rng.random() < 0.15 else rng.choice(working)
                request = CancelOrder.create(order=order.key, client_order_id=self._cl_ord_id("cx"))
                detail = f"{request.client_order_id} of {order.key}"
                await engine.cancel(SESSION, request)
            elif roll < 0.998:
                order = rng.choice(working)
                if order.ticker == REST_MARKET and rng.random() < 0.6:
                    what = "replace-price"
                    yes_price = rng.choice(BIDS if order.yes_price in BIDS else ASKS)
                    fields: dict[str, object] = {"price": contract_price(yes_price, order.contract)}
                    if rng.random() < 0.3:
                        fields["quantity"] = order.cum_qty + rng.randint(1, 10)
                else:
                    what = "replace-qty"  # down to what is filled cancels the rest on the exchange
                    fields = {"quantity": order.cum_qty + rng.randint(0 if order.cum_qty else 1, 10)}
                request = ReplaceOrder.create(order=order.key, client_order_id=self._cl_ord_id("rp"), **fields)
                detail = f"{request.client_order_id} of {order.key} {fields}"
                await engine.replace(SESSION, request)
            elif self.session.session_type is SessionType.NR:  # Kalshi allows one a second
                what = "mass-cancel"
                detail = await engine.mass_cancel(SESSION)
            else:
                what = "skip"
            result = "ok"
        except (InvalidOrderError, BookUnconfirmedError, SessionUnavailableError, ThrottledError) as exc:
            result = f"refused {type(exc).__name__}: {exc}"
        self.log.write(f"{now()} {what} {detail} -> {result}\n")

    async def bursts(self) -> None:
        for n in itertools.count(1):
            await asyncio.sleep(self.rng.uniform(*BURST_GAP_S))
            say("started", n, now())  # the test aims some kills a few milliseconds after this line
            self.log.write(f"{now()} burst {n}\n")
            for _ in range(self.rng.randint(*BURST_ACTIONS)):
                await self.one_action()
                if self.rng.random() < 0.3:
                    await asyncio.sleep(0)  # a new loop turn: the journal commits, the requests go out
            self.log.flush()


async def start_engine(config: EngineConfig, wait_released: bool = True) -> tuple[Engine, EventStream]:
    engine = Engine(config)
    events = engine.events()  # before start: every reconciliation is seen
    say("starting", now())
    await engine.start()
    await logged_on_again(engine, timeout=LOGON_WAIT_S)
    say("logged on", now())
    if config.rest is not None and wait_released:
        await released(engine, timeout=RELEASE_WAIT_S)
    return engine, events


async def run(spec: dict) -> None:
    config = EngineConfig.model_validate(spec["engine"])
    rng = random.Random(spec["seed"])
    # An impatient trader does not wait for reconciliation: its new orders are refused while the
    # book is held, its cancels and retries are not.
    engine, events = await start_engine(config, wait_released=spec["patient"])
    events.close()  # nobody reads them while trading
    say("ready", now())
    with open(spec["actions_log"], "a", buffering=1) as log:
        await Trader(engine, rng, spec["run"], log).bursts()


def book_dump(engine: Engine, account: str) -> dict:
    """The account's orders and positions, Decimals as strings."""
    orders = [
        {"key": o.key, "order_id": o.order_id, "status": o.status.value, "cum_qty": str(o.cum_qty),
         "leaves_qty": str(o.leaves_qty), "yes_price": str(o.yes_price), "quantity": str(o.quantity),
         "ticker": o.ticker, "cl_ord_id": o.cl_ord_id, "pending": o.pending,
         "outcome_unknown": o.outcome_unknown, "unconfirmed": o.unconfirmed,
         "reason": o.reason.text if o.reason is not None else None}
        for o in engine.book.orders.values() if o.account == account
    ]
    positions = {ticker: str(net) for (acct, ticker), net in engine.book.positions.items() if acct == account}
    return {"orders": orders, "positions": positions}


def reconciliation_text(event: ReconciliationDone | ReconciliationFailed) -> str:
    unexplained = event.findings.unexplained if isinstance(event, ReconciliationDone) else []
    return "; ".join([event.describe(), *(d.describe() for d in unexplained)])


async def settle(spec: dict) -> None:
    config = EngineConfig.model_validate(spec["engine"])
    engine, events = await start_engine(config)
    try:
        # A TestRequest answered: every report sent before its Heartbeat (RT: the resends) is applied.
        await caught_up(engine)
        dump = book_dump(engine, config.session(SESSION).api_key_id)
        dump["held"] = engine.is_book_held(SESSION)
        dump["reconciliations"] = [reconciliation_text(e) for e in events.drain()
                                   if isinstance(e, (ReconciliationDone, ReconciliationFailed))]
        Path(spec["book_file"]).write_text(json.dumps(dump, indent=1))
        say("book", spec["book_file"])
    finally:
        await engine.stop()


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text())
    asyncio.run({"run": run, "settle": settle}[sys.argv[2]](spec))


if __name__ == "__main__":
    main()
