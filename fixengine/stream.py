"""The engine's event stream: every event in the order it happened, to each subscriber."""

from __future__ import annotations

import asyncio
from typing import TypeVar

from fixengine.events import Event

E = TypeVar("E")


class EventStream:
    """Events in the order they happened; an async iterator with waiting helpers."""

    def __init__(self, subscribers: list[asyncio.Queue[Event]]):
        self._queue: asyncio.Queue[Event] = asyncio.Queue()
        self._subscribers = subscribers
        subscribers.append(self._queue)

    def __aiter__(self) -> "EventStream":
        return self

    async def __anext__(self) -> Event:
        return await self._queue.get()

    async def next(self, timeout: float | None = None) -> Event:
        """The next event; ``TimeoutError`` if none comes within ``timeout`` seconds."""
        return await asyncio.wait_for(self._queue.get(), timeout)

    async def wait_for(
        self, kind: type[E], session: str | None = None, timeout: float = 15.0
    ) -> E:
        """Skip events until one of type ``kind`` (for ``session``, if given) arrives."""

        async def wait() -> E:
            while True:
                event = await self._queue.get()
                if isinstance(event, kind) and (session is None or getattr(event, "session", None) == session):
                    return event

        return await asyncio.wait_for(wait(), timeout)

    def drain(self) -> list[Event]:
        """The events already delivered and not yet read, without waiting."""
        out = []
        while not self._queue.empty():
            out.append(self._queue.get_nowait())
        return out

    def close(self) -> None:
        if self._queue in self._subscribers:
            self._subscribers.remove(self._queue)
