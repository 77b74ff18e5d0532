"""The order and feature scenarios (conformance.scenarios.orders, cancel_replace, rate_limits,
features) and the simulator's scripted answers they rely on (simulator.scripted):

- each mandatory scenario's judge on transcripts built from real FIX messages
  (fixengine.fix.framing.encode): one the client passes, one it fails, and INCONCLUSIVE without the
  evidence that would decide;
- each scripted market and armed script over a real socket (conformance.harness.RawClient);
- the mandatory scenarios run end to end against ``python -m conformance.clients.engine`` (slow).
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from collections.abc import Callable, Iterator
from datetime import datetime, timezone

import pytest

from conformance.harness import ApiKey, RawClient
from conformance.instructions import Instruction as InstructionLine
from conformance.library import load_library
from conformance.model import ClientSays, Direction, Evidence, Instruction, RestCall, Verdict, WireMessage
from conformance.profile import Profile
from conformance.runner import run
from conformance.scenarios import JUDGES, load_all
from fixengine.fix.framing import encode
from fixengine.fix.timestamps import utc_timestamp
from simulator.config import HOUSE_ACCOUNT, MarketEntry
from simulator.faults import FaultError
from simulator.scripted import LISTED_TICKERS, UNDEFINED_TAG
from simulator.server import Simulator

load_all()
KEY = "0b6c5f0e-8d1a-4c57-9a52-2f1f3c7d9e01"
T0 = 1_790_000_000.0
PROFILE = Profile(features=frozenset({"instructions", "state"}))


# --- transcripts ---------------------------------------------------------------------------------


class Run:
    """A scenario's evidence built step by step: real FIX both ways on one KalshiNR connection
    (34 counted per direction, 52 from the capture time), instructions with the client's answers,
    REST calls. Each step is 0.1 s after the one before, unless told."""

    def __init__(self, **logon: str) -> None:
        self.evidence = Evidence(started=T0)
        self.at = T0
        self.seq = {Direction.FROM_CLIENT: 0, Direction.TO_CLIENT: 0}
        self.asked = 0
        flags = [(int(tag[1:]), value) for tag, value in logon.items()]
        self.client("A", [(98, "0"), (108, "4"), (141, "Y"), *flags, (1137, "9")])
        self.server("A", [(98, "0"), (108, "4"), (141, "Y"), (1137, "9")])

    def _tick(self, after: float | None) -> float:
        self.at += 0.1 if after is None else after
        return self.at

    def _send(self, direction: Direction, msg_type: str, body: list[tuple[int, str]], after: float | None) -> int:
        at = self._tick(after)
        self.seq[direction] += 1
        ours = direction is Direction.FROM_CLIENT
        header = [(35, msg_type), (34, str(self.seq[direction])), (49, KEY if ours else "KalshiNR"),
                  (52, utc_timestamp(datetime.fromtimestamp(at, timezone.utc))), (56, "KalshiNR" if ours else KEY)]
        raw = encode("FIXT.1.1", header + body).decode("latin-1")
        self.evidence.messages.append(WireMessage(at, 1, direction, "KalshiNR", raw))
        return self.seq[direction]

    def client(self, msg_type: str, body: list[tuple[int, str]], after: float | None = None) -> int:
        return self._send(Direction.FROM_CLIENT, msg_type, body, after)

    def server(self, msg_type: str, body: list[tuple[int, str]], after: float | None = None) -> int:
        return self._send(Direction.TO_CLIENT, msg_type, body, after)

    def ask(self, answer: dict[str, object], **instruction: object) -> None:
        """An instruction and the client's answer to it."""
        self.asked += 1
        key = f"i{self.asked}"
        line = InstructionLine.model_validate({**instruction, "id": key}).line()
        self.evidence.instructions.append(Instruction(self._tick(None), line))
        self.evidence.client.append(ClientSays(self._tick(None), json.dumps({"id": key, **answer})))

    def state(self, *orders: dict[str, object], positions: dict[str, str] | None = None) -> None:
        self.ask({"ok": True, "orders": list(orders), "positions": positions or {}}, action="state")

    def rest(self, path: str) -> None:
        self.evidence.rest.append(RestCall(self._tick(None), "GET", path, 200))

    # Order entry, as the client sends it and the simulator answers it.

    def order(self, cl: str, ticker: str, *, side: str = "1", qty: str = "1.00", price: str = "10", tif: str = "1",
              extra: list[tuple[int, str]] | None = None, after: float | None = None) -> int:
        return self.client("D", [(11, cl), (38, qty), (40, "2"), (44, price), (54, side), (55, ticker), (59, tif),
                                 *(extra or [])], after)

    def report(self, cl: str, ticker: str, exec_type: str, status: str, *, order_id: str = "O1", qty: str = "1.00",
               cum: str = "0.00", leaves: str = "1.00", exec_id: str = "1;1", extra: list[tuple[int, str]] | None = None,
               orig: str | None = None, side: str = "1", price: str = "10") -> int:
        body = [(6, "0"), (11, cl), (14, cum), (17, exec_id), (37, order_id), (38, qty), (39, status)]
        if orig:
            body.append((41, orig))
        body += [(44, price), (54, side), (55, ticker), (150, exec_type), (151, leaves), *(extra or [])]
        return self.server("8", body)

    def place(self, cl: str, ticker: str, **order: str) -> None:
        """The runner asks, the client says ok and sends the order."""
        price = order.pop("dollars", "0.10")
        self.ask({"ok": True, "order": cl}, action="place", ticker=ticker, side="buy",
                 contract=order.pop("contract", "yes"), price=price, quantity="1", time_in_force="gtc")
        self.order(cl, ticker, **order)


def judged(scenario_id: str, run: Run, profile: Profile = PROFILE) -> tuple[Verdict, str]:
    result = JUDGES[scenario_id](run.evidence, profile)
    assert result.scenario == scenario_id
    assert result.verdict is not Verdict.FAIL or result.findings, "a FAIL names what broke"
    return result.verdict, result.reason


def state_order(cl: str, status: str, *, cum: str = "0", leaves: str = "0", reason: str | None = None,
                order_id: str | None = "O1", ticker: str = "CONF-ORD") -> dict[str, object]:
    return {"order": cl, "order_id": order_id, "cl_ord_id": cl, "ticker": ticker, "status": status, "cum_qty": cum,
            "leaves_qty": leaves, "reason": reason}


def test_every_judge_is_inconclusive_without_a_logon() -> None:
    for scenario_id in ("kalshi/ord/01", "kalshi/ord/02", "kalshi/ord/03", "kalshi/ord/04", "kalshi/ord/05",
                        "kalshi/ord/06", "kalshi/cxl/01", "kalshi/cxl/02", "kalshi/rl/01", "kalshi/drift/01"):
        assert JUDGES[scenario_id](Evidence(), PROFILE).verdict is Verdict.INCONCLUSIVE, scenario_id


# --- kalshi/ord/01 ---------------------------------------------------------------------------------


def _ord_01(merged: bool = True) -> Run:
    run = Run()
    run.place("c1", "CONF-ORD")
    run.report("c1", "CONF-ORD", "A", "A", exec_id="-1;-1")
    run.report("c1", "CONF-ORD", "0", "0")
    run.place("c2", "CONF-FILL", dollars="0.20", price="20")
    run.report("c2", "CONF-FILL", "A", "A", exec_id="-1;-1", order_id="O3", price="20")
    if not merged:
        run.report("c2", "CONF-FILL", "0", "0", order_id="O3", exec_id="2;2", price="20")
    run.report("c2", "CONF-FILL", "F", "2", order_id="O3", cum="1.00", leaves="0.00", exec_id="3;4", price="20",
               extra=[(31, "20"), (32, "1.00")])
    run.ask({"ok": True, "order": "c1"}, action="cancel", order="c1")
    run.client("F", [(11, "c3"), (41, "c1"), (54, "1"), (55, "CONF-ORD")])
    run.report("c3", "CONF-ORD", "4", "4", orig="c1", leaves="0.00", exec_id="4;5")
    return run


def test_ord_01_passes_a_separate_and_a_merged_acknowledgement_taken_in_stride() -> None:
    run = _ord_01()
    run.state(state_order("c1", "canceled"), state_order("c2", "filled", cum="1.00", order_id="O3", ticker="CONF-FILL"))
    assert judged("kalshi/ord/01", run)[0] is Verdict.PASS


def test_ord_01_fails_an_order_off_kalshi_s_price_grid() -> None:
    run = _ord_01()
    run.order("c4", "CONF-ORD", price="150")
    verdict, reason = judged("kalshi/ord/01", run)
    assert verdict is Verdict.FAIL and "44=150" in JUDGES["kalshi/ord/01"](run.evidence, PROFILE).findings[0].seen


def test_ord_01_fails_a_client_that_rejects_the_merged_trade_report() -> None:
    run = _ord_01()
    run.client("3", [(45, "6"), (58, "unexpected fill"), (373, "5")])
    assert judged("kalshi/ord/01", run)[0] is Verdict.FAIL


def test_ord_01_is_inconclusive_when_no_order_traded_at_once() -> None:
    run = Run()
    run.place("c1", "CONF-ORD")
    run.report("c1", "CONF-ORD", "0", "0")
    assert judged("kalshi/ord/01", run)[0] is Verdict.INCONCLUSIVE


# --- kalshi/ord/02 ---------------------------------------------------------------------------------


def _ord_02(side: str, price: str, **logon: str) -> Run:
    run = Run(**logon)
    run.place("c1", "CONF-YESNO", contract="no", dollars="0.30", side=side, price=price)
    return run


@pytest.mark.parametrize(("logon", "price"), [({}, "70"), ({"t21005": "Y"}, "0.7000"), ({"t21005": "Y"}, "0.70")])
def test_ord_02_passes_buy_no_at_30_sent_as_sell_yes_at_70(logon: dict[str, str], price: str) -> None:
    assert judged("kalshi/ord/02", _ord_02("2", price, **logon))[0] is Verdict.PASS


@pytest.mark.parametrize(("side", "price"), [("1", "30"), ("2", "30"), ("1", "70")])
def test_ord_02_fails_buy_no_sent_at_the_no_price_or_as_a_yes_buy(side: str, price: str) -> None:
    assert judged("kalshi/ord/02", _ord_02(side, price))[0] is Verdict.FAIL


def test_ord_02_fails_cents_sent_on_a_dollar_session() -> None:
    assert judged("kalshi/ord/02", _ord_02("2", "70", t21005="Y"))[0] is Verdict.FAIL


def test_ord_02_is_inconclusive_when_the_client_sends_nothing() -> None:
    run = Run()
    run.ask({"ok": True, "order": "c1"}, action="place", ticker="CONF-YESNO", side="buy", contract="no",
            price="0.30", quantity="1")
    assert judged("kalshi/ord/02", run)[0] is Verdict.INCONCLUSIVE


# --- kalshi/ord/03 ---------------------------------------------------------------------------------


def _ord_03() -> Run:
    run = Run()
    run.order("c1", "CONF-FILLS", qty="2.00", price="40")
    run.report("c1", "CONF-FILLS", "A", "A", qty="2.00", leaves="2.00", exec_id="-1;-1", price="40")
    run.report("c1", "CONF-FILLS", "0", "0", qty="2.00", leaves="2.00", exec_id="8;10", price="40")
    run.report("c1", "CONF-FILLS", "F", "1", qty="2.00", cum="1.00", leaves="1.00", exec_id="9;11", price="40",
               extra=[(32, "1.00"), (704, "1.00"), (705, "0.00")])
    run.report("c1", "CONF-FILLS", "F", "2", qty="2.00", cum="2.00", leaves="0.00", exec_id="9;11;1", price="40",
               extra=[(30, "1"), (32, "1.00"), (704, "2.00"), (705, "0.00")])
    return run


def test_ord_03_passes_fills_on_two_shards_counted_as_two() -> None:
    run = _ord_03()
    run.state(state_order("c1", "filled", cum="2.00", leaves="0", ticker="CONF-FILLS"), positions={"CONF-FILLS": "2"})
    assert judged("kalshi/ord/03", run)[0] is Verdict.PASS


def test_ord_03_fails_a_client_that_took_the_shard_1_fill_for_a_duplicate() -> None:
    run = _ord_03()
    run.state(state_order("c1", "partially_filled", cum="1.00", leaves="1.00", ticker="CONF-FILLS"))
    verdict, reason = judged("kalshi/ord/03", run)
    assert verdict is Verdict.FAIL and "CumQty 2.00" in reason


def test_ord_03_fails_a_position_that_does_not_follow_the_reports() -> None:
    run = _ord_03()
    run.state(state_order("c1", "filled", cum="2.00", ticker="CONF-FILLS"), positions={"CONF-FILLS": "3"})
    assert judged("kalshi/ord/03", run)[0] is Verdict.FAIL


def test_ord_03_is_inconclusive_without_the_client_s_state() -> None:
    assert judged("kalshi/ord/03", _ord_03())[0] is Verdict.INCONCLUSIVE


# --- kalshi/ord/04 ---------------------------------------------------------------------------------

ORD_04 = (("INSUFFICIENT_BALANCE", "3"), ("MARKET_NOT_FOUND", "1"), ("MARKET_ALREADY_CLOSED", "2"),
          ("ORDER_ALREADY_EXISTS", "6"), ("INVALID_ORDER", "11"), ("TRADING_PAUSED", "2"))


def _ord_04() -> Run:
    run = Run()
    for n, (text, code) in enumerate(ORD_04):
        run.place(f"c{n}", f"CONF-REJECT-{text}", price="30", dollars="0.30")
        run.report(f"c{n}", f"CONF-REJECT-{text}", "8", "8", order_id="NONE", leaves="0.00", exec_id=f"{n};{n}",
                   price="30", extra=[(58, text), (103, code)])
    return run


def test_ord_04_passes_each_reject_final_with_its_reason() -> None:
    run = _ord_04()
    run.state(*(state_order(f"c{n}", "rejected", reason=text, order_id=None) for n, (text, _) in enumerate(ORD_04)))
    assert judged("kalshi/ord/04", run)[0] is Verdict.PASS


def test_ord_04_fails_a_rejected_order_sent_again_in_a_loop() -> None:
    run = _ord_04()
    for n in range(2):
        run.order(f"again{n}", "CONF-REJECT-INSUFFICIENT_BALANCE", price="30")
    verdict, reason = judged("kalshi/ord/04", run)
    assert verdict is Verdict.FAIL and "INSUFFICIENT_BALANCE" in reason


def test_ord_04_fails_a_reject_kept_open_in_the_client_s_book() -> None:
    run = _ord_04()
    run.state(*(state_order(f"c{n}", "pending_new" if n == 0 else "rejected", reason=text, order_id=None)
                for n, (text, _) in enumerate(ORD_04)))
    assert judged("kalshi/ord/04", run)[0] is Verdict.FAIL


def test_ord_04_is_inconclusive_until_every_reject_was_seen() -> None:
    run = Run()
    run.place("c0", "CONF-REJECT-INVALID_ORDER", price="30", dollars="0.30")
    run.report("c0", "CONF-REJECT-INVALID_ORDER", "8", "8", order_id="NONE", leaves="0.00",
               extra=[(58, "INVALID_ORDER"), (103, "11")])
    assert judged("kalshi/ord/04", run)[0] is Verdict.INCONCLUSIVE


# --- kalshi/ord/05 ---------------------------------------------------------------------------------


def _ord_05() -> Run:
    run = Run()
    run.place("c1", "CONF-UNAVAILABLE", price="20", dollars="0.20")
    run.report("c1", "CONF-UNAVAILABLE", "8", "8", order_id="NONE", leaves="0.00", price="20",
               extra=[(58, "EXCHANGE_UNAVAILABLE"), (103, "99")])
    return run


def test_ord_05_passes_a_retry_under_the_same_cl_ord_id() -> None:
    run = _ord_05()
    run.order("c1", "CONF-UNAVAILABLE", price="20")
    run.report("c1", "CONF-UNAVAILABLE", "8", "8", order_id="NONE", leaves="0.00", price="20",
               extra=[(58, "ORDER_ALREADY_EXISTS"), (103, "6")])
    assert judged("kalshi/ord/05", run)[0] is Verdict.PASS


def test_ord_05_passes_a_rest_reconciliation() -> None:
    run = _ord_05()
    run.rest("/trade-api/v2/portfolio/orders?status=resting")
    run.state(state_order("c1", "new", leaves="1", order_id="O1", ticker="CONF-UNAVAILABLE"))
    assert judged("kalshi/ord/05", run)[0] is Verdict.PASS


def test_ord_05_fails_the_order_sent_again_under_a_new_cl_ord_id() -> None:
    run = _ord_05()
    run.order("c2", "CONF-UNAVAILABLE", price="20")
    verdict, reason = judged("kalshi/ord/05", run)
    assert verdict is Verdict.FAIL and "new ClOrdID" in reason


def test_ord_05_is_inconclusive_when_the_client_only_waits() -> None:
    run = _ord_05()
    run.state(state_order("c1", "pending_new", leaves="1", order_id=None, ticker="CONF-UNAVAILABLE"))
    assert judged("kalshi/ord/05", run)[0] is Verdict.INCONCLUSIVE


# --- kalshi/ord/06 ---------------------------------------------------------------------------------


def _ord_06() -> Run:
    run = Run()
    run.place("c1", "CONF-SESSION-REJECT", price="30", dollars="0.30")
    run.server("3", [(45, "2"), (58, "Value is incorrect (out of range) for this tag"), (371, "44"), (372, "D"),
                     (373, "5")])
    run.place("c2", "CONF-BUSINESS-REJECT", price="30", dollars="0.30")
    run.server("j", [(45, "3"), (58, "Not authorized"), (372, "D"), (379, "c2"), (380, "6")])
    return run


def test_ord_06_passes_both_requests_failed_and_not_resent() -> None:
    run = _ord_06()
    run.state(state_order("c1", "rejected", order_id=None), state_order("c2", "rejected", order_id=None))
    assert judged("kalshi/ord/06", run)[0] is Verdict.PASS


def test_ord_06_fails_a_session_reject_left_pending() -> None:
    run = _ord_06()
    run.state(state_order("c1", "pending_new", leaves="1", order_id=None), state_order("c2", "rejected", order_id=None))
    verdict, reason = judged("kalshi/ord/06", run)
    assert verdict is Verdict.FAIL and "35=3" in reason


def test_ord_06_fails_a_request_resent_by_itself() -> None:
    run = _ord_06()
    run.order("c3", "CONF-BUSINESS-REJECT", price="30")
    assert judged("kalshi/ord/06", run)[0] is Verdict.FAIL


def test_ord_06_is_inconclusive_when_no_request_was_refused() -> None:
    run = Run()
    run.place("c1", "CONF-SESSION-REJECT", price="30", dollars="0.30")
    assert judged("kalshi/ord/06", run)[0] is Verdict.INCONCLUSIVE


# --- kalshi/cxl/01 and kalshi/cxl/02 ---------------------------------------------------------------


def _replaced(run: Run, orig: str, cl: str, *, qty: str = "1.00", price: str = "11", exec_id: str = "2;2") -> None:
    run.client("G", [(11, cl), (38, qty), (40, "2"), (41, orig), (44, price), (54, "1"), (55, "CONF-ORD")])
    run.report(cl, "CONF-ORD", "5", "0", orig=orig, qty=qty, leaves=qty, exec_id=exec_id, price=price)


def _cxl_01(named: str) -> Run:
    run = Run()
    run.place("c1", "CONF-ORD")
    run.report("c1", "CONF-ORD", "0", "0")
    _replaced(run, "c1", "c2")
    run.client("F", [(11, "c3"), (41, named), (54, "1"), (55, "CONF-ORD")])
    run.report("c3", "CONF-ORD", "4", "4", orig=named, leaves="0.00", exec_id="3;3", price="11")
    return run


def test_cxl_01_passes_a_cancel_naming_the_latest_cl_ord_id() -> None:
    run = _cxl_01("c2")
    run.state(state_order("c1", "canceled"))
    assert judged("kalshi/cxl/01", run)[0] is Verdict.PASS


def test_cxl_01_fails_a_cancel_naming_the_first_cl_ord_id_after_a_replace() -> None:
    verdict, reason = judged("kalshi/cxl/01", _cxl_01("c1"))
    assert verdict is Verdict.FAIL and "41=c2" in reason


def test_cxl_01_fails_an_order_the_client_keeps_open() -> None:
    run = _cxl_01("c2")
    run.state(state_order("c1", "new", leaves="1"))
    assert judged("kalshi/cxl/01", run)[0] is Verdict.FAIL


def test_cxl_01_is_inconclusive_without_a_cancel() -> None:
    run = Run()
    run.place("c1", "CONF-ORD")
    run.report("c1", "CONF-ORD", "0", "0")
    assert judged("kalshi/cxl/01", run)[0] is Verdict.INCONCLUSIVE


def _cxl_02(second_orig: str, second_qty: str = "2.00") -> Run:
    run = Run()
    run.place("c1", "CONF-ORD", tif="0")
    run.report("c1", "CONF-ORD", "0", "0")
    run.ask({"ok": True, "order": "c1"}, action="replace", order="c1", quantity="2")
    _replaced(run, "c1", "c2", qty="2.00", price="10")
    run.ask({"ok": True, "order": "c1"}, action="replace", order="c1", price="0.14")
    _replaced(run, second_orig, "c3", qty=second_qty, price="14", exec_id="3;3")
    return run


def test_cxl_02_passes_two_replaces_chained_with_new_totals() -> None:
    run = _cxl_02("c2")
    run.state(state_order("c1", "new", leaves="2") | {"cl_ord_id": "c3"})
    assert judged("kalshi/cxl/02", run)[0] is Verdict.PASS


def test_cxl_02_fails_a_second_replace_naming_the_first_cl_ord_id() -> None:
    verdict, reason = judged("kalshi/cxl/02", _cxl_02("c1"))
    assert verdict is Verdict.FAIL and "41=c2" in reason


def test_cxl_02_fails_a_quantity_sent_as_the_change_not_the_total() -> None:
    verdict, reason = judged("kalshi/cxl/02", _cxl_02("c2", second_qty="1.00"))
    assert verdict is Verdict.FAIL and "38=2.00" in reason


def test_cxl_02_fails_a_replace_that_changes_the_expiry() -> None:
    run = Run()
    run.place("c1", "CONF-ORD", tif="0")
    run.report("c1", "CONF-ORD", "0", "0")
    run.client("G", [(11, "c2"), (38, "1.00"), (40, "2"), (41, "c1"), (44, "12"), (54, "1"), (55, "CONF-ORD"),
                     (59, "1")])
    assert judged("kalshi/cxl/02", run)[0] is Verdict.FAIL


def test_cxl_02_is_inconclusive_after_one_replace() -> None:
    run = Run()
    run.place("c1", "CONF-ORD")
    run.report("c1", "CONF-ORD", "0", "0")
    _replaced(run, "c1", "c2")
    assert judged("kalshi/cxl/02", run)[0] is Verdict.INCONCLUSIVE


# --- kalshi/rl/01 ----------------------------------------------------------------------------------


def _rl_01() -> Run:
    run = Run()
    run.place("c1", "CONF-ORD", price="7", dollars="0.07")
    run.server("j", [(45, "2"), (58, "Rate limit exceeded"), (372, "D"), (379, "c1"), (380, "8")])
    return run


def test_rl_01_passes_a_refused_order_failed_in_the_client() -> None:
    run = _rl_01()
    run.state(state_order("c1", "rejected", order_id=None, reason="Rate limit exceeded"))
    assert judged("kalshi/rl/01", run)[0] is Verdict.PASS


def test_rl_01_passes_a_retry_after_a_backoff_that_went_through() -> None:
    run = _rl_01()
    run.order("c1", "CONF-ORD", price="7", after=1.0)  # the retry, a second after the refusal
    run.report("c1", "CONF-ORD", "0", "0", price="7")
    assert judged("kalshi/rl/01", run)[0] is Verdict.PASS


def test_rl_01_fails_a_retry_at_once() -> None:
    run = _rl_01()
    run.order("c1", "CONF-ORD", price="7")
    verdict, reason = judged("kalshi/rl/01", run)
    assert verdict is Verdict.FAIL and "backoff" in reason


def test_rl_01_fails_a_phantom_open_order() -> None:
    run = _rl_01()
    run.state(state_order("c1", "pending_new", leaves="1", order_id=None))
    verdict, reason = judged("kalshi/rl/01", run)
    assert verdict is Verdict.FAIL and "not open" in reason


def test_rl_01_is_inconclusive_without_state_or_retry() -> None:
    assert judged("kalshi/rl/01", _rl_01())[0] is Verdict.INCONCLUSIVE


# --- kalshi/drift/01 -------------------------------------------------------------------------------


def _drift() -> Run:
    run = Run()
    run.place("c1", "CONF-ORD", price="15", dollars="0.15")
    run.report("c1", "CONF-ORD", "0", "0", price="15",
               extra=[(30, "0"), (715, "20261130"), (1057, "N"), (21030, "0.01"), (21031, "0.01"),
                      (UNDEFINED_TAG, "conformance")])
    run.server("UMS", [(55, "CONF-DRIFT-SETTLED"), (715, "20261130"), (730, "0.00"), (893, "Y"), (20105, "d-1"),
                       (20107, "no"), (20108, "1"), (20109, KEY), (20110, "24"), (704, "0.00"), (705, "0.00")])
    return run


def test_drift_01_passes_a_client_that_reads_on_and_stays_up() -> None:
    run = _drift()
    run.client("0", [])
    assert judged("kalshi/drift/01", run)[0] is Verdict.PASS


def test_drift_01_fails_a_reject_of_an_undefined_tag() -> None:
    run = _drift()
    run.client("3", [(45, "2"), (58, "Undefined tag received"), (371, str(UNDEFINED_TAG)), (372, "8"), (373, "3")])
    verdict, _ = judged("kalshi/drift/01", run)
    assert verdict is Verdict.FAIL
    assert JUDGES["kalshi/drift/01"](run.evidence, PROFILE).findings[0].rule == "P13"


def test_drift_01_fails_a_client_that_logs_out() -> None:
    run = _drift()
    run.client("5", [(58, "unknown message type UMS")])
    assert judged("kalshi/drift/01", run)[0] is Verdict.FAIL


def test_drift_01_is_inconclusive_when_the_client_says_nothing_more() -> None:
    assert judged("kalshi/drift/01", _drift())[0] is Verdict.INCONCLUSIVE


# --- the simulator's scripts, over real sockets ----------------------------------------------------

MARKETS = [MarketEntry(ticker=t) for t in ("CONF-ORD", *LISTED_TICKERS)]


@pytest.fixture
def scripted(make_key, start_simulator) -> Iterator[Callable[..., tuple[Simulator, ApiKey, RawClient]]]:
    """``scripted(flags)``: a simulator listing the scripted markets and CONF-ORD (its control port
    open), and a raw client logged on to KalshiNR with the Logon fields ``flags``."""
    clients: list[RawClient] = []

    def start(flags: dict[int, str] | None = None) -> tuple[Simulator, ApiKey, RawClient]:
        key = make_key()
        sim, events = start_simulator([key.account()], markets=MARKETS, control_port=0)
        client = RawClient(sim, key)
        clients.append(client)
        assert client.logon(extra=list((flags or {}).items()))[35] == "A"
        events.wait_for("logged_on", key.key_id)
        return sim, key, client

    yield start
    for client in clients:
        client.close()


def send_order(client: RawClient, cl: str, ticker: str, *, qty: str = "2", price: str = "40", tif: str = "1",
               side: str = "1") -> int:
    return client.send("D", [(11, cl), (55, ticker), (54, side), (38, qty), (40, "2"), (44, price), (59, tif)])


def send_cancel(client: RawClient, cl: str, orig: str, ticker: str) -> int:
    return client.send("F", [(11, cl), (41, orig), (55, ticker), (54, "1")])


def next_app(client: RawClient) -> dict[int, str]:
    """The next message that is not a Heartbeat or TestRequest."""
    while (message := client.read())[35] in ("0", "1"):
        pass
    return message


def reports(client: RawClient, count: int) -> list[dict[int, str]]:
    return [next_app(client) for _ in range(count)]


def open_orders(sim: Simulator, account: str) -> list[object]:
    return sim.exchange.open_orders(account)


@pytest.mark.parametrize(("text", "code"), ORD_04)
def test_conf_reject_markets_reject_with_kalshi_s_text_and_code_and_enter_nothing(scripted, text: str, code: str
                                                                                   ) -> None:
    sim, key, client = scripted()
    send_order(client, "r1", f"CONF-REJECT-{text}")
    reject = next_app(client)
    assert (reject[35], reject[150], reject[39], reject[58], reject[103], reject[11]) == ("8", "8", "8", text, code, "r1")
    assert open_orders(sim, key.key_id) == []


def test_conf_unavailable_rests_the_order_it_answers_exchange_unavailable(scripted) -> None:
    sim, key, client = scripted()
    send_order(client, "u1", "CONF-UNAVAILABLE")
    reject = next_app(client)  # no pending report, no New: the reject alone
    assert (reject[150], reject[37], reject[58], reject[103]) == ("8", "NONE", "EXCHANGE_UNAVAILABLE", "99")
    (resting,) = open_orders(sim, key.key_id)
    assert (resting.cl_ord_id, resting.ticker) == ("u1", "CONF-UNAVAILABLE")
    send_order(client, "u1", "CONF-UNAVAILABLE")  # the retry Kalshi asks for: the same ClOrdID
    again = next_app(client)
    assert (again[150], again[58], again[103]) == ("8", "ORDER_ALREADY_EXISTS", "6")
    send_cancel(client, "u2", "u1", "CONF-UNAVAILABLE")
    assert [m[150] for m in reports(client, 2)] == ["6", "4"]
    assert open_orders(sim, key.key_id) == []


def test_conf_session_reject_answers_with_a_reject_naming_the_order_s_seq_num(scripted) -> None:
    sim, key, client = scripted()
    seq = send_order(client, "s1", "CONF-SESSION-REJECT")
    reject = next_app(client)
    assert (reject[35], reject[45], reject[373], reject[371], reject[372]) == ("3", str(seq), "5", "44", "D")
    assert open_orders(sim, key.key_id) == []


def test_conf_business_reject_answers_380_6(scripted) -> None:
    sim, key, client = scripted()
    seq = send_order(client, "b1", "CONF-BUSINESS-REJECT")
    reject = next_app(client)
    assert (reject[35], reject[45], reject[380], reject[379], reject[372]) == ("j", str(seq), "6", "b1", "D")
    assert open_orders(sim, key.key_id) == []


@pytest.mark.parametrize(("flags", "acks"), [({}, ["A", "F"]), ({21026: "Y"}, ["A", "0", "F"])])
def test_conf_fill_fills_the_order_at_once_as_taker(scripted, flags: dict[int, str], acks: list[str]) -> None:
    sim, key, client = scripted(flags)
    send_order(client, "f1", "CONF-FILL")
    got = reports(client, len(acks))
    assert [m[150] for m in got] == acks  # without 21026 the New is folded into the Trade
    assert (got[-1][39], got[-1][14], got[-1][1057], got[-1][704]) == ("2", "2.00", "Y", "2.00")
    assert open_orders(sim, HOUSE_ACCOUNT) == []  # the house left nothing resting


def test_conf_partial_meets_half_an_ioc_and_starves_a_fok(scripted) -> None:
    sim, key, client = scripted()
    send_order(client, "p1", "CONF-PARTIAL", tif="3")
    pending, trade = reports(client, 2)
    assert (trade[150], trade[32], trade[39], trade[151]) == ("F", "1.00", "4", "0.00")  # its rest canceled
    send_order(client, "p2", "CONF-PARTIAL", tif="4")
    got = reports(client, 3)
    assert [m[150] for m in got] == ["A", "0", "4"] and got[-1][58] == "FOK_INSUFFICIENT_VOLUME"
    assert open_orders(sim, HOUSE_ACCOUNT) == []


def test_conf_fills_fills_twice_the_second_on_shard_1(scripted) -> None:
    sim, key, client = scripted()
    send_order(client, "m1", "CONF-FILLS")
    got = reports(client, 4)
    assert [m[150] for m in got] == ["A", "0", "F", "F"]
    first, second = got[2], got[3]
    assert second[17] == first[17] + ";1" and second[30] == "1" and 30 not in first
    assert (first[14], second[14], second[39]) == ("1.00", "2.00", "2")


@pytest.mark.parametrize(("flags", "code"), [({}, "4"), ({21012: "Y"}, "C")])
def test_conf_expire_ends_the_order_as_an_expiry_and_reopens(scripted, flags: dict[int, str], code: str) -> None:
    sim, key, client = scripted(flags)
    send_order(client, "e1", "CONF-EXPIRE", tif="0")
    got = reports(client, 3)
    assert [m[150] for m in got] == ["A", "0", code] and got[-1][58] == "MARKET_CLOSED"
    send_order(client, "e2", "CONF-ORD", qty="1")  # the market closing touched no other
    assert [m[150] for m in reports(client, 2)] == ["A", "0"]


def test_conf_race_fills_the_order_while_its_cancel_is_pending(scripted) -> None:
    sim, key, client = scripted()
    send_order(client, "x1", "CONF-RACE")
    reports(client, 2)
    send_cancel(client, "x2", "x1", "CONF-RACE")
    pending, fill, refused = reports(client, 3)
    assert (pending[150], pending[11], pending[41]) == ("6", "x2", "x1")
    assert (fill[150], fill[39], fill[11]) == ("F", "2", "x1")
    assert (refused[35], refused[102], refused[434], refused[39]) == ("9", "0", "1", "2")


def test_conf_cxl_reject_refuses_cancels_and_replaces_in_turn(scripted) -> None:
    sim, key, client = scripted()
    send_order(client, "c1", "CONF-CXL-REJECT")
    reports(client, 2)
    for n in range(6):
        send_cancel(client, f"c1-{n}", "c1", "CONF-CXL-REJECT")
    refused = reports(client, 6)
    assert [(m[35], m[102], m[434]) for m in refused] == [("9", r, "1") for r in ("0", "1", "2", "6", "18", "99")]
    client.send("G", [(11, "c1-g"), (41, "c1"), (55, "CONF-CXL-REJECT"), (54, "1"), (38, "3"), (40, "2"), (44, "41")])
    replace = next_app(client)
    assert (replace[35], replace[102], replace[434]) == ("9", "0", "2")  # the turn starts again
    (order,) = open_orders(sim, key.key_id)
    assert (order.cl_ord_id, order.quantity, order.leaves_qty) == ("c1", 2, 2)  # unchanged


def test_conf_drift_adds_unknown_fields_and_one_unsolicited_settlement_report(scripted) -> None:
    sim, key, client = scripted()
    send_order(client, "d1", "CONF-DRIFT")
    pending, new, settlement = reports(client, 3)
    for report in (pending, new):
        assert {30, 715, 1057, 21030, 21031, UNDEFINED_TAG} <= set(report)
    assert (settlement[35], settlement[55], settlement[893]) == ("UMS", "CONF-DRIFT-SETTLED", "Y")
    send_cancel(client, "d2", "d1", "CONF-DRIFT")
    pending_cancel, canceled = reports(client, 2)  # a second request: no second settlement report
    assert (canceled[150], canceled[UNDEFINED_TAG]) == ("4", "conformance")


# --- scripts armed for a key's next order ----------------------------------------------------------


def test_reject_next_order_rejects_one_order_then_orders_go_through(scripted) -> None:
    sim, key, client = scripted()
    sim.faults.reject_next_order(key.key_id, "INSUFFICIENT_BALANCE")
    send_order(client, "a1", "CONF-ORD")
    reject = next_app(client)
    assert (reject[150], reject[58], reject[103]) == ("8", "INSUFFICIENT_BALANCE", "3")
    send_order(client, "a2", "CONF-ORD")
    assert [m[150] for m in reports(client, 2)] == ["A", "0"]


def test_armed_scripts_act_in_turn_on_any_market(scripted) -> None:
    sim, key, client = scripted()
    sim.faults.unavailable_next_order(key.key_id)
    sim.faults.session_reject_next_order(key.key_id)
    sim.faults.business_reject_next_order(key.key_id)
    sim.faults.drift_next_order(key.key_id)
    send_order(client, "a1", "CONF-ORD")
    assert next_app(client)[58] == "EXCHANGE_UNAVAILABLE"
    seq = send_order(client, "a2", "CONF-ORD")
    reject = next_app(client)
    assert (reject[35], reject[45], reject[373]) == ("3", str(seq), "5")
    send_order(client, "a3", "CONF-ORD")
    assert next_app(client)[380] == "6"
    send_order(client, "a4", "CONF-ORD")
    drifted = reports(client, 3)
    assert UNDEFINED_TAG in drifted[0] and drifted[2][35] == "UMS"
    assert [o.cl_ord_id for o in open_orders(sim, key.key_id)] == ["a1", "a4"]


def test_clear_disarms_the_scripts_and_bad_arguments_are_refused(scripted) -> None:
    sim, key, client = scripted()
    sim.faults.reject_next_order(key.key_id, "INVALID_ORDER")
    sim.faults.clear(key.key_id)
    send_order(client, "a1", "CONF-ORD")
    assert [m[150] for m in reports(client, 2)] == ["A", "0"]
    with pytest.raises(FaultError, match="SOH"):
        sim.faults.reject_next_order(key.key_id, "BAD\x01TEXT")
    with pytest.raises(FaultError, match="unknown API key"):
        sim.faults.unavailable_next_order("nobody")


def test_scripts_are_armed_through_the_control_port(scripted) -> None:
    sim, key, client = scripted()
    with socket.create_connection(("127.0.0.1", sim.control_port), timeout=5) as control:
        control.sendall(json.dumps({"fault": "reject_next_order", "key_id": key.key_id, "text": "TRADING_PAUSED"})
                        .encode() + b"\n")
        assert json.loads(control.makefile().readline()) == {"ok": True}
    send_order(client, "a1", "CONF-ORD")
    reject = next_app(client)
    assert (reject[58], reject[103]) == ("TRADING_PAUSED", "2")


def test_enter_order_reaches_the_account_s_listener(make_key, start_simulator) -> None:
    trader = make_key()
    watcher = make_key()
    sim, events = start_simulator([trader.account(), watcher.account(of=trader)], markets=MARKETS)
    listener = RawClient(sim, watcher)
    try:
        assert listener.logon(extra=[(20126, "Y"), (21011, "Y")])[35] == "A"
        events.wait_for("logged_on", watcher.key_id)
        entered = sim.admin.enter_order(trader.key_id, "CONF-ORD", "buy_yes", "0.05")
        report = next_app(listener)
        assert (report[35], report[150], report[37], report[55]) == ("8", "0", entered.order_id, "CONF-ORD")
        assert [o.order_id for o in open_orders(sim, trader.key_id)] == [entered.order_id]
    finally:
        listener.close()


# --- end to end: the mandatory scenarios against the engine's client ---------------------------------

MANDATORY = ("kalshi/ord/01", "kalshi/ord/02", "kalshi/ord/03", "kalshi/ord/04", "kalshi/ord/05", "kalshi/ord/06",
             "kalshi/cxl/01", "kalshi/cxl/02", "kalshi/rl/01", "kalshi/drift/01")
@pytest.fixture(scope="module")
def engine_run(tmp_path_factory) -> dict[str, object]:
    outcome = asyncio.run(run(load_library(), Profile(features=frozenset({"instructions", "state"})),
                              f"{sys.executable} -m conformance.clients.engine", only=list(MANDATORY), jobs=2,
                              work_dir=tmp_path_factory.mktemp("conform")))
    return {r.scenario: r for r in outcome.results}


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("scenario_id", MANDATORY)
def test_the_engine_s_client_passes_the_mandatory_order_scenarios(engine_run, scenario_id: str) -> None:
    result = engine_run[scenario_id]
    assert result.verdict is Verdict.PASS, f"{scenario_id}: {result.verdict.value}: {result.reason} {result.findings}"
