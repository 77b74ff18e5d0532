"""The journal: the order book's write-ahead log, an append-only file of lines.

Invariant 2 of the design: an intent (new, cancel, replace) is journaled before it is sent, and a
report before it changes the book. A process killed at any instant restarts into the same book by
feeding the journal back in, in order (``replay``), and never sends an order twice: intents are not
re-sent on restart; whether one reached the exchange is learnt from its reports or by
reconciliation, and a retry reuses its ClOrdID.

ClOrdIDs are unique forever: a second intent with the same ClOrdID is refused (a retry after an
unknown outcome reuses the original intent rather than writing a new one).

Group commit: the ``record_*`` methods add lines to an open batch, and nothing is durable until
``commit()`` returns. The engine commits once per turn of its loop: before the intents of that turn
go on the wire, and before the reports of that turn change the book. A commit is one ``write`` of
the batch ended by a commit line (``;``); at open, lines after the last commit line (a batch a kill
cut short) are dropped, so a batch is whole or absent.

Why a file of lines and not a database: nothing is ever updated in place, so there is nothing to
checkpoint. SQLite in WAL mode stalled the loop for milliseconds at every checkpoint (one every
fraction of a second under load), and a commit cost a dozen system calls; here it is one. The
indexes a database kept (ClOrdIDs, ExecIDs per shard, settlement ids, the last MsgSeqNum per
session) are kept in memory and rebuilt by reading the file at open.

Line format, tab-separated, a kind letter first: ``N clordid account body`` (new), ``C clordid
order_key``, ``R clordid order_key quantity``, ``E shard execid body`` (report; no ExecID: a pending
report, never deduplicated), ``J``/``B`` body (cancel/business reject), ``S account reportid
body`` (settlement), ``H body`` (reconciliation's heal), ``M body`` (mark), ``Q session seq``
(received). Bodies are compact JSON; an identifier holding a tab, a newline, a quote or a
backslash is written as a JSON string.

Durability: ``write`` survives a killed process (what the tests prove) but not a power cut;
``durable=True`` also ``fdatasync``s every commit (much slower).

One process owns a journal: the file is locked (``flock``) while it is open, and a second engine
on the same data directory is refused instead of interleaving its writes. A journal written by
the SQLite versions (``journal.sqlite``) is read once into the new file at the first start, and
kept beside it renamed.
"""

from __future__ import annotations

import fcntl
import itertools
import json
import logging
import os
import re
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from fixengine.errors import DuplicateClOrdIDError, FixEngineError, JournalCorruptError
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


_COMMIT = ";\n"
_COMMIT_BYTES = _COMMIT.encode()
_UNSAFE = re.compile(r'[\t\n\r"\\]')  # what an identifier cannot hold bare in a line
_SQLITE_HEADER = b"SQLite format 3\x00"


def _field(value: str) -> str:
    return json.dumps(value) if _UNSAFE.search(value) or not value.isprintable() else value


def _unfield(text: str) -> str:
    return json.loads(text) if text.startswith('"') else text


class Journal:
    def __init__(self, path: Path, *, durable: bool = False, legacy: Path | None = None):
        """Open (or create) the journal at ``path``. ``legacy``: a journal of the SQLite versions,
        read into ``path`` once when ``path`` does not exist yet."""
        self.path = path
        self.closed = False
        self.durable = durable
        self.on_commit: Callable[[float], None] | None = None  # told each commit's seconds (metrics)
        self._batch: list[str] = []
        self._intents: set[str] = set()  # every intent's ClOrdID, committed or in this batch
        self._reports: set[str] = set()  # "shard;ExecID" of every report with an ExecID
        self._settlements: set[tuple[str, str]] = set()  # (account, 20105)
        self._received: dict[str, int] = {}
        path.parent.mkdir(parents=True, exist_ok=True)
        if legacy is not None and legacy.exists() and not path.exists():
            _migrate(legacy, path)
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            raise FixEngineError(f"journal {path} is in use by another process (one engine per data_dir)") from None
        try:
            for kind, a, b, _ in self._read_committed(cut=True):
                self._index(kind, a, b)
        except BaseException:
            os.close(self._fd)
            raise
        self._size = os.fstat(self._fd).st_size  # where the last commit ends

    def _read_committed(self, *, cut: bool = False) -> Iterator[tuple[str, str, str, str]]:
        """The committed lines, split, read as a stream; with ``cut`` (at open), a batch a kill cut
        short is cut off the end of the file."""
        committed = 0  # the end of the last commit line
        batch: list[tuple[str, str, str, str]] = []
        with open(os.dup(self._fd), "rb") as f:
            f.seek(0)
            if f.read(len(_SQLITE_HEADER)) == _SQLITE_HEADER:
                raise FixEngineError(f"journal {self.path} is a SQLite journal of an older version: the engine reads "
                                     "data_dir/journal.sqlite into data_dir/journal.log at its start")
            f.seek(0)
            offset = 0
            for n, raw in enumerate(f, 1):
                offset += len(raw)
                if raw == _COMMIT_BYTES:
                    yield from batch
                    batch.clear()
                    committed = offset
                    continue
                if not raw.endswith(b"\n"):
                    break  # a line a kill cut short: never committed
                try:
                    parts = raw[:-1].decode().split("\t", 3)
                except UnicodeDecodeError:
                    parts = []
                if len(parts) != 4 or parts[0] not in _KINDS:
                    raise JournalCorruptError(f"journal {self.path}, line {n}: not a journal entry: "
                                             f"{raw[:80].decode(errors='replace').rstrip()!r}")
                batch.append((parts[0], parts[1], parts[2], parts[3]))
        if cut and committed < offset:
            log.warning("journal %s: %d bytes after the last commit (a batch a stop cut short) dropped",
                        self.path, offset - committed)
            os.ftruncate(self._fd, committed)

    def _index(self, kind: str, a: str, b: str) -> None:
        if kind in "NCR":
            self._intents.add(_unfield(a))
        elif kind == "E" and b:
            self._reports.add(f"{a};{_unfield(b)}")
        elif kind == "S":
            self._settlements.add((_unfield(a), _unfield(b)))
        elif kind == "Q":
            self._received[_unfield(a)] = int(b)

    def close(self) -> None:
        """Commit what is written, and close."""
        if self.closed:
            return
        self.commit()
        os.close(self._fd)
        self.closed = True

    def commit(self) -> None:
        """Make everything recorded so far durable: one write of the batch and its commit line.
        If the write fails (a full disk), the file is cut back to its last commit and the batch
        kept, so that nothing of it counts as journaled and a later commit writes it whole."""
        if not self._batch:
            return
        started = time.perf_counter() if self.on_commit is not None else 0.0
        data = ("".join(self._batch) + _COMMIT).encode()
        try:
            view = memoryview(data)
            while view:  # one write for a regular file; the loop is for the rare short write
                view = view[os.write(self._fd, view):]
            if self.durable:
                os.fdatasync(self._fd)
        except OSError:
            os.ftruncate(self._fd, self._size)
            raise
        self._size += len(data)
        self._batch.clear()
        if self.on_commit is not None:
            self.on_commit(time.perf_counter() - started)

    def _intent(self, kind: str, cl_ord_id: str, key: str, body: str) -> None:
        if cl_ord_id in self._intents:
            raise DuplicateClOrdIDError(cl_ord_id)
        self._intents.add(cl_ord_id)
        self._batch.append(f"{kind}\t{_field(cl_ord_id)}\t{_field(key)}\t{body}\n")

    def record_new(self, order: NewOrder, account: str = "") -> None:
        self._intent("N", order.client_order_id, account, order.model_dump_json())

    def record_cancel(self, order_key: str, cl_ord_id: str) -> None:
        self._intent("C", cl_ord_id, order_key, "")

    def record_replace(self, order_key: str, cl_ord_id: str, quantity: Decimal | None) -> None:
        self._intent("R", cl_ord_id, order_key, "" if quantity is None else str(quantity))

    def record_report(self, report: ExecutionReport | CancelReject | BusinessReject | SettlementReport) -> bool:
        """Journal a report; False if an identical ExecID (per shard) is already there, or for a
        settlement report the same MarketSettlementReportID (20105) for the same account."""
        if isinstance(report, CancelReject):
            self._batch.append(f"J\t\t\t{report_to_json(report)}\n")
            return True
        if isinstance(report, BusinessReject):
            self._batch.append(f"B\t\t\t{report_to_json(report)}\n")
            return True
        if isinstance(report, SettlementReport):
            key = (report.account, report.report_id)
            if key in self._settlements:
                return False
            self._settlements.add(key)
            self._batch.append(f"S\t{_field(key[0])}\t{_field(key[1])}\t{report_to_json(report)}\n")
            return True
        dedupe = report.dedupe_key
        if dedupe is None:
            self._batch.append(f"E\t\t\t{report_to_json(report)}\n")
            return True
        shard, exec_id = dedupe
        seen = f"{shard};{exec_id}"
        if seen in self._reports:
            return False
        self._reports.add(seen)
        self._batch.append(f"E\t{shard}\t{_field(exec_id)}\t{report_to_json(report)}\n")
        return True

    def has_intent(self, cl_ord_id: str) -> bool:
        return cl_ord_id in self._intents

    def record_reconciled(self, heal: ExecutionReport | CancelReject | PositionFix) -> None:
        """Journal a heal from reconciliation."""
        if isinstance(heal, PositionFix):
            body = json.dumps({"position": {"account": heal.account, "ticker": heal.ticker, "net_yes": str(heal.net_yes)}})
        elif isinstance(heal, CancelReject):
            body = f'{{"cancel_reject": {report_to_json(heal)}}}'
        else:
            body = f'{{"report": {report_to_json(heal)}}}'
        self._batch.append(f"H\t\t\t{body}\n")

    def record_mark(self, mark: Marked) -> None:
        self._batch.append(f"M\t\t\t{json.dumps({'what': mark.what, 'account': mark.account, 'keys': list(mark.keys)})}\n")

    def mark(self, book: OrderBook, mark: Marked) -> list[Order]:
        """Change ``book``'s flags by ``mark`` and journal it (if it changed anything to replay)."""
        marked = mark.apply(book)
        if marked or mark.what == "confirmed":
            self.record_mark(mark)
        return marked

    def record_received(self, session: str, seq: int) -> None:
        """The last MsgSeqNum read from ``session`` is journaled (with the reports of its batch)."""
        self._received[session] = seq
        self._batch.append(f"Q\t{_field(session)}\t{seq}\t\n")

    def received(self, session: str) -> int | None:
        """The MsgSeqNum of the last message journaled from ``session``, if any."""
        return self._received.get(session)

    def replay(self) -> Iterator[Entry]:
        """Every entry in the order it was written: those committed, then this batch's (as a
        database transaction reads its own writes)."""
        batch = (tuple(line[:-1].split("\t", 3)) for line in self._batch)
        for kind, a, b, body in itertools.chain(self._read_committed(), batch):
            if kind == "N":
                yield NewIntent(NewOrder.model_validate_json(body), _unfield(b))
            elif kind == "C":
                yield CancelIntent(_unfield(b), _unfield(a))
            elif kind == "R":
                yield ReplaceIntent(_unfield(b), _unfield(a), Decimal(body) if body else None)
            elif kind == "E":
                yield execution_report_from_json(body)
            elif kind == "J":
                yield cancel_reject_from_json(body)
            elif kind == "B":
                yield business_reject_from_json(body)
            elif kind == "S":
                yield settlement_report_from_json(body)
            elif kind == "M":
                data = json.loads(body)
                yield Marked(data["what"], data["account"], tuple(data["keys"]))
            elif kind == "H":
                data = json.loads(body)
                if "position" in data:
                    p = data["position"]
                    yield Reconciled(PositionFix(p["account"], p["ticker"], Decimal(p["net_yes"])))
                elif "cancel_reject" in data:
                    yield Reconciled(cancel_reject_from_json(json.dumps(data["cancel_reject"])))
                else:
                    yield Reconciled(execution_report_from_json(json.dumps(data["report"])))


_KINDS = frozenset("NCREJBSHMQ")
_LEGACY_KINDS = {"new": "N", "cancel": "C", "replace": "R", "report": "E", "cancel_reject": "J",
                 "business_reject": "B", "settlement": "S", "reconciled": "H", "mark": "M"}


def _migrate(legacy: Path, path: Path) -> None:
    """Read a SQLite journal of the older versions into a new journal file at ``path``, entry for
    entry in order, and keep the old file beside it renamed (``.migrated``)."""
    try:
        db = sqlite3.connect(f"file:{legacy}?mode=rw", uri=True, isolation_level=None)
        rows = db.execute("SELECT kind, cl_ord_id, order_key, shard, exec_id, body FROM entries ORDER BY seq").fetchall()
        received = db.execute("SELECT session, seq FROM received").fetchall()
        db.close()  # the last connection's close checkpoints its WAL into the file
    except sqlite3.Error as exc:
        raise FixEngineError(f"journal {legacy} (SQLite, an older version's) cannot be read: {exc}") from None
    lines = []
    for kind, cl_ord_id, order_key, shard, exec_id, body in rows:
        letter = _LEGACY_KINDS[kind]
        if letter in "NCR":
            value = "" if body in ("{}", "null") else body.strip('"') if letter == "R" else body
            lines.append(f"{letter}\t{_field(cl_ord_id)}\t{_field(order_key or '')}\t{value}\n")
        elif letter == "E":
            lines.append(f"E\t{'' if exec_id is None else shard}\t{'' if exec_id is None else _field(exec_id)}\t{body}\n")
        elif letter == "S":
            lines.append(f"S\t{_field(order_key)}\t{_field(exec_id)}\t{body}\n")
        else:
            lines.append(f"{letter}\t\t\t{body}\n")
    lines += [f"Q\t{_field(session)}\t{seq}\t\n" for session, seq in received]
    partial = path.with_name(path.name + ".partial")
    partial.write_text("".join(lines) + _COMMIT)
    os.replace(partial, path)
    legacy.rename(legacy.with_name(legacy.name + ".migrated"))
    log.warning("journal %s (SQLite) read into %s: %d entries; the old file is kept as %s.migrated",
                legacy, path, len(rows), legacy.name)


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
