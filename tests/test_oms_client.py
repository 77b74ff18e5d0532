"""The OMS client (``fixengine.oms_client``) over real loopback sockets, against a real QuickFIX
FIX 4.4 acceptor: the gateway's own ``OmsAcceptors``, with the gateway's part played by a tiny
scripted counterparty here that answers orders with ExecutionReports. What the acceptor hands over
has passed its FIX 4.4 validation, so every request that reaches the counterparty is valid FIX 4.4;
what the counterparty sends is checked the same way by the client's QuickFIX.

No sleeps: every step waits on an event (a report, a logon, a message at the acceptor) with a timeout."""

from __future__ import annotations

import asyncio
import itertools
import socket
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path

import pytest

from fixengine.config import GatewayConfig, OmsClientConfig
from fixengine.fix.framing import parse
from fixengine.fix.tags import (
    AVG_PX,
    CL_ORD_ID,
    COMM_TYPE,
    COMMISSION,
    CUM_QTY,
    CXL_REJ_REASON,
    CXL_REJ_RESPONSE_TO,
    EXEC_ID,
    EXEC_TYPE,
    LAST_PX,
    LAST_QTY,
    LEAVES_QTY,
    MASS_CANCEL_REQUEST_TYPE,
    MASS_STATUS_REQ_ID,
    MASS_STATUS_REQ_TYPE,
    MSG_EXECUTION_REPORT,
    MSG_NEW_ORDER_SINGLE,
    MSG_ORDER_CANCEL_REJECT,
    MSG_ORDER_CANCEL_REPLACE_REQUEST,
    MSG_ORDER_CANCEL_REQUEST,
    MSG_ORDER_MASS_CANCEL_REQUEST,
    MSG_ORDER_MASS_STATUS_REQUEST,
    MSG_ORDER_STATUS_REQUEST,
    MSG_REJECT,
    ORD_STATUS,
    ORD_STATUS_REQ_ID,
    ORD_TYPE,
    ORDER_ID,
    ORDER_QTY,
    ORIG_CL_ORD_ID,
    POSS_RESEND,
    PRICE,
    REF_TAG_ID,
    SIDE,
    SYMBOL,
    TEXT,
    TIME_IN_FORCE,
    TRANSACT_TIME,
)
from fixengine.gateway.acceptor import OmsAcceptors, OmsLoggedOn, OmsLoggedOut, OmsReceived, OmsSessionEvent
from fixengine.oms_client import SIDE_BUY, TIF_IOC, OmsClient, Received

TICKER = "KXTEST-26JAN01-T50"
WAIT = 5.0  # seconds any one answer may take; each comes in milliseconds


def free_port() -> int:
    """A port nothing listens on (QuickFIX's acceptor listens on every interface, so bind those)."""
    with socket.socket() as s:
        s.bind(("", 0))
        return s.getsockname()[1]


class Counterparty:
    """The gateway's side of one OMS session: a real ``OmsAcceptors`` and scripted answers.

    With ``auto`` it answers D with New (an IOC at 0.60 or more also trades 4 @ 0.58 and cancels
    the rest), G with Replaced (or, with ``refuse_replace``, an OrderCancelReject), F with
    Canceled and H with an OrderStatus report; AF and q are only recorded."""

    def __init__(self, store_dir: Path, *, auto: bool = True, refuse_replace: bool = False):
        tag = uuid.uuid4().hex[:8].upper()  # QuickFIX's sessions are process-wide: fresh CompIDs per test
        self.sender, self.target, self.port = f"OMS{tag}", f"GW{tag}", free_port()
        self.auto, self.refuse_replace = auto, refuse_replace
        client = OmsClientConfig(name="oms", sender_comp_id=self.sender, target_comp_id=self.target, port=self.port,
                                 session="nr", max_quantity=Decimal(1000), max_notional=Decimal(1000))
        self.acceptors = OmsAcceptors(GatewayConfig(), [client], store_dir, self._on_events)
        self.events: list[OmsSessionEvent] = []
        self.orders: dict[str, dict[int, str]] = {}  # any ClOrdID -> the order's fields, as last reported
        self._exec_ids = (f"E{n}" for n in itertools.count(1))
        self._order_ids = (f"K{n}" for n in itertools.count(1))
        self._arrival: asyncio.Future[None] | None = None

    def start(self) -> None:
        self.acceptors.start(asyncio.get_running_loop())

    async def stop(self) -> None:
        await self.acceptors.stop()

    # --- what arrived ----------------------------------------------------------------------------

    def _on_events(self, batch: list[OmsSessionEvent]) -> None:
        for event in batch:
            self.events.append(event)
            if self.auto and isinstance(event, OmsReceived):
                self._answer(event.msg_type, dict(reversed(parse(event.raw.encode()))))
        if self._arrival is not None and not self._arrival.done():
            self._arrival.set_result(None)

    async def wait(self, predicate: Callable[[OmsSessionEvent], bool], timeout: float = WAIT) -> OmsSessionEvent:
        """The first event (since the start) that ``predicate`` accepts, waiting for it if need be."""
        async def first() -> OmsSessionEvent:
            seen = 0
            while True:
                for event in self.events[seen:]:
                    if predicate(event):
                        return event
                seen = len(self.events)
                self._arrival = asyncio.get_running_loop().create_future()
                await self._arrival
        return await asyncio.wait_for(first(), timeout)

    async def request(self, msg_type: str, cl_ord_id: str | None = None) -> tuple[OmsReceived, dict[int, str]]:
        """The first message of ``msg_type`` (with that ClOrdID) the acceptor handed over, and its fields."""
        def match(e: OmsSessionEvent) -> bool:
            return (isinstance(e, OmsReceived) and e.msg_type == msg_type
                    and (cl_ord_id is None or fields_of(e).get(CL_ORD_ID) == cl_ord_id))
        event = await self.wait(match)
        assert isinstance(event, OmsReceived)
        return event, fields_of(event)

    # --- what it sends ---------------------------------------------------------------------------

    def report(self, order: dict[int, str], exec_type: str, ord_status: str, *, extra: list[tuple[int, str]] = (),  # type: ignore[assignment]
               header: list[tuple[int, str]] = (), exec_id: str | None = None) -> tuple[str, bool]:  # type: ignore[assignment]
        """An ExecutionReport about ``order``; (its ExecID, whether it went on the wire now)."""
        exec_id = exec_id or next(self._exec_ids)
        if exec_type != "I":
            order[ORD_STATUS] = ord_status
        fields = [*header, (ORDER_ID, order[ORDER_ID]), (CL_ORD_ID, order[CL_ORD_ID])]
        if ORIG_CL_ORD_ID in order:
            fields.append((ORIG_CL_ORD_ID, order[ORIG_CL_ORD_ID]))
        fields += [(EXEC_ID, exec_id), (EXEC_TYPE, exec_type), (ORD_STATUS, ord_status), (SYMBOL, order[SYMBOL]),
                   (SIDE, order[SIDE]), (ORDER_QTY, order[ORDER_QTY]), (ORD_TYPE, "2"), (PRICE, order[PRICE]),
                   (LEAVES_QTY, order[LEAVES_QTY]), (CUM_QTY, order[CUM_QTY]), (AVG_PX, order[AVG_PX]), *extra]
        return exec_id, self.acceptors.send("oms", MSG_EXECUTION_REPORT, fields)

    def fill(self, cl_ord_id: str, quantity: str, price: str, *, header: list[tuple[int, str]] = (),  # type: ignore[assignment]
             exec_id: str | None = None) -> tuple[str, bool]:
        """A Trade of ``quantity`` at ``price`` (fee 0.07); the same ``exec_id`` again repeats it."""
        order = self.orders[cl_ord_id]
        if exec_id is None:  # new news: the order moves on (a repeat reports the same state)
            order[CUM_QTY] = str(Decimal(order[CUM_QTY]) + Decimal(quantity))
            order[LEAVES_QTY] = str(Decimal(order[ORDER_QTY]) - Decimal(order[CUM_QTY]))
            order[AVG_PX] = price
        status = "2" if Decimal(order[LEAVES_QTY]) == 0 else "1"
        return self.report(order, "F", status, header=header, exec_id=exec_id, extra=[
            (LAST_QTY, quantity), (LAST_PX, price), (COMMISSION, "0.07"), (COMM_TYPE, "3")])

    def _answer(self, msg_type: str, f: dict[int, str]) -> None:
        if msg_type == MSG_NEW_ORDER_SINGLE:
            order = {ORDER_ID: next(self._order_ids), CL_ORD_ID: f[CL_ORD_ID], SYMBOL: f[SYMBOL], SIDE: f[SIDE],
                     ORDER_QTY: f[ORDER_QTY], PRICE: f[PRICE], LEAVES_QTY: f[ORDER_QTY], CUM_QTY: "0", AVG_PX: "0"}
            self.orders[f[CL_ORD_ID]] = order
            self.report(order, "0", "0")
            if f.get(TIME_IN_FORCE) == TIF_IOC and Decimal(f[PRICE]) >= Decimal("0.60"):  # resting sells: 4 @ 0.58
                self.fill(f[CL_ORD_ID], "4", "0.58")
                order[LEAVES_QTY] = "0"
                self.report(order, "4", "4")
        elif msg_type in (MSG_ORDER_CANCEL_REPLACE_REQUEST, MSG_ORDER_CANCEL_REQUEST):
            order = self.orders[f[ORIG_CL_ORD_ID]]
            if msg_type == MSG_ORDER_CANCEL_REPLACE_REQUEST and self.refuse_replace:
                self.acceptors.send("oms", MSG_ORDER_CANCEL_REJECT, [
                    (ORDER_ID, order[ORDER_ID]), (CL_ORD_ID, f[CL_ORD_ID]), (ORIG_CL_ORD_ID, f[ORIG_CL_ORD_ID]),
                    (ORD_STATUS, "0"), (CXL_REJ_RESPONSE_TO, "2"), (CXL_REJ_REASON, "99"), (TEXT, "not today")])
                return
            order.update({CL_ORD_ID: f[CL_ORD_ID], ORIG_CL_ORD_ID: f[ORIG_CL_ORD_ID]})
            if msg_type == MSG_ORDER_CANCEL_REPLACE_REQUEST:
                order.update({ORDER_QTY: f[ORDER_QTY], PRICE: f[PRICE],
                              LEAVES_QTY: str(Decimal(f[ORDER_QTY]) - Decimal(order[CUM_QTY]))})
                self.report(order, "5", "0")
            else:
                order[LEAVES_QTY] = "0"
                self.report(order, "4", "4")
            self.orders[f[CL_ORD_ID]] = order
            del order[ORIG_CL_ORD_ID]  # later reports stand under the new ClOrdID alone
        elif msg_type == MSG_ORDER_STATUS_REQUEST:
            order = self.orders[f[CL_ORD_ID]]
            self.report(order, "I", order[ORD_STATUS], extra=[(ORD_STATUS_REQ_ID, f[ORD_STATUS_REQ_ID])])


def fields_of(event: OmsReceived) -> dict[int, str]:
    return dict(reversed(parse(event.raw.encode())))


def about(cl_ord_id: str, exec_type: str) -> Callable[[Received], bool]:
    return lambda r: r.get(CL_ORD_ID) == cl_ord_id and r.get(EXEC_TYPE) == exec_type


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[Counterparty]:
    counterparty = Counterparty(tmp_path / "gateway")
    counterparty.start()
    yield counterparty
    await counterparty.stop()


@pytest.fixture
async def make_client(tmp_path: Path, gateway: Counterparty) -> AsyncIterator[Callable[..., OmsClient]]:
    """OMS clients of ``gateway``'s session, all on one store (so a second one is a restart)."""
    made: list[OmsClient] = []

    def make(**kw: object) -> OmsClient:
        client = OmsClient(host="127.0.0.1", port=gateway.port, sender_comp_id=gateway.sender,
                           target_comp_id=gateway.target, store_dir=tmp_path / "oms", **kw)  # type: ignore[arg-type]
        made.append(client)
        return client

    yield make
    for client in made:
        await client.stop()


async def logged_on(make_client: Callable[..., OmsClient]) -> OmsClient:
    client = make_client()
    await client.start()
    await client.wait_logged_on(WAIT)
    return client


# --- session --------------------------------------------------------------------------------------


async def test_logs_on_and_out(gateway: Counterparty, make_client: Callable[..., OmsClient]) -> None:
    client = await logged_on(make_client)
    assert client.is_logged_on()
    await gateway.wait(lambda e: isinstance(e, OmsLoggedOn))
    await client.stop()
    assert not client.is_logged_on()
    await gateway.wait(lambda e: isinstance(e, OmsLoggedOut))
    assert not gateway.acceptors.is_logged_on("oms")


async def test_waiting_for_a_logon_nobody_answers_says_so(tmp_path: Path) -> None:
    client = OmsClient(host="127.0.0.1", port=free_port(), sender_comp_id="OMS-NOBODY", target_comp_id="GW-NOBODY",
                       store_dir=tmp_path / "oms")
    await client.start()
    try:
        with pytest.raises(TimeoutError, match=r"not logged on to 127\.0\.0\.1:\d+ as OMS-NOBODY -> GW-NOBODY within 0\.3s: no Logon answer"):
            await client.wait_logged_on(timeout=0.3)
    finally:
        await client.stop()


# --- orders and the book --------------------------------------------------------------------------


async def test_new_replace_and_cancel_keep_the_book(gateway: Counterparty, make_client: Callable[..., OmsClient]) -> None:
    client = await logged_on(make_client)

    first = client.new_order(TICKER, SIDE_BUY, Decimal(10), Decimal("0.45"))
    await client.wait_for(about(first, "0"), WAIT)
    order = client.orders[first]
    assert (order.ord_status, order.order_id, order.cum_qty, order.leaves_qty) == ("0", "K1", 0, 10)
    _, d = await gateway.request(MSG_NEW_ORDER_SINGLE)
    assert {t: d[t] for t in (CL_ORD_ID, SYMBOL, SIDE, ORDER_QTY, ORD_TYPE, PRICE)} == {
        CL_ORD_ID: first, SYMBOL: TICKER, SIDE: "1", ORDER_QTY: "10", ORD_TYPE: "2", PRICE: "0.45"}
    assert TRANSACT_TIME in d and TIME_IN_FORCE not in d

    amend = client.replace(first, quantity=Decimal(12), price=Decimal("0.44"))
    assert client.order(amend) is order and order.pending == amend
    await client.wait_for(about(amend, "5"), WAIT)
    assert (order.cl_ord_id, order.orig_cl_ord_ids, order.quantity, order.price) == (amend, [first], 12, Decimal("0.44"))
    assert (order.pending, order.leaves_qty) == (None, 12)

    cancel = client.cancel(first)  # any ClOrdID of the chain names the order ...
    _, f = await gateway.request(MSG_ORDER_CANCEL_REQUEST)
    assert (f[ORIG_CL_ORD_ID], f[CL_ORD_ID], f[ORDER_QTY], f[SIDE]) == (amend, cancel, "12", "1")  # ... 41 is its current one
    await client.wait_for(about(cancel, "4"), WAIT)
    assert (order.cl_ord_id, order.orig_cl_ord_ids, order.ord_status, order.leaves_qty) == (cancel, [first, amend], "4", 0)
    assert order.done and order.exec_ids == ["E1", "E2", "E3"]
    assert client.orders == {first: order} and client.order(cancel) is client.order(amend) is order
    assert client.unflagged_duplicates == [] and client.rejected == []


async def test_a_refused_replace_leaves_the_order_as_it_was(gateway: Counterparty, make_client: Callable[..., OmsClient]) -> None:
    gateway.refuse_replace = True
    client = await logged_on(make_client)
    first = client.new_order(TICKER, SIDE_BUY, Decimal(10), Decimal("0.45"))
    await client.wait_for(about(first, "0"), WAIT)
    amend = client.replace(first, price=Decimal("0.40"))
    reject = await client.wait_for(lambda r: r.msg_type == MSG_ORDER_CANCEL_REJECT, WAIT)
    order = client.order(first)
    assert reject.get(CL_ORD_ID) == amend
    assert (order.cl_ord_id, order.price, order.pending, order.ord_status, order.text) == (first, Decimal("0.45"), None, "0", "not today")


async def test_a_resent_report_counts_once_and_an_unflagged_repeat_is_caught(
        gateway: Counterparty, make_client: Callable[..., OmsClient]) -> None:
    client = await logged_on(make_client)
    cl = client.new_order(TICKER, SIDE_BUY, Decimal(10), Decimal("0.45"))
    await client.wait_for(about(cl, "0"), WAIT)
    exec_id, _ = gateway.fill(cl, "4", "0.45")
    await client.wait_for(about(cl, "F"), WAIT)
    order = client.order(cl)
    assert (order.cum_qty, order.leaves_qty, order.ord_status) == (4, 6, "1")

    gateway.fill(cl, "4", "0.45", exec_id=exec_id, header=[(POSS_RESEND, "Y")])  # the same news, flagged
    copy = await client.wait_for(lambda r: r.get(EXEC_ID) == exec_id, WAIT)
    assert copy.poss_resend and not copy.poss_dup
    assert (order.cum_qty, order.exec_ids.count(exec_id), client.unflagged_duplicates) == (4, 1, [])

    gateway.fill(cl, "4", "0.45", exec_id=exec_id)  # the same news, unflagged: a gateway bug
    await client.wait_for(lambda r: r.get(EXEC_ID) == exec_id, WAIT)
    assert client.unflagged_duplicates == [exec_id]
    assert (order.cum_qty, order.exec_ids.count(exec_id)) == (4, 1)


# --- restarts -------------------------------------------------------------------------------------


async def test_what_was_sent_while_the_client_was_away_arrives_after_a_restart(
        gateway: Counterparty, make_client: Callable[..., OmsClient]) -> None:
    before = await logged_on(make_client)
    cl = before.new_order(TICKER, SIDE_BUY, Decimal(10), Decimal("0.45"))
    new = await before.wait_for(about(cl, "0"), WAIT)
    first_order, _ = await gateway.request(MSG_NEW_ORDER_SINGLE, cl)
    await before.stop()
    await gateway.wait(lambda e: isinstance(e, OmsLoggedOut))

    fill_seq = gateway.acceptors.lookup("oms").getExpectedSenderNum()
    exec_id, stored = gateway.fill(cl, "4", "0.45")
    assert stored and not gateway.acceptors.is_logged_on("oms")  # numbered and kept for the resend

    after = await logged_on(make_client)  # a new process would be the same: same CompIDs, same store
    fill = await after.wait_for(lambda r: r.get(EXEC_ID) == exec_id, WAIT)
    assert fill.poss_dup and fill.seq == fill_seq > new.seq
    assert after.order(cl).cum_qty == 4  # adopted: placed before the restart
    assert after.unflagged_duplicates == []

    # Sequence numbers survived: the acceptor took the next order in sequence, without a reset.
    cl2 = after.new_order(TICKER, SIDE_BUY, Decimal(1), Decimal("0.40"))
    second_order, _ = await gateway.request(MSG_NEW_ORDER_SINGLE, cl2)
    assert second_order.seq > first_order.seq + 2 and not second_order.poss_dup
    assert cl2.split("-")[0] != cl.split("-")[0]  # ClOrdIDs do not repeat across restarts
    await after.wait_for(about(cl2, "0"), WAIT)


async def test_an_order_sent_before_the_logon_is_resent_with_possdup(tmp_path: Path) -> None:
    """QuickFIX numbers and stores it; the gateway sees the gap at logon and asks for it."""
    gateway = Counterparty(tmp_path / "gateway")
    client = OmsClient(host="127.0.0.1", port=gateway.port, sender_comp_id=gateway.sender,
                       target_comp_id=gateway.target, store_dir=tmp_path / "oms")
    await client.start()
    try:
        cl = client.new_order(TICKER, SIDE_BUY, Decimal(10), Decimal("0.45"))
        gateway.start()
        await client.wait_logged_on(WAIT)
        order, _ = await gateway.request(MSG_NEW_ORDER_SINGLE, cl)
        # Its MsgSeqNum is 1 or 2: a refused connect can cost QuickFIX a number (a Logon never sent,
        # gap-filled on the resend).
        assert order.poss_dup and order.seq in (1, 2)
        await client.wait_for(about(cl, "0"), WAIT)
    finally:
        await client.stop()
        await gateway.stop()


# --- status, mass requests, raw messages ------------------------------------------------------------


async def test_status_and_mass_requests_are_fix44(gateway: Counterparty, make_client: Callable[..., OmsClient]) -> None:
    client = await logged_on(make_client)
    cl = client.new_order(TICKER, SIDE_BUY, Decimal("2.5"), Decimal("0.45"), time_in_force="1")
    await client.wait_for(about(cl, "0"), WAIT)

    request = client.status(cl)
    status = await client.wait_for(lambda r: r.get(ORD_STATUS_REQ_ID) == request, WAIT)
    assert (status.get(EXEC_TYPE), status.get(ORD_STATUS), status.get(LEAVES_QTY)) == ("I", "0", "2.5")
    with pytest.raises(ValueError, match="pass symbol= and side="):
        client.status("never-placed")

    mass_status = client.mass_status()
    mass_cancel = client.mass_cancel(TICKER)
    _, af = await gateway.request(MSG_ORDER_MASS_STATUS_REQUEST)
    _, q = await gateway.request(MSG_ORDER_MASS_CANCEL_REQUEST)
    assert (af[MASS_STATUS_REQ_ID], af[MASS_STATUS_REQ_TYPE], SYMBOL in af) == (mass_status, "7", False)
    assert (q[CL_ORD_ID], q[MASS_CANCEL_REQUEST_TYPE], q[SYMBOL], TRANSACT_TIME in q) == (mass_cancel, "1", TICKER, True)
    _, d = await gateway.request(MSG_NEW_ORDER_SINGLE, cl)
    assert (d[ORDER_QTY], d[TIME_IN_FORCE]) == ("2.5", "1")


async def test_a_raw_message_the_acceptor_finds_malformed_is_rejected(
        gateway: Counterparty, make_client: Callable[..., OmsClient]) -> None:
    client = await logged_on(make_client)
    assert client.send(MSG_NEW_ORDER_SINGLE, [(CL_ORD_ID, "bad-1"), (SYMBOL, TICKER), (ORD_TYPE, "2")])  # no Side (54)
    reject = await client.wait_for(lambda r: r.msg_type == MSG_REJECT, WAIT)
    assert reject.get(REF_TAG_ID) == str(SIDE)
    assert not any(isinstance(e, OmsReceived) for e in gateway.events)


async def test_the_refusal_of_a_reused_cl_ord_id_leaves_the_first_order_alone(
        gateway: Counterparty, make_client: Callable[..., OmsClient]) -> None:
    client = await logged_on(make_client)
    cl = client.new_order(TICKER, SIDE_BUY, Decimal(10), Decimal("0.45"), cl_ord_id="same-1")
    await client.wait_for(about(cl, "0"), WAIT)
    with pytest.raises(ValueError, match="already used"):
        client.new_order(TICKER, SIDE_BUY, Decimal(1), Decimal("0.45"), cl_ord_id="same-1")
    refusal = {ORDER_ID: "NONE", CL_ORD_ID: "same-1", SYMBOL: TICKER, SIDE: "1", ORDER_QTY: "1", PRICE: "0.45",
               LEAVES_QTY: "0", CUM_QTY: "0", AVG_PX: "0"}
    gateway.report(refusal, "8", "8", extra=[(TEXT, "ClOrdID (11) same-1 was used before by this client")])
    await client.wait_for(about(cl, "8"), WAIT)
    order = client.order(cl)
    assert (order.ord_status, order.order_id, order.leaves_qty, order.text) == ("0", "K1", 10, None)


async def test_a_report_that_is_not_fix44_is_rejected_and_named_when_a_wait_times_out(
        gateway: Counterparty, make_client: Callable[..., OmsClient]) -> None:
    client = await logged_on(make_client)
    cl = client.new_order(TICKER, SIDE_BUY, Decimal(10), Decimal("0.45"))
    await client.wait_for(about(cl, "0"), WAIT)
    gateway.acceptors.send("oms", MSG_EXECUTION_REPORT, [(ORDER_ID, "K1"), (CL_ORD_ID, cl), (EXEC_TYPE, "F")])
    gateway.fill(cl, "1", "0.45")  # behind the bad one: when it is here, the Reject was sent
    await client.wait_for(about(cl, "F"), WAIT)
    assert len(client.rejected) == 1
    with pytest.raises(TimeoutError, match=r"a Canceled: none within 0\.1s; our QuickFIX rejected 1 gateway message"):
        await client.wait_for(about(cl, "4"), 0.1, what="a Canceled")


async def test_wait_for_leaves_what_it_passes_over_for_next(gateway: Counterparty, make_client: Callable[..., OmsClient]) -> None:
    client = await logged_on(make_client)
    cl = client.new_order(TICKER, SIDE_BUY, Decimal(10), Decimal("0.45"))
    await gateway.request(MSG_NEW_ORDER_SINGLE, cl)  # answered (New) by now
    gateway.fill(cl, "3", "0.45")
    trade = await client.wait_for(about(cl, "F"), WAIT)
    new = await client.next(WAIT)  # arrived first, passed over, still there
    assert (new.get(EXEC_TYPE), new.seq) == ("0", trade.seq - 1)
    assert client.unconsumed() == []
    with pytest.raises(TimeoutError, match=r"any message: none within 0\.1s"):
        await client.next(0.1)
    assert [r.get(EXEC_TYPE) for r in client.received] == ["0", "F"]


async def test_floats_are_refused(gateway: Counterparty, make_client: Callable[..., OmsClient]) -> None:
    client = await logged_on(make_client)
    with pytest.raises(TypeError, match="float"):
        client.new_order(TICKER, SIDE_BUY, 10, 0.45)  # type: ignore[arg-type]
    assert client.orders == {}


# --- fixengine oms-client -------------------------------------------------------------------------


async def oms_client_command(port: int, sender: str, target: str, store: Path, *extra: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "fixengine", "oms-client", "--port", str(port), "--sender", sender,
        "--target", target, "--symbol", TICKER, "--store", str(store), *extra,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_the_command_runs_its_script_and_exits_zero(gateway: Counterparty, tmp_path: Path) -> None:
    code, out, err = await oms_client_command(gateway.port, gateway.sender, gateway.target, tmp_path / "cli")
    assert code == 0, out + err
    lines = out.splitlines()
    assert lines[0].startswith("logged on to 127.0.0.1:") and lines[-1] == "logged out"
    assert [line.split()[0] for line in lines[1:-1]] == ["new", "amend", "cancel", "cross", "cross", "cross", "status"]
    assert "buy 10 @ 0.45  -> New" in lines[1] and "cum 0 leaves 10" in lines[1]
    assert "buy 11 @ 0.44  -> Replaced" in lines[2] and "-> Canceled" in lines[3]
    assert "-> Trade" in lines[5] and "fill 4 @ 0.58 fee 0.07" in lines[5]
    assert "-> OrderStatus" in lines[7] and "status Canceled" in lines[7]
    assert "Traceback" not in err


async def test_the_command_says_which_step_failed_and_exits_one(gateway: Counterparty, tmp_path: Path) -> None:
    gateway.refuse_replace = True
    code, out, err = await oms_client_command(gateway.port, gateway.sender, gateway.target, tmp_path / "cli")
    assert code == 1
    assert "-> CancelReject" in out and "refused: not today" in err and "amend" in err
    assert "Traceback" not in err


async def test_the_command_names_a_timeout(tmp_path: Path) -> None:
    code, out, err = await oms_client_command(free_port(), "OMS-A", "GW-A", tmp_path / "cli", "--timeout", "0.5")
    assert code == 1
    assert "failed: not logged on to" in err and "within 0.5s" in err and "Traceback" not in err
