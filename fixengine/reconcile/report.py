"""Reconciliation findings for people (a table) and for programs (JSON)."""

from __future__ import annotations

import json

from fixengine.reconcile.compare import Findings

_COLUMNS = ("session", "severity", "kind", "ticker", "order", "healed", "detail")


def rows(results: dict[str, Findings]) -> list[dict[str, str | bool | None]]:
    out: list[dict[str, str | bool | None]] = []
    for session, findings in results.items():
        for d in findings.discrepancies:
            out.append({
                "session": session, "severity": d.severity.value, "kind": d.kind.value, "ticker": d.ticker,
                "order_id": d.order_id, "client_order_id": d.client_order_id, "healed": d.healed, "detail": d.detail,
            })
    return out


def as_json_text(results: dict[str, Findings]) -> str:
    return json.dumps({
        "clean": all(f.clean for f in results.values()),
        "sessions": {name: {"clean": f.clean, "healed": len(f.discrepancies) - len(f.unexplained),
                            "unexplained": len(f.unexplained),
                            "balance_dollars": None if f.balance is None else str(f.balance)}
                     for name, f in results.items()},
        "discrepancies": rows(results),
    }, indent=2)


def as_table(results: dict[str, Findings]) -> str:
    lines = []
    table = [
        (r["session"], r["severity"], r["kind"], r["ticker"], r["order_id"] or r["client_order_id"] or "-",
         "yes" if r["healed"] else "NO", r["detail"])
        for r in rows(results)
    ]
    if table:
        widths = [max(len(str(c)) for c in column) for column in zip(_COLUMNS, *table)]
        for line in (_COLUMNS, *table):
            lines.append("  ".join(str(c).ljust(w) for c, w in zip(line, widths)).rstrip())
    for name, f in results.items():
        healed = len(f.discrepancies) - len(f.unexplained)
        verdict = "clean" if f.clean else f"{len(f.unexplained)} discrepancies NOT explained"
        balance = "" if f.balance is None else f"; balance ${f.balance}"
        lines.append(f"{name}: {verdict} ({healed} healed{balance})")
    return "\n".join(lines)
