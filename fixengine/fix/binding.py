"""The ``quickfix`` module without its 6,097 field classes until one is asked for.

The bindings' Python module defines one class per FIX field (``quickfix.Account``, ``ClOrdID`` ...):
importing it costs about 140 MB of heap, most of what an engine or simulator process holds. This
project names a handful of them. ``install()`` (run by ``import fixengine``, before anything imports
``quickfix``) reads the installed module's source, leaves the field classes out, runs the rest as
the module ``quickfix``, and makes a field class the first time one is named (PEP 562
``__getattr__``), exactly as the source defines it: a subclass of its field type whose ``__init__``
passes the tag. Everything else (sessions, messages, stores, the application base class, the
exceptions) is the module's own code, unchanged.

If the source is not what this expects (another build of the bindings), nothing is changed and
``import quickfix`` loads the whole module as usual.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from types import ModuleType
from typing import Any

# "class Account(quickfix.StringField):" and, in its __init__, "...Field.__init__(self, 1)"
_FIELD_CLASS = re.compile(r"^class (\w+)\(quickfix\.(\w+Field)\):\n((?:[ \t]+.*\n|\n)*)", re.MULTILINE)
_TAG = re.compile(r"__init__\(self, (\d+)\)")


def _field_class(module: ModuleType, name: str, base_name: str, tag: int) -> type:
    base: Any = getattr(module, base_name)

    def __init__(self: Any, data: Any = None) -> None:
        if data is None:
            base.__init__(self, tag)
        else:
            base.__init__(self, tag, data)

    return type(name, (base,), {"__init__": __init__, "__module__": "quickfix"})


def install() -> None:
    """Make ``import quickfix`` give the lean module (once per process; a no-op if it is already
    imported, or if the installed source is not the shape expected)."""
    if "quickfix" in sys.modules:
        return
    spec = importlib.util.find_spec("quickfix")
    if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
        return
    with open(spec.origin, encoding="utf-8") as f:
        source = f.read()
    fields: dict[str, tuple[str, int]] = {}

    def leave_out(match: re.Match[str]) -> str:
        tag = _TAG.search(match.group(3))
        if tag is None:
            return match.group(0)  # not a plain field class: kept as written
        fields[match.group(1)] = (match.group(2), int(tag.group(1)))
        return ""

    lean = _FIELD_CLASS.sub(leave_out, source)
    if len(fields) < 1000:  # not the module this was written for: leave it alone
        return
    module = importlib.util.module_from_spec(spec)

    def __getattr__(name: str) -> type:
        found = fields.get(name)
        if found is None:
            raise AttributeError(f"module 'quickfix' has no attribute {name!r}")
        cls = _field_class(module, name, *found)
        setattr(module, name, cls)
        return cls

    sys.modules["quickfix"] = module  # the source names itself ("quickfix.StringField")
    try:
        exec(compile(lean, spec.origin, "exec"), module.__dict__)  # noqa: S102 - the installed bindings' own code
    except BaseException:
        del sys.modules["quickfix"]
        raise
    module.__getattr__ = __getattr__  # type: ignore[method-assign]
