"""Reading TOML config files into readable problems: shared by the engine's and the simulator's
configs (the simulator imports this, never the other way round)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from fixengine.errors import ConfigError, Problem


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(str(path), [Problem("", "file does not exist")]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), [Problem("", f"not valid TOML: {exc}")]) from None


def problems_from_validation(exc: ValidationError, aliases: dict[str, str] | None = None) -> list[Problem]:
    """Turn pydantic's errors into ``Problem``s with dotted paths as the user wrote them."""
    aliases = aliases or {}
    problems = []
    for err in exc.errors():
        parts: list[str] = []
        for loc in err["loc"]:
            if isinstance(loc, int) and parts:
                parts[-1] = f"{parts[-1]}[{loc}]"
            else:
                parts.append(aliases.get(str(loc), str(loc)))
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown setting (check the spelling)"
        elif err["type"] == "missing":
            msg = "required setting is missing"
        problems.append(Problem(".".join(parts), msg))
    return problems
