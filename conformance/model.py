"""What a conformance run is made of, as plain values every conformance module speaks: the scenarios
(loaded from ``specs/conformance``), the profile's applicability, the wire transcript a run records,
and the verdicts. Pure: no I/O, no simulator.

A run is judged from evidence alone (``Evidence``): what crossed the wire both ways, the REST calls
the client made, the faults the simulator injected, the instructions it sent the client and what the
client said back. ``fixengine conform rejudge`` recomputes every verdict from a saved bundle of the
same values, so a judge never looks at anything else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

# The suite follows Kalshi's FIX documentation as of this date (../shared/kalshi/fix-spec.md sources).
KALSHI_DOC_DATE = "2026-08-27"
SUITE_VERSION = f"1.0+kalshi.{KALSHI_DOC_DATE}"
JSON_SCHEMA = "fixengine.conformance/1"  # the versioned JSON report and bundle


class Verdict(str, Enum):
    PASS = "PASS"
    FAIL = "FAIL"
    INCONCLUSIVE = "INCONCLUSIVE"  # the evidence that would decide it is not there (never a PASS)
    NA = "N/A"  # excluded by the profile, with the reason
    ERROR = "ERROR"  # the harness itself failed


class Need(str, Enum):
    """What decides a scenario (the reference's column codes)."""

    WIRE = "W"  # the wire alone
    REST = "R"  # the client's REST calls are evidence
    PROBE = "H"  # the client's own state, if it reports it (else INCONCLUSIVE)
    ACTS = "P"  # the client must act on an instruction (or trade a scenario market)


@dataclass(frozen=True, slots=True)
class Clause:
    section: str  # e.g. "§7.2" of Kalshi's FIX docs as summarised in fix-spec.md
    doc_date: str  # the Kalshi doc version the clause is read from
    fix_tc: str = ""  # the FIX session test case it corresponds to, e.g. "2b/16"; "" when none


@dataclass(frozen=True, slots=True)
class Scenario:
    id: str  # stable, e.g. "kalshi/seq-nr/02"
    title: str
    area: str  # logon, heartbeat, sequence, orders, cancel-replace, mass-cancel, rate-limits, ...
    mandatory: bool  # when it applies to the profile at all
    clause: Clause
    simulator_does: str
    passes_when: str
    hint: str  # what to fix when it fails
    needs: frozenset[Need]
    sessions: frozenset[str]  # session types (TargetCompIDs) it applies to; empty: any
    features: frozenset[str] = frozenset()  # profile features it needs (e.g. "order_groups")


@dataclass(frozen=True, slots=True)
class Rule:
    """An always-on rule, checked on every message of every run (P1 ... P16)."""

    id: str  # e.g. "P4"
    text: str
    clause: Clause
    note: str = ""  # what the transcript can and cannot decide (e.g. TLS is not on it)


# --- evidence --------------------------------------------------------------------------------------


class Direction(str, Enum):
    FROM_CLIENT = "in"  # as the simulator sees it
    TO_CLIENT = "out"


@dataclass(frozen=True, slots=True)
class WireMessage:
    at: float  # epoch seconds
    connection: int  # one number per TCP connection in the run
    direction: Direction
    session: str  # the TargetCompID the connection is for (KalshiNR, ...)
    raw: str  # the message as sent, SOH-separated


@dataclass(frozen=True, slots=True)
class RestCall:
    at: float
    method: str
    path: str
    status: int


@dataclass(frozen=True, slots=True)
class FaultMark:
    at: float
    what: str  # e.g. "drop_outbound 1 (the next fill report)"


@dataclass(frozen=True, slots=True)
class Instruction:
    at: float
    line: str  # the JSON line written to the client's standard input


@dataclass(frozen=True, slots=True)
class ClientSays:
    at: float
    line: str  # a JSON line the client wrote on its standard output (acks, state)


@dataclass
class Evidence:
    """Everything one scenario's run left behind, in time order within each list."""

    messages: list[WireMessage] = field(default_factory=list)
    rest: list[RestCall] = field(default_factory=list)
    faults: list[FaultMark] = field(default_factory=list)
    instructions: list[Instruction] = field(default_factory=list)
    client: list[ClientSays] = field(default_factory=list)
    heartbeat_interval: float | None = None  # HeartBtInt negotiated on the first Logon, seconds
    started: float = 0.0
    ended: float = 0.0


# --- verdicts --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Finding:
    """Why a verdict is not PASS (or what a PASS measured): expected against seen, at a message."""

    expected: str
    seen: str
    message: int | None = None  # index into Evidence.messages of the message it is about
    rule: str | None = None  # an always-on rule's id, when one was broken


@dataclass(frozen=True, slots=True)
class ScenarioResult:
    scenario: str  # Scenario.id
    verdict: Verdict
    reason: str  # one line
    findings: tuple[Finding, ...] = ()
    measured: tuple[tuple[str, float], ...] = ()  # e.g. ("testrequest_latency_ms", 3.1)


def exit_code(results: list[ScenarioResult], mandatory: set[str]) -> int:
    """0: every mandatory scenario passed; 1: any FAIL; 2: only INCONCLUSIVE mandatory ones remain;
    3: the harness failed (ERROR)."""
    verdicts = {r.verdict for r in results}
    if Verdict.ERROR in verdicts:
        return 3
    if Verdict.FAIL in verdicts:
        return 1
    if any(r.verdict is not Verdict.PASS for r in results if r.scenario in mandatory):
        return 2
    return 0


# --- a run -----------------------------------------------------------------------------------------


@dataclass
class RunOutcome:
    """One run as the reports, the statement and the bundle read it: against whom, with what, and
    what came of it. The runner makes one; ``load_bundle`` reads one back for ``rejudge``."""

    profile: Any  # a conformance.profile.Profile: not imported, profile.py imports this module
    seed: int
    started: float  # epoch seconds
    ended: float
    results: list[ScenarioResult]
    scenarios: dict[str, Scenario]  # the library's Scenario of every result, by id
    evidence: dict[str, Evidence]  # by scenario id; none for scenarios that did not run (N/A)
    rules: dict[str, Rule] = field(default_factory=dict)  # the always-on rules findings may name
    suite_version: str = SUITE_VERSION
    doc_date: str = KALSHI_DOC_DATE
    recorded_with: str | None = None  # set by rejudge: the suite version the evidence was recorded with

    def __post_init__(self) -> None:
        for i, result in enumerate(self.results):
            if result.scenario not in self.scenarios:
                raise ValueError(f"results[{i}].scenario {result.scenario!r} is not in scenarios")

    @property
    def client(self) -> str:
        return self.profile.client

    @property
    def client_version(self) -> str:
        return self.profile.version

    def mandatory(self) -> set[str]:
        """The mandatory scenarios that apply to the profile (a mandatory N/A one does not count)."""
        return {r.scenario for r in self.results
                if self.scenarios[r.scenario].mandatory and r.verdict is not Verdict.NA}

    def exit_code(self) -> int:
        return exit_code(self.results, self.mandatory())
