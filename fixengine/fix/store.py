"""Reading a QuickFIX FileStore from outside QuickFIX (the engine is stopped or starting): which
requests did leave. The index (.header) is "seq,offset,size " entries, .seqnums "sender : target"."""

from __future__ import annotations

import re
from pathlib import Path

_CL_ORD_ID = re.compile(rb"\x0111=([^\x01]*)\x01")
_INDEX_ENTRY = re.compile(rb"(\d+),(\d+),(\d+) ")
_SEQNUMS = re.compile(r"(\d+)\s*:\s*(\d+)")


def next_sequence_numbers(store_dir: Path) -> tuple[int, int] | None:
    """The next sender and target MsgSeqNum of the (one) session stored in ``store_dir``, or None."""
    seqnums = sorted(store_dir.glob("*.seqnums"))
    numbers = _SEQNUMS.search(seqnums[0].read_text()) if seqnums else None
    return None if numbers is None else (int(numbers.group(1)), int(numbers.group(2)))


def sent_cl_ord_ids(store_dir: Path) -> set[str] | None:
    """The ClOrdIDs (11) of the requests a session's QuickFIX FileStore holds as sent, or None
    without a store. QuickFIX stores a message (body, then its index entry), then counts it in the
    next sender MsgSeqNum, then writes it to the socket; a stored and counted message reaches the
    counterparty, at the latest by resend. One stored but not counted (the process died in
    between) never left, and its number goes to the next message: only the index's latest entry
    for each number below the next sender MsgSeqNum counts."""
    headers, numbers = sorted(store_dir.glob("*.header")), next_sequence_numbers(store_dir)
    if not headers or numbers is None:
        return None
    next_sender = numbers[0]
    latest: dict[int, tuple[int, int]] = {}
    for seq, offset, size in _INDEX_ENTRY.findall(headers[0].read_bytes()):
        latest[int(seq)] = (int(offset), int(size))
    body = headers[0].with_suffix(".body").read_bytes()
    sent: set[str] = set()
    for seq, (offset, size) in latest.items():
        if seq < next_sender:
            sent.update(m.decode("latin-1") for m in _CL_ORD_ID.findall(body, offset, offset + size))
    return sent
