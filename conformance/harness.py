"""The raw-FIX-client pieces a Kalshi scenario is built from, shared by the tests today and the
conformance runner later: API keys, the one signed Logon, a FIX client on a bare socket, waits on
the simulator's events, and a session config aimed at a simulator. Nothing here judges what comes
back: that is each scenario's job (a fault may well break a message on purpose)."""

from __future__ import annotations

import queue
import re
import socket
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric import rsa

from fixengine.config import LogonFlags, SessionConfig
from fixengine.fix.dialect import Dialect
from fixengine.fix.framing import FrameReader, encode, parse
from fixengine.kalshi.facts import SessionType
from fixengine.kalshi.signing import load_private_key, logon_prehash, public_key_pem, sign, write_keypair
from fixengine.fix.timestamps import utc_timestamp
from simulator.config import FIX44_LISTENER, AccountConfig

if TYPE_CHECKING:  # only named in annotations: the harness runs without starting a simulator
    from simulator.events import SimEvent
    from simulator.server import Simulator

NR = SessionType.NR.value
TICKER = "KXFAULT-26DEC31"  # what RawClient.order trades unless told otherwise: list it on the simulator
TRAILER = re.compile(rb"\x0110=\d{3}\x01")  # CheckSum (10), the field that ends every message

# --- API keys ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ApiKey:
    """An API key as a client holds it (id, private key file) and an exchange knows it (public key)."""

    key_id: str
    private_key_file: Path
    public_key_file: Path

    def account(self, tier: str = "premier", *, of: "ApiKey | None" = None) -> AccountConfig:
        """The simulator account this key signs for: its own, or (``of``) that of another key, as a
        second key of one account (a drop-copy or listener session beside a trading one)."""
        return AccountConfig(api_key_id=self.key_id, public_key_file=self.public_key_file, tier=tier,
                             account=of.key_id if of is not None else None)

    @property
    def private_key(self) -> rsa.RSAPrivateKey:
        return load_private_key(file=self.private_key_file)

    @property
    def public_pem(self) -> str:
        return public_key_pem(self.private_key).decode()


def make_api_key(directory: Path) -> ApiKey:
    """A fresh RSA key pair under ``directory`` with a unique key id (QuickFIX sessions are
    process-global by id, so two scenarios must never share one)."""
    key_id = str(uuid.uuid4())
    private, public = directory / f"{key_id}.pem", directory / f"{key_id}.pub.pem"
    write_keypair(private, public)
    return ApiKey(key_id, private, public)


# --- the signed Logon ------------------------------------------------------------------------------


def sending_time_now() -> str:
    """SendingTime (52) for a message that goes out now."""
    return utc_timestamp(datetime.now(timezone.utc))


def signed_logon(
    key_id: str,
    private_key: rsa.RSAPrivateKey,
    *,
    target: str = NR,
    begin: str = "FIXT.1.1",
    sent_at: datetime | None = None,
    seq: int = 1,
    heartbeat: int = 30,
    reset: bool = True,
    extra: Mapping[int, str | None] | Iterable[tuple[int, str | None]] = (),
) -> dict[int, str]:
    """A Logon (35=A) as Kalshi asks for it, BeginString (8) included: RawData (96) signs SendingTime,
    MsgType, MsgSeqNum, SenderCompID and TargetCompID; ``reset`` sends ResetSeqNumFlag (141)=Y.

    ``extra`` is applied after signing, so a scenario can also send a Logon its signature no longer
    covers: a new tag goes at the end, a present one is replaced where it stands, None removes it."""
    stamp = utc_timestamp(sent_at or datetime.now(timezone.utc))
    signature = sign(private_key, logon_prehash(stamp, "A", str(seq), key_id, target))
    fields = {8: begin, 35: "A", 34: str(seq), 49: key_id, 52: stamp, 56: target, 98: "0", 108: str(heartbeat)}
    if reset:
        fields[141] = "Y"
    fields[95], fields[96] = str(len(signature)), signature
    if begin == "FIXT.1.1":
        fields[1137] = "9"  # DefaultApplVerID: FIX 5.0 SP2
    for tag, value in dict(extra).items():
        if value is None:
            fields.pop(tag, None)
        else:
            fields[tag] = value
    return fields


def to_wire(fields: Mapping[int, str]) -> bytes:
    """A message held as tag -> value (BeginString among them) as bytes, BodyLength and CheckSum added."""
    return encode(fields[8], [(tag, value) for tag, value in fields.items() if tag != 8])


# --- a FIX client on a bare socket ---------------------------------------------------------------


class RawClient:
    """A FIX client on a bare socket to one of the simulator's ports (KalshiNR by default): numbers
    what it sends and reads what comes back message by message, without judging it (faults break
    messages). ``listener`` picks another port for ``target``: ``FIX44_LISTENER`` speaks FIX 4.4."""

    def __init__(self, sim: Simulator, key: ApiKey, timeout: float = 5.0, target: str = NR, listener: str | None = None):
        self.key = key
        self.target = target
        self.listener = listener or target
        self.begin = "FIX.4.4" if self.listener == FIX44_LISTENER else "FIXT.1.1"
        self.sock = socket.create_connection(("127.0.0.1", sim.ports[self.listener]), timeout=timeout)
        self.seq = 1
        self.buffer = b""

    def logon(self, heartbeat: int = 30, extra: Iterable[tuple[int, str]] = (), reset: bool = True) -> dict[int, str]:
        """Log on with MsgSeqNum 1 and a reset, or (``reset=False``) go on from the last one sent."""
        self.seq = 1 if reset else self.seq + 1
        logon = signed_logon(self.key.key_id, self.key.private_key, target=self.target, begin=self.begin, seq=self.seq,
                             heartbeat=heartbeat, reset=reset, extra=extra)
        self.sock.sendall(to_wire(logon))
        return self.read()

    def reconnect(self, sim: Simulator, timeout: float = 5.0) -> None:
        self.sock.close()
        self.sock = socket.create_connection(("127.0.0.1", sim.ports[self.listener]), timeout=timeout)
        self.buffer = b""

    def send(self, msg_type: str, fields: list[tuple[int, str]]) -> int:
        """Send the next message of the session; its MsgSeqNum."""
        self.seq += 1
        header = [(35, msg_type), (34, str(self.seq)), (49, self.key.key_id), (52, sending_time_now()), (56, self.target)]
        self.sock.sendall(encode(self.begin, header + fields))
        return self.seq

    def test_request(self, test_req_id: str) -> int:
        return self.send("1", [(112, test_req_id)])

    def order(self, cl_ord_id: str, ticker: str = TICKER) -> int:
        """A one-contract limit buy of YES at 40 cents, good till canceled."""
        return self.send("D", [(11, cl_ord_id), (55, ticker), (54, "1"), (38, "1"), (40, "2"), (44, "40"),
                               (59, "1"), (60, sending_time_now())])

    def read_frame(self) -> bytes:
        """The next message's bytes, up to its CheckSum field, whatever is inside."""
        while (match := TRAILER.search(self.buffer)) is None:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError(f"connection closed; unread: {self.buffer!r}")
            self.buffer += chunk
        frame, self.buffer = self.buffer[: match.end()], self.buffer[match.end() :]
        return frame

    def read(self) -> dict[int, str]:
        """The next message, which must be well framed (BodyLength, CheckSum)."""
        frames = FrameReader()
        frames.feed(self.read_frame())
        message = frames.next_message()
        assert message is not None and not frames.buffer
        return dict(parse(message))

    def read_until_closed(self) -> bytes:
        data = self.buffer
        try:
            while chunk := self.sock.recv(65536):
                data += chunk
        except ConnectionResetError:
            pass
        return data

    def close(self) -> None:
        self.sock.close()


# --- the simulator's side ----------------------------------------------------------------------


class SimEvents:
    """Simulator events collected across threads, with waiting."""

    def __init__(self) -> None:
        self.queue: queue.Queue[SimEvent] = queue.Queue()

    def __call__(self, event: SimEvent) -> None:
        self.queue.put(event)

    def wait_for(self, kind: str, key_id: str | None = None, timeout: float = 10.0) -> SimEvent:
        """Skip events until one of ``kind`` (for ``key_id``) arrives."""
        return self.wait_for_all((kind,), key_id, timeout)[kind]

    def wait_for_all(self, kinds: tuple[str, ...], key_id: str | None = None, timeout: float = 10.0) -> dict[str, SimEvent]:
        """Skip events until one of each of ``kinds`` (for ``key_id``) has arrived, in any order."""
        deadline = time.monotonic() + timeout
        seen: dict[str, SimEvent] = {}
        while len(seen) < len(kinds):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                missing = [k for k in kinds if k not in seen]
                raise TimeoutError(f"no simulator event {', '.join(missing)} for {key_id} within {timeout}s")
            event = self.queue.get(timeout=remaining)
            if event.kind in kinds and event.kind not in seen and (key_id is None or event.key_id == key_id):
                seen[event.kind] = event
        return seen


def session_to(
    sim: Simulator,
    key: ApiKey,
    *,
    name: str = "s1",
    dialect: Dialect = Dialect.FIXT11,
    session_type: SessionType = SessionType.NR,
    listener: str | None = None,
    heartbeat_interval: int = 30,
    **overrides: object,
) -> SessionConfig:
    """A session config aimed at one of ``sim``'s listeners."""
    if listener is None:
        listener = session_type.value if dialect is Dialect.FIXT11 else FIX44_LISTENER
    fields: dict[str, object] = dict(
        name=name,
        host="127.0.0.1",
        port=sim.ports[listener],
        tls=sim.tls_cert_file is not None,
        tls_ca_file=sim.tls_cert_file,
        dialect=dialect,
        session_type=session_type,
        api_key_id=key.key_id,
        private_key_file=key.private_key_file,
        heartbeat_interval=heartbeat_interval,
        reconnect_interval=1,
        logon=LogonFlags(reset_seq_num=True),
    )
    fields.update(overrides)
    return SessionConfig(**fields)  # type: ignore[arg-type]
