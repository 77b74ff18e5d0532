"""Shared fixtures: keys, a running simulator, engine configs pointed at it."""

from __future__ import annotations

import queue
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from fixengine.config import EngineConfig, LogonFlags, SessionConfig
from fixengine.fix.dialect import Dialect
from fixengine.kalshi.facts import SessionType
from fixengine.orders.entry import OrderEntry
from fixengine.orders.book import OrderBook
from fixengine.orders.journal import Journal, replay_book
from fixengine.kalshi.signing import load_private_key, public_key_pem, write_keypair
from simulator.fix.acceptor import SimEvent
from simulator.config import FIX44_LISTENER, AccountConfig, SimulatorConfig, TlsConfig
from simulator.server import Simulator


def journal_differs(journal: Journal, live: OrderBook) -> str | None:
    """Invariant 2 of the design, whole: how the journal fed back in differs from the live book
    (orders with their flags, fills, positions, every ClOrdID and ExecID seen), or None."""
    replayed = replay_book(journal)
    if replayed == live:
        return None
    diff = [f"{k}: live {live.orders.get(k)} != replayed {replayed.orders.get(k)}"
            for k in sorted(set(live.orders) | set(replayed.orders)) if live.orders.get(k) != replayed.orders.get(k)]
    if replayed.positions != live.positions:
        diff.append(f"positions: live {live.positions} != replayed {replayed.positions}")
    return f"the journal {journal.path} replays into another book:\n" + "\n".join(diff or ["(ids or fills seen)"])


def assert_journal_replays(journal: Journal, live: OrderBook) -> None:
    problem = journal_differs(journal, live)
    assert problem is None, problem


@pytest.fixture(autouse=True)
def journal_replays_into_the_live_book(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every engine's journal, as it closes (or when the test ends), replays into the book that
    engine ended with."""
    entries: list[OrderEntry] = []
    problems: list[str] = []
    original_init, original_close = OrderEntry.__init__, Journal.close

    def recording_init(self: OrderEntry, *args: object, **kwargs: object) -> None:
        original_init(self, *args, **kwargs)  # type: ignore[arg-type]
        entries.append(self)

    def checking_close(journal: Journal) -> None:
        for entry in entries:
            if entry.journal is journal and not journal.closed:
                problems.extend(filter(None, [journal_differs(journal, entry.book)]))
        original_close(journal)

    monkeypatch.setattr(OrderEntry, "__init__", recording_init)
    monkeypatch.setattr(Journal, "close", checking_close)
    yield
    for entry in entries:
        if not entry.journal.closed:
            problems.extend(filter(None, [journal_differs(entry.journal, entry.book)]))
    assert not problems, "\n".join(problems)


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    private_key_file: Path
    public_key_file: Path

    def account(self, tier: str = "premier") -> AccountConfig:
        return AccountConfig(api_key_id=self.key_id, public_key_file=self.public_key_file, tier=tier)

    @property
    def public_pem(self) -> str:
        return public_key_pem(load_private_key(file=self.private_key_file)).decode()


@pytest.fixture
def make_key(tmp_path: Path) -> Callable[[], ApiKey]:
    """Fresh RSA key pairs with unique key ids (QuickFIX sessions are process-global by id)."""

    def make() -> ApiKey:
        key_id = str(uuid.uuid4())
        private = tmp_path / "keys" / f"{key_id}.pem"
        public = tmp_path / "keys" / f"{key_id}.pub.pem"
        write_keypair(private, public)
        return ApiKey(key_id, private, public)

    return make


class SimEvents:
    """Simulator events collected across threads, with waiting."""

    def __init__(self) -> None:
        self.queue: queue.Queue[SimEvent] = queue.Queue()

    def __call__(self, event: SimEvent) -> None:
        self.queue.put(event)

    def wait_for(self, kind: str, key_id: str | None = None, timeout: float = 10.0) -> SimEvent:
        """Skip events until one of ``kind`` (for ``key_id``) arrives."""
        return self.wait_for_all((kind,), key_id, timeout)[kind]

    def wait_for_all(self, kinds: tuple[str, ...], key_id: str | None = None, timeout: float = 10.0) -> dict[str, SimEvent]:
        """Skip events until one of each of ``kinds`` (for ``key_id``) has arrived, in any order."""
        import time

        deadline = time.monotonic() + timeout
        seen: dict[str, SimEvent] = {}
        while len(seen) < len(kinds):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                missing = [k for k in kinds if k not in seen]
                raise TimeoutError(f"no simulator event {', '.join(missing)} for {key_id} within {timeout}s")
            event = self.queue.get(timeout=remaining)
            if event.kind in kinds and event.kind not in seen and (key_id is None or event.key_id == key_id):
                seen[event.kind] = event
        return seen


@pytest.fixture
def start_simulator(tmp_path: Path) -> Iterator[Callable[..., tuple[Simulator, SimEvents]]]:
    """Start a simulator on free ports with the given accounts; stopped after the test."""
    started: list[Simulator] = []

    def start(accounts: list[AccountConfig], **settings: object) -> tuple[Simulator, SimEvents]:
        settings.setdefault(
            "listeners",
            {SessionType.NR.value: 0, SessionType.RT.value: 0, SessionType.DC.value: 0, FIX44_LISTENER: 0},
        )
        config = SimulatorConfig(data_dir=tmp_path / f"sim{len(started)}", accounts=accounts, **settings)
        events = SimEvents()
        sim = Simulator(config, on_event=events)
        sim.start()
        started.append(sim)
        return sim, events

    yield start
    for sim in started:
        sim.stop()


def session_to(
    sim: Simulator,
    key: ApiKey,
    *,
    name: str = "s1",
    dialect: Dialect = Dialect.FIXT11,
    session_type: SessionType = SessionType.NR,
    listener: str | None = None,
    heartbeat_interval: int = 30,
    **overrides: object,
) -> SessionConfig:
    """A session config aimed at one of ``sim``'s listeners."""
    if listener is None:
        listener = session_type.value if dialect is Dialect.FIXT11 else FIX44_LISTENER
    fields: dict[str, object] = dict(
        name=name,
        host="127.0.0.1",
        port=sim.ports[listener],
        tls=sim.tls_cert_file is not None,
        tls_ca_file=sim.tls_cert_file,
        dialect=dialect,
        session_type=session_type,
        api_key_id=key.key_id,
        private_key_file=key.private_key_file,
        heartbeat_interval=heartbeat_interval,
        reconnect_interval=1,
        logon=LogonFlags(reset_seq_num=True),
    )
    fields.update(overrides)
    return SessionConfig(**fields)  # type: ignore[arg-type]


def engine_config(tmp_path: Path, *sessions: SessionConfig) -> EngineConfig:
    return EngineConfig(data_dir=tmp_path / f"engine-{uuid.uuid4().hex[:6]}", sessions=list(sessions))


TLS_ON = TlsConfig(enabled=True)
