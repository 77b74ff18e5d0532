"""Deciding a run again from its bundle, offline: every scenario's registered judge and the always-on
rules over the recorded evidence, nothing else. For when a judge or a rule was fixed, or Kalshi's docs
changed, after the run.

What is not re-decided, and why: a scenario the run did not play (N/A, or not implemented then) has no
evidence to judge; an ERROR means the harness failed to do its part (a fault not injected, a wait that
broke), so its evidence is not the scenario's and judging it could turn a harness failure into a PASS.
Both keep their recorded verdict. A scenario without a judge, or whose judge raises, is an ERROR naming
it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path

from conformance.model import (
    KALSHI_DOC_DATE,
    SUITE_VERSION,
    Evidence,
    Finding,
    Rule,
    RunOutcome,
    Scenario,
    ScenarioResult,
    Verdict,
)
from conformance.profile import Profile
from conformance.scenarios import Judge

RuleCheck = Callable[[Evidence, Profile], list[Finding]]  # the always-on rules, bound to their list


def with_rules(result: ScenarioResult, broken: list[Finding]) -> ScenarioResult:
    """A judge's result with the always-on rules' findings: any broken rule makes it a FAIL (observed,
    so it outranks INCONCLUSIVE); N/A and ERROR stay as they are."""
    if not broken or result.verdict in (Verdict.NA, Verdict.ERROR):
        return result
    rules = ", ".join(sorted({f.rule for f in broken if f.rule is not None})) or "an always-on rule"
    reason = result.reason if result.verdict is Verdict.FAIL else \
        f"always-on rule {rules} broken (the scenario's own check: {result.verdict.value}, {result.reason})"
    return replace(result, verdict=Verdict.FAIL, reason=reason, findings=result.findings + tuple(broken))


def judge_one(scenario_id: str, evidence: Evidence, profile: Profile, judge: Judge | None,
              check_rules: RuleCheck | None) -> ScenarioResult:
    if judge is None:
        return ScenarioResult(scenario_id, Verdict.ERROR, f"no judge is registered for {scenario_id}")
    try:
        result = judge(evidence, profile)
    except Exception as exc:  # noqa: BLE001 - a judge's bug is the harness's failure, not the client's
        return ScenarioResult(scenario_id, Verdict.ERROR, f"the judge for {scenario_id} failed: {exc}")
    if result.scenario != scenario_id:
        return ScenarioResult(scenario_id, Verdict.ERROR,
                              f"the judge for {scenario_id} answered for {result.scenario!r}")
    try:
        broken = check_rules(evidence, profile) if check_rules is not None else []
    except Exception as exc:  # noqa: BLE001 - as above: the tool failed, not the client
        return ScenarioResult(scenario_id, Verdict.ERROR, f"the always-on rules failed on {scenario_id}: {exc}")
    return with_rules(result, broken)


def rejudge(recorded: RunOutcome, judges: Mapping[str, Judge], scenarios: Mapping[str, Scenario] | None = None,
            rules: Mapping[str, Rule] | None = None, check_rules: RuleCheck | None = None) -> RunOutcome:
    """``recorded`` decided again with ``judges`` and ``check_rules``. ``scenarios`` and ``rules`` (today's
    library) replace the recorded definitions they name, so the reports cite today's clauses and hints."""
    results = []
    for result in recorded.results:
        evidence = recorded.evidence.get(result.scenario)
        if result.verdict in (Verdict.NA, Verdict.ERROR) or evidence is None:
            results.append(result)
        else:
            results.append(judge_one(result.scenario, evidence, recorded.profile, judges.get(result.scenario),
                                     check_rules))
    return replace(
        recorded, results=results,
        scenarios={**recorded.scenarios, **{k: v for k, v in (scenarios or {}).items() if k in recorded.scenarios}},
        rules={**recorded.rules, **(rules or {})}, suite_version=SUITE_VERSION, doc_date=KALSHI_DOC_DATE,
        recorded_with=recorded.suite_version,
    )


# --- with today's judges, library and rules ---------------------------------------------------------


def rejudge_bundle(bundle: str | Path) -> tuple[RunOutcome, RunOutcome]:
    """The bundle's run as recorded, and decided again with every registered judge, the library's
    scenarios and rules, and the always-on rules check."""
    from conformance.bundle import load_bundle
    from conformance.library import load_library
    from conformance.rules import check_rules
    from conformance.scenarios import JUDGES, load_all

    recorded = load_bundle(bundle)
    load_all()
    library = load_library()

    def always_on(evidence: Evidence, profile: Profile) -> list[Finding]:
        return check_rules(evidence, profile, library.rules)

    return recorded, rejudge(recorded, JUDGES, library.scenarios, library.rules, always_on)


def changes(recorded: RunOutcome, again: RunOutcome) -> list[str]:
    """One line per scenario whose verdict moved: ``kalshi/hb/02: PASS -> FAIL (why)``."""
    before = {r.scenario: r.verdict for r in recorded.results}
    return [f"{r.scenario}: {before[r.scenario].value} -> {r.verdict.value} ({r.reason})"
            for r in again.results if before.get(r.scenario) is not r.verdict]


def rejudge_to(bundle: str | Path, report_dir: str | Path | None, junit: str | Path | None) -> tuple[int, list[str]]:
    """``fixengine conform rejudge``: decide the bundle again, write every report into ``report_dir``
    (default ``rejudged/`` beside the bundle) and JUnit to ``junit`` if given. The exit code (as a run's)
    and what to print."""
    from conformance.junit import write_junit
    from conformance.report import write_reports
    from conformance.summary import counts, exit_meaning

    recorded, again = rejudge_bundle(bundle)
    directory = Path(report_dir) if report_dir is not None else Path(bundle).parent / "rejudged"
    write_reports(directory, again)
    if junit is not None:
        write_junit(junit, again)
    code = again.exit_code()
    moved = changes(recorded, again)
    lines = moved or ["no verdict changed"]
    lines.append(f"{len(again.results)} scenarios rejudged with suite {again.suite_version} (recorded with "
                 f"{recorded.suite_version}): " + ", ".join(f"{v.value} {n}" for v, n in counts(again.results).items()))
    lines.append(f"reports in {directory}")
    lines.append(f"exit {code}: {exit_meaning(code)}")
    return code, lines
