"""The simulator's REST API (Kalshi Trade API v2 portfolio subset): real HTTP over loopback to a
started simulator, requests signed here with RSA-PSS independently of the server's code; plus the
pure pieces it is built from (history, paging, token bucket, staleness, the new exchange operations).
"""

from __future__ import annotations

import base64
import socket
import threading
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal as D

import httpx
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from pydantic import ValidationError

from conformance.harness import ApiKey, session_to
from fixengine.engine import Engine
from fixengine.orders.book import OrderAccepted, OrderCanceled, OrderFilled, Status
from fixengine.orders.requests import NewOrder
from fixengine.kalshi.prices import Action, Contract, WireSide
from fixengine.kalshi.signing import load_private_key
from simulator.config import HOUSE_ACCOUNT, AccountConfig, MarketEntry, ReadBudget, SeedOrder, SimulatorConfig
from simulator.exchange.history import PositionRecord, after_fill, after_settlement
from simulator.exchange.matching import (
    AccountState,
    Canceled,
    Exchange,
    Expired,
    MarketConfig,
    MarketSettled,
    OrderSpec,
    Rejected,
    Settled,
    UnknownError,
)
from simulator.rest.format import cents, count, dollars
from simulator.rest.limits import TokenBucket
from simulator.rest.paging import page
from simulator.rest.state import Snapshot, Snapshots
from tests.helpers.sessions import engine_config

API = "/trade-api/v2"
A, B = "KXA-26JAN01-T1", "KXB-26JAN01-T2"
NOW = datetime(2026, 3, 2, 15, 0, tzinfo=timezone.utc)


# --- a signing client (independent of fixengine.signing) -----------------------------------------


def signed_headers(key: ApiKey, method: str, path: str, timestamp_ms: int | None = None) -> dict[str, str]:
    """Kalshi's three headers: RSA-PSS(SHA-256, MGF1-SHA-256, salt 32) over ts + METHOD + path."""
    ts = int(time.time() * 1000) if timestamp_ms is None else timestamp_ms
    message = f"{ts}{method}{path.split('?', 1)[0]}".encode()
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
    signature = load_private_key(file=key.private_key_file).sign(message, pss, hashes.SHA256())
    return {"KALSHI-ACCESS-KEY": key.key_id, "KALSHI-ACCESS-TIMESTAMP": str(ts),
            "KALSHI-ACCESS-SIGNATURE": base64.b64encode(signature).decode()}


class Rest:
    """httpx over loopback to a simulator's REST port, signing as ``key``."""

    def __init__(self, port: int, key: ApiKey):
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)
        self.key = key

    def get(self, path: str, params: dict | None = None, *, key: ApiKey | None = None, **headers: str) -> httpx.Response:
        full = API + path
        return self.http.get(full, params=params, headers={**signed_headers(key or self.key, "GET", full), **headers})

    def public(self, path: str, params: dict | None = None) -> httpx.Response:
        return self.http.get(API + path, params=params)

    def ok(self, path: str, params: dict | None = None, **kw) -> dict:
        response = self.get(path, params, **kw)
        assert response.status_code == 200, response.text
        return response.json()

    def admin(self, path: str, body: dict | None = None) -> httpx.Response:
        return self.http.post("/admin" + path, json=body)

    def close(self) -> None:
        self.http.close()


@pytest.fixture
def rest_sim(start_simulator, make_key):
    """start(seeds=..., **settings) -> (sim, Rest, key, events): one account, REST on a free port."""
    clients: list[Rest] = []

    def start(seeds: list[tuple] = (), account: AccountConfig | None = None, key: ApiKey | None = None, **settings):
        key = key or make_key()
        account = account or key.account()
        seed_orders = [SeedOrder(ticker=t, side=s, price=D(p), quantity=D(q), account=key.key_id if who == "me" else who)
                       for t, s, p, q, who in seeds]
        settings.setdefault("markets", [MarketEntry(ticker=A), MarketEntry(ticker=B, tick=D("0.001"))])
        settings.setdefault("listeners", {"KalshiNR": 0})
        sim, events = start_simulator([account, *settings.pop("more_accounts", [])], rest_port=0,
                                      seed_orders=seed_orders, **settings)
        client = Rest(sim.rest_port, key)
        clients.append(client)
        return sim, client, key, events

    yield start
    for client in clients:
        client.close()


def me(ticker: str, side: str, price: str, qty: str) -> tuple:
    return (ticker, side, price, qty, "me")


def house(ticker: str, side: str, price: str, qty: str) -> tuple:
    return (ticker, side, price, qty, HOUSE_ACCOUNT)


# --- config ---------------------------------------------------------------------------------------


def test_config_rest_fields_are_checked() -> None:
    assert SimulatorConfig().rest_port is None and SimulatorConfig().rest_lag == 0
    for bad, field in (({"rest_port": 70000}, "rest_port"), ({"rest_lag": -1}, "rest_lag"),
                       ({"rest_read_budgets": {"gold": {"refill_rate": 1, "capacity": 1}}}, "rest_read_budgets"),
                       ({"rest_read_budgets": {"basic": {"refill_rate": 0, "capacity": 1}}}, "refill_rate")):
        with pytest.raises(ValidationError, match=field):
            SimulatorConfig(**bad)
    tiny = SimulatorConfig(rest_read_budgets={"basic": {"refill_rate": 1, "capacity": 20}})
    assert tiny.read_budget("basic") == ReadBudget(refill_rate=1, capacity=20)
    assert tiny.read_budget("premier") == ReadBudget(refill_rate=1000, capacity=1000)  # Kalshi's, §10.1


# --- server lifecycle -----------------------------------------------------------------------------


def test_rest_serves_on_a_free_port_and_stops_cleanly(rest_sim) -> None:
    sim, rest, _, events = rest_sim()
    port = sim.rest_port
    assert sim.rest_url == f"http://127.0.0.1:{port}/trade-api/v2"
    assert f"; REST {sim.rest_url}" in events.wait_for("listening").detail
    assert rest.public("/exchange/status").json()["exchange_active"] is True  # a keep-alive connection stays open
    started = time.monotonic()
    sim.stop()
    assert time.monotonic() - started < 5
    assert sim.rest_port is None and sim.rest_url is None
    assert not [t for t in threading.enumerate() if t.name == "simulator-rest"]
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{port}/trade-api/v2/exchange/status", timeout=2)
    with socket.socket() as s:  # the port is free again
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))


def test_rest_port_in_use_fails_start_and_leaves_nothing_running(start_simulator, make_key) -> None:
    before = set(threading.enumerate())
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(OSError):
            start_simulator([make_key().account()], listeners={"KalshiNR": 0}, rest_port=taken.getsockname()[1])
    assert not [t for t in set(threading.enumerate()) - before if t.is_alive()]


def test_no_rest_port_no_rest_api(start_simulator, make_key) -> None:
    sim, events = start_simulator([make_key().account()], listeners={"KalshiNR": 0})
    assert sim.rest_port is None and sim.rest_url is None
    assert "REST" not in events.wait_for("listening").detail


def test_openapi_document_is_served(rest_sim) -> None:
    _, rest, _, _ = rest_sim()
    doc = rest.public("/openapi.json").json()
    for path in ("/portfolio/balance", "/portfolio/positions", "/portfolio/orders", "/portfolio/orders/{order_id}",
                 "/portfolio/fills", "/portfolio/settlements", "/exchange/status", "/exchange/user_data_timestamp",
                 "/markets", "/markets/{ticker}"):
        assert API + path in doc["paths"], path
    assert "/admin/orders/{order_id}/fill" in doc["paths"]
    assert {"KALSHI-ACCESS-KEY", "KALSHI-ACCESS-SIGNATURE"} <= {s["name"] for s in doc["components"]["securitySchemes"].values()}
    assert "position_fp" in doc["components"]["schemas"]["MarketPosition"]["properties"]


# --- auth -----------------------------------------------------------------------------------------


def test_signed_requests_pass_and_bad_ones_get_kalshis_401(rest_sim, make_key) -> None:
    sim, rest, key, _ = rest_sim(sending_time_tolerance=5)
    path = API + "/portfolio/balance"
    assert rest.get("/portfolio/balance").status_code == 200
    # The query is not signed.
    assert rest.get("/portfolio/orders", {"limit": 5, "status": "resting"}).status_code == 200

    def refused(headers: dict[str, str]) -> dict:
        response = rest.http.get(path, headers=headers)
        assert response.status_code == 401, response.text
        return response.json()["error"]

    good = signed_headers(key, "GET", path)
    for missing, code in (("KALSHI-ACCESS-KEY", "api_key_is_missing"), ("KALSHI-ACCESS-TIMESTAMP", "timestamp_is_missing"),
                          ("KALSHI-ACCESS-SIGNATURE", "signature_is_missing")):
        error = refused({k: v for k, v in good.items() if k != missing})
        assert error["code"] == code and missing in error["message"]
    error = refused({**signed_headers(make_key(), "GET", path)})  # a key the simulator does not know
    assert (error["code"], error["details"]) == ("authentication_error", "NOT_FOUND")
    error = refused(signed_headers(key, "GET", API + "/portfolio/fills"))  # signed another path
    assert (error["code"], error["details"]) == ("authentication_error", "INCORRECT_API_KEY_SIGNATURE")
    error = refused({**good, "KALSHI-ACCESS-SIGNATURE": signed_headers(key, "POST", path)["KALSHI-ACCESS-SIGNATURE"]})
    assert error["details"] == "INCORRECT_API_KEY_SIGNATURE"
    stale = int(time.time() * 1000) - 60_000
    error = refused(signed_headers(key, "GET", path, stale))
    assert error["code"] == "header_timestamp_expired" and "tolerance 5s" in error["message"]
    error = refused({**good, "KALSHI-ACCESS-TIMESTAMP": "yesterday"})
    assert "milliseconds" in error["message"]
    # Public endpoints need no signature.
    for public in ("/exchange/status", "/markets", f"/markets/{A}", "/exchange/user_data_timestamp"):
        assert rest.public(public).status_code == 200, public


# --- rate limit -----------------------------------------------------------------------------------


def test_empty_read_bucket_gets_429_without_retry_after(rest_sim, make_key) -> None:
    other = make_key()
    sim, rest, key, _ = rest_sim(
        seeds=[me(A, "buy_yes", "0.40", "1")],
        rest_read_budgets={"premier": {"refill_rate": 0.001, "capacity": 25}}, more_accounts=[other.account("prime")],
    )
    assert rest.get("/portfolio/balance").status_code == 200  # 10 tokens: 15 left
    assert rest.get("/portfolio/fills").status_code == 200  # 5 left
    assert rest.get("/portfolio/orders/O1").status_code == 200  # a single order costs 2: 3 left
    assert rest.get("/portfolio/orders/O1").status_code == 200  # 1 left
    limited = rest.get("/portfolio/balance")
    assert limited.status_code == 429 and limited.json() == {"error": "too many requests"}
    assert "retry-after" not in limited.headers and not any(h.startswith("x-ratelimit") for h in limited.headers)
    assert rest.get("/portfolio/balance", key=other).status_code == 200  # its own bucket (prime: Kalshi's size)
    assert rest.public("/markets").status_code == 200  # public reads are not metered per key


# --- formats --------------------------------------------------------------------------------------


def test_balance_orders_fills_positions_in_kalshis_formats(rest_sim, make_key) -> None:
    key = make_key()
    account = AccountConfig(api_key_id=key.key_id, public_key_file=key.public_key_file, balance=D("100.0057"))
    sim, rest, _, _ = rest_sim(seeds=[me(A, "buy_yes", "0.40", "10"), me(B, "sell_yes", "0.705", "5")],
                               account=account, key=key)
    assert sim.admin.add_fill("O1", D("3")).cum_qty == D(3)
    assert sim.admin.add_fill("O2", "5").leaves_qty == 0

    balance = rest.ok("/portfolio/balance")
    # 100.0057 - 10 x 0.40 - 5 x (1 - 0.705) reserved or spent; cents truncate the sub-cent part.
    assert balance["balance_dollars"] == "94.5307" and balance["balance"] == 9453
    # Positions at their last trade: 3 YES at 0.40 and 5 NO at 1 - 0.705.
    assert balance["portfolio_value"] == 267 and balance["updated_ts"] >= int(time.time()) - 60

    orders = {o["order_id"]: o for o in rest.ok("/portfolio/orders")["orders"]}
    yes = orders["O1"]
    assert {k: yes[k] for k in ("client_order_id", "ticker", "outcome_side", "book_side", "type", "status")} == {
        "client_order_id": "seed-0", "ticker": A, "outcome_side": "yes", "book_side": "bid", "type": "limit",
        "status": "resting"}
    assert (yes["yes_price_dollars"], yes["no_price_dollars"]) == ("0.4000", "0.6000")
    assert (yes["initial_count_fp"], yes["fill_count_fp"], yes["remaining_count_fp"]) == ("10.00", "3.00", "7.00")
    assert (yes["maker_fill_cost_dollars"], yes["taker_fill_cost_dollars"], yes["maker_fees_dollars"]) == ("1.2000", "0.0000", "0.0000")
    assert datetime.fromisoformat(yes["created_time"]) <= datetime.fromisoformat(yes["last_update_time"])
    no = orders["O2"]
    assert (no["outcome_side"], no["book_side"], no["status"], no["remaining_count_fp"]) == ("no", "ask", "executed", "0.00")
    assert (no["yes_price_dollars"], no["no_price_dollars"]) == ("0.7050", "0.2950")
    assert rest.ok("/portfolio/orders/O1")["order"] == yes

    fills = rest.ok("/portfolio/fills")["fills"]
    assert [f["order_id"] for f in fills] == ["O2", "O1"]  # newest first
    fill = fills[1]
    assert fill["fill_id"] == fill["trade_id"] and fill["ticker"] == fill["market_ticker"] == A
    assert (fill["count_fp"], fill["yes_price_dollars"], fill["is_taker"], fill["fee_cost"]) == ("3.00", "0.4000", False, "0.0000")
    assert (fill["outcome_side"], fill["book_side"], fill["purchased_side"]) == ("yes", "bid", "yes")

    positions = rest.ok("/portfolio/positions")
    by_ticker = {p["ticker"]: p for p in positions["market_positions"]}
    assert by_ticker[A]["position_fp"] == "3.00" and by_ticker[A]["market_exposure_dollars"] == "1.2000"
    assert by_ticker[B]["position_fp"] == "-5.00" and by_ticker[B]["market_exposure_dollars"] == "1.4750"
    assert by_ticker[B]["total_traded_dollars"] == "1.4750" and by_ticker[B]["realized_pnl_dollars"] == "0.0000"
    assert {e["event_ticker"] for e in positions["event_positions"]} == {"KXA-26JAN01", "KXB-26JAN01"}
    assert positions["cursor"] == ""


def test_markets_and_exchange_endpoints(rest_sim) -> None:
    sim, rest, _, _ = rest_sim(seeds=[house(A, "buy_yes", "0.41", "5"), house(A, "sell_yes", "0.45", "5")],
                               markets=[MarketEntry(ticker=A), MarketEntry(ticker=B, tick=D("0.001")),
                                        MarketEntry(ticker="KXC-1", status="paused")])
    markets = {m["ticker"]: m for m in rest.public("/markets").json()["markets"]}
    assert list(markets) == sorted(markets)
    a = markets[A]
    assert (a["status"], a["yes_bid_dollars"], a["yes_ask_dollars"], a["no_bid_dollars"], a["no_ask_dollars"]) == (
        "active", "0.4100", "0.4500", "0.5500", "0.5900")
    assert a["price_level_structure"] == "linear_cent"
    assert a["price_ranges"] == [{"start": "0.0000", "end": "1.0000", "step": "0.0100"}]
    assert markets[B]["price_level_structure"] == "deci_cent" and markets[B]["price_ranges"][0]["step"] == "0.0010"
    assert markets["KXC-1"]["status"] == "inactive"
    assert [m["ticker"] for m in rest.public("/markets", {"status": "paused"}).json()["markets"]] == ["KXC-1"]
    assert rest.public(f"/markets/{B}").json()["market"]["ticker"] == B
    missing = rest.public("/markets/NOPE")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    status = rest.public("/exchange/status").json()
    assert status["trading_active"] is True and status["exchange_index_statuses"][0]["exchange_index"] == 0


# --- lists: filters, pagination, errors --------------------------------------------------------


def test_orders_paginate_newest_first_to_an_empty_cursor(rest_sim, make_key) -> None:
    other = make_key()
    seeds = [me(A, "buy_yes", f"0.{i:02d}", "1") for i in range(1, 26)]
    sim, rest, _, _ = rest_sim(seeds=seeds, more_accounts=[other.account()])
    sim.admin.cancel_order("O1")
    sim.admin.add_fill("O2", D(1))

    seen, cursor, pages = [], None, 0
    while True:
        body = rest.ok("/portfolio/orders", {"limit": 10, **({"cursor": cursor} if cursor else {})})
        seen += [o["order_id"] for o in body["orders"]]
        pages += 1
        cursor = body["cursor"]
        if cursor == "":
            break
    assert pages == 3 and seen == [f"O{i}" for i in range(25, 0, -1)]
    assert [o["order_id"] for o in rest.ok("/portfolio/orders", {"status": "canceled"})["orders"]] == ["O1"]
    assert [o["order_id"] for o in rest.ok("/portfolio/orders", {"status": "executed"})["orders"]] == ["O2"]
    assert len(rest.ok("/portfolio/orders", {"status": "resting", "limit": 1000})["orders"]) == 23
    assert rest.ok("/portfolio/orders", {"ticker": B})["orders"] == []
    assert rest.ok("/portfolio/orders", {"min_ts": int(time.time()) + 3600})["orders"] == []
    assert len(rest.ok("/portfolio/orders", {"min_ts": int(time.time()) - 3600})["orders"]) == 25
    assert len(rest.ok("/portfolio/orders", {"cursor": "garbage!"})["orders"]) == 25  # accepted, first page
    # Another account sees none of them.
    assert rest.ok("/portfolio/orders", key=other)["orders"] == []
    assert rest.get("/portfolio/orders/O3", key=other).status_code == 404
    unknown = rest.get("/portfolio/orders/O999")
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "not_found"


def test_bad_query_parameters_get_a_bare_400(rest_sim) -> None:
    _, rest, _, _ = rest_sim()
    for path, params, field in (("/portfolio/orders", {"limit": 1001}, "limit"), ("/portfolio/fills", {"limit": 0}, "limit"),
                                ("/portfolio/settlements", {"limit": "ten"}, "limit"),
                                ("/portfolio/orders", {"status": "open"}, "status"),
                                ("/portfolio/positions", {"count_filter": "volume"}, "count_filter"),
                                ("/portfolio/fills", {"min_ts": "noon"}, "min_ts")):
        response = rest.get(path, params)
        assert response.status_code == 400, (path, params, response.text)
        body = response.json()
        assert list(body) == ["msg"] and body["msg"].startswith(field), body
    assert rest.public("/markets", {"limit": 1001}).json()["msg"].startswith("limit")


def test_fills_filter_by_order_and_page(rest_sim) -> None:
    sim, rest, _, _ = rest_sim(seeds=[me(A, "buy_yes", "0.40", "10"), me(B, "buy_yes", "0.300", "10")])
    for _ in range(3):
        sim.admin.add_fill("O1", D(1))
    sim.admin.add_fill("O2", D("2.5"))
    assert len(rest.ok("/portfolio/fills", {"order_id": "O1"})["fills"]) == 3
    assert [f["count_fp"] for f in rest.ok("/portfolio/fills", {"ticker": B})["fills"]] == ["2.50"]
    first = rest.ok("/portfolio/fills", {"limit": 3})
    rest_page = rest.ok("/portfolio/fills", {"limit": 3, "cursor": first["cursor"]})
    assert len(first["fills"]) == 3 and len(rest_page["fills"]) == 1 and rest_page["cursor"] == ""
    assert {f["fill_id"] for f in first["fills"]}.isdisjoint(f["fill_id"] for f in rest_page["fills"])
    assert rest.ok("/portfolio/positions", {"count_filter": "position", "ticker": A})["market_positions"][0]["position_fp"] == "3.00"


# --- admin, settlement, staleness -----------------------------------------------------------------


def test_settlement_pays_winners_and_shows_in_settlements_balance_and_positions(rest_sim) -> None:
    # My bid rests; the house's offer crosses 4 of it at 0.40: I hold 4 YES for $1.60.
    sim, rest, key, _ = rest_sim(seeds=[me(A, "buy_yes", "0.40", "10"), house(A, "sell_yes", "0.40", "4")])
    before = rest.ok("/portfolio/balance")["balance_dollars"]
    assert before == "9996.0000"  # 10000 - 4 x 0.40 spent - 6 x 0.40 reserved
    response = rest.admin(f"/markets/{A}/settle", {"result": "yes"})
    assert response.status_code == 200, response.text
    assert response.json()["market"]["status"] == "finalized" and response.json()["market"]["result"] == "yes"
    assert rest.admin(f"/markets/{A}/settle", {"result": "no"}).status_code == 400  # settled once
    assert rest.admin("/markets/NOPE/settle", {"result": "no"}).status_code == 404

    settlement, = rest.ok("/portfolio/settlements")["settlements"]
    assert (settlement["ticker"], settlement["market_result"], settlement["revenue"], settlement["value"]) == (A, "yes", 400, 100)
    assert (settlement["yes_count_fp"], settlement["no_count_fp"], settlement["yes_total_cost_dollars"]) == ("4.00", "0.00", "1.6000")
    assert rest.ok("/portfolio/settlements", {"ticker": B})["settlements"] == []
    assert rest.ok("/portfolio/balance")["balance_dollars"] == "10002.4000"  # reserve back, $4 paid
    assert rest.ok("/portfolio/orders/O1")["order"]["status"] == "canceled"  # ended by the close
    assert rest.ok("/portfolio/positions")["market_positions"] == []  # unsettled only, by default
    settled, = rest.ok("/portfolio/positions", {"settlement_status": "settled"})["market_positions"]
    assert (settled["position_fp"], settled["realized_pnl_dollars"]) == ("0.00", "2.4000")
    assert rest.public(f"/markets/{A}").json()["market"]["settlement_ts"] is not None
    assert sim.exchange.account(key.key_id).positions[A] == 0


def test_admin_http_errors_name_the_problem(rest_sim) -> None:
    sim, rest, _, _ = rest_sim(seeds=[me(A, "buy_yes", "0.40", "2")])
    assert rest.admin("/orders/O9/cancel").status_code == 404
    too_many = rest.admin("/orders/O1/fill", {"quantity": "3"})
    assert too_many.status_code == 400 and "quantity 3" in too_many.json()["error"]["message"]
    assert "quantity" in rest.admin("/orders/O1/fill", {"quantity": "lots"}).json()["error"]["message"]
    assert rest.admin("/orders/O1/fill", {}).json()["msg"].startswith("quantity")
    filled = rest.admin("/orders/O1/fill", {"quantity": "2"})
    assert filled.status_code == 200 and filled.json()["order"]["status"] == "executed"
    gone = rest.admin("/orders/O1/cancel")
    assert gone.status_code == 400 and "no longer open" in gone.json()["error"]["message"]


def test_rest_lag_serves_a_snapshot_and_says_how_old(rest_sim) -> None:
    sim, rest, _, _ = rest_sim(seeds=[me(A, "buy_yes", "0.40", "2")], rest_lag=3600)
    assert rest.ok("/portfolio/orders/O1")["order"]["status"] == "resting"
    as_of = rest.public("/exchange/user_data_timestamp").json()["as_of_time"]
    changed = datetime.now(timezone.utc)
    canceled = rest.admin("/orders/O1/cancel").json()["order"]
    assert canceled["status"] == "canceled"  # the admin call answers with the truth ...
    assert rest.ok("/portfolio/orders/O1")["order"]["status"] == "resting"  # ... reads lag behind
    assert rest.public("/exchange/user_data_timestamp").json()["as_of_time"] == as_of
    assert datetime.fromisoformat(as_of) <= changed


def test_without_lag_reads_are_fresh(rest_sim) -> None:
    sim, rest, _, _ = rest_sim(seeds=[me(A, "buy_yes", "0.40", "2")])
    first = datetime.fromisoformat(rest.public("/exchange/user_data_timestamp").json()["as_of_time"])
    sim.admin.cancel_order("O1")
    assert rest.ok("/portfolio/orders/O1")["order"]["status"] == "canceled"
    assert datetime.fromisoformat(rest.public("/exchange/user_data_timestamp").json()["as_of_time"]) >= first


# --- through FIX: the engine's orders, changed behind its back --------------------------------------


@pytest.fixture
async def engine_on_sim(tmp_path, make_key, start_simulator):
    key = make_key()
    sim, _ = start_simulator([key.account()], markets=[MarketEntry(ticker=A)], listeners={"KalshiNR": 0}, rest_port=0)
    engine = Engine(engine_config(tmp_path, session_to(sim, key, name="s1")))
    await engine.start()
    await engine.wait_logged_on()
    client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{sim.rest_port}", timeout=10)
    try:
        yield engine, sim, key, client
    finally:
        await client.aclose()
        await engine.stop()


def bid(qty: str = "10", price: str = "0.40") -> NewOrder:
    return NewOrder.create(ticker=A, action=Action.BUY, contract=Contract.YES, quantity=D(qty), price=D(price))


async def rest_get(client: httpx.AsyncClient, key: ApiKey, path: str) -> dict:
    response = await client.get(API + path, headers=signed_headers(key, "GET", API + path))
    assert response.status_code == 200, response.text
    return response.json()


async def events_until_accepted(events, order_key: str) -> list:
    """Every engine event up to the acceptance of ``order_key``: reports on one session arrive in
    order, so whatever the exchange had sent before that acceptance is in this list."""
    seen = []
    while True:
        event = await events.next(timeout=15)
        seen.append(event)
        if isinstance(event, OrderAccepted) and event.order.key == order_key:
            return seen


async def test_rest_shows_fix_orders_and_admin_cancel_is_not_reported_on_fix(engine_on_sim) -> None:
    engine, sim, key, client = engine_on_sim
    events = engine.events()
    placed = await engine.submit("s1", bid())
    accepted = await events.wait_for(OrderAccepted)
    order_id = accepted.order.order_id  # tag 37
    listed, = (await rest_get(client, key, "/portfolio/orders"))["orders"]
    assert (listed["order_id"], listed["client_order_id"], listed["status"]) == (order_id, placed.key, "resting")

    canceled = await client.post(f"/admin/orders/{order_id}/cancel")
    assert canceled.status_code == 200 and canceled.json()["order"]["status"] == "canceled"
    second = await engine.submit("s1", bid("1", "0.30"))
    seen = await events_until_accepted(events, second.key)
    assert not [e for e in seen if isinstance(e, (OrderCanceled, OrderFilled))]
    assert engine.book.order(placed.key).status is Status.NEW  # the engine still believes it rests
    assert (await rest_get(client, key, f"/portfolio/orders/{order_id}"))["order"]["status"] == "canceled"


async def test_admin_fill_is_not_reported_on_fix_but_shows_in_fills_and_positions(engine_on_sim) -> None:
    engine, sim, key, client = engine_on_sim
    events = engine.events()
    placed = await engine.submit("s1", bid())
    order_id = (await events.wait_for(OrderAccepted)).order.order_id
    assert sim.admin.add_fill(order_id, D(4)).leaves_qty == D(6)
    second = await engine.submit("s1", bid("1", "0.30"))
    seen = await events_until_accepted(events, second.key)
    assert not [e for e in seen if isinstance(e, OrderFilled)]
    assert engine.book.order(placed.key).cum_qty == 0 and engine.book.position(key.key_id, A) == 0
    fill, = (await rest_get(client, key, "/portfolio/fills"))["fills"]
    assert (fill["order_id"], fill["count_fp"], fill["is_taker"]) == (order_id, "4.00", False)
    position, = (await rest_get(client, key, "/portfolio/positions"))["market_positions"]
    assert position["position_fp"] == "4.00"
    assert sim.exchange.account(key.key_id).positions[A] == D(4)


# --- the pure pieces ------------------------------------------------------------------------------


def exchange_with(*orders: tuple[str, WireSide, str, str]) -> tuple[Exchange, D]:
    accounts = [AccountState("alice", D(100)), AccountState("bob", D(100)), AccountState(HOUSE_ACCOUNT, D(1000))]
    ex = Exchange([MarketConfig(A), MarketConfig(B)], accounts)
    for i, (who, side, price, qty) in enumerate(orders):
        events = ex.submit(OrderSpec(who, "s", f"c{i}", A, side, D(price), D(qty)), NOW)
        assert not [e for e in events if isinstance(e, Rejected)]
    return ex, sum((a.balance for a in accounts), D(0))


def cash_in_system(ex: Exchange) -> D:
    accounts = ex.accounts()
    open_interest = sum((max(a.positions.get(t, D(0)), D(0)) for a in accounts for t in (A, B)), D(0))
    return sum((a.balance + a.reserved for a in accounts), D(0)) + open_interest + ex.fees_collected


def test_settle_market_pays_winners_ends_orders_and_keeps_cash() -> None:
    ex, start = exchange_with(("alice", WireSide.BUY_YES, "0.60", "5"), ("bob", WireSide.SELL_YES, "0.60", "3"),
                              ("alice", WireSide.BUY_YES, "0.50", "2"))
    events = ex.settle_market(A, "no", NOW)
    assert [type(e) for e in events[:2]] == [Expired, Expired]  # alice's two resting orders
    assert MarketSettled(A, "no", D(0)) in events
    settled = {e.account_id: e for e in events if isinstance(e, Settled)}
    assert settled["bob"].net_yes == -3 and settled["bob"].payout == 3 and settled["alice"].payout == 0
    assert ex.account("alice").positions[A] == 0 and ex.account("bob").positions[A] == 0
    assert ex.account("bob").balance == D(100) - D("1.20") - D("0.06") + 3  # NO at 0.40, taker fee, payout
    assert cash_in_system(ex) == start and ex.settlement(A) == "no" and ex.settlement(B) is None
    assert isinstance(ex.submit(OrderSpec("alice", "s", "late", A, WireSide.BUY_YES, D("0.5"), D(1)), NOW)[-1], Rejected)
    with pytest.raises(ValueError, match="already settled"):
        ex.settle_market(A, "yes", NOW)
    with pytest.raises(UnknownError):
        ex.settle_market("NOPE", "yes", NOW)


def test_fill_against_house_and_cancel_order_by_id() -> None:
    ex, start = exchange_with(("alice", WireSide.SELL_YES, "0.70", "5"))
    events = ex.fill_against("O1", D(2), HOUSE_ACCOUNT, NOW)
    traded = events[-3]
    assert traded.maker.order_id == "O1" and traded.maker.leaves_qty == 3 and traded.taker.account_id == HOUSE_ACCOUNT
    assert traded.maker_fee == 0 and traded.taker_fee == D("0.03") and ex.account("alice").positions[A] == -2
    assert cash_in_system(ex) == start
    for bad, match in (((D(4), HOUSE_ACCOUNT), "more than"), ((D(0), HOUSE_ACCOUNT), "positive"),
                       ((D(1), "alice"), "own account"), ((D(1), "nobody"), "does not exist")):
        with pytest.raises(ValueError, match=match):
            ex.fill_against("O1", *bad, NOW)
    canceled = ex.cancel_order("O1", NOW)[-1]
    assert isinstance(canceled, Canceled) and canceled.text == "ADMIN_CANCELED" and ex.open_orders() == []
    assert ex.account("alice").reserved == 0 and cash_in_system(ex) == start
    with pytest.raises(ValueError, match="no longer open"):
        ex.cancel_order("O1", NOW)
    with pytest.raises(UnknownError):
        ex.fill_against("O42", D(1), HOUSE_ACCOUNT, NOW)


def test_position_cost_and_pnl_through_fills_and_settlement() -> None:
    p = after_fill(PositionRecord(A), WireSide.BUY_YES, D("0.40"), D(10), D("0.17"), NOW)
    assert (p.net_yes, p.exposure, p.fees_paid) == (10, D("4.00"), D("0.17"))
    p = after_fill(p, WireSide.SELL_YES, D("0.55"), D(4), D(0), NOW)  # sell 4 YES at 0.55 (buy NO at 0.45)
    assert (p.net_yes, p.exposure, p.realized_pnl) == (6, D("2.40"), D("0.60"))
    p = after_fill(p, WireSide.SELL_YES, D("0.50"), D(8), D(0), NOW)  # through flat: 2 NO at 0.50 left
    assert (p.net_yes, p.exposure, p.realized_pnl) == (-2, D("1.00"), D("1.20"))
    assert p.total_traded == D("4.00") + D("1.80") + D("4.00") and p.traded_count == 22
    p = after_settlement(p, D(2), NOW)  # NO wins
    assert (p.net_yes, p.exposure, p.realized_pnl) == (0, 0, D("2.20"))


def test_paging_is_stable_when_newer_items_arrive() -> None:
    items = list(range(25, 0, -1))  # newest first
    first, cursor = page(items, lambda i: i, 10, None, descending=True)
    assert first == list(range(25, 15, -1)) and cursor
    items = [27, 26, *items]  # two new ones arrive
    second, cursor = page(items, lambda i: i, 10, cursor, descending=True)
    assert second == list(range(15, 5, -1))
    third, cursor = page(items, lambda i: i, 10, cursor, descending=True)
    assert third == list(range(5, 0, -1)) and cursor == ""
    assert page(items, lambda i: i, 10, "%%%", descending=True)[0] == items[:10]
    names, cursor = page(["a", "b", "c"], lambda s: s, 2, None, descending=False)
    assert names == ["a", "b"] and page(["a", "b", "c"], lambda s: s, 2, cursor, descending=False) == (["c"], "")


def test_token_bucket_refills_up_to_its_capacity() -> None:
    bucket = TokenBucket(ReadBudget(refill_rate=10, capacity=20), now=0.0)
    assert bucket.take(10, 0.0) and bucket.take(10, 0.0) and not bucket.take(10, 0.5)
    assert bucket.take(10, 1.0)  # 10 tokens back after a second
    assert bucket.take(20, 100.0) and not bucket.take(1, 100.0)  # never more than the capacity


def test_snapshots_lag_until_older_than_the_lag() -> None:
    clock = [0.0]
    taken: list[int] = []

    def read(capture) -> Snapshot:
        taken.append(len(taken))
        return Snapshot(NOW + timedelta(seconds=len(taken)), {}, {})

    lagging = Snapshots(read, lag=2.0, monotonic=lambda: clock[0])
    first = lagging.get("k")
    clock[0] = 1.9
    assert lagging.get("k") is first and lagging.get(None) is first
    clock[0] = 2.0
    assert lagging.get("k").as_of > first.as_of and len(taken) == 2
    fresh = Snapshots(read, lag=0, monotonic=lambda: clock[0])
    assert fresh.get("k") is not fresh.get("k")


def test_number_formats() -> None:
    assert dollars(D("0.4")) == "0.4000" and dollars(D("0.000001")) == "0.000001" and dollars(D("-0")) == "0.0000"
    assert count(D("-5")) == "-5.00" and count(D("-0")) == "0.00" and count(D("2.5")) == "2.50"
    assert cents(D("100.0057")) == 10000 and cents(D("0.999")) == 99
