"""The HTML report: the markdown report's content as one self-contained page (inline CSS, no external
assets, no script; a Content-Security-Policy forbids both), to open from a CI artefact or mail on. Every
value from the run goes through ``html.escape``: a client's Text carrying ``<script>`` is shown as text."""

from __future__ import annotations

from html import escape
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

CSS = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 72rem; padding: 0 1rem; color: #1b1f24; }
h1 { font-size: 1.5rem; margin-bottom: .25rem; } h2 { margin-top: 2rem; border-bottom: 1px solid #d0d7de; }
h3 { margin-bottom: .25rem; } h4 { margin: 1rem 0 .25rem; font-size: .95rem; }
.meta, .where, .legend { color: #57606a; }
.exit { font-size: 1.1rem; padding: .5rem .75rem; border-radius: 6px; }
.exit-0 { background: #dafbe1; } .exit-1 { background: #ffebe9; } .exit-2 { background: #fff8c5; }
.exit-3 { background: #ffebe9; }
table { border-collapse: collapse; margin: .5rem 0; } th, td { border: 1px solid #d0d7de; padding: .2rem .5rem;
text-align: left; vertical-align: top; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
.v { font-weight: 600; white-space: nowrap; } .v-PASS { color: #1a7f37; } .v-FAIL, .v-ERROR { color: #cf222e; }
.v-INCONCLUSIVE { color: #9a6700; } .v-NA { color: #57606a; }
.failure { border-left: 4px solid #cf222e; padding: .25rem 1rem; margin: 1rem 0; background: #fafbfc; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; } dt { font-weight: 600; }
dd { margin: 0; } pre, code { font: 13px/1.4 ui-monospace, monospace; }
pre { background: #f6f8fa; padding: .5rem; white-space: pre-wrap; word-break: break-all; }
.transcript .focus { background: #ffd8d3; display: block; } tr.focus td { background: #ffd8d3; }
tr.fault td { background: #fff1c2; } tr.gap td { color: #57606a; font-style: italic; }
"""


def _e(text: str) -> str:
    """A value from the run as HTML text (FIX's SOH shown as |)."""
    return escape(text.replace("\x01", "|"))


def _v(verdict_value: str) -> str:
    return f'<span class="v v-{_e(verdict_value.replace("/", ""))}">{_e(verdict_value)}</span>'


def html_report(outcome: RunOutcome) -> str:
    code = outcome.exit_code()
    title = f"Kalshi FIX conformance: {outcome.client} {outcome.client_version}"
    out = [
        "<!doctype html>", '<html lang="en"><head><meta charset="utf-8">',
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title><style>{CSS}</style></head><body>",
        f"<header><h1>{_e(title)}</h1>",
        (f'<p class="meta">Suite {_e(outcome.suite_version)}, following Kalshi\'s FIX docs as of '
         f"{_e(outcome.doc_date)}. Run {_e(utc(outcome.started))}, "
         f"{max(0.0, outcome.ended - outcome.started):.1f} s, seed {_e(str(outcome.seed))}.</p>"),
    ]
    if outcome.recorded_with is not None:
        out.append(f'<p class="meta">Rejudged offline from a bundle recorded with suite '
                   f"{_e(outcome.recorded_with)}.</p>")
    out.append(f'<p id="exit" class="exit exit-{code}" data-exit-code="{code}"><strong>Exit code {code}</strong>: '
               f"{_e(exit_meaning(code))}.</p>")
    totals = counts(outcome.results)
    out.append('<p id="totals">' + " · ".join(f"{_v(v.value)} {totals[v]}" for v in VERDICTS) + "</p></header>")

    out += ['<section id="summary"><h2>Summary by area</h2><table><thead><tr><th>Area</th><th>Kind</th>'
            + "".join(f"<th>{_e(v.value)}</th>" for v in VERDICTS) + "</tr></thead><tbody>"]
    for row in by_area(outcome):
        kind = "mandatory" if row.mandatory else "optional"
        out.append(f'<tr data-area="{_e(row.area)}" data-kind="{kind}"><td>{_e(row.area)}</td><td>{kind}</td>'
                   + "".join(f'<td class="n">{row.counts[v]}</td>' for v in VERDICTS) + "</tr>")
    out.append('<tr class="all"><th>all</th><th></th>'
               + "".join(f'<th class="n">{totals[v]}</th>' for v in VERDICTS) + "</tr></tbody></table>")
    out.append('<p class="legend">Exit codes: '
               + "; ".join(f"{n} {_e(meaning)}" for n, meaning in EXIT_MEANINGS.items()) + ".</p></section>")

    out.append('<section id="failures"><h2>Failures</h2>')
    failed = failures(outcome)
    if not failed:
        out.append("<p>None.</p>")
    for result in failed:
        out += _failure(outcome, result)
    out.append("</section>")

    harness = errors(outcome)
    if harness:
        out.append('<section id="errors"><h2>Harness errors</h2><p>The harness could not do its part; these '
                   "scenarios prove nothing either way.</p><ul>")
        out += [f"<li><code>{_e(r.scenario)}</code> {_e(outcome.scenarios[r.scenario].title)}: "
                f"{_e(r.reason)}</li>" for r in harness]
        out.append("</ul></section>")

    undecided = inconclusive(outcome)
    if undecided:
        out.append('<section id="inconclusive"><h2>Inconclusive</h2><p>The evidence that would decide these was '
                   "not there; they are not passes.</p><ul>")
        out += [f"<li><code>{_e(r.scenario)}</code> {_e(outcome.scenarios[r.scenario].title)} "
                f"({'mandatory' if outcome.scenarios[r.scenario].mandatory else 'optional'}): {_e(r.reason)}</li>"
                for r in undecided]
        out.append("</ul></section>")

    out.append('<section id="scenarios"><h2>Every scenario</h2><table><thead><tr><th>Verdict</th><th>Scenario</th>'
               "<th>Title</th><th>Area</th><th>Kind</th><th>Reason</th><th>Measured</th></tr></thead><tbody>")
    for result in outcome.results:
        scenario = outcome.scenarios[result.scenario]
        measured = ", ".join(f"{name} {value:g}" for name, value in result.measured)
        out.append(f'<tr data-scenario="{_e(scenario.id)}" data-verdict="{_e(result.verdict.value)}">'
                   f"<td>{_v(result.verdict.value)}</td><td><code>{_e(scenario.id)}</code></td>"
                   f"<td>{_e(scenario.title)}</td><td>{_e(scenario.area)}</td>"
                   f"<td>{'mandatory' if scenario.mandatory else 'optional'}</td><td>{_e(result.reason)}</td>"
                   f"<td>{_e(measured)}</td></tr>")
    out.append("</tbody></table></section>")

    out.append('<section id="not-applicable"><h2>Not applicable to this profile</h2>')
    excluded = not_applicable(outcome)
    out.append("<ul>" + "".join(f"<li><code>{_e(r.scenario)}</code> "
                                f"{_e(outcome.scenarios[r.scenario].title)}: {_e(r.reason)}</li>"
                                for r in excluded) + "</ul>" if excluded else "<p>None.</p>")
    out.append("</section></body></html>")
    return "\n".join(out) + "\n"


def _failure(outcome: RunOutcome, result: ScenarioResult) -> list[str]:
    scenario = outcome.scenarios[result.scenario]
    evidence = outcome.evidence.get(result.scenario)
    kind = "mandatory" if scenario.mandatory else "optional"
    out = [f'<article class="failure" data-scenario="{_e(scenario.id)}">',
           f"<h3>{_v('FAIL')} <code>{_e(scenario.id)}</code> {_e(scenario.title)}</h3>",
           (f'<p class="where">{kind}, area {_e(scenario.area)}, {_e(clause_text(scenario.clause))}, '
            f"{seconds(evidence):.1f} s</p>"),
           f'<p class="reason">{_e(result.reason)}</p>']
    for finding in result.findings:
        out.append('<dl class="finding">')
        out.append(f'<dt>Expected</dt><dd class="expected">{_e(finding.expected)}</dd>')
        out.append(f'<dt>Seen</dt><dd class="seen">{_e(finding.seen)}</dd>')
        if finding.rule is not None:
            rule = outcome.rules.get(finding.rule)
            text = finding.rule + (f": {rule.text} ({clause_text(rule.clause)})" if rule else "")
            out.append(f'<dt>Always-on rule</dt><dd class="rule">{_e(text)}</dd>')
        out.append("</dl>")
        lines = transcript(evidence, finding.message) if evidence is not None and finding.message is not None else []
        if lines:
            out.append(f"<h4>Transcript around message {finding.message}</h4>"
                       f'<p class="legend">{_e(ARROW_LEGEND)}; the failing message is highlighted.</p>')
            rendered = []
            for line in lines:
                text = _e(f"{line.offset:>9} {line.arrow} #{line.connection} {line.session}  {line.text}")
                rendered.append(f'<span class="focus">{text}</span>' if line.focus else text + "\n")
            out.append('<pre class="transcript">' + "".join(rendered) + "</pre>")
    out.append(f'<dl><dt>Kalshi clause</dt><dd class="clause">{_e(clause_text(scenario.clause))}</dd>'
               f'<dt>How to fix</dt><dd class="hint">{_e(scenario.hint)}</dd></dl>')
    if evidence is not None:
        entries = timeline(evidence, {f.message for f in result.findings if f.message is not None})
        if entries:
            out.append('<h4>Timeline of faults against messages</h4><table class="timeline"><tbody>')
            for entry in entries:
                css = "gap" if entry.kind == "gap" else "fault" if entry.kind == "fault" else \
                    "focus" if entry.focus else entry.kind
                out.append(f'<tr class="{css}"><td class="n">{_e(entry.offset)}</td>'
                           f"<td><code>{_e(entry.text)}</code></td></tr>")
            out.append("</tbody></table>")
    out.append("</article>")
    return out


def write_html(path: str | Path, outcome: RunOutcome) -> Path:
    path = Path(path)
    path.write_text(html_report(outcome), encoding="utf-8")
    return path
