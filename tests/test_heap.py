"""The heap keeper: what was alive at a freeze is out of the collector's walk, a sweep at idle
still collects the cycles among it, and every collection's pause is recorded."""

from __future__ import annotations

import gc
import threading
import time
import weakref

from fixengine import HeapKeeper


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


def make_frozen_garbage(keeper: HeapKeeper) -> threading.Event:
    collected = threading.Event()
    holder = [Node(), Node()]
    holder[0].other, holder[1].other = holder[1], holder[0]
    weakref.finalize(holder[0], collected.set)
    keeper.start()  # freezes the cycle while it is alive
    holder.clear()  # now it is garbage that only a collector could find
    return collected


def test_a_cycle_frozen_while_alive_is_not_walked_by_full_collections() -> None:
    keeper = HeapKeeper(every=60, sweep_after=3600, idle_share=0.0)
    collected = make_frozen_garbage(keeper)
    try:
        assert gc.get_freeze_count() > 0
        gc.collect()
        assert not collected.is_set(), "a full collection walked the frozen heap"
    finally:
        keeper.stop()
    gc.collect()  # unfrozen at stop: the ordinary collector finds it again
    assert collected.is_set()


def test_an_idle_sweep_collects_cycles_among_the_frozen() -> None:
    keeper = HeapKeeper(every=0.02, sweep_after=0.0, idle_share=1.0)  # every tick counts as idle
    collected = make_frozen_garbage(keeper)
    try:
        assert collected.wait(timeout=10), "no idle sweep collected the frozen cycle"
        assert keeper.pauses.sweeps >= 1
    finally:
        keeper.stop()


def test_every_collection_is_timed_but_the_keepers_own_sweeps() -> None:
    keeper = HeapKeeper(every=60, sweep_after=3600, idle_share=0.0)
    keeper.start()
    try:
        before = keeper.pauses.count
        gc.collect()
        summary = keeper.pauses.summary()
        assert summary["collections"] == before + 1 and summary["longest_generation"] == 2
        assert summary["longest_ms"] > 0 and summary["idle_sweeps"] == 0
    finally:
        keeper.stop()
    assert keeper.pauses.on_gc not in gc.callbacks and gc.get_freeze_count() == 0


def test_what_the_process_makes_is_frozen_within_a_tenth_of_a_second() -> None:
    """A full collection walks what was made since the last freeze: frozen once a second, that was
    a second of a busy simulator's objects and pauses of 10-15 ms; a tenth of a second keeps them
    under 1 ms (benchmarks/speed.py simulator)."""
    keeper = HeapKeeper(sweep_after=3600, idle_share=0.0)  # the default interval
    keeper.start()
    try:
        started = gc.get_freeze_count()
        made = [Node() for _ in range(1000)]
        waiting = threading.Event()
        deadline = time.monotonic() + 0.5
        while gc.get_freeze_count() < started + len(made):
            assert time.monotonic() < deadline, "what was made is not frozen within half a second"
            waiting.wait(0.002)
    finally:
        keeper.stop()
