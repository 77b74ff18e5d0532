"""The gateway's journal: what the OMSs asked, which engine order answers to which OMS ClOrdIDs, and
what the OMSs were told, in SQLite (WAL), beside the engine's own journal.

The order of writes is what makes a kill lose nothing:

- An OMS request, and the ClOrdID map it makes, are committed before the engine's journal commit
  that precedes its send to Kalshi (``record_request`` ... ``commit``, then the engine's flush).
- The reports for an OMS are committed with the ExecIDs they carry before QuickFIX stores and
  sends them (``record_outgoing`` ... ``commit``, then ``send``), and marked forwarded after. A
  restart sends again, flagged PossResend (97=Y), what was committed but not marked: the OMS may
  see a flagged copy of a report, never the same ExecID unflagged, and never a lost one.
- What each order's OMS was told (its ``OmsChain``) is committed with those reports; a restart
  compares it with the engine's book and tells the OMS what happened in between
  (``fixengine.gateway.translate.catch_up``).
- The last OMS MsgSeqNum journaled per client: QuickFIX counts a message as received before the
  loop journals it, so a restart asks the OMS again for what came after.

One process owns it (exclusive lock), as the engine's journal.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from fixengine.gateway.translate import OmsChain
from fixengine.orders.journal import open_journal_db

SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    id INTEGER PRIMARY KEY,
    client TEXT NOT NULL,
    seq INTEGER NOT NULL,          -- the OMS's MsgSeqNum (34)
    msg_type TEXT NOT NULL,
    cl_ord_id TEXT,                -- the OMS's ClOrdID (11)
    raw TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS requests_by_clordid ON requests (client, cl_ord_id);
CREATE TABLE IF NOT EXISTS links (
    order_key TEXT PRIMARY KEY,    -- the engine's key of the order (the ClOrdID sent to Kalshi)
    client TEXT NOT NULL,
    chain TEXT NOT NULL,           -- what the OMS was told (OmsChain, JSON)
    engine_pending TEXT,           -- the engine's ClOrdID of the cancel/replace in flight
    request TEXT NOT NULL          -- the OMS's NewOrderSingle as translated (for an order the engine never got)
);
CREATE TABLE IF NOT EXISTS cl_ord_ids (
    client TEXT NOT NULL,
    cl_ord_id TEXT NOT NULL,       -- every ClOrdID the OMS used on an order
    order_key TEXT NOT NULL,
    PRIMARY KEY (client, cl_ord_id)
);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY,
    client TEXT NOT NULL,
    msg_type TEXT NOT NULL,
    fields TEXT NOT NULL           -- JSON [[tag, value], ...]
);
CREATE TABLE IF NOT EXISTS counters (
    client TEXT PRIMARY KEY,
    exec_id INTEGER NOT NULL DEFAULT 0,   -- the last ExecID number given to this client
    received INTEGER                      -- the last OMS MsgSeqNum journaled
);
"""


@dataclass(frozen=True, slots=True)
class Link:
    """One order of one OMS client, as journaled."""

    order_key: str
    client: str
    chain: OmsChain
    engine_pending: str | None
    request: str  # the NewOrderSingle's fields, JSON


@dataclass(frozen=True, slots=True)
class Outgoing:
    id: int
    client: str
    msg_type: str
    fields: list[tuple[int, str]]


def _decimal(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _chain_json(chain: OmsChain) -> str:
    """An OmsChain as a compact JSON list (written at every change of an order: kept cheap)."""
    return json.dumps([chain.cl_ord_id, chain.pending, chain.pending_type, chain.acknowledged, chain.done,
                       str(chain.traded), str(chain.cum_qty), _decimal(chain.order_qty)], separators=(",", ":"))


def _chain(text: str) -> OmsChain:
    cl_ord_id, pending, pending_type, acknowledged, done, traded, cum_qty, order_qty = json.loads(text)
    return OmsChain(cl_ord_id, pending, pending_type, acknowledged, done, Decimal(traded), Decimal(cum_qty),
                    None if order_qty is None else Decimal(order_qty))


class GatewayJournal:
    def __init__(self, path: Path):
        self.path = path
        self._db = open_journal_db(path, SCHEMA, what="gateway journal")
        self.closed = False
        self._counters: dict[str, tuple[int | None, int | None]] = {}  # client -> (ExecID counter, last received), to write
        self.on_commit: Callable[[float], None] | None = None  # told each commit's seconds (metrics)

    def close(self) -> None:
        if not self.closed:
            self.commit()
            self._db.close()
            self.closed = True

    def commit(self) -> None:
        """Make everything recorded so far durable, the clients' counters with it."""
        if self._counters:
            for client, (exec_id, received) in self._counters.items():
                self._write("INSERT INTO counters (client, exec_id, received) VALUES (?, COALESCE(?, 0), ?) ON CONFLICT (client) "
                            "DO UPDATE SET exec_id = MAX(exec_id, COALESCE(excluded.exec_id, 0)), "
                            "received = COALESCE(excluded.received, received)", (client, exec_id, received))
            self._counters.clear()
        if self._db.in_transaction:
            started = time.perf_counter()
            self._db.execute("COMMIT")
            if self.on_commit is not None:
                self.on_commit(time.perf_counter() - started)

    def _write(self, sql: str, args: tuple[object, ...]) -> int:
        if not self._db.in_transaction:
            self._db.execute("BEGIN")
        return self._db.execute(sql, args).lastrowid or 0

    def _count(self, client: str, *, exec_id: int | None = None, received: int | None = None) -> None:
        """Counters are written once per commit, not once per message."""
        if not self._db.in_transaction:
            self._db.execute("BEGIN")
        old_exec_id, old_received = self._counters.get(client, (None, None))
        if exec_id is not None and (old_exec_id is None or exec_id > old_exec_id):
            old_exec_id = exec_id
        self._counters[client] = (old_exec_id, received if received is not None else old_received)

    # --- writes -----------------------------------------------------------------------------------

    def record_request(self, client: str, seq: int, msg_type: str, cl_ord_id: str | None, raw: str) -> None:
        self._write("INSERT INTO requests (client, seq, msg_type, cl_ord_id, raw) VALUES (?, ?, ?, ?, ?)",
                    (client, seq, msg_type, cl_ord_id, raw))
        self._count(client, received=seq)

    def record_received(self, client: str, seq: int) -> None:
        """The OMS's messages up to ``seq`` are journaled (or were admin messages)."""
        self._count(client, received=seq)

    def record_link(self, link: Link) -> None:
        """A new order of an OMS client."""
        self._write("INSERT INTO links (order_key, client, chain, engine_pending, request) VALUES (?, ?, ?, ?, ?)",
                    (link.order_key, link.client, _chain_json(link.chain), link.engine_pending, link.request))

    def record_chain(self, order_key: str, chain: OmsChain, engine_pending: str | None) -> None:
        """What the OMS has been told of the order now, and the request in flight."""
        self._write("UPDATE links SET chain = ?, engine_pending = ? WHERE order_key = ?",
                    (_chain_json(chain), engine_pending, order_key))

    def record_cl_ord_id(self, client: str, cl_ord_id: str, order_key: str) -> None:
        self._write("INSERT OR IGNORE INTO cl_ord_ids (client, cl_ord_id, order_key) VALUES (?, ?, ?)",
                    (client, cl_ord_id, order_key))

    def record_outgoing(self, client: str, msg_type: str, fields: list[tuple[int, str]], exec_id: int) -> int:
        """A message for ``client``, to be marked forwarded once QuickFIX has stored it; ``exec_id``
        is the client's ExecID counter after it."""
        row = self._write("INSERT INTO outbox (client, msg_type, fields) VALUES (?, ?, ?)",
                          (client, msg_type, json.dumps(fields, separators=(",", ":"))))
        self._count(client, exec_id=exec_id)
        return row

    def mark_forwarded(self, up_to: int) -> None:
        """Every outgoing message up to row ``up_to`` is in its OMS session's store."""
        self._write("DELETE FROM outbox WHERE id <= ?", (up_to,))

    # --- reads ------------------------------------------------------------------------------------

    def links(self) -> list[Link]:
        rows = self._db.execute("SELECT order_key, client, chain, engine_pending, request FROM links ORDER BY rowid")
        return [Link(key, client, _chain(chain), pending, request) for key, client, chain, pending, request in rows]

    def cl_ord_ids(self) -> list[tuple[str, str, str]]:
        """(client, OMS ClOrdID, order key), in the order they were recorded."""
        return list(self._db.execute("SELECT client, cl_ord_id, order_key FROM cl_ord_ids ORDER BY rowid"))

    def unforwarded(self) -> list[Outgoing]:
        rows = self._db.execute("SELECT id, client, msg_type, fields FROM outbox ORDER BY id")
        return [Outgoing(i, c, t, [(int(tag), v) for tag, v in json.loads(f)]) for i, c, t, f in rows]

    def exec_id_counter(self, client: str) -> int:
        row = self._db.execute("SELECT exec_id FROM counters WHERE client = ?", (client,)).fetchone()
        return int(row[0]) if row else 0

    def received(self, client: str) -> int | None:
        row = self._db.execute("SELECT received FROM counters WHERE client = ?", (client,)).fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def has_request(self, client: str, msg_type: str, cl_ord_id: str) -> bool:
        row = self._db.execute("SELECT 1 FROM requests WHERE client = ? AND msg_type = ? AND cl_ord_id = ? LIMIT 1",
                               (client, msg_type, cl_ord_id)).fetchone()
        return row is not None
