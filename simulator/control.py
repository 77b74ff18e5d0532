"""The simulator's control port: fault injection from outside the process (a shell, another program).

Newline-delimited JSON over TCP on 127.0.0.1, one request per line, one answer per line:

    {"fault": "drop_outbound", "key_id": "...", "count": 3}   ->  {"ok": true}
    {"fault": "sequence_reset", "key_id": "..."}              ->  {"ok": true, "result": 11}
    {"fault": "go_silent", "key_id": "nobody"}                ->  {"ok": false, "error": "unknown API key ..."}

"fault" names a ``FaultController`` method (``FAULTS``); the other members are its keyword arguments.
Served on the gates' asyncio loop; each request runs on a worker thread, since sequence_reset calls
into QuickFIX and must not stall the relays.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
from typing import Any

from simulator.faults import FaultController, FaultError

log = logging.getLogger("simulator.control")

FAULTS = (
    "drop_outbound", "duplicate_next", "garble_next", "bad_checksum_next", "go_silent", "close", "delay",
    "clear", "sequence_reset", "refuse_next_logon", "skew_clock", "rate_limit",
    "shorten_retention", "wait_spent", "refuse_next_event_resend", "test_request", "forget_inbound",
    "reject_next_order", "unavailable_next_order", "session_reject_next_order", "business_reject_next_order",
    "drift_next_order",
)
_MAX_LINE = 1 << 16


def answer(faults: FaultController, line: bytes) -> dict[str, Any]:
    """The answer to one request line."""
    try:
        request = json.loads(line)
    except ValueError as exc:  # also bad UTF-8
        return _error(f"not JSON: {exc}")
    if not isinstance(request, dict) or not isinstance(request.get("fault"), str):
        return _error('a request is a JSON object whose "fault" is one of: ' + ", ".join(FAULTS))
    name = request.pop("fault")
    if name not in FAULTS:
        return _error(f"unknown fault {name!r}; one of: {', '.join(FAULTS)}")
    method = getattr(faults, name)
    try:
        inspect.signature(method).bind(**request)
    except TypeError as exc:
        return _error(f"{name}: {exc}")
    try:
        result = method(**request)
    except FaultError as exc:
        return _error(str(exc))
    except Exception as exc:  # noqa: BLE001 - a bug must not cost the caller its answer
        log.exception("control: %s failed", name)
        return _error(f"{name} failed: {exc}")
    return {"ok": True} if result is None else {"ok": True, "result": result}


def _error(text: str) -> dict[str, Any]:
    return {"ok": False, "error": text}


class ControlServer:
    """The control port's listener and its connections (closed with the simulator)."""

    def __init__(self, faults: FaultController):
        self._faults = faults
        self._server: asyncio.base_events.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    async def start(self, port: int) -> int:
        """Listen on 127.0.0.1 only (anyone who reaches the port can break sessions); port 0 picks one."""
        self._server = await asyncio.start_server(self._on_connect, "127.0.0.1", port, limit=_MAX_LINE)
        return self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        if self._connections:
            await asyncio.wait(list(self._connections), timeout=5)
        if self._server is not None:
            await self._server.wait_closed()

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            while line := await reader.readline():
                if not line.strip():
                    continue
                reply = await asyncio.to_thread(answer, self._faults, line)
                log.info("control: %s -> %s", line.strip()[:200], reply)
                writer.write(json.dumps(reply).encode() + b"\n")
                await writer.drain()
        except ValueError:  # a line longer than the limit
            writer.write(json.dumps(_error(f"request longer than {_MAX_LINE} bytes")).encode() + b"\n")
        except (ConnectionError, asyncio.CancelledError):  # cancelled: closed with the simulator
            pass
        finally:
            self._connections.discard(task)
            writer.close()
