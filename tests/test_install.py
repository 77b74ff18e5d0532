"""What scripts/bootstrap leaves in the venv that the engine's footprint depends on."""

from __future__ import annotations

import importlib.util
import os


def test_the_bindings_python_module_is_byte_compiled() -> None:
    """quickfix.py is 52,000 lines: a process that compiles it at import (no current .pyc) keeps
    ~110 MB more RSS and spends ~0.4 s doing so. scripts/bootstrap compiles it."""
    spec = importlib.util.find_spec("quickfix")
    assert spec is not None and spec.origin is not None
    cached = importlib.util.cache_from_source(spec.origin)
    assert os.path.exists(cached), f"{cached} is missing: run scripts/bootstrap"
    assert os.path.getmtime(cached) >= os.path.getmtime(spec.origin)
