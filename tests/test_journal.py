"""The journal: what is written is what a restart reads back, and a killed writer loses nothing
it committed and leaves nothing half-written."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from decimal import Decimal as D

import pytest

from fixengine.orders.book import OrderBook, Status
from fixengine.errors import JournalCorruptError
from fixengine.orders.journal import DuplicateClOrdIDError, Journal, NewIntent, rebuild_book
from fixengine.orders.reports import CancelReject, CxlRejResponseTo, ExecType, OrdStatus, Reason
from tests.helpers.orders import book_order
from tests.helpers.reports import FakeExchange


def test_restart_rebuilds_the_exact_book(tmp_path) -> None:
    journal, book, x = Journal(tmp_path / "j.db"), OrderBook(), FakeExchange("c1", D(10))

    def intent_new(request):
        journal.record_new(request)
        book.submit(request)

    def report(r):
        if journal.record_report(r):
            book.apply(r)

    intent_new(book_order("c1"))
    report(x.new())
    report(x.trade(D("2.5")))
    journal.record_replace("c1", "r1", D(8))
    book.replace("c1", "r1", D(8))
    report(x.replaced("r1", D(8), D("0.47")))
    journal.record_cancel("c1", "k1")
    book.cancel("c1", "k1")
    reject = CancelReject("k1", "r1", "O-1", OrdStatus.PARTIALLY_FILLED, CxlRejResponseTo.CANCEL, Reason.of("ORDER_AMEND_IN_PROGRESS", 2))
    report(reject)
    intent_new(book_order("c2", qty="1"))
    journal.close()

    again = Journal(tmp_path / "j.db")
    rebuilt = rebuild_book(again)
    book.mark_unconfirmed()
    assert rebuilt.orders == book.orders
    assert rebuilt.positions == book.positions == {("", "HIGHNY-23DEC31"): D("2.5")}
    assert rebuilt.order("c1").status is Status.PARTIALLY_FILLED
    assert rebuilt.order("c2").status is Status.PENDING_NEW  # journaled, never confirmed: not re-sent
    assert rebuilt.order("c2").outcome_unknown and not rebuilt.order("c1").outcome_unknown


def test_clordids_stay_unique_across_restarts(tmp_path) -> None:
    journal = Journal(tmp_path / "j.db")
    journal.record_new(book_order("c1"))
    journal.close()
    again = Journal(tmp_path / "j.db")
    with pytest.raises(DuplicateClOrdIDError):
        again.record_new(book_order("c1"))
    with pytest.raises(DuplicateClOrdIDError):
        again.record_cancel("c1", "c1")
    assert again.has_intent("c1") and not again.has_intent("c9")


def test_a_report_is_journaled_once_per_shard_and_execid(tmp_path) -> None:
    journal, x = Journal(tmp_path / "j.db"), FakeExchange("c1", D(10))
    trade = x.trade(D(1))
    assert journal.record_report(trade) is True
    assert journal.record_report(trade) is False
    pending = x.report(ExecType.PENDING_NEW, OrdStatus.PENDING_NEW, exec_id="-1;-1")
    assert journal.record_report(pending) and journal.record_report(pending)  # pending: never deduplicated


WRITER = textwrap.dedent(
    """
    import sys
    from decimal import Decimal as D
    from pathlib import Path
    from fixengine.orders.journal import Journal
    from tests.helpers.orders import book_order
    from tests.helpers.reports import FakeExchange
    journal = Journal(Path(sys.argv[1]))
    for i in range(100000):
        cl = f"c{i}"
        journal.record_new(book_order(cl, qty="2"))
        x = FakeExchange(cl, D(2), order_id=f"O-{cl}")
        x.clock = i * 10
        journal.record_report(x.new())
        journal.record_report(x.trade(D(2)))
        journal.commit()
        print(i, flush=True)
    """
)


@pytest.mark.parametrize("after", [1, 37, 250])
def test_a_killed_writer_leaves_a_consistent_journal(tmp_path, after) -> None:
    path = tmp_path / "j.db"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True,
                            cwd=os.getcwd(), env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert proc.stdout is not None
    for line in proc.stdout:
        if int(line) >= after:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    journal = Journal(path)
    entries = list(journal.replay())
    news = [e for e in entries if isinstance(e, NewIntent)]
    assert len(news) > after  # everything acknowledged before the kill is there
    book = rebuild_book(journal)
    for o in book.orders.values():  # every report found its order; every order is whole
        assert o.status in (Status.PENDING_NEW, Status.NEW, Status.FILLED)
    filled = [o for o in book.orders.values() if o.status is Status.FILLED]
    assert len(filled) >= after
    assert book.position("", "HIGHNY-23DEC31") == D(2) * len(filled)


def test_one_process_owns_a_journal(tmp_path) -> None:
    journal = Journal(tmp_path / "j.db")
    journal.record_new(book_order("c1"))
    journal.commit()
    proc = subprocess.run(
        [sys.executable, "-c", "import sys; from pathlib import Path; from fixengine.orders.journal import Journal; "
         "Journal(Path(sys.argv[1]))", str(tmp_path / "j.db")],
        capture_output=True, text=True, cwd=os.getcwd(), env={**os.environ, "PYTHONPATH": os.getcwd()}, timeout=60,
    )
    assert proc.returncode != 0
    assert "is in use by another process (one engine per data_dir)" in proc.stderr
    journal.close()
    again = Journal(tmp_path / "j.db")  # free once its owner closed it
    assert again.has_intent("c1")


def test_nothing_is_durable_until_commit(tmp_path) -> None:
    journal = Journal(tmp_path / "j.db")
    journal.record_new(book_order("c1"))
    journal.commit()
    journal.record_new(book_order("c2"))  # written, not committed: the process dies here
    os.close(journal._fd)  # the file as a kill leaves it (and its lock released)
    again = Journal(tmp_path / "j.db")
    assert again.has_intent("c1") and not again.has_intent("c2")


def test_a_batch_a_kill_cut_short_is_dropped_whole_at_the_next_open(tmp_path, caplog) -> None:
    journal = Journal(tmp_path / "j.db")
    journal.record_new(book_order("c1"))
    journal.commit()
    journal.close()
    committed = (tmp_path / "j.db").read_bytes()
    # A batch whose commit line never made it: one whole line, one cut mid-line.
    with open(tmp_path / "j.db", "ab") as f:
        f.write(b'N\tc2\t\t{"ticker": "X"}\nN\tc3\t\t{"tick')
    again = Journal(tmp_path / "j.db")
    assert again.has_intent("c1") and not again.has_intent("c2") and not again.has_intent("c3")
    assert (tmp_path / "j.db").read_bytes() == committed  # cut off, so what follows is not appended to it
    assert "after the last commit" in caplog.text
    again.record_new(book_order("c2"))  # the ClOrdID is free: it never reached the journal
    again.close()
    assert [e.order.client_order_id for e in Journal(tmp_path / "j.db").replay()] == ["c1", "c2"]


def test_a_damaged_journal_is_refused_naming_the_line(tmp_path) -> None:
    journal = Journal(tmp_path / "j.db")
    journal.record_new(book_order("c1"))
    journal.close()
    text = (tmp_path / "j.db").read_text()
    (tmp_path / "j.db").write_text("garbage line\n" + text)
    with pytest.raises(JournalCorruptError, match="line 1: not a journal entry: 'garbage line'"):
        Journal(tmp_path / "j.db")
    (tmp_path / "j.db").write_bytes(text.encode() + b"N\t\xff\xfe\n;\n")  # not even text
    with pytest.raises(JournalCorruptError, match="line 3: not a journal entry"):
        Journal(tmp_path / "j.db")


def test_identifiers_with_tabs_newlines_and_quotes_come_back_whole(tmp_path) -> None:
    odd = 'k\t1\n"\\'  # ClOrdIDs cannot hold these; accounts, order keys, ExecIDs and session names can
    journal = Journal(tmp_path / "j.db")
    journal.record_new(book_order("c1"), odd)
    journal.record_cancel(odd, "c2")
    journal.record_received(odd, 7)
    journal.close()
    again = Journal(tmp_path / "j.db")
    new, cancel = list(again.replay())
    assert (new.order.client_order_id, new.account) == ("c1", odd)
    assert (cancel.order_key, cancel.cl_ord_id) == (odd, "c2")
    assert again.has_intent("c2") and again.received(odd) == 7


def test_a_journal_of_the_sqlite_versions_is_read_into_the_new_file_once(tmp_path) -> None:
    import sqlite3

    legacy = tmp_path / "journal.sqlite"
    db = sqlite3.connect(legacy, isolation_level=None)
    db.executescript(
        "CREATE TABLE entries (seq INTEGER PRIMARY KEY, kind TEXT NOT NULL, cl_ord_id TEXT, order_key TEXT,"
        " shard INTEGER, exec_id TEXT, body TEXT NOT NULL);"
        "CREATE TABLE received (session TEXT PRIMARY KEY, seq INTEGER NOT NULL);"
    )
    x = FakeExchange("c1", D(10))
    from fixengine.orders.journal_codec import report_to_json

    new, trade = x.new(), x.trade(D(3))
    rows = [("new", "c1", "acct", None, None, book_order("c1").model_dump_json()),
            ("report", None, None, new.dedupe_key[0], new.dedupe_key[1], report_to_json(new)),
            ("report", None, None, trade.dedupe_key[0], trade.dedupe_key[1], report_to_json(trade)),
            ("replace", "r1", "c1", None, None, '"8"')]
    db.executemany("INSERT INTO entries (kind, cl_ord_id, order_key, shard, exec_id, body) VALUES (?, ?, ?, ?, ?, ?)", rows)
    db.execute("INSERT INTO received VALUES ('nr', 42)")
    db.close()

    journal = Journal(tmp_path / "journal.log", legacy=legacy)
    assert not legacy.exists() and (tmp_path / "journal.sqlite.migrated").exists()
    assert journal.received("nr") == 42 and journal.has_intent("r1") and not journal.has_intent("k1")
    assert journal.record_report(trade) is False  # its ExecID came along
    book = rebuild_book(journal)
    order = book.orders["c1"]
    assert (order.account, order.cum_qty, order.pending) == ("acct", D(3), "r1")
    journal.close()
    again = Journal(tmp_path / "journal.log", legacy=legacy)  # once: the new file is the journal now
    assert again.received("nr") == 42


@pytest.mark.parametrize(("durable", "syncs"), [(False, 0), (True, 2)])
def test_the_journal_syncs_every_commit_only_when_asked(tmp_path, monkeypatch, durable, syncs) -> None:
    """A write survives a killed process; a sync per commit (journal_sync = "full") also a host crash."""
    synced = []
    real = os.fdatasync
    monkeypatch.setattr(os, "fdatasync", lambda fd: (synced.append(fd), real(fd)))
    journal = Journal(tmp_path / "j.db", durable=durable)
    for cl in ("c1", "c2"):
        journal.record_new(book_order(cl))
        journal.commit()
    journal.commit()  # nothing new: nothing to write or sync
    assert len(synced) == syncs
    journal.close()


def test_a_commit_that_cannot_be_written_leaves_nothing_half_written_and_is_written_whole_later(tmp_path, monkeypatch) -> None:
    journal = Journal(tmp_path / "j.db")
    journal.record_new(book_order("c1"))
    journal.commit()
    real_write = os.write
    calls = []

    def disk_full_after_a_few_bytes(fd, data):
        calls.append(len(data))
        if len(calls) == 1:
            real_write(fd, bytes(data[:10]))  # a short write, then the disk is full
            return 10
        raise OSError(28, "No space left on device")

    journal.record_new(book_order("c2"))
    monkeypatch.setattr(os, "write", disk_full_after_a_few_bytes)
    with pytest.raises(OSError, match="No space left"):
        journal.commit()
    monkeypatch.setattr(os, "write", real_write)
    journal.record_new(book_order("c3"))
    journal.commit()  # c2's batch, kept, goes out whole with c3
    journal.close()
    again = Journal(tmp_path / "j.db")
    assert [e.order.client_order_id for e in again.replay()] == ["c1", "c2", "c3"]
