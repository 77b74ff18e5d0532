"""The run bundle: everything a judge needs to decide a run again, in one file. ``fixengine conform
rejudge`` reads it.

JSON lines, one record a line, each with a ``kind``: the run (schema, suite version, doc date, seed,
profile), the always-on rules, each scenario's definition, then per scenario its evidence header and
every event of its evidence in time order (``fix``: every FIX message both ways with its time,
connection and session; ``rest``, ``fault``, ``instruction``, ``client``), and its recorded result.
Lines, because a bundle is read by people too (``grep '"kind": "fault"'``, ``jq``), diffs line by
line, and a reader names the line that is wrong; a name ending ``.gz`` is gzip-compressed for keeping.

Kalshi's Logon signature (RawData, 96) is masked by default: same length, so BodyLength and RawDataLength
still hold, and CheckSum is recomputed only where it was right before (a garbled message stays garbled).
"""

from __future__ import annotations

import gzip
import heapq
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from conformance.codec import (
    CodecError,
    Fields,
    Json,
    client_from_json,
    client_to_json,
    fault_from_json,
    fault_to_json,
    instruction_from_json,
    instruction_to_json,
    message_from_json,
    message_to_json,
    profile_from_json,
    profile_to_json,
    rest_from_json,
    rest_to_json,
    result_from_json,
    result_to_json,
    rule_from_json,
    rule_to_json,
    scenario_from_json,
    scenario_to_json,
)
from conformance.model import (
    JSON_SCHEMA,
    Evidence,
    RunOutcome,
    ScenarioResult,
    WireMessage,
)
from fixengine.fix.framing import checksum

_RAW_DATA = re.compile(r"(\x0196=)([^\x01]*)")
_TRAILER = re.compile(r"(?<=\x01)10=(\d{3})\x01$")


def redact_signature(raw: str) -> str:
    """``raw`` with RawData (96) masked, its framing kept valid where it was valid."""
    if "\x0196=" not in raw:
        return raw
    masked = _RAW_DATA.sub(lambda m: m.group(1) + "*" * len(m.group(2)), raw)
    trailer = _TRAILER.search(raw)
    if trailer is None:
        return masked
    body_end = trailer.start()
    if trailer.group(1) != checksum(raw[:body_end].encode("latin-1", "replace")):
        return masked  # it was garbled on the wire: keep it so
    return masked[:body_end] + f"10={checksum(masked[:body_end].encode('latin-1', 'replace'))}\x01"


# --- writing ----------------------------------------------------------------------------------------


def bundle_records(outcome: RunOutcome, redact: bool = True) -> Iterator[Json]:
    yield {
        "kind": "run", "schema": JSON_SCHEMA, "suite_version": outcome.suite_version, "doc_date": outcome.doc_date,
        "recorded_with": outcome.recorded_with, "seed": outcome.seed, "started": outcome.started,
        "ended": outcome.ended, "profile": profile_to_json(outcome.profile),
    }
    for rule in outcome.rules.values():
        yield {"kind": "rule", "rule": rule_to_json(rule)}
    for result in outcome.results:
        scenario_id = result.scenario
        yield {"kind": "scenario", "scenario": scenario_to_json(outcome.scenarios[scenario_id])}
        evidence = outcome.evidence.get(scenario_id)
        if evidence is not None:
            yield {"kind": "evidence", "scenario": scenario_id, "started": evidence.started,
                   "ended": evidence.ended, "heartbeat_interval": evidence.heartbeat_interval}
            yield from _events(scenario_id, evidence, redact)
        yield {"kind": "result", "result": result_to_json(result)}


def _events(scenario_id: str, evidence: Evidence, redact: bool) -> Iterator[Json]:
    def message(m: WireMessage) -> Json:
        data = message_to_json(m)
        if redact:
            data["raw"] = redact_signature(m.raw)
        return data

    # heapq.merge keeps each list's own order, so a list read back is the list written
    sources = [
        [{"kind": "fix", **message(m)} for m in evidence.messages],
        [{"kind": "rest", **rest_to_json(r)} for r in evidence.rest],
        [{"kind": "fault", **fault_to_json(f)} for f in evidence.faults],
        [{"kind": "instruction", **instruction_to_json(i)} for i in evidence.instructions],
        [{"kind": "client", **client_to_json(c)} for c in evidence.client],
    ]
    for record in heapq.merge(*sources, key=lambda record: record["at"]):
        yield {"kind": record.pop("kind"), "scenario": scenario_id, **record}


def _open(path: Path, mode: str) -> TextIO:
    if mode == "w" and path.name.endswith(".gz"):
        return gzip.open(path, "wt", encoding="utf-8")  # type: ignore[return-value]
    if mode == "r" and path.read_bytes()[:2] == b"\x1f\x8b":
        return gzip.open(path, "rt", encoding="utf-8")  # type: ignore[return-value]
    return open(path, mode, encoding="utf-8")


def save_bundle(path: str | Path, outcome: RunOutcome, redact: bool = True) -> Path:
    """Write ``outcome`` as a bundle (gzip when ``path`` ends ``.gz``); RawData masked unless ``redact``
    is False."""
    path = Path(path)
    with _open(path, "w") as file:
        for record in bundle_records(outcome, redact):
            file.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path


# --- reading ----------------------------------------------------------------------------------------

_EVENTS: dict[str, tuple[str, Any]] = {
    "fix": ("messages", message_from_json), "rest": ("rest", rest_from_json), "fault": ("faults", fault_from_json),
    "instruction": ("instructions", instruction_from_json), "client": ("client", client_from_json),
}


def load_bundle(path: str | Path) -> RunOutcome:
    """The run in a bundle, its recorded results included; ``CodecError`` naming the line and field that
    are wrong."""
    path = Path(path)
    run: Fields | None = None
    rules, scenarios, evidence, results = {}, {}, {}, []
    with _open(path, "r") as file:
        for number, line in enumerate(file, 1):
            if not line.strip():
                continue
            where = f"{path.name}:{number}"
            try:
                record = Fields(json.loads(line), where)
            except json.JSONDecodeError as exc:
                raise CodecError(f"{where}: not JSON ({exc})") from None
            kind = record.text("kind")
            if run is None and kind != "run":
                raise CodecError(f"{where}.kind: {kind!r}, a bundle starts with its run record")
            if kind == "run":
                if run is not None:
                    raise CodecError(f"{where}.kind: a second run record")
                schema = record.text("schema")
                if schema != JSON_SCHEMA:
                    raise CodecError(f"{where}.schema: {schema!r}, this reader reads {JSON_SCHEMA!r}")
                run = record
            elif kind == "rule":
                rule = rule_from_json(record.obj("rule"))
                rules[rule.id] = rule
            elif kind == "scenario":
                scenario = scenario_from_json(record.obj("scenario"))
                scenarios[scenario.id] = scenario
            elif kind == "evidence":
                evidence[record.text("scenario")] = Evidence(
                    started=record.number("started"), ended=record.number("ended"),
                    heartbeat_interval=record.opt_number("heartbeat_interval"))
            elif kind in _EVENTS:
                scenario_id = record.text("scenario")
                if scenario_id not in evidence:
                    raise CodecError(f"{where}.scenario: {scenario_id!r} has no evidence record before it")
                attribute, read = _EVENTS[kind]
                getattr(evidence[scenario_id], attribute).append(read(record))
            elif kind == "result":
                results.append(_result(record, scenarios, where))
            else:
                known = ", ".join(["run", "rule", "scenario", "evidence", *_EVENTS, "result"])
                raise CodecError(f"{where}.kind: {kind!r} is not one of {known}")
    if run is None:
        raise CodecError(f"{path.name}: empty, no run record")
    return RunOutcome(
        profile=profile_from_json(run.obj("profile")), seed=run.integer("seed"), started=run.number("started"),
        ended=run.number("ended"), results=results, scenarios=scenarios, evidence=evidence, rules=rules,
        suite_version=run.text("suite_version"), doc_date=run.text("doc_date"),
        recorded_with=run.opt_text("recorded_with"),
    )


def _result(record: Fields, scenarios: dict[str, Any], where: str) -> ScenarioResult:
    result = result_from_json(record.obj("result"))
    if result.scenario not in scenarios:
        raise CodecError(f"{where}.result.scenario: {result.scenario!r} has no scenario record before it")
    return result
