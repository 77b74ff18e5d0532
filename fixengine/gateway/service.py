"""The gateway: OMS sessions in FIX 4.4 on one side, the engine's Kalshi sessions on the other.

In the engine's asyncio loop, one writer:

- OMS → Kalshi: a batch of OMS messages (``OmsAcceptors``) is translated (``translate``); each
  request and the ClOrdID map it makes are journaled, the engine journals and queues what goes to
  Kalshi, and the gateway's journal commits before the engine's flush sends anything.
- Kalshi → OMS: each order event of the engine (``Engine.observe``) for an order of an OMS becomes
  its FIX 4.4 reports (``reports``), checked against FIX 4.4, journaled with their ExecIDs and
  sent once committed (group commit, once per turn of the loop).
- A restart sends again what was journaled but not forwarded, tells each OMS what happened to its
  orders while the gateway was down (``catch_up``), and asks each OMS again for the messages
  QuickFIX counted but the gateway never journaled. See ``fixengine.gateway.journal``.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import quickfix as fix

from fixengine.config import EngineConfig, OmsClientConfig
from fixengine.engine import Engine
from fixengine.errors import FixEngineError, SessionUnavailableError
from fixengine.events import Event
from fixengine.fix.framing import parse
from fixengine.fix.tags import CL_ORD_ID, EXEC_ID, EXEC_TYPE, MSG_EXECUTION_REPORT, TEXT, MSG_ORDER_CANCEL_REQUEST, MSG_ORDER_CANCEL_REPLACE_REQUEST, POSS_RESEND
from fixengine.gateway.acceptor import OmsAcceptors, OmsLoggedOn, OmsLoggedOut, OmsReceived, OmsSessionEvent
from fixengine.gateway.journal import GatewayJournal, Link
from fixengine.gateway.outbound import Fix44Check
from fixengine.gateway.throttle import Admitted, Kind, Queued, Refused, Throttle, kind_of
from fixengine.gateway.translate import (
    OTHER,
    BusinessRefusal,
    CancelRefusal,
    Entitlements,
    ExecIds,
    MassCancel,
    MassCancelRefusal,
    OmsChain,
    OmsMessage,
    OrderRefusal,
    SessionRefusal,
    StatusRequest,
    Translated,
    catch_up,
    mass_cancel_report,
    ord_status,
    reports,
    status_reports,
    translate,
)
from fixengine.logs import correlate
from fixengine.orders.book import Order, OrderBook, OrderEvent, Status
from fixengine.orders.reports import CxlRejResponseTo, Reason, RejectCode
from fixengine.orders.requests import CancelOrder, NewOrder, ReplaceOrder
from fixengine.orders.wire import first_values

log = logging.getLogger("fixengine.gateway")

# How long an OMS message waits for its Kalshi session to be logged on with a confirmed book (at a
# start, after a reconnect) before it is answered anyway (refused, with the reason, if it needs Kalshi).
READY_TIMEOUT = 10.0
NEVER_SENT = "never sent to Kalshi: the gateway stopped before the order reached the exchange"
_REFUSALS = (SessionRefusal, BusinessRefusal, OrderRefusal, CancelRefusal, MassCancelRefusal)


@dataclass
class _Linked:
    """One order of one OMS client: what the OMS was told, the request in flight."""

    client: str
    chain: OmsChain
    engine_pending: str | None  # the engine's ClOrdID of the OMS's cancel/replace in flight
    request: NewOrder
    ghost: Order | None = None  # the order as the OMS knows it, when the engine never got it


class _ClientOrders(Mapping[str, Order]):
    """A client's orders by each OMS ClOrdID it used, as the book has them now (``translate``'s view)."""

    def __init__(self, keys: dict[str, str], order_of: Callable[[str], Order]):
        self._keys = keys
        self._order_of = order_of

    def __getitem__(self, cl_ord_id: str) -> Order:
        return self._order_of(self._keys[cl_ord_id])

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, cl_ord_id: object) -> bool:
        return cl_ord_id in self._keys


def _entitlements(c: OmsClientConfig) -> Entitlements:
    if c.drop_copy is not None:  # read-only: every order-entry message is refused
        return Entitlements(max_quantity=Decimal(0), max_notional=Decimal(0), msg_types=frozenset(),
                            ticker_pattern=c.ticker_pattern, may_mass_cancel=False)
    assert c.max_quantity is not None and c.max_notional is not None
    return Entitlements(max_quantity=c.max_quantity, max_notional=c.max_notional, msg_types=frozenset(c.message_types),
                        ticker_pattern=c.ticker_pattern, may_mass_cancel=c.may_mass_cancel)


@dataclass(frozen=True)
class ClientHealth:
    """One OMS client as ``Gateway.health`` sees it now."""

    name: str
    sender_comp_id: str
    target_comp_id: str
    port: int
    session: str | None  # the Kalshi session carrying its orders (None: drop copy)
    drop_copy: bool
    logged_on: bool
    next_out_seq: int | None
    next_in_seq: int | None
    last_in: float | None  # epoch seconds; None: nothing yet this run
    last_out: float | None
    orders_live: int
    waiting: int  # its messages waiting for its Kalshi session to be ready
    cancel_at: float | None  # epoch seconds its live orders will be cancelled (disconnected, cancel_on_disconnect)
    bytes_buffered: int  # the gateway's reports its OMS has not read yet (a slow consumer's backlog)
    last_disconnect: str | None  # why its last connection ended
    last_reject: Reject | None


@dataclass(frozen=True)
class Reject:
    """A refusal or reject the gateway sent an OMS (its own, or Kalshi's translated)."""

    at: float  # epoch seconds
    client: str
    msg_type: str
    cl_ord_id: str | None
    text: str


ON_BEHALF_OF_COMP_ID = 115  # header: the OMS whose report a drop copy is
COPY_MSG_INDICATOR = 797  # header: Y on a drop copy
_REJECT_TYPES = frozenset({"3", "9", "j"})  # Reject, OrderCancelReject, BusinessMessageReject
RECENT_REJECTS = 50  # kept for the status page


def _drop_copies(clients: Iterable[OmsClientConfig]) -> dict[str, list[str]]:
    """Order-entry client -> the drop-copy clients that receive copies of its reports."""
    clients = list(clients)
    copies: dict[str, list[str]] = {}
    for dc in clients:
        if dc.drop_copy is None:
            continue
        for c in clients:
            if c.drop_copy is None and (c.name in dc.drop_copy.clients or c.subaccount in dc.drop_copy.subaccounts):
                copies.setdefault(c.name, []).append(dc.name)
    return copies


def _identity(c: OmsClientConfig) -> tuple[object, ...]:
    """What a running client's session is: changing any of it means a new session."""
    return c.sender_comp_id, c.target_comp_id, c.port, c.session, c.reset_on_logon


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Gateway:
    """The OMS side of ``fixengine serve``, around a started ``Engine``."""

    def __init__(self, config: EngineConfig, engine: Engine):
        if config.gateway is None or not config.oms_clients:
            raise FixEngineError("the gateway needs a [gateway] section and at least one [[oms_client]]")
        self.config = config
        self._engine = engine
        self._clients = {c.name: c for c in config.oms_clients}
        self._entitled = {c.name: _entitlements(c) for c in config.oms_clients}
        self._copies = _drop_copies(self._clients.values())  # client -> drop-copy clients copying it
        self._links: dict[str, _Linked] = {}  # order key -> link
        self._keys: dict[str, dict[str, str]] = {name: {} for name in self._clients}  # client -> OMS ClOrdID -> key
        self._views = {name: _ClientOrders(self._keys[name], self._order) for name in self._clients}
        self._exec_ids: dict[str, ExecIds] = {}
        self._check = Fix44Check(config.gateway_path / "dictionaries")  # type: ignore[operator]
        self._journal: GatewayJournal | None = None
        self._acceptors: OmsAcceptors | None = None
        self._outbox: list[tuple[int, str, OmsMessage]] = []
        self._flush_scheduled = False
        # OMS messages waiting for their Kalshi session to be ready (logged on, book confirmed).
        self._waiting: dict[str, collections.deque[tuple[float, OmsReceived]]] = {n: collections.deque() for n in self._clients}
        self._drain_timer: asyncio.TimerHandle | None = None
        self._grace: dict[str, asyncio.TimerHandle] = {}  # client -> its cancel-on-disconnect timer
        self._cancel_pending: set[str] = set()  # clients whose cancels wait for their Kalshi session
        self._stopping = False
        self._draining = False  # a stop has begun: no new orders or amends
        self._settled: asyncio.Future[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.alerts: list[str] = []  # reports that could not be sent to an OMS (see ``_emit``)
        self.rejects: collections.deque[Reject] = collections.deque(maxlen=RECENT_REJECTS)  # newest last
        self._last_reject: dict[str, Reject] = {}
        self._round_trip: Callable[[str, float], None] | None = None
        self._asked_at: dict[str, float] = {}  # order key -> when its latest request was taken (round trips)
        self._throttle: Throttle | None = None  # the shared write budget (``fixengine.gateway.throttle``)
        # Requests the throttle queued, by ticket: what to do once it admits or refuses them.
        self._held: dict[int, tuple[Callable[[], None], Callable[[str], None]]] = {}
        self._throttle_timer: asyncio.TimerHandle | None = None
        self._relogon: set[str] = set()  # clients an operator logged out, to be enabled again once out

    @property
    def ports(self) -> list[int]:
        return self._acceptors.ports if self._acceptors is not None else []

    # --- lifecycle ----------------------------------------------------------------------------------

    def start(self) -> None:
        """Open the journal, resume where the last run stopped, and start accepting OMSs. Call it
        right after ``Engine.start`` (same turn of the loop: no report is missed in between)."""
        self._loop = asyncio.get_running_loop()
        path = self.config.gateway_path
        assert path is not None
        self._journal = GatewayJournal(path / "journal.log", durable=self.config.journal_sync == "full",
                                       legacy=path / "gateway.db")
        self._throttle = Throttle.from_config(self.config.gateway, self._clients.values(), self._loop.time())  # type: ignore[arg-type]
        self._acceptors = OmsAcceptors(self.config.gateway, self._clients.values(), path / "sessions",  # type: ignore[arg-type]
                                       self._on_oms_events, log_dir=self.config.log_path if self.config.message_log else None)
        self._load()
        self._engine.observe(self._on_engine_event)
        self._resume()
        self._acceptors.start(self._loop)
        for name in self._clients:
            self._cancel_later(name)  # not connected yet: the grace period starts now

    def drain(self) -> None:
        """The first step of a stop: new orders and amends are refused from now on (cancels are
        still taken), and OMS messages waiting for their Kalshi session are answered now."""
        self._draining = True
        if self._journal is not None:
            self._drain()

    def resume_orders(self) -> None:
        """Undo ``drain`` (an operator's drain, not a stop): new orders and amends are taken again."""
        if not self._stopping:
            self._draining = False

    def disable_client(self, client: str) -> None:
        """Log ``client`` out and refuse its Logons until ``enable_client`` (an operator's action)."""
        self._session_of(client).logout("disabled by an operator")
        self._relogon.discard(client)

    def enable_client(self, client: str) -> None:
        self._session_of(client).logon()  # QuickFIX's acceptor takes its Logons again

    def logout_client(self, client: str) -> None:
        """Log ``client`` out now; it may log on again at once."""
        session = self._session_of(client)
        if session.isLoggedOn():
            self._relogon.add(client)  # QuickFIX's logout disables the session: enabled again once out
        session.logout("logged out by an operator")

    def _session_of(self, client: str) -> fix.Session:
        session = self._acceptors.lookup(client) if self._acceptors is not None and client in self._clients else None
        if session is None:
            raise FixEngineError(f"no OMS client named {client!r}; configured: {', '.join(self._clients)}")
        return session

    def in_flight(self) -> int:
        """OMS orders, cancels and amends Kalshi has not answered yet."""
        return len(self._held) + sum(1 for link in self._links.values()
                                     if not link.chain.done and (not link.chain.acknowledged or link.chain.pending is not None))

    async def settled(self) -> None:
        """Return once nothing is in flight (see ``in_flight``)."""
        while self.in_flight():
            self._settled = asyncio.get_running_loop().create_future()
            await self._settled

    async def log_out_clients(self) -> None:
        """Answer what the OMSs sent until now, then log each out, waiting for its Logout. Reports
        that come after (the Kalshi side is still up) are journaled and stored for the OMS's next
        logon. A stopping gateway starts no cancel-on-disconnect grace period."""
        if self._acceptors is None or self._journal is None or self._stopping:
            return
        self._stopping = True
        if self._drain_timer is not None:
            self._drain_timer.cancel()
        for timer in self._grace.values():
            timer.cancel()
        self._grace.clear()
        self._acceptors.take_inbox()  # what the OMSs sent until now is answered before their Logout
        self._refuse_held("the gateway is stopping: the request was waiting for its share of Kalshi's rate budget")
        self._flush()
        await self._acceptors.log_out()

    async def stop(self) -> None:
        """Log the OMSs out (if not done yet), send what is left, stop the acceptors and close the journal."""
        if self._acceptors is None or self._journal is None:
            return
        await self.log_out_clients()
        self._acceptors.take_inbox()
        self._flush()
        await self._acceptors.stop()
        self._record_all_received()
        try:
            self._journal.close()
        except OSError as exc:  # halted on it, most likely: said already; the stop goes on
            log.error("the gateway journal %s could not be written at the stop: %s", self._journal.path, exc.strerror or exc)
        self._acceptors = None

    def reload(self, config: EngineConfig) -> list[str]:
        """Apply a changed session map without disconnecting anyone: a new client on a port of its
        own starts listening, changed entitlements apply from the client's next message. What would
        touch a connected client (a client moved or removed, or added on a port already served)
        waits for a restart. Returns one line per change, applied or not."""
        said = []
        added = []
        for c in config.oms_clients:
            old = self._clients.get(c.name)
            if old is None:
                if c.port in self.ports:
                    said.append(f"{c.name}: port {c.port} is already served; the client joins it at the next restart")
                elif c.session not in {s.name for s in self.config.sessions}:
                    said.append(f"{c.name}: session {c.session!r} is not running; the client starts at the next restart")
                else:
                    added.append(c)
            elif _identity(old) != _identity(c):
                said.append(f"{c.name}: CompIDs, port, session or reset_on_logon changed; applied at the next restart")
            elif old != c:
                self._clients[c.name], self._entitled[c.name] = c, _entitlements(c)
                if self._throttle is not None and self._loop is not None:
                    self._throttle.configure(c, self._loop.time())
                said.append(f"{c.name}: entitlements updated")
        for name in self._clients.keys() - {c.name for c in config.oms_clients}:
            said.append(f"{name}: no longer in the config; still served until the next restart")
        for c in added:
            self._clients[c.name], self._entitled[c.name] = c, _entitlements(c)
            if self._throttle is not None and self._loop is not None:
                self._throttle.configure(c, self._loop.time())
            self._keys[c.name] = {}
            self._views[c.name] = _ClientOrders(self._keys[c.name], self._order)
            self._exec_ids[c.name] = ExecIds(prefix="E", last=self._journal.exec_id_counter(c.name) if self._journal else 0)
            self._waiting[c.name] = collections.deque()
        self._copies = _drop_copies(self._clients.values())
        if self._acceptors is not None:  # passwords, allow-lists, slow-consumer timeouts: from the next connection
            said += self._acceptors.reconfigure(config.oms_clients)
        if added and self._acceptors is not None:
            self._acceptors.add(added)
            said += [f"{c.name}: listening on {c.port}" for c in added]
            for c in added:
                self._cancel_later(c.name)
        return said

    def is_logged_on(self, client: str) -> bool:
        return self._acceptors is not None and self._acceptors.is_logged_on(client)

    @property
    def draining(self) -> bool:
        """A stop has begun: new orders and amends are refused."""
        return self._draining

    def health(self) -> list[ClientHealth]:
        """Every OMS client as it is now (for the service's status, page and metrics)."""
        out = []
        wall_minus_loop = time.time() - self._loop.time() if self._loop is not None else 0.0
        for name, c in self._clients.items():
            session = self._acceptors.lookup(name) if self._acceptors is not None else None
            messages = self._acceptors.message_log(name) if self._acceptors is not None else None
            deadline = self.cancel_deadline(name)
            live = sum(1 for key in set(self._keys[name].values()) if not self._order(key).status.terminal)
            out.append(ClientHealth(
                name=name, sender_comp_id=c.sender_comp_id, target_comp_id=c.target_comp_id, port=c.port,
                session=c.session, drop_copy=c.drop_copy is not None,
                logged_on=session is not None and session.isLoggedOn(),
                next_out_seq=session.getExpectedSenderNum() if session is not None else None,
                next_in_seq=session.getExpectedTargetNum() if session is not None else None,
                last_in=(messages.last_in or None) if messages is not None else None,
                last_out=(messages.last_out or None) if messages is not None else None,
                orders_live=live, waiting=len(self._waiting[name]),
                cancel_at=deadline + wall_minus_loop if deadline is not None else None,
                bytes_buffered=self._acceptors.buffered(name) if self._acceptors is not None else 0,
                last_disconnect=self._acceptors.last_disconnect(name) if self._acceptors is not None else None,
                last_reject=self._last_reject.get(name),
            ))
        return out

    def clients_of_orders(self) -> dict[str, tuple[str, str]]:
        """Order key -> (the OMS client whose order it is, its latest ClOrdID for it)."""
        return {key: (link.client, link.chain.cl_ord_id) for key, link in self._links.items()}

    @property
    def message_counts(self) -> Mapping[tuple[str, str, str], int]:
        """OMS-side FIX messages logged, by (``oms-<client>``, "in"/"out", MsgType)."""
        return self._acceptors.message_counts if self._acceptors is not None else {}

    def observe_commits(self, callback: Callable[[float], None]) -> None:
        """Tell ``callback`` how long each commit of the gateway's journal took (seconds)."""
        assert self._journal is not None, "start() the gateway first"
        self._journal.on_commit = callback

    def observe_round_trips(self, callback: Callable[[str, float], None]) -> None:
        """Tell ``callback`` (client, seconds) from each OMS order, cancel or amend taken to
        Kalshi's first answer to it."""
        self._round_trip = callback

    def cl_ord_id(self, client: str, cl_ord_id: str) -> dict[str, object] | None:
        """What the gateway knows of an OMS ClOrdID: the order it names, its ClOrdIDs on both
        sides and its state; None if the client never used it."""
        key = self._keys.get(client, {}).get(cl_ord_id)
        if key is None:
            return None
        order, link = self._order(key), self._links.get(key)
        return {
            "client": client, "oms_cl_ord_id": cl_ord_id, "order_key": key,
            "oms_cl_ord_ids": sorted(k for k, v in self._keys[client].items() if v == key),
            "kalshi_cl_ord_id": order.cl_ord_id, "kalshi_order_id": order.order_id,
            "ticker": order.ticker, "status": order.status.value, "cum_qty": str(order.cum_qty),
            "leaves_qty": str(order.leaves_qty), "oms_chain_cl_ord_id": link.chain.cl_ord_id if link else None,
        }

    # --- restart ------------------------------------------------------------------------------------

    def _load(self) -> None:
        assert self._journal is not None
        for name in self._clients:
            self._exec_ids[name] = ExecIds(prefix="E", last=self._journal.exec_id_counter(name))
        for link in self._journal.links():
            if link.client not in self._clients:
                log.warning("the journal has orders of OMS client %r, which is no longer configured", link.client,
                            extra=correlate(oms_session=link.client, oms_cl_ord_id=link.chain.cl_ord_id,
                                            kalshi_cl_ord_id=link.order_key))
                continue
            self._links[link.order_key] = _Linked(link.client, link.chain, link.engine_pending,
                                                  NewOrder.model_validate_json(link.request))
        for client, cl_ord_id, key in self._journal.cl_ord_ids():
            if client in self._keys:
                self._keys[client][cl_ord_id] = key

    def _resume(self) -> None:
        """What the last run journaled but never forwarded goes out again, flagged PossResend;
        then each OMS is told what happened to its orders in between."""
        assert self._journal is not None and self._acceptors is not None
        unforwarded = self._journal.unforwarded()
        for row in unforwarded:
            if row.client in self._clients:
                flagged = row.fields if (POSS_RESEND, "Y") in row.fields else row.fields + [(POSS_RESEND, "Y")]
                self._acceptors.send(row.client, row.msg_type, flagged)
        if unforwarded:
            self._journal.mark_forwarded(unforwarded[-1].id)
            log.warning("%d reports journaled before the last stop were sent again (PossResend)", len(unforwarded))
        book = self._engine.book
        now = _utcnow()
        for key, link in self._links.items():
            if link.chain.done:
                continue
            order = book.orders.get(key)
            if order is None:  # journaled here, never by the engine: it cannot have reached Kalshi
                order = self._ghost(link, NEVER_SENT)
            out, chain = catch_up(order, link.chain, link.engine_pending, self._exec_ids[link.client], now)
            if out:
                log.warning("%s: order %s changed while the gateway was down: %d reports", link.client,
                            chain.cl_ord_id, len(out),
                            extra=correlate(oms_session=link.client, oms_cl_ord_id=chain.cl_ord_id, kalshi_cl_ord_id=key))
            self._update(key, link, chain)
            for message in out:
                self._emit(link.client, message, poss_resend=True)
        self._ask_again_for_unjournaled()
        self._flush()

    def _ghost(self, link: _Linked, why: str) -> Order:
        account = self.config.session(self._clients[link.client].session).account_id
        placed = OrderBook().submit(link.request, account)
        link.ghost = replace(placed, status=Status.REJECTED, reason=Reason(RejectCode.OTHER, None, why))
        return link.ghost

    def _ask_again_for_unjournaled(self) -> None:
        """QuickFIX counted OMS messages the gateway never journaled (a kill in between): the OMS
        is asked for them again (it resends them PossDup; duplicates are recognised by ClOrdID)."""
        assert self._journal is not None and self._acceptors is not None
        for name, c in self._clients.items():
            session = self._acceptors.lookup(name)
            if session is None or c.reset_on_logon:
                continue
            expected = session.getExpectedTargetNum()
            last = self._journal.received(name)
            if last is None:
                self._journal.record_received(name, expected - 1)
            elif expected > last + 1:
                log.warning("%s: OMS messages %d-%d were received but not journaled before the last stop; "
                            "asking for them again", name, last + 1, expected - 1, extra=correlate(oms_session=name))
                session.setNextTargetMsgSeqNum(last + 1)
        self._journal.commit()

    def _record_all_received(self) -> None:
        assert self._journal is not None and self._acceptors is not None
        for name in self._clients:
            session = self._acceptors.lookup(name)
            if session is not None:
                self._journal.record_received(name, session.getExpectedTargetNum() - 1)

    # --- OMS → Kalshi -------------------------------------------------------------------------------

    def _on_oms_events(self, batch: list[OmsSessionEvent]) -> None:
        assert self._journal is not None and self._loop is not None
        for event in batch:
            if isinstance(event, OmsReceived):
                self._waiting[event.client].append((self._loop.time() + READY_TIMEOUT, event))
            elif isinstance(event, OmsLoggedOn):
                log.info("OMS %s logged on", event.client, extra=correlate(oms_session=event.client))
                self._keep_orders(event.client)
            elif isinstance(event, OmsLoggedOut):
                log.info("OMS %s logged out", event.client, extra=correlate(oms_session=event.client))
                if event.client in self._relogon:
                    self._relogon.discard(event.client)
                    self.enable_client(event.client)
                self._cancel_later(event.client)
        self._drain()

    # --- cancel on disconnect -----------------------------------------------------------------------

    def _cancel_later(self, client: str) -> None:
        """The client is gone: if it asked for it, its live orders are cancelled once its grace
        period has passed without it logging on again."""
        grace = self._clients[client].cancel_on_disconnect
        if grace is None or self._loop is None or client in self._grace or self._stopping:
            return  # a stopping gateway leaves orders alone: the OMS's grace starts at the next start
        self._grace[client] = self._loop.call_later(grace, self._cancel_orders_of, client)

    def cancel_deadline(self, client: str) -> float | None:
        """When (the loop's clock) the client's live orders will be cancelled unless it logs on
        again; None when no cancel is due."""
        timer = self._grace.get(client)
        return timer.when() if timer is not None else None

    def _keep_orders(self, client: str) -> None:
        timer = self._grace.pop(client, None)
        if timer is not None:
            timer.cancel()
        self._cancel_pending.discard(client)

    def _cancel_orders_of(self, client: str) -> None:
        """Cancel every live order of ``client`` (and only of it); if its Kalshi session cannot
        take cancels now, as soon as it can."""
        self._grace.pop(client, None)
        session = self._clients[client].session
        if not self._engine.is_logged_on(session):
            self._cancel_pending.add(client)  # retried when the session is back (``_on_engine_event``)
            return
        self._cancel_pending.discard(client)
        entry, cancelled = self._engine.order_entry, 0
        for key in set(self._keys[client].values()):
            order = self._engine.book.orders.get(key)
            if order is None or order.status.terminal or order.pending is not None:
                continue
            try:
                entry.cancel(session, CancelOrder(order=key))
            except FixEngineError as exc:
                log.warning("%s: cancel on disconnect could not cancel %s: %s", client, key, exc,
                            extra=correlate(session=session, oms_session=client, kalshi_cl_ord_id=key))
                continue
            cancelled += 1
        log.warning("%s: OMS disconnected for longer than its grace period: %d live orders cancelled", client, cancelled,
                    extra=correlate(session=session, oms_session=client))

    def _ready(self, client: str) -> bool:
        session = self._clients[client].session
        if session is None:
            return True  # a drop-copy client: what it sends is refused at once
        return self._engine.is_logged_on(session) and not self._engine.is_book_held(session)

    def _drain(self) -> None:
        """Handle each client's waiting messages, in order, while its Kalshi session is ready (or
        once the oldest has waited ``READY_TIMEOUT``: it is then refused with the reason)."""
        assert self._journal is not None and self._loop is not None
        now = self._loop.time()
        handled = False
        for client, waiting in self._waiting.items():
            ready = self._ready(client) or self._draining  # a stopping gateway answers everything now
            while waiting and (ready or waiting[0][0] <= now):
                _, event = waiting.popleft()
                handled = True
                try:
                    self._on_request(event)
                except Exception:  # noqa: BLE001 - one bad message must not stop the others
                    log.exception("%s: OMS message %d (%s) could not be handled", event.client, event.seq, event.msg_type,
                                  extra=correlate(oms_session=event.client))
        if handled:
            # The requests and the ClOrdID map are durable before the engine's flush sends anything.
            self._commit()
        deadlines = [w[0][0] for w in self._waiting.values() if w]
        if deadlines and self._drain_timer is None:
            self._drain_timer = self._loop.call_at(min(deadlines), self._drain_later)

    def _drain_later(self) -> None:
        self._drain_timer = None
        self._drain()

    def _on_request(self, event: OmsReceived) -> None:
        assert self._journal is not None
        client = self._clients[event.client]
        fields = parse(event.raw.encode("latin-1"))
        cl_ord_id = first_values(fields).get(CL_ORD_ID)
        if event.poss_dup and cl_ord_id and self._journal.has_request(client.name, event.msg_type, cl_ord_id):
            log.info("%s: %s %s resent (PossDup) was handled before; ignored", client.name, event.msg_type, cl_ord_id,
                     extra=correlate(oms_session=client.name, oms_cl_ord_id=cl_ord_id))
            self._journal.record_received(client.name, event.seq)
            return
        self._journal.record_request(client.name, event.seq, event.msg_type, cl_ord_id, event.raw)
        result = translate(fields, self._entitled[client.name], self._views[client.name], subaccount=client.subaccount)
        if isinstance(result, _REFUSALS):
            log.info("%s: %s refused: %s", client.name, event.msg_type, result.text,
                     extra=correlate(oms_session=client.name, oms_cl_ord_id=cl_ord_id))
            self._emit(client.name, result.message(self._exec_ids[client.name], _utcnow()))
            return
        assert isinstance(result, Translated)
        kind = kind_of(event.msg_type)
        if kind is None:
            self._act(client, result)
            return

        def refuse(text: str) -> None:
            log.info("%s: %s throttled: %s", client.name, event.msg_type, text,
                     extra=correlate(oms_session=client.name, oms_cl_ord_id=cl_ord_id))
            reason = self.config.gateway.throttle_reject_reason  # type: ignore[union-attr]
            refusal = BusinessRefusal(event.seq, event.msg_type, result.cl_ord_id, reason, text)
            self._emit(client.name, refusal.message(self._exec_ids[client.name], _utcnow()))
        self._throttled(client.name, kind, lambda: self._act(client, result), refuse)

    # --- the shared write budget ------------------------------------------------------------------

    def _throttled(self, client: str, kind: Kind, admit: Callable[[], None], refuse: Callable[[str], None]) -> None:
        """Run ``admit`` when the throttle lets the request go to Kalshi (now, or once queued), or
        ``refuse`` with its reason (35=j 380=8 naming the client's quota)."""
        assert self._throttle is not None and self._loop is not None
        decision = self._throttle.request(client, kind, self._loop.time())
        if isinstance(decision, Admitted):
            admit()
        elif isinstance(decision, Refused):
            refuse(decision.text)
        else:
            assert isinstance(decision, Queued)
            self._held[decision.ticket] = (admit, refuse)
            self._wake_throttle_later()

    def _wake_throttle_later(self) -> None:
        assert self._throttle is not None and self._loop is not None
        when = self._throttle.next_wakeup()
        if when is None:
            return
        if self._throttle_timer is not None:
            if self._throttle_timer.when() <= when:
                return
            self._throttle_timer.cancel()
        self._throttle_timer = self._loop.call_at(max(when, self._loop.time()), self._on_throttle_wake)

    def _on_throttle_wake(self) -> None:
        """Queued requests the throttle has decided: sent or refused, journaled before any goes out."""
        assert self._throttle is not None and self._loop is not None and self._journal is not None
        self._throttle_timer = None
        for outcome in self._throttle.poll(self._loop.time()):
            if outcome.ticket is None or outcome.ticket not in self._held:
                continue
            admit, refuse = self._held.pop(outcome.ticket)
            try:
                admit() if isinstance(outcome, Admitted) else refuse(outcome.text)
            except Exception:  # noqa: BLE001 - one bad request must not stop the others
                log.exception("a request queued for the rate budget could not be handled")
        self._commit()
        self._wake_throttle_later()
        if self._settled is not None and not self._settled.done() and not self._held:
            self._settled.set_result(None)

    def _refuse_held(self, text: str) -> None:
        """Everything still queued for the rate budget is refused with ``text`` (a stop)."""
        if self._throttle_timer is not None:
            self._throttle_timer.cancel()
            self._throttle_timer = None
        for ticket, (_, refuse) in list(self._held.items()):
            if self._throttle is not None:
                self._throttle.withdraw(ticket)
            refuse(text)
        self._held.clear()

    def throttle_status(self) -> tuple[Any, ...]:
        """The throttle's buckets and per-client counters now (``Throttle.status``)."""
        if self._throttle is None or self._loop is None:
            return ()
        return self._throttle.status(self._loop.time())

    def _act(self, client: OmsClientConfig, t: Translated) -> None:
        entry = self._engine.order_entry
        request = t.request
        exec_ids = self._exec_ids[client.name]
        if isinstance(request, NewOrder):
            try:
                self._check_not_stopping()
                entry.submit(client.session, request)
            except FixEngineError as exc:
                refusal = OrderRefusal(t.cl_ord_id, request.ticker, "1" if request.action.value == "buy" else "2",
                                       request.quantity, None, 0, OTHER, str(exc))
                self._emit(client.name, refusal.message(exec_ids, _utcnow()))
                return
            link = _Linked(client.name, OmsChain(t.cl_ord_id, order_qty=request.quantity), None, request)
            self._links[request.client_order_id] = link
            self._map(client.name, t.cl_ord_id, request.client_order_id)
            self._journal.record_link(Link(request.client_order_id, client.name, link.chain, None, request.model_dump_json()))
            log.debug("%s: order %s goes to %s as %s", client.name, t.cl_ord_id, client.session, request.client_order_id,
                      extra=correlate(session=client.session, oms_session=client.name, oms_cl_ord_id=t.cl_ord_id,
                                      kalshi_cl_ord_id=request.client_order_id))
            if self._round_trip is not None:
                self._asked_at[request.client_order_id] = time.perf_counter()
        elif isinstance(request, (CancelOrder, ReplaceOrder)):
            assert t.order_key is not None and t.orig_cl_ord_id is not None
            msg_type = MSG_ORDER_CANCEL_REQUEST if isinstance(request, CancelOrder) else MSG_ORDER_CANCEL_REPLACE_REQUEST
            try:
                if isinstance(request, CancelOrder):
                    entry.cancel(client.session, request)
                else:
                    self._check_not_stopping()
                    entry.replace(client.session, request)
            except FixEngineError as exc:
                order = self._order(t.order_key)
                response_to = CxlRejResponseTo.CANCEL if isinstance(request, CancelOrder) else CxlRejResponseTo.REPLACE
                refusal = CancelRefusal(t.cl_ord_id, t.orig_cl_ord_id, order.order_id or "", ord_status(order),
                                        response_to, 0, OTHER, str(exc))
                self._emit(client.name, refusal.message(exec_ids, _utcnow()))
                return
            link = self._links[t.order_key]
            link.engine_pending = request.client_order_id
            self._update(t.order_key, link, link.chain.requested(t.cl_ord_id, msg_type))
            self._map(client.name, t.cl_ord_id, t.order_key)
            log.debug("%s: %s %s of order %s goes to %s as %s", client.name, msg_type, t.cl_ord_id, t.orig_cl_ord_id,
                      client.session, request.client_order_id,
                      extra=correlate(session=client.session, oms_session=client.name, oms_cl_ord_id=t.cl_ord_id,
                                      kalshi_cl_ord_id=request.client_order_id))
            if self._round_trip is not None:
                self._asked_at[t.order_key] = time.perf_counter()
        elif isinstance(request, MassCancel):
            cancelled = []
            for key in request.orders:
                order = self._engine.book.orders.get(key)
                if order is None or order.status.terminal or order.pending is not None:
                    log.info("%s: mass cancel skipped %s: not live, or a change is in flight", client.name, key,
                             extra=correlate(session=client.session, oms_session=client.name, kalshi_cl_ord_id=key))
                    continue
                # Each cancel spends the session's budget like any cancel (first in line, never refused).
                self._throttled(client.name, Kind.CANCEL, lambda key=key: self._cancel_for(client, key),
                                lambda text: None)
                cancelled.append(key)
            done = replace(request, orders=tuple(cancelled))
            self._emit(client.name, mass_cancel_report(t.cl_ord_id, done))
        elif isinstance(request, StatusRequest):
            book = {key: self._order(key) for key in request.orders}
            chains = {key: self._links[key].chain for key in request.orders if key in self._links}
            for message in status_reports(request, book, chains, exec_ids, _utcnow()):
                self._emit(client.name, message)

    def _cancel_for(self, client: OmsClientConfig, key: str) -> None:
        try:
            self._engine.order_entry.cancel(client.session, CancelOrder(order=key))
        except FixEngineError as exc:
            log.info("%s: mass cancel skipped %s: %s", client.name, key, exc,
                     extra=correlate(session=client.session, oms_session=client.name, kalshi_cl_ord_id=key))

    def _check_not_stopping(self) -> None:
        if self._draining:
            raise SessionUnavailableError("the gateway is stopping: new orders and amends are refused; cancels are taken")

    def _map(self, client: str, cl_ord_id: str, key: str) -> None:
        assert self._journal is not None
        self._keys[client][cl_ord_id] = key
        self._journal.record_cl_ord_id(client, cl_ord_id, key)

    def _order(self, key: str) -> Order:
        order = self._engine.book.orders.get(key)
        if order is not None:
            return order
        link = self._links[key]
        return link.ghost or self._ghost(link, NEVER_SENT)

    # --- Kalshi → OMS -------------------------------------------------------------------------------

    def _on_engine_event(self, event: Event) -> None:
        if not isinstance(event, OrderEvent):
            if any(self._waiting.values()):
                self._drain()  # a logon or a released book may make a session ready
            for client in list(self._cancel_pending):
                self._cancel_orders_of(client)
            return
        link = self._links.get(event.order.key)
        if link is None:
            return  # not an OMS's order (the engine's own API, another gateway run)
        if self._asked_at:
            asked = self._asked_at.pop(event.order.key, None)
            if asked is not None and self._round_trip is not None:
                self._round_trip(link.client, time.perf_counter() - asked)
        out, chain = reports(event, link.chain, self._exec_ids[link.client], event.at or _utcnow())
        self._update(event.order.key, link, chain)
        for message in out:
            self._emit(link.client, message)
            if log.isEnabledFor(logging.DEBUG):
                log.debug("%s: 35=%s to the OMS for order %s: %s", link.client, message.msg_type, chain.cl_ord_id,
                          event.describe(),
                          extra=correlate(session=event.session, oms_session=link.client, oms_cl_ord_id=chain.cl_ord_id,
                                          kalshi_cl_ord_id=event.order.cl_ord_id,
                                          exec_id=first_values(message.fields).get(EXEC_ID)))
        if self._settled is not None and not self._settled.done():
            self._settled.set_result(None)  # ``settled`` looks again

    def _update(self, key: str, link: _Linked, chain: OmsChain) -> None:
        if chain.pending is None:
            link.engine_pending = None
        if chain != link.chain or link.engine_pending is not None:
            link.chain = chain
            self._journal_link(key, link)

    def _journal_link(self, key: str, link: _Linked) -> None:
        assert self._journal is not None
        self._journal.record_chain(key, link.chain, link.engine_pending)

    def _emit(self, client: str, message: OmsMessage, *, poss_resend: bool = False) -> None:
        """Journal ``message`` for ``client`` and send it at the end of this turn, or, if it is not
        valid FIX 4.4, raise an alert and send nothing. ``poss_resend``: news the OMS may have had
        (after a restart), flagged PossResend (97, a header field)."""
        assert self._journal is not None
        problem = self._check.problem(message.msg_type, message.fields)
        if problem is not None:
            text = f"{client}: a {message.msg_type} report is not valid FIX 4.4 and was not sent ({problem}): {message.fields}"
            log.error("ALERT %s", text,
                      extra=correlate(oms_session=client, oms_cl_ord_id=first_values(message.fields).get(CL_ORD_ID)))
            self.alerts.append(text)
            return
        if message.msg_type in _REJECT_TYPES or (EXEC_TYPE, "8") in message.fields:
            self._note_reject(client, message)
        if poss_resend:
            message = OmsMessage(message.msg_type, message.fields + [(POSS_RESEND, "Y")])
        row = self._journal.record_outgoing(client, message.msg_type, message.fields, self._exec_ids[client].last)
        self._outbox.append((row, client, message))
        if message.msg_type == MSG_EXECUTION_REPORT and client in self._copies:
            self._copy(client, message)
        if not self._flush_scheduled and self._loop is not None:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _copy(self, client: str, message: OmsMessage) -> None:
        """The report's copy for each drop-copy client of ``client``: flagged CopyMsgIndicator
        (797), naming the client in OnBehalfOfCompID (115), its ExecID made unique across clients.
        Journaled and sent as any report, so a drop-copy client away gets them by resend."""
        assert self._journal is not None
        sender = self._clients[client].sender_comp_id
        fields = [(EXEC_ID, f"{client}:{v}") if tag == EXEC_ID else (tag, v) for tag, v in message.fields]
        copy = OmsMessage(message.msg_type, [(ON_BEHALF_OF_COMP_ID, sender), (COPY_MSG_INDICATOR, "Y"), *fields])
        for dc in self._copies[client]:
            row = self._journal.record_outgoing(dc, copy.msg_type, copy.fields, self._exec_ids[dc].last)
            self._outbox.append((row, dc, copy))

    def _note_reject(self, client: str, message: OmsMessage) -> None:
        fields = first_values(message.fields)
        reject = Reject(time.time(), client, message.msg_type, fields.get(CL_ORD_ID), fields.get(TEXT, ""))
        self.rejects.append(reject)
        self._last_reject[client] = reject

    def _commit(self) -> bool:
        """Commit the gateway's journal; if it cannot be written, halt order entry (nothing more
        goes to Kalshi, and ``fixengine serve`` stops saying why) and say False."""
        assert self._journal is not None
        try:
            self._journal.commit()
        except OSError as exc:
            self._engine.order_entry.halt(f"the gateway journal {self._journal.path} cannot be written: {exc.strerror or exc}")
            return False
        return True

    def _flush(self) -> None:
        """Commit, then hand this turn's reports to QuickFIX (which stores each before sending it)."""
        self._flush_scheduled = False
        if self._journal is None or self._acceptors is None:
            return
        if not self._commit():
            self._outbox.clear()  # never journaled, never sent: a restart tells the OMS (catch_up)
            return
        outbox, self._outbox = self._outbox, []
        for _, client, message in outbox:
            self._acceptors.send(client, message.msg_type, message.fields)
        if outbox:
            self._journal.mark_forwarded(outbox[-1][0])  # durable with the next commit
