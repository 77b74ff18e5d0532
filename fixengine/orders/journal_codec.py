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


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, date):
        return value.isoformat()
    return value


def _dec(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def report_to_json(report: ExecutionReport | CancelReject | BusinessReject | SettlementReport) -> str:
    return json.dumps(_plain(report), separators=(",", ":"))


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
