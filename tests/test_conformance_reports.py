"""The conformance run's outputs, from one run built by hand out of real FIX messages (framed by
``fixengine.fix.framing.encode``) with one result of each verdict: the JUnit XML CI tools read, the
versioned JSON report and its reader, the markdown and HTML reports a person reads (the HTML in a real
headless Chromium), the conformance statement and its SHA-256 of the JSON report, the run bundle, and
``fixengine conform rejudge`` deciding the bundle again with registered judges."""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner
from playwright.async_api import expect

from conformance.bundle import load_bundle, redact_signature, save_bundle
from conformance.codec import CodecError
from conformance.model import (
    JSON_SCHEMA,
    KALSHI_DOC_DATE,
    SUITE_VERSION,
    Clause,
    ClientSays,
    Direction,
    Evidence,
    FaultMark,
    Finding,
    Instruction,
    Need,
    RestCall,
    Rule,
    RunOutcome,
    Scenario,
    ScenarioResult,
    Verdict,
    WireMessage,
)
from conformance.profile import Profile
from conformance.rejudge import rejudge
from conformance.report import (
    read_json,
    write_html,
    write_json,
    write_junit,
    write_markdown,
    write_reports,
)
from conformance.scenarios import JUDGES
from conformance.statement import write_statement
from fixengine.fix.framing import FrameReader, encode
from fixengine.fix.timestamps import utc_timestamp
from tests.helpers.browser import headless_chromium

KEY = "0f9d2f4e-1c0b-4f5e-9a57-5d7e3e0c2a11"
T0 = 1_790_000_000.0  # the run's start, epoch seconds
SCRIPT = "<script>window.pwned = 1</script>"  # a client's Text: must reach every report as text

PASS_ID, FAIL_ID, INCONCLUSIVE_ID, NA_ID, ERROR_ID = (
    "test/reports/01", "test/reports/02", "test/reports/03", "test/reports/04", "test/reports/05")


def at(i: int) -> float:
    """The time of the i-th message of the order flow: one every half second from the start."""
    return T0 + 0.5 * i


def fix(i: int, seq: int, msg_type: str, *fields: tuple[int, str], to_client: bool = False) -> str:
    sender, target = ("KalshiNR", KEY) if to_client else (KEY, "KalshiNR")
    sent = utc_timestamp(datetime.fromtimestamp(at(i), UTC))
    head = [(35, msg_type), (49, sender), (56, target), (34, str(seq)), (52, sent)]
    return encode("FIXT.1.1", head + list(fields)).decode("latin-1")


def scenario(scenario_id: str, title: str, area: str, mandatory: bool, section: str, hint: str,
             fix_tc: str = "") -> Scenario:
    return Scenario(id=scenario_id, title=title, area=area, mandatory=mandatory,
                    clause=Clause(section, KALSHI_DOC_DATE, fix_tc), simulator_does="plays Kalshi",
                    passes_when="the client behaves", hint=hint, needs=frozenset({Need.WIRE}),
                    sessions=frozenset({"KalshiNR"}))


SCENARIOS = {s.id: s for s in [
    scenario(PASS_ID, "Signed Logon accepted", "logon", True, "§5.1", "sign after QuickFIX stamps 52", "1B"),
    scenario(FAIL_ID, "Prices on the cent grid", "orders", True, "§10.3", "send 44 in whole cents, 1 to 99"),
    scenario(INCONCLUSIVE_ID, "PossDup fill not applied twice", "orders", True, "§11.1", "deduplicate ExecIDs"),
    scenario(NA_ID, "Resend on KalshiRT", "sequence", True, "§7.3", "answer 35=2 with PossDup copies"),
    scenario(ERROR_ID, "Rate limit handled", "rate-limits", False, "§8", "back off after 380=8"),
]}
P8 = Rule("P8", "40=2 only; 44 on the 1-99 cent grid", Clause("§10.2", KALSHI_DOC_DATE))

# The failing order: 44=150 is off the grid, and its Text carries markup a report must not run.
BAD_ORDER = 5


def order_flow() -> Evidence:
    """Logon both ways, heartbeats, a good order and its report, the bad order, its reject, more."""
    c, s = Direction.FROM_CLIENT, Direction.TO_CLIENT
    raw = [
        (c, fix(0, 1, "A", (98, "0"), (108, "30"), (141, "Y"), (95, "8"), (96, "c2lnbmF0"), (1137, "9"))),
        (s, fix(1, 1, "A", (98, "0"), (108, "30"), (141, "Y"), (1137, "9"), to_client=True)),
        (c, fix(2, 2, "0")),
        (c, fix(3, 3, "D", (11, "ord-1"), (55, "KXTEST"), (54, "1"), (38, "1"), (40, "2"), (44, "45"))),
        (s, fix(4, 2, "8", (11, "ord-1"), (37, "o1"), (17, "e1"), (150, "0"), (39, "0"), to_client=True)),
        (c, fix(5, 4, "D", (11, "ord-2"), (55, "KXTEST"), (54, "1"), (38, "1"), (40, "2"), (44, "150"),
                   (58, SCRIPT))),
        (s, fix(6, 3, "8", (11, "ord-2"), (37, "o2"), (17, "e2"), (150, "8"), (39, "8"), (58, "INVALID_ORDER"),
                   to_client=True)),
        (c, fix(7, 5, "0")),
        (s, fix(8, 4, "0", to_client=True)),
        (c, fix(9, 6, "5", (58, "bye"))),
    ]
    messages = [WireMessage(at(i), 1, d, "KalshiNR", m) for i, (d, m) in enumerate(raw)]
    return Evidence(
        messages=messages,
        faults=[FaultMark(T0 + 2.2, "drop_outbound 1 (the next fill report)")],
        rest=[RestCall(T0 + 3.9, "GET", "/trade-api/v2/portfolio/orders", 200)],
        instructions=[Instruction(T0 + 1.2, '{"id": "i1", "action": "place", "price": "1.50"}')],
        client=[ClientSays(T0 + 1.3, '{"id": "i1", "ok": true, "order": "k2"}')],
        heartbeat_interval=30.0, started=T0, ended=T0 + 5.0,
    )


def outcome_by_hand() -> RunOutcome:
    logon_only = Evidence(messages=order_flow().messages[:2], started=T0 + 10, ended=T0 + 11)
    results = [
        ScenarioResult(PASS_ID, Verdict.PASS, "the Logon was accepted", measured=(("logon_ms", 12.5),)),
        ScenarioResult(FAIL_ID, Verdict.FAIL, "an order was priced off the cent grid", findings=(
            Finding(expected="44 between 1 and 99 (cents)", seen=f"44=150 with 58={SCRIPT}", message=BAD_ORDER,
                    rule="P8"),)),
        ScenarioResult(INCONCLUSIVE_ID, Verdict.INCONCLUSIVE, "the client does not report its state"),
        ScenarioResult(NA_ID, Verdict.NA, "the profile uses no KalshiRT session"),
        ScenarioResult(ERROR_ID, Verdict.ERROR, "the simulator refused the fault rate_limit"),
    ]
    return RunOutcome(
        profile=Profile.model_validate({"client": "Acme OMS", "version": "4.2.0", "features": ["instructions"],
                                        "session": [{"type": "KalshiNR", "logon": {"use_dollars": False}}]}),
        seed=7, started=T0, ended=T0 + 20, results=results, scenarios=dict(SCENARIOS),
        evidence={PASS_ID: logon_only, FAIL_ID: order_flow(), INCONCLUSIVE_ID: Evidence(started=T0, ended=T0 + 1),
                  ERROR_ID: Evidence(started=T0, ended=T0 + 2)},
        rules={"P8": P8},
    )


def pipes(raw: str) -> str:
    return raw.replace("\x01", "|")


# --- JUnit ------------------------------------------------------------------------------------------


def test_junit_has_one_testcase_per_scenario_with_failure_error_and_skipped_elements(tmp_path) -> None:
    outcome = outcome_by_hand()
    root = ET.parse(write_junit(tmp_path / "junit.xml", outcome)).getroot()

    assert root.tag == "testsuites"
    [suite] = root.findall("testsuite")
    assert {k: suite.get(k) for k in ("tests", "failures", "errors", "skipped")} == {
        "tests": "5", "failures": "1", "errors": "1", "skipped": "2"}
    properties = {p.get("name"): p.get("value") for p in suite.findall("properties/property")}
    assert properties["suite_version"] == SUITE_VERSION and properties["doc_date"] == KALSHI_DOC_DATE
    assert properties["client"] == "Acme OMS" and properties["client_version"] == "4.2.0"
    assert properties["seed"] == "7"

    cases = {case.get("name"): case for case in suite.findall("testcase")}
    assert list(cases) == [f"{s.id} {s.title}" for s in SCENARIOS.values()]
    assert [case.get("classname") for case in cases.values()] == [s.area for s in SCENARIOS.values()]
    passed, failed, inconclusive, na, error = cases.values()
    assert [e.tag for e in passed] == ["system-out"] and passed.find("system-out").text == "logon_ms = 12.5"
    [failure] = failed.findall("failure")
    assert failure.get("message") == "an order was priced off the cent grid"
    assert "expected: 44 between 1 and 99 (cents)" in failure.text
    assert f"seen: 44=150 with 58={SCRIPT}" in failure.text
    assert f"clause: §10.3 of Kalshi's FIX docs as of {KALSHI_DOC_DATE}" in failure.text
    assert "rule: P8 40=2 only" in failure.text
    assert "message: 8=FIXT.1.1|" in failure.text and "\x01" not in failure.text  # SOH cannot be XML
    assert error.find("error").get("message") == "the simulator refused the fault rate_limit"
    assert inconclusive.find("skipped").get("message") == "INCONCLUSIVE: the client does not report its state"
    assert na.find("skipped").get("message") == "N/A: the profile uses no KalshiRT session"
    assert failed.find("skipped") is None and passed.find("failure") is None


# --- JSON -------------------------------------------------------------------------------------------


def test_the_json_report_is_versioned_and_reads_back_to_the_same_results(tmp_path) -> None:
    outcome = outcome_by_hand()
    path = write_json(tmp_path / "report.json", outcome)

    data = json.loads(path.read_text())
    assert data["schema"] == JSON_SCHEMA and data["exit_code"] == 3
    assert data["counts"] == {"PASS": 1, "FAIL": 1, "INCONCLUSIVE": 1, "N/A": 1, "ERROR": 1}
    failed = data["results"][1]
    assert failed["clause"] == {"section": "§10.3", "doc_date": KALSHI_DOC_DATE, "fix_tc": ""}
    assert failed["findings"][0]["wire"]["raw"] == outcome.evidence[FAIL_ID].messages[BAD_ORDER].raw
    assert data["results"][0]["measured"] == {"logon_ms": 12.5}
    assert data["results"][0]["clause"]["fix_tc"] == "1B"

    report = read_json(path)
    assert report.results == outcome.results
    assert (report.client, report.client_version, report.seed, report.exit_code) == ("Acme OMS", "4.2.0", 7, 3)

    data["schema"] = "fixengine.conformance/0"
    path.write_text(json.dumps(data))
    with pytest.raises(CodecError, match="report.json.schema: 'fixengine.conformance/0'"):
        read_json(path)
    data["schema"] = JSON_SCHEMA
    del data["results"][1]["findings"][0]["expected"]
    path.write_text(json.dumps(data))
    with pytest.raises(CodecError, match=r"report.json.results\[1\].findings\[0\].expected: missing"):
        read_json(path)


# --- markdown ---------------------------------------------------------------------------------------


def test_the_markdown_report_shows_the_failure_with_its_transcript_and_timeline(tmp_path) -> None:
    outcome = outcome_by_hand()
    text = write_markdown(tmp_path / "report.md", outcome).read_text()
    messages = outcome.evidence[FAIL_ID].messages

    assert "**Exit code 3: the harness failed (ERROR)" in text
    assert "| orders | mandatory | 0 | 1 | 1 | 0 | 0 |" in text
    assert "| rate-limits | optional | 0 | 0 | 0 | 0 | 1 |" in text
    failure = text[text.index("## Failures"):text.index("## Harness errors")]
    assert "### FAIL `test/reports/02`: Prices on the cent grid" in failure
    assert "**Expected:** 44 between 1 and 99 (cents)" in failure
    assert "**Seen:** 44=150 with 58=&lt;script&gt;window.pwned = 1&lt;/script&gt;" in failure
    assert f"**Kalshi clause:** §10.3 of Kalshi's FIX docs as of {KALSHI_DOC_DATE}" in failure
    assert "**How to fix:** send 44 in whole cents, 1 to 99" in failure
    assert "**Always-on rule:** P8: 40=2 only" in failure

    # the transcript: three messages either side of the failing one, SOH as |, arrows, relative times
    shown = [i for i, m in enumerate(messages) if pipes(m.raw) in failure]
    assert shown == [2, 3, 4, 5, 6, 7, 8]
    assert f">>   +2.500s → #1 KalshiNR  {pipes(messages[BAD_ORDER].raw)}" in failure
    assert f"     +3.000s ← #1 KalshiNR  {pipes(messages[6].raw)}" in failure

    # the timeline: the fault between the messages it fell between, REST and instructions in their place
    timeline = failure[failure.index("Timeline"):]
    order = [timeline.index(part) for part in (
        "+1.000s  → #1 KalshiNR 35=0 Heartbeat 34=2", "+1.200s  instruction:", "+1.300s  client says:",
        "+2.000s  ← #1 KalshiNR 35=8 ExecutionReport 34=2", "!   +2.200s  fault: drop_outbound 1 (the next fill report)",
        "!   +2.500s  → #1 KalshiNR 35=D NewOrderSingle 34=4", "+3.900s  REST GET /trade-api/v2/portfolio/orders → 200",
        "+4.500s  → #1 KalshiNR 35=5 Logout 34=6")]
    assert order == sorted(order)

    assert "- `test/reports/05` Rate limit handled: the simulator refused the fault rate_limit" in text
    assert "- `test/reports/04` Resend on KalshiRT: the profile uses no KalshiRT session" in text
    assert "| PASS | `test/reports/01` | Signed Logon accepted | logon | mandatory | the Logon was accepted | logon_ms 12.5 |" \
        in text
    outside_transcripts = re.sub(r"^(~{3,})\n.*?^\1$", "", text, flags=re.MULTILINE | re.DOTALL)
    assert "<script>" not in outside_transcripts and "&lt;script&gt;" in outside_transcripts


# --- statement --------------------------------------------------------------------------------------


def test_the_statement_names_the_client_suite_scope_and_the_json_reports_sha256(tmp_path) -> None:
    outcome = outcome_by_hand()
    json_path = write_json(tmp_path / "report.json", outcome)
    text = write_statement(tmp_path / "statement.md", outcome, json_path).read_text()

    digest = re.search(r"SHA-256 of report\.json: ([0-9a-f]{64})", text)
    assert digest is not None and digest.group(1) == hashlib.sha256(json_path.read_bytes()).hexdigest()
    assert "Client: Acme OMS 4.2.0" in text
    assert f"Suite: fixengine conformance {SUITE_VERSION}, pinned to Kalshi's FIX documentation as of " \
           f"{KALSHI_DOC_DATE}" in text
    assert "Verdicts: PASS 1, FAIL 1, INCONCLUSIVE 1, N/A 1, ERROR 1" in text
    assert "Session: KalshiNR (fixt11), Logon switches: reset_seq_num" in text
    assert "- test/reports/04: the profile uses no KalshiRT session" in text
    mandatory = text[text.index("## Mandatory scenarios"):text.index("## Optional scenarios")]
    assert mandatory.split("\n")[2:5] == ["- PASS test/reports/01: Signed Logon accepted",
                                          "- FAIL test/reports/02: Prices on the cent grid",
                                          "- INCONCLUSIVE test/reports/03: PossDup fill not applied twice"]
    assert "test/reports/04" not in mandatory  # N/A: out of scope, not a mandatory verdict
    assert "self-attested" in text and "this is not a Kalshi certification" in text


# --- the bundle -------------------------------------------------------------------------------------


def test_the_bundle_round_trips_with_the_logon_signature_masked_and_its_framing_kept(tmp_path) -> None:
    outcome = outcome_by_hand()
    assert load_bundle(save_bundle(tmp_path / "raw.jsonl", outcome, redact=False)) == outcome
    assert load_bundle(save_bundle(tmp_path / "raw.jsonl.gz", outcome, redact=False)) == outcome
    assert gzip.decompress((tmp_path / "raw.jsonl.gz").read_bytes()).startswith(b'{"kind": "run"')

    path = save_bundle(tmp_path / "bundle.jsonl", outcome)
    assert "c2lnbmF0" not in path.read_text()
    loaded = load_bundle(path)
    assert loaded.results == outcome.results and loaded.profile == outcome.profile and loaded.seed == 7
    logon = loaded.evidence[FAIL_ID].messages[0].raw
    assert "\x0195=8\x0196=********\x01" in logon
    reader = FrameReader()
    reader.feed(logon.encode("latin-1"))
    assert reader.next_message() is not None  # BodyLength and CheckSum still right
    garbled = outcome.evidence[FAIL_ID].messages[0].raw[:-4] + "000\x01"  # a wrong CheckSum stays wrong
    assert redact_signature(garbled).endswith("10=000\x01")
    assert loaded.evidence[FAIL_ID].messages[1:] == outcome.evidence[FAIL_ID].messages[1:]
    assert loaded.evidence[FAIL_ID].faults == outcome.evidence[FAIL_ID].faults

    lines = path.read_text().splitlines()
    kinds = [json.loads(line)["kind"] for line in lines]
    assert kinds[:3] == ["run", "rule", "scenario"] and kinds.count("result") == 5 and kinds.count("fix") == 12
    first = kinds.index("fix")
    lines[first] = lines[first].replace('"at": ', '"at": "soon", "was": ')
    (tmp_path / "broken.jsonl").write_text("\n".join(lines))
    with pytest.raises(CodecError, match=rf"broken.jsonl:{first + 1}.at: expected a number, got 'soon'"):
        load_bundle(tmp_path / "broken.jsonl")


# --- rejudge ----------------------------------------------------------------------------------------


def _judge_prices(evidence: Evidence, profile: Profile) -> ScenarioResult:
    """A judge as the scenario modules write them: from the evidence alone."""
    for i, message in enumerate(evidence.messages):
        if "\x0135=D\x01" in message.raw:
            price = int(re.search(r"\x0144=(\d+)\x01", message.raw).group(1))
            if not 1 <= price <= 99:
                return ScenarioResult(FAIL_ID, Verdict.FAIL, "an order was priced off the cent grid",
                                      (Finding("44 between 1 and 99 (cents)", f"44={price}", i),))
    return ScenarioResult(FAIL_ID, Verdict.PASS, "every order was on the grid")


@pytest.fixture
def judges() -> Iterator[None]:
    """Judges for the test scenarios, registered as the scenario modules register theirs."""
    mine = {
        PASS_ID: lambda e, p: ScenarioResult(PASS_ID, Verdict.PASS, "the Logon was accepted"),
        FAIL_ID: _judge_prices,
        INCONCLUSIVE_ID: lambda e, p: ScenarioResult(INCONCLUSIVE_ID, Verdict.INCONCLUSIVE, "no state probe"),
        NA_ID: lambda e, p: ScenarioResult(NA_ID, Verdict.PASS, "never asked: it did not run"),
        ERROR_ID: lambda e, p: ScenarioResult(ERROR_ID, Verdict.PASS, "never asked: the harness failed"),
    }
    assert not set(mine) & set(JUDGES)
    JUDGES.update(mine)
    yield
    for scenario_id in mine:
        del JUDGES[scenario_id]


def recorded_with_a_lenient_old_judge() -> RunOutcome:
    """The run as an older suite recorded it: its judge let the off-grid order through."""
    outcome = outcome_by_hand()
    results = [replace(r, verdict=Verdict.PASS, reason="old judge", findings=()) if r.scenario == FAIL_ID else r
               for r in outcome.results]
    return replace(outcome, results=results, suite_version="0.9+kalshi.2026-05-01")


def test_rejudge_decides_again_from_the_evidence_and_keeps_na_and_error(judges) -> None:
    recorded = recorded_with_a_lenient_old_judge()
    again = rejudge(recorded, JUDGES)
    verdicts = [(r.scenario, r.verdict) for r in again.results]
    assert verdicts == [(PASS_ID, Verdict.PASS), (FAIL_ID, Verdict.FAIL), (INCONCLUSIVE_ID, Verdict.INCONCLUSIVE),
                        (NA_ID, Verdict.NA), (ERROR_ID, Verdict.ERROR)]
    assert again.results[1].findings == (Finding("44 between 1 and 99 (cents)", "44=150", BAD_ORDER),)
    assert (again.suite_version, again.recorded_with) == (SUITE_VERSION, "0.9+kalshi.2026-05-01")

    def p4(evidence: Evidence, profile: Profile) -> list[Finding]:
        return [Finding("34 rises by 1", "34=1 twice", 1, rule="P4")] if len(evidence.messages) == 2 else []

    with_rules = rejudge(recorded, JUDGES, check_rules=p4)
    assert with_rules.results[0].verdict is Verdict.FAIL  # the Logon scenario's evidence broke P4
    assert with_rules.results[0].reason.startswith("always-on rule P4 broken")
    assert with_rules.results[1].findings == again.results[1].findings  # P4 held there

    unplayed = replace(recorded, evidence={k: v for k, v in recorded.evidence.items() if k != INCONCLUSIVE_ID})
    assert rejudge(unplayed, JUDGES).results[2] == recorded.results[2]  # not played then: nothing to judge now

    del JUDGES[PASS_ID]
    try:
        assert rejudge(recorded, JUDGES).results[0] == ScenarioResult(
            PASS_ID, Verdict.ERROR, "no judge is registered for test/reports/01")
    finally:
        JUDGES[PASS_ID] = lambda e, p: ScenarioResult(PASS_ID, Verdict.PASS, "")


def test_fixengine_conform_rejudge_writes_the_reports_and_exits_by_the_new_verdicts(judges, tmp_path) -> None:
    from conformance.cli import conform

    bundle = save_bundle(tmp_path / "bundle.jsonl", recorded_with_a_lenient_old_judge())
    result = CliRunner().invoke(conform, ["rejudge", str(bundle), "--report", str(tmp_path / "again"),
                                          "--junit", str(tmp_path / "ci.xml")])

    assert result.exit_code == 3, result.output  # the recorded ERROR stays: the harness failed there
    assert "test/reports/02: PASS -> FAIL" in result.output
    report = read_json(tmp_path / "again" / "report.json")
    assert [r.verdict for r in report.results] == [
        Verdict.PASS, Verdict.FAIL, Verdict.INCONCLUSIVE, Verdict.NA, Verdict.ERROR]
    assert report.suite_version == SUITE_VERSION
    assert "Rejudged offline from a bundle recorded with suite 0.9+kalshi.2026-05-01" in \
        (tmp_path / "again" / "report.md").read_text()
    assert ET.parse(tmp_path / "ci.xml").getroot().find("testsuite").get("failures") == "1"
    for name in ("junit.xml", "report.html", "statement.md", "bundle.jsonl"):
        assert (tmp_path / "again" / name).is_file()

    (tmp_path / "old.jsonl").write_text('{"kind": "run", "schema": "fixengine.conformance/0"}\n')
    unreadable = CliRunner().invoke(conform, ["rejudge", str(tmp_path / "old.jsonl")])
    assert unreadable.exit_code == 3  # nothing was judged: not a FAIL
    assert "the bundle cannot be read: old.jsonl:1.schema: 'fixengine.conformance/0'" in unreadable.output


def test_write_reports_writes_every_output_and_the_statement_hashes_the_json(tmp_path) -> None:
    files = write_reports(tmp_path / "out", outcome_by_hand())
    assert {p.name for p in (tmp_path / "out").iterdir()} == {
        "report.json", "junit.xml", "report.md", "report.html", "statement.md", "bundle.jsonl"}
    assert hashlib.sha256(files.json.read_bytes()).hexdigest() in files.statement.read_text()
    assert load_bundle(files.bundle).results == outcome_by_hand().results


# --- HTML, in a real browser ------------------------------------------------------------------------


async def test_the_html_report_in_chromium_shows_the_summary_and_the_failure_with_markup_as_text(tmp_path) -> None:
    path = write_html(tmp_path / "report.html", outcome_by_hand())
    html = path.read_text()
    assert not re.search(r"<(script|link|img|iframe)\b|\b(src|href)=", html)  # self-contained, no script

    async with headless_chromium() as chromium:
        page = await chromium.new_page()
        await page.goto(path.as_uri())
        await expect(page.locator("h1")).to_have_text("Kalshi FIX conformance: Acme OMS 4.2.0")
        await expect(page.locator("#exit")).to_have_attribute("data-exit-code", "3")
        await expect(page.locator("#exit")).to_contain_text("the harness failed")
        orders = page.locator('#summary tr[data-area="orders"][data-kind="mandatory"] td')
        await expect(orders).to_have_text(["orders", "mandatory", "0", "1", "1", "0", "0"])

        failure = page.locator('#failures .failure[data-scenario="test/reports/02"]')
        await expect(failure).to_be_visible()
        await expect(failure.locator(".expected")).to_have_text("44 between 1 and 99 (cents)")
        await expect(failure.locator(".seen")).to_have_text(f"44=150 with 58={SCRIPT}")
        await expect(failure.locator(".clause")).to_have_text(f"§10.3 of Kalshi's FIX docs as of {KALSHI_DOC_DATE}")
        await expect(failure.locator(".hint")).to_have_text("send 44 in whole cents, 1 to 99")
        await expect(failure.locator(".transcript .focus")).to_contain_text("35=D|49=")
        await expect(failure.locator(".timeline tr.fault")).to_contain_text("fault: drop_outbound 1")
        await expect(page.locator('#scenarios tr[data-verdict="N/A"]')).to_contain_text(
            "the profile uses no KalshiRT session")

        assert await page.locator("script").count() == 0  # the Text's <script> stayed text
        assert await page.evaluate("typeof window.pwned") == "undefined"
        assert await page.locator('link, img, [src]').count() == 0
