"""What the runner asks a client to do, and what the client answers: JSON lines on its standard
input and output. A client that takes instructions declares the ``instructions`` feature in its
profile; one that also reports its book declares ``state``.

Runner -> client (one JSON object per line, each with an ``id`` the answer repeats):

    {"id": "i1", "action": "place", "ticker": "CONF-ORD", "side": "buy", "contract": "yes",
     "price": "0.30", "quantity": "1", "time_in_force": "gtc"}            # order_group_id optional
    {"id": "i2", "action": "cancel", "order": "<the order's key, from place's answer>"}
    {"id": "i3", "action": "replace", "order": "<key>", "quantity": "2", "price": "0.31"}  # either or both
    {"id": "i4", "action": "mass_cancel"}
    {"id": "i5", "action": "create_group", "contracts_limit": 5}
    {"id": "i6", "action": "reset_group" | "delete_group" | "trigger_group", "group_id": "<uuid>"}
    {"id": "i7", "action": "state"}

Client -> runner (one JSON object per line; any other line on stdout is kept, not read):

    {"id": "i1", "ok": true, "order": "<key>"}                 # place
    {"id": "i5", "ok": true, "group_id": "<uuid>"}             # create_group
    {"id": "i2", "ok": false, "error": "why"}                  # refused before anything was sent
    {"id": "i7", "ok": true, "orders": [ORDER...], "positions": {"TICKER": "net YES"}}

    ORDER = {"order": key, "order_id": "37" | null, "cl_ord_id": "11", "ticker": ..., "status":
             "pending_new" | "new" | "partially_filled" | "filled" | "canceled" | "rejected" | "expired"
             | "pending_cancel" | "pending_replace", "cum_qty": "1.00", "leaves_qty": "0.00",
             "reason": "Kalshi's Text" | null}

``price`` is dollars of the named contract (buy NO at 0.30 is sent as 54=2 44=70); quantities are
decimal contracts. An ``ok`` answer means the request was accepted by the client, not by Kalshi:
what Kalshi did shows on the wire and in ``state``.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

ACTIONS = ("place", "cancel", "replace", "mass_cancel", "create_group", "reset_group", "delete_group",
           "trigger_group", "state")
Action = Literal["place", "cancel", "replace", "mass_cancel", "create_group", "reset_group", "delete_group",
                 "trigger_group", "state"]


class Instruction(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    action: Action
    ticker: str | None = None
    side: Literal["buy", "sell"] | None = None
    contract: Literal["yes", "no"] | None = None
    price: Decimal | None = None
    quantity: Decimal | None = None
    time_in_force: Literal["gtc", "ioc", "fok", "day"] | None = None
    order: str | None = None
    order_group_id: str | None = None
    contracts_limit: int | None = None
    group_id: str | None = None

    def line(self) -> str:
        return json.dumps(self.model_dump(mode="json", exclude_none=True), separators=(",", ":"))


class StateOrder(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    order: str
    order_id: str | None = None
    cl_ord_id: str | None = None
    ticker: str | None = None
    status: str
    cum_qty: Decimal
    leaves_qty: Decimal
    reason: str | None = None


class Answer(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str
    ok: bool
    error: str | None = None
    order: str | None = None
    group_id: str | None = None
    orders: list[StateOrder] | None = None
    positions: dict[str, Decimal] | None = None


def read_answer(line: str) -> Answer | None:
    """The answer a stdout line carries, or None when it is not one (logs, prompts, noise)."""
    try:
        data: Any = json.loads(line)
    except ValueError:
        return None
    if not isinstance(data, dict) or "id" not in data or "ok" not in data:
        return None
    try:
        return Answer.model_validate(data)
    except ValueError:
        return None
