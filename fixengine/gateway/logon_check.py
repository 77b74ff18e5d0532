"""Who may log on as an OMS client: the gate's decision on a first message, pure (no I/O, the
clock passed in), so that every rule is tested without a socket.

A Logon is matched to a configured client by its CompIDs and the port it came in on, then checked
in this order: the address is not locked out (a locked-out address is refused without looking at
anything else, its password least of all), the address is in the client's allow-list, the password
(554) is the client's. Every refusal is counted against the address; ``failed_logon_limit`` of
them within ``lockout`` seconds lock it out for ``lockout`` seconds. An admitted Logon clears the
address's count.

What the OMS reads (``Refused.text``) says no more than it may know: "bad credentials" for a wrong
password and an address not allowed alike, and nothing at all for CompIDs no client has (the
connection is closed without a word, as QuickFIX does for a session it does not know). The precise
reason (``Refused.reason``) is for the local log only, and never holds a password.
"""

from __future__ import annotations

import collections
import hmac
import ipaddress
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from fixengine.config import OmsClientConfig
from fixengine.fix.tags import SENDER_COMP_ID, TARGET_COMP_ID

PASSWORD = 554  # Password, on a FIX 4.4 Logon
BAD_CREDENTIALS = "logon refused: bad credentials"
# Addresses whose refusals are remembered; past this the oldest are forgotten, so that Logons
# from ever new addresses cannot grow the gateway's memory without end.
MAX_TRACKED_ADDRESSES = 10_000

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class Admitted:
    client: str  # the [[oms_client]] name


@dataclass(frozen=True, slots=True)
class Refused:
    text: str  # the Logout's Text (58), for the OMS
    reason: str  # the precise reason, for the local log
    answer: bool = True  # False: close without a Logout (CompIDs no client has, as QuickFIX does)


Decision = Admitted | Refused


@dataclass(frozen=True, slots=True)
class _Client:
    name: str
    password: bytes | None
    networks: tuple[IpNetwork, ...]  # empty: any address


@dataclass(slots=True)
class _Failures:
    times: collections.deque[float]  # refusals within the window, oldest first
    locked_until: float = -math.inf


def address_of(text: str) -> IpAddress | None:
    """A peer address as the allow-list compares it: an IPv4 address seen through an IPv6 socket
    (``::ffff:10.0.0.1``) is that IPv4 address. None if ``text`` is no IP address."""
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class LogonCheck:
    """The clients the gate admits and the refusals it remembers. ``passwords`` maps a client's
    name to its password (read from its ``password_file``), or None where none is asked."""

    def __init__(self, *, failed_logon_limit: int, lockout: float, max_tracked: int = MAX_TRACKED_ADDRESSES):
        self._limit, self._lockout, self._max_tracked = failed_logon_limit, lockout, max_tracked
        self._clients: dict[tuple[str, str, int], _Client] = {}  # (SenderCompID, TargetCompID, port)
        self._failures: dict[str, _Failures] = {}  # by address, least recently refused first

    def serve(self, clients: Iterable[OmsClientConfig], passwords: Mapping[str, str | None]) -> None:
        """Admit these clients from now on (added, or changed by a reload), with their passwords."""
        for c in clients:
            password = passwords.get(c.name)
            networks = tuple(ipaddress.ip_network(a, strict=False) for a in c.allowed_addresses)
            key = (c.sender_comp_id, c.target_comp_id, c.port)
            self._clients[key] = _Client(c.name, None if password is None else password.encode(), networks)

    def password(self, client: str) -> str | None:
        """The password ``client`` is admitted with now (None: none asked, or no such client)."""
        for c in self._clients.values():
            if c.name == client and c.password is not None:
                return c.password.decode()
        return None

    def decide(self, fields: Mapping[int, str], port: int, peer: str, now: float) -> Decision:
        """Admit or refuse the Logon ``fields`` (tag -> first value) that came in on ``port`` from
        the address ``peer``, at ``now`` (seconds, monotonic)."""
        key = peer
        address = address_of(peer)
        if address is not None:
            key = str(address)
        failures = self._failures.get(key)
        if failures is not None and now < failures.locked_until:
            left = math.ceil(failures.locked_until - now)
            return Refused(f"locked out for {left} s", f"{key} is locked out for {left} s more "
                                                      f"({self._limit} refused Logons); not checked")
        sender, target = fields.get(SENDER_COMP_ID, ""), fields.get(TARGET_COMP_ID, "")
        client = self._clients.get((sender, target, port))
        if client is None:
            return self._refuse(key, now, Refused("", f"no client {sender!r} -> {target!r} on port {port}", answer=False))
        who = f"client {client.name} ({sender} -> {target})"
        if client.networks and (address is None or not any(address in n for n in client.networks)):
            return self._refuse(key, now, Refused(BAD_CREDENTIALS, f"{who}: address {key} is not in its allowed_addresses"))
        if client.password is not None:
            given = fields.get(PASSWORD)
            if given is None:
                return self._refuse(key, now, Refused(BAD_CREDENTIALS, f"{who}: no Password (554) on the Logon"))
            if not hmac.compare_digest(given.encode(), client.password):
                return self._refuse(key, now, Refused(BAD_CREDENTIALS, f"{who}: wrong Password (554)"))
        self._failures.pop(key, None)
        return Admitted(client.name)

    def _refuse(self, key: str, now: float, refused: Refused) -> Refused:
        failures = self._failures.pop(key, None)  # re-inserted last: the dict stays least recent first
        if failures is None:
            failures = _Failures(collections.deque())
            self._forget_oldest(now)
        window_start = now - self._lockout
        while failures.times and failures.times[0] <= window_start:
            failures.times.popleft()
        failures.times.append(now)
        self._failures[key] = failures
        if len(failures.times) < self._limit:
            return refused
        failures.times.clear()
        failures.locked_until = now + self._lockout
        return Refused(refused.text, f"{refused.reason}; {key} is now locked out for {self._lockout:g} s "
                                     f"({self._limit} refused Logons within {self._lockout:g} s)", refused.answer)

    def _forget_oldest(self, now: float) -> None:
        """Make room for one more address: drop those with nothing left to remember, then (an
        address flood) the least recently refused."""
        if len(self._failures) < self._max_tracked:
            return
        window_start = now - self._lockout
        for key in [k for k, f in self._failures.items()
                    if f.locked_until <= now and (not f.times or f.times[-1] <= window_start)]:
            del self._failures[key]
        while len(self._failures) >= self._max_tracked:
            del self._failures[next(iter(self._failures))]

    @property
    def tracked_addresses(self) -> int:
        """Addresses whose refusals are remembered now (at most ``max_tracked``)."""
        return len(self._failures)

    def locked_out(self, peer: str, now: float) -> bool:
        address = address_of(peer)
        failures = self._failures.get(str(address) if address is not None else peer)
        return failures is not None and now < failures.locked_until
