"""``/metrics`` over a real socket after real trading: the metric names and label sets are the
ones pinned in ``tests/golden/metrics.txt`` (a change to the surface is a change to that file,
reviewed), every label value comes from a bounded vocabulary, and none is a ClOrdID or OrderID.

Regenerate the golden file after an intended change: ``UPDATE_GOLDEN=1 pytest tests/test_metrics.py``."""

from __future__ import annotations

import os
import re
from decimal import Decimal as D
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from fixengine.admin.status import State
import pytest

from simulator.config import MarketEntry
from tests.helpers.admin import admin_config, served_over_http, wait_ready
from tests.helpers.gateway import TICKER, oms_logged_on

@pytest.fixture
def market(make_key, start_simulator):
    desk, other = make_key(), make_key()
    sim, _ = start_simulator([desk.account(), other.account()], markets=[MarketEntry(ticker=TICKER)], rest_port=0)
    return sim, desk, other


GOLDEN = Path(__file__).parent / "golden" / "metrics.txt"
HISTOGRAM_SUFFIXES = ("_bucket", "_count", "_sum", "_created")


def surface(text: str) -> tuple[list[str], dict[str, set[str]]]:
    """Each sample's name with its label names (histogram series folded into their metric), and
    every label's values."""
    lines, values = set(), {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            name = sample.name
            if name.endswith("_created"):
                continue  # prometheus-client's creation timestamps: not ours
            labels = sorted(k for k in sample.labels if k != "le")
            if name.endswith(HISTOGRAM_SUFFIXES):
                name = family.name
            lines.add(f"{name}{{{','.join(labels)}}}")
            for k, v in sample.labels.items():
                if k != "le":
                        values.setdefault(k, set()).add(v)
    return sorted(lines), values


async def test_the_metrics_surface_is_pinned_and_its_labels_are_bounded(tmp_path, market) -> None:
    config = admin_config(tmp_path, *market)
    async with served_over_http(config) as (engine, gateway, admin, http):
        await wait_ready(http)
        async with oms_logged_on(config, "desk", tmp_path / "oms") as oms:
            placed = oms.new_order(TICKER, "1", D(5), D("0.40"))
            accepted = await oms.wait_for(lambda r: r.get(11) == placed and r.get(150) == "0")
            rejected = oms.new_order("NOT-A-TICKER", "1", D(5), D("0.40"))
            await oms.wait_for(lambda r: r.get(11) == rejected and r.get(150) == "8")
            canceled = oms.cancel(placed)
            await oms.wait_for(lambda r: r.get(11) == canceled and r.get(150) == "4")
            text = (await http.get("/metrics")).text
            identifiers = {placed, rejected, canceled, accepted.get(37)} | {o.cl_ord_id for o in engine.book.orders.values()}

    lines, values = surface(text)
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.write_text("\n".join(lines) + "\n")
    assert lines == GOLDEN.read_text().split(), "the /metrics surface changed: review, then UPDATE_GOLDEN=1"

    names = {s.name for s in config.sessions} | {c.name for c in config.oms_clients}
    allowed = {
        "session": names, "client": names, "direction": {"in", "out"}, "side": {"kalshi", "oms"},
        "state": {s.value for s in State}, "journal": {"engine", "gateway"},
        "kind": {"order", "cancel", "business", "session"} | _reconcile_kinds(),
        "outcome": {"clean", "unexplained", "failed", "admitted", "queued", "refused"}, "healed": {"yes", "no"},
    }
    for label, seen in values.items():
        assert not seen & identifiers, f"label {label} carries an order identifier: {seen & identifiers}"
        if label == "msg_type":
            assert all(re.fullmatch(r"[0-9A-Za-z]{1,2}|other", v) for v in seen), seen
        elif label == "code":
            assert all(re.fullmatch(r"[A-Z_]+|\d+|none", v) for v in seen), seen
        elif label == "reason":
            assert seen <= {"connect_failed", "refused_never", "refused_wait_out", "refused_backoff"}, seen
        else:
            assert seen <= allowed[label], (label, seen - allowed[label])
    # what this flow must have moved
    assert 'fixengine_rejects_total{code="MARKET_NOT_FOUND",kind="order",session="desk-kalshi"} 1.0' in text
    assert re.search(r'fixengine_oms_round_trip_seconds_count\{client="desk"\} [1-9]', text)
    assert re.search(r'fixengine_journal_commit_seconds_count\{journal="gateway"\} [1-9]', text)
    assert 'fixengine_kalshi_session_state{session="desk-kalshi",state="connected"} 1.0' in text
    assert re.search(r'fixengine_fix_messages_total\{direction="in",msg_type="D",session="desk",side="oms"\} [1-9]', text)


def _reconcile_kinds() -> set[str]:
    from fixengine.reconcile.compare import Kind

    return {k.value for k in Kind}


def test_the_grafana_dashboard_asks_only_for_metrics_the_service_exposes() -> None:
    import json

    dashboard = json.loads((Path(__file__).parent.parent / "config" / "grafana-dashboard.json").read_text())
    exposed = {line.split("{")[0] for line in GOLDEN.read_text().split()}
    asked = set()
    for panel in dashboard["panels"]:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            for name in re.findall(r"fixengine_[a-z_]+", target["expr"]):
                asked.add(re.sub(r"_(bucket|count|sum)$", "", name) if name not in exposed else name)
    assert asked and asked <= exposed, asked - exposed
