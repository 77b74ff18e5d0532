"""What every report says, decided once: verdict counts by area, what the exit code means, which results
need a reader's attention, the transcript around a failing message and the timeline of faults against
messages. Pure: the markdown, HTML, JUnit and statement writers only lay these out."""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from conformance.model import (
    Clause,
    Direction,
    Evidence,
    RunOutcome,
    ScenarioResult,
    Verdict,
)

VERDICTS = (Verdict.PASS, Verdict.FAIL, Verdict.INCONCLUSIVE, Verdict.NA, Verdict.ERROR)

EXIT_MEANINGS = {
    0: "every mandatory scenario passed",
    1: "a scenario failed",
    2: "no failure, but a mandatory scenario is inconclusive (its evidence was not there)",
    3: "the harness failed (ERROR), so those scenarios prove nothing either way",
}

ARROWS = {Direction.FROM_CLIENT: "→", Direction.TO_CLIENT: "←"}
ARROW_LEGEND = "→ sent by the client, ← sent by the simulator; times in seconds from the scenario's start"

AROUND = 3  # messages shown before and after a failing one

# The MsgTypes a Kalshi session carries, named for the timeline.
MSG_TYPES = {
    "0": "Heartbeat", "1": "TestRequest", "2": "ResendRequest", "3": "Reject", "4": "SequenceReset",
    "5": "Logout", "8": "ExecutionReport", "9": "OrderCancelReject", "A": "Logon", "D": "NewOrderSingle",
    "F": "OrderCancelRequest", "G": "OrderCancelReplaceRequest", "H": "OrderStatusRequest",
    "j": "BusinessMessageReject", "q": "OrderMassCancelRequest", "r": "OrderMassCancelReport",
    "U1": "DropCopyRequest", "U2": "DropCopyComplete", "U3": "DropCopyReject", "UMS": "SettlementReport",
    "UOG": "OrderGroupRequest", "UOH": "OrderGroupResponse",
}


def clause_text(clause: Clause) -> str:
    tc = f" (FIX session test case {clause.fix_tc})" if clause.fix_tc else ""
    return f"{clause.section} of Kalshi's FIX docs as of {clause.doc_date}{tc}"


def utc(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def fix_text(raw: str) -> str:
    """A FIX message for people: SOH shown as ``|``."""
    return raw.replace("\x01", "|")


def field_of(raw: str, tag: int) -> str | None:
    """The first value of ``tag`` in a message, tolerating a garbled one (the evidence may hold any bytes)."""
    for part in raw.split("\x01"):
        name, sep, value = part.partition("=")
        if sep and name == str(tag):
            return value
    return None


def describe(raw: str) -> str:
    """One message in a few words: ``35=D NewOrderSingle 34=5``, with PossDup when set."""
    msg_type = field_of(raw, 35)
    if msg_type is None:
        return f"(no MsgType) {fix_text(raw)[:40]}"
    words = [f"35={msg_type}", MSG_TYPES.get(msg_type, "")]
    seq = field_of(raw, 34)
    if seq is not None:
        words.append(f"34={seq}")
    if field_of(raw, 43) == "Y":
        words.append("43=Y")
    return " ".join(word for word in words if word)


def offset(at: float, origin: float) -> str:
    return f"{at - origin:+.3f}s"


def origin_of(evidence: Evidence) -> float:
    """Where a scenario's times count from: its start, else its first event."""
    if evidence.started:
        return evidence.started
    times = [e.at for e in (*evidence.messages, *evidence.faults, *evidence.rest, *evidence.instructions,
                            *evidence.client)]
    return min(times, default=0.0)


# --- the summary ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AreaRow:
    area: str
    mandatory: bool
    counts: dict[Verdict, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def counts(results: list[ScenarioResult]) -> dict[Verdict, int]:
    seen = Counter(r.verdict for r in results)
    return {verdict: seen[verdict] for verdict in VERDICTS}


def by_area(outcome: RunOutcome) -> list[AreaRow]:
    """One row per area and kind (mandatory first), in the order areas first appear in the results."""
    groups: dict[tuple[str, bool], list[ScenarioResult]] = {}
    for result in outcome.results:
        scenario = outcome.scenarios[result.scenario]
        groups.setdefault((scenario.area, scenario.mandatory), []).append(result)
    areas = list(dict.fromkeys(outcome.scenarios[r.scenario].area for r in outcome.results))
    return [AreaRow(area, mandatory, counts(groups[(area, mandatory)]))
            for area in areas for mandatory in (True, False) if (area, mandatory) in groups]


def exit_meaning(code: int) -> str:
    return EXIT_MEANINGS.get(code, "unknown")


def failures(outcome: RunOutcome) -> list[ScenarioResult]:
    return [r for r in outcome.results if r.verdict is Verdict.FAIL]


def errors(outcome: RunOutcome) -> list[ScenarioResult]:
    return [r for r in outcome.results if r.verdict is Verdict.ERROR]


def inconclusive(outcome: RunOutcome) -> list[ScenarioResult]:
    return [r for r in outcome.results if r.verdict is Verdict.INCONCLUSIVE]


def not_applicable(outcome: RunOutcome) -> list[ScenarioResult]:
    return [r for r in outcome.results if r.verdict is Verdict.NA]


def seconds(evidence: Evidence | None) -> float:
    if evidence is None or evidence.ended < evidence.started:
        return 0.0
    return evidence.ended - evidence.started


# --- the transcript around a message ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TranscriptLine:
    index: int  # into Evidence.messages
    offset: str
    arrow: str
    connection: int
    session: str
    text: str  # SOH as |
    focus: bool  # the message the finding is about


def transcript(evidence: Evidence, index: int, around: int = AROUND) -> list[TranscriptLine]:
    """The messages ``around`` either side of ``index`` (empty if the index is not in the evidence)."""
    if not 0 <= index < len(evidence.messages):
        return []
    origin = origin_of(evidence)
    lines = []
    for i in range(max(0, index - around), min(len(evidence.messages), index + around + 1)):
        m = evidence.messages[i]
        lines.append(TranscriptLine(i, offset(m.at, origin), ARROWS[m.direction], m.connection, m.session,
                                    fix_text(m.raw), i == index))
    return lines


# --- the timeline of faults against messages --------------------------------------------------------

Kind = Literal["fault", "fix", "rest", "instruction", "client", "gap"]
TIMELINE_LIMIT = 40  # entries shown in full; a longer timeline keeps what is near faults and findings
NEAR = 4  # entries kept either side of a fault or a finding's message


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    kind: Kind
    offset: str
    text: str
    message: int | None = None  # index into Evidence.messages, for a FIX message
    focus: bool = False  # a fault, or the message a finding is about


def timeline(evidence: Evidence, focus: Collection[int] = ()) -> list[TimelineEntry]:
    """Faults, FIX messages, REST calls, instructions and client lines in time order (each source keeps
    its own order). A long one is cut to what lies near the faults and the ``focus`` messages, with a
    ``gap`` entry saying how much was left out."""
    origin = origin_of(evidence)
    sources = [
        [(f.at, TimelineEntry("fault", offset(f.at, origin), f"fault: {f.what}", focus=True))
         for f in evidence.faults],
        [(m.at, TimelineEntry("fix", offset(m.at, origin), f"{ARROWS[m.direction]} #{m.connection} {m.session} "
                              f"{describe(m.raw)}", message=i, focus=i in focus))
         for i, m in enumerate(evidence.messages)],
        [(r.at, TimelineEntry("rest", offset(r.at, origin), f"REST {r.method} {r.path} → {r.status}"))
         for r in evidence.rest],
        [(x.at, TimelineEntry("instruction", offset(x.at, origin), f"instruction: {x.line}"))
         for x in evidence.instructions],
        [(c.at, TimelineEntry("client", offset(c.at, origin), f"client says: {c.line}")) for c in evidence.client],
    ]
    entries = [entry for _, entry in heapq.merge(*sources, key=lambda pair: pair[0])]
    if len(entries) <= TIMELINE_LIMIT:
        return entries
    keep = {0, len(entries) - 1}
    for i, entry in enumerate(entries):
        if entry.focus:
            keep.update(range(max(0, i - NEAR), min(len(entries), i + NEAR + 1)))
    cut: list[TimelineEntry] = []
    left_out = 0
    for i, entry in enumerate(entries):
        if i in keep:
            if left_out:
                cut.append(TimelineEntry("gap", "", f"… {left_out} more"))
                left_out = 0
            cut.append(entry)
        else:
            left_out += 1
    return cut
