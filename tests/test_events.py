"""Every event the engine publishes is one type, ``fixengine.Event``: it names its session, says
when, and describes itself. The README's loop, ``print(event.session, event.describe())`` over
``engine.events()``, must work whatever arrives, so this builds every kind of event there is (from
its type hints, with hypothesis) and runs the loop's body on it."""

from __future__ import annotations

import dataclasses
import inspect
import types
import typing
from datetime import datetime, timezone
from decimal import Decimal
from enum import Enum

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fixengine
import fixengine.events
from fixengine.events import AnyEvent, Event, OrderEvent, SessionEvent
from fixengine.session.application import ApplicationMessage, LogonUnanswered
from tests.helpers.package import public_classes_of_fixengine

# Handed from QuickFIX's thread to the engine's loop and consumed there: never published.
INTERNAL = {ApplicationMessage, LogonUnanswered}
BASES = {Event, SessionEvent, OrderEvent}

EXPORTED = {getattr(fixengine.events, name) for name in fixengine.events.__all__}
EVENTS = sorted(
    (c for c in EXPORTED if inspect.isclass(c) and issubclass(c, Event) and c not in BASES), key=lambda c: c.__name__
)


# --- building any event from its type hints ----------------------------------------------------

SIMPLE: dict[object, st.SearchStrategy] = {
    str: st.text(max_size=12),
    int: st.integers(-1, 10**6),
    float: st.floats(0, 1e6),
    bool: st.booleans(),
    Decimal: st.decimals(-1000, 1000, places=2),
    datetime: st.datetimes(timezones=st.just(timezone.utc)),
    type(None): st.none(),
}


def strategy(tp: object) -> st.SearchStrategy:
    """Values of ``tp``: the simple types above, unions, lists, enums and dataclasses of them."""
    if tp in SIMPLE:
        return SIMPLE[tp]
    origin = typing.get_origin(tp)
    if origin in (types.UnionType, typing.Union):
        return st.one_of([strategy(arg) for arg in typing.get_args(tp)])
    if origin is list:
        return st.lists(strategy(typing.get_args(tp)[0]), max_size=3)
    if inspect.isclass(tp) and issubclass(tp, Enum):
        return st.sampled_from(tp)
    if inspect.isclass(tp) and dataclasses.is_dataclass(tp):
        hints = typing.get_type_hints(tp)
        fields = {f.name: strategy(hints[f.name]) for f in dataclasses.fields(tp) if f.init}
        return st.builds(tp, **fields)
    raise TypeError(f"no strategy for {tp!r}: add one to SIMPLE")


# --- the tests ----------------------------------------------------------------------------------


def test_every_event_in_fixengine_is_exported_by_fixengine_events() -> None:
    events = {c for c in public_classes_of_fixengine() if issubclass(c, Event)}
    missing = sorted(c.__qualname__ for c in events - INTERNAL - EXPORTED)
    assert not missing, f"events not listed in fixengine.events: {missing}"
    assert not INTERNAL & EXPORTED, "internal events are never published"


def test_any_event_is_exactly_the_concrete_events() -> None:
    assert set(typing.get_args(AnyEvent)) == set(EVENTS)


@pytest.mark.parametrize("cls", EVENTS, ids=lambda c: c.__name__)
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_every_event_names_its_session_says_when_and_describes_itself(cls: type[Event], data: st.DataObject) -> None:
    event = data.draw(strategy(cls))
    assert isinstance(event, Event)
    line = f"{event.session} {event.describe()}"  # the README's loop
    assert isinstance(event.session, str) and isinstance(event.at, datetime)
    assert isinstance(event.describe(), str) and event.describe().strip(), line
    # a fact, made once: frozen and slotted like the rest
    assert dataclasses.is_dataclass(event) and not hasattr(event, "__dict__")
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.session = "other"  # type: ignore[misc]
