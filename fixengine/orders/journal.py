"""The journal: the order book's write-ahead log, in SQLite (WAL).

Invariant 2 of the design: an intent (new, cancel, replace) is journaled before it is sent, and a
report before it changes the book. A process killed at any instant restarts into the same book by
feeding the journal back in, in order (``replay``), and never sends an order twice: intents are not
re-sent on restart; whether one reached the exchange is learnt from its reports or by
reconciliation, and a retry reuses its ClOrdID.

ClOrdIDs are unique forever: the database refuses a second intent with the same ClOrdID (a retry
after an unknown outcome reuses the original intent rather than writing a new one).

Group commit: the ``record_*`` methods write into an open transaction, and nothing is durable
until ``commit()`` returns. The engine commits once per turn of its loop: before the intents of
that turn go on the wire, and before the reports of that turn change the book. One commit for a
burst of orders instead of one each is what makes the journal affordable at thousands of orders
per second (a commit is ~6 fcntl + 2 pwrite calls, each a GIL hand-off under load).

Durability: ``synchronous=NORMAL`` in WAL mode survives a killed process (what the tests prove) but
not a power cut between checkpoints; ``durable=True`` syncs every commit (much slower).

One process owns a journal: it is opened with an exclusive lock (fewer syscalls per commit, and
a second engine on the same data directory is refused instead of interleaving its writes).
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from fixengine.errors import DuplicateClOrdIDError, FixEngineError
from fixengine.orders.book import BookError, Order, OrderBook
from fixengine.orders.journal_codec import (
    business_reject_from_json,
    cancel_reject_from_json,
    execution_report_from_json,
    report_to_json,
    settlement_report_from_json,
)
from fixengine.orders.reports import BusinessReject, CancelReject, ExecutionReport, PositionFix
from fixengine.orders.requests import NewOrder
from fixengine.orders.settlement import SettlementReport

log = logging.getLogger("fixengine.journal")

SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    seq INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,            -- new | cancel | replace | report | cancel_reject | business_reject | settlement | reconciled | mark
    cl_ord_id TEXT,                -- the intent's ClOrdID
    order_key TEXT,                -- cancel/replace: which order; new, settlement: the account (API key)
    shard INTEGER,                 -- report: exchange index
    exec_id TEXT,                  -- report: ExecID (NULL for pending reports: never deduplicated); settlement: 20105
    body TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS intents_by_clordid
    ON entries (cl_ord_id) WHERE kind IN ('new', 'cancel', 'replace');
CREATE UNIQUE INDEX IF NOT EXISTS reports_by_execid
    ON entries (shard, exec_id) WHERE kind = 'report' AND exec_id IS NOT NULL;
CREATE UNIQUE INDEX IF NOT EXISTS settlements_by_id
    ON entries (order_key, exec_id) WHERE kind = 'settlement';
-- The MsgSeqNum of the last message journaled from each session: QuickFIX counts a message as
-- received when its callback returns, before the loop journals it; a restart asks again from here.
CREATE TABLE IF NOT EXISTS received (
    session TEXT PRIMARY KEY,
    seq INTEGER NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class NewIntent:
    order: NewOrder
    account: str


@dataclass(frozen=True, slots=True)
class CancelIntent:
    order_key: str
    cl_ord_id: str


@dataclass(frozen=True, slots=True)
class ReplaceIntent:
    order_key: str
    cl_ord_id: str
    quantity: Decimal | None


@dataclass(frozen=True, slots=True)
class Marked:
    """A change of the book's flags that no report made, journaled so that replay makes it at the
    same point: ``restarted`` (orders never acknowledged become outcome-unknown), ``unknown``
    (those of ``keys``: a send failed), ``stale`` (``account``'s live orders unconfirmed: a logon
    that may have lost reports), ``confirmed`` (``account``'s book is right again)."""

    what: str
    account: str = ""
    keys: tuple[str, ...] = ()

    def apply(self, book: OrderBook) -> list[Order]:
        if self.what == "restarted":
            return book.mark_unconfirmed()
        if self.what == "unknown":
            return book.mark_unconfirmed(self.keys)
        if self.what == "stale":
            return book.mark_stale(self.account)
        if self.what == "confirmed":
            book.confirm(self.account)
            return []
        raise ValueError(f"unknown mark {self.what!r}")


@dataclass(frozen=True, slots=True)
class Reconciled:
    """A heal from reconciliation (fixengine.reconcile): a report the exchange's REST API showed
    us instead of the FIX session, or a position correction."""

    heal: ExecutionReport | CancelReject | PositionFix


Entry = (NewIntent | CancelIntent | ReplaceIntent | ExecutionReport | CancelReject | BusinessReject | SettlementReport
         | Reconciled | Marked)


def open_journal_db(path: Path, schema: str, *, durable: bool = False, what: str = "journal") -> sqlite3.Connection:
    """A journal's SQLite database, owned by this process (exclusive lock), in WAL mode, with
    ``schema`` applied. Transactions are the caller's (``isolation_level=None``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=1.0)
    try:
        db.execute("PRAGMA locking_mode=EXCLUSIVE")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
        db.executescript(schema)  # takes the exclusive lock
    except sqlite3.OperationalError as exc:
        db.close()
        if "locked" in str(exc):
            raise FixEngineError(f"{what} {path} is in use by another process (one engine per data_dir)") from None
        raise FixEngineError(f"{what} {path} cannot be opened: {exc}") from None
    return db


class Journal:
    def __init__(self, path: Path, *, durable: bool = False):
        self.path = path
        self.closed = False
        self._db = open_journal_db(path, SCHEMA, durable=durable)
        self.on_commit: Callable[[float], None] | None = None  # told each commit's seconds (metrics)

    def close(self) -> None:
        """Commit what is written, and close."""
        if self.closed:
            return
        self.commit()
        self._db.close()
        self.closed = True

    def commit(self) -> None:
        """Make everything recorded so far durable (one WAL write for all of it)."""
        if self._db.in_transaction:
            if self.on_commit is None:
                self._db.execute("COMMIT")
                return
            started = time.perf_counter()
            self._db.execute("COMMIT")
            self.on_commit(time.perf_counter() - started)

    def _insert(self, kind: str, body: str, cl_ord_id: str | None = None, order_key: str | None = None,
                shard: int | None = None, exec_id: str | None = None) -> None:
        if not self._db.in_transaction:
            self._db.execute("BEGIN")
        self._db.execute(
            "INSERT INTO entries (kind, cl_ord_id, order_key, shard, exec_id, body) VALUES (?, ?, ?, ?, ?, ?)",
            (kind, cl_ord_id, order_key, shard, exec_id, body),
        )

    def _intent(self, kind: str, cl_ord_id: str, body: str, order_key: str | None = None) -> None:
        try:
            self._insert(kind, body, cl_ord_id=cl_ord_id, order_key=order_key)
        except sqlite3.IntegrityError:
            raise DuplicateClOrdIDError(cl_ord_id) from None

    def record_new(self, order: NewOrder, account: str = "") -> None:
        self._intent("new", order.client_order_id, order.model_dump_json(), order_key=account)

    def record_cancel(self, order_key: str, cl_ord_id: str) -> None:
        self._intent("cancel", cl_ord_id, "{}", order_key)

    def record_replace(self, order_key: str, cl_ord_id: str, quantity: Decimal | None) -> None:
        self._intent("replace", cl_ord_id, "null" if quantity is None else f'"{quantity}"', order_key)

    def record_report(self, report: ExecutionReport | CancelReject | BusinessReject | SettlementReport) -> bool:
        """Journal a report; False if an identical ExecID (per shard) is already there, or for a
        settlement report the same MarketSettlementReportID (20105) for the same account."""
        if isinstance(report, CancelReject):
            self._insert("cancel_reject", report_to_json(report), cl_ord_id=None)
            return True
        if isinstance(report, BusinessReject):
            self._insert("business_reject", report_to_json(report), cl_ord_id=None)
            return True
        if isinstance(report, SettlementReport):
            try:
                self._insert("settlement", report_to_json(report), order_key=report.account, exec_id=report.report_id)
            except sqlite3.IntegrityError:
                return False
            return True
        key = report.dedupe_key
        try:
            self._insert("report", report_to_json(report), shard=key[0] if key else None, exec_id=key[1] if key else None)
        except sqlite3.IntegrityError:
            return False
        return True

    def has_intent(self, cl_ord_id: str) -> bool:
        row = self._db.execute(
            "SELECT 1 FROM entries WHERE cl_ord_id = ? AND kind IN ('new', 'cancel', 'replace')", (cl_ord_id,)
        ).fetchone()
        return row is not None

    def record_reconciled(self, heal: ExecutionReport | CancelReject | PositionFix) -> None:
        """Journal a heal, marked as coming from reconciliation (kind ``reconciled``)."""
        if isinstance(heal, PositionFix):
            body = json.dumps({"position": {"account": heal.account, "ticker": heal.ticker, "net_yes": str(heal.net_yes)}})
        elif isinstance(heal, CancelReject):
            body = json.dumps({"cancel_reject": json.loads(report_to_json(heal))})
        else:
            body = json.dumps({"report": json.loads(report_to_json(heal))})
        self._insert("reconciled", body)

    def record_mark(self, mark: Marked) -> None:
        self._insert("mark", json.dumps({"what": mark.what, "account": mark.account, "keys": list(mark.keys)}))

    def mark(self, book: OrderBook, mark: Marked) -> list[Order]:
        """Change ``book``'s flags by ``mark`` and journal it (if it changed anything to replay)."""
        marked = mark.apply(book)
        if marked or mark.what == "confirmed":
            self.record_mark(mark)
        return marked

    def record_received(self, session: str, seq: int) -> None:
        """The last MsgSeqNum read from ``session`` is journaled (with the reports of its batch)."""
        if not self._db.in_transaction:
            self._db.execute("BEGIN")
        self._db.execute("INSERT OR REPLACE INTO received (session, seq) VALUES (?, ?)", (session, seq))

    def received(self, session: str) -> int | None:
        """The MsgSeqNum of the last message journaled from ``session``, if any."""
        row = self._db.execute("SELECT seq FROM received WHERE session = ?", (session,)).fetchone()
        return None if row is None else int(row[0])

    def replay(self) -> Iterator[Entry]:
        """Every entry in the order it was written."""
        rows = self._db.execute("SELECT kind, cl_ord_id, order_key, body FROM entries ORDER BY seq")
        for kind, cl_ord_id, order_key, body in rows:
            if kind == "new":
                yield NewIntent(NewOrder.model_validate_json(body), order_key or "")
            elif kind == "cancel":
                yield CancelIntent(order_key, cl_ord_id)
            elif kind == "replace":
                yield ReplaceIntent(order_key, cl_ord_id, None if body == "null" else Decimal(body.strip('"')))
            elif kind == "report":
                yield execution_report_from_json(body)
            elif kind == "cancel_reject":
                yield cancel_reject_from_json(body)
            elif kind == "business_reject":
                yield business_reject_from_json(body)
            elif kind == "settlement":
                yield settlement_report_from_json(body)
            elif kind == "mark":
                data = json.loads(body)
                yield Marked(data["what"], data["account"], tuple(data["keys"]))
            elif kind == "reconciled":
                data = json.loads(body)
                if "position" in data:
                    p = data["position"]
                    yield Reconciled(PositionFix(p["account"], p["ticker"], Decimal(p["net_yes"])))
                elif "cancel_reject" in data:
                    yield Reconciled(cancel_reject_from_json(json.dumps(data["cancel_reject"])))
                else:
                    yield Reconciled(execution_report_from_json(json.dumps(data["report"])))


def replay_book(journal: Journal) -> OrderBook:
    """The book as the journal says it was: every intent, report, heal and mark fed back in, in
    order. Read-only. An entry the book refuses is logged and skipped, never fatal: a journal
    written by an older version must not stop the engine from starting."""
    book = OrderBook()
    for n, entry in enumerate(journal.replay(), 1):
        try:
            if isinstance(entry, NewIntent):
                book.submit(entry.order, entry.account)
            elif isinstance(entry, CancelIntent):
                book.cancel(entry.order_key, entry.cl_ord_id)
            elif isinstance(entry, ReplaceIntent):
                book.replace(entry.order_key, entry.cl_ord_id, entry.quantity)
            elif isinstance(entry, Reconciled):
                book.heal(entry.heal)
            elif isinstance(entry, Marked):
                entry.apply(book)
            else:
                book.apply(entry)
        except BookError as exc:
            log.error("journal %s, entry %d (%s): %s; skipped", journal.path, n, type(entry).__name__, exc)
    return book


def rebuild_book(journal: Journal) -> OrderBook:
    """The book at a (re)start: replayed, then an order journaled but never acknowledged (the
    process died around the send) is marked outcome-unknown, and the mark journaled. It is not
    re-sent: reconciliation settles it, or a retry with the same ClOrdID (the exchange refuses a
    duplicate of an open order)."""
    book = replay_book(journal)
    journal.mark(book, Marked("restarted"))
    journal.commit()
    return book
