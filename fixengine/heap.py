"""Garbage collection kept off the order path, for the engine's and the simulator's processes.

CPython's full collection walks every tracked object: with a book of 100k orders that is tens of
milliseconds with everything stopped, a few times per run as the heap grows. What lives long here
(the book, sessions, the exchange's resting orders) dies by reference counting, not in cycles, so
``HeapKeeper`` moves everything alive into CPython's permanent generation (``gc.freeze()``, a
constant-time list splice) at the start and then ten times a second: a collection then walks only
what was made since the last freeze. (Once a second was too seldom: a busy simulator's full
collections then walked a second of its objects, 10-15 ms each.)

What it gives up: a reference cycle among frozen objects that becomes garbage later is not
collected by the automatic collector. So when the process has been nearly idle for a tick (under
``idle_share`` of a CPU) and ``sweep_after`` seconds have passed since the last sweep, it unfreezes,
collects everything, and freezes again: the long pause lands where no order is waiting.

``pauses`` records every collection's duration (``gc.callbacks``), so the claim can be checked.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from dataclasses import dataclass

log = logging.getLogger("fixengine.heap")


@dataclass
class GcPauses:
    """Every garbage collection this process ran since the keeper started, and the longest."""

    count: int = 0
    total_s: float = 0.0
    longest_s: float = 0.0
    longest_generation: int = -1
    sweeps: int = 0  # the keeper's own full collections at idle (not counted above)
    _started: float = 0.0
    _sweeping: bool = False

    def on_gc(self, phase: str, info: dict[str, int]) -> None:
        if self._sweeping:
            return
        if phase == "start":
            self._started = time.perf_counter()
            return
        took = time.perf_counter() - self._started
        self.count += 1
        self.total_s += took
        if took > self.longest_s:
            self.longest_s, self.longest_generation = took, info["generation"]

    def summary(self) -> dict[str, float | int]:
        return {"collections": self.count, "total_ms": round(self.total_s * 1e3, 1),
                "longest_ms": round(self.longest_s * 1e3, 2), "longest_generation": self.longest_generation,
                "idle_sweeps": self.sweeps}


class HeapKeeper:
    """Freezes the heap at ``start`` and every ``every`` seconds; sweeps it whole when idle (under
    ``idle_share`` of a CPU over a tick, ``sweep_after`` seconds after the last sweep)."""

    def __init__(self, every: float = 0.1, *, sweep_after: float = 300.0, idle_share: float = 0.05):
        self.every = every
        self.sweep_after = sweep_after
        self.idle_share = idle_share
        self.pauses = GcPauses()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        gc.collect()  # what start-up left behind goes now, not into the permanent generation
        gc.freeze()
        gc.callbacks.append(self.pauses.on_gc)
        self._thread = threading.Thread(target=self._run, name="heap-keeper", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join(timeout=5)
        self._thread = None
        if self.pauses.on_gc in gc.callbacks:
            gc.callbacks.remove(self.pauses.on_gc)
        gc.unfreeze()  # back to the ordinary collector for whatever runs after

    def _run(self) -> None:
        last_sweep = time.monotonic()
        cpu = time.process_time()
        while not self._stop.wait(self.every):
            now_cpu, now = time.process_time(), time.monotonic()
            idle = (now_cpu - cpu) < self.idle_share * self.every
            cpu = now_cpu
            if idle and now - last_sweep >= self.sweep_after:
                self._sweep()
                last_sweep = now
            else:
                gc.freeze()

    def _sweep(self) -> None:
        started = time.perf_counter()
        self.pauses._sweeping = True
        try:
            gc.unfreeze()
            found = gc.collect()
            gc.freeze()
        finally:
            self.pauses._sweeping = False
        self.pauses.sweeps += 1
        log.debug("idle sweep: %d unreachable objects collected in %.1f ms", found, (time.perf_counter() - started) * 1e3)
