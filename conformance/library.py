"""The scenario library: the Kalshi scenarios and the always-on rules, kept as TOML data in
``specs/conformance`` (one file per area, loaded in name order, plus ``rules.toml``), read and checked
into ``conformance.model`` values. Reading the files is the only I/O; selection is pure.

    [[scenario]]
    id = "kalshi/hb/02"                     # kalshi/<area code>/<two digits>
    title = "TestRequest answered"
    area = "heartbeat"                      # the area its code belongs to (AREAS)
    mandatory = true
    clause = { section = "§7.1", fix_tc = "4b" }   # doc_date: default KALSHI_DOC_DATE
    simulator_does = "..."
    passes_when = "..."
    hint = "..."
    needs = ["W"]                           # W, R, H, P
    sessions = []                           # TargetCompIDs; empty: any
    features = []                           # conformance.profile.FEATURES; "instructions" when P

Every problem in the files is reported at once, each naming the file, the scenario or rule and the
field (``ConfigError``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    ValidationError,
    field_validator,
)

from conformance.model import KALSHI_DOC_DATE, Clause, Need, Rule, Scenario
from conformance.profile import FEATURES
from fixengine._toml import problems_from_validation, read_toml
from fixengine.errors import ConfigError, Problem
from fixengine.fix.dictionary import spec_path
from fixengine.kalshi.facts import SessionType

LIBRARY_DIR = "conformance"  # under specs/, in a checkout or installed
RULES_FILE = "rules.toml"

# The area code in a scenario id -> the area it belongs to.
AREAS: dict[str, str] = {
    "logon": "logon",
    "hb": "heartbeat",
    "seq-nr": "sequence",
    "seq-rt": "sequence",
    "seq-all": "sequence",
    "ord": "orders",
    "cxl": "cancel-replace",
    "mc": "mass-cancel",
    "rl": "rate-limits",
    "og": "order-groups",
    "dc": "drop-copy",
    "lst": "listener",
    "ums": "settlement",
    "drift": "drift",
    "cod": "disconnect",
    "maint": "maintenance",
}
SCENARIO_ID = re.compile(r"kalshi/(?P<code>[a-z]+(?:-[a-z]+)*)/(?P<number>\d{2})")
RULE_ID = re.compile(r"P[1-9]\d*")
_GLOB = re.compile(r"[*?\[]")


class SelectionError(ValueError):
    """An ``--only`` / ``--exclude`` entry names no scenario of the library."""


# --- the TOML schema -------------------------------------------------------------------------------


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def inconsistencies(self) -> list[Problem]:
        """What is wrong between fields (each field is valid on its own), by the field to fix."""
        return []


class _ClauseEntry(_Entry):
    section: str = Field(min_length=1)
    doc_date: str = KALSHI_DOC_DATE
    fix_tc: str = ""

    @field_validator("doc_date")
    @classmethod
    def _a_date_the_suite_covers(cls, v: str) -> str:
        try:
            day = date.fromisoformat(v)
        except ValueError:
            raise ValueError(f"{v!r} is not a date (YYYY-MM-DD)") from None
        if day > date.fromisoformat(KALSHI_DOC_DATE):
            raise ValueError(f"{v} is after the suite's Kalshi doc date {KALSHI_DOC_DATE}")
        return v

    def clause(self) -> Clause:
        return Clause(section=self.section, doc_date=self.doc_date, fix_tc=self.fix_tc)


def _no_repeats(values: list[Any]) -> list[Any]:
    seen = [v for i, v in enumerate(values) if v in values[:i]]
    if seen:
        raise ValueError(f"{', '.join(sorted({str(getattr(v, 'value', v)) for v in seen}))} listed twice")
    return values


class _ScenarioEntry(_Entry):
    id: str
    title: str = Field(min_length=1)
    area: str
    mandatory: StrictBool  # true or false, not "yes"
    clause: _ClauseEntry
    simulator_does: str = Field(min_length=1)
    passes_when: str = Field(min_length=1)
    hint: str = Field(min_length=1)
    needs: list[Need] = Field(min_length=1)
    sessions: list[SessionType]
    features: list[str]

    @field_validator("id")
    @classmethod
    def _id_shape(cls, v: str) -> str:
        match = SCENARIO_ID.fullmatch(v)
        if match is None:
            raise ValueError(f"{v!r} is not kalshi/<area>/<nn> (e.g. kalshi/seq-nr/02)")
        if match["code"] not in AREAS:
            raise ValueError(f"unknown area {match['code']!r} in {v!r}; known: {', '.join(AREAS)}")
        return v

    @field_validator("area")
    @classmethod
    def _known_area(cls, v: str) -> str:
        if v not in set(AREAS.values()):
            raise ValueError(f"unknown area {v!r}; known: {', '.join(sorted(set(AREAS.values())))}")
        return v

    @field_validator("needs", "sessions")
    @classmethod
    def _listed_once(cls, v: list[Any]) -> list[Any]:
        return _no_repeats(v)

    @field_validator("features")
    @classmethod
    def _known_features(cls, v: list[str]) -> list[str]:
        unknown = sorted(set(v) - FEATURES)
        if unknown:
            raise ValueError(f"unknown {', '.join(unknown)}; known: {', '.join(sorted(FEATURES))}")
        return _no_repeats(v)

    def inconsistencies(self) -> list[Problem]:
        found = []
        code = SCENARIO_ID.fullmatch(self.id)["code"]  # type: ignore[index]  # the id validated
        if AREAS[code] != self.area:
            found.append(Problem("area", f"{self.area!r}, but the id's {code!r} is area {AREAS[code]!r}"))
        if Need.ACTS in self.needs and "instructions" not in self.features:
            found.append(Problem("features", "needs has P (the client acts) but features lacks \"instructions\""))
        return found

    def scenario(self) -> Scenario:
        return Scenario(
            id=self.id, title=self.title, area=self.area, mandatory=self.mandatory, clause=self.clause.clause(),
            simulator_does=self.simulator_does, passes_when=self.passes_when, hint=self.hint,
            needs=frozenset(self.needs), sessions=frozenset(s.value for s in self.sessions),
            features=frozenset(self.features),
        )


class _RuleEntry(_Entry):
    id: str
    text: str = Field(min_length=1)
    clause: _ClauseEntry
    note: str = ""

    @field_validator("id")
    @classmethod
    def _id_shape(cls, v: str) -> str:
        if RULE_ID.fullmatch(v) is None:
            raise ValueError(f"{v!r} is not P<n> (e.g. P4)")
        return v

    def rule(self) -> Rule:
        return Rule(id=self.id, text=self.text, clause=self.clause.clause(), note=self.note)


# --- the library -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Library:
    scenarios: dict[str, Scenario]  # in file order, then order within each file
    rules: dict[str, Rule]
    directory: Path

    @property
    def mandatory(self) -> frozenset[str]:
        return frozenset(s.id for s in self.scenarios.values() if s.mandatory)

    def select(self, only: str | None, exclude: str | None = None) -> list[Scenario]:
        """The scenarios ``only`` names (comma-separated ids or globs such as ``kalshi/seq-*``;
        None or empty: all), less those ``exclude`` names, in library order. An id that is not in
        the library, or a glob that matches nothing, raises ``SelectionError`` naming it."""
        chosen = self._matching(only, "--only") if only and only.strip() else set(self.scenarios)
        if exclude and exclude.strip():
            chosen -= self._matching(exclude, "--exclude")
        return [s for s in self.scenarios.values() if s.id in chosen]

    def _matching(self, patterns: str, option: str) -> set[str]:
        found: set[str] = set()
        for pattern in (p.strip() for p in patterns.split(",")):
            if not pattern:
                continue
            if _GLOB.search(pattern):
                hits = {i for i in self.scenarios if fnmatchcase(i, pattern)}
                if not hits:
                    raise SelectionError(f"{option}: {pattern!r} matches no scenario (see `fixengine conform list`)")
            elif pattern in self.scenarios:
                hits = {pattern}
            else:
                raise SelectionError(f"{option}: no scenario {pattern!r} in the library (see `fixengine conform list`)")
            found |= hits
        if not found:
            raise SelectionError(f"{option}: {patterns!r} names no scenario")
        return found


def library_dir() -> Path:
    """``specs/conformance`` in a checkout, or where the package installed it."""
    return spec_path(LIBRARY_DIR)


def load_library(directory: str | Path | None = None) -> Library:
    """The library in ``directory`` (default: the one shipped with the package). ``ConfigError``
    naming every problem: the file, the scenario or rule, the field, and why."""
    root = Path(directory) if directory is not None else library_dir()
    if not root.is_dir():
        raise ConfigError(str(root), [Problem("", "not a directory: the conformance library is missing")])
    scenario_files = sorted(p for p in root.glob("*.toml") if p.name != RULES_FILE)
    problems: list[Problem] = []
    if not scenario_files:
        problems.append(Problem("", "no scenario files (*.toml)"))
    scenarios: dict[str, Scenario] = {}
    origin: dict[str, str] = {}
    for path in scenario_files:
        for entry in _entries(path, "scenario", _ScenarioEntry, problems):
            s = entry.scenario()
            if s.id in scenarios:
                problems.append(Problem(f"{path.name}: {s.id}: id", f"already defined in {origin[s.id]}"))
                continue
            scenarios[s.id], origin[s.id] = s, path.name
    rules: dict[str, Rule] = {}
    rules_path = root / RULES_FILE
    if not rules_path.is_file():
        problems.append(Problem(RULES_FILE, "missing: the always-on rules (P1 ...) are read from it"))
    else:
        for rule_entry in _entries(rules_path, "rule", _RuleEntry, problems):
            if rule_entry.id in rules:
                problems.append(Problem(f"{RULES_FILE}: {rule_entry.id}: id", "defined twice"))
                continue
            rules[rule_entry.id] = rule_entry.rule()
    if problems:
        raise ConfigError(str(root), problems)
    return Library(scenarios=scenarios, rules=rules, directory=root)


def _entries(path: Path, table: str, model: type[_Entry], problems: list[Problem]) -> list[Any]:
    """The valid ``[[table]]`` entries of one file; a Problem for each thing wrong with the rest."""
    try:
        data = read_toml(path)
    except ConfigError as exc:
        problems.extend(Problem(path.name, p.reason) for p in exc.problems)
        return []
    extra = sorted(set(data) - {table})
    if extra:
        problems.append(Problem(f"{path.name}: {', '.join(extra)}", f"unknown table; a file holds [[{table}]] entries only"))
    raw = data.get(table, [])
    if not isinstance(raw, list) or not raw:
        problems.append(Problem(f"{path.name}: {table}", f"no [[{table}]] entries"))
        return []
    valid = []
    for n, item in enumerate(raw, start=1):
        name = item.get("id") if isinstance(item, dict) and isinstance(item.get("id"), str) else f"{table} #{n}"
        try:
            entry = model.model_validate(item)
        except ValidationError as exc:
            wrong = problems_from_validation(exc)
        else:
            wrong = entry.inconsistencies()
            if not wrong:
                valid.append(entry)
        problems.extend(Problem(f"{path.name}: {name}: {p.where or '(entry)'}", p.reason) for p in wrong)
    return valid
