"""``evolve(snapshot, **changes)``: ``dataclasses.replace`` for the frozen, slotted snapshots made on
every report (the book's ``Order``), about three times as fast.

``dataclasses.replace`` walks ``fields()``, builds a dict of every field and calls ``__init__``,
which for a frozen class sets each field through ``object.__setattr__``: ~15 µs for an ``Order``,
several times per order. Here each class gets, once, a function written for its fields that copies
them straight into a new instance (``__init__`` is not called: these classes have no
``__post_init__``, and every field is an init field, which ``_copier`` checks).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

_COPIERS: dict[type, Callable[[Any, dict[str, Any]], Any]] = {}


def evolve(snapshot: T, **changes: Any) -> T:
    """A copy of ``snapshot`` with ``changes``; ``TypeError`` for a name that is not a field."""
    cls = type(snapshot)
    copier = _COPIERS.get(cls)
    if copier is None:
        copier = _COPIERS[cls] = _copier(cls)
    return copier(snapshot, changes)  # type: ignore[no-any-return]


def _copier(cls: type) -> Callable[[Any, dict[str, Any]], Any]:
    fields = dataclasses.fields(cls)
    params = getattr(cls, "__dataclass_params__", None)
    if params is None or not params.frozen or "__slots__" not in cls.__dict__ or hasattr(cls, "__post_init__") \
            or not all(f.init for f in fields):
        raise TypeError(f"evolve needs a frozen, slotted dataclass with init fields only and no __post_init__: {cls}")
    names = tuple(f.name for f in fields)
    body = "\n".join(f"    set_(new, {n!r}, get({n!r}, old.{n}))" for n in names)
    source = (f"def copy(old, changes):\n"
              f"    if not changes.keys() <= names:\n"
              f"        raise TypeError(f'{cls.__name__} has no field {{sorted(changes.keys() - names)}}')\n"
              f"    new = new_(cls)\n"
              f"    get = changes.get\n"
              f"{body}\n"
              f"    return new\n")
    scope: dict[str, Any] = {"cls": cls, "new_": object.__new__, "set_": object.__setattr__, "names": frozenset(names)}
    exec(source, scope)  # noqa: S102 - generated from the class's own field names, as dataclasses does
    return scope["copy"]  # type: ignore[no-any-return]
