"""The public API is one namespace, ``fixengine`` (httpx's ``test_exported_members``, here with the
events and errors): its ``__all__`` is sorted and complete, every event and every error is in it,
every error is defined in ``fixengine.errors``, and the README's examples import only from it."""

from __future__ import annotations

import ast
import re
import types
from pathlib import Path

import fixengine
from fixengine import Event, FixEngineError
from fixengine.session.application import ApplicationMessage, LogonUnanswered
from tests.helpers.package import public_classes_of_fixengine

README = Path(__file__).resolve().parent.parent / "README.md"
# Handed from QuickFIX's thread to the engine's loop and consumed there: never published.
INTERNAL_EVENTS = {ApplicationMessage, LogonUnanswered}


def test_all_is_sorted() -> None:
    assert fixengine.__all__ == sorted(fixengine.__all__)


def test_all_lists_exactly_the_public_names() -> None:
    """Every name in ``__all__`` resolves, and every public name (but the submodules) is in it."""
    assert [name for name in fixengine.__all__ if not hasattr(fixengine, name)] == []
    public = {
        name for name, value in vars(fixengine).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public == set(fixengine.__all__)


def test_every_event_and_every_error_is_exported() -> None:
    exported = {getattr(fixengine, name) for name in fixengine.__all__}
    missing = [
        c.__qualname__ for c in public_classes_of_fixengine()
        if issubclass(c, (Event, FixEngineError)) and c not in exported and c not in INTERNAL_EVENTS
    ]
    assert missing == []


def test_every_error_is_defined_in_fixengine_errors_and_named_so() -> None:
    errors = [c for c in public_classes_of_fixengine() if issubclass(c, FixEngineError)]
    assert {c.__module__ for c in errors} == {"fixengine.errors"}
    assert [c.__name__ for c in errors if not c.__name__.endswith("Error")] == []


def readme_imports() -> list[tuple[str, str]]:
    """``(module, name)`` for every import of fixengine in the README's ```python blocks."""
    found = []
    for block in re.findall(r"```python\n(.*?)```", README.read_text(), re.DOTALL):
        tree = compile(block, "README.md", "exec", ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "fixengine":
                found.extend((node.module or "", alias.name) for alias in node.names)
            elif isinstance(node, ast.Import):
                found.extend((alias.name, "") for alias in node.names if alias.name.split(".")[0] == "fixengine")
    return found


def test_the_readme_examples_import_only_from_fixengine() -> None:
    imports = readme_imports()
    assert imports, "the README's examples import fixengine"
    assert [f"{module} {name}" for module, name in imports if module != "fixengine"] == []
    assert [name for _, name in imports if name not in fixengine.__all__] == []
