"""The reference client's FIX session on a bare socket: Logon, heartbeats, TestRequests, sequence
numbers, gaps and reconnects, each as Kalshi asks unless a fault breaks it on purpose.

- Heartbeat (35=0) after HeartBtInt without sending; every TestRequest (35=1) answered with its 112.
- Silence: a TestRequest after 1.2 × HeartBtInt without hearing anything, the connection given up
  after 2 × HeartBtInt, then a reconnect.
- A gap (MsgSeqNum higher than expected) on a session without retransmission (KalshiNR, KalshiDC):
  the message is read, then Logout, reconnect with 141=Y; the client reconciles before new orders.
  On KalshiRT a ResendRequest (35=2) instead; replays (43=Y) go to the client's deduplication.
- MsgSeqNum lower than expected without PossDupFlag: Logout and reconnect (a serious failure, §7.2).
- A refused Logon: retried with backoff and jitter ("already exists" too: after a clean Logout it
  clears in moments); never again after a permanent refusal (``fixengine.kalshi.facts.PERMANENT_REFUSALS``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric import rsa

from conformance.clients.env import ClientEnv
from conformance.harness import TRAILER, sending_time_now
from fixengine.fix import tags as t
from fixengine.fix.framing import FrameReader, FramingError, encode, parse
from fixengine.kalshi.facts import RESET_REQUIRED, SessionType
from fixengine.orders.wire import first_values
from fixengine.session.reconnect import Backoff, Retry, classify_refusal
from tests.conformance_client import wire

log = logging.getLogger("conformance_client.session")

Fields = list[tuple[int, str]]
CONNECT_TIMEOUT_S = 5.0
LOGON_ANSWER_TIMEOUT_S = 10.0
LOGOUT_ANSWER_TIMEOUT_S = 2.0
TEST_REQUEST_AFTER = 1.2  # × HeartBtInt of silence
GIVE_UP_AFTER = 2.0  # × HeartBtInt of silence
BACKOFF = Backoff(initial=1.0, cap=30.0)
STORM_DELAY_S = 0.1  # reconnect-forever: "at once", without spinning a core
ADMIN = frozenset({"0", "1", "2", "3", "4", "5", "A"})


class Handler(Protocol):
    """What the session tells the client."""

    def on_logged_on(self) -> None: ...
    def on_logged_out(self) -> None: ...
    def on_application(self, msg_type: str, fields: Fields, poss_dup: bool) -> None: ...
    def on_session_reject(self, ref_seq_num: int | None, text: str) -> None: ...


@dataclass(frozen=True)
class Ended:
    """How a connection ended: ``kind`` is refused, dropped, reset (our own, to recover a gap) or stopped."""

    kind: str
    text: str = ""
    was_logged_on: bool = False  # the connection got as far as a Logon answer: backoff starts again


class Link:
    """One TCP connection: messages read whole, messages written numbered."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, env: ClientEnv):
        self.reader, self.writer, self.env = reader, writer, env
        self.frames = FrameReader()
        self.out_seq = 0
        self.expected_in = 1
        self.last_in = self.last_out = time.monotonic()
        self.logout_sent = False

    def send_raw(self, data: bytes, seq: int) -> None:
        self.writer.write(data)
        self.out_seq, self.last_out = seq, time.monotonic()

    def send(self, msg_type: str, fields: Fields, *, seq: int | None = None) -> int:
        """The next message of the session, or (``seq``) a PossDup one in a number already used."""
        number = self.out_seq + 1 if seq is None else seq
        header: Fields = [(t.MSG_TYPE, msg_type), (t.MSG_SEQ_NUM, str(number)), (t.SENDER_COMP_ID, self.env.key_id),
                          (t.SENDING_TIME, sending_time_now()), (t.TARGET_COMP_ID, self.env.target)]
        if seq is not None:
            header += [(t.POSS_DUP_FLAG, "Y"), (t.ORIG_SENDING_TIME, sending_time_now())]
        self.writer.write(encode(self.env.begin_string, header + fields))
        self.last_out = time.monotonic()
        if seq is None:
            self.out_seq = number
        return number

    async def read(self) -> Fields:
        """The next readable message. One that cannot be read (bad CheckSum, a broken field) is
        skipped without a Reject: the gap at the next message shows it was missed."""
        while True:
            try:
                message = self.frames.next_message()
            except FramingError as exc:
                match = TRAILER.search(self.frames.buffer)
                if match is not None:
                    del self.frames.buffer[: match.end()]
                    log.warning("skipped a message that cannot be framed: %s", exc)
                    continue
                message = None
            if message is not None:
                try:
                    fields = parse(message)
                except FramingError as exc:
                    log.warning("skipped a garbled message: %s", exc)
                    continue
                self.last_in = time.monotonic()
                return fields
            chunk = await self.reader.read(65536)
            if not chunk:
                raise EOFError("the connection was closed")
            self.frames.feed(chunk)

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except OSError:
            pass


class Session:
    """Connects, logs on and keeps the session up until ``stop``; ``send`` while logged on."""

    def __init__(self, env: ClientEnv, private_key: rsa.RSAPrivateKey, faults: frozenset[str], handler: Handler,
                 draw: Callable[[], float] = random.random):
        self.env, self.private_key, self.faults, self.handler, self._draw = env, private_key, faults, handler, draw
        self.backoff = BACKOFF if env.reconnect_interval is None else Backoff(env.reconnect_interval, BACKOFF.cap)
        self.resets = SessionType(env.target) in RESET_REQUIRED  # no retransmission: gaps are recovered by a reset
        self.logged_on = asyncio.Event()
        self.gave_up = asyncio.Event()  # set with ``refused_for_good``: no Logon will be tried again
        self.refused_for_good: str | None = None
        self._link: Link | None = None

    def send(self, msg_type: str, fields: Fields) -> int | None:
        """Send an application message now; its MsgSeqNum, or None when not logged on."""
        if self._link is None or not self.logged_on.is_set():
            return None
        return self._link.send(msg_type, fields)

    async def run(self, stop: asyncio.Event) -> None:
        attempt = 0
        while not stop.is_set():
            ended = await self._connect_once(stop)
            log.info("connection ended: %s %s", ended.kind, ended.text)
            if ended.kind == "stopped":
                return
            if ended.was_logged_on:
                attempt = 0
            if ended.kind == "reset":
                delay: float | None = 0.0
            elif ended.kind == "refused" and "reconnect-forever" in self.faults:
                delay = STORM_DELAY_S
            elif ended.kind == "refused" and classify_refusal(ended.text) is Retry.NEVER:
                delay = None
            else:  # dropped, or refused for now ("already exists" included): backoff with jitter
                delay = self.backoff.delay(attempt, self._draw())
            if delay is None:
                self.refused_for_good = ended.text
                self.gave_up.set()
                log.error("Logon refused for good (%s): not trying again", ended.text)
                return
            attempt = 0 if ended.kind == "reset" else attempt + 1
            try:
                await asyncio.wait_for(stop.wait(), delay)
            except asyncio.TimeoutError:
                pass

    async def _connect_once(self, stop: asyncio.Event) -> Ended:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(self.env.host, self.env.port),
                                                    CONNECT_TIMEOUT_S)
        except (OSError, asyncio.TimeoutError) as exc:
            return Ended("dropped", f"cannot connect: {exc}")
        link = Link(reader, writer, self.env)
        try:
            link.send_raw(wire.logon(self.env.key_id, self.private_key, target=self.env.target,
                                     begin=self.env.begin_string, heartbeat=self.env.heartbeat_interval,
                                     faults=self.faults), 1)
            refused = await self._logon_answer(link)
            if refused is not None:
                return refused
            self._link = link
            self.logged_on.set()
            log.info("logged on to %s", self.env.target)
            self.handler.on_logged_on()
            return replace(await self._serve(link, stop), was_logged_on=True)
        except (OSError, EOFError) as exc:
            return Ended("dropped", str(exc), was_logged_on=self._link is not None)
        finally:
            if self.logged_on.is_set():
                self.logged_on.clear()
                self.handler.on_logged_out()
            self._link = None
            await link.close()

    async def _logon_answer(self, link: Link) -> Ended | None:
        """None when the Logon was answered with a Logon; else why not."""
        text = ""
        try:
            while True:
                f = first_values(await asyncio.wait_for(link.read(), LOGON_ANSWER_TIMEOUT_S))
                kind = f.get(t.MSG_TYPE)
                if kind == "A":
                    link.expected_in = int(f.get(t.MSG_SEQ_NUM, "1")) + 1
                    return None
                text = f.get(t.TEXT, "") or text
                if kind == "5":
                    return Ended("refused", text)
        except (EOFError, asyncio.TimeoutError):
            return Ended("refused", text) if text else Ended("dropped", "no answer to the Logon")

    async def _serve(self, link: Link, stop: asyncio.Event) -> Ended:
        interval = self.env.heartbeat_interval
        test_request: str | None = None
        stopping = asyncio.ensure_future(stop.wait())
        try:
            while True:
                now = time.monotonic()
                if "no-heartbeats" not in self.faults and now - link.last_out >= interval:
                    link.send("0", [])
                silence = now - link.last_in
                if silence >= GIVE_UP_AFTER * interval:
                    return Ended("dropped", f"nothing heard for {silence:.1f}s")
                if silence >= TEST_REQUEST_AFTER * interval and test_request is None:
                    test_request = f"alive-{uuid.uuid4().hex[:8]}"
                    link.send("1", [(t.TEST_REQ_ID, test_request)])
                wake = link.last_in + (GIVE_UP_AFTER if test_request else TEST_REQUEST_AFTER) * interval
                if "no-heartbeats" not in self.faults:
                    wake = min(wake, link.last_out + interval)
                reading = asyncio.ensure_future(link.read())
                await asyncio.wait({reading, stopping}, timeout=max(0.01, wake - time.monotonic()),
                                   return_when=asyncio.FIRST_COMPLETED)
                if not reading.done():
                    reading.cancel()  # safe: a half-read message stays in link.frames
                    with contextlib.suppress(asyncio.CancelledError):
                        await reading  # one reader of the stream at a time
                    if stopping.done():
                        await self._log_out(link, "")
                        return Ended("stopped")
                    continue
                test_request = None  # anything heard proves the counterparty alive
                ended = await self._on_message(link, reading.result())
                if ended is not None:
                    return ended
        finally:
            stopping.cancel()

    async def _on_message(self, link: Link, fields: Fields) -> Ended | None:
        f = first_values(fields)
        msg_type, seq, poss_dup = f.get(t.MSG_TYPE, ""), int(f.get(t.MSG_SEQ_NUM, "0") or 0), f.get(t.POSS_DUP_FLAG) == "Y"
        if msg_type == "4":  # SequenceReset (only on sessions that retransmit)
            link.expected_in = max(link.expected_in, int(f.get(t.NEW_SEQ_NO, "0") or 0))
            return None
        ended: Ended | None = None
        if seq > link.expected_in:
            ended = self._on_gap(link, link.expected_in, seq)
        elif seq < link.expected_in:
            if not poss_dup:
                text = f"MsgSeqNum too low, expecting {link.expected_in} but received {seq}"
                await self._log_out(link, text)
                return Ended("dropped", text)
            if msg_type not in ADMIN:  # a copy of one already read: the client's deduplication decides
                self.handler.on_application(msg_type, fields, True)
            return None
        else:
            link.expected_in = seq + 1
        if msg_type == "1" and "ignore-test-request" not in self.faults:
            link.send("0", [(t.TEST_REQ_ID, f.get(t.TEST_REQ_ID, ""))])
        elif msg_type == "2" and not self.resets:
            # Nothing is stored for resending, and orders are never replayed blindly: gap-fill it all.
            link.send("4", [(t.GAP_FILL_FLAG, "Y"), (t.NEW_SEQ_NO, str(link.out_seq + 1))],
                      seq=int(f.get(t.BEGIN_SEQ_NO, "1")))
        elif msg_type == "3":
            ref = f.get(t.REF_SEQ_NUM, "")
            self.handler.on_session_reject(int(ref) if ref.isdigit() else None, f.get(t.TEXT, ""))
        elif msg_type == "5":
            text = f.get(t.TEXT, "")
            if not link.logout_sent:
                link.send("5", [])
            return Ended("dropped", f"logged out by the counterparty: {text}")
        elif msg_type not in ADMIN:
            self.handler.on_application(msg_type, fields, poss_dup)
        if ended is not None and ended.kind == "reset":
            await self._log_out(link, ended.text)
        return ended

    def _on_gap(self, link: Link, expected: int, seq: int) -> Ended | None:
        text = f"MsgSeqNum gap: expected {expected}, received {seq}"
        link.expected_in = seq + 1
        if not self.resets or "resend-on-nr" in self.faults:
            log.warning("%s: asking for a resend", text)
            link.send("2", [(t.BEGIN_SEQ_NO, str(expected)), (t.END_SEQ_NO, "0")])
            return None
        if "ignore-gap" in self.faults:
            log.warning("%s: carrying on", text)
            return None
        log.warning("%s: no retransmission on %s; logging out to log on again with a reset", text, self.env.target)
        return Ended("reset", text)

    async def _log_out(self, link: Link, text: str) -> None:
        """Logout (35=5), then read until the counterparty, having answered it, closes the socket
        (briefly): a Logon sent sooner could still find the old session there ("already exists")."""
        link.send("5", [(t.TEXT, text)] if text else [])
        link.logout_sent = True
        try:
            async with asyncio.timeout(LOGOUT_ANSWER_TIMEOUT_S):
                while True:
                    fields = await link.read()
                    f = first_values(fields)
                    if f.get(t.MSG_TYPE) not in ADMIN:  # reports still on the way are not lost
                        self.handler.on_application(f.get(t.MSG_TYPE, ""), fields, f.get(t.POSS_DUP_FLAG) == "Y")
        except (asyncio.TimeoutError, EOFError, OSError):
            return
