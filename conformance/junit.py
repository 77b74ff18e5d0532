"""The JUnit XML report CI tools read (Jenkins, GitLab, GitHub annotations): one ``testcase`` per
scenario, ``classname`` its area; FAIL is a ``failure`` listing what was expected and seen and the
Kalshi clause, ERROR an ``error``, INCONCLUSIVE and N/A ``skipped`` with the reason."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

from conformance.model import RunOutcome, ScenarioResult, Verdict
from conformance.summary import clause_text, counts, exit_meaning, fix_text, seconds

# XML 1.0 cannot carry these even escaped; FIX's SOH becomes | first, anything else a visible escape.
_NOT_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def xml_text(text: str) -> str:
    return _NOT_XML.sub(lambda m: f"\\x{ord(m.group()):02x}", fix_text(text))


def _failure_text(outcome: RunOutcome, result: ScenarioResult) -> str:
    scenario = outcome.scenarios[result.scenario]
    evidence = outcome.evidence.get(result.scenario)
    lines = [result.reason]
    for finding in result.findings:
        lines += [f"expected: {finding.expected}", f"seen: {finding.seen}"]
        if finding.rule is not None:
            rule = outcome.rules.get(finding.rule)
            lines.append(f"rule: {finding.rule}" + (f" {rule.text} ({clause_text(rule.clause)})" if rule else ""))
        if evidence is not None and finding.message is not None and 0 <= finding.message < len(evidence.messages):
            lines.append(f"message: {evidence.messages[finding.message].raw}")
    lines += [f"clause: {clause_text(scenario.clause)}", f"hint: {scenario.hint}"]
    return "\n".join(lines)


def junit_tree(outcome: RunOutcome) -> ET.ElementTree:
    totals = counts(outcome.results)
    elapsed = f"{max(0.0, outcome.ended - outcome.started):.3f}"
    attributes = {
        "tests": str(len(outcome.results)), "failures": str(totals[Verdict.FAIL]),
        "errors": str(totals[Verdict.ERROR]),
        "skipped": str(totals[Verdict.INCONCLUSIVE] + totals[Verdict.NA]), "time": elapsed,
    }
    root = ET.Element("testsuites", {"name": "Kalshi FIX conformance", **attributes})
    suite = ET.SubElement(root, "testsuite", {
        "name": xml_text(f"kalshi-conformance {outcome.suite_version}"), **attributes,
        "timestamp": _iso(outcome.started),
    })
    properties = ET.SubElement(suite, "properties")
    code = outcome.exit_code()
    for name, value in (
        ("suite_version", outcome.suite_version), ("doc_date", outcome.doc_date), ("client", outcome.client),
        ("client_version", outcome.client_version), ("seed", str(outcome.seed)),
        ("exit_code", f"{code}: {exit_meaning(code)}"),
    ):
        ET.SubElement(properties, "property", {"name": name, "value": xml_text(value)})
    for result in outcome.results:
        scenario = outcome.scenarios[result.scenario]
        case = ET.SubElement(suite, "testcase", {
            "classname": xml_text(scenario.area), "name": xml_text(f"{scenario.id} {scenario.title}"),
            "time": f"{seconds(outcome.evidence.get(result.scenario)):.3f}",
        })
        if result.verdict is Verdict.FAIL:
            failure = ET.SubElement(case, "failure", {"message": xml_text(result.reason), "type": "FAIL"})
            failure.text = xml_text(_failure_text(outcome, result))
        elif result.verdict is Verdict.ERROR:
            error = ET.SubElement(case, "error", {"message": xml_text(result.reason), "type": "ERROR"})
            error.text = xml_text(f"{result.reason}\nthe harness failed: this scenario proves nothing either way")
        elif result.verdict in (Verdict.INCONCLUSIVE, Verdict.NA):
            ET.SubElement(case, "skipped", {"message": xml_text(f"{result.verdict.value}: {result.reason}")})
        measured = [f"{name} = {value:g}" for name, value in result.measured]
        if measured:
            ET.SubElement(case, "system-out").text = xml_text("\n".join(measured))
    ET.indent(root)
    return ET.ElementTree(root)


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def write_junit(path: str | Path, outcome: RunOutcome) -> Path:
    path = Path(path)
    junit_tree(outcome).write(path, encoding="utf-8", xml_declaration=True)
    return path
