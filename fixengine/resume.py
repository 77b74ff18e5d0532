"""Resuming where the last run stopped: what QuickFIX counted and stored, held against the journal.

QuickFIX counts a message as received when its callback returns; the loop journals it a moment
later. QuickFIX stores a request before it writes it to the socket. A kill can fall between
either pair, so at start the engine asks again for what it never journaled and settles what never
left, and at a clean stop it records how far it read.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from pathlib import Path

import quickfix as fix

from fixengine.config import SessionConfig
from fixengine.fix.store import sent_cl_ord_ids
from fixengine.kalshi.facts import RESET_REQUIRED
from fixengine.orders.entry import OrderEntry
from fixengine.orders.journal import Journal

log = logging.getLogger("fixengine.engine")

Lookup = Callable[[str], fix.Session | None]  # a session's QuickFIX Session by name


def _keeps_sequence(s: SessionConfig) -> bool:
    """Sessions that retransmit and keep their sequence across logons (others start from 1)."""
    return s.session_type not in RESET_REQUIRED and not s.logon.reset_seq_num


def ask_again_for_unjournaled(sessions: Iterable[SessionConfig], lookup: Lookup, journal: Journal) -> None:
    """A process killed between QuickFIX's count and the journal's commit would restart past
    messages it never journaled, so where the counterparty retransmits, the session expects the
    message after the last one journaled: the rest is asked for again (duplicates are recognised
    by ExecID)."""
    for s in sessions:
        if not _keeps_sequence(s):
            continue  # every logon starts from 1: nothing to ask for
        last = journal.received(s.name)
        session = lookup(s.name)
        if session is None:
            continue
        expected = session.getExpectedTargetNum()
        if last is None:
            # The first start on this journal: what QuickFIX counted so far is the baseline, so
            # that a kill before the first batch is journaled still asks for that batch again.
            journal.record_received(s.name, expected - 1)
        elif expected > last + 1:
            log.warning("%s: messages %d-%d were received but not journaled before the last stop; "
                        "asking for them again", s.name, last + 1, expected - 1)
            session.setNextTargetMsgSeqNum(last + 1)
    journal.commit()


def settle_unsent(sessions: Iterable[SessionConfig], store_path: Path, orders: OrderEntry) -> None:
    """Where QuickFIX keeps what it sends, a request journaled but not in its store never went out:
    settled as refused at once, instead of waiting for an answer that cannot come."""
    for s in sessions:
        if not _keeps_sequence(s) or not orders.is_order_entry(s.name):
            continue
        sent = sent_cl_ord_ids(store_path / s.name)
        if sent is not None:
            orders.settle_unsent(s.name, sent)


def record_all_received(sessions: Iterable[SessionConfig], lookup: Lookup, journal: Journal) -> None:
    """At a clean stop every message QuickFIX counted is journaled or was an admin message: the
    journal records its count, and the next start asks for nothing again."""
    for s in sessions:
        session = lookup(s.name)
        if session is not None:
            journal.record_received(s.name, session.getExpectedTargetNum() - 1)
