"""The conformance runner against real client processes on a real simulator: PASS for a client that
does the right thing, FAIL for one that does not, ERROR (exit code 3) when the harness cannot do its
part, N/A by the profile without starting the client, scenarios in parallel on keys of their own,
and a client that never connects judged within the stated bound. Plus ``fixengine conform run``."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from conformance.cli import conform
from conformance.library import Library, load_library
from conformance.model import Evidence, ScenarioResult, Verdict
from conformance.profile import Profile, ProfileSession
from conformance.runner import NOT_IMPLEMENTED, ScenarioContext, run, run_one
from conformance.scenarios import DRIVERS, JUDGES, load_all
from conformance.transcript import messages
from fixengine.kalshi.facts import SessionType

load_all()  # registered before a test replaces one (the registry refuses a second driver for an id)
RAW_CLIENT = f"{sys.executable} -m tests.helpers.raw_fix_client"
NR_ONLY = Profile()  # one KalshiNR session, takes instructions


@pytest.fixture(scope="module")
def library() -> Library:
    return load_library()


def test_a_client_that_answers_test_requests_passes_and_gets_the_runners_environment(tmp_path: Path) -> None:
    env_file = tmp_path / "env.json"
    result, evidence = asyncio.run(run_one("kalshi/hb/02", f"{RAW_CLIENT} --print-env {env_file}", NR_ONLY))

    assert result.verdict is Verdict.PASS, result
    measured = dict(result.measured)
    assert measured["testrequests"] == 3 and 0 < measured["testrequest_latency_ms_max"] < 4000
    assert evidence.heartbeat_interval == 4.0
    msgs = messages(evidence)
    assert [m.type for m in msgs[:2]] == ["A", "A"] and msgs[0].inbound and not msgs[1].inbound
    assert [m.get(112) for m in msgs if m.type == "1"] == ["CONF-1", "CONF-2", "CONF-3"]
    env = json.loads(env_file.read_text())
    assert env["KALSHI_FIX_TARGET"] == "KalshiNR" and env["KALSHI_FIX_BEGIN_STRING"] == "FIXT.1.1"
    assert env["KALSHI_FIX_HEARTBEAT_INTERVAL"] == "4" and env["KALSHI_FIX_HOST"] == "127.0.0.1"
    assert env["KALSHI_REST_URL"].startswith("http://127.0.0.1:") and env["KALSHI_REST_URL"].endswith("/trade-api/v2")
    assert msgs[0].get(49) == env["KALSHI_API_KEY_ID"] and Path(env["KALSHI_PRIVATE_KEY_FILE"]).name.endswith(".pem")
    assert env["KALSHI_CONFORMANCE_SCENARIO"] == "kalshi/hb/02"


def test_a_client_that_ignores_test_requests_fails(tmp_path: Path) -> None:
    result, evidence = asyncio.run(run_one("kalshi/hb/02", f"{RAW_CLIENT} --ignore-test-requests", NR_ONLY))

    assert result.verdict is Verdict.FAIL, result
    assert "112=CONF-1" in result.findings[0].expected
    assert evidence.messages[result.findings[0].message].raw.find("\x01112=CONF-1\x01") > 0


def test_a_driver_that_cannot_do_its_part_is_an_error_and_exit_code_3(library: Library, monkeypatch) -> None:
    scenario_id = "kalshi/hb/02"

    async def silences_a_session_that_is_not_there(ctx: ScenarioContext) -> None:
        await asyncio.to_thread(ctx.sim.faults.go_silent, ctx.key.key_id)  # before the client logged on

    monkeypatch.setitem(DRIVERS, scenario_id, silences_a_session_that_is_not_there)
    outcome = asyncio.run(run(library, NR_ONLY, "true", only=scenario_id))

    (result,) = outcome.results
    assert result.verdict is Verdict.ERROR and "refused a fault" in result.reason, result
    assert outcome.exit_code() == 3


def test_a_driver_that_raises_is_an_error_not_a_failure(library: Library, monkeypatch) -> None:
    async def broken(ctx: ScenarioContext) -> None:
        raise RuntimeError("the driver's own bug")

    monkeypatch.setitem(DRIVERS, "kalshi/logon/06", broken)
    result, _ = asyncio.run(run_one("kalshi/logon/06", "true", NR_ONLY, library=library))
    assert result.verdict is Verdict.ERROR and "the driver's own bug" in result.reason


def test_not_applicable_by_profile_and_not_implemented_never_start_the_client(library: Library, monkeypatch,
                                                                              tmp_path: Path) -> None:
    started = tmp_path / "started"
    monkeypatch.delitem(DRIVERS, "kalshi/logon/06")
    outcome = asyncio.run(run(library, NR_ONLY, f"touch {started}", only="kalshi/seq-rt/01,kalshi/logon/06"))

    missing, na = outcome.results  # library order
    assert (na.scenario, na.verdict, na.reason) == ("kalshi/seq-rt/01", Verdict.NA, "the profile uses no KalshiRT session")
    assert (missing.scenario, missing.verdict, missing.reason) == ("kalshi/logon/06", Verdict.INCONCLUSIVE, NOT_IMPLEMENTED)
    assert outcome.evidence == {} and not started.exists()
    assert outcome.exit_code() == 2  # a mandatory scenario is inconclusive; the N/A one does not count


def test_scenarios_run_in_parallel_each_on_its_own_key(library: Library) -> None:
    seen: list[tuple[ScenarioResult, Evidence | None]] = []
    outcome = asyncio.run(run(library, NR_ONLY, RAW_CLIENT, only="kalshi/hb/02,kalshi/logon/01", jobs=2, seed=7,
                              on_result=lambda r, e: seen.append((r, e))))

    assert [r.verdict for r in outcome.results] == [Verdict.PASS, Verdict.PASS], outcome.results
    assert [r.scenario for r in outcome.results] == ["kalshi/logon/01", "kalshi/hb/02"]  # library order
    assert sorted(r.scenario for r, _ in seen) == ["kalshi/hb/02", "kalshi/logon/01"]
    logon, heartbeat = outcome.evidence["kalshi/logon/01"], outcome.evidence["kalshi/hb/02"]
    keys = [{m.get(49) for m in messages(e) if m.inbound} for e in (logon, heartbeat)]
    assert all(len(k) == 1 for k in keys) and keys[0] != keys[1]
    assert not {m.connection for m in messages(logon)} & {m.connection for m in messages(heartbeat)}
    assert logon.started < heartbeat.ended and heartbeat.started < logon.ended  # they overlapped
    assert outcome.seed == 7 and outcome.exit_code() == 0


def test_a_client_that_never_connects_is_judged_within_the_bound(library: Library) -> None:
    # It ignores SIGTERM too: the runner must SIGKILL it after the grace.
    never = "trap '' TERM; sleep 600"
    began = time.monotonic()
    outcome = asyncio.run(run(library, NR_ONLY, never, only="kalshi/logon/01,kalshi/hb/02", jobs=2,
                              connect_timeout=2, stop_grace=1))

    assert time.monotonic() - began < 30
    logon, heartbeat = outcome.results
    assert logon.verdict is Verdict.FAIL and "never sent a Logon" in logon.reason
    assert heartbeat.verdict is Verdict.INCONCLUSIVE
    assert outcome.exit_code() == 1


def test_runs_on_the_profile_session_the_scenario_is_about(library: Library) -> None:
    profile = Profile(session=[ProfileSession(type=SessionType.NR), ProfileSession(type=SessionType.RT)])
    result, evidence = asyncio.run(run_one("kalshi/logon/06", RAW_CLIENT, profile, library=library))

    assert result.verdict is Verdict.PASS, result
    assert {m.wire.session for m in messages(evidence)} == {"KalshiNR"}  # order entry first, in profile order
    only_rt = replace(library.scenarios["kalshi/logon/06"], sessions=frozenset({"KalshiRT"}))
    rt_library = replace(library, scenarios={only_rt.id: only_rt})
    result, evidence = asyncio.run(run_one("kalshi/logon/06", RAW_CLIENT, profile, library=rt_library))
    assert {m.wire.session for m in messages(evidence)} == {"KalshiRT"}


def test_conform_run_exits_with_the_runs_code_and_writes_junit(tmp_path: Path) -> None:
    junit = tmp_path / "junit.xml"
    result = CliRunner().invoke(conform, ["run", "--client-cmd", f"{RAW_CLIENT} --ignore-test-requests",
                                          "--only", "kalshi/hb/02", "--junit", str(junit), "--seed", "3"])

    assert result.exit_code == 1, result.output
    assert "FAIL" in result.output and "kalshi/hb/02" in result.output and "seed 3" in result.output
    assert "kalshi/hb/02" in junit.read_text()


def test_every_session_scenario_has_a_driver_and_a_judge(library: Library) -> None:
    implemented = {"kalshi/logon/01", "kalshi/logon/02", "kalshi/logon/03", "kalshi/logon/04", "kalshi/logon/05",
                   "kalshi/logon/06", "kalshi/hb/01", "kalshi/hb/02", "kalshi/hb/03", "kalshi/seq-nr/01",
                   "kalshi/seq-nr/02", "kalshi/seq-rt/01", "kalshi/seq-rt/03", "kalshi/seq-all/01",
                   "kalshi/seq-nr/03", "kalshi/seq-rt/02", "kalshi/seq-rt/04"}
    assert implemented <= set(library.scenarios)
    assert implemented <= set(DRIVERS) & set(JUDGES)
