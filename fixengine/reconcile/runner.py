"""Running reconciliations: fetch a REST snapshot of an account, compare (``fixengine.reconcile``),
journal and apply the heals. The I/O around the pure comparison.

Kalshi's REST data lags its matching engine (spec §6.4). A snapshot only counts once its
``/exchange/user_data_timestamp`` is at or after the last FIX report the book applied for the
account; until then it is read again, for up to ``staleness_timeout`` seconds (``StaleSnapshotError``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from fixengine._event import _StampedNow, stamped, utc_now
from fixengine.config import EngineConfig, RestConfig
from fixengine.errors import FixEngineError, StaleSnapshotError
from fixengine.orders.book import BookEvent, Order, OrderBook
from fixengine.kalshi.facts import ORDER_ENTRY
from fixengine.orders.journal import Journal, rebuild_book
from fixengine.reconcile.compare import Findings, Severity, Snapshot, reconcile
from fixengine.rest import KalshiRest, NotFoundError, RestError
from fixengine.kalshi.signing import Signer, load_private_key

log = logging.getLogger("fixengine.reconciliation")

# Fills and settlements are read from the last good snapshot on, less this margin (REST lag).
CHECKPOINT_MARGIN = timedelta(minutes=5)
STALE_POLL_S = 0.2
REQUEST_GRACE = timedelta(seconds=1)  # a cancel/replace older than this at as_of has been answered
LOGGED_HEALS = 20  # healed findings logged one by one per run; the rest are counted


@dataclass(frozen=True, slots=True)
class ReconciliationDone(_StampedNow):
    """A reconciliation of ``session``'s account finished; ``findings`` says what it found and
    healed. Unexplained findings leave the book as it was (and keep a held book held)."""

    findings: Findings

    def describe(self) -> str:
        f = self.findings
        healed = len(f.discrepancies) - len(f.unexplained)
        if f.clean:
            return f"reconciled: book matches the exchange ({healed} healed)"
        return f"reconciled: {len(f.unexplained)} discrepancies NOT explained ({healed} healed); the book was left as it is"


@dataclass(frozen=True, slots=True)
class ReconciliationFailed(_StampedNow):
    """A reconciliation could not run (REST unreachable, refused, or stale); ``reason`` says why."""

    reason: str

    def describe(self) -> str:
        return f"reconciliation failed: {self.reason}"


ReconciliationEvent = ReconciliationDone | ReconciliationFailed


class Reconciler:
    """Reconciles accounts against one REST base URL, one client per API key."""

    def __init__(
        self,
        config: RestConfig,
        book: OrderBook,
        journal: Journal,
        keys: Mapping[str, Signer],
        last_report_at: Callable[[str], datetime | None],
        publish: Callable[[BookEvent], None] = lambda _: None,
        request_sent_at: Callable[[str], datetime | None] | None = None,
        *,
        external_accounts: Collection[str] = (),
    ):
        """``external_accounts``: accounts whose other keys' orders the engine sees (on a listener or
        drop-copy session): an order of theirs the book does not know is adopted, not reported."""
        self.config = config
        self._book = book
        self._journal = journal
        self._keys = keys
        self._last_report_at = last_report_at
        self._publish = publish
        self._request_sent_at = request_sent_at  # None: nothing in flight (the engine is not running)
        self._external_accounts = frozenset(external_accounts)
        self._clients: dict[str, KalshiRest] = {}
        self._checkpoints: dict[str, datetime] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def _client(self, account: str) -> KalshiRest:
        client = self._clients.get(account)
        if client is None:
            signer = self._keys[account]  # any key of the account reads its portfolio
            client = KalshiRest(self.config.base_url, signer.key_id, signer.private_key, tier=self.config.tier,
                                timeout=self.config.timeout)
            self._clients[account] = client
        return client

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()

    async def run(self, account: str, *, session: str | None = None) -> Findings:
        """Reconcile ``account``: wait out REST staleness, compare, journal and apply the heals.
        Raises ``RestError`` or ``StaleSnapshotError`` when it cannot. The book events of the heals
        are published as of ``session`` (the one the run is for); without it, as of the account,
        which is what reconciliation is about (and what its log lines name)."""
        lock = self._locks.setdefault(account, asyncio.Lock())
        async with lock:
            deadline = time.monotonic() + self.config.staleness_timeout
            while True:
                snapshot = await self.fetch(account)
                last = self._last_report_at(account)
                # Synchronous from here on: the book cannot move between this check and the heals.
                if last is None or snapshot.as_of >= last:
                    break
                if time.monotonic() >= deadline:
                    raise StaleSnapshotError(
                        f"REST data for {account} is as of {snapshot.as_of.isoformat()}, older than the last FIX "
                        f"report ({last.isoformat()}), after {self.config.staleness_timeout:.0f}s of re-reading"
                    )
                await asyncio.sleep(STALE_POLL_S)  # polling a remote service, not synchronising
            findings = reconcile(self._book, account, snapshot, self._settled_requests(account, snapshot.as_of),
                                 adopt_external=account in self._external_accounts)
            self._heal(findings, session if session is not None else account)
            self._checkpoints[account] = snapshot.as_of - CHECKPOINT_MARGIN
            _log_findings(account, findings)
            return findings

    def _settled_requests(self, account: str, as_of: datetime) -> set[str] | None:
        """Unanswered requests (pending cancels/replaces, new orders never acknowledged) the
        exchange has certainly seen by ``as_of``: sent by an earlier process, or at least
        ``REQUEST_GRACE`` before it."""
        if self._request_sent_at is None:
            return None
        settled = set()
        for order in self._book.orders.values():
            if order.account != account:
                continue
            for cl_ord_id in order.unanswered:
                sent = self._request_sent_at(cl_ord_id)
                if sent is None or sent <= as_of - REQUEST_GRACE:
                    settled.add(cl_ord_id)
        return settled

    def _heal(self, findings: Findings, session: str) -> None:
        for heal in findings.heals:
            self._journal.record_reconciled(heal)
        self._journal.commit()  # journaled before the book changes, as for FIX reports
        now = utc_now()
        for heal in findings.heals:
            for event in self._book.heal(heal):
                self._publish(stamped(event, session, now))

    async def fetch(self, account: str) -> Snapshot:
        """Everything the comparison needs about ``account``, read over REST."""
        client = self._client(account)
        since = self._checkpoints.get(account)
        as_of = await client.user_data_timestamp()
        orders = list(await client.orders(status="resting"))
        seen = {o.order_id for o in orders}
        live = [o for o in self._book.orders.values() if o.account == account and not o.status.terminal]
        if any(o.order_id is None for o in live):  # acks never read: look among the recent orders too
            orders += [o for o in await client.orders(min_ts=since) if o.order_id not in seen]
            seen = {o.order_id for o in orders}
        missing: set[str] = set()
        for order_id in _ids_to_look_up(live, seen):
            try:
                orders.append(await client.order(order_id))
            except NotFoundError:
                missing.add(order_id)
        fills = await client.fills(min_ts=since)
        positions = {p.ticker: p.position_fp for p in await client.positions()}
        settlements = await client.settlements(min_ts=since)
        balance = (await client.balance()).balance_dollars
        return Snapshot(as_of, orders, fills, positions, settlements, frozenset(missing), balance)


def _log_findings(account: str, findings: Findings) -> None:
    """Every unexplained finding (ERROR), the first healed ones, and a count of the healed by kind."""
    healed = [d for d in findings.discrepancies if d.healed]
    for d in findings.unexplained:
        log.error("%s: %s", account, d.describe())
    for d in healed[:LOGGED_HEALS]:
        log.log(logging.WARNING if d.severity is Severity.WARNING else logging.INFO, "%s: %s", account, d.describe())
    if len(healed) > LOGGED_HEALS:
        counts = Counter(d.kind.value for d in healed)
        log.warning("%s: %d healed in all (%s)", account, len(healed), ", ".join(f"{k} {n}" for k, n in sorted(counts.items())))


async def reconcile_offline(config: EngineConfig, session_names: Sequence[str] = ()) -> dict[str, Findings]:
    """Reconcile the journaled book of a stopped engine (``fixengine reconcile``): each order-entry
    session's account (or those named), heals journaled for the engine's next start. Raises
    ``FixEngineError`` when the engine is running (it owns the journal) or REST cannot be read."""
    if config.rest is None:
        raise FixEngineError("reconciliation needs a [rest] section in the configuration")
    unknown = [n for n in session_names if n not in {s.name for s in config.sessions}]
    if unknown:
        raise FixEngineError(f"no session named {', '.join(unknown)} in the configuration")
    chosen = [s for s in config.sessions if s.session_type in ORDER_ENTRY and not s.logon.listener
              and (not session_names or s.name in session_names)]
    journal = Journal(config.journal_path, durable=config.journal_sync == "full", legacy=config.legacy_journal_path)
    try:
        book = rebuild_book(journal)
        keys = {s.account_id: Signer(s.api_key_id, load_private_key(file=s.private_key_file, env=s.private_key_env))
                for s in reversed(chosen)}
        reconciler = Reconciler(config.rest, book, journal, keys, lambda _account: None,
                                external_accounts=config.external_accounts)
        try:
            results: dict[str, Findings] = {}
            for s in chosen:
                results[s.name] = await reconciler.run(s.account_id)
            return results
        finally:
            await reconciler.aclose()
    finally:
        journal.close()


def _ids_to_look_up(live: Iterable[Order], resting: set[str]) -> list[str]:
    """Live orders the exchange no longer lists as resting: filled or cancelled behind our back."""
    return [o.order_id for o in live if o.order_id is not None and o.order_id not in resting]


__all__ = [
    "ReconciliationDone", "ReconciliationEvent", "ReconciliationFailed", "Reconciler", "RestError", "StaleSnapshotError",
    "reconcile_offline",
]
