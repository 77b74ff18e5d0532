"""The scenario library (specs/conformance, conformance.library): the reference's 40 scenarios and 16
always-on rules, every field there; errors in the files named by file, scenario and field; selection
by ids and globs; ``fixengine conform list`` as a real process; the files installed with the package."""

from __future__ import annotations

import glob
import json
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from conformance.library import (
    AREAS,
    Library,
    SelectionError,
    library_dir,
    load_library,
)
from conformance.model import KALSHI_DOC_DATE, Need
from conformance.profile import FEATURES, Profile
from fixengine.cli import cli
from fixengine.errors import ConfigError
from fixengine.kalshi.facts import SessionType

ROOT = Path(__file__).resolve().parent.parent
LIBRARY = ROOT / "specs" / "conformance"

# The reference's 40 scenarios (conformance-anchors.md §(d)), in its order, and its 24 marked M.
REFERENCE = [
    "LOGON-01", "LOGON-02", "LOGON-03", "LOGON-04", "LOGON-05", "LOGON-06",
    "HB-01", "HB-02", "HB-03",
    "SEQ-NR-01", "SEQ-NR-02", "SEQ-NR-03", "SEQ-RT-01", "SEQ-RT-02", "SEQ-RT-03", "SEQ-RT-04", "SEQ-ALL-01",
    "ORD-01", "ORD-02", "ORD-03", "ORD-04", "ORD-05", "ORD-06", "ORD-07",
    "CXL-01", "CXL-02", "CXL-03",
    "MC-01", "MC-02",
    "RL-01", "RL-02",
    "OG-01", "OG-02",
    "DC-01", "DC-02", "LST-01",
    "UMS-01", "DRIFT-01", "COD-01", "MAINT-01",
]
MANDATORY = [
    "LOGON-01", "LOGON-02", "LOGON-03", "LOGON-04", "LOGON-05", "LOGON-06",
    "HB-01", "HB-02", "HB-03",
    "SEQ-NR-01", "SEQ-NR-02", "SEQ-RT-01", "SEQ-RT-03", "SEQ-ALL-01",
    "ORD-01", "ORD-02", "ORD-03", "ORD-04", "ORD-05", "ORD-06",
    "CXL-01", "CXL-02",
    "RL-01",
    "DRIFT-01",
]


def suite_id(reference_id: str) -> str:
    """LOGON-01 -> kalshi/logon/01, SEQ-NR-02 -> kalshi/seq-nr/02."""
    area, _, number = reference_id.rpartition("-")
    return f"kalshi/{area.lower()}/{number}"


@pytest.fixture(scope="module")
def library() -> Library:
    return load_library()


def test_the_library_has_the_references_40_scenarios_in_its_order_and_its_24_mandatory(library: Library) -> None:
    assert list(library.scenarios) == [suite_id(r) for r in REFERENCE]
    assert len(library.scenarios) == 40
    assert library.mandatory == {suite_id(r) for r in MANDATORY}
    assert len(library.mandatory) == 24


def test_every_scenario_has_every_field(library: Library) -> None:
    for s in library.scenarios.values():
        assert all(text.strip() for text in (s.title, s.simulator_does, s.passes_when, s.hint)), s.id
        assert s.clause.section.startswith("§") and s.clause.doc_date <= KALSHI_DOC_DATE, s.id
        assert s.area == AREAS[s.id.split("/")[1]], s.id
        assert s.needs and s.needs <= set(Need), s.id
        assert s.sessions <= {t.value for t in SessionType}, s.id
        assert s.features <= FEATURES, s.id
        assert (Need.ACTS in s.needs) <= ("instructions" in s.features), s.id


def test_session_and_feature_scoping_follows_the_reference(library: Library) -> None:
    s = library.scenarios
    assert all(s[i].sessions == {"KalshiRT"} for i in s if i.startswith("kalshi/seq-rt/"))
    assert s["kalshi/seq-nr/02"].sessions == {"KalshiNR"}
    assert s["kalshi/seq-nr/01"].sessions == {"KalshiNR", "KalshiDC"}
    assert s["kalshi/logon/01"].sessions == frozenset() and s["kalshi/drift/01"].sessions == frozenset()
    assert "mass_cancel" in s["kalshi/mc/01"].features and "order_groups" in s["kalshi/og/02"].features
    assert "drop_copy" in s["kalshi/dc/01"].features and "listener" in s["kalshi/lst/01"].features
    assert "settlement" in s["kalshi/ums/01"].features and "cancel_on_disconnect" in s["kalshi/cod/01"].features
    assert s["kalshi/ord/05"].clause.doc_date == "2026-06-04"  # EXCHANGE_UNAVAILABLE as unknown: v1.0.30
    assert s["kalshi/seq-nr/02"].needs == {Need.WIRE, Need.REST, Need.PROBE}
    nr_only = Profile()  # a KalshiNR client that takes instructions
    assert nr_only.applies(s["kalshi/seq-rt/01"]) is not None and nr_only.applies(s["kalshi/seq-nr/02"]) is None
    assert sum(1 for i in library.mandatory if nr_only.applies(s[i]) is None) == 22  # the reference's count


def test_the_rules_are_p1_to_p16_each_with_text_and_clause(library: Library) -> None:
    assert list(library.rules) == [f"P{n}" for n in range(1, 17)]
    for rule in library.rules.values():
        assert rule.text.strip() and rule.clause.section.startswith("§"), rule.id
    assert "TLS" in library.rules["P1"].note


# --- validation ------------------------------------------------------------------------------------

GOOD = {
    "id": "kalshi/hb/01", "title": "Heartbeat cadence", "area": "heartbeat", "mandatory": True,
    "clause": {"section": "§7.1"}, "simulator_does": "stays idle", "passes_when": "heartbeats come",
    "hint": "send heartbeats", "needs": ["W"], "sessions": [], "features": [],
}
RULE = '[[rule]]\nid = "P1"\ntext = "first message is a Logon"\nclause = { section = "§3" }\n'


def toml_entry(entry: dict[str, object]) -> str:
    lines = ["[[scenario]]"]
    for key, value in entry.items():
        if isinstance(value, dict):
            inner = ", ".join(f"{k} = {json.dumps(v)}" for k, v in value.items())
            lines.append(f"{key} = {{ {inner} }}")
        else:
            lines.append(f"{key} = {json.dumps(value)}")
    return "\n".join(lines) + "\n"


def write_library(directory: Path, files: dict[str, str], rules: str | None = RULE) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text)
    if rules is not None:
        (directory / "rules.toml").write_text(rules)
    return directory


def problems_of(directory: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        load_library(directory)
    return str(caught.value)


def test_a_minimal_library_loads(tmp_path: Path) -> None:
    lib = load_library(write_library(tmp_path, {"a.toml": toml_entry(GOOD)}))
    assert list(lib.scenarios) == ["kalshi/hb/01"] and list(lib.rules) == ["P1"]
    assert lib.scenarios["kalshi/hb/01"].clause.doc_date == KALSHI_DOC_DATE


@pytest.mark.parametrize(("change", "named", "reason"), [
    ({"id": "kalshi/hb/1"}, "kalshi/hb/1: id", "kalshi/<area>/<nn>"),
    ({"id": "kalshi/heartbeat/01"}, "kalshi/heartbeat/01: id", "unknown area 'heartbeat'"),
    ({"area": "beats"}, "kalshi/hb/01: area", "unknown area 'beats'"),
    ({"area": "logon"}, "kalshi/hb/01: area", "the id's 'hb' is area 'heartbeat'"),
    ({"needs": ["W", "X"]}, "kalshi/hb/01: needs[1]", "'W', 'R', 'H' or 'P'"),
    ({"needs": []}, "kalshi/hb/01: needs", "at least 1"),
    ({"needs": ["W", "P"]}, "kalshi/hb/01: features", "lacks \"instructions\""),
    ({"features": ["teleport"]}, "kalshi/hb/01: features", "unknown teleport"),
    ({"sessions": ["KalshiXX"]}, "kalshi/hb/01: sessions[0]", "'KalshiNR'"),
    ({"sessions": ["KalshiNR", "KalshiNR"]}, "kalshi/hb/01: sessions", "KalshiNR listed twice"),
    ({"clause": {"section": "§7.1", "doc_date": "2099-01-01"}}, "kalshi/hb/01: clause.doc_date", "after the suite's"),
    ({"clause": {"section": "§7.1", "doc_date": "last week"}}, "kalshi/hb/01: clause.doc_date", "not a date"),
    ({"mandatory": "yes"}, "kalshi/hb/01: mandatory", "boolean"),
    ({"hint": ""}, "kalshi/hb/01: hint", "at least 1 character"),
    ({"typo": 1}, "kalshi/hb/01: typo", "unknown setting"),
])
def test_a_bad_field_is_named_by_file_scenario_and_field(tmp_path: Path, change: dict[str, object], named: str,
                                                         reason: str) -> None:
    message = problems_of(write_library(tmp_path, {"hb.toml": toml_entry(GOOD | change)}))
    line = next((ln for ln in message.splitlines() if f"hb.toml: {named}:" in ln), None)
    assert line is not None, message
    assert reason in line


def test_a_missing_field_is_named(tmp_path: Path) -> None:
    entry = {k: v for k, v in GOOD.items() if k != "passes_when"}
    assert "hb.toml: kalshi/hb/01: passes_when: required" in problems_of(write_library(tmp_path, {"hb.toml": toml_entry(entry)}))


def test_a_duplicate_id_names_both_files_and_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    message = problems_of(write_library(tmp_path, {
        "a.toml": toml_entry(GOOD),
        "b.toml": toml_entry(GOOD) + toml_entry(GOOD | {"id": "kalshi/hb/02", "needs": ["Z"]}),
    }))
    assert "b.toml: kalshi/hb/01: id: already defined in a.toml" in message
    assert "b.toml: kalshi/hb/02: needs[0]" in message


@pytest.mark.parametrize(("files", "rules", "expected"), [
    ({"a.toml": toml_entry(GOOD)}, None, "rules.toml: missing"),
    ({"a.toml": toml_entry(GOOD)}, RULE + RULE, "rules.toml: P1: id: defined twice"),
    ({"a.toml": toml_entry(GOOD)}, RULE.replace('"P1"', '"Rule1"'), "rules.toml: Rule1: id: 'Rule1' is not P<n>"),
    ({"a.toml": "[[scenario]\n"}, RULE, "a.toml: not valid TOML"),
    ({"a.toml": toml_entry(GOOD) + "[extra]\nx = 1\n"}, RULE, "a.toml: extra: unknown table"),
    ({}, RULE, "no scenario files"),
])
def test_broken_files_are_named(tmp_path: Path, files: dict[str, str], rules: str | None, expected: str) -> None:
    assert expected in problems_of(write_library(tmp_path, files, rules))


def test_a_missing_directory_is_one_clear_error(tmp_path: Path) -> None:
    assert "conformance library is missing" in problems_of(tmp_path / "nowhere")


def test_files_load_in_name_order(tmp_path: Path) -> None:
    lib = load_library(write_library(tmp_path, {
        "02-b.toml": toml_entry(GOOD | {"id": "kalshi/hb/01"}),
        "01-a.toml": toml_entry(GOOD | {"id": "kalshi/hb/02"}) + toml_entry(GOOD | {"id": "kalshi/hb/03"}),
    }))
    assert list(lib.scenarios) == ["kalshi/hb/02", "kalshi/hb/03", "kalshi/hb/01"]


# --- selection -------------------------------------------------------------------------------------


def ids(scenarios: list) -> list[str]:  # type: ignore[type-arg]
    return [s.id for s in scenarios]


def test_select_by_ids_and_globs_in_library_order(library: Library) -> None:
    assert len(library.select(None)) == len(library.select("")) == 40
    assert ids(library.select("kalshi/hb/02, kalshi/logon/01")) == ["kalshi/logon/01", "kalshi/hb/02"]
    assert ids(library.select("kalshi/logon/*")) == [f"kalshi/logon/0{n}" for n in range(1, 7)]
    assert ids(library.select("kalshi/seq-*")) == [
        "kalshi/seq-nr/01", "kalshi/seq-nr/02", "kalshi/seq-nr/03", "kalshi/seq-rt/01", "kalshi/seq-rt/02",
        "kalshi/seq-rt/03", "kalshi/seq-rt/04", "kalshi/seq-all/01"]
    assert ids(library.select("kalshi/seq-rt/*,kalshi/seq-rt/01")) == [f"kalshi/seq-rt/0{n}" for n in range(1, 5)]
    assert ids(library.select("kalshi/seq-*", exclude="kalshi/seq-nr/*,kalshi/seq-all/01")) == [
        f"kalshi/seq-rt/0{n}" for n in range(1, 5)]


@pytest.mark.parametrize(("only", "named"), [
    ("kalshi/hb/09", "no scenario 'kalshi/hb/09'"),
    ("kalshi/hb/01,HB-02", "no scenario 'HB-02'"),
    ("kalshi/rfq/*", "'kalshi/rfq/*' matches no scenario"),
    (" , ", "names no scenario"),
])
def test_select_names_what_it_cannot_find(library: Library, only: str, named: str) -> None:
    with pytest.raises(SelectionError, match="--only: .*" + named.replace("*", r"\*")):
        library.select(only)


# --- fixengine conform list ------------------------------------------------------------------------


def run_fixengine(*args: str, block_simulator: bool = False) -> subprocess.CompletedProcess[str]:
    """``fixengine ...`` in its own process; with ``block_simulator`` the simulator cannot be imported."""
    code = ("import sys\n"
            + ("sys.modules['simulator'] = None\n" if block_simulator else "")
            + f"sys.argv = ['fixengine', *{list(args)!r}]\n"
            + "from fixengine.cli import main; main()\n")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)


def test_conform_list_prints_every_scenario_with_its_clause() -> None:
    done = run_fixengine("conform", "list")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["ID", "M/O", "AREA", "TITLE", "CLAUSE"]
    rows = {line.split()[0]: line for line in lines[1:41]}
    assert list(rows) == [suite_id(r) for r in REFERENCE]
    assert rows["kalshi/seq-nr/02"].split()[1:3] == ["M", "sequence"]
    assert "NR gap: reset and reconcile, never resend" in rows["kalshi/seq-nr/02"]
    assert "§7.2; FIX TC 2b/16 (2026-08-27)" in rows["kalshi/seq-nr/02"]
    assert rows["kalshi/seq-nr/03"].split()[1] == "O"
    assert "40 scenarios (24 mandatory, 16 optional)" in done.stdout


def test_conform_list_json_with_only_is_the_selection_with_every_field() -> None:
    done = run_fixengine("conform", "list", "--json", "--only", "kalshi/logon/*,kalshi/ord/05")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["kalshi_doc_date"] == KALSHI_DOC_DATE and doc["suite_version"].endswith(KALSHI_DOC_DATE)
    assert [s["id"] for s in doc["scenarios"]] == [f"kalshi/logon/0{n}" for n in range(1, 7)] + ["kalshi/ord/05"]
    ord05 = doc["scenarios"][-1]
    assert set(ord05) == {"id", "title", "area", "mandatory", "clause", "simulator_does", "passes_when", "hint",
                          "needs", "sessions", "features"}
    assert ord05["needs"] == ["W", "R"] and ord05["clause"]["doc_date"] == "2026-06-04"
    assert ord05["sessions"] == ["KalshiNR", "KalshiRT"] and ord05["mandatory"] is True


def test_conform_list_rejects_an_unknown_selection_naming_it() -> None:
    done = run_fixengine("conform", "list", "--only", "kalshi/nope/*")
    assert done.returncode == 2
    assert "--only" in done.stderr and "'kalshi/nope/*' matches no scenario" in done.stderr
    assert "Traceback" not in done.stderr


def test_conform_list_and_fixengine_help_need_no_simulator() -> None:
    helped = run_fixengine("--help", block_simulator=True)
    assert helped.returncode == 0, helped.stderr
    assert "conform" in helped.stdout
    listed = run_fixengine("conform", "list", "--only", "kalshi/hb/*", block_simulator=True)
    assert listed.returncode == 0, listed.stderr
    assert [ln.split()[0] for ln in listed.stdout.splitlines()[1:4]] == ["kalshi/hb/01", "kalshi/hb/02", "kalshi/hb/03"]


def test_conform_is_a_group_on_fixengines_cli_with_the_rules_listed_on_request() -> None:
    runner = CliRunner()
    done = runner.invoke(cli, ["conform", "list", "--rules", "--json"])
    assert done.exit_code == 0, done.output
    doc = json.loads(done.output)
    assert [r["id"] for r in doc["rules"]] == [f"P{n}" for n in range(1, 17)]
    helped = runner.invoke(cli, ["conform", "--help"])
    assert helped.exit_code == 0 and "list" in helped.output and "Usage: cli conform" in helped.output


# --- installed with the package --------------------------------------------------------------------


def test_the_library_is_found_in_the_checkout_and_installed_with_the_package() -> None:
    assert library_dir() == LIBRARY
    data_files = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["data-files"]
    installed = {Path(p).name for p in glob.glob(str(ROOT / data_files["share/fixengine/specs/conformance"][0]))}
    assert installed == {p.name for p in LIBRARY.glob("*.toml")} and "rules.toml" in installed


def test_a_copy_of_the_library_elsewhere_loads_the_same(tmp_path: Path, library: Library) -> None:
    copy = shutil.copytree(LIBRARY, tmp_path / "conformance")
    assert load_library(copy).scenarios == library.scenarios


def test_run_with_mandatory_and_no_mandatory_scenario_among_only_is_a_usage_error() -> None:
    done = CliRunner().invoke(cli, ["conform", "run", "--client-cmd", "true", "--mandatory", "--only", "kalshi/mc/*"])
    assert done.exit_code == 2 and "none of the scenarios --only names is mandatory" in done.output
