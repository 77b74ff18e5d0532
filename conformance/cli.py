"""``fixengine conform``: the conformance tool's commands, one click group (``list`` here; the
runner's commands join the same group). ``fixengine``'s CLI finds this group at run time, so the
product never imports the conformance tool."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import click

from conformance.acceptor_cli import acceptor_cmd
from conformance.library import Library, SelectionError, load_library
from conformance.model import KALSHI_DOC_DATE, SUITE_VERSION, Need, Rule, Scenario


@click.group("conform", context_settings={"help_option_names": ["-h", "--help"]})
def conform() -> None:
    """Kalshi FIX conformance: scenarios a client is judged by against the simulator."""


conform.add_command(acceptor_cmd)  # the acceptor direction: QuickFIX's FIX 4.4 scenarios against any acceptor


def _library() -> Library:
    return load_library()  # a broken library is a ConfigError: one readable message (run_command)


def _select(library: Library, only: str | None) -> list[Scenario]:
    try:
        return library.select(only)
    except SelectionError as exc:
        raise click.BadParameter(str(exc).removeprefix("--only: "), param_hint="--only") from None


def _clause(scenario: Scenario | Rule) -> str:
    tc = f"; FIX TC {scenario.clause.fix_tc}" if scenario.clause.fix_tc else ""
    return f"{scenario.clause.section}{tc} ({scenario.clause.doc_date})"


def scenario_json(scenario: Scenario) -> dict[str, Any]:
    """A scenario as the JSON outputs write it: every field, sets as sorted lists."""
    return {
        "id": scenario.id,
        "title": scenario.title,
        "area": scenario.area,
        "mandatory": scenario.mandatory,
        "clause": {"section": scenario.clause.section, "doc_date": scenario.clause.doc_date,
                   "fix_tc": scenario.clause.fix_tc},
        "simulator_does": scenario.simulator_does,
        "passes_when": scenario.passes_when,
        "hint": scenario.hint,
        "needs": [n.value for n in Need if n in scenario.needs],  # W, R, H, P: the reference's order
        "sessions": sorted(scenario.sessions),
        "features": sorted(scenario.features),
    }


def rule_json(rule: Rule) -> dict[str, Any]:
    return {"id": rule.id, "text": rule.text, "note": rule.note,
            "clause": {"section": rule.clause.section, "doc_date": rule.clause.doc_date, "fix_tc": rule.clause.fix_tc}}


def _table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join("  ".join([*(c.ljust(w) for c, w in zip(r, widths)), r[-1]]).rstrip() for r in rows)


@conform.command("list")
@click.option("--only", help="Comma-separated scenario ids or globs, e.g. 'kalshi/seq-*,kalshi/logon/01'.")
@click.option("--rules", "with_rules", is_flag=True, help="Also list the always-on rules (P1 ...).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def list_cmd(only: str | None, with_rules: bool, as_json: bool) -> None:
    """List the scenarios (id, M/O, area, title, Kalshi clause) of this suite version."""
    library = _library()
    chosen = _select(library, only)
    if as_json:
        doc: dict[str, Any] = {"suite_version": SUITE_VERSION, "kalshi_doc_date": KALSHI_DOC_DATE,
                               "scenarios": [scenario_json(s) for s in chosen]}
        if with_rules:
            doc["rules"] = [rule_json(r) for r in library.rules.values()]
        click.echo(json.dumps(doc, indent=2, ensure_ascii=False))
        return
    rows = [("ID", "M/O", "AREA", "TITLE", "CLAUSE")]
    rows += [(s.id, "M" if s.mandatory else "O", s.area, s.title, _clause(s)) for s in chosen]
    click.echo(_table(rows))
    mandatory = sum(s.mandatory for s in chosen)
    click.echo(f"\n{len(chosen)} scenarios ({mandatory} mandatory, {len(chosen) - mandatory} optional); "
               f"suite {SUITE_VERSION}")
    if with_rules:
        click.echo("")
        click.echo(_table([("RULE", "TEXT"), *((r.id, r.text) for r in library.rules.values())]))


@conform.command("rejudge")
@click.argument("bundle", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--report", "report_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Write every report here (default: rejudged/ beside the bundle).")
@click.option("--junit", "junit_path", type=click.Path(dir_okay=False, path_type=Path), help="Also write JUnit XML here.")
def rejudge_cmd(bundle: Path, report_dir: Path | None, junit_path: Path | None) -> None:
    """Decide a saved run again, offline: today's judges and always-on rules over the bundle's evidence.
    Exit code as for a run: 0 mandatory passed, 1 a failure, 2 inconclusive mandatory, 3 harness error."""
    from conformance.codec import CodecError
    from conformance.rejudge import rejudge_to

    try:
        code, lines = rejudge_to(bundle, report_dir, junit_path)
    except CodecError as exc:  # exit 3, not 1: nothing was judged, so nothing failed
        click.echo(f"Error: the bundle cannot be read: {exc}", err=True)
        sys.exit(3)
    click.echo("\n".join(lines))
    sys.exit(code)


@conform.command("run")
@click.option("--client-cmd", required=True,
              help="The client to judge: a shell command, started once per scenario with the runner's KALSHI_* "
                   "environment (where to connect, its key); JSON instructions on its stdin if it takes them.")
@click.option("--profile", "profile_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The client's profile (TOML): sessions, Logon switches, features. Default: a KalshiNR client "
                   "that takes instructions.")
@click.option("--only", help="Comma-separated scenario ids or globs, e.g. 'kalshi/seq-*,kalshi/logon/01'.")
@click.option("--mandatory", "mandatory_only", is_flag=True,
              help="Only the mandatory scenarios (with --only: the mandatory ones among those).")
@click.option("--junit", "junit_path", type=click.Path(dir_okay=False, path_type=Path), help="Write JUnit XML here.")
@click.option("--report", "report_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Write every report here: JSON, JUnit, markdown, HTML, the statement and the run bundle.")
@click.option("--jobs", type=click.IntRange(1, 64), default=None,
              help="Scenarios run at the same time, each with its own API key (default 2).")
@click.option("--seed", type=int, help="Seed for the scenarios' random choices (default: a fresh one, reported).")
def run_cmd(client_cmd: str, profile_path: Path | None, only: str | None, mandatory_only: bool,
            junit_path: Path | None, report_dir: Path | None, jobs: int | None, seed: int | None) -> None:
    """Run the scenarios against a client on a local simulator and judge it. Exit code: 0 every mandatory
    scenario passed, 1 a failure, 2 only inconclusive mandatory ones remain, 3 harness error."""
    import asyncio

    from conformance.profile import load_profile
    from conformance.runner import DEFAULT_JOBS, NOT_IMPLEMENTED, run
    from conformance.summary import counts, exit_meaning

    library = _library()
    profile = load_profile(profile_path)
    _select(library, only)  # a bad --only is a usage error before anything starts
    if mandatory_only:
        only = ",".join(s.id for s in library.select(only) if s.mandatory)
        if not only:
            raise click.UsageError("--mandatory: none of the scenarios --only names is mandatory")
    if not (click.get_current_context().find_root().obj or {}).get("verbose"):
        # The simulator's own log (each Logon, each connection) would bury the verdicts; -v shows it.
        for name in ("simulator", "uvicorn", "uvicorn.error"):
            logging.getLogger(name).setLevel(logging.WARNING)

    def show(result: Any, evidence: Any) -> None:
        took = f" ({evidence.ended - evidence.started:.1f} s)" if evidence is not None and evidence.ended else ""
        click.echo(f"{result.verdict.value:<12} {result.scenario}{took}: {result.reason}")

    outcome = asyncio.run(run(library, profile, client_cmd, only=only, jobs=jobs or DEFAULT_JOBS, seed=seed,
                              on_result=show))
    if report_dir is not None:
        from conformance.report import write_reports

        write_reports(report_dir, outcome)
    if junit_path is not None:
        from conformance.junit import write_junit

        write_junit(junit_path, outcome)
    code = outcome.exit_code()
    click.echo(f"\n{len(outcome.results)} scenarios in {outcome.ended - outcome.started:.0f} s (seed {outcome.seed}, "
               f"suite {outcome.suite_version}): "
               + ", ".join(f"{v.value} {n}" for v, n in counts(outcome.results).items() if n))
    missing = [r.scenario for r in outcome.results if r.reason == NOT_IMPLEMENTED]
    if missing:
        click.echo(f"{NOT_IMPLEMENTED}: {', '.join(missing)}")
    if report_dir is not None:
        click.echo(f"reports in {report_dir}")
    click.echo(f"exit {code}: {exit_meaning(code)}")
    sys.exit(code)
