"""fixengine's Engine as a conformance client: ``python -m conformance.clients.engine``.

It is also the example of an adapter a firm writes for its own client: read the runner's environment
(``conformance.clients.env``), start the client, and serve the instruction protocol
(``conformance.instructions``) on standard input and output (``conformance.clients.stdio``).

The engine gets one session from the environment (TargetCompID, dialect from the BeginString, plain
TCP as the simulator serves it unless ``KALSHI_FIX_TLS=1``, HeartBtInt from
``KALSHI_FIX_HEARTBEAT_INTERVAL`` or 30, the profile's Logon switches from ``KALSHI_FIX_LOGON_FLAGS``,
the first reconnect delay from ``KALSHI_FIX_RECONNECT_INTERVAL``) and, with
``KALSHI_REST_URL``, reconciliation over REST after every logon (``reconcile_interval = 0``) and at
once after an order's outcome turns out unknown (EXCHANGE_UNAVAILABLE): that is what settles it; it is
never sent again, under a new ClOrdID or its own.
KalshiRT (and KalshiPT) keep their sequence numbers across restarts; the other session types reset
on every Logon (141=Y), as Kalshi requires.

Data directory (QuickFIX stores, message logs, the order journal): ``FIXENGINE_CONFORM_DATA_DIR``
when set, else the runner's ``KALSHI_CONFORMANCE_STATE_DIR``, else
``<system temp dir>/fixengine-conform/<API key id>``. It is stable per key on purpose: a scenario
that restarts the client expects the journal and the stores of the run before (the runner gives
each scenario its own key, so scenarios never share one).

Instructions: ``place`` (answers the engine's order key, its first ClOrdID), ``cancel``,
``replace``, ``mass_cancel``, ``create_group`` / ``reset_group`` / ``delete_group`` /
``trigger_group``, and ``state`` (the engine's book: every order and the account's positions).
New orders and amends wait (up to ``READY_WAIT_S``) until the session is logged on and its book
confirmed by reconciliation; a refusal before anything is sent (InvalidOrderError,
BookUnconfirmedError, SessionUnavailableError ...) is answered ``ok: false`` with its message.

It keeps running through disconnects (the engine reconnects by itself) and stops cleanly (Logout,
journal closed) on SIGTERM, SIGINT or the end of standard input. Logs go to standard error;
standard output carries protocol answers only.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import tempfile
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from conformance.clients.env import ClientEnv, ClientEnvError
from conformance.clients.stdio import Refused, claim_stdout, serve, stop_on_signals
from conformance.instructions import Instruction
from fixengine.config import EngineConfig, LogonFlags, RestConfig, SessionConfig
from fixengine.engine import Engine
from fixengine.errors import BookError, FixEngineError
from fixengine.events import Event
from fixengine.kalshi.facts import RETENTION_ALLOWED, SessionType
from fixengine.kalshi.prices import Action, Contract
from fixengine.logs import configure_logging
from fixengine.orders.book import Order, OrderRejected
from fixengine.orders.requests import CancelOrder, NewOrder, ReplaceOrder, TimeInForce

log = logging.getLogger("conformance.clients.engine")

SESSION = "conformance"
READY_WAIT_S = 15.0  # how long a new order waits for the logon and the book's reconciliation
_TIME_IN_FORCE = {"gtc": TimeInForce.GTC, "ioc": TimeInForce.IOC, "fok": TimeInForce.FOK, "day": TimeInForce.DAY}


def data_dir_for(env: ClientEnv, environ: Mapping[str, str] = os.environ) -> Path:
    """``FIXENGINE_CONFORM_DATA_DIR``, else the runner's state directory for the scenario, else one
    directory per API key under the system temp dir."""
    chosen = environ.get("FIXENGINE_CONFORM_DATA_DIR", "").strip()
    if chosen:
        return Path(chosen)
    return env.state_dir or Path(tempfile.gettempdir()) / "fixengine-conform" / env.key_id


def engine_config(env: ClientEnv, data_dir: Path) -> EngineConfig:
    """One session as the runner describes it; reconciliation after every logon when REST is given."""
    session_type = SessionType(env.target)
    # Unless the profile says: sessions that retransmit keep their numbers across restarts; the
    # others must reset.
    flags = env.logon_flags or LogonFlags(reset_seq_num=session_type not in RETENTION_ALLOWED)
    reconnect = {} if env.reconnect_interval is None else {"reconnect_interval": env.reconnect_interval}
    session = SessionConfig(
        name=SESSION, host=env.host, port=env.port, tls=env.tls, dialect=env.dialect, session_type=session_type,
        api_key_id=env.key_id, private_key_file=env.private_key_file, heartbeat_interval=env.heartbeat_interval,
        logon=flags, **reconnect,
    )
    rest = RestConfig(base_url=env.rest_url, reconcile_interval=0) if env.rest_url else None
    return EngineConfig(data_dir=data_dir, sessions=[session], rest=rest)


def order_state(order: Order) -> dict[str, Any]:
    """One order as ``state`` reports it (``conformance.instructions.StateOrder``)."""
    return {
        "order": order.key, "order_id": order.order_id, "cl_ord_id": order.cl_ord_id, "ticker": order.ticker,
        "status": order.status.value, "cum_qty": order.cum_qty, "leaves_qty": order.leaves_qty,
        "reason": order.reason.text if order.reason is not None and order.reason.text else None,
    }


class EngineClient:
    """The instructions, each done through the engine's public API."""

    def __init__(self, engine: Engine, session: str = SESSION):
        self.engine = engine
        self.session = session
        self.account = engine.config.session(session).account_id
        self._reconciling: asyncio.Task[None] | None = None
        engine.observe(self._on_event)

    def _on_event(self, event: Event) -> None:
        # The engine settles an unknown outcome (EXCHANGE_UNAVAILABLE) by reconciliation, never by
        # a retry; with reconcile_interval 0 that is asked for here, at once.
        if isinstance(event, OrderRejected) and event.order.outcome_unknown and self.engine.config.rest is not None:
            if self._reconciling is None or self._reconciling.done():
                self._reconciling = asyncio.ensure_future(self._reconcile())

    async def _reconcile(self) -> None:
        try:
            findings = await self.engine.reconcile(self.session)
        except FixEngineError as exc:  # published as ReconciliationFailed; the next logon tries again
            log.warning("reconciliation after an unknown outcome failed: %s", exc)
            return
        log.info("reconciled after an unknown outcome: %s", "clean" if findings.clean else "discrepancies")

    async def handle(self, instruction: Instruction) -> dict[str, Any]:
        action = getattr(self, f"_{instruction.action}")
        result: dict[str, Any] = await action(instruction)
        return result

    async def _wait_until(self, *, book_confirmed: bool, settled: str | None = None) -> None:
        """Until the session is logged on (and its book confirmed, and the order ``settled`` has no
        cancel or replace in flight: the next one queues behind it, as at an OMS), or ``READY_WAIT_S``
        passes: the engine's own refusal then says what is missing."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + READY_WAIT_S
        stream = self.engine.events()  # taken before the check: nothing can slip between them
        try:
            while not (self.engine.is_logged_on(self.session)
                       and not (book_confirmed and self.engine.is_book_held(self.session))
                       and not (settled is not None and self._in_flight(settled))):
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return
                try:
                    await stream.next(remaining)
                except asyncio.TimeoutError:
                    return
        finally:
            stream.close()

    def _in_flight(self, key: str) -> bool:
        try:
            return self.engine.book.order(key).pending is not None
        except BookError:
            return False  # the engine's own refusal names it

    async def _place(self, i: Instruction) -> dict[str, Any]:
        if i.side is None or i.contract is None or i.price is None or i.quantity is None or i.ticker is None:
            raise Refused("place needs ticker, side, contract, price and quantity")
        order = NewOrder.create(
            ticker=i.ticker, action=Action(i.side), contract=Contract(i.contract), quantity=i.quantity, price=i.price,
            time_in_force=_TIME_IN_FORCE[i.time_in_force or "gtc"], order_group_id=i.order_group_id,
        )
        await self._wait_until(book_confirmed=True)
        placed = await self.engine.submit(self.session, order)
        return {"order": placed.key}

    async def _cancel(self, i: Instruction) -> dict[str, Any]:
        if i.order is None:
            raise Refused("cancel needs the order's key")
        await self._wait_until(book_confirmed=False, settled=i.order)
        await self.engine.cancel(self.session, CancelOrder.create(order=i.order))
        return {"order": i.order}

    async def _replace(self, i: Instruction) -> dict[str, Any]:
        if i.order is None:
            raise Refused("replace needs the order's key")
        request = ReplaceOrder.create(order=i.order, quantity=i.quantity, price=i.price)
        await self._wait_until(book_confirmed=True, settled=i.order)
        await self.engine.replace(self.session, request)
        return {"order": i.order}

    async def _mass_cancel(self, i: Instruction) -> dict[str, Any]:
        await self._wait_until(book_confirmed=False)
        await self.engine.mass_cancel(self.session)
        return {}

    async def _create_group(self, i: Instruction) -> dict[str, Any]:
        if i.contracts_limit is None:
            raise Refused("create_group needs contracts_limit")
        await self._wait_until(book_confirmed=False)
        group = await self.engine.create_order_group(self.session, i.contracts_limit)
        return {"group_id": group.group_id}

    async def _group_action(self, i: Instruction) -> dict[str, Any]:
        if i.group_id is None:
            raise Refused(f"{i.action} needs group_id")
        await self._wait_until(book_confirmed=False)
        act = {"reset_group": self.engine.reset_order_group, "delete_group": self.engine.delete_order_group,
               "trigger_group": self.engine.trigger_order_group}[i.action]
        group = await act(self.session, i.group_id)
        return {"group_id": group.group_id}

    _reset_group = _delete_group = _trigger_group = _group_action

    async def _state(self, i: Instruction) -> dict[str, Any]:
        book = self.engine.book
        positions: dict[str, Decimal] = {ticker: net for (account, ticker), net in book.positions.items()
                                         if account == self.account}
        return {"orders": [order_state(o) for o in book.orders.values()], "positions": positions}


async def run() -> int:
    answers = claim_stdout()
    configure_logging("text")
    try:
        env = ClientEnv.from_environ()
        config = engine_config(env, data_dir_for(env))
    except (ClientEnvError, ValueError) as exc:
        log.error("cannot start: %s", exc)
        return 2
    log.info("data directory %s", config.data_dir)
    engine = Engine(config)
    stop = asyncio.Event()
    stop_on_signals(stop)
    try:
        await engine.start()
    except FixEngineError as exc:
        log.error("cannot start the engine: %s", exc)
        return 2
    try:
        await serve(EngineClient(engine).handle, stop, answers, expected=(FixEngineError, ValueError))
    finally:
        await engine.stop()
    return 0


def main() -> None:
    sys.exit(asyncio.run(run()))


if __name__ == "__main__":
    main()
