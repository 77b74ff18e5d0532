"""The scenarios' code, one module per area: for each scenario id of the library (``specs/conformance``)
a driver (what the simulator does while the client runs) and a judge (the verdict, from the evidence
alone). Judges are pure, so ``fixengine conform rejudge`` can run them again on a saved bundle.

    @scenario("kalshi/hb/02")
    async def test_request_answered(ctx: Context) -> None:       # the driver
        ...

    @judge("kalshi/hb/02")
    def _(evidence: Evidence, profile: Profile) -> ScenarioResult:
        ...

A driver gets a ``Context``: the simulator the client is connected to, the client's key, its profile,
the evidence so far (filled as things happen), and ways to act and to wait. Every wait is bounded; a
driver that cannot do its part raises ``HarnessError`` (the verdict is ERROR, never FAIL).

The runner starts the client before the driver; ``@scenario(id, start_client=False)`` leaves that to
the driver (to arm a fault for the very first Logon), and ``exclusive=True`` runs the scenario alone
(it changes what every session sees, e.g. the simulator's clock).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from conformance.model import Evidence, ScenarioResult

if TYPE_CHECKING:
    import random

    from conformance.harness import ApiKey
    from conformance.instructions import Answer
    from conformance.profile import Profile
    from simulator.server import Simulator


class HarnessError(Exception):
    """The harness could not do its part (the simulator refused a fault, a wait it needs failed)."""


class Context(Protocol):
    sim: "Simulator"
    key: "ApiKey"  # the client's key (one per scenario: scenarios run in parallel)
    profile: "Profile"
    evidence: Evidence  # live: messages are appended as they cross the wire
    session_type: str  # the TargetCompID the client was pointed at (the profile session chosen)
    connect_timeout: float  # how long to wait for the client's first Logon
    rng: "random.Random"  # seeded from the run's seed and the scenario's id: random choices repeat

    @property
    def client_running(self) -> bool:
        """The client's process is alive (it may exit on its own: a crash, a refusal it gives up on)."""

    async def start_client(self) -> None:
        """Start the client command (again, after ``stop_client``) with the scenario's environment."""

    async def stop_client(self) -> None:
        """SIGTERM, then SIGKILL after a grace period."""

    async def instruct(self, instruction: dict[str, Any], timeout: float) -> "Answer | None":
        """Write one instruction line (its ``id`` is added) and wait for the answer; None when the
        client does not answer in time (then the scenario is INCONCLUSIVE, not FAIL)."""

    def fault(self, what: str) -> None:
        """Note a fault the driver is about to inject, for the timeline."""

    async def wait_for(self, condition: Callable[[Evidence], bool], timeout: float) -> bool:
        """Until ``condition(evidence)`` holds (True) or ``timeout`` passes (False)."""


Driver = Callable[[Context], Awaitable[None]]
Judge = Callable[[Evidence, "Profile"], ScenarioResult]


@dataclass(frozen=True, slots=True)
class Options:
    """How the runner runs a scenario's driver."""

    exclusive: bool = False  # runs alone: it changes what every session sees (the simulator's clock)
    start_client: bool = True  # the runner starts the client before the driver (False: the driver does)


DRIVERS: dict[str, Driver] = {}
JUDGES: dict[str, Judge] = {}
OPTIONS: dict[str, Options] = {}  # scenarios registered with other than the default options


def scenario(scenario_id: str, *, exclusive: bool = False, start_client: bool = True) -> Callable[[Driver], Driver]:
    def register(driver: Driver) -> Driver:
        if scenario_id in DRIVERS:
            raise ValueError(f"two drivers for {scenario_id}")
        DRIVERS[scenario_id] = driver
        if exclusive or not start_client:
            OPTIONS[scenario_id] = Options(exclusive, start_client)
        return driver
    return register


def judge(scenario_id: str) -> Callable[[Judge], Judge]:
    def register(fn: Judge) -> Judge:
        if scenario_id in JUDGES:
            raise ValueError(f"two judges for {scenario_id}")
        JUDGES[scenario_id] = fn
        return fn
    return register


def load_all() -> None:
    """Import every area module, which registers its drivers and judges."""
    import importlib
    import pkgutil

    for info in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{info.name}")
