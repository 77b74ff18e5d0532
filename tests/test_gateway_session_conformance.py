"""The gateway's OMS acceptor against QuickFIX's own FIX 4.4 session acceptance scenarios.

The scenarios (``../shared/quickfix-at/fix44/*.def``, QuickFIX's ``test/definitions/server/fix44``)
are played over TCP by ``conformance.acceptor`` against one ``OmsAcceptors`` with the product's
settings (``acceptor_settings``), as QuickFIX's Ruby harness plays them against its ``at`` program.
Upstream's ``at`` answers application messages with an echo; here ``AtEchoApplication``
(``tests.helpers.at_acceptor``) does the same through ``OmsAcceptors``' ``application=`` hook (the
session layer under test does not depend on what the application does with an order). The runner
itself is tested in ``test_conformance_acceptor.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from conformance.acceptor import AcceptorTarget, run_script
from conformance.model import Verdict
from conformance.quickfix_at import read_def_file
from tests.helpers.at_acceptor import AT_DIR, HOST, AtAcceptor, at_acceptor

# Scenarios that cannot apply to the gateway's acceptor, each with the reason.
NOT_APPLICABLE: dict[str, str] = {}


@pytest.fixture(scope="module")
def acceptor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AtAcceptor]:
    """One OMS acceptor (the product's settings) serving TW44 -> ISLD with the echo application."""
    with at_acceptor(tmp_path_factory.mktemp("quickfix-at")) as running:
        yield running


def _scenarios() -> list[object]:
    if not AT_DIR.is_dir():
        reason = f"QuickFIX's acceptance scenarios are not at {AT_DIR.resolve()} (../shared/quickfix-at/fix44)"
        return [pytest.param(None, id="quickfix-at", marks=pytest.mark.skip(reason=reason))]
    params = []
    for path in sorted(AT_DIR.glob("*.def")):
        marks = [pytest.mark.skip(reason=NOT_APPLICABLE[path.stem])] if path.stem in NOT_APPLICABLE else []
        params.append(pytest.param(path, id=path.stem, marks=marks))
    return params


@pytest.mark.parametrize("scenario", _scenarios())
def test_scenario(acceptor: AtAcceptor, scenario: Path) -> None:
    acceptor.wait_idle()
    result, evidence = run_script(read_def_file(scenario), AcceptorTarget(HOST, acceptor.port))
    details = "\n".join(f"expected: {f.expected}\nseen: {f.seen}" for f in result.findings)
    assert result.verdict is Verdict.PASS, f"{result.reason}\n{details}"


def test_every_not_applicable_scenario_exists() -> None:
    if not AT_DIR.is_dir():
        pytest.skip(f"no scenarios at {AT_DIR.resolve()}")
    stems = {path.stem for path in AT_DIR.glob("*.def")}
    assert set(NOT_APPLICABLE) <= stems
