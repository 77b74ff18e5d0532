"""What the service says of itself: each session's state in a fixed vocabulary, worst-of
aggregation, readiness with its reasons, and the status document behind ``/status``, the status
page and ``fixengine status``. Pure: fed the engine's and the gateway's health and the time.

States, best to worst (the service is as healthy as its worst session, never "last writer wins"):

    connected     logged on, book confirmed
    held          logged on, new orders held until its book is confirmed (messages were lost)
    maintenance   Kalshi's weekly trading pause (Thursdays 03:00-05:00 New York time): cancels only;
                  also a session that the engine says waits for the window's end (not an outage)
    disconnected  not logged on (connecting, or waiting to reconnect)
    stopped       refused for good, disabled by an operator, or the service is stopping
"""

from __future__ import annotations

import collections
import enum
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any

from fixengine.engine import SessionHealth
from fixengine.gateway.service import ClientHealth, Reject
from fixengine.kalshi.maintenance import KALSHI_MAINTENANCE
from fixengine.orders.book import Order, OrderBook
from fixengine.reconcile.compare import Findings

RECENT_FINDINGS = 20


class State(str, enum.Enum):
    CONNECTED = "connected"
    HELD = "held"
    MAINTENANCE = "maintenance"
    DISCONNECTED = "disconnected"
    STOPPED = "stopped"


_SEVERITY = {state: i for i, state in enumerate(State)}  # declaration order: best to worst


def worst(states: Iterable[State]) -> State:
    """The worst of ``states`` (connected when there are none)."""
    return max(states, key=_SEVERITY.__getitem__, default=State.CONNECTED)


def in_maintenance(now: datetime) -> bool:
    """Whether ``now`` (aware) falls in Kalshi's weekly maintenance window."""
    return KALSHI_MAINTENANCE.window_at(now) is not None


def session_state(h: SessionHealth, *, maintenance: bool, stopping: bool) -> State:
    if stopping or h.phase in ("stopped", "disabled"):
        return State.STOPPED
    if maintenance or h.maintenance:
        return State.MAINTENANCE
    if h.phase != "logged_on":
        return State.DISCONNECTED
    return State.HELD if h.book_held else State.CONNECTED


def client_state(c: ClientHealth, *, stopping: bool) -> State:
    if stopping:
        return State.STOPPED
    return State.CONNECTED if c.logged_on else State.DISCONNECTED


@dataclass(frozen=True)
class Finding:
    """A reconciliation, as the status page lists it."""

    at: float  # epoch seconds
    session: str
    clean: bool
    summary: str
    discrepancies: list[str]


class Recent:
    """The latest reconciliation findings (fed from the engine's events), newest last."""

    def __init__(self, size: int = RECENT_FINDINGS):
        self.findings: collections.deque[Finding] = collections.deque(maxlen=size)

    def reconciled(self, session: str, at: datetime, findings: Findings, summary: str) -> None:
        self.findings.append(Finding(at.timestamp(), session, findings.clean, summary,
                                     [d.describe() for d in findings.discrepancies]))

    def failed(self, session: str, at: datetime, reason: str) -> None:
        self.findings.append(Finding(at.timestamp(), session, False, f"reconciliation failed: {reason}", []))


def _age(now: float, at: float | None) -> float | None:
    return round(now - at, 3) if at is not None else None


def _order_row(order: Order, session: str, oms: tuple[str, str] | None) -> dict[str, Any]:
    return {
        "session": session, "client": oms[0] if oms else None, "oms_cl_ord_id": oms[1] if oms else None,
        "cl_ord_id": order.cl_ord_id, "order_id": order.order_id,
        "ticker": order.ticker, "action": order.action.value, "yes_price": str(order.yes_price),
        "quantity": str(order.quantity), "cum_qty": str(order.cum_qty), "leaves_qty": str(order.leaves_qty),
        "status": order.status.value,
    }


def status_document(
    sessions: Sequence[SessionHealth],
    clients: Sequence[ClientHealth],
    *,
    now: datetime,
    stopping: bool = False,
    book: OrderBook | None = None,
    accounts: dict[str, str] | None = None,
    client_of: dict[str, tuple[str, str]] | None = None,
    rejects: Iterable[Reject] = (),
    findings: Iterable[Finding] = (),
) -> dict[str, Any]:
    """The ``/status`` document. ``accounts``: API key -> session name (to place orders and
    positions); ``client_of``: order key -> (OMS client, the OMS's latest ClOrdID for it)."""
    wall = now.timestamp()
    maintenance = in_maintenance(now) or any(h.maintenance for h in sessions)
    kalshi = []
    for h in sessions:
        state = session_state(h, maintenance=maintenance, stopping=stopping)
        row = asdict(h)
        row.update(state=state.value, last_in_age=_age(wall, h.last_in), last_out_age=_age(wall, h.last_out))
        kalshi.append(row)
    oms = []
    for c in clients:
        row = asdict(c)
        row.update(state=client_state(c, stopping=stopping).value, last_in_age=_age(wall, c.last_in),
                   last_out_age=_age(wall, c.last_out))
        oms.append(row)
    ready, reasons = readiness(sessions, maintenance=maintenance, stopping=stopping)
    doc: dict[str, Any] = {
        "time": now.isoformat(),
        "state": worst(State(r["state"]) for r in kalshi).value,
        "oms_state": worst(State(r["state"]) for r in oms).value,
        "ready": ready,
        "not_ready": reasons,
        "maintenance": maintenance,
        "stopping": stopping,
        "kalshi_sessions": kalshi,
        "oms_clients": oms,
        "rejects": [asdict(r) for r in reversed(list(rejects))],
        "reconciliations": [asdict(f) for f in reversed(list(findings))],
    }
    if book is not None:
        accounts = accounts or {}
        client_of = client_of or {}
        by_session = {}
        for order in book.open_orders():
            session = accounts.get(order.account, order.account)
            by_session.setdefault(session, []).append(_order_row(order, session, client_of.get(order.key)))
        doc["orders"] = [row for rows in by_session.values() for row in rows]
        doc["positions"] = [
            {"session": accounts.get(account, account), "ticker": ticker, "net_yes": str(net)}
            for (account, ticker), net in sorted(book.positions.items()) if net
        ]
    return doc


def readiness(sessions: Sequence[SessionHealth], *, maintenance: bool, stopping: bool) -> tuple[bool, list[str]]:
    """Ready to take orders: every Kalshi session logged on with its book confirmed, outside
    maintenance, not stopping. Returns (ready, the reasons it is not)."""
    reasons = []
    if stopping:
        reasons.append("the service is stopping: new orders are refused")
    if maintenance:
        reasons.append("Kalshi's weekly maintenance (Thursdays 03:00-05:00 New York time): a trading pause")
    for h in sessions:
        if h.phase != "logged_on":
            why = f": {h.reason}" if h.reason else ""
            reasons.append(f"{h.name} is not logged on ({h.phase}{why})")
        elif h.book_held:
            reasons.append(f"{h.name}: its book is held until reconciliation confirms it")
    return not reasons, reasons


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.1f}s"
    return str(value)


def as_table(doc: dict[str, Any]) -> str:
    """``fixengine status``: the status document as text an operator reads at a glance."""
    lines = [f"service: {doc['state']} (OMS side: {doc['oms_state']}), "
             f"{'ready' if doc['ready'] else 'NOT READY'} at {doc['time']}"]
    lines += [f"  not ready: {reason}" for reason in doc.get("not_ready", [])]
    rows = [("KALSHI SESSION", "STATE", "SEQ OUT/IN", "LAST IN", "LAST OUT", "REASON")]
    for s in doc["kalshi_sessions"]:
        rows.append((s["name"], s["state"], f"{_cell(s['next_out_seq'])}/{_cell(s['next_in_seq'])}",
                     _cell(s["last_in_age"]), _cell(s["last_out_age"]), s["reason"] or ""))
    lines += ["", *_columns(rows)]
    rows = [("OMS CLIENT", "STATE", "SEQ OUT/IN", "LAST IN", "LAST OUT", "LIVE", "LAST REJECT")]
    for c in doc["oms_clients"]:
        reject = c["last_reject"]["text"] if c["last_reject"] else ""
        rows.append((c["name"], c["state"], f"{_cell(c['next_out_seq'])}/{_cell(c['next_in_seq'])}",
                     _cell(c["last_in_age"]), _cell(c["last_out_age"]), str(c["orders_live"]), reject))
    lines += ["", *_columns(rows)]
    return "\n".join(lines)


def _columns(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
