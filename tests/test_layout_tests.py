"""Test modules stand alone, read from the code with ``ast``: none imports another test module or
conftest. What they share lives in ``tests.helpers`` (test-only factories, fakes, waits) and
``conformance.harness`` (the raw FIX client a conformance run reuses), so a test file can be split,
moved or deleted without breaking another, and conftest stays fixtures only.

tests/ is on ``sys.path`` twice over (as the ``tests`` package and, for pytest, as a directory),
so a test module can be reached as ``tests.test_x`` and as ``test_x``: both count. So does an
import in a script a test runs as a subprocess (``python -c`` source kept in a string)."""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def is_test_module(name: str) -> bool:
    """A test module or conftest, named inside the tests package or outside it (tests/ is on sys.path)."""
    parts = name.split(".")
    if parts[0] == "tests":
        parts = parts[1:]
    return bool(parts) and (parts[0] == "conftest" or parts[0].startswith("test_"))


def imported_names(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, module) of every import in ``tree``; ``from tests import x`` imports ``tests.x``."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.module in (None, "tests"):  # the names are modules: ``from tests import test_x``, ``from . import x``
                found += [(node.lineno, f"{node.module or ''}.{alias.name}".lstrip(".")) for alias in node.names]
            else:
                found.append((node.lineno, node.module))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and "import" in node.value:
            try:  # source for a subprocess, e.g. ``python -c WRITER``
                script = ast.parse(textwrap.dedent(node.value))
            except SyntaxError:
                continue
            found += [(node.lineno, name) for _, name in imported_names(script)]
    return found


def imports_of_test_modules(path: Path) -> list[str]:
    """Where ``path`` imports a test module or conftest."""
    tree = ast.parse(path.read_text(), filename=str(path))
    where = path.relative_to(TESTS.parent) if path.is_relative_to(TESTS.parent) else path
    return [f"{where}:{line} imports {name}" for line, name in imported_names(tree) if is_test_module(name)]


def test_no_test_module_imports_another_test_module_or_conftest() -> None:
    found = [problem for path in sorted(TESTS.rglob("*.py")) for problem in imports_of_test_modules(path)]
    assert found == [], "move what is shared into tests/helpers/ or conformance/harness.py:\n" + "\n".join(found)


def test_the_check_sees_every_spelling_of_such_an_import(tmp_path) -> None:
    """The check above would pass on a check that sees nothing: each spelling here must be caught."""
    # {t} stands for "test" and {c} for "conftest", so that this file's own strings are no imports
    spellings = [
        "from tests.{t}_soak import released",
        "from tests.{c} import session_to",
        "import tests.{c}",
        "import tests.{t}_matching as matching",
        "from tests import {t}_reconcile",
        "from tests import {c}",
        "from {c} import make_key",
        "import {t}_order_book",
        "def later():\n    from tests.{t}_order_book import book_order",
        "WRITER = '''\n    from tests.{t}_order_book import book_order\n'''",
    ]
    allowed = ["from tests.helpers.orders import new_order", "from tests import helpers", "import tests.crash_trader",
               "from conformance.harness import RawClient", "import testing_utils"]
    for n, source in enumerate(spellings):
        path = tmp_path / f"caught_{n}.py"
        path.write_text(source.format(t="test", c="conftest") + "\n")
        assert len(imports_of_test_modules(path)) == 1, source
    path = tmp_path / "allowed.py"
    path.write_text("\n".join(allowed) + "\n")
    assert imports_of_test_modules(path) == []
