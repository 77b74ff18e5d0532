"""``fixengine conform acceptor``: QuickFIX's FIX 4.4 acceptance scenarios against any acceptor, one
line per scenario as it ends, then the reports asked for. Exit code as every conformance run
(``RunOutcome.exit_code``): 0 all passed (N/A aside), 1 a FAIL, 3 the harness failed (an ERROR, or
no acceptor at HOST:PORT); a wrong option is a usage error (click's 2), naming the option."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from conformance.acceptor import (
    DEFAULT_TIMEOUT, AcceptorSetupError, AcceptorTarget, AcceptorUnreachable, check_exclusions, run_acceptor,
    select_defs, wait_reachable,
)
from conformance.acceptor_exclusions import NAMES, exclusions
from conformance.at_identity import SCRIPT_BEGIN_STRING, Identity
from conformance.model import ScenarioResult, Verdict
from fixengine.errors import KeyLoadError
from fixengine.kalshi.signing import load_private_key

# QuickFIX's scenarios sit beside the checkout: <checkout>/../shared/quickfix-at/fix44
DEFAULT_DEFS = Path(__file__).resolve().parents[1].parent / "shared" / "quickfix-at" / "fix44"


def _globs(values: tuple[str, ...]) -> list[str]:
    return [glob.strip() for value in values for glob in value.split(",") if glob.strip()]


def _extra_exclusions(values: tuple[str, ...]) -> dict[str, str]:
    found = {}
    for value in values:
        stem, sep, reason = value.partition("=")
        if not sep or not stem.strip() or not reason.strip():
            raise click.BadParameter(f"{value!r} is not STEM=REASON", param_hint="--exclude")
        found[stem.strip()] = reason.strip()
    return found


def _line(result: ScenarioResult) -> str:
    reason = "" if result.verdict is Verdict.PASS else f"  {result.reason}"
    return f"{result.verdict.value:<5} {result.scenario}{reason}"


@click.command("acceptor")
@click.option("--host", default="127.0.0.1", show_default=True, help="The acceptor's address.")
@click.option("--port", required=True, type=click.IntRange(1, 65535), help="The acceptor's port.")
@click.option("--sender", required=True, help="Our SenderCompID (49): the one the acceptor expects of its client. "
                                              "Replaces the scripts' TW44.")
@click.option("--target", required=True, help="Our TargetCompID (56): the acceptor's own. Replaces the scripts' ISLD.")
@click.option("--begin-string", default=SCRIPT_BEGIN_STRING, show_default=True,
              help="BeginString (8) in place of the scripts' FIX.4.4.")
@click.option("--sign-key", type=click.Path(dir_okay=False, path_type=Path),
              help="PEM private key: sign each Logon sent as Kalshi asks (RSA-PSS in RawData 96, RawDataLength 95).")
@click.option("--reset-seq-num", is_flag=True,
              help="Send ResetSeqNumFlag (141)=Y on each Logon numbered 1 and expect it in the answer (an acceptor "
                   "that keeps sequence numbers between connections, or requires a reset, as Kalshi's KalshiNR).")
@click.option("--only", "only", multiple=True, metavar="GLOBS",
              help="Comma-separated globs of file stems or scenario ids, e.g. '1a_*,quickfix/fix44/2?_*'.")
@click.option("--exclusions", "exclusion_set", type=click.Choice(NAMES), default="none", show_default=True,
              help="A named set of scenarios that cannot apply, each N/A with its reason ('kalshi': Kalshi's rules).")
@click.option("--exclude", "extra", multiple=True, metavar="STEM=REASON", help="One more N/A scenario, with why.")
@click.option("--defs", "defs_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help=f"The directory of .def files [default: {DEFAULT_DEFS}].")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=DEFAULT_TIMEOUT, show_default=True,
              help="Seconds an expected message, disconnection or connection may take.")
@click.option("--connect-wait", type=click.FloatRange(min=0), default=30.0, show_default=True,
              help="Seconds to wait, before the first scenario, for the acceptor to take connections.")
@click.option("--junit", "junit_path", type=click.Path(dir_okay=False, path_type=Path), help="Write JUnit XML here.")
@click.option("--report", "report_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Write report.json, junit.xml, report.md and report.html here.")
def acceptor_cmd(host: str, port: int, sender: str, target: str, begin_string: str, sign_key: Path | None,
                 reset_seq_num: bool, only: tuple[str, ...], exclusion_set: str, extra: tuple[str, ...],
                 defs_dir: Path | None, timeout: float, connect_wait: float, junit_path: Path | None,
                 report_dir: Path | None) -> None:
    """Play QuickFIX's FIX 4.4 session acceptance scenarios against the acceptor at HOST:PORT, as its
    client SENDER, and judge each (id quickfix/fix44/<file stem>): PASS, FAIL naming the .def line with
    what was expected and seen, N/A with the reason it cannot apply."""
    try:
        key = load_private_key(file=sign_key) if sign_key is not None else None
    except KeyLoadError as exc:
        raise click.BadParameter(str(exc), param_hint="--sign-key") from None
    try:
        identity = Identity(begin_string, sender, target, reset_seq_num, key)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    directory = defs_dir if defs_dir is not None else DEFAULT_DEFS
    try:
        paths = select_defs(directory, _globs(only))
    except AcceptorSetupError as exc:
        hint = "--only" if str(exc).startswith("only:") else "--defs"
        raise click.BadParameter(str(exc).split(": ", 1)[1], param_hint=hint) from None
    excluded = {stem: reason for stem, reason in exclusions(exclusion_set, target).items()
                if stem in {p.stem for p in paths}}  # a named set may cover scenarios --only left out
    excluded.update(_extra_exclusions(extra))
    try:
        check_exclusions(excluded, paths)
    except AcceptorSetupError as exc:
        raise click.BadParameter(str(exc).split(": ", 1)[1], param_hint="--exclude") from None
    try:
        wait_reachable(host, port, connect_wait)
    except AcceptorUnreachable as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(3)

    outcome = run_acceptor(AcceptorTarget(host, port, identity, timeout), paths, exclusions=excluded,
                           on_result=lambda result: click.echo(_line(result)))
    counts = {verdict: sum(r.verdict is verdict for r in outcome.results) for verdict in Verdict}
    code = outcome.exit_code()
    click.echo(", ".join(f"{n} {verdict.value}" for verdict, n in counts.items() if n) + f"; exit code {code}")
    if junit_path is not None or report_dir is not None:
        from conformance.report import write_html, write_json, write_junit, write_markdown

        if junit_path is not None:
            click.echo(f"JUnit: {write_junit(junit_path, outcome)}")
        if report_dir is not None:
            # Not write_reports: its conformance statement and bundle are a Kalshi client's (signed
            # off against the simulator, rejudged by the library's judges), not an acceptor's.
            report_dir.mkdir(parents=True, exist_ok=True)
            for writer, name in ((write_json, "report.json"), (write_junit, "junit.xml"),
                                 (write_markdown, "report.md"), (write_html, "report.html")):
                writer(report_dir / name, outcome)
            click.echo(f"Reports: {report_dir}")
    sys.exit(code)
