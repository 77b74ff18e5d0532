"""The exchange behind the simulator's FIX sessions: requests in, reports out.

One lock serialises every call into the matching engine (QuickFIX's thread, the expiry timer, the
REST API's reads and the operator's admin calls); messages are sent by the caller after the lock is
released, so no QuickFIX session lock is ever taken while holding it. Every call's events also go
to the ``History`` (what the REST API shows), under the same lock, with the time they happened.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Literal, TypeVar

from fixengine.errors import FixEngineError
from fixengine.fix.tags import (
    BEGIN_EXEC_ID,
    END_EXEC_ID,
    EVENT_RESEND_REJECT_REASON,
    LISTENER_SESSION,
    MSG_EVENT_RESEND_COMPLETE,
    MSG_EVENT_RESEND_REJECT,
    MSG_EVENT_RESEND_REQUEST,
    MSG_EXECUTION_REPORT,
    MSG_SEQ_NUM,
    REF_SEQ_NUM,
    RESEND_EVENT_COUNT,
    TEXT,
    CANCEL_ORDERS_ON_DISCONNECT,
    CL_ORD_ID,
    MSG_NEW_ORDER_SINGLE,
    MSG_ORDER_CANCEL_REPLACE_REQUEST,
    MSG_ORDER_CANCEL_REQUEST,
    MSG_ORDER_MASS_CANCEL_REQUEST,
    ORDER_QTY,
    ORIG_CL_ORD_ID,
    PRICE,
    SIDE,
    SYMBOL,
)
from fixengine.kalshi.facts import ORDER_ENTRY, SessionType
from fixengine.kalshi.prices import WireSide
from fixengine.kalshi.maintenance import PauseKind
from fixengine.kalshi.prices import PriceError, parse_price
from simulator.config import SeedOrder
from simulator.exchange.history import History
from simulator.exchange.groups import GroupNotFound, OrderGroups
from simulator.fix.order_groups import UNKNOWN_ID, group_response, order_owner, parse_group_request
from fixengine.fix.tags import MSG_ORDER_GROUP_REQUEST, SECONDARY_CL_ORD_ID
from fixengine.orders.reports import RejectCode
from simulator.fix.drop_copy import BadExecID, DropCopyLog, Refused, listeners_copy
from simulator.fix.settlement_reports import DEFAULT_PAGE_SIZE, SettlementReports
from simulator.exchange.matching import AccountState, Event, Exchange, MarketConfig, Rejected
from simulator.fix.order_reports import (
    Outgoing,
    ReportWriter,
    business_reject,
    RequestError,
    SessionFlags,
    mass_cancel_report,
    parse_new_order,
)


T = TypeVar("T")

# A listener session may not enter orders (spec §14): BusinessMessageReject 380=6, not authorized.
LISTENER_REFUSED = frozenset({MSG_NEW_ORDER_SINGLE, MSG_ORDER_CANCEL_REQUEST, MSG_ORDER_CANCEL_REPLACE_REQUEST,
                              MSG_ORDER_MASS_CANCEL_REQUEST})
REJECT_NOT_AUTHORIZED = 6
TEXT_LISTENER = "listener-session restrictions: a listener session cannot enter or change orders"


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Venue:
    def __init__(self, markets: list[MarketConfig], accounts: list[AccountState], clock: Callable[[], datetime] = _utcnow,
                 settlement_page_size: int = DEFAULT_PAGE_SIZE, drop_copy_interval: float = 1.0):
        self.exchange = Exchange(markets, accounts)
        self.history = History(listed_time=clock())  # its markets are listed now
        self.groups = OrderGroups()  # order groups (35=UOG, spec §12): changed under the lock, like the exchange
        self._writer = ReportWriter()
        self._writer.drop_copy = DropCopyLog(timedelta(seconds=drop_copy_interval))  # EventResendRequests: one per interval
        self._flags: dict[str, SessionFlags] = {}
        self._cancel_on_disconnect: set[str] = set()
        self._listening: set[str] = set()  # listener sessions (20126=Y): read-only
        self._settlement_reports = SettlementReports(settlement_page_size)  # who gets 35=UMS, and what
        self._lock = threading.Lock()
        self._clock = clock

    def seed(self, orders: "Iterable[SeedOrder]") -> None:
        """Place the configured resting orders; a seed the exchange refuses is a config error."""
        from simulator.exchange.matching import OrderSpec

        with self._lock:
            now = self._clock()
            for i, seed in enumerate(orders):
                side = WireSide.BUY_YES if seed.side == "buy_yes" else WireSide.SELL_YES
                spec = OrderSpec(seed.account, "seed", f"seed-{i}", seed.ticker, side, seed.price, seed.quantity)
                events = self.exchange.submit(spec, now)
                self.history.record(events, now)
                for event in events:
                    if isinstance(event, Rejected):
                        raise FixEngineError(f"seed_order[{i}] ({seed.ticker}): the exchange refused it: {event.text}")

    def logged_on(self, session_id: str, logon_flags: Mapping[int, str], account_id: str = "",
                  session_type: SessionType | None = None) -> None:
        with self._lock:
            self._flags[session_id] = SessionFlags.from_logon(logon_flags)
            if logon_flags.get(CANCEL_ORDERS_ON_DISCONNECT) == "Y":
                self._cancel_on_disconnect.add(session_id)
            else:
                self._cancel_on_disconnect.discard(session_id)
            if logon_flags.get(LISTENER_SESSION) == "Y":
                self._writer.listeners.setdefault(account_id, set()).add(session_id)
                self._listening.add(session_id)
            if session_type is not None:
                self._settlement_reports.logged_on(session_id, session_type, account_id, logon_flags)

    def logged_out(self, session_id: str) -> list[Outgoing]:
        """CancelOrdersOnDisconnect (8013): the session's orders go when it does."""
        with self._lock:
            if session_id in self._listening:
                self._listening.discard(session_id)
                for sessions in self._writer.listeners.values():
                    sessions.discard(session_id)
            if session_id not in self._cancel_on_disconnect:
                return []
            now = self._clock()
            events = self.exchange.cancel_session_orders(session_id, now)
            self.history.record(events, now)
            return self._writer.write(events, self._flags, now, session_id)

    def expire(self) -> list[Outgoing]:
        with self._lock:
            return self._expire_locked(self._clock())

    def _expire_locked(self, now: datetime) -> list[Outgoing]:
        events = self.exchange.expire(now)
        self.history.record(events, now)
        return self._writer.write(events, self._flags, now, "") if events else []

    def pause(self, kind: PauseKind | None) -> list[Outgoing]:
        """Pause the whole exchange or open it again (``Exchange.pause``); the reports of the
        CancelOrderOnPause orders it cancels, for their sessions (Kalshi tells them: spec §7.5)."""
        with self._lock:
            now = self._clock()
            events = self.exchange.pause(kind, now)
            self.history.record(events, now)
            return self._writer.write(events, self._flags, now, "") if events else []

    def handle(self, session_id: str, session_type: SessionType, account_id: str, msg_type: str,
               fields: Mapping[int, str], fixt: bool) -> list[Outgoing]:
        """One order-entry request; the messages that answer it (to this and other sessions)."""
        if session_type is SessionType.DC and msg_type == MSG_EVENT_RESEND_REQUEST:
            return self._replay(session_id, account_id, fields)
        if session_id in self._listening and msg_type in LISTENER_REFUSED:
            # Kalshi refuses order entry on a listener before the exchange sees it (spec §14).
            return [business_reject(session_id, fields, REJECT_NOT_AUTHORIZED, TEXT_LISTENER)]
        if session_type not in ORDER_ENTRY:
            raise UnsupportedHere(f"{msg_type} is not accepted on {session_type.value}")
        with self._lock:
            now = self._clock()
            flags = self._flags.get(session_id, SessionFlags())
            joining: tuple[str, str, str] | None = None  # (account, ClOrdID, order group) of a 35=D with 526
            if msg_type == MSG_NEW_ORDER_SINGLE:
                try:
                    spec = parse_new_order(fields, account_id, session_id, flags.use_dollars)
                except RequestError as exc:
                    return self._writer.write([_malformed(fields, session_id, account_id, str(exc))], self._flags, now, session_id)
                group_id = fields.get(SECONDARY_CL_ORD_ID)
                refused = None if group_id is None else self.groups.refusal(order_owner(fields, account_id), group_id)
                if refused is not None:
                    events = [*self.exchange.expire(now), Rejected(spec, *refused)]
                else:
                    events = self.exchange.submit(spec, now)
                    joining = None if group_id is None else (account_id, spec.cl_ord_id, group_id)
            elif msg_type == MSG_ORDER_CANCEL_REQUEST:
                orig, cl = fields.get(ORIG_CL_ORD_ID, ""), fields.get(CL_ORD_ID, "")
                events = self.exchange.cancel(account_id, orig, cl, now)
            elif msg_type == MSG_ORDER_CANCEL_REPLACE_REQUEST:
                try:
                    quantity = Decimal(fields[ORDER_QTY]) if fields.get(ORDER_QTY) else None
                    price = parse_price(fields[PRICE], flags.use_dollars) if fields.get(PRICE) else None
                except (InvalidOperation, PriceError):
                    quantity, price = Decimal(-1), None  # the exchange refuses it as an invalid amend
                orig, cl = fields.get(ORIG_CL_ORD_ID, ""), fields.get(CL_ORD_ID, "")
                events = self.exchange.replace(account_id, orig, cl, quantity, price, now)
            elif msg_type == MSG_ORDER_MASS_CANCEL_REQUEST:
                if session_type is not SessionType.NR:
                    raise UnsupportedHere("mass cancel is only available on KalshiNR")
                paused = self.exchange.paused
                if paused is not None and paused.refuses_cancels:  # an exchange pause: no cancels at all (§7.5)
                    return [mass_cancel_report(fields.get(CL_ORD_ID, ""), session_id, 0, fixt, refused=paused.text)]
                events = self.exchange.mass_cancel(session_id, now)
                self.history.record(events, now)
                report = mass_cancel_report(fields.get(CL_ORD_ID, ""), session_id, len(events), fixt)
                return [report, *self._writer.write(events, self._flags, now, session_id)]
            elif msg_type == MSG_ORDER_GROUP_REQUEST:
                return self._order_group(session_id, account_id, fields, now)
            else:
                raise UnsupportedHere(f"message type {msg_type} is not supported")
            events += self._cancel_members(self.groups.observe(events, now, joining), now)  # fills may trigger groups
            self.history.record(events, now)
            return self._writer.write(events, self._flags, now, session_id)

    def _order_group(self, session_id: str, account_id: str, fields: Mapping[int, str], now: datetime) -> list[Outgoing]:
        """OrderGroupRequest (35=UOG): the OrderGroupResponse (35=UOH), then the reports of the orders
        it cancelled. An unknown group is a business reject (35=j); a malformed field raises
        ``GroupFieldError`` (the acceptor answers with a session Reject)."""
        request = parse_group_request(fields, account_id)
        try:
            outcome = self.groups.apply(request, now)
        except GroupNotFound as exc:
            return [business_reject(session_id, fields, UNKNOWN_ID, exc.text)]
        events = self._cancel_members(outcome.cancel, now)
        self.history.record(events, now)
        return [group_response(session_id, request.action, outcome.state), *self._writer.write(events, self._flags, now, session_id)]

    def _cancel_members(self, order_ids: list[str], now: datetime) -> list[Event]:
        """Cancel the resting orders of a group that triggered or went (Text ORDER_GROUP_CANCEL)."""
        events: list[Event] = []
        for order_id in order_ids:
            try:
                events += self.exchange.cancel_order(order_id, now, RejectCode.ORDER_GROUP_CANCEL.value)
            except ValueError:  # no longer open: it ended elsewhere
                continue
        self.groups.observe(events, now)  # they leave their groups
        return events

    def _replay(self, session_id: str, account_id: str, fields: Mapping[int, str]) -> list[Outgoing]:
        """EventResendRequest (35=U1) on KalshiDC: the account's reports again, then U2 (or U3)."""
        ref = fields.get(MSG_SEQ_NUM, "0")
        with self._lock:
            now = self._clock()
            to = self._flags.get(session_id, SessionFlags()).use_dollars
            try:
                found = self._writer.drop_copy.replay(session_id, account_id, fields.get(BEGIN_EXEC_ID, ""),
                                                      fields.get(END_EXEC_ID), now)
            except BadExecID as exc:
                raise BadField(exc.tag, str(exc)) from None
        if isinstance(found, Refused):
            return [event_resend_reject(session_id, ref, found.reason, found.text)]
        out = [Outgoing(session_id, MSG_EXECUTION_REPORT, listeners_copy(k.fields, k.dollars, to), account_id)
               for k in found]
        out.append(Outgoing(session_id, MSG_EVENT_RESEND_COMPLETE, [(REF_SEQ_NUM, ref), (RESEND_EVENT_COUNT, str(len(found)))]))
        return out

    def read(self, reader: Callable[[Exchange, History, datetime], T]) -> T:
        """Run ``reader`` on the exchange and its history, consistently (under the lock), at ``now``."""
        with self._lock:
            return reader(self.exchange, self.history, self._clock())

    def reported(self, change: Callable[[Exchange, datetime], list[Event]], requester: str = "") -> list[Outgoing]:
        """Run ``change`` on the exchange, with its events recorded and written as the reports the
        sessions are told of (a scripted scenario's counterparty, ``simulator.scripted``; unlike the
        operator's actions below, which are silent)."""
        with self._lock:
            now = self._clock()
            events = change(self.exchange, now)
            self.history.record(events, now)
            return self._writer.write(events, self._flags, now, requester) if events else []

    def session_flags(self, session_id: str) -> SessionFlags:
        """How ``session_id``'s Logon asked for its reports (defaults before its Logon)."""
        with self._lock:
            return self._flags.get(session_id, SessionFlags())

    # Operator actions: they change the exchange behind the clients' backs, so their own events
    # are recorded (the REST API shows them) but never written to a FIX session, but for settlement
    # reports (35=UMS, in ``reports``), as on Kalshi. Orders found due to expire on the way are not
    # the operator's doing: their reports come back in ``due``, to be sent whether or not the action
    # itself could be done.

    def cancel_order(self, order_id: str) -> OperatorOutcome:
        """Cancel an open order by its order id (an error if unknown or no longer open)."""
        return self._silently(lambda now: self.exchange.cancel_order(order_id, now))

    def fill_order(self, order_id: str, quantity: Decimal, counterparty: str, counterparty_balance: Decimal,
                   report: bool = False) -> OperatorOutcome:
        """Fill part of an open order at its price against ``counterparty`` (opened with
        ``counterparty_balance`` if the exchange does not know it yet). ``report``: the order's
        session gets its fill report, as if a counterparty had traded with it on the book."""
        reports: list[Outgoing] = []

        def fill(now: datetime) -> list[Event]:
            try:
                self.exchange.account(counterparty)
            except KeyError:
                self.exchange.open_account(counterparty, counterparty_balance)
            events = self.exchange.fill_against(order_id, quantity, counterparty, now)
            if report:  # under the lock, as every report: ExecIDs are numbered in order
                reports.extend(self._writer.write(events, self._flags, now, ""))
            return events

        outcome = self._silently(fill)
        return OperatorOutcome(outcome.events, outcome.due, outcome.error, reports)

    def settle_market(self, ticker: str, result: Literal["yes", "no", "scalar"], price: Decimal | None = None
                      ) -> OperatorOutcome:
        """Settle a market: its open orders end, YES contracts are paid $1, $0 or (scalar) ``price``
        and NO contracts the rest, positions go to zero; the sessions entitled get settlement reports."""
        reports: list[Outgoing] = []

        def settle(now: datetime) -> list[Event]:
            events = self.exchange.settle_market(ticker, result, now, price)
            reports.extend(self._settlement_reports.write(events, now))  # under the lock, as the logons
            return events

        outcome = self._silently(settle)
        return OperatorOutcome(outcome.events, outcome.due, outcome.error, reports)

    def _silently(self, change: Callable[[datetime], list[Event]]) -> OperatorOutcome:
        with self._lock:
            now = self._clock()
            due = self._expire_locked(now)
            try:
                events = change(now)
            except ValueError as exc:  # the exchange refused, having changed nothing
                return OperatorOutcome([], due, exc)
            self.history.record(events, now)
            return OperatorOutcome(events, due, None)


@dataclass(frozen=True, slots=True)
class OperatorOutcome:
    events: list[Event]  # what the action did (never sent on FIX)
    due: list[Outgoing]  # reports of orders that expired meanwhile: send them
    error: ValueError | None  # why the exchange refused the action (``UnknownError``: unknown item)
    reports: list[Outgoing] = field(default_factory=list)  # settlement reports (35=UMS), reported fills: send them


class UnsupportedHere(Exception):
    """Answered with BusinessMessageReject 380=3 (unsupported message type)."""


class BadField(Exception):
    """A request with a field the exchange cannot read: answered with a session Reject (35=3) on ``tag``."""

    def __init__(self, tag: int, reason: str):
        super().__init__(reason)
        self.tag = tag


def event_resend_reject(session_id: str, ref_seq_num: str, reason: int, text: str) -> Outgoing:
    """EventResendReject (35=U3): a replay refused, with EventResendRejectReason (spec §13)."""
    return Outgoing(session_id, MSG_EVENT_RESEND_REJECT,
                    [(REF_SEQ_NUM, ref_seq_num), (EVENT_RESEND_REJECT_REASON, str(reason)), (TEXT, text)])


def _malformed(fields: Mapping[int, str], session_id: str, account_id: str, text: str) -> Rejected:
    """A NewOrderSingle the exchange cannot read at all is rejected like an invalid order."""
    from fixengine.kalshi.prices import WireSide
    from simulator.exchange.matching import OrderSpec

    side = WireSide.SELL_YES if fields.get(SIDE) == "2" else WireSide.BUY_YES
    cl_ord_id, ticker = fields.get(CL_ORD_ID, ""), fields.get(SYMBOL, "")
    spec = OrderSpec(account_id, session_id, cl_ord_id, ticker, side, Decimal("0.5"), Decimal(0))
    return Rejected(spec, text, 11)
