"""A small FIX 4.4 order management system (OMS) client: a plain QuickFIX initiator that places,
amends, cancels and asks about orders, and keeps its own view of them from the reports it gets.

It is the OMS on the other side of the gateway (``fixengine serve``) for ``make run``'s demo, the
gateway's integration and kill tests and the benchmark. It knows FIX 4.4 and the gateway's
conventions, nothing of Kalshi: Symbol (55) is a market ticker, Side (54) 1 buys YES and 2 sells
YES, Price (44) is dollars (``0.45``), OrderQty (38) contracts in 0.01 steps, limit orders (40=2)
only. Numbers are ``Decimal``, never float.

Threads: QuickFIX's thread only queues the raw text its callbacks saw and wakes the asyncio loop
once per batch (as ``fixengine.session.runtime`` does); parsing, the book and every wait happen in
the loop, so none of them needs a lock.

Restarts: the FileStore in ``store_dir`` keeps both sequence numbers and every message sent. A
client started again on the same store continues the session: it asks for what the gateway sent
while it was away (delivered with PossDupFlag 43=Y) and resends its own messages when asked.
ClOrdIDs begin with the time the client was made, so they never repeat across restarts. The book
and the ExecIDs seen live in memory only: after a restart, a report of an earlier order adopts that
order into the book.

``run_demo`` is ``fixengine oms-client``: a short scripted session against the gateway.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import ClassVar, Final

import click
import quickfix as fix

from fixengine.fix.dictionary import fix44_as_the_gateway_speaks
from fixengine.fix.framing import plain, quickfix_text
from fixengine.fix.quickfix import GuardedApplication, LoopInbox, Runner, common_defaults, create, out_of_sequence_logout
from fixengine.fix.tags import (
    AVG_PX,
    BUSINESS_REJECT_REF_ID,
    CL_ORD_ID,
    COMMISSION,
    CUM_QTY,
    EXEC_ID,
    EXEC_TYPE,
    LAST_PX,
    LAST_QTY,
    LEAVES_QTY,
    MASS_CANCEL_REQUEST_TYPE,
    MASS_STATUS_REQ_ID,
    MASS_STATUS_REQ_TYPE,
    MSG_BUSINESS_MESSAGE_REJECT,
    MSG_EXECUTION_REPORT,
    MSG_LOGON,
    MSG_LOGOUT,
    MSG_NEW_ORDER_SINGLE,
    MSG_ORDER_CANCEL_REJECT,
    MSG_ORDER_CANCEL_REPLACE_REQUEST,
    MSG_ORDER_CANCEL_REQUEST,
    MSG_ORDER_MASS_CANCEL_REQUEST,
    MSG_ORDER_MASS_STATUS_REQUEST,
    MSG_ORDER_STATUS_REQUEST,
    MSG_REJECT,
    MSG_SEQ_NUM,
    MSG_TEST_REQUEST,
    MSG_TYPE,
    ORD_REJ_REASON,
    ORD_STATUS,
    ORD_STATUS_REQ_ID,
    ORD_TYPE,
    ORDER_ID,
    ORDER_QTY,
    ORIG_CL_ORD_ID,
    POSS_DUP_FLAG,
    POSS_RESEND,
    PRICE,
    SIDE,
    SYMBOL,
    TEST_REQ_ID,
    TEXT,
    TIME_IN_FORCE,
    TRANSACT_TIME,
)
from fixengine.fix.timestamps import utc_timestamp

log = logging.getLogger("fixengine.oms_client")

BEGIN_STRING: Final = "FIX.4.4"
SIDE_BUY: Final = "1"  # buys YES
SIDE_SELL: Final = "2"  # sells YES (which buys NO)
ORD_TYPE_LIMIT: Final = "2"
TIF_DAY: Final = "0"
TIF_GTC: Final = "1"
TIF_IOC: Final = "3"
TIF_FOK: Final = "4"
MASS_BY_SYMBOL: Final = "1"  # MassStatusReqType (585) / MassCancelRequestType (530)
MASS_ALL: Final = "7"
UNKNOWN_ORDER: Final = "5"  # OrdRejReason (103) of a status answer about an order the gateway lacks

ORD_STATUS_NAMES: Final = {
    "0": "New", "1": "PartiallyFilled", "2": "Filled", "3": "DoneForDay", "4": "Canceled", "5": "Replaced",
    "6": "PendingCancel", "7": "Stopped", "8": "Rejected", "9": "Suspended", "A": "PendingNew",
    "B": "Calculated", "C": "Expired", "D": "AcceptedForBidding", "E": "PendingReplace",
}
# ExecType (150) shares OrdStatus's codes in FIX 4.4, plus these.
EXEC_TYPE_NAMES: Final = ORD_STATUS_NAMES | {"F": "Trade", "G": "TradeCorrect", "H": "TradeCancel", "I": "OrderStatus"}
TERMINAL: Final = frozenset({"2", "3", "4", "8", "C"})  # OrdStatus (39) after which nothing changes


def _now() -> str:
    return utc_timestamp(datetime.now(timezone.utc))



def _decimal(value: Decimal | int | str, what: str) -> Decimal:
    """A quantity or price: Decimal, int or text; a float is refused (0.45 is not 0.45 in binary)."""
    if isinstance(value, float):
        raise TypeError(f"{what} {value!r} is a float: pass a Decimal or a str")
    try:
        number = Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        raise ValueError(f"{what} {value!r} is not a number") from None
    if not number.is_finite():
        raise ValueError(f"{what} {value!r} is not a finite number")
    return number


def _maybe_decimal(text: str | None) -> Decimal | None:
    try:
        return Decimal(text) if text else None
    except InvalidOperation:
        return None


def _fields(raw: str) -> list[tuple[int, str]]:
    """Every field of a framed message, in wire order. Text, not bytes: QuickFIX hands us text, and
    a Text (58) may hold any character."""
    out = []
    for part in raw.split("\x01"):
        tag, sep, value = part.partition("=")
        if sep and tag.isdigit():
            out.append((int(tag), value))
    return out


# --- what the OMS sees and keeps ------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    """One message from the gateway, as QuickFIX delivered it (valid FIX 4.4, in sequence)."""

    seq: int  # MsgSeqNum (34)
    msg_type: str
    fields: list[tuple[int, str]]  # header, body and trailer, in wire order
    raw: str
    poss_dup: bool  # PossDupFlag (43) Y: a resend of a message sent before (QuickFIX's resend)
    poss_resend: bool  # PossResend (97) Y: the same news again, under a new MsgSeqNum
    _first: dict[int, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        first: dict[int, str] = {}
        for tag, value in self.fields:
            first.setdefault(tag, value)
        object.__setattr__(self, "_first", first)

    @classmethod
    def parse(cls, raw: str) -> Received:
        fields = _fields(raw)
        first = dict(reversed(fields))
        seq = first.get(MSG_SEQ_NUM, "0")
        return cls(int(seq) if seq.isdigit() else 0, first.get(MSG_TYPE, ""), fields, raw,
                   first.get(POSS_DUP_FLAG) == "Y", first.get(POSS_RESEND) == "Y")

    def get(self, tag: int, default: str | None = None) -> str | None:
        """The first value of ``tag``, or ``default``."""
        return self._first.get(tag, default)

    def describe(self) -> str:
        """One short line: MsgType, the order it is about and what it says."""
        parts = [f"35={self.msg_type}"]
        for tag in (CL_ORD_ID, ORIG_CL_ORD_ID, EXEC_TYPE, ORD_STATUS, CUM_QTY, LEAVES_QTY, TEXT):
            value = self.get(tag)
            if value is not None:
                parts.append(f"{tag}={value}")
        return " ".join(parts) + (" (PossDup)" if self.poss_dup else "") + (" (PossResend)" if self.poss_resend else "")


@dataclass
class OmsOrder:
    """The OMS's own view of one order, from its ExecutionReports (35=8) and OrderCancelRejects (35=9)."""

    cl_ord_id: str  # the current ClOrdID: the last one a replace or cancel was accepted under
    symbol: str
    side: str
    quantity: Decimal
    price: Decimal
    time_in_force: str | None = None
    orig_cl_ord_ids: list[str] = field(default_factory=list)  # earlier ClOrdIDs of the chain, oldest first
    pending: str | None = None  # ClOrdID of a cancel or replace sent and not answered yet
    order_id: str | None = None  # OrderID (37) as last reported
    ord_status: str | None = None  # OrdStatus (39) as last reported; None: no report yet
    cum_qty: Decimal = Decimal(0)
    leaves_qty: Decimal = Decimal(0)
    avg_px: Decimal = Decimal(0)
    exec_ids: list[str] = field(default_factory=list)  # ExecIDs applied, in order
    text: str | None = None  # the last Text (58) reported

    @property
    def first_cl_ord_id(self) -> str:
        return self.orig_cl_ord_ids[0] if self.orig_cl_ord_ids else self.cl_ord_id

    @property
    def status_name(self) -> str:
        return ORD_STATUS_NAMES.get(self.ord_status or "", "unacknowledged" if self.ord_status is None else self.ord_status)

    @property
    def done(self) -> bool:
        return self.ord_status in TERMINAL


# --- QuickFIX's side --------------------------------------------------------------------------------

# What the callbacks hand over: (kind, text).
_APP, _LOGON, _LOGOUT, _LOGOUT_TEXT, _REJECT_SENT = "app", "logon", "logout", "logout-text", "reject-sent"
PASSWORD: Final = 554  # Password, on the Logon


class _Callbacks(GuardedApplication):
    """QuickFIX callbacks of the one session: queue raw text, nothing more (QuickFIX's thread)."""

    def __init__(self, emit: Callable[[tuple[str, str]], None], password: str | None = None):
        super().__init__(log)
        self._emit = emit
        self._password = password
        self._target_before_logout: int | None = None

    def onCreate(self, sessionID: fix.SessionID) -> None:
        pass

    def onLogon(self, sessionID: fix.SessionID) -> None:
        self.guard("onLogon", lambda: self._emit((_LOGON, "")))

    def onLogout(self, sessionID: fix.SessionID) -> None:
        session = fix.Session.lookupSession(sessionID)
        if session is not None and self._target_before_logout is not None:
            session.setNextTargetMsgSeqNum(self._target_before_logout)  # see out_of_sequence_logout
        self._target_before_logout = None
        self.guard("onLogout", lambda: self._emit((_LOGOUT, "")))

    def toAdmin(self, message: fix.Message, sessionID: fix.SessionID) -> None:
        msg_type = message.getHeader().getField(MSG_TYPE)
        if msg_type == MSG_LOGON and self._password is not None:
            message.setField(PASSWORD, self._password)  # 554: the gateway's check of who we are
        # A Reject we send: a gateway message failed FIX 4.4 validation and is never delivered.
        if msg_type == MSG_REJECT:
            self.guard("toAdmin(Reject)", lambda: self._emit((_REJECT_SENT, message.toString())))

    def fromAdmin(self, message: fix.Message, sessionID: fix.SessionID) -> None:
        msg_type = message.getHeader().getField(MSG_TYPE)
        if msg_type == MSG_REJECT:  # answers a message of ours, like an application reject
            self.guard("fromAdmin(Reject)", lambda: self._emit((_APP, message.toString())))
        elif msg_type == MSG_LOGOUT:
            def logout() -> None:
                self._target_before_logout = out_of_sequence_logout(message, sessionID)
                self._emit((_LOGOUT_TEXT, message.getField(TEXT) if message.isSetField(TEXT) else ""))
            self.guard("fromAdmin(Logout)", logout)

    def toApp(self, message: fix.Message, sessionID: fix.SessionID) -> None:
        pass

    def fromApp(self, message: fix.Message, sessionID: fix.SessionID) -> None:
        self.guard("fromApp", lambda: self._emit((_APP, message.toString())))


class _IdMaker:
    """``<base36 milliseconds>-<n>``: unique across restarts, and across clients made in one process
    within one millisecond (the prefix only ever grows)."""

    _last_ms: ClassVar[int] = 0

    def __init__(self) -> None:
        ms = max(int(time.time() * 1000), _IdMaker._last_ms + 1)
        _IdMaker._last_ms = ms
        self.prefix = _base36(ms)
        self._counter = itertools.count(1)

    def __call__(self) -> str:
        return f"{self.prefix}-{next(self._counter)}"


def _base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while n:
        n, r = divmod(n, 36)
        out = digits[r] + out
    return out or "0"


class OmsClient:
    """A FIX 4.4 OMS session to the gateway, in asyncio. See the module docstring.

    ``received`` holds every application message (and every session-level Reject 35=3, which
    answers a message of ours) in arrival order. ``next`` and ``wait_for`` consume them: each
    message is handed out once, and one skipped by ``wait_for`` stays for a later ``next`` or
    ``wait_for``, whenever it arrived."""

    def __init__(self, *, host: str, port: int, sender_comp_id: str, target_comp_id: str, store_dir: Path,
                 heartbeat_interval: int = 30, reset_on_logon: bool = False, password: str | None = None):
        self.host, self.port = host, port
        self._password = password  # sent as 554 on each Logon; never logged
        self.sender_comp_id, self.target_comp_id = sender_comp_id, target_comp_id
        self.store_dir = Path(store_dir)
        self.heartbeat_interval = heartbeat_interval
        self.reset_on_logon = reset_on_logon
        self.session_id = fix.SessionID(BEGIN_STRING, sender_comp_id, target_comp_id)
        self.received: list[Received] = []
        self.orders: dict[str, OmsOrder] = {}  # by the ClOrdID each was first placed under
        self.unflagged_duplicates: list[str] = []  # must stay empty against a correct gateway
        self.rejected: list[Received] = []  # Rejects (35=3) our QuickFIX sent: gateway messages not valid FIX 4.4
        self._by_cl_ord_id: dict[str, OmsOrder] = {}  # every ClOrdID of every chain
        self._exec_ids: set[str] = set()
        self._new_id = _IdMaker()
        self._runner: Runner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._inbox: LoopInbox[tuple[str, str]] = LoopInbox(self._take_batch)  # from QuickFIX's thread
        # Consumption: everything before ``_cursor`` is consumed; ``_taken`` holds consumed ones after it.
        self._cursor = 0
        self._taken: set[int] = set()
        self._arrival: asyncio.Future[None] | None = None  # resolved at the next batch
        self._logged_out_future: asyncio.Future[None] | None = None  # resolved at the next logout
        self._logged_on = asyncio.Event()
        self._logons = 0
        self._logout_text = ""
        self.logouts: list[int] = []  # len(received) at each end of the session: what had come before it

    # --- life cycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start QuickFIX: it connects, logs on, and reconnects (every second) whenever the
        connection drops, until ``stop``. ``wait_logged_on`` waits for the logon."""
        if self._runner is not None:
            raise RuntimeError(f"the OMS client {self._who()} is already started")
        self._loop = self._inbox.loop = asyncio.get_running_loop()
        self.store_dir.mkdir(parents=True, exist_ok=True)
        settings = self._settings()
        app = _Callbacks(self._inbox.put, self._password)
        initiator = create(fix.SocketInitiator, app, fix.FileStoreFactory(settings), settings, "the OMS client's")
        self._runner = Runner(initiator, f"quickfix-oms-client-{self.sender_comp_id}")
        self._runner.start()

    async def stop(self, timeout: float = 5.0) -> None:
        """Log out (waiting up to ``timeout`` for the gateway's answer), then stop QuickFIX."""
        runner = self._runner
        if runner is None:
            return
        assert self._loop is not None
        ended = self._loop.create_future()
        self._logged_out_future = ended
        session = fix.Session.lookupSession(self.session_id)
        if session is not None:
            logged_on = session.isLoggedOn()
            session.logout("the OMS client is stopping")  # also keeps QuickFIX from reconnecting
            if logged_on:
                # QuickFIX sends the Logout at its next one-second tick, or as soon as it has handled
                # an incoming message: the answer to a TestRequest is one, a round trip away.
                self.send(MSG_TEST_REQUEST, [(TEST_REQ_ID, f"stop-{self._new_id()}")])
                try:
                    await asyncio.wait_for(asyncio.shield(ended), timeout)
                except TimeoutError:
                    log.warning("%s: no Logout answer within %gs; disconnecting", self._who(), timeout)
        await asyncio.to_thread(runner.stop)
        # Drop the initiator: its C++ session leaves QuickFIX's process-wide registry, so a client
        # started again in this process (same CompIDs, same store) gets a fresh session.
        self._runner = None
        self._inbox.drain()
        self._logged_on.clear()

    def is_logged_on(self) -> bool:
        """QuickFIX's own view (the loop hears of a logon a moment later)."""
        session = fix.Session.lookupSession(self.session_id) if self._runner is not None else None
        return session is not None and session.isLoggedOn()

    async def wait_logged_on(self, timeout: float = 10.0) -> None:
        """Wait for the logon; TimeoutError says why it may not have happened."""
        if self._runner is None:
            raise RuntimeError(f"the OMS client {self._who()} is not started")
        try:
            await asyncio.wait_for(self._logged_on.wait(), timeout)
        except TimeoutError:
            if self._logout_text:
                why = f"the gateway logged us out: {self._logout_text}"
            elif self._logons:
                why = "the session dropped and has not logged on again"
            else:
                why = "no Logon answer (is the gateway listening there, and does it know these CompIDs?)"
            raise TimeoutError(f"not logged on to {self.host}:{self.port} as {self._who()} within {timeout:g}s: {why}") from None

    def _who(self) -> str:
        return f"{self.sender_comp_id} -> {self.target_comp_id}"

    def _settings(self) -> fix.SessionSettings:
        settings = fix.SessionSettings()
        defaults = common_defaults("initiator")
        defaults.setString("FileStorePath", str(self.store_dir))
        # The OMS's own FIX 4.4 as QuickFIX ships it, plus 380=8 (throttle limit exceeded, which the
        # gateway and most venues send in FIX 4.4): what the gateway sends is checked against it.
        defaults.setString("DataDictionary", str(fix44_as_the_gateway_speaks(self.store_dir / "dictionaries")))
        defaults.setString("ReconnectInterval", "1")  # QuickFIX reads it from [DEFAULT] only
        settings.set(defaults)
        session = fix.Dictionary()
        session.setString("SocketConnectHost", self.host)
        session.setInt("SocketConnectPort", self.port)
        session.setInt("HeartBtInt", self.heartbeat_interval)
        session.setString("ResetOnLogon", "Y" if self.reset_on_logon else "N")
        settings.set(self.session_id, session)
        return settings

    # --- sending ------------------------------------------------------------------------------------

    def send(self, msg_type: str, fields: Iterable[tuple[int, str]]) -> bool:
        """Send anything (the header is QuickFIX's). True: QuickFIX numbered and stored it, and sent
        it if logged on; while logged out it goes out later, as a PossDup resend when the gateway
        asks for it after the next logon. False: dropped (logged out before a reset logon)."""
        if self._runner is None:
            raise RuntimeError(f"the OMS client {self._who()} is not started")
        message = fix.Message(quickfix_text(BEGIN_STRING, msg_type, list(fields)), False)
        try:
            return bool(fix.Session.sendToTarget(message, self.session_id))
        except fix.SessionNotFound:
            raise RuntimeError(f"the OMS client {self._who()} has no QuickFIX session (stopping?)") from None

    def _request(self, msg_type: str, fields: list[tuple[int, str]], what: str) -> None:
        if not self.send(msg_type, fields):
            raise RuntimeError(f"{what} was not sent: not logged on, and the next logon resets the session")
        if not self.is_logged_on():
            log.warning("%s: %s stored, not sent (not logged on): it goes out as a resend after the logon", self._who(), what)

    def _fresh_id(self, cl_ord_id: str | None) -> str:
        if cl_ord_id is None:
            return self._new_id()
        if cl_ord_id in self._by_cl_ord_id:
            raise ValueError(f"ClOrdID {cl_ord_id} is already used in this OMS's book; send() sends duplicates on purpose")
        return cl_ord_id

    def new_order(self, symbol: str, side: str, quantity: Decimal | int | str, price: Decimal | int | str, *,
                  cl_ord_id: str | None = None, time_in_force: str | None = None,
                  fields: Iterable[tuple[int, str]] = ()) -> str:
        """NewOrderSingle (D), a limit order; ``fields`` are added as they are. Returns its ClOrdID."""
        qty, px = _decimal(quantity, "quantity"), _decimal(price, "price")
        cl_ord_id = self._fresh_id(cl_ord_id)
        body = [(CL_ORD_ID, cl_ord_id), (SYMBOL, symbol), (SIDE, side), (TRANSACT_TIME, _now()),
                (ORDER_QTY, plain(qty)), (ORD_TYPE, ORD_TYPE_LIMIT), (PRICE, plain(px))]
        if time_in_force is not None:
            body.append((TIME_IN_FORCE, time_in_force))
        body += fields
        order = OmsOrder(cl_ord_id, symbol, side, qty, px, time_in_force=time_in_force, leaves_qty=qty)
        self.orders[cl_ord_id] = self._by_cl_ord_id[cl_ord_id] = order
        self._request(MSG_NEW_ORDER_SINGLE, body, f"order {cl_ord_id}")
        return cl_ord_id

    def cancel(self, orig_cl_ord_id: str, *, cl_ord_id: str | None = None) -> str:
        """OrderCancelRequest (F) of an order of the book (any ClOrdID of its chain; OrigClOrdID 41
        is its current one). Returns the cancel's ClOrdID."""
        order = self.order(orig_cl_ord_id)
        cl_ord_id = self._fresh_id(cl_ord_id)
        self._request(MSG_ORDER_CANCEL_REQUEST, [
            (ORIG_CL_ORD_ID, order.cl_ord_id), (CL_ORD_ID, cl_ord_id), (SYMBOL, order.symbol), (SIDE, order.side),
            (TRANSACT_TIME, _now()), (ORDER_QTY, plain(order.quantity)),
        ], f"cancel {cl_ord_id}")
        order.pending = cl_ord_id
        self._by_cl_ord_id[cl_ord_id] = order
        return cl_ord_id

    def replace(self, orig_cl_ord_id: str, *, quantity: Decimal | int | str | None = None,
                price: Decimal | int | str | None = None, cl_ord_id: str | None = None) -> str:
        """OrderCancelReplaceRequest (G): new quantity and/or price (the others stay). Returns its ClOrdID."""
        order = self.order(orig_cl_ord_id)
        qty = order.quantity if quantity is None else _decimal(quantity, "quantity")
        px = order.price if price is None else _decimal(price, "price")
        cl_ord_id = self._fresh_id(cl_ord_id)
        body = [(ORIG_CL_ORD_ID, order.cl_ord_id), (CL_ORD_ID, cl_ord_id), (SYMBOL, order.symbol), (SIDE, order.side),
                (TRANSACT_TIME, _now()), (ORDER_QTY, plain(qty)), (ORD_TYPE, ORD_TYPE_LIMIT), (PRICE, plain(px))]
        if order.time_in_force is not None:  # a field a replace leaves out reverts to its default
            body.append((TIME_IN_FORCE, order.time_in_force))
        self._request(MSG_ORDER_CANCEL_REPLACE_REQUEST, body, f"replace {cl_ord_id}")
        order.pending = cl_ord_id
        self._by_cl_ord_id[cl_ord_id] = order
        return cl_ord_id

    def status(self, cl_ord_id: str, *, symbol: str | None = None, side: str | None = None) -> str:
        """OrderStatusRequest (H) about ``cl_ord_id`` (Symbol and Side from the book; pass them for
        an order the book does not know). Returns the OrdStatusReqID (790) the answer echoes."""
        order = self._by_cl_ord_id.get(cl_ord_id)
        symbol = symbol or (order.symbol if order is not None else None)
        side = side or (order.side if order is not None else None)
        if symbol is None or side is None:
            raise ValueError(f"ClOrdID {cl_ord_id} is not in this OMS's book: pass symbol= and side=")
        request_id = self._new_id()
        self._request(MSG_ORDER_STATUS_REQUEST, [(ORD_STATUS_REQ_ID, request_id), (CL_ORD_ID, cl_ord_id),
                                                 (SYMBOL, symbol), (SIDE, side)], f"status request {request_id}")
        return request_id

    def mass_status(self, symbol: str | None = None) -> str:
        """OrderMassStatusRequest (AF) of every order, or of ``symbol``'s. Returns MassStatusReqID (584)."""
        request_id = self._new_id()
        body = [(MASS_STATUS_REQ_ID, request_id), (MASS_STATUS_REQ_TYPE, MASS_BY_SYMBOL if symbol else MASS_ALL)]
        if symbol:
            body.append((SYMBOL, symbol))
        self._request(MSG_ORDER_MASS_STATUS_REQUEST, body, f"mass status request {request_id}")
        return request_id

    def mass_cancel(self, symbol: str | None = None) -> str:
        """OrderMassCancelRequest (q) of every order, or of ``symbol``'s. Returns its ClOrdID."""
        cl_ord_id = self._new_id()
        body = [(CL_ORD_ID, cl_ord_id), (MASS_CANCEL_REQUEST_TYPE, MASS_BY_SYMBOL if symbol else MASS_ALL)]
        if symbol:
            body.append((SYMBOL, symbol))
        body.append((TRANSACT_TIME, _now()))
        self._request(MSG_ORDER_MASS_CANCEL_REQUEST, body, f"mass cancel {cl_ord_id}")
        return cl_ord_id

    # --- the book -----------------------------------------------------------------------------------

    def order(self, any_cl_ord_id: str) -> OmsOrder:
        """The order with this ClOrdID anywhere in its chain (first, replaced, cancel, pending)."""
        try:
            return self._by_cl_ord_id[any_cl_ord_id]
        except KeyError:
            raise KeyError(f"no order with ClOrdID {any_cl_ord_id} in this OMS's book") from None

    def _apply(self, r: Received) -> None:
        if r.msg_type == MSG_EXECUTION_REPORT:
            self._on_report(r)
        elif r.msg_type == MSG_ORDER_CANCEL_REJECT:
            self._on_cancel_reject(r)
        elif r.msg_type == "j" and r.get(372) == "D":
            # A BusinessMessageReject of a new order (a rate limit, say): the order's final answer.
            order = self._by_cl_ord_id.get(r.get(379) or "")
            if order is not None and order.ord_status is None:
                order.ord_status, order.text = "8", r.get(TEXT)

    def _on_report(self, r: Received) -> None:
        exec_id = r.get(EXEC_ID)
        if exec_id is not None:
            if exec_id in self._exec_ids:  # news already applied: never twice
                if not (r.poss_dup or r.poss_resend):
                    self.unflagged_duplicates.append(exec_id)
                    log.warning("%s: ExecID %s came again without PossDupFlag or PossResend (MsgSeqNum %d)",
                                self._who(), exec_id, r.seq)
                return
            self._exec_ids.add(exec_id)
        cl_ord_id, orig = r.get(CL_ORD_ID), r.get(ORIG_CL_ORD_ID)
        order = self._by_cl_ord_id.get(cl_ord_id or "") or self._by_cl_ord_id.get(orig or "") or self._adopt(r)
        if order is None:
            return
        exec_type = r.get(EXEC_TYPE)
        if exec_type == "8" and order.order_id is not None and r.get(ORDER_ID) != order.order_id:
            return  # the refusal of a second order under a used ClOrdID: no news of this one
        for known in (cl_ord_id, orig):
            if known:
                self._by_cl_ord_id.setdefault(known, order)
        order.order_id = r.get(ORDER_ID, order.order_id)
        order.ord_status = r.get(ORD_STATUS, order.ord_status)
        order.cum_qty = _maybe_decimal(r.get(CUM_QTY)) or Decimal(0)
        order.leaves_qty = _maybe_decimal(r.get(LEAVES_QTY)) or Decimal(0)
        order.avg_px = _maybe_decimal(r.get(AVG_PX)) or Decimal(0)
        if exec_type not in ("6", "E"):  # a pending cancel or replace shows the order as it still is
            order.quantity = _maybe_decimal(r.get(ORDER_QTY)) or order.quantity
            order.price = _maybe_decimal(r.get(PRICE)) or order.price
        if exec_type in ("4", "5") and orig and cl_ord_id and cl_ord_id != order.cl_ord_id:
            # the cancel or replace was accepted: the order now stands under its ClOrdID
            order.orig_cl_ord_ids.append(order.cl_ord_id)
            order.cl_ord_id = cl_ord_id
        if order.pending is not None and ((order.pending == cl_ord_id and exec_type in ("4", "5")) or order.done):
            order.pending = None
        if exec_id is not None:
            order.exec_ids.append(exec_id)
        order.text = r.get(TEXT, order.text)

    def _adopt(self, r: Received) -> OmsOrder | None:
        """An order this client did not place in this run (placed before a restart): into the book,
        under the first ClOrdID the report names. An answer about an unknown order is not one."""
        first = r.get(ORIG_CL_ORD_ID) or r.get(CL_ORD_ID)
        symbol, side = r.get(SYMBOL), r.get(SIDE)
        if not first or not symbol or not side or r.get(ORD_REJ_REASON) == UNKNOWN_ORDER:
            return None
        order = OmsOrder(first, symbol, side, _maybe_decimal(r.get(ORDER_QTY)) or Decimal(0),
                         _maybe_decimal(r.get(PRICE)) or Decimal(0), time_in_force=r.get(TIME_IN_FORCE))
        self.orders[first] = self._by_cl_ord_id[first] = order
        return order

    def _on_cancel_reject(self, r: Received) -> None:
        cl_ord_id = r.get(CL_ORD_ID)
        order = self._by_cl_ord_id.get(r.get(ORIG_CL_ORD_ID) or "") or self._by_cl_ord_id.get(cl_ord_id or "")
        if order is None:
            return
        order.ord_status = r.get(ORD_STATUS, order.ord_status)
        if order.pending == cl_ord_id:
            order.pending = None
        order.text = r.get(TEXT, order.text)

    # --- waiting ------------------------------------------------------------------------------------

    async def next(self, timeout: float = 10.0) -> Received:
        """The oldest message not consumed yet (waiting for one up to ``timeout``)."""
        return await self.wait_for(lambda _: True, timeout, what="any message")

    async def wait_for(self, predicate: Callable[[Received], bool], timeout: float = 10.0, *,
                       what: str = "a matching message") -> Received:
        """The oldest message not consumed yet that ``predicate`` accepts, already received or still
        to come; it is consumed, the ones it passed over are not. TimeoutError names ``what``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        scan = self._cursor
        while True:
            for i in range(scan, len(self.received)):
                if i not in self._taken and predicate(self.received[i]):
                    return self._take(i)
            scan = len(self.received)
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(self._timeout_text(what, timeout))
            try:
                await asyncio.wait_for(asyncio.shield(self._next_arrival()), remaining)
            except TimeoutError:
                pass  # one more look, then the error above

    def unconsumed(self) -> list[Received]:
        """The messages neither ``next`` nor ``wait_for`` has handed out yet, oldest first."""
        return [r for i, r in enumerate(self.received[self._cursor:], self._cursor) if i not in self._taken]

    def _take(self, i: int) -> Received:
        self._taken.add(i)
        while self._cursor in self._taken:
            self._taken.discard(self._cursor)
            self._cursor += 1
        return self.received[i]

    def _next_arrival(self) -> asyncio.Future[None]:
        if self._arrival is None or self._arrival.done():
            self._arrival = asyncio.get_running_loop().create_future()
        return self._arrival

    def _timeout_text(self, what: str, timeout: float) -> str:
        text = f"{what}: none within {timeout:g}s"
        if not self.is_logged_on():
            text += f" (not logged on to {self.host}:{self.port})"
        waiting = self.unconsumed()
        if waiting:
            text += f"; {len(waiting)} other message(s) waiting, the last: {waiting[-1].describe()}"
        if self.rejected:
            last = self.rejected[-1]
            text += (f"; our QuickFIX rejected {len(self.rejected)} gateway message(s) as invalid FIX 4.4, "
                     f"the last: {last.get(TEXT, '?')} (tag {last.get(371, '?')})")
        return text

    # --- hand-off from QuickFIX's thread ------------------------------------------------------------

    def _take_batch(self, batch: list[tuple[str, str]]) -> None:
        for kind, text in batch:
            if kind == _APP:
                received = Received.parse(text)
                self.received.append(received)
                self._apply(received)
            elif kind == _LOGON:
                self._logons += 1
                self._logout_text = ""
                self._logged_on.set()
            elif kind == _LOGOUT:
                self.logouts.append(len(self.received))
                self._logged_on.clear()
                if self._logged_out_future is not None and not self._logged_out_future.done():
                    self._logged_out_future.set_result(None)
            elif kind == _LOGOUT_TEXT:
                self._logout_text = text
            elif kind == _REJECT_SENT:
                reject = Received.parse(text)
                self.rejected.append(reject)
                log.warning("%s: rejected a gateway message as invalid FIX 4.4: %s", self._who(), reject.get(TEXT, "?"))
        if self._arrival is not None and not self._arrival.done():
            self._arrival.set_result(None)


# --- fixengine oms-client -------------------------------------------------------------------------


class _StepFailed(Exception):
    """A demo step got an answer that says no (a reject), with the reason."""


def _dollars(price: Decimal) -> str:
    """A price for people: at least cents (``0.60``), more digits only when it has them."""
    return f"{price:.2f}" if price == price.quantize(Decimal("0.01")) else plain(price)


def _side_word(side: str) -> str:
    return {SIDE_BUY: "buy", SIDE_SELL: "sell"}.get(side, f"side {side}")


def report_line(verb: str, client: OmsClient, r: Received) -> str:
    """One readable line about a report, e.g.
    ``new    lz1-1 buy 10 @ 0.45  -> New             cum 0 leaves 10``."""
    cl_ord_id = r.get(CL_ORD_ID) or r.get(BUSINESS_REJECT_REF_ID) or "?"
    try:
        order = client.order(r.get(ORIG_CL_ORD_ID) or cl_ord_id)
        what = f"{cl_ord_id} {_side_word(order.side)} {plain(order.quantity)} @ {_dollars(order.price)}"
    except KeyError:
        what = cl_ord_id
    if r.msg_type == MSG_EXECUTION_REPORT:
        name = EXEC_TYPE_NAMES.get(r.get(EXEC_TYPE) or "", r.get(EXEC_TYPE) or "?")
        line = f"{verb:<7}{what}  -> {name:<15} cum {r.get(CUM_QTY)} leaves {r.get(LEAVES_QTY)}"
        if r.get(EXEC_TYPE) == "F":
            line += f"  fill {r.get(LAST_QTY)} @ {r.get(LAST_PX)} fee {r.get(COMMISSION, '0')}"
        if r.get(EXEC_TYPE) == "I":
            line += f"  status {ORD_STATUS_NAMES.get(r.get(ORD_STATUS) or '', r.get(ORD_STATUS))} avg {r.get(AVG_PX)}"
    elif r.msg_type == MSG_ORDER_CANCEL_REJECT:
        line = f"{verb:<7}{what}  -> CancelReject    order stays {ORD_STATUS_NAMES.get(r.get(ORD_STATUS) or '', '?')}"
    else:
        line = f"{verb:<7}{what}  -> MsgType {r.msg_type}"
    text = r.get(TEXT)
    return line + (f"  ({text})" if text else "")


async def _step(client: OmsClient, verb: str, cl_ord_id: str, done: Callable[[Received], bool], timeout: float,
                echo: Callable[[str], None]) -> Received:
    """Print every report about the request until one answers it; a reject fails the step."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout

    def about(r: Received) -> bool:
        return r.msg_type == MSG_REJECT or cl_ord_id in (r.get(CL_ORD_ID), r.get(BUSINESS_REJECT_REF_ID))

    while True:
        r = await client.wait_for(about, max(0.0, deadline - loop.time()), what=f"{verb} {cl_ord_id}: its answer")
        if r.msg_type in (MSG_REJECT, MSG_BUSINESS_MESSAGE_REJECT):
            raise _StepFailed(f"{verb} {cl_ord_id}: the gateway rejected the message (35={r.msg_type}): {r.get(TEXT, '')}")
        echo(report_line(verb, client, r))
        if r.msg_type == MSG_ORDER_CANCEL_REJECT:
            raise _StepFailed(f"{verb} {cl_ord_id}: refused: {r.get(TEXT, 'no reason given')}")
        if r.get(EXEC_TYPE) == "8":
            raise _StepFailed(f"{verb} {cl_ord_id}: rejected: {r.get(TEXT, 'no reason given')}")
        if done(r):
            return r


async def _demo_steps(client: OmsClient, symbol: str, price: Decimal, cross_price: Decimal, quantity: Decimal,
                      timeout: float, echo: Callable[[str], None]) -> None:
    def exec_type(*types: str) -> Callable[[Received], bool]:
        return lambda r: r.get(EXEC_TYPE) in types

    resting = client.new_order(symbol, SIDE_BUY, quantity, price)
    await _step(client, "new", resting, exec_type("0"), timeout, echo)
    amended_price = price - Decimal("0.01") if price > Decimal("0.01") else price + Decimal("0.01")
    amend = client.replace(resting, quantity=quantity + 1, price=amended_price)
    await _step(client, "amend", amend, exec_type("5"), timeout, echo)
    cancel = client.cancel(resting)
    await _step(client, "cancel", cancel, exec_type("4"), timeout, echo)
    # IOC: it takes what rests at or below the price and ends, filled or with its rest canceled.
    cross = client.new_order(symbol, SIDE_BUY, quantity, cross_price, time_in_force=TIF_IOC)
    await _step(client, "cross", cross, lambda r: r.get(ORD_STATUS) in TERMINAL, timeout, echo)
    if not client.order(cross).cum_qty:
        echo(f"       (no fills: nothing rested on {symbol} at or below {_dollars(cross_price)})")
    request = client.status(cross)
    r = await client.wait_for(lambda r: r.get(ORD_STATUS_REQ_ID) == request, timeout,
                              what=f"status {cross}: the OrderStatus report (790={request})")
    echo(report_line("status", client, r))


async def run_demo(*, host: str, port: int, sender: str, target: str, symbol: str, store_dir: Path,
                   price: Decimal, cross_price: Decimal, quantity: Decimal, timeout: float = 10.0,
                   password: str | None = None) -> int:
    """``fixengine oms-client``: log on, place a resting buy, amend it, cancel it, cross with an
    IOC buy (fills: LastQty/LastPx, fee in Commission 12), ask its status, log out. Each step waits
    on the report that answers it. 0 when every step got its answer, else 1 and the reason."""
    client = OmsClient(host=host, port=port, sender_comp_id=sender, target_comp_id=target, store_dir=store_dir,
                       password=password)
    failure: str | None = None
    try:
        await client.start()
        await client.wait_logged_on(timeout)
        click.echo(f"logged on to {host}:{port} as {sender} -> {target}")
        await _demo_steps(client, symbol, price, cross_price, quantity, timeout, click.echo)
    except (TimeoutError, _StepFailed) as exc:
        failure = str(exc)
    finally:
        await client.stop()
    if failure is not None:
        click.echo(f"failed: {failure}", err=True)
        return 1
    click.echo("logged out")
    return 0
