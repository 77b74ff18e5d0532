"""One account's REST view of one market, for the pure reconciler tests: orders, fills, a snapshot."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from fixengine.reconcile.compare import Snapshot
from fixengine.rest.models import RestFill, RestOrder

ACCOUNT = "key-1"
TICKER = "REC-1"
NOW = datetime(2026, 11, 21, 12, 0, tzinfo=timezone.utc)  # when the snapshot is taken; fills are ``at`` seconds after


def rest_order(cl: str, status: str = "resting", filled: str = "0", remaining: str = "5", price: str = "0.40",
               order_id: str | None = None) -> RestOrder:
    return RestOrder.model_validate({
        "order_id": order_id or f"O-{cl}", "client_order_id": cl, "ticker": TICKER, "status": status,
        "outcome_side": "yes", "book_side": "bid", "yes_price_dollars": price,
        "initial_count_fp": "5.00", "fill_count_fp": filled, "remaining_count_fp": remaining,
    })


def rest_fill(cl: str, trade_id: str, count: str, price: str = "0.40", at: int = 0) -> RestFill:
    return RestFill.model_validate({
        "fill_id": trade_id, "trade_id": trade_id, "order_id": f"O-{cl}", "ticker": TICKER, "outcome_side": "yes",
        "book_side": "bid", "count_fp": count, "yes_price_dollars": price, "is_taker": False, "fee_cost": "0.0000",
        "created_time": (NOW + timedelta(seconds=at)).isoformat(),
    })


def snapshot(orders=(), fills=(), positions=None, settlements=(), missing=frozenset()) -> Snapshot:
    return Snapshot(NOW, list(orders), list(fills), positions or {}, list(settlements), frozenset(missing))
