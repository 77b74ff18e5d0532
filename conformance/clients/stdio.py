"""The client's side of the instruction protocol (``conformance.instructions``): instructions read
from standard input, one JSON line each, handed to a handler one at a time, in order; its answer
written to standard output as one JSON line. Nothing else reaches standard output: ``claim_stdout``
moves file descriptor 1 onto standard error, so a library that prints cannot corrupt the protocol.

    async def handle(instruction: Instruction) -> dict[str, object]: ...   # extra answer fields
    await serve(handle, stop)     # until stdin ends or ``stop`` is set (SIGTERM, SIGINT)

A handler refuses by raising: the answer is ``ok: false`` with the exception's text. ``Refused``
and the exception types ``serve`` is given are expected refusals; any other is also logged with its
traceback (a bug in the client, still answered).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import IO, Any

from pydantic import ValidationError

from conformance.instructions import Instruction

log = logging.getLogger("conformance.client")

Handler = Callable[[Instruction], Awaitable[dict[str, Any]]]
_EOF = None


class Refused(Exception):
    """The client will not do what the instruction asks; the text says why."""


def claim_stdout() -> IO[str]:
    """A private copy of standard output for answers; fd 1 (and ``sys.stdout``) then go to stderr."""
    answers = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return answers


def stop_on_signals(stop: asyncio.Event) -> None:
    """SIGTERM and SIGINT set ``stop`` (the runner stops a client with SIGTERM)."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)


def _json_default(value: object) -> str:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


def answer_line(instruction_id: str, ok: bool, fields: dict[str, Any]) -> str:
    return json.dumps({"id": instruction_id, "ok": ok, **fields}, default=_json_default, separators=(",", ":"))


def _read_stdin(loop: asyncio.AbstractEventLoop, lines: asyncio.Queue[str | None]) -> None:
    # os.read on the descriptor, not sys.stdin: a daemon thread blocked inside a buffered reader can
    # abort the interpreter's shutdown on its lock.
    def put(line: str | None) -> None:
        loop.call_soon_threadsafe(lines.put_nowait, line)

    pending = b""
    try:
        while chunk := _read_some():
            pending += chunk
            *complete, pending = pending.split(b"\n")
            for line in complete:
                put(line.decode("utf-8", "replace"))
        if pending.strip():
            put(pending.decode("utf-8", "replace"))
        put(_EOF)
    except RuntimeError:  # the loop is closed: the client is stopping anyway
        return


def _read_some() -> bytes:
    try:
        return os.read(0, 65536)
    except OSError:
        return b""


async def _answer(handle: Handler, line: str, expected: tuple[type[Exception], ...]) -> str | None:
    try:
        instruction = Instruction.model_validate_json(line)
    except ValidationError as exc:
        try:
            data = json.loads(line)
        except ValueError:
            data = None
        if isinstance(data, dict) and isinstance(data.get("id"), str):
            return answer_line(data["id"], False, {"error": f"not an instruction: {exc.errors()[0]['msg']}"})
        log.warning("ignored a line that is not an instruction: %.200s", line)
        return None
    try:
        return answer_line(instruction.id, True, await handle(instruction))
    except Exception as exc:  # noqa: BLE001 - every failure is an answer, never the end of the client
        text = str(exc) or type(exc).__name__
        if isinstance(exc, (Refused, *expected)):
            log.info("instruction %s (%s) refused: %s", instruction.id, instruction.action, text)
        else:
            log.exception("instruction %s (%s) failed", instruction.id, instruction.action)
        return answer_line(instruction.id, False, {"error": text})


async def serve(handle: Handler, stop: asyncio.Event, answers: IO[str],
                expected: tuple[type[Exception], ...] = ()) -> None:
    """Answer instructions until standard input ends or ``stop`` is set; ``expected``: exception
    types that are refusals, not failures."""
    loop = asyncio.get_running_loop()
    lines: asyncio.Queue[str | None] = asyncio.Queue()
    threading.Thread(target=_read_stdin, args=(loop, lines), name="instructions", daemon=True).start()
    stopped = asyncio.ensure_future(stop.wait())
    try:
        while True:
            next_line = asyncio.ensure_future(lines.get())
            await asyncio.wait({next_line, stopped}, return_when=asyncio.FIRST_COMPLETED)
            if not next_line.done():
                next_line.cancel()
                return
            line = next_line.result()
            if line is _EOF:
                log.info("standard input closed: stopping")
                return
            if not line.strip():
                continue
            answering = asyncio.ensure_future(_answer(handle, line, expected))
            await asyncio.wait({answering, stopped}, return_when=asyncio.FIRST_COMPLETED)
            if not answering.done():  # stopped while an instruction waits (for a logon, say): unanswered
                answering.cancel()
                return
            answer = answering.result()
            if answer is not None:
                answers.write(answer + "\n")
                answers.flush()
    finally:
        stopped.cancel()
