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
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from decimal import Decimal

from fixengine.config import EngineConfig, OmsClientConfig
from fixengine.engine import Engine
from fixengine.errors import FixEngineError, SessionUnavailableError
from fixengine.events import Event
from fixengine.fix.framing import parse
from fixengine.fix.tags import CL_ORD_ID, MSG_ORDER_CANCEL_REQUEST, MSG_ORDER_CANCEL_REPLACE_REQUEST, POSS_RESEND
from fixengine.gateway.acceptor import OmsAcceptors, OmsLoggedOn, OmsLoggedOut, OmsReceived, OmsSessionEvent
from fixengine.gateway.journal import GatewayJournal, Link
from fixengine.gateway.outbound import Fix44Check
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
        self._links: dict[str, _Linked] = {}  # order key -> link
        self._keys: dict[str, dict[str, str]] = {name: {} for name in self._clients}  # client -> OMS ClOrdID -> key
        self._views = {name: _ClientOrders(self._keys[name], self._order) for name in self._clients}
        self._exec_ids: dict[str, ExecIds] = {}
        self._check = Fix44Check()
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
        self._journal = GatewayJournal(path / "gateway.db")
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

    def in_flight(self) -> int:
        """OMS orders, cancels and amends Kalshi has not answered yet."""
        return sum(1 for link in self._links.values()
                   if not link.chain.done and (not link.chain.acknowledged or link.chain.pending is not None))

    async def settled(self) -> None:
        """Return once nothing is in flight (see ``in_flight``)."""
        while self.in_flight():
            self._settled = asyncio.get_running_loop().create_future()
            await self._settled

    async def stop(self) -> None:
        """Send what is left, log every OMS out, stop the acceptors and close the journal."""
        if self._acceptors is None or self._journal is None:
            return
        self._stopping = True
        if self._drain_timer is not None:
            self._drain_timer.cancel()
        for timer in self._grace.values():
            timer.cancel()
        self._grace.clear()
        self._acceptors.take_inbox()  # what the OMSs sent until now is answered before their Logout
        self._flush()
        await self._acceptors.stop()
        self._record_all_received()
        self._journal.close()
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
                said.append(f"{c.name}: entitlements updated")
        for name in self._clients.keys() - {c.name for c in config.oms_clients}:
            said.append(f"{name}: no longer in the config; still served until the next restart")
        for c in added:
            self._clients[c.name], self._entitled[c.name] = c, _entitlements(c)
            self._keys[c.name] = {}
            self._views[c.name] = _ClientOrders(self._keys[c.name], self._order)
            self._exec_ids[c.name] = ExecIds(prefix="E", last=self._journal.exec_id_counter(c.name) if self._journal else 0)
            self._waiting[c.name] = collections.deque()
        if added and self._acceptors is not None:
            self._acceptors.add(added)
            said += [f"{c.name}: listening on {c.port}" for c in added]
            for c in added:
                self._cancel_later(c.name)
        return said

    def is_logged_on(self, client: str) -> bool:
        return self._acceptors is not None and self._acceptors.is_logged_on(client)

    # --- restart ------------------------------------------------------------------------------------

    def _load(self) -> None:
        assert self._journal is not None
        for name in self._clients:
            self._exec_ids[name] = ExecIds(prefix="E", last=self._journal.exec_id_counter(name))
        for link in self._journal.links():
            if link.client not in self._clients:
                log.warning("the journal has orders of OMS client %r, which is no longer configured", link.client)
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
                            chain.cl_ord_id, len(out))
            self._update(key, link, chain)
            for message in out:
                self._emit(link.client, message, poss_resend=True)
        self._ask_again_for_unjournaled()
        self._flush()

    def _ghost(self, link: _Linked, why: str) -> Order:
        account = self.config.session(self._clients[link.client].session).api_key_id
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
                            "asking for them again", name, last + 1, expected - 1)
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
                log.info("OMS %s logged on", event.client)
                self._keep_orders(event.client)
            elif isinstance(event, OmsLoggedOut):
                log.info("OMS %s logged out", event.client)
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
                log.warning("%s: cancel on disconnect could not cancel %s: %s", client, key, exc)
                continue
            cancelled += 1
        log.warning("%s: OMS disconnected for longer than its grace period: %d live orders cancelled", client, cancelled)

    def _ready(self, client: str) -> bool:
        session = self._clients[client].session
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
                    log.exception("%s: OMS message %d (%s) could not be handled", event.client, event.seq, event.msg_type)
        if handled:
            # The requests and the ClOrdID map are durable before the engine's flush sends anything.
            self._journal.commit()
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
            log.info("%s: %s %s resent (PossDup) was handled before; ignored", client.name, event.msg_type, cl_ord_id)
            self._journal.record_received(client.name, event.seq)
            return
        self._journal.record_request(client.name, event.seq, event.msg_type, cl_ord_id, event.raw)
        result = translate(fields, self._entitled[client.name], self._views[client.name], subaccount=client.subaccount)
        if isinstance(result, _REFUSALS):
            log.info("%s: %s refused: %s", client.name, event.msg_type, result.text)
            self._emit(client.name, result.message(self._exec_ids[client.name], _utcnow()))
            return
        assert isinstance(result, Translated)
        self._act(client, result)

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
        elif isinstance(request, MassCancel):
            cancelled = []
            for key in request.orders:
                try:
                    entry.cancel(client.session, CancelOrder(order=key))
                except FixEngineError as exc:
                    log.info("%s: mass cancel skipped %s: %s", client.name, key, exc)
                    continue
                cancelled.append(key)
            done = replace(request, orders=tuple(cancelled))
            self._emit(client.name, mass_cancel_report(t.cl_ord_id, done))
        elif isinstance(request, StatusRequest):
            book = {key: self._order(key) for key in request.orders}
            chains = {key: self._links[key].chain for key in request.orders if key in self._links}
            for message in status_reports(request, book, chains, exec_ids, _utcnow()):
                self._emit(client.name, message)

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
        out, chain = reports(event, link.chain, self._exec_ids[link.client], event.at or _utcnow())
        self._update(event.order.key, link, chain)
        for message in out:
            self._emit(link.client, message)
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
            log.error("ALERT %s", text)
            self.alerts.append(text)
            return
        if poss_resend:
            message = OmsMessage(message.msg_type, message.fields + [(POSS_RESEND, "Y")])
        row = self._journal.record_outgoing(client, message.msg_type, message.fields, self._exec_ids[client].last)
        self._outbox.append((row, client, message))
        if not self._flush_scheduled and self._loop is not None:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        """Commit, then hand this turn's reports to QuickFIX (which stores each before sending it)."""
        self._flush_scheduled = False
        if self._journal is None or self._acceptors is None:
            return
        self._journal.commit()
        outbox, self._outbox = self._outbox, []
        for _, client, message in outbox:
            self._acceptors.send(client, message.msg_type, message.fields)
        if outbox:
            self._journal.mark_forwarded(outbox[-1][0])  # durable with the next commit
