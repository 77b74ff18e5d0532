"""The conformance values as plain JSON-ready dicts and back, for the JSON report and the run bundle:
one spelling of every value in both files. Pure. A reader's error names the field that is wrong
(``results[2].findings[0].expected: missing``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from conformance.model import (
    Clause,
    ClientSays,
    Direction,
    FaultMark,
    Finding,
    Instruction,
    Need,
    RestCall,
    Rule,
    Scenario,
    ScenarioResult,
    Verdict,
    WireMessage,
)
from conformance.profile import Profile

Json = dict[str, Any]


class CodecError(ValueError):
    """A file does not hold what its schema says; the message names the field."""


class Fields:
    """A dict read field by field, each error naming ``where.field``."""

    def __init__(self, data: object, where: str):
        if not isinstance(data, Mapping):
            raise CodecError(f"{where}: expected an object, got {type(data).__name__}")
        self.data = data
        self.where = where

    def _get(self, name: str, kinds: tuple[type, ...], label: str, optional: bool) -> Any:
        if name not in self.data or self.data[name] is None:
            if optional:
                return None
            raise CodecError(f"{self.where}.{name}: missing")
        value = self.data[name]
        # bool is an int to Python; a number field must not take true/false
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            raise CodecError(f"{self.where}.{name}: expected {label}, got {value!r}")
        return value

    def text(self, name: str) -> str:
        return self._get(name, (str,), "a string", False)  # type: ignore[no-any-return]

    def opt_text(self, name: str) -> str | None:
        return self._get(name, (str,), "a string", True)  # type: ignore[no-any-return]

    def integer(self, name: str) -> int:
        return self._get(name, (int,), "an integer", False)  # type: ignore[no-any-return]

    def opt_integer(self, name: str) -> int | None:
        return self._get(name, (int,), "an integer", True)  # type: ignore[no-any-return]

    def number(self, name: str) -> float:
        return float(self._get(name, (int, float), "a number", False))

    def opt_number(self, name: str) -> float | None:
        value = self._get(name, (int, float), "a number", True)
        return None if value is None else float(value)

    def flag(self, name: str) -> bool:
        return self._get(name, (bool,), "true or false", False)  # type: ignore[no-any-return]

    def items(self, name: str) -> list[Any]:
        value = self._get(name, (list,), "a list", True)
        return [] if value is None else value  # type: ignore[no-any-return]

    def obj(self, name: str) -> Fields:
        return Fields(self._get(name, (dict,), "an object", False), f"{self.where}.{name}")

    def enum(self, name: str, kind: type[Any]) -> Any:
        return _member(self.text(name), kind, f"{self.where}.{name}")


def _member(value: object, kind: type[Any], where: str) -> Any:
    try:
        return kind(value)
    except ValueError:
        known = ", ".join(member.value for member in kind)
        raise CodecError(f"{where}: {value!r} is not one of {known}") from None


# --- the library's values ---------------------------------------------------------------------------


def clause_to_json(clause: Clause) -> Json:
    return {"section": clause.section, "doc_date": clause.doc_date, "fix_tc": clause.fix_tc}


def clause_from_json(f: Fields) -> Clause:
    return Clause(section=f.text("section"), doc_date=f.text("doc_date"), fix_tc=f.opt_text("fix_tc") or "")


def scenario_to_json(scenario: Scenario) -> Json:
    return {
        "id": scenario.id, "title": scenario.title, "area": scenario.area, "mandatory": scenario.mandatory,
        "clause": clause_to_json(scenario.clause), "simulator_does": scenario.simulator_does,
        "passes_when": scenario.passes_when, "hint": scenario.hint,
        "needs": sorted(need.value for need in scenario.needs), "sessions": sorted(scenario.sessions),
        "features": sorted(scenario.features),
    }


def scenario_from_json(f: Fields) -> Scenario:
    needs = [_member(code, Need, f"{f.where}.needs[{i}]") for i, code in enumerate(f.items("needs"))]
    return Scenario(
        id=f.text("id"), title=f.text("title"), area=f.text("area"), mandatory=f.flag("mandatory"),
        clause=clause_from_json(f.obj("clause")), simulator_does=f.text("simulator_does"),
        passes_when=f.text("passes_when"), hint=f.text("hint"), needs=frozenset(needs),
        sessions=frozenset(_strings(f, "sessions")), features=frozenset(_strings(f, "features")),
    )


def rule_to_json(rule: Rule) -> Json:
    return {"id": rule.id, "text": rule.text, "clause": clause_to_json(rule.clause), "note": rule.note}


def rule_from_json(f: Fields) -> Rule:
    return Rule(id=f.text("id"), text=f.text("text"), clause=clause_from_json(f.obj("clause")),
                note=f.opt_text("note") or "")


def _strings(f: Fields, name: str) -> list[str]:
    values = f.items(name)
    for i, value in enumerate(values):
        if not isinstance(value, str):
            raise CodecError(f"{f.where}.{name}[{i}]: expected a string, got {value!r}")
    return values


# --- verdicts ---------------------------------------------------------------------------------------


def finding_to_json(finding: Finding) -> Json:
    return {"expected": finding.expected, "seen": finding.seen, "message": finding.message, "rule": finding.rule}


def finding_from_json(f: Fields) -> Finding:
    return Finding(expected=f.text("expected"), seen=f.text("seen"), message=f.opt_integer("message"),
                   rule=f.opt_text("rule"))


def result_to_json(result: ScenarioResult) -> Json:
    return {
        "scenario": result.scenario, "verdict": result.verdict.value, "reason": result.reason,
        "findings": [finding_to_json(finding) for finding in result.findings],
        "measured": {name: value for name, value in result.measured},
    }


def result_from_json(f: Fields) -> ScenarioResult:
    findings = tuple(finding_from_json(Fields(item, f"{f.where}.findings[{i}]"))
                     for i, item in enumerate(f.items("findings")))
    measured = f.obj("measured") if f.data.get("measured") is not None else Fields({}, f.where)
    return ScenarioResult(
        scenario=f.text("scenario"), verdict=f.enum("verdict", Verdict), reason=f.text("reason"), findings=findings,
        measured=tuple((name, measured.number(name)) for name in measured.data),
    )


# --- evidence ---------------------------------------------------------------------------------------


def message_to_json(message: WireMessage) -> Json:
    return {"at": message.at, "connection": message.connection, "direction": message.direction.value,
            "session": message.session, "raw": message.raw}


def message_from_json(f: Fields) -> WireMessage:
    return WireMessage(at=f.number("at"), connection=f.integer("connection"), direction=f.enum("direction", Direction),
                       session=f.text("session"), raw=f.text("raw"))


def rest_to_json(call: RestCall) -> Json:
    return {"at": call.at, "method": call.method, "path": call.path, "status": call.status}


def rest_from_json(f: Fields) -> RestCall:
    return RestCall(at=f.number("at"), method=f.text("method"), path=f.text("path"), status=f.integer("status"))


def fault_to_json(fault: FaultMark) -> Json:
    return {"at": fault.at, "what": fault.what}


def fault_from_json(f: Fields) -> FaultMark:
    return FaultMark(at=f.number("at"), what=f.text("what"))


def instruction_to_json(instruction: Instruction) -> Json:
    return {"at": instruction.at, "line": instruction.line}


def instruction_from_json(f: Fields) -> Instruction:
    return Instruction(at=f.number("at"), line=f.text("line"))


def client_to_json(says: ClientSays) -> Json:
    return {"at": says.at, "line": says.line}


def client_from_json(f: Fields) -> ClientSays:
    return ClientSays(at=f.number("at"), line=f.text("line"))


# --- the profile ------------------------------------------------------------------------------------


def profile_to_json(profile: Profile) -> Json:
    data = profile.model_dump(mode="json", by_alias=True)
    data["features"] = sorted(data["features"])  # a set: sorted, so the same profile writes the same bytes
    return data


def profile_from_json(f: Fields) -> Profile:
    from pydantic import ValidationError

    try:
        return Profile.model_validate(dict(f.data))
    except ValidationError as exc:
        problems = "; ".join(f"{f.where}.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise CodecError(problems) from None
