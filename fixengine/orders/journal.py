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
go on the wire, and before the reports of that turn change the book. The file is a
``fixengine.orders.line_log.LineLog``: one ``write`` per commit, a batch a kill cut short dropped at
open, nothing to checkpoint. The indexes a database kept (ClOrdIDs, ExecIDs per shard, settlement
ids, the last MsgSeqNum per session) are kept in memory and rebuilt by reading the file at open.

Line format, tab-separated, a kind letter first: ``N clordid account body`` (new), ``C clordid
order_key``, ``R clordid order_key quantity``, ``E shard execid body`` (report; no ExecID: a pending
report, never deduplicated), ``J``/``B`` body (cancel/business reject), ``S account reportid
body`` (settlement), ``H body`` (reconciliation's heal), ``M body`` (mark), ``Q session seq``
(received). Bodies are compact JSON; an identifier holding a tab, a newline, a quote or a
backslash is written as a JSON string.

Durability: ``write`` survives a killed process (what the tests prove) but not a power cut;
``durable=True`` also ``fdatasync``s every commit (much slower). One engine owns a journal (the
file is locked while open). A journal written by the SQLite versions (``journal.sqlite``) is read
once into the new file at the first start, and kept beside it renamed.
"""

from __future__ import annotations

import itertools
import json
import logging
import sqlite3
from collections.abc import Iterator
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
from fixengine.orders.line_log import LineLog, field, unfield, write_new
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


class Journal(LineLog):
    """The order book's write-ahead log: a ``LineLog`` and the indexes kept in memory."""

    def __init__(self, path: Path, *, durable: bool = False, legacy: Path | None = None):
        """Open (or create) the journal at ``path``. ``legacy``: a journal of the SQLite versions,
        read into ``path`` once when ``path`` does not exist yet."""
        self._intents: set[str] = set()  # every intent's ClOrdID, committed or in this batch
        self._reports: set[str] = set()  # "shard;ExecID" of every report with an ExecID
        self._settlements: set[tuple[str, str]] = set()  # (account, 20105)
        self._received: dict[str, int] = {}
        path.parent.mkdir(parents=True, exist_ok=True)
        if legacy is not None and legacy.exists() and not path.exists():
            _migrate(legacy, path)
        super().__init__(path, _KINDS, 3, durable=durable,
                         older="the engine reads data_dir/journal.sqlite into data_dir/journal.log at its start")
        for kind, a, b, _ in self.open_lines():
            self._index(kind, a, b)

    def _index(self, kind: str, a: str, b: str) -> None:
        if kind in "NCR":
            self._intents.add(unfield(a))
        elif kind == "E" and b:
            self._reports.add(f"{a};{unfield(b)}")
        elif kind == "S":
            self._settlements.add((unfield(a), unfield(b)))
        elif kind == "Q":
            self._received[unfield(a)] = int(b)

    def _intent(self, kind: str, cl_ord_id: str, key: str, body: str) -> None:
        if cl_ord_id in self._intents:
            raise DuplicateClOrdIDError(cl_ord_id)
        self._intents.add(cl_ord_id)
        self.batch.append(f"{kind}\t{field(cl_ord_id)}\t{field(key)}\t{body}\n")

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
            self.batch.append(f"J\t\t\t{report_to_json(report)}\n")
            return True
        if isinstance(report, BusinessReject):
            self.batch.append(f"B\t\t\t{report_to_json(report)}\n")
            return True
        if isinstance(report, SettlementReport):
            key = (report.account, report.report_id)
            if key in self._settlements:
                return False
            self._settlements.add(key)
            self.batch.append(f"S\t{field(key[0])}\t{field(key[1])}\t{report_to_json(report)}\n")
            return True
        dedupe = report.dedupe_key
        if dedupe is None:
            self.batch.append(f"E\t\t\t{report_to_json(report)}\n")
            return True
        shard, exec_id = dedupe
        seen = f"{shard};{exec_id}"
        if seen in self._reports:
            return False
        self._reports.add(seen)
        self.batch.append(f"E\t{shard}\t{field(exec_id)}\t{report_to_json(report)}\n")
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
        self.batch.append(f"H\t\t\t{body}\n")

    def record_mark(self, mark: Marked) -> None:
        self.batch.append(f"M\t\t\t{json.dumps({'what': mark.what, 'account': mark.account, 'keys': list(mark.keys)})}\n")

    def mark(self, book: OrderBook, mark: Marked) -> list[Order]:
        """Change ``book``'s flags by ``mark`` and journal it (if it changed anything to replay)."""
        marked = mark.apply(book)
        if marked or mark.what == "confirmed":
            self.record_mark(mark)
        return marked

    def record_received(self, session: str, seq: int) -> None:
        """The last MsgSeqNum read from ``session`` is journaled (with the reports of its batch)."""
        self._received[session] = seq
        self.batch.append(f"Q\t{field(session)}\t{seq}\t\n")

    def received(self, session: str) -> int | None:
        """The MsgSeqNum of the last message journaled from ``session``, if any."""
        return self._received.get(session)

    def replay(self) -> Iterator[Entry]:
        """Every entry in the order it was written: those committed, then this batch's (as a
        database transaction reads its own writes)."""
        for kind, a, b, body in itertools.chain(self.committed(), self.pending()):
            if kind == "N":
                yield NewIntent(NewOrder.model_validate_json(body), unfield(b))
            elif kind == "C":
                yield CancelIntent(unfield(b), unfield(a))
            elif kind == "R":
                yield ReplaceIntent(unfield(b), unfield(a), Decimal(body) if body else None)
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
            lines.append(f"{letter}\t{field(cl_ord_id)}\t{field(order_key or '')}\t{value}\n")
        elif letter == "E":
            lines.append(f"E\t{'' if exec_id is None else shard}\t{'' if exec_id is None else field(exec_id)}\t{body}\n")
        elif letter == "S":
            lines.append(f"S\t{field(order_key)}\t{field(exec_id)}\t{body}\n")
        else:
            lines.append(f"{letter}\t\t\t{body}\n")
    lines += [f"Q\t{field(session)}\t{seq}\t\n" for session, seq in received]
    write_new(path, lines)
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
