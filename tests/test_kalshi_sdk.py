"""Every endpoint of the simulator's REST API, read with Kalshi's official Python SDK
(kalshi-python-async, in a venv of its own: tests/helpers/kalshi_sdk.py), signed with a key the
simulator knows: each answer must parse into the SDK's model, with the values the exchange holds.

Kalshi generates the SDK from its OpenAPI document, so a field the simulator leaves out that Kalshi
requires, or a value outside one of Kalshi's enums, fails here. The list of endpoints comes from the
simulator's own OpenAPI document: one added without a call below fails the test."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal as D

import httpx
import pytest

from simulator.config import HOUSE_ACCOUNT, MarketEntry, SeedOrder
from simulator.rest.api import API_PREFIX
from tests.helpers.kalshi_sdk import run_probe, sdk_python

A, B = "KXSDK-26DEC31-A", "KXSDK-26DEC31-B"
EVENT = "KXSDK-26DEC31"
YEAR = timedelta(days=365)  # simulator/rest/format.py SCHEDULED_LIFE: a market's scheduled close

# (name, REST path as the simulator routes it, SDK method, its arguments)
CALLS = [
    ("balance", "/portfolio/balance", "get_balance", {}),
    ("positions", "/portfolio/positions", "get_positions", {}),
    ("settled_positions", "/portfolio/positions", "get_positions", {"settlement_status": "settled"}),
    ("orders", "/portfolio/orders", "get_orders", {}),
    ("order", "/portfolio/orders/{order_id}", "get_order", {"order_id": "O1"}),
    ("fills", "/portfolio/fills", "get_fills", {}),
    ("settlements", "/portfolio/settlements", "get_settlements", {}),
    ("exchange_status", "/exchange/status", "get_exchange_status", {}),
    ("exchange_schedule", "/exchange/schedule", "get_exchange_schedule", {}),
    ("user_data_timestamp", "/exchange/user_data_timestamp", "get_user_data_timestamp", {}),
    ("markets", "/markets", "get_markets", {}),
    ("market", "/markets/{ticker}", "get_market", {"ticker": A}),
]


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


@pytest.mark.slow  # the first run on a machine makes the SDK's venv (about a minute)
@pytest.mark.timeout(600)
def test_every_endpoint_parses_into_kalshis_sdk_models(start_simulator, make_key) -> None:
    python = sdk_python()
    key = make_key()
    seeds = [
        SeedOrder(ticker=A, side="buy_yes", price=D("0.40"), quantity=D(10), account=key.key_id),  # O1
        SeedOrder(ticker=A, side="buy_yes", price=D("0.40"), quantity=D(2), account=HOUSE_ACCOUNT),  # O2
        SeedOrder(ticker=A, side="sell_yes", price=D("0.45"), quantity=D(5), account=HOUSE_ACCOUNT),  # O3
        SeedOrder(ticker=B, side="sell_yes", price=D("0.705"), quantity=D(4), account=key.key_id),  # O4: buys NO at 0.295
    ]
    started = datetime.now(timezone.utc)
    sim, _ = start_simulator([key.account()], listeners={"KalshiNR": 0}, rest_port=0, seed_orders=seeds,
                             markets=[MarketEntry(ticker=A), MarketEntry(ticker=B, tick=D("0.001"))])
    listed_by = datetime.now(timezone.utc)
    sim.admin.add_fill("O1", D(3))  # I hold 3 YES at 0.40
    sim.admin.add_fill("O4", D(4))  # and 4 NO at 0.295
    sim.admin.settle_market(B, "no")  # which pay $1 each

    served = {path.removeprefix(API_PREFIX) for path in httpx.get(f"{sim.rest_url}/openapi.json", timeout=10).json()["paths"]
              if path.startswith(API_PREFIX)}
    assert served == {path for _, path, _, _ in CALLS}, "an endpoint the SDK test does not call, or calls in vain"

    asked = datetime.now(timezone.utc)
    plan = {"host": sim.rest_url, "key_id": key.key_id, "private_key_file": str(key.private_key_file),
            "calls": [{"name": name, "method": method, "kwargs": kwargs} for name, _, method, kwargs in CALLS]}
    answers = run_probe(python, plan)
    errors = {name: a["error"] for name, a in answers.items() if "error" in a}
    assert not errors, errors

    def body(name: str, model: str) -> dict:
        assert answers[name]["model"].rsplit(".", 1)[1] == model, answers[name]["model"]
        return answers[name]["body"]

    balance = body("balance", "GetBalanceResponse")
    # 10000 - 10 x 0.40 (3 bought, 7 reserved) - 4 x 0.295 + 4 x $1 paid
    assert (balance["balance_dollars"], balance["balance"]) == ("9998.8200", 999882)
    assert balance["portfolio_value"] == 120 and balance["updated_ts"] >= int(started.timestamp())

    positions = body("positions", "GetPositionsResponse")
    [a] = positions["market_positions"]
    assert (a["ticker"], a["position_fp"], a["market_exposure_dollars"], a["total_traded_dollars"]) == (A, "3.00", "1.2000", "1.2000")
    assert (a["realized_pnl_dollars"], a["fees_paid_dollars"], a["exchange_index"]) == ("0.0000", "0.0000", 0)
    assert at(a["last_updated_ts"]) >= started
    assert [e["event_ticker"] for e in positions["event_positions"]] == [EVENT]
    [b] = body("settled_positions", "GetPositionsResponse")["market_positions"]
    assert (b["ticker"], b["position_fp"], b["realized_pnl_dollars"]) == (B, "0.00", "2.8200")  # 4 - 1.18

    orders = body("orders", "GetOrdersResponse")
    assert [o["order_id"] for o in orders["orders"]] == ["O4", "O1"] and orders["cursor"] == ""
    o4 = orders["orders"][0]
    assert (o4["ticker"], o4["status"], o4["outcome_side"], o4["book_side"], o4["type"]) == (B, "executed", "no", "ask", "limit")
    assert (o4["yes_price_dollars"], o4["no_price_dollars"], o4["fill_count_fp"], o4["remaining_count_fp"]) == (
        "0.7050", "0.2950", "4.00", "0.00")
    o1 = body("order", "GetOrderResponse")["order"]
    assert o1 == orders["orders"][1]
    assert (o1["client_order_id"], o1["status"], o1["outcome_side"], o1["book_side"], o1["self_trade_prevention_type"]) == (
        "seed-0", "resting", "yes", "bid", "taker_at_cross")
    assert (o1["initial_count_fp"], o1["fill_count_fp"], o1["remaining_count_fp"], o1["maker_fill_cost_dollars"]) == (
        "10.00", "3.00", "7.00", "1.2000")
    assert at(o1["created_time"]) <= at(o1["last_update_time"])

    fills = body("fills", "GetFillsResponse")["fills"]
    assert [(f["order_id"], f["ticker"], f["count_fp"], f["yes_price_dollars"], f["outcome_side"], f["is_taker"])
            for f in fills] == [("O4", B, "4.00", "0.7050", "no", False), ("O1", A, "3.00", "0.4000", "yes", False)]
    assert all(f["fill_id"] == f["trade_id"] and f["fee_cost"] == "0.0000" for f in fills)

    [settlement] = body("settlements", "GetSettlementsResponse")["settlements"]
    assert (settlement["ticker"], settlement["event_ticker"], settlement["market_result"]) == (B, EVENT, "no")
    assert (settlement["yes_count_fp"], settlement["no_count_fp"], settlement["no_total_cost_dollars"]) == ("0.00", "4.00", "1.1800")
    assert (settlement["revenue"], settlement["value"]) == (400, 0)

    status = body("exchange_status", "ExchangeStatus")
    assert (status["exchange_active"], status["trading_active"]) == (True, True)
    assert status["exchange_index_statuses"][0]["exchange_index"] == 0
    schedule = body("exchange_schedule", "GetExchangeScheduleResponse")["schedule"]
    assert schedule["standard_hours"][0]["monday"] == [{"open_time": "00:00", "close_time": "23:59"}]
    as_of = at(body("user_data_timestamp", "GetUserDataTimestampResponse")["as_of_time"])
    assert asked <= as_of <= datetime.now(timezone.utc)  # no rest_lag: the moment it was asked

    markets = {m["ticker"]: m for m in body("markets", "GetMarketsResponse")["markets"]}
    assert list(markets) == [A, B]
    a = body("market", "GetMarketResponse")["market"]
    assert a == markets[A]
    assert (a["event_ticker"], a["market_type"], a["status"], a["result"]) == (EVENT, "binary", "active", "")
    # Best bid 0.40: my 7 left and the house's 2; best offer the house's 5 at 0.45.
    assert (a["yes_bid_dollars"], a["yes_bid_size_fp"], a["yes_ask_dollars"], a["yes_ask_size_fp"]) == ("0.4000", "9.00", "0.4500", "5.00")
    assert (a["no_bid_dollars"], a["no_ask_dollars"], a["last_price_dollars"]) == ("0.5500", "0.6000", "0.4000")
    assert (a["volume_fp"], a["volume_24h_fp"], a["open_interest_fp"], a["notional_value_dollars"]) == ("3.00", "3.00", "3.00", "1.0000")
    assert (a["previous_price_dollars"], a["previous_yes_bid_dollars"], a["previous_yes_ask_dollars"]) == ("0.0000",) * 3
    assert (a["settlement_value_dollars"], a["settlement_ts"], a["settlement_bounds_type"], a["can_close_early"]) == (
        None, None, "default", True)
    assert started <= at(a["created_time"]) == at(a["open_time"]) <= listed_by
    assert at(a["close_time"]) == at(a["latest_expiration_time"]) == at(a["open_time"]) + YEAR
    assert a["price_level_structure"] == "linear_cent"
    assert a["price_ranges"] == [{"start": "0.0000", "end": "1.0000", "step": "0.0100"}]
    assert (a["yes_sub_title"], a["exchange_index"], a["is_provisional"]) == (A, 0, False)
    b = markets[B]
    assert (b["status"], b["result"], b["settlement_value_dollars"], b["last_price_dollars"]) == ("finalized", "no", "0.0000", "0.7050")
    assert (b["yes_bid_dollars"], b["yes_bid_size_fp"], b["yes_ask_dollars"], b["open_interest_fp"]) == ("0.0000", "0.00", "1.0000", "0.00")
    assert at(b["settlement_ts"]) == at(b["close_time"]) == at(b["latest_expiration_time"]) >= at(b["open_time"])
    assert b["price_level_structure"] == "deci_cent" and b["price_ranges"][0]["step"] == "0.0010"
