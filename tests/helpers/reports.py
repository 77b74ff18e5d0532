"""Execution reports as Kalshi would write them, for tests that feed a book without an exchange."""

from __future__ import annotations

from decimal import Decimal as D

from fixengine.kalshi.prices import WireSide
from fixengine.orders.reports import ExecType, ExecutionReport, Fill, OrdStatus, Reason
from tests.helpers.orders import BOOK_TICKER


class FakeExchange:
    """Writes the reports Kalshi would send for one order, numbering ExecIDs like Kalshi."""

    def __init__(self, cl_ord_id: str, quantity: D, side: WireSide = WireSide.BUY_YES, shard: int = 0,
                 order_id: str = "O-1"):
        self.cl_ord_id, self.quantity, self.side, self.shard, self.order_id = cl_ord_id, quantity, side, shard, order_id
        self.cum = D(0)
        self.clock = 0

    def _exec_id(self) -> str:
        self.clock += 1
        return f"{self.clock};1" + (f";{self.shard}" if self.shard else "")

    def report(self, exec_type: ExecType, status: OrdStatus, *, cl: str | None = None, orig: str | None = None,
               fill: Fill | None = None, leaves: D | None = None, reason: Reason | None = None,
               price: D = D("0.45"), exec_id: str | None = None) -> ExecutionReport:
        leaves = self.quantity - self.cum if leaves is None else leaves
        return ExecutionReport(
            exec_id=exec_id or self._exec_id(), exec_type=exec_type, ord_status=status, order_id=self.order_id,
            cl_ord_id=cl or self.cl_ord_id, orig_cl_ord_id=orig, ticker=BOOK_TICKER, side=self.side,
            order_qty=self.quantity, cum_qty=self.cum, leaves_qty=leaves, yes_price=price, fill=fill, reason=reason,
        )

    def new(self) -> ExecutionReport:
        return self.report(ExecType.NEW, OrdStatus.NEW)

    def trade(self, qty: D, price: D = D("0.45")) -> ExecutionReport:
        self.cum += qty
        status = OrdStatus.FILLED if self.cum == self.quantity else OrdStatus.PARTIALLY_FILLED
        fill = Fill(f"f{self.clock + 1}", f"t{self.clock + 1}", price, qty, D("0.01"), True)
        return self.report(ExecType.TRADE, status, fill=fill)

    def canceled(self, cl: str, reason: Reason | None = None) -> ExecutionReport:
        return self.report(ExecType.CANCELED, OrdStatus.CANCELED, cl=cl, orig=self.cl_ord_id, leaves=D(0), reason=reason)

    def replaced(self, cl: str, quantity: D, price: D) -> ExecutionReport:
        orig, self.cl_ord_id, self.quantity = self.cl_ord_id, cl, quantity
        return self.report(ExecType.REPLACED, OrdStatus.NEW if self.cum == 0 else OrdStatus.PARTIALLY_FILLED,
                           orig=orig, price=price)
