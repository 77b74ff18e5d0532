"""Order requests and reports to and from JSON, for the journal. Decimals stay exact (as strings)."""

from __future__ import annotations

import dataclasses
import json
from datetime import date
from decimal import Decimal
from enum import Enum
from typing import Any

from fixengine.orders.reports import (
    BusinessReject,
    CancelReject,
    CxlRejResponseTo,
    ExecType,
    ExecutionReport,
    Fill,
    OrdStatus,
    Reason,
    RejectCode,
)
from fixengine.kalshi.prices import WireSide
from fixengine.orders.settlement import MarketResult, SettlementParty, SettlementReport


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}  # a dataclass's field names, looked up once per class


def _default(value: Any) -> Any:
    """What ``json`` cannot write itself: Decimals as strings, dataclasses as objects of their
    fields (in order), dates in ISO form, other enums by value (``str`` enums it writes itself)."""
    if isinstance(value, Decimal):
        return str(value)
    names = _FIELD_NAMES.get(type(value))
    if names is None:
        if isinstance(value, Enum):
            return value.value
        if isinstance(value, date):
            return value.isoformat()
        if not dataclasses.is_dataclass(value) or isinstance(value, type):
            raise TypeError(f"{type(value).__name__} is not journaled")
        names = _FIELD_NAMES[type(value)] = tuple(f.name for f in dataclasses.fields(value))
    return {name: getattr(value, name) for name in names}


# On every report's path: json's C encoder does the walk, calling back only for what it cannot write.
_ENCODER = json.JSONEncoder(separators=(",", ":"), default=_default)


def _dec(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def report_to_json(report: ExecutionReport | CancelReject | BusinessReject | SettlementReport) -> str:
    return _ENCODER.encode(report)


def _reason(data: dict[str, Any] | None) -> Reason | None:
    return None if data is None else Reason(RejectCode(data["code"]), data["number"], data["text"])


def execution_report_from_json(text: str) -> ExecutionReport:
    d = json.loads(text)
    fill = d["fill"]
    return ExecutionReport(
        exec_id=d["exec_id"],
        exec_type=ExecType(d["exec_type"]),
        ord_status=OrdStatus(d["ord_status"]),
        order_id=d["order_id"],
        cl_ord_id=d["cl_ord_id"],
        orig_cl_ord_id=d["orig_cl_ord_id"],
        ticker=d["ticker"],
        side=WireSide(d["side"]),
        order_qty=Decimal(d["order_qty"]),
        cum_qty=Decimal(d["cum_qty"]),
        leaves_qty=Decimal(d["leaves_qty"]),
        yes_price=_dec(d["yes_price"]),
        avg_yes_price=_dec(d["avg_yes_price"]),
        fill=None
        if fill is None
        else Fill(
            fill["exec_id"], fill["trade_id"], Decimal(fill["yes_price"]), Decimal(fill["quantity"]),
            Decimal(fill["fee"]), fill["aggressor"], _dec(fill.get("balance_change")),
        ),
        long_qty=_dec(d["long_qty"]),
        short_qty=_dec(d["short_qty"]),
        reason=_reason(d["reason"]),
        poss_dup=d["poss_dup"],
        account=d.get("account"),
    )


def cancel_reject_from_json(text: str) -> CancelReject:
    d = json.loads(text)
    return CancelReject(
        cl_ord_id=d["cl_ord_id"],
        orig_cl_ord_id=d["orig_cl_ord_id"],
        order_id=d["order_id"],
        ord_status=None if d["ord_status"] is None else OrdStatus(d["ord_status"]),
        response_to=CxlRejResponseTo(d["response_to"]),
        reason=_reason(d["reason"]),  # type: ignore[arg-type]
    )


def business_reject_from_json(text: str) -> BusinessReject:
    d = json.loads(text)
    return BusinessReject(d["ref_msg_type"], d["cl_ord_id"], _reason(d["reason"]))  # type: ignore[arg-type]


def settlement_report_from_json(text: str) -> SettlementReport:
    d = json.loads(text)
    return SettlementReport(
        account=d["account"],
        report_id=d["report_id"],
        ticker=d["ticker"],
        business_date=date.fromisoformat(d["business_date"]),
        result=MarketResult(d["result"]),
        settlement_price=Decimal(d["settlement_price"]),
        parties=tuple(
            SettlementParty(p["party_id"], p["role"], Decimal(p["long_qty"]), Decimal(p["short_qty"]),
                            Decimal(p["payout"]), Decimal(p["fee"]))
            for p in d["parties"]
        ),
        total_reports=d["total_reports"],
        last_fragment=d["last_fragment"],
    )
