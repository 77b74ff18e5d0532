"""The markdown report, read in half a minute: the exit code and what it means, a summary by area, then
each failure (expected, seen, the Kalshi clause, the fix hint, the transcript around the failing message,
the timeline of faults against messages), harness errors, every scenario, and what was not applicable
and why. Text from the run is escaped: a value never turns into markup."""

from __future__ import annotations

import html
import re
from pathlib import Path

from conformance.model import RunOutcome, ScenarioResult
from conformance.summary import (
    ARROW_LEGEND,
    EXIT_MEANINGS,
    VERDICTS,
    by_area,
    clause_text,
    counts,
    errors,
    exit_meaning,
    failures,
    inconclusive,
    not_applicable,
    seconds,
    timeline,
    transcript,
    utc,
)


def md(text: str) -> str:
    """Run text inside markdown prose or a table cell: no HTML, no table breaks, one line."""
    text = html.escape(text.replace("\x01", "|"), quote=False)
    return re.sub(r"\s*\n\s*", " ", text).replace("|", "\\|").replace("`", "\\`").replace("*", "\\*")


def code_block(lines: list[str]) -> list[str]:
    """A fenced block whose fence no line can close early."""
    longest = max((len(run) for line in lines for run in re.findall(r"~+", line)), default=0)
    fence = "~" * max(3, longest + 1)
    return [fence, *lines, fence]


def _measured(result: ScenarioResult) -> str:
    return ", ".join(f"{name} {value:g}" for name, value in result.measured)


def markdown(outcome: RunOutcome) -> str:
    code = outcome.exit_code()
    out = [
        f"# Kalshi FIX conformance: {md(outcome.client)} {md(outcome.client_version)}",
        "",
        (f"Suite {md(outcome.suite_version)}, following Kalshi's FIX docs as of {md(outcome.doc_date)}. "
         f"Run {utc(outcome.started)}, {max(0.0, outcome.ended - outcome.started):.1f} s, seed {outcome.seed}."),
    ]
    if outcome.recorded_with is not None:
        out.append(f"Rejudged offline from a bundle recorded with suite {md(outcome.recorded_with)}.")
    out += ["", f"**Exit code {code}: {exit_meaning(code)}.**", ""]
    totals = counts(outcome.results)
    out.append(" · ".join(f"{verdict.value} {totals[verdict]}" for verdict in VERDICTS))
    out += ["", "## Summary by area", "",
            "| Area | Kind | " + " | ".join(v.value for v in VERDICTS) + " |",
            "|---|---|" + "---:|" * len(VERDICTS)]
    for row in by_area(outcome):
        kind = "mandatory" if row.mandatory else "optional"
        out.append(f"| {md(row.area)} | {kind} | " + " | ".join(str(row.counts[v]) for v in VERDICTS) + " |")
    out.append("| **all** | | " + " | ".join(f"**{totals[v]}**" for v in VERDICTS) + " |")
    out += ["", "Exit codes: " + "; ".join(f"{n} {meaning}" for n, meaning in EXIT_MEANINGS.items()) + "."]

    failed = failures(outcome)
    out += ["", "## Failures", ""]
    if not failed:
        out.append("None.")
    for result in failed:
        out += _failure(outcome, result)

    harness = errors(outcome)
    if harness:
        out += ["", "## Harness errors", "",
                "The harness could not do its part; these scenarios prove nothing either way.", ""]
        for result in harness:
            scenario = outcome.scenarios[result.scenario]
            out.append(f"- `{scenario.id}` {md(scenario.title)}: {md(result.reason)}")

    undecided = inconclusive(outcome)
    if undecided:
        out += ["", "## Inconclusive", "", "The evidence that would decide these was not there; they are not passes.", ""]
        for result in undecided:
            scenario = outcome.scenarios[result.scenario]
            kind = "mandatory" if scenario.mandatory else "optional"
            out.append(f"- `{scenario.id}` {md(scenario.title)} ({kind}): {md(result.reason)}")

    out += ["", "## Every scenario", "", "| Verdict | Scenario | Title | Area | Kind | Reason | Measured |",
            "|---|---|---|---|---|---|---|"]
    for result in outcome.results:
        scenario = outcome.scenarios[result.scenario]
        kind = "mandatory" if scenario.mandatory else "optional"
        out.append(f"| {result.verdict.value} | `{scenario.id}` | {md(scenario.title)} | {md(scenario.area)} | "
                   f"{kind} | {md(result.reason)} | {md(_measured(result))} |")

    excluded = not_applicable(outcome)
    out += ["", "## Not applicable to this profile", ""]
    out += [f"- `{r.scenario}` {md(outcome.scenarios[r.scenario].title)}: {md(r.reason)}" for r in excluded] or ["None."]
    return "\n".join(out) + "\n"


def _failure(outcome: RunOutcome, result: ScenarioResult) -> list[str]:
    scenario = outcome.scenarios[result.scenario]
    evidence = outcome.evidence.get(result.scenario)
    kind = "mandatory" if scenario.mandatory else "optional"
    out = [f"### FAIL `{scenario.id}`: {md(scenario.title)}", "",
           f"{kind}, area {md(scenario.area)}, {md(clause_text(scenario.clause))}, {seconds(evidence):.1f} s", "",
           md(result.reason), ""]
    for n, finding in enumerate(result.findings, 1):
        if len(result.findings) > 1:
            out += [f"Finding {n}:", ""]
        out += [f"- **Expected:** {md(finding.expected)}", f"- **Seen:** {md(finding.seen)}"]
        if finding.rule is not None:
            rule = outcome.rules.get(finding.rule)
            text = f"{finding.rule}" + (f": {rule.text} ({clause_text(rule.clause)})" if rule else "")
            out.append(f"- **Always-on rule:** {md(text)}")
        out.append("")
        if evidence is not None and finding.message is not None:
            lines = transcript(evidence, finding.message)
            if lines:
                out += [f"Transcript around message {finding.message} ({ARROW_LEGEND}; `>>` marks it):", ""]
                out += code_block([f"{'>>' if line.focus else '  '} {line.offset:>9} {line.arrow} "
                                   f"#{line.connection} {line.session}  {line.text}" for line in lines])
                out.append("")
    out += [f"- **Kalshi clause:** {md(clause_text(scenario.clause))}", f"- **How to fix:** {md(scenario.hint)}", ""]
    if evidence is not None:
        entries = timeline(evidence, {f.message for f in result.findings if f.message is not None})
        if entries:
            out += ["Timeline of faults against messages (`!` marks a fault or the failing message):", ""]
            out += code_block([f"{'!' if e.focus else ' '} {e.offset:>9}  {e.text}" if e.kind != "gap"
                               else f"  {'':>9}  {e.text}" for e in entries])
            out.append("")
    return out


def write_markdown(path: str | Path, outcome: RunOutcome) -> Path:
    path = Path(path)
    path.write_text(markdown(outcome), encoding="utf-8")
    return path

