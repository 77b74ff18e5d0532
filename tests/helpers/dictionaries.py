"""The merged QuickFIX dictionaries, loaded the way the engine loads them, for validating messages."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import quickfix as fix

from fixengine.fix.dialect import Dialect
from fixengine.fix.dictionary import build_dictionaries


def load_dictionaries(directory_for: Callable[[str], Path]) -> dict[Dialect, tuple[fix.DataDictionary, fix.DataDictionary]]:
    """(session, application) dictionaries per dialect, each built in ``directory_for(dialect.value)``."""
    out = {}
    for dialect in Dialect:
        paths = build_dictionaries(dialect, directory_for(dialect.value))
        out[dialect] = (fix.DataDictionary(str(paths.session)), fix.DataDictionary(str(paths.application)))
    return out
