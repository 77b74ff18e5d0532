"""The layering of the house, read from the code with ``ast``: the product (``fixengine``) never
imports the simulator or the conformance tool, and no modules import each other in a circle.

Every import counts, at the top of a module or inside a function: a lazy import is still an edge,
only a later one. The one way from the product to the simulator is the CLI's ``_simulator()``,
which looks a module up at run time and says what to install when it is missing."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("fixengine", "simulator", "conformance")
PRODUCT_MUST_NOT_IMPORT = ("simulator", "conformance")
RUNTIME_REACH_ALLOWED = {"fixengine.cli"}  # the CLI's _simulator(): importlib, with a clear message


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            found[module_name(path)] = path
    return found


def imported_names(path: Path, name: str) -> list[str]:
    """Every module name this file imports, absolute or relative, anywhere in it."""
    tree = ast.parse(path.read_text(), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names.append(base)
            names.extend(f"{base}.{alias.name}" for alias in node.names)  # `from pkg import module`
    return names


def runtime_imports(path: Path) -> list[str]:
    """The leading text of every importlib.import_module(...) / __import__(...) argument."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Call) and node.args:
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if called in ("import_module", "__import__"):
                arg = node.args[0]
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    found.append(arg.value)
                elif isinstance(arg, ast.JoinedStr) and arg.values and isinstance(arg.values[0], ast.Constant):
                    found.append(str(arg.values[0].value))
    return found


def graph(mods: dict[str, Path]) -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for name, path in mods.items():
        edges[name] = {n for n in imported_names(path, name) if n in mods and n != name}
    return edges


def forbidden_edges(mods: dict[str, Path]) -> list[str]:
    bad = []
    for name, path in mods.items():
        if name.split(".")[0] != "fixengine":
            continue
        for target in sorted(imported_names(path, name)):
            if target.split(".")[0] in PRODUCT_MUST_NOT_IMPORT:
                bad.append(f"{name} imports {target}")
        for target in runtime_imports(path):
            if target.split(".")[0] in PRODUCT_MUST_NOT_IMPORT and name not in RUNTIME_REACH_ALLOWED:
                bad.append(f"{name} looks up {target} at run time")
    return sorted(set(bad))


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def without_package_faces(edges: dict[str, set[str]]) -> dict[str, set[str]]:
    """A package's ``__init__`` that only re-exports its own submodules is its face, not a module
    that the submodules depend on: an edge from a submodule to its own package's face is dropped."""
    return {
        name: {t for t in targets if not (name.startswith(t + ".") and t in edges)}
        for name, targets in edges.items()
    }


def test_the_product_never_imports_the_simulator_or_the_conformance_tool() -> None:
    assert forbidden_edges(modules()) == []


def test_no_modules_import_each_other_in_a_circle() -> None:
    assert circles(without_package_faces(graph(modules()))) == []


@pytest.mark.parametrize(
    "line",
    [
        "import simulator",
        "from simulator.server import Simulator",
        "from simulator import server",
        "import conformance.harness",
        "def f():\n    import simulator.config\n",
        "import importlib\nimportlib.import_module('simulator.demo')\n",
    ],
)
def test_the_layer_check_sees_a_forbidden_import_wherever_it_is_written(tmp_path, line) -> None:
    """The check must fail when someone adds such an import: a module planted in the product's
    list (its file kept outside the tree) proves it."""
    planted = tmp_path / "planted.py"
    planted.write_text(line + "\n")
    assert forbidden_edges(modules() | {"fixengine.planted": planted}) != []


def test_the_circle_check_sees_a_circle() -> None:
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_without_the_simulator_the_cli_says_what_to_install() -> None:
    """A production install has no simulator (no FastAPI, no uvicorn): ``fixengine demo`` names the
    extra to install instead of a traceback. Blocking the package in a child process stands in."""
    import subprocess
    import sys

    blocked = (
        "import sys; sys.modules['simulator'] = None\n"  # any import of it now raises ModuleNotFoundError
        "sys.argv = ['fixengine', 'demo']\n"
        "from fixengine.cli import main; main()\n"
    )
    done = subprocess.run([sys.executable, "-c", blocked], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 1
    assert "pip install 'fixengine[simulator]'" in done.stderr
    assert "Traceback" not in done.stderr
