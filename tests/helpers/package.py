"""Walking the fixengine package: what the export and event tests look at."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import fixengine


def public_classes_of_fixengine() -> list[type]:
    """Every public class defined in a fixengine module (each module imported)."""
    found = []
    for info in pkgutil.walk_packages(fixengine.__path__, "fixengine."):
        if info.name.rpartition(".")[2] == "__main__":
            continue  # importing it runs the CLI
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if inspect.isclass(obj) and obj.__module__ == module.__name__ and not name.startswith("_"):
                found.append(obj)
    return found
