"""The gateway's journal: what the OMSs asked, which engine order answers to which OMS ClOrdIDs, and
what the OMSs were told: an append-only file of lines (``fixengine.orders.line_log``),
``gateway/journal.log``, beside the engine's own journal.

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

Lines, tab-separated, a kind letter and five fields (empty where a kind has fewer):
``R client seq msg_type cl_ord_id raw`` (an OMS request), ``L order_key client engine_pending chain
request`` (a new order), ``U order_key engine_pending chain`` (what its OMS has been told now),
``I client cl_ord_id order_key`` (a ClOrdID the OMS used on an order), ``O id client msg_type
fields`` (a message for an OMS), ``F id`` (every message up to ``id`` is in its OMS session's
store), ``X client exec_id received`` (a client's ExecID counter and last MsgSeqNum journaled).
Chains and fields are compact JSON; a value that could break a line is a JSON string (``field``).

In memory, only what the running gateway looks up: the requests' (client, MsgType, ClOrdID), the
messages not yet forwarded and the counters. The orders and ClOrdIDs are read from the file when
asked for (``links``, ``cl_ord_ids``: once, at start); the gateway keeps its own copy.

Why not SQLite (as the versions before): a request and its report cost nine statements and two
commits of 40-80 µs each on the order's path; here each is a line, and a commit is one ``write``.
A journal of those versions (``gateway.db``) is read into the new file once, at the first start,
and kept beside it renamed. One process owns the file (``flock``).
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from fixengine.errors import FixEngineError
from fixengine.gateway.translate import OmsChain
from fixengine.orders.line_log import LineLog, field, unfield, write_new

log = logging.getLogger("fixengine.gateway")

_KINDS = frozenset("RLUIOFX")


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


class GatewayJournal(LineLog):
    """The gateway's journal: a ``LineLog`` and what the running gateway looks up in memory."""

    def __init__(self, path: Path, *, durable: bool = False, legacy: Path | None = None):
        """Open (or create) the journal at ``path``; ``durable``: ``fdatasync`` every commit.
        ``legacy``: a journal of the SQLite versions, read into ``path`` once when ``path`` does
        not exist yet."""
        self._requests: set[tuple[str, str, str]] = set()  # (client, MsgType, ClOrdID)
        self._outbox: dict[int, Outgoing] = {}  # not yet forwarded, by id
        self._last_id = 0  # the last message id given, forwarded or not
        self._counters: dict[str, tuple[int, int | None]] = {}  # client -> (ExecID counter, last received)
        self._changed: set[str] = set()  # clients whose counters this batch changed
        path.parent.mkdir(parents=True, exist_ok=True)
        if legacy is not None and legacy.exists() and not path.exists():
            _migrate(legacy, path)
        super().__init__(path, _KINDS, 5, durable=durable, what="gateway journal", owner="one gateway per data_dir",
                         older="the gateway reads gateway/gateway.db into gateway/journal.log at its start")
        for line in self.open_lines():
            self._index(line)
        self._changed.clear()  # the counters read are written already

    def _index(self, line: tuple[str, ...]) -> None:
        kind = line[0]
        if kind == "R":
            if line[4]:
                self._requests.add((unfield(line[1]), unfield(line[3]), unfield(line[4])))
        elif kind == "O":
            row = int(line[1])
            fields = [(int(tag), value) for tag, value in json.loads(line[5])]
            self._outbox[row] = Outgoing(row, unfield(line[2]), line[3], fields)
            self._last_id = max(self._last_id, row)
        elif kind == "F":
            self._forwarded(int(line[1]))
        elif kind == "X":
            self._count(unfield(line[1]), exec_id=int(line[2]) if line[2] else None,
                        received=int(line[3]) if line[3] else None)

    def commit(self) -> None:
        """Make everything recorded so far durable, the clients' counters with it."""
        for client in self._changed:
            exec_id, received = self._counters[client]
            self.batch.append(f"X\t{field(client)}\t{exec_id}\t{'' if received is None else received}\t\t\n")
        self._changed.clear()
        super().commit()

    def _count(self, client: str, *, exec_id: int | None = None, received: int | None = None) -> None:
        """Counters are written once per commit, not once per message."""
        old_exec_id, old_received = self._counters.get(client, (0, None))
        self._counters[client] = (max(old_exec_id, exec_id or 0), old_received if received is None else received)
        self._changed.add(client)

    # --- writes -----------------------------------------------------------------------------------

    def record_request(self, client: str, seq: int, msg_type: str, cl_ord_id: str | None, raw: str) -> None:
        if cl_ord_id is not None:
            self._requests.add((client, msg_type, cl_ord_id))
        self.batch.append(f"R\t{field(client)}\t{seq}\t{field(msg_type)}\t{field(cl_ord_id or '')}\t{field(raw)}\n")
        self._count(client, received=seq)

    def record_received(self, client: str, seq: int) -> None:
        """The OMS's messages up to ``seq`` are journaled (or were admin messages)."""
        self._count(client, received=seq)

    def record_link(self, link: Link) -> None:
        """A new order of an OMS client."""
        self.batch.append(f"L\t{field(link.order_key)}\t{field(link.client)}\t{field(link.engine_pending or '')}\t"
                         f"{_chain_json(link.chain)}\t{link.request}\n")

    def record_chain(self, order_key: str, chain: OmsChain, engine_pending: str | None) -> None:
        """What the OMS has been told of the order now, and the request in flight."""
        self.batch.append(f"U\t{field(order_key)}\t{field(engine_pending or '')}\t{_chain_json(chain)}\t\t\n")

    def record_cl_ord_id(self, client: str, cl_ord_id: str, order_key: str) -> None:
        self.batch.append(f"I\t{field(client)}\t{field(cl_ord_id)}\t{field(order_key)}\t\t\n")

    def record_outgoing(self, client: str, msg_type: str, fields: list[tuple[int, str]], exec_id: int) -> int:
        """A message for ``client``, to be marked forwarded once QuickFIX has stored it; ``exec_id``
        is the client's ExecID counter after it."""
        self._last_id = row = self._last_id + 1
        self._outbox[row] = Outgoing(row, client, msg_type, fields)
        self.batch.append(f"O\t{row}\t{field(client)}\t{field(msg_type)}\t\t{json.dumps(fields, separators=(',', ':'))}\n")
        self._count(client, exec_id=exec_id)
        return row

    def mark_forwarded(self, up_to: int) -> None:
        """Every outgoing message up to row ``up_to`` is in its OMS session's store."""
        self._forwarded(up_to)
        self.batch.append(f"F\t{up_to}\t\t\t\t\n")

    def _forwarded(self, up_to: int) -> None:
        for row in [r for r in self._outbox if r <= up_to]:
            del self._outbox[row]

    # --- reads ------------------------------------------------------------------------------------

    def _lines(self) -> Iterator[tuple[str, ...]]:
        """Every line, committed or in this batch (as a database transaction reads its own writes)."""
        yield from self.committed()
        yield from self.pending()

    def links(self) -> list[Link]:
        """Every order, in the order they were recorded, as last told (read from the file)."""
        found: dict[str, Link] = {}
        for line in self._lines():
            if line[0] == "L":
                key = unfield(line[1])
                found[key] = Link(key, unfield(line[2]), _chain(line[4]), unfield(line[3]) or None, line[5])
            elif line[0] == "U":
                key = unfield(line[1])
                old = found.get(key)
                if old is not None:
                    found[key] = Link(key, old.client, _chain(line[3]), unfield(line[2]) or None, old.request)
        return list(found.values())

    def cl_ord_ids(self) -> list[tuple[str, str, str]]:
        """(client, OMS ClOrdID, order key), in the order they were recorded (read from the file)."""
        found: dict[tuple[str, str], str] = {}
        for line in self._lines():
            if line[0] == "I":
                found.setdefault((unfield(line[1]), unfield(line[2])), unfield(line[3]))
        return [(client, cl_ord_id, key) for (client, cl_ord_id), key in found.items()]

    def unforwarded(self) -> list[Outgoing]:
        return [self._outbox[row] for row in sorted(self._outbox)]

    def exec_id_counter(self, client: str) -> int:
        return self._counters.get(client, (0, None))[0]

    def received(self, client: str) -> int | None:
        return self._counters.get(client, (0, None))[1]

    def has_request(self, client: str, msg_type: str, cl_ord_id: str) -> bool:
        return (client, msg_type, cl_ord_id) in self._requests


def _migrate(legacy: Path, path: Path) -> None:
    """Read a gateway journal of the SQLite versions into a new file at ``path``, and keep the old
    file beside it renamed (``.migrated``)."""
    try:
        db = sqlite3.connect(f"file:{legacy}?mode=rw", uri=True, isolation_level=None)
        requests = db.execute("SELECT client, seq, msg_type, cl_ord_id, raw FROM requests ORDER BY id").fetchall()
        links = db.execute("SELECT order_key, client, chain, engine_pending, request FROM links ORDER BY rowid").fetchall()
        cl_ord_ids = db.execute("SELECT client, cl_ord_id, order_key FROM cl_ord_ids ORDER BY rowid").fetchall()
        outbox = db.execute("SELECT id, client, msg_type, fields FROM outbox ORDER BY id").fetchall()
        counters = db.execute("SELECT client, exec_id, received FROM counters").fetchall()
        db.close()  # the last connection's close checkpoints its WAL into the file
    except sqlite3.Error as exc:
        raise FixEngineError(f"gateway journal {legacy} (SQLite, an older version's) cannot be read: {exc}") from None
    lines = [f"R\t{field(c)}\t{seq}\t{field(t)}\t{field(i or '')}\t{field(raw)}\n" for c, seq, t, i, raw in requests]
    lines += [f"L\t{field(k)}\t{field(c)}\t{field(p or '')}\t{chain}\t{request}\n" for k, c, chain, p, request in links]
    lines += [f"I\t{field(c)}\t{field(i)}\t{field(k)}\t\t\n" for c, i, k in cl_ord_ids]
    lines += [f"O\t{row}\t{field(c)}\t{field(t)}\t\t{f}\n" for row, c, t, f in outbox]
    lines += [f"X\t{field(c)}\t{e}\t{'' if r is None else r}\t\t\n" for c, e, r in counters]
    write_new(path, lines)
    legacy.rename(legacy.with_name(legacy.name + ".migrated"))
    log.warning("gateway journal %s (SQLite) read into %s: %d orders, %d messages not yet forwarded; the old file "
                "is kept as %s.migrated", legacy, path, len(links), len(outbox), legacy.name)
