"""The JSON report: versioned (``"schema"``), one object per scenario with its verdict, findings and
measurements, for machines (CI dashboards, agents). ``read_json`` reads one back; it refuses another
schema, naming it. The wire evidence itself is in the run bundle, not here: a finding carries the one
message it is about."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conformance.codec import (
    CodecError,
    Fields,
    Json,
    clause_to_json,
    finding_to_json,
    message_to_json,
    profile_to_json,
    result_from_json,
    result_to_json,
)
from conformance.model import JSON_SCHEMA, RunOutcome, ScenarioResult
from conformance.summary import counts, exit_meaning, seconds


def report_json(outcome: RunOutcome) -> Json:
    code = outcome.exit_code()
    return {
        "schema": JSON_SCHEMA,
        "suite_version": outcome.suite_version,
        "doc_date": outcome.doc_date,
        "recorded_with": outcome.recorded_with,
        "client": outcome.client,
        "client_version": outcome.client_version,
        "profile": profile_to_json(outcome.profile),
        "seed": outcome.seed,
        "started": outcome.started,
        "ended": outcome.ended,
        "exit_code": code,
        "exit_meaning": exit_meaning(code),
        "counts": {verdict.value: n for verdict, n in counts(outcome.results).items()},
        "results": [_result(outcome, result) for result in outcome.results],
    }


def _result(outcome: RunOutcome, result: ScenarioResult) -> Json:
    scenario = outcome.scenarios[result.scenario]
    evidence = outcome.evidence.get(result.scenario)
    data: dict[str, Any] = {
        **result_to_json(result),
        "title": scenario.title, "area": scenario.area, "mandatory": scenario.mandatory,
        "clause": clause_to_json(scenario.clause), "hint": scenario.hint, "seconds": round(seconds(evidence), 3),
    }
    findings = []
    for finding in result.findings:
        item = finding_to_json(finding)
        if evidence is not None and finding.message is not None and 0 <= finding.message < len(evidence.messages):
            item["wire"] = message_to_json(evidence.messages[finding.message])
        if finding.rule is not None and finding.rule in outcome.rules:
            item["rule_text"] = outcome.rules[finding.rule].text
            item["rule_clause"] = clause_to_json(outcome.rules[finding.rule].clause)
        findings.append(item)
    data["findings"] = findings
    return data


def write_json(path: str | Path, outcome: RunOutcome) -> Path:
    path = Path(path)
    path.write_text(json.dumps(report_json(outcome), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


@dataclass(frozen=True, slots=True)
class JsonReport:
    """What ``read_json`` gives back: the run's identity and every result."""

    schema: str
    suite_version: str
    doc_date: str
    client: str
    client_version: str
    seed: int
    exit_code: int
    results: list[ScenarioResult]


def read_json(path: str | Path) -> JsonReport:
    """A JSON report written by ``write_json``; ``CodecError`` naming the field that is wrong."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise CodecError(f"{path}: not JSON ({exc})") from None
    f = Fields(data, path.name)
    schema = f.text("schema")
    if schema != JSON_SCHEMA:
        raise CodecError(f"{path.name}.schema: {schema!r}, this reader reads {JSON_SCHEMA!r}")
    results = [result_from_json(Fields(item, f"{path.name}.results[{i}]"))
               for i, item in enumerate(f.items("results"))]
    return JsonReport(schema=schema, suite_version=f.text("suite_version"), doc_date=f.text("doc_date"),
                      client=f.text("client"), client_version=f.text("client_version"), seed=f.integer("seed"),
                      exit_code=f.integer("exit_code"), results=results)
