"""One TCP connection to an acceptor under test, framed as QuickFIX's Ruby harness frames what it
reads (``FixParser.rb``): up to ``9=``, the length up to SOH, that many bytes of body, the CheckSum up
to SOH. Every wait has a deadline, where upstream would hang."""

from __future__ import annotations

import socket
import time

_SOH = b"\x01"


class StepError(Exception):
    """A read went wrong; ``received`` is what the connection produced, if anything."""

    def __init__(self, reason: str, received: bytes | None = None):
        super().__init__(reason)
        self.reason = reason
        self.received = received


class Connection:
    def __init__(self, host: str, port: int, timeout: float):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout = timeout
        self.buffer = bytearray()
        self.closed_by_peer = False

    def send(self, data: bytes) -> None:
        self.sock.settimeout(self.timeout)
        self.sock.sendall(data)

    def close(self, linger: float = 0.0) -> None:
        """Close our side. With ``linger``, first say so (FIN) and wait up to that long for the
        acceptor to close its own: then it has seen the disconnection, and a next scenario's Logon
        will not meet this session still connected."""
        if linger > 0 and not self.closed_by_peer:
            deadline = time.monotonic() + linger
            try:
                self.sock.shutdown(socket.SHUT_WR)
                while self._fill(deadline):
                    pass
            except (TimeoutError, OSError):
                pass  # it did not close in time (or is gone already): ours closes anyway
        self.sock.close()

    def _fill(self, deadline: float) -> bool:
        """Read what is there (waiting until ``deadline``); False when the peer has closed."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except (ConnectionResetError, ConnectionAbortedError):
            chunk = b""
        if not chunk:
            self.closed_by_peer = True
            return False
        self.buffer += chunk
        return True

    def _until(self, marker: bytes, start: int, deadline: float) -> int:
        """Index just past ``marker`` in the buffer (searched from ``start``), reading as needed."""
        while (found := self.buffer.find(marker, start)) < 0:
            if self.closed_by_peer or not self._fill(deadline):
                raise StepError("disconnected, expected data", bytes(self.buffer) or None)
        return found + len(marker)

    def read_message(self, timeout: float) -> bytes:
        """The next complete message."""
        deadline = time.monotonic() + timeout
        try:
            after_tag = self._until(b"\x019=", 0, deadline)
            after_length = self._until(_SOH, after_tag, deadline)
            length = bytes(self.buffer[after_tag: after_length - 1])
            if not length.isdigit():
                raise StepError(f"BodyLength {length!r} is not a number", bytes(self.buffer))
            end_of_body = after_length + int(length)
            while len(self.buffer) < end_of_body:
                if self.closed_by_peer or not self._fill(deadline):
                    raise StepError("disconnected in the middle of a message", bytes(self.buffer))
            end = self._until(_SOH, end_of_body, deadline)
        except TimeoutError:
            partial = bytes(self.buffer) or None
            raise StepError(f"no complete message within {timeout:g} s", partial) from None
        message = bytes(self.buffer[:end])
        del self.buffer[:end]
        return message

    def wait_closed(self, timeout: float) -> None:
        """Return when the acceptor closes the connection; fail if data comes first or nothing
        happens within ``timeout``."""
        if self.buffer:
            raise StepError("expected disconnection, got data", bytes(self.buffer))
        if self.closed_by_peer:
            return
        deadline = time.monotonic() + timeout
        try:
            if self._fill(deadline):
                raise StepError("expected disconnection, got data", bytes(self.buffer))
        except TimeoutError:
            raise StepError(f"connection still open after {timeout:g} s, expected disconnection") from None
