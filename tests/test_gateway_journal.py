"""The gateway's journal, on its own: what it gives back after a reopen, what a kill before a commit
leaves, and a journal of the SQLite versions read into it once."""

from __future__ import annotations

import os
import sqlite3
from decimal import Decimal as D
from pathlib import Path

import pytest

from fixengine.errors import FixEngineError
from fixengine.gateway.journal import GatewayJournal, Link
from fixengine.gateway.translate import OmsChain

NOS = "8=FIX.4.4\x019=10\x0135=D\x0111=c1\x0110=000\x01"


def _filled(journal: GatewayJournal) -> None:
    journal.record_request("desk", 7, "D", "c1", NOS)
    journal.record_cl_ord_id("desk", "c1", "K1")
    journal.record_link(Link("K1", "desk", OmsChain("c1", order_qty=D(5)), None, '{"ticker":"T"}'))
    journal.record_request("desk", 8, "G", "c1\tb", NOS)  # an OMS's ClOrdID may hold anything
    journal.record_cl_ord_id("desk", "c1\tb", "K1")
    journal.record_chain("K1", OmsChain("c1", pending="c1\tb", pending_type="G", acknowledged=True,
                                        traded=D("1.5"), cum_qty=D(3), order_qty=D(5)), "E2")
    journal.record_cl_ord_id("desk", "c1", "K9")  # a ClOrdID maps to the order it first named
    first = journal.record_outgoing("desk", "8", [(11, "c1"), (17, "E1"), (150, "0")], exec_id=1)
    journal.record_outgoing("desk", "8", [(11, "c1"), (17, "E2"), (150, "F")], exec_id=2)
    journal.mark_forwarded(first)
    journal.record_received("other", 3)


def test_what_is_committed_is_there_after_a_reopen(tmp_path: Path) -> None:
    journal = GatewayJournal(tmp_path / "journal.log")
    _filled(journal)
    journal.commit()
    journal.close()

    again = GatewayJournal(tmp_path / "journal.log")
    [link] = again.links()
    assert (link.order_key, link.client, link.engine_pending, link.request) == ("K1", "desk", "E2", '{"ticker":"T"}')
    assert link.chain == OmsChain("c1", "c1\tb", "G", True, False, D("1.5"), D(3), D(5))  # as last told
    assert again.cl_ord_ids() == [("desk", "c1", "K1"), ("desk", "c1\tb", "K1")]
    assert [(o.id, o.fields) for o in again.unforwarded()] == [(2, [(11, "c1"), (17, "E2"), (150, "F")])]
    assert again.exec_id_counter("desk") == 2 and again.received("desk") == 8
    assert again.exec_id_counter("other") == 0 and again.received("other") == 3
    assert again.has_request("desk", "G", "c1\tb") and not again.has_request("desk", "F", "c1")
    again.close()


def test_reads_see_the_open_batch_and_a_kill_before_the_commit_loses_it_whole(tmp_path: Path) -> None:
    journal = GatewayJournal(tmp_path / "journal.log")
    journal.record_request("desk", 1, "D", "c0", NOS)
    journal.commit()
    _filled(journal)
    assert [link.order_key for link in journal.links()] == ["K1"]  # as a transaction reads its own writes
    assert journal.has_request("desk", "D", "c1") and journal.received("desk") == 8
    os.close(journal._fd)  # killed here: the batch was never written

    again = GatewayJournal(tmp_path / "journal.log")
    assert again.links() == [] and again.unforwarded() == [] and again.cl_ord_ids() == []
    assert again.has_request("desk", "D", "c0") and not again.has_request("desk", "D", "c1")
    assert again.received("desk") == 1
    again.close()


def test_message_ids_go_on_rising_across_restarts(tmp_path: Path) -> None:
    """``mark_forwarded(up_to)`` covers every id up to it: an id given again after a restart
    would be taken as forwarded already, and its report never resent."""
    journal = GatewayJournal(tmp_path / "journal.log")
    row = journal.record_outgoing("desk", "8", [(17, "E1")], exec_id=1)
    journal.mark_forwarded(row)
    journal.close()
    again = GatewayJournal(tmp_path / "journal.log")
    later = again.record_outgoing("desk", "8", [(17, "E2")], exec_id=2)
    assert later > row
    again.close()
    third = GatewayJournal(tmp_path / "journal.log")
    assert [o.fields for o in third.unforwarded()] == [[(17, "E2")]]
    third.close()


def test_one_gateway_owns_the_journal(tmp_path: Path) -> None:
    journal = GatewayJournal(tmp_path / "journal.log")
    with pytest.raises(FixEngineError, match="in use by another process \\(one gateway per data_dir\\)"):
        GatewayJournal(tmp_path / "journal.log")
    journal.close()


# The schema the SQLite versions wrote (gateway/gateway.db).
_OLD_SCHEMA = """
CREATE TABLE requests (id INTEGER PRIMARY KEY, client TEXT NOT NULL, seq INTEGER NOT NULL,
    msg_type TEXT NOT NULL, cl_ord_id TEXT, raw TEXT NOT NULL);
CREATE TABLE links (order_key TEXT PRIMARY KEY, client TEXT NOT NULL, chain TEXT NOT NULL,
    engine_pending TEXT, request TEXT NOT NULL);
CREATE TABLE cl_ord_ids (client TEXT NOT NULL, cl_ord_id TEXT NOT NULL, order_key TEXT NOT NULL,
    PRIMARY KEY (client, cl_ord_id));
CREATE TABLE outbox (id INTEGER PRIMARY KEY, client TEXT NOT NULL, msg_type TEXT NOT NULL, fields TEXT NOT NULL);
CREATE TABLE counters (client TEXT PRIMARY KEY, exec_id INTEGER NOT NULL DEFAULT 0, received INTEGER);
"""


def test_a_journal_of_the_sqlite_versions_is_read_in_once(tmp_path: Path) -> None:
    legacy = tmp_path / "gateway.db"
    db = sqlite3.connect(legacy)
    db.executescript(_OLD_SCHEMA)
    db.execute("INSERT INTO requests (client, seq, msg_type, cl_ord_id, raw) VALUES ('desk', 4, 'D', 'c1', ?)", (NOS,))
    db.execute("INSERT INTO links VALUES ('K1', 'desk', ?, 'E2', '{}')",
               ('["c1","c2","F",true,false,"0","0","5"]',))
    db.execute("INSERT INTO cl_ord_ids VALUES ('desk', 'c1', 'K1')")
    db.execute("INSERT INTO outbox (id, client, msg_type, fields) VALUES (12, 'desk', '8', '[[17,\"E3\"]]')")
    db.execute("INSERT INTO counters VALUES ('desk', 3, 4)")
    db.commit()
    db.close()

    journal = GatewayJournal(tmp_path / "journal.log", legacy=legacy)
    [link] = journal.links()
    assert (link.order_key, link.chain.pending, link.chain.order_qty, link.engine_pending) == ("K1", "c2", D(5), "E2")
    assert journal.cl_ord_ids() == [("desk", "c1", "K1")]
    assert [(o.id, o.fields) for o in journal.unforwarded()] == [(12, [(17, "E3")])]
    assert journal.exec_id_counter("desk") == 3 and journal.received("desk") == 4
    assert journal.has_request("desk", "D", "c1")
    assert journal.record_outgoing("desk", "8", [(17, "E4")], exec_id=4) == 13
    journal.close()
    assert not legacy.exists() and (tmp_path / "gateway.db.migrated").exists()

    again = GatewayJournal(tmp_path / "journal.log", legacy=legacy)  # read once: nothing to read again
    assert [o.id for o in again.unforwarded()] == [12, 13]
    again.close()
