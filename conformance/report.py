"""Every output of a run, written together: the JSON report, JUnit XML, the markdown and HTML reports,
the conformance statement (which names the JSON report by its SHA-256) and the run bundle. The writers
live one a module; this is where the runner and ``rejudge`` reach them all."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from conformance.bundle import load_bundle, save_bundle
from conformance.html_report import write_html
from conformance.json_report import read_json, write_json
from conformance.junit import write_junit
from conformance.markdown_report import write_markdown
from conformance.model import RunOutcome
from conformance.statement import write_statement

__all__ = [
    "ReportFiles", "load_bundle", "read_json", "save_bundle", "write_html", "write_json", "write_junit",
    "write_markdown", "write_reports", "write_statement",
]


@dataclass(frozen=True, slots=True)
class ReportFiles:
    json: Path
    junit: Path
    markdown: Path
    html: Path
    statement: Path
    bundle: Path


def write_reports(directory: str | Path, outcome: RunOutcome) -> ReportFiles:
    """All of them into ``directory`` (made if missing): report.json, junit.xml, report.md, report.html,
    statement.md, bundle.jsonl."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    json_path = write_json(directory / "report.json", outcome)  # first: the statement hashes it
    return ReportFiles(
        json=json_path,
        junit=write_junit(directory / "junit.xml", outcome),
        markdown=write_markdown(directory / "report.md", outcome),
        html=write_html(directory / "report.html", outcome),
        statement=write_statement(directory / "statement.md", outcome, json_path),
        bundle=save_bundle(directory / "bundle.jsonl", outcome),
    )
