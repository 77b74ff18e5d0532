"""Shared fixtures: API keys, a running simulator, the QuickFIX dictionaries, and the journal check
every test gets. What they are built from lives in conformance.harness and tests.helpers, which
test modules import (never this file)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import quickfix as fix

from conformance.harness import ApiKey, SimEvents, make_api_key
from fixengine.fix.dialect import Dialect
from fixengine.kalshi.facts import SessionType
from fixengine.orders.entry import OrderEntry
from fixengine.orders.journal import Journal
from simulator.config import FIX44_LISTENER, AccountConfig, SimulatorConfig
from simulator.recording import RestSink, WireSink
from simulator.server import Simulator
from tests.helpers.dictionaries import load_dictionaries
from tests.helpers.journal import journal_differs


@pytest.fixture(autouse=True)
def journal_replays_into_the_live_book(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every engine's journal, as it closes (or when the test ends), replays into the book that
    engine ended with (unless its order entry halted: its book then also holds the refusals of
    requests the journal could not take)."""
    entries: list[OrderEntry] = []
    problems: list[str] = []
    original_init, original_close = OrderEntry.__init__, Journal.close

    def recording_init(self: OrderEntry, *args: object, **kwargs: object) -> None:
        original_init(self, *args, **kwargs)  # type: ignore[arg-type]
        entries.append(self)

    def checking_close(journal: Journal) -> None:
        for entry in entries:
            if entry.journal is journal and not journal.closed and entry.halted is None:
                problems.extend(filter(None, [journal_differs(journal, entry.book)]))
        original_close(journal)

    monkeypatch.setattr(OrderEntry, "__init__", recording_init)
    monkeypatch.setattr(Journal, "close", checking_close)
    yield
    for entry in entries:
        if not entry.journal.closed and entry.halted is None:
            problems.extend(filter(None, [journal_differs(entry.journal, entry.book)]))
    assert not problems, "\n".join(problems)


@pytest.fixture
def make_key(tmp_path: Path) -> Callable[[], ApiKey]:
    """Fresh RSA key pairs with unique key ids (QuickFIX sessions are process-global by id)."""
    return lambda: make_api_key(tmp_path / "keys")


@pytest.fixture
def start_simulator(tmp_path: Path) -> Iterator[Callable[..., tuple[Simulator, SimEvents]]]:
    """Start a simulator on free ports with the given accounts; stopped after the test. ``on_wire`` and
    ``on_rest`` record what its clients send and read (``simulator.recording``)."""
    started: list[Simulator] = []

    def start(accounts: list[AccountConfig], *, on_wire: WireSink | None = None, on_rest: RestSink | None = None,
              **settings: object) -> tuple[Simulator, SimEvents]:
        settings.setdefault(
            "listeners",
            {SessionType.NR.value: 0, SessionType.RT.value: 0, SessionType.DC.value: 0, FIX44_LISTENER: 0},
        )
        config = SimulatorConfig(data_dir=tmp_path / f"sim{len(started)}", accounts=accounts, **settings)
        events = SimEvents()
        sim = Simulator(config, on_event=events, on_wire=on_wire, on_rest=on_rest)
        sim.start()
        started.append(sim)
        return sim, events

    yield start
    for sim in started:
        sim.stop()


@pytest.fixture(scope="module")
def dictionaries(tmp_path_factory) -> dict[Dialect, tuple[fix.DataDictionary, fix.DataDictionary]]:
    """The merged dictionaries, loaded by QuickFIX once per dialect: (session, application)."""
    return load_dictionaries(tmp_path_factory.mktemp)
