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
    journal._db.close()  # closing the connection without committing is what a kill leaves
    again = Journal(tmp_path / "j.db")
    assert again.has_intent("c1") and not again.has_intent("c2")


@pytest.mark.parametrize(("durable", "level"), [(False, 1), (True, 2)])
def test_the_journal_syncs_every_commit_only_when_asked(tmp_path, durable, level) -> None:
    """synchronous=NORMAL (1) survives a killed process; FULL (2) also a host crash."""
    journal = Journal(tmp_path / "j.db", durable=durable)
    assert journal._db.execute("PRAGMA synchronous").fetchone() == (level,)
    journal.close()
