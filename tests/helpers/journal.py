"""The journal's invariant as a check tests call (and conftest runs on every engine's journal)."""

from __future__ import annotations

from fixengine.orders.book import OrderBook
from fixengine.orders.journal import Journal, replay_book


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
