"""The one base of every event the engine publishes. A leaf: it imports nothing from fixengine, so
the pure order book can derive its events from it without an import cycle.

Every event says where and when, and what, in words:

- ``session``: the name (in the config) of the session it concerns;
- ``at``: when the engine learnt it, in UTC;
- ``describe()``: one line for a person, as the README's loop prints it.

Events are frozen, slotted dataclasses: facts, made once and never changed. Like h11's events they
form a closed set: ``fixengine.events`` lists every one of them (and a test checks that nothing
derives from ``Event`` without being listed there). Don't subclass them in user code.

Where ``session`` and ``at`` come from depends on who makes the event; each family declares the two
fields where its callers need them, so that existing positional construction keeps working:

- Session events are made in QuickFIX's callbacks, which know both: ``session`` and ``at`` come
  first (``LoggedOn(session, at, heartbeat_interval)``).
- Events the order entry and reconciliation make in the loop know their session: ``session`` comes
  first, and ``at`` is a keyword defaulting to the moment the event is made (``_StampedNow``).
- Events of the order book know neither. The book is pure (no clock, no I/O), and one book serves
  every session's account, so a report cannot tell it which session it came on. The book makes
  them with ``session=""`` and ``at=UNSTAMPED`` (``_StampedLater``); whoever publishes them
  stamps both with ``stamped``: the order entry, with the session the report arrived on and the
  time its batch was journaled; reconciliation, with the session it ran for. So the events a
  subscriber sees are always stamped; only the book's own return values are not (which keeps the
  book's tests free of clocks).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TypeVar

from fixengine._evolve import evolve

# The ``at`` of a book event not yet stamped by its publisher (a subscriber never sees it).
UNSTAMPED = datetime(1970, 1, 1, tzinfo=timezone.utc)

E = TypeVar("E", bound="Event")


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


class Event:
    """Base of every published event: ``session``, ``at`` and ``describe()``. See the module
    docstring for how each family fills ``session`` and ``at``."""

    __slots__ = ()

    session: str  # the session's name in the config
    at: datetime  # when the engine learnt it (UTC)

    def describe(self) -> str:
        """One line saying what happened, for a person."""
        raise NotImplementedError(f"{type(self).__name__} does not describe itself")


@dataclass(frozen=True, slots=True)
class _StampedNow(Event):
    """The shape of events made in the loop by code that knows their session: ``session`` first,
    ``at`` (keyword) the moment the event is made."""

    session: str
    at: datetime = field(default_factory=utc_now, kw_only=True)


@dataclass(frozen=True, slots=True)
class _StampedLater(Event):
    """The shape of events made by the pure order book: ``session`` and ``at`` (keywords, after the
    event's own fields) are unset until the publisher stamps them (``stamped``)."""

    session: str = field(default="", kw_only=True)
    at: datetime = field(default=UNSTAMPED, kw_only=True)


def stamped(event: E, session: str, at: datetime) -> E:
    """``event`` as published: with the session it concerns and the time the engine learnt it."""
    return evolve(event, session=session, at=at)
