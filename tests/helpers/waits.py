"""Waits on a running engine's session ``s1`` through faults: used by the soak and by the crash
test's trader process alike."""

from __future__ import annotations

import contextlib
import time

from fixengine.engine import Engine
from fixengine.errors import LogonRefusedError, SessionUnavailableError
from fixengine.orders.entry import BookReleased


async def logged_on_again(engine: Engine, timeout: float) -> None:
    """Wait for the session to log on again, through refused Logons (the engine retries them)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await engine.wait_logged_on(timeout=max(0.1, deadline - time.monotonic()))
        except LogonRefusedError:
            if time.monotonic() >= deadline:
                raise


async def caught_up(engine: Engine) -> None:
    """A TestRequest answered: every report the exchange sent before its Heartbeat is applied (an
    order nothing waits for may still have one on the way, e.g. a self-trade cancel)."""
    for attempt in range(3):
        try:
            await engine.test_request("s1", timeout=5)
            return
        except SessionUnavailableError:  # on RT, one sent during a resend can be gap-filled away
            if attempt == 2:
                raise


async def released(engine: Engine, timeout: float) -> None:
    """Wait until reconciliation has released the held book (new orders accepted again)."""
    events = engine.events()
    try:
        deadline = time.monotonic() + timeout
        while engine.is_book_held("s1") and time.monotonic() < deadline:
            with contextlib.suppress(TimeoutError):
                await events.wait_for(BookReleased, timeout=1.0)
    finally:
        events.close()
