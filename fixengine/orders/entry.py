"""Order entry: requests in, journal first, then the wire; reports in, journal first, then the book.

Runs in the asyncio loop only (one writer). ``send`` hands a message to QuickFIX; ``publish`` hands
what changed to the engine's event subscribers; ``soon`` runs a function later in this loop turn.

Group commit: a request is journaled and queued; once per loop turn the journal commits and the
queued messages go out, in the order they were requested. Reports are journaled and committed
as a batch before any of them changes the book.

One file on purpose (over 400 lines): the checks, the hold and group commit serve one rule (journal
first, then the wire or the book) with one writer; the FIX parsing they need lives in ``wire.py``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone

from fixengine.config import SessionConfig
from fixengine._event import _StampedNow, stamped
from fixengine.errors import BookUnconfirmedError, FixEngineError, JournalWriteError, SessionUnavailableError, ThrottledError
from fixengine.fix.framing import FramingError, parse, seq_num_of
from fixengine.fix.message_log import redact
from fixengine.fix.tags import (
    BUSINESS_REJECT_REASON,
    BUSINESS_REJECT_REF_ID,
    CL_ORD_ID,
    MASS_CANCEL_REJECT_REASON,
    MASS_CANCEL_RESPONSE,
    MSG_BUSINESS_MESSAGE_REJECT,
    MSG_EVENT_RESEND_COMPLETE,
    MSG_EVENT_RESEND_REJECT,
    MSG_EXECUTION_REPORT,
    MSG_MARKET_SETTLEMENT_REPORT,
    MSG_NEW_ORDER_SINGLE,
    MSG_ORDER_CANCEL_REJECT,
    MSG_ORDER_CANCEL_REPLACE_REQUEST,
    MSG_ORDER_CANCEL_REQUEST,
    MSG_ORDER_GROUP_REQUEST,
    MSG_ORDER_GROUP_RESPONSE,
    MSG_ORDER_MASS_CANCEL_REPORT,
    MSG_ORDER_MASS_CANCEL_REQUEST,
    REF_MSG_TYPE,
    REF_SEQ_NUM,
)
from fixengine.kalshi.facts import ORDER_ENTRY, SessionType
from fixengine.logs import correlate
from fixengine.orders.book import BookError, Order, OrderBook, OrderCanceled, Status
from fixengine.orders.drop_copy import DropCopyRefused, DropCopyReplayed, read_refused, read_replayed
from fixengine.orders.journal import DuplicateClOrdIDError, Journal, Marked, rebuild_book
from fixengine.orders.reports import BusinessReject, CancelReject, ExecutionReport, Reason, RejectCode
from fixengine.orders.requests import CancelOrder, InvalidOrderError, NewOrder, ReplaceOrder, new_cl_ord_id
from fixengine.orders.settlement import SettlementReport, parse_settlement_report
from fixengine.orders.groups import (
    OrderGroupConfirmed,
    OrderGroupEvent,
    OrderGroupRequest,
    PendingGroupRequests,
    StoppedGroups,
    group_cancels,
    order_group_fields,
    parse_order_group_response,
)
from fixengine.orders.wire import (
    Fields,
    OrderRef,
    ReportError,
    cancel_fields,
    first_values,
    mass_cancel_fields,
    new_order_fields,
    parse_cancel_reject,
    parse_execution_report,
    read_reason,
    replace_fields,
)
from fixengine.kalshi.prices import PriceError

log = logging.getLogger("fixengine.orders")

MASS_CANCEL_MIN_INTERVAL_S = 1.0  # Kalshi: at most one mass cancel per second (spec §8, §10.6)
NEVER_SENT = "never sent: the engine stopped before sending it"
PRUNE_SENT_AT = 10_000  # send times kept for reconciliation: pruned to the unanswered past this many
# The requests that carry a ClOrdID of an order: new order, cancel, replace.
ORDER_REQUESTS = (MSG_NEW_ORDER_SINGLE, MSG_ORDER_CANCEL_REQUEST, MSG_ORDER_CANCEL_REPLACE_REQUEST)
CANCEL_OR_REPLACE = (MSG_ORDER_CANCEL_REQUEST, MSG_ORDER_CANCEL_REPLACE_REQUEST)

Send = Callable[[SessionConfig, str, Fields], int | None]  # the MsgSeqNum it went out with; None: not sent


# Order entry's own events know their session (first field); ``at`` is when they are made.


@dataclass(frozen=True, slots=True)
class BookHeld(_StampedNow):
    """The session logged on with a sequence reset while its account had live orders: reports sent
    while it was away are lost (no retransmission), so its orders are unconfirmed and new orders
    are held until reconciliation (or ``Engine.confirm_book``) says the book is right."""

    reason: str
    orders: int  # live orders marked unconfirmed (or outcome-unknown)

    def describe(self) -> str:
        return f"book unconfirmed, new orders held: {self.reason}"


@dataclass(frozen=True, slots=True)
class BookReleased(_StampedNow):
    """The session's book was confirmed: new orders are accepted again."""

    def describe(self) -> str:
        return "book confirmed, new orders accepted"


@dataclass(frozen=True, slots=True)
class BusinessRejected(_StampedNow):
    """BusinessMessageReject (35=j): refused before the exchange saw it (rate limit, listener ...)."""

    ref_msg_type: str | None
    ref_id: str | None  # BusinessRejectRefID (379), e.g. the ClOrdID
    reason: Reason
    ref_seq_num: int | None = None  # RefSeqNum (45): the MsgSeqNum of the message refused

    def describe(self) -> str:
        what = f"MsgType {self.ref_msg_type}" if self.ref_msg_type else "a message"
        ref = f" ({self.ref_id})" if self.ref_id else ""
        return f"business reject of {what}{ref}: {self.reason.text or self.reason.code.value}"


@dataclass(frozen=True, slots=True)
class MassCancelDone(_StampedNow):
    """OrderMassCancelReport (35=r): 531=6 means every order of the session was cancelled."""

    cl_ord_id: str
    accepted: bool
    reason: Reason | None

    def describe(self) -> str:
        if self.accepted:
            return f"mass cancel {self.cl_ord_id}: every order of the session cancelled"
        why = (self.reason.text or self.reason.code.value) if self.reason is not None else "no reason given"
        return f"mass cancel {self.cl_ord_id} refused: {why}"


@dataclass(frozen=True, slots=True)
class SendFailed(_StampedNow):
    """A journaled request QuickFIX would not send (its session went away in between). A new
    order is marked outcome-unknown: reconcile it, or retry it with the same ClOrdID."""

    msg_type: str
    cl_ord_id: str
    reason: str

    def describe(self) -> str:
        return f"MsgType {self.msg_type} {self.cl_ord_id} not sent: {self.reason}"


@dataclass(frozen=True, slots=True)
class OrderEntryHalted(_StampedNow):
    """The journal could not be written: nothing more is sent on any session, and the engine
    stops. Requests not yet journaled were refused (never sent); see ``JournalWriteError``."""

    reason: str

    def describe(self) -> str:
        return f"order entry halted: {self.reason}"


@dataclass(frozen=True, slots=True)
class ReportUnreadable(_StampedNow):
    """A report we could not read: kept in the message log, shown here, never silently dropped."""

    raw: str
    error: str

    def describe(self) -> str:
        return f"unreadable report, kept in the message log: {self.error}"


Report = ExecutionReport | CancelReject | BusinessReject | SettlementReport
OrderEntryEvent = (BusinessRejected | MassCancelDone | ReportUnreadable | SendFailed | BookHeld | BookReleased
                   | OrderEntryHalted | DropCopyReplayed | DropCopyRefused | OrderGroupEvent)


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class OrderEntry:
    def __init__(
        self,
        journal: Journal,
        sessions: dict[str, SessionConfig],
        send: Send,
        publish: Callable[[object], None],
        is_logged_on: Callable[[str], bool],
        soon: Callable[[Callable[[], None]], object],
        *,
        reconciled: bool = False,
        paused: Callable[[str], None] = lambda session_name: None,
    ):
        self.journal = journal
        self._paused = paused  # raises MaintenanceError while Kalshi's maintenance refuses new orders and amends
        # With reconciliation an unknown outcome is settled over REST, never by a retry: Kalshi
        # refuses a duplicate ClOrdID only while the first order is open, so a retry of one that
        # had already ended would put a second order on the exchange.
        self._retries = not reconciled
        self.book: OrderBook = rebuild_book(journal)
        self._sessions = sessions
        self._send = send
        self.stopped_groups = StoppedGroups()  # order groups Kalshi would refuse orders to (triggered)

        def publish_and_learn(event: object) -> None:
            self.stopped_groups.learn(event)
            publish(event)

        self._publish = publish_and_learn
        self._is_logged_on = is_logged_on
        self._soon = soon
        self._outbox: list[tuple[SessionConfig, str, Fields]] = []
        self.halted: str | None = None  # why order entry stopped for good (``halt``)
        self.on_halt: Callable[[str], None] | None = None
        self._held: dict[str, str] = {}  # session -> why its book is unconfirmed
        self._last_report: dict[str, datetime] = {}  # account -> when its latest report was applied
        self._requests_sent: dict[str, datetime] = {}  # ClOrdID of a request -> when it went out
        # (session, MsgSeqNum) -> (MsgType, ClOrdID) of an order request: a session Reject (35=3)
        # names the request it refuses only by its RefSeqNum (45)
        self._request_seqs: dict[tuple[str, int], tuple[str, str]] = {}
        self._last_mass_cancel: dict[str, float] = {}
        self.groups = PendingGroupRequests()  # order-group requests (35=UOG) until answered

    # --- requests -----------------------------------------------------------------------------

    def _session(self, name: str, *, allowed: frozenset[SessionType] = ORDER_ENTRY) -> SessionConfig:
        if self.halted is not None:
            raise JournalWriteError(f"order entry is halted: {self.halted}")
        s = self._sessions.get(name)
        if s is None:
            raise FixEngineError(f"no session named {name!r}; configured: {', '.join(self._sessions)}")
        if s.session_type not in allowed:
            kinds = ", ".join(sorted(t.value for t in allowed))
            raise InvalidOrderError([f"session: {name} is {s.session_type.value}; this needs {kinds}"])
        if s.logon.listener:
            raise InvalidOrderError([f"session: {name} is a listener (read-only) session"])
        if not self._is_logged_on(name):
            raise SessionUnavailableError(f"session {name} is not logged on")
        return s

    def _check_not_held(self, name: str) -> None:
        held = self._held.get(name)
        if held is not None:
            raise BookUnconfirmedError(
                f"session {name}: new orders are held until its book is confirmed ({held}); "
                "cancels are still accepted"
            )

    # --- the book-unconfirmed hold ------------------------------------------------------------

    def on_logged_on(self, session_name: str, sequence_reset: bool, reconciling: bool = False) -> None:
        """Hold new orders if this logon may have lost reports for live orders (see ``BookHeld``):
        it reset the sequence, so nothing missed before it will be resent. With ``reconciling``
        (REST configured) every logon holds them until reconciliation has run."""
        if sequence_reset:
            # Numbers start again: a RefSeqNum from now on names a request of this connection.
            self._request_seqs = {k: v for k, v in self._request_seqs.items() if k[0] != session_name}
            self.journal.record_received(session_name, 1)  # the counterparty's Logon was number 1
            self.hold(session_name, "logged on with a sequence reset", until_reconciled=reconciling)
        elif reconciling:
            self.hold(session_name, "logged on", mark_stale=False, until_reconciled=True)

    def is_order_entry(self, session_name: str) -> bool:
        s = self._sessions[session_name]
        return s.session_type in ORDER_ENTRY and not s.logon.listener

    def hold(self, session_name: str, why: str, *, mark_stale: bool = True, until_reconciled: bool = False) -> None:
        """Reports for the session's live orders may have been lost (``why``): mark them (with
        ``mark_stale``), and hold new orders until the book is confirmed. Nothing to do without live
        orders, unless ``until_reconciled`` (reconciliation will release the hold)."""
        if not self.is_order_entry(session_name):
            return
        s = self._sessions[session_name]
        marked = self.journal.mark(self.book, Marked("stale", s.account_id)) if mark_stale else []
        if marked:
            reason = f"{why}; reports for {len(marked)} live orders may have been missed"
        elif until_reconciled:
            reason = f"{why}; waiting for reconciliation"
        else:
            return
        self._held[session_name] = reason
        log.warning("%s: book unconfirmed, new orders held: %s", session_name, reason, extra=correlate(session=session_name))
        self._publish(BookHeld(session_name, reason, len(marked)))

    def request_sent_at(self, cl_ord_id: str) -> datetime | None:
        """When a new order, cancel or replace went out (None: not sent by this process)."""
        return self._requests_sent.get(cl_ord_id)

    def forget_requests(self) -> None:
        """Drop the send times of requests answered since (their orders acknowledged, their
        cancels/replaces settled): only unanswered ones matter to reconciliation."""
        unanswered = {cl for o in self.book.orders.values() for cl in o.unanswered}
        self._requests_sent = {cl: t for cl, t in self._requests_sent.items() if cl in unanswered}
        self._request_seqs = {k: v for k, v in self._request_seqs.items() if v[1] in unanswered}

    def _forget_if_answered(self, report: ExecutionReport | CancelReject) -> None:
        """Drop a request's send time once its answer is in the book (on the report's path, so the
        times kept are those in flight, without a walk over the book)."""
        key = self.book.key_for(report)
        order = self.book.orders.get(key) if key is not None else None
        if order is None or report.cl_ord_id not in order.unanswered:
            del self._requests_sent[report.cl_ord_id]

    def last_report_at(self, account: str) -> datetime | None:
        """When the latest report for ``account`` was applied (what REST must have caught up with)."""
        return self._last_report.get(account)

    def is_held(self, session_name: str) -> bool:
        return session_name in self._held

    def confirm_book(self, session_name: str) -> None:
        """The session's book is right again (reconciled): release the hold."""
        if self._held.pop(session_name, None) is None:
            return
        self.journal.mark(self.book, Marked("confirmed", self._sessions[session_name].account_id))
        log.info("%s: book confirmed, new orders accepted", session_name, extra=correlate(session=session_name))
        self._publish(BookReleased(session_name))

    def _queue(self, session: SessionConfig, msg_type: str, fields: Fields) -> None:
        """Send after this turn's journal commit (see ``flush``)."""
        if not self._outbox:
            self._soon(self.flush)
        self._outbox.append((session, msg_type, fields))

    def _commit(self) -> bool:
        """Commit the journal; False (and order entry halted) if it cannot be written."""
        if self.halted is not None:
            return False
        try:
            self.journal.commit()
        except OSError as exc:
            self.halt(f"the journal {self.journal.path} cannot be written: {exc.strerror or exc}")
            return False
        return True

    def halt(self, reason: str) -> None:
        """Stop taking and sending requests, for good: the journal cannot be written, so nothing
        more can be sent safely. What was queued and not sent is refused in the book (never sent),
        each session is told (``OrderEntryHalted``), and ``on_halt`` (the engine's stop) is called."""
        if self.halted is not None:
            return
        self.halted = reason
        log.critical("ORDER ENTRY HALTED: %s. Nothing more is sent; the engine stops. Restart it once the journal "
                     "can be written: it replays what was committed, and reconciliation finds what happened since",
                     reason)
        outbox, self._outbox = self._outbox, []
        never_sent = Reason(RejectCode.OTHER, None, f"never sent: {reason}")
        now = _utcnow()
        for session, msg_type, fields in outbox:
            cl_ord_id = next((v for t, v in fields if t == CL_ORD_ID), "")
            if msg_type == MSG_ORDER_GROUP_REQUEST:
                refused = self.groups.transmitted(session.name, None)
                if refused is not None:
                    self._publish(refused)
            elif msg_type in ORDER_REQUESTS and cl_ord_id:  # not journaled: the book alone is told
                for event in self.book.apply(BusinessReject(msg_type, cl_ord_id, never_sent)):
                    self._publish(stamped(event, session.name, now))
            else:
                self._publish(SendFailed(session.name, msg_type, cl_ord_id, never_sent.text or reason))
        for name in self._sessions:
            self._publish(OrderEntryHalted(name, reason))
        if self.on_halt is not None:
            self.on_halt(reason)

    def flush(self) -> None:
        """Commit the journal, then send what was requested since the last flush, in order. If
        the commit fails, nothing is sent: order entry halts (``halt``)."""
        if not self._commit():
            return
        outbox, self._outbox = self._outbox, []
        for session, msg_type, fields in outbox:
            self._transmit(session, msg_type, fields)

    def _transmit(self, session: SessionConfig, msg_type: str, fields: Fields) -> None:
        sent = self._send(session, msg_type, fields)  # the MsgSeqNum it went out with, or falsy
        if msg_type == MSG_ORDER_GROUP_REQUEST:  # its rejects name that MsgSeqNum
            refused = self.groups.transmitted(session.name, int(sent) if sent else None)
            if refused is not None:
                self._publish(refused)
        if sent:
            if msg_type in ORDER_REQUESTS:  # for reconciliation: is an unanswered one still in flight?
                cl_ord_id = next(v for t, v in fields if t == CL_ORD_ID)
                self._requests_sent[cl_ord_id] = _utcnow()
                self._request_seqs[(session.name, int(sent))] = (msg_type, cl_ord_id)
                if len(self._request_seqs) > PRUNE_SENT_AT:  # their MsgSeqNums: kept while the request is
                    self._request_seqs = {k: v for k, v in self._request_seqs.items() if v[1] in self._requests_sent}
                if len(self._requests_sent) > PRUNE_SENT_AT:  # many in flight, or answers the book never had
                    self.forget_requests()
            return
        cl_ord_id = next((v for t, v in fields if t == CL_ORD_ID), "")
        reason = f"session {session.name} could not send: not logged on"
        log.error("%s: %s %s not sent: %s", session.name, msg_type, cl_ord_id, reason,
                  extra=correlate(session=session.name, kalshi_cl_ord_id=cl_ord_id or None))
        self._publish(SendFailed(session.name, msg_type, cl_ord_id, reason))
        if msg_type == MSG_NEW_ORDER_SINGLE:
            self.journal.mark(self.book, Marked("unknown", keys=(cl_ord_id,)))
            self._commit()
        elif msg_type in CANCEL_OR_REPLACE:
            # Never sent, so never processed: the order is as it was and may be cancelled again.
            # Journaled like the exchange's refusal, so that a restart agrees.
            refusal = BusinessReject(msg_type, cl_ord_id, Reason(RejectCode.OTHER, None, reason))
            self.journal.record_report(refusal)
            if not self._commit():
                return
            now = _utcnow()
            for event in self.book.apply(refusal):
                self._publish(stamped(event, session.name, now))

    def settle_unsent(self, session_name: str, sent: set[str]) -> int:
        """At a start: requests of the session's account that are unanswered, journaled but not
        among the ClOrdIDs QuickFIX ``sent`` (its store keeps every message before it goes on the
        wire, on sessions that retransmit), never reached the exchange: a new order is rejected,
        a cancel or replace refused (the order as it was). Journaled as refusals; their count."""
        account = self._sessions[session_name].account_id
        refusals = []
        never_sent = Reason(RejectCode.OTHER, None, NEVER_SENT)
        for order in self.book.orders.values():
            if order.account != account or order.status.terminal:
                continue
            if order.order_id is None and Status.PENDING_NEW in (order.status, order.resting_status) and order.key not in sent:
                refusals.append(BusinessReject(MSG_NEW_ORDER_SINGLE, order.key, never_sent))
            elif order.pending is not None and order.pending not in sent:
                cancel = order.status is Status.PENDING_CANCEL
                msg_type = MSG_ORDER_CANCEL_REQUEST if cancel else MSG_ORDER_CANCEL_REPLACE_REQUEST
                refusals.append(BusinessReject(msg_type, order.pending, never_sent))
        for refusal in refusals:
            self.journal.record_report(refusal)
        self.journal.commit()
        for refusal in refusals:
            self.book.apply(refusal)
        if refusals:
            log.warning("%s: %d requests journaled before the last stop were never sent; settled as refused",
                        session_name, len(refusals), extra=correlate(session=session_name))
        return len(refusals)

    def submit(self, session_name: str, order: NewOrder) -> Order:
        self._paused(session_name)  # first: in the maintenance window its session may well be down
        s = self._session(session_name)
        if order.expires_in_past():
            raise InvalidOrderError(["expire_time: is in the past"])
        if (stopped := self.stopped_groups.refusal(order.order_group_id)) is not None:
            raise InvalidOrderError([stopped])
        try:
            fields = new_order_fields(order, use_dollars=s.logon.use_dollars, now=_utcnow())
        except PriceError as exc:
            raise InvalidOrderError([f"price: {exc}"]) from None
        retry = order.client_order_id in self.book.orders and self.book.order(order.client_order_id).retryable
        if retry and not self._retries:
            raise InvalidOrderError([
                f"client_order_id: {order.client_order_id} has an unknown outcome, which reconciliation settles "
                "(await engine.reconcile(session)); a retry could put a second order on the exchange"
            ])
        if not retry:
            self._check_not_held(session_name)
            try:
                self.journal.record_new(order, s.account_id)  # written before it is sent
            except DuplicateClOrdIDError as exc:
                raise InvalidOrderError([f"client_order_id: {exc}"]) from None
        placed = self.book.submit(order, s.account_id)
        self._queue(s, MSG_NEW_ORDER_SINGLE, fields)
        return placed

    def _ref(self, order: Order) -> OrderRef:
        return OrderRef(order.cl_ord_id, order.order_id, order.ticker, order.side, order.quantity, order.yes_price)

    def cancel(self, session_name: str, request: CancelOrder) -> Order:
        s = self._session(session_name)
        try:
            order = self.book.order(request.order)
            ref = self._ref(order)
            self.book.cancel(order.key, request.client_order_id)  # checks the order can be cancelled
        except BookError as exc:
            raise InvalidOrderError([f"order: {exc}"]) from None
        self.journal.record_cancel(order.key, request.client_order_id)
        self._queue(s, MSG_ORDER_CANCEL_REQUEST, cancel_fields(ref, request.client_order_id, now=_utcnow()))
        return self.book.order(order.key)

    def replace(self, session_name: str, request: ReplaceOrder) -> Order:
        self._paused(session_name)
        s = self._session(session_name)
        self._check_not_held(session_name)
        try:
            order = self.book.order(request.order)
            yes_price = None if request.price is None else self.book.yes_price_for(order.key, request.price)
            fields = replace_fields(
                self._ref(order),
                request.client_order_id,
                quantity=request.quantity,
                yes_price=yes_price,
                time_in_force=request.time_in_force,
                expire_time=request.expire_time,
                use_dollars=s.logon.use_dollars,
                now=_utcnow(),
            )
            self.book.replace(order.key, request.client_order_id, request.quantity)
        except BookError as exc:
            raise InvalidOrderError([f"order: {exc}"]) from None
        except PriceError as exc:
            raise InvalidOrderError([f"price: {exc}"]) from None
        self.journal.record_replace(order.key, request.client_order_id, request.quantity)
        self._queue(s, MSG_ORDER_CANCEL_REPLACE_REQUEST, fields)
        return self.book.order(order.key)

    # --- order groups (fixengine.orders.groups) -----------------------------------------------

    def order_group(self, session_name: str, request: OrderGroupRequest) -> None:
        """Queue an OrderGroupRequest (35=UOG) behind the orders of this turn (not journaled: a
        group is the exchange's state). Its answer is published: ``OrderGroupConfirmed`` or
        ``OrderGroupRefused`` with its ``request_id``."""
        s = self._session(session_name)  # order-entry sessions only: refused here, before anything is sent
        self.groups.queued(session_name, request)
        self._queue(s, MSG_ORDER_GROUP_REQUEST, order_group_fields(request))

    def on_session_reject(self, session_name: str, ref_seq_num: int | None, ref_msg_type: str | None,
                          ref_tag: int | None, reason_code: int | None, text: str) -> None:
        """A session Reject (35=3) of one of our messages: an order request it names (RefSeqNum) is
        refused (journaled as such, never sent again); one of an order-group request is its answer."""
        request = self._request_seqs.pop((session_name, ref_seq_num), None) if ref_seq_num is not None else None
        if request is not None and ref_msg_type in (None, request[0]):
            refusal = BusinessReject(request[0], request[1], Reason.of(text or "session reject", reason_code))
            self.journal.record_report(refusal)
            if self._commit():
                now = _utcnow()
                for event in self.book.apply(refusal):
                    self._publish(stamped(event, session_name, now))
            return
        if ref_msg_type != MSG_ORDER_GROUP_REQUEST:
            return
        refused = self.groups.rejected(session_name, ref_seq_num, Reason.of(text, reason_code), session_reject=True,
                                       ref_tag=ref_tag)
        if refused is not None:
            self._publish(refused)

    def on_logged_out(self, session_name: str) -> None:
        """Order-group requests still unanswered will not be answered on that connection."""
        for refused in self.groups.logged_out(session_name):
            self._publish(refused)

    def _group_response(self, session_name: str, fields: list[tuple[int, str]]) -> OrderGroupConfirmed | None:
        confirmed = self.groups.answered(session_name, parse_order_group_response(first_values(fields)))
        if confirmed is None:
            log.warning("%s: OrderGroupResponse for no request of ours: %s", session_name, fields,
                        extra=correlate(session=session_name))
        return confirmed

    def mass_cancel(self, session_name: str) -> str:
        s = self._session(session_name, allowed=frozenset({SessionType.NR}))
        now = time.monotonic()
        last = self._last_mass_cancel.get(session_name)
        if last is not None and now - last < MASS_CANCEL_MIN_INTERVAL_S:
            raise ThrottledError(
                f"mass cancel on {session_name}: Kalshi allows one per second; "
                f"the last was {now - last:.2f}s ago"
            )
        cl_ord_id = new_cl_ord_id()
        self._queue(s, MSG_ORDER_MASS_CANCEL_REQUEST, mass_cancel_fields(cl_ord_id, now=_utcnow()))
        self._last_mass_cancel[session_name] = now
        return cl_ord_id

    # --- reports ------------------------------------------------------------------------------

    def on_messages(self, messages: list[tuple[str, str, str]]) -> None:
        """Application messages received, as ``(session, MsgType, raw FIX)``, in order. All the
        reports among them are journaled in one transaction before any of them changes the book."""
        read: list[tuple[str, Report | OrderEntryEvent | None]] = []  # (the session it came on, what it said)
        for session_name, msg_type, raw in messages:
            item = self._read(session_name, msg_type, raw)
            read.append((session_name, item))
            if isinstance(item, BusinessRejected) and item.ref_msg_type in ORDER_REQUESTS and item.ref_id:
                read.append((session_name, BusinessReject(item.ref_msg_type, item.ref_id, item.reason)))  # for the book
            if isinstance(item, BusinessRejected) and item.ref_msg_type == MSG_ORDER_GROUP_REQUEST:
                read.append((session_name, self.groups.rejected(session_name, item.ref_seq_num, item.reason, session_reject=False)))
        fresh = [self.journal.record_report(item) if isinstance(item, Report) else False for _, item in read]
        last_seq: dict[str, int] = {}
        for session_name, _, raw in messages:
            seq = seq_num_of(raw)
            if seq > last_seq.get(session_name, 0):
                last_seq[session_name] = seq
        for session_name, seq in last_seq.items():
            self.journal.record_received(session_name, seq)
        if not self._commit():
            return  # not journaled, so they change nothing: a restart learns them by reconciliation
        now = _utcnow()
        for session_name in {name for name, _, _ in messages}:
            self._last_report[self._sessions[session_name].account_id] = now
        canceled: list[tuple[str, str | None, Reason | None, str]] = []  # for OrderGroupTriggered
        for (session_name, item), is_fresh in zip(read, fresh):
            if isinstance(item, Report):
                if is_fresh:  # a report already journaled (same ExecID) changes nothing
                    for event in self.book.apply(item):
                        self._publish(stamped(event, session_name, now))
                        if isinstance(event, OrderCanceled):
                            canceled.append((session_name, event.order.order_group_id, event.order.reason, event.order.key))
                    if not isinstance(item, (BusinessReject, SettlementReport)) and item.cl_ord_id in self._requests_sent:
                        self._forget_if_answered(item)
            elif item is not None:
                self._publish(item)
        for triggered in group_cancels(canceled):
            self._publish(triggered)

    def _read(self, session_name: str, msg_type: str, raw: str) -> "Report | OrderEntryEvent | None":
        s = self._sessions[session_name]
        try:
            fields = parse(raw.encode("latin-1"))
            if msg_type == MSG_EXECUTION_REPORT:
                return parse_execution_report(fields, use_dollars=s.logon.use_dollars, account=s.account_id)
            if msg_type == MSG_ORDER_CANCEL_REJECT:
                return parse_cancel_reject(fields)
            if msg_type == MSG_BUSINESS_MESSAGE_REJECT:
                return self._business_reject(session_name, fields)
            if msg_type == MSG_ORDER_MASS_CANCEL_REPORT:
                return self._mass_cancel_report(session_name, fields)
            if msg_type == MSG_EVENT_RESEND_COMPLETE:  # drop copy: after the reports it replayed
                return read_replayed(session_name, first_values(fields))
            if msg_type == MSG_EVENT_RESEND_REJECT:
                return read_refused(session_name, first_values(fields))
            if msg_type == MSG_ORDER_GROUP_RESPONSE:
                return self._group_response(session_name, fields)
            if msg_type == MSG_MARKET_SETTLEMENT_REPORT:  # it settles the account of the session it came on
                return parse_settlement_report(fields, account=s.account_id)
        except (ReportError, FramingError) as exc:
            log.error("%s: unreadable report (%s): %s", session_name, exc, redact(raw), extra=correlate(session=session_name))
            return ReportUnreadable(session_name, raw, str(exc))
        log.info("%s: application message %s not handled", session_name, msg_type, extra=correlate(session=session_name))
        return None

    @staticmethod
    def _business_reject(session: str, fields: list[tuple[int, str]]) -> BusinessRejected:
        f = first_values(fields)
        ref_seq = f.get(REF_SEQ_NUM, "")
        return BusinessRejected(
            session, f.get(REF_MSG_TYPE), f.get(BUSINESS_REJECT_REF_ID), read_reason(f, BUSINESS_REJECT_REASON),
            int(ref_seq) if ref_seq.isdigit() else None,
        )

    @staticmethod
    def _mass_cancel_report(session: str, fields: list[tuple[int, str]]) -> MassCancelDone:
        f = first_values(fields)
        accepted = f.get(MASS_CANCEL_RESPONSE) == "6"  # cancel orders for the session: all cancelled
        reason = None if accepted else read_reason(f, MASS_CANCEL_REJECT_REASON)
        return MassCancelDone(session, f.get(CL_ORD_ID, ""), accepted, reason)
