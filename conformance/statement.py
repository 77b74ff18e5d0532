"""The conformance statement: a short sign-off a firm can file or send on. It names the exact client
version, the profile and the suite version pinned to Kalshi's doc date, the verdicts of the mandatory
scenarios, the scope (and what was out of it, with why), and the SHA-256 of the JSON report it sums up.
It says plainly what it is not: a Kalshi certification."""

from __future__ import annotations

import hashlib
from importlib import metadata
from pathlib import Path

from conformance.model import RunOutcome, Verdict
from conformance.summary import VERDICTS, counts, exit_meaning, utc

SELF_ATTESTED = (
    "This statement is self-attested: the client was run against fixengine's simulator of Kalshi's FIX "
    "gateway, not against Kalshi. Kalshi operates no certification programme, and this is not a Kalshi "
    "certification. It holds only for the client version, profile and suite version named above; a change "
    "to any of them needs a new run."
)


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


def _tool_version() -> str:
    try:
        return metadata.version("fixengine")
    except metadata.PackageNotFoundError:
        return "unknown"


def _one_line(text: str) -> str:
    return " ".join(text.replace("\x01", "|").split())


def statement(outcome: RunOutcome, json_name: str, json_sha256: str) -> str:
    code = outcome.exit_code()
    totals = counts(outcome.results)
    profile = outcome.profile
    out = [
        "# Kalshi FIX conformance statement",
        "",
        f"Client: {_one_line(outcome.client)} {_one_line(outcome.client_version)}",
        (f"Suite: fixengine conformance {outcome.suite_version}, pinned to Kalshi's FIX documentation as of "
         f"{outcome.doc_date}"),
        f"Judged by: fixengine {_tool_version()}" + (f", offline from a bundle recorded with suite "
                                                    f"{outcome.recorded_with}" if outcome.recorded_with else ""),
        f"Run: {utc(outcome.started)} to {utc(outcome.ended)}, seed {outcome.seed}",
        f"Result: exit code {code}, {exit_meaning(code)}",
        "Verdicts: " + ", ".join(f"{verdict.value} {totals[verdict]}" for verdict in VERDICTS),
        "",
        "## Scope",
        "",
        f"API usage tier: {profile.tier}",
    ]
    for session in profile.sessions:
        flags = [name for name, value in session.logon.model_dump().items() if value not in (False, None)]
        out.append(f"Session: {session.type.value} ({session.dialect}), Logon switches: {', '.join(flags) or 'none'}")
    out.append(f"Features: {', '.join(sorted(profile.features)) or 'none'}")
    excluded = [r for r in outcome.results if r.verdict is Verdict.NA]
    out += ["", "Not applicable (out of scope):" if excluded else "Not applicable (out of scope): none"]
    out += [f"- {r.scenario}: {_one_line(r.reason)}" for r in excluded]

    out += ["", "## Mandatory scenarios", ""]
    mandatory = [r for r in outcome.results if outcome.scenarios[r.scenario].mandatory and r.verdict is not Verdict.NA]
    out += [f"- {r.verdict.value} {r.scenario}: {_one_line(outcome.scenarios[r.scenario].title)}"
            for r in mandatory] or ["none"]
    optional = [r for r in outcome.results
                if not outcome.scenarios[r.scenario].mandatory and r.verdict is not Verdict.NA]
    if optional:
        out += ["", "## Optional scenarios", ""]
        out += [f"- {r.verdict.value} {r.scenario}: {_one_line(outcome.scenarios[r.scenario].title)}"
                for r in optional]
    out += ["", "## Report", "", f"SHA-256 of {json_name}: {json_sha256}", "", SELF_ATTESTED]
    return "\n".join(out) + "\n"


def write_statement(path: str | Path, outcome: RunOutcome, json_path: str | Path) -> Path:
    """The statement for ``outcome``, naming ``json_path`` (already written) by its SHA-256."""
    path, json_path = Path(path), Path(json_path)
    path.write_text(statement(outcome, json_path.name, sha256_of(json_path)), encoding="utf-8")
    return path
