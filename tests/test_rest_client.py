"""The Kalshi REST client's parts that need no server: request signing, error bodies, response
models and the token bucket. (HTTP behaviour against the simulator's REST API is tested there.)"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from pydantic import TypeAdapter, ValidationError

from fixengine.errors import FixEngineError
from fixengine.rest.errors import error_for
from fixengine.rest import (
    DEMO_URL,
    PRODUCTION_URL,
    AuthenticationError,
    Balance,
    ExchangeStatus,
    RestFill,
    InvalidResponseError,
    KalshiRest,
    Market,
    MarketPosition,
    NotFoundError,
    RestOrder,
    RateLimitedError,
    RestError,
    ServerError,
    Settlement,
    TokenBucket,
    local_url,
)
from fixengine.kalshi.signing import load_private_key, load_public_key, rest_prehash, verify

# --- realistic bodies, in the current format (rest-spec.md §4, §7, §8) -------------------------

ORDER = {
    "order_id": "ee5a2a2e-6c43-4b7e-9f0e-1f6d0c6b8a11",
    "user_id": "8b0f8f7e-0000-4000-8000-000000000001",
    "client_order_id": "c-20260820-0001",
    "ticker": "KXHIGHNY-26AUG21-B85.5",
    "outcome_side": "yes",
    "book_side": "bid",
    "side": "yes",  # deprecated, still sent
    "action": "buy",  # deprecated, still sent
    "type": "limit",
    "status": "resting",
    "yes_price_dollars": "0.5600",
    "no_price_dollars": "0.4400",
    "initial_count_fp": "10.00",
    "fill_count_fp": "2.50",
    "remaining_count_fp": "7.50",
    "taker_fill_cost_dollars": "0.0000",
    "maker_fill_cost_dollars": "1.400000",
    "taker_fees_dollars": "0.0000",
    "maker_fees_dollars": "0.004375",
    "expiration_time": None,
    "created_time": "2026-08-20T14:03:07.123456Z",
    "last_update_time": "2026-08-20T14:05:00Z",
    "self_trade_prevention_type": "taker_at_cross",
    "order_group_id": None,
    "cancel_order_on_pause": False,
    "subaccount_number": 0,
    "exchange_index": 0,
}

FILL = {
    "fill_id": "f-7d1c",
    "trade_id": "f-7d1c",
    "order_id": ORDER["order_id"],
    "ticker": ORDER["ticker"],
    "market_ticker": ORDER["ticker"],
    "exchange_index": 0,
    "outcome_side": "no",
    "book_side": "ask",
    "side": "no",
    "action": "buy",
    "count_fp": "1.25",
    "yes_price_dollars": "0.5200",
    "no_price_dollars": "0.4800",
    "is_taker": True,
    "fee_cost": "0.017500",
    "created_time": "2026-08-20T14:04:59.5+00:00",
    "ts": 1787234699,
    "subaccount_number": None,
}

POSITIONS_PAGE = {
    "market_positions": [
        {
            "ticker": "KXHIGHNY-26AUG21-B85.5",
            "exchange_index": 0,
            "position_fp": "12.00",
            "market_exposure_dollars": "6.7200",
            "total_traded_dollars": "6.7200",
            "realized_pnl_dollars": "0.0000",
            "fees_paid_dollars": "0.084000",
            "last_updated_ts": "2026-08-20T14:05:00Z",
        },
        {
            "ticker": "KXBTCD-26AUG2117-T118999.99",
            "exchange_index": 2,
            "position_fp": "-3.50",
            "market_exposure_dollars": "1.0500",
            "total_traded_dollars": "2.1000",
            "realized_pnl_dollars": "-0.150000",
            "fees_paid_dollars": "0.010000",
            "last_updated_ts": "2026-08-20T13:00:00Z",
            "resting_orders_count": 1,  # removed field some servers still send
        },
    ],
    "event_positions": [],
    "cursor": "",
}


# --- request signing --------------------------------------------------------------------------


@pytest.fixture
def key(make_key):
    return make_key()


@pytest.fixture
async def rest(key):
    async with KalshiRest(local_url(9), key.key_id, load_private_key(file=key.private_key_file)) as client:
        yield client


def _public_key(key):
    return load_public_key(key.public_key_file.read_bytes())


async def test_request_carries_the_three_signed_headers(rest, key):
    before = int(time.time() * 1000)
    request = rest._signed_request("GET", "/portfolio/orders", {"status": "resting", "limit": 1000, "cursor": None})
    headers = request.headers
    assert headers["KALSHI-ACCESS-KEY"] == key.key_id
    ts = headers["KALSHI-ACCESS-TIMESTAMP"]
    assert len(ts) == 13 and before <= int(ts) <= int(time.time() * 1000)  # milliseconds
    assert str(request.url) == "http://127.0.0.1:9/trade-api/v2/portfolio/orders?status=resting&limit=1000"
    # The signature covers the path with the API root and without the query string.
    message = rest_prehash(int(ts), "GET", "/trade-api/v2/portfolio/orders")
    assert message == f"{ts}GET/trade-api/v2/portfolio/orders".encode()
    assert verify(_public_key(key), message, headers["KALSHI-ACCESS-SIGNATURE"])
    with_query = f"{ts}GET/trade-api/v2/portfolio/orders?status=resting&limit=1000".encode()
    assert not verify(_public_key(key), with_query, headers["KALSHI-ACCESS-SIGNATURE"])


async def test_each_request_is_signed_afresh(rest, key):
    first = rest._signed_request("GET", "/portfolio/balance", {})
    second = rest._signed_request("GET", "/portfolio/balance", {})
    # RSA-PSS is salted: the same text never gives the same signature twice.
    assert first.headers["KALSHI-ACCESS-SIGNATURE"] != second.headers["KALSHI-ACCESS-SIGNATURE"]
    for request in (first, second):
        ts = int(request.headers["KALSHI-ACCESS-TIMESTAMP"])
        message = rest_prehash(ts, "GET", "/trade-api/v2/portfolio/balance")
        assert verify(_public_key(key), message, request.headers["KALSHI-ACCESS-SIGNATURE"])


async def test_signed_path_is_the_escaped_wire_path(rest, key):
    request = rest._signed_request("GET", "/portfolio/orders/a%2Fb", {})
    ts = int(request.headers["KALSHI-ACCESS-TIMESTAMP"])
    message = rest_prehash(ts, "GET", "/trade-api/v2/portfolio/orders/a%2Fb")
    assert verify(_public_key(key), message, request.headers["KALSHI-ACCESS-SIGNATURE"])


async def test_repr_shows_no_key_material(rest, key):
    text = repr(rest) + repr(rest._signer)
    assert key.key_id in text
    assert "PRIVATE" not in text and "RSAPrivateKey" not in text


def test_base_urls():
    assert PRODUCTION_URL == "https://external-api.kalshi.com/trade-api/v2"
    assert DEMO_URL == "https://external-api.demo.kalshi.co/trade-api/v2"
    assert local_url(8443) == "http://127.0.0.1:8443/trade-api/v2"


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"base_url": "https://external-api.kalshi.com"}, "/trade-api/v2"),
        ({"base_url": "external-api.kalshi.com/trade-api/v2"}, "http(s)"),
        ({"tier": "gold"}, "tier"),
        ({"max_retries": -1}, "max_retries"),
        ({"timeout": 0}, "timeout"),
        ({"api_key_id": ""}, "api_key_id"),
    ],
)
def test_bad_construction_names_the_argument(key, kwargs, words):
    args = {"base_url": DEMO_URL, "api_key_id": key.key_id, "tier": "premier"} | kwargs
    with pytest.raises(ValueError, match=words.replace("(", r"\(").replace(")", r"\)")):
        KalshiRest(
            args.pop("base_url"), args.pop("api_key_id"), load_private_key(file=key.private_key_file), **args
        )


def test_private_key_must_be_a_loaded_key(key):
    pem = key.private_key_file.read_text()
    with pytest.raises(TypeError, match="private_key: expected an RSA private key") as info:
        KalshiRest(DEMO_URL, key.key_id, pem)  # type: ignore[arg-type]
    assert "PRIVATE KEY" not in str(info.value)


@pytest.mark.parametrize(
    ("call", "words"),
    [
        (lambda r: r.orders(status="open"), "status: 'open'"),
        (lambda r: r.orders(min_ts=datetime(2026, 8, 20)), "min_ts: .* no timezone"),
        (lambda r: r.fills(min_ts=1787234699000), "min_ts: .* milliseconds"),
        (lambda r: r.positions(count_filter="nonzero"), "count_filter: nonzero"),
        (lambda r: r.settlements(subaccount=64), "subaccount: 64"),
        (lambda r: r.order(""), "order_id"),
        (lambda r: r.market(""), "ticker"),
        (lambda r: r.markets(status="active"), "status: 'active'"),
    ],
)
async def test_bad_arguments_fail_before_sending(rest, call, words):
    # local_url(9) has nothing listening: reaching the network would be a transport error instead.
    with pytest.raises(ValueError, match=words):
        await call(rest)


# --- error bodies -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "cls", "code", "message", "details"),
    [
        (
            401,
            b'{"error":{"code":"authentication_error","message":"authentication_error",'
            b'"details":"INCORRECT_API_KEY_SIGNATURE","service":"auth"}}',
            AuthenticationError,
            "authentication_error",
            "authentication_error",
            "INCORRECT_API_KEY_SIGNATURE",
        ),
        (
            401,
            b'{"error":{"code":"header_timestamp_expired","message":"timestamp expired"}}',
            AuthenticationError,
            "header_timestamp_expired",
            "timestamp expired",
            None,
        ),
        (
            400,
            b'{"code":"bad_request","message":"could not decode body","details":{"offset":3}}',
            RestError,
            "bad_request",
            "could not decode body",
            '{"offset":3}',
        ),
        (400, b'{"msg":"limit must be at most 1000"}', RestError, None, "limit must be at most 1000", None),
        (429, b'{"error":"too many requests"}', RateLimitedError, None, "too many requests", None),
        (
            404,
            b'{"error":{"code":"not_found","message":"order not found"}}',
            NotFoundError,
            "not_found",
            "order not found",
            None,
        ),
        (404, b'{"detail":"Not Found"}', NotFoundError, None, "Not Found", None),
        (503, b"<html><body>Service Unavailable</body></html>", ServerError, None,
         "<html><body>Service Unavailable</body></html>", None),
        (502, b"", ServerError, None, "Bad Gateway", None),
        (403, b'["unexpected"]', RestError, None, '["unexpected"]', None),
    ],
)
def test_error_bodies_of_every_shape(status, body, cls, code, message, details):
    error = error_for("GET", "/trade-api/v2/portfolio/orders?cursor=abc", status, body)
    assert type(error) is cls
    assert isinstance(error, FixEngineError)
    assert (error.status, error.code, error.message, error.details) == (status, code, message, details)
    text = str(error)
    assert text.startswith(f"GET /trade-api/v2/portfolio/orders: HTTP {status} ")
    assert message in text
    if code:
        assert code in text
    assert "cursor=abc" not in text  # the query is not part of the error's name


def test_error_text_is_readable():
    error = error_for(
        "get",
        "/trade-api/v2/portfolio/balance",
        401,
        b'{"error":{"code":"authentication_error","message":"authentication_error",'
        b'"details":"INCORRECT_API_KEY_SIGNATURE"}}',
    )
    assert str(error) == (
        "GET /trade-api/v2/portfolio/balance: HTTP 401 authentication_error (INCORRECT_API_KEY_SIGNATURE)"
    )
    nested = error_for(
        "GET", "/trade-api/v2/portfolio/orders/x", 404,
        b'{"error":{"code":"not_found","message":"order not found","details":"x"}}',
    )
    assert str(nested) == "GET /trade-api/v2/portfolio/orders/x: HTTP 404 not_found: order not found (x)"


def test_retried_errors_say_how_often():
    error = error_for("GET", "/trade-api/v2/markets", 429, b'{"error":"too many requests"}', attempts=6)
    assert error.attempts == 6
    assert str(error) == "GET /trade-api/v2/markets: HTTP 429 too many requests [gave up after 6 attempts]"


def test_long_error_bodies_are_clipped():
    error = error_for("GET", "/trade-api/v2/markets", 500, b"x" * 10_000)
    assert len(error.message) <= 300
    assert error.message.endswith("…")


# --- models -----------------------------------------------------------------------------------


def test_order_parses_exactly_and_ignores_extra_fields():
    order = RestOrder.model_validate(ORDER | {"brand_new_field_2027": {"nested": 1}})
    assert order.yes_price_dollars == Decimal("0.5600") and str(order.yes_price_dollars) == "0.5600"
    assert order.no_price_dollars == Decimal("0.44")
    assert order.maker_fees_dollars == Decimal("0.004375")  # micro-dollar precision kept
    assert (order.initial_count_fp, order.fill_count_fp, order.remaining_count_fp) == (
        Decimal("10.00"), Decimal("2.50"), Decimal("7.50"),
    )
    assert order.initial_count_fp == order.fill_count_fp + order.remaining_count_fp
    assert all(
        isinstance(v, Decimal)
        for v in (order.yes_price_dollars, order.fill_count_fp, order.maker_fill_cost_dollars)
    )
    assert order.created_time == datetime(2026, 8, 20, 14, 3, 7, 123456, tzinfo=timezone.utc)
    assert order.created_time.utcoffset() == timedelta(0)
    assert order.expiration_time is None
    assert order.status == "resting" and order.outcome_side == "yes" and order.book_side == "bid"
    assert not hasattr(order, "brand_new_field_2027") and not hasattr(order, "action")


def test_order_minimal_current_body():
    required = {k: ORDER[k] for k in (
        "order_id", "client_order_id", "ticker", "status", "outcome_side", "book_side",
        "yes_price_dollars", "initial_count_fp", "fill_count_fp", "remaining_count_fp",
    )}
    order = RestOrder.model_validate(required)
    assert order.exchange_index == 0 and order.taker_fees_dollars is None and order.created_time is None


def test_missing_field_error_names_the_field():
    body = dict(ORDER)
    del body["fill_count_fp"]
    with pytest.raises(ValidationError) as info:
        RestOrder.model_validate(body)
    assert "fill_count_fp" in str(info.value) and "Field required" in str(info.value)


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("yes_price_dollars", 0.56, "float"),
        ("fill_count_fp", "2.5.0", "not a decimal number"),
        ("fill_count_fp", "NaN", "not a finite number"),
        ("created_time", "2026-08-20T14:03:07", "timezone"),
        ("book_side", "ask", "contradicts"),
    ],
)
def test_bad_field_errors_name_the_field_and_reason(field, value, words):
    with pytest.raises(ValidationError) as info:
        RestOrder.model_validate(ORDER | {field: value})
    text = str(info.value)
    assert words in text
    if field != "book_side":  # a cross-field rule is reported on the object
        assert field in text


def test_unknown_status_is_refused():
    with pytest.raises(ValidationError, match="resting"):
        RestOrder.model_validate(ORDER | {"status": "pending"})


async def test_client_names_the_row_and_field_of_a_bad_page(rest):
    good, bad = dict(ORDER), dict(ORDER)
    del bad["remaining_count_fp"]
    with pytest.raises(InvalidResponseError) as info:
        rest._parse(TypeAdapter(list[RestOrder]), [good, bad], "/portfolio/orders", "orders")
    assert str(info.value) == (
        "GET /trade-api/v2/portfolio/orders: HTTP 200 orders[1].remaining_count_fp: Field required"
    )


def test_fill():
    fill = RestFill.model_validate(FILL)
    assert fill.fill_id == fill.trade_id == "f-7d1c"
    assert fill.count_fp == Decimal("1.25")
    assert fill.yes_price_dollars == Decimal("0.52") and fill.no_price_dollars == Decimal("0.48")
    assert fill.fee_cost == Decimal("0.017500")
    assert fill.is_taker is True
    assert fill.created_time == datetime(2026, 8, 20, 14, 4, 59, 500000, tzinfo=timezone.utc)
    # The legacy alias market_ticker alone is enough.
    legacy = dict(FILL)
    del legacy["ticker"]
    assert RestFill.model_validate(legacy).ticker == FILL["ticker"]


def test_positions_are_signed():
    rows = TypeAdapter(list[MarketPosition]).validate_python(POSITIONS_PAGE["market_positions"])
    yes, no = rows
    assert yes.position_fp == Decimal("12.00") and yes.position_fp > 0  # YES contracts (LongQty)
    assert no.position_fp == Decimal("-3.50") and no.position_fp < 0  # NO contracts (ShortQty)
    assert no.realized_pnl_dollars == Decimal("-0.15")
    assert no.exchange_index == 2 and yes.fees_paid_dollars == Decimal("0.084")


def test_balance_keeps_cents_and_exact_dollars():
    balance = Balance.model_validate(
        {
            "balance": 123456,
            "balance_dollars": "1234.5678",
            "portfolio_value": 67200,
            "updated_ts": 1787234700,
            "balance_breakdown": [
                {"exchange_index": 0, "balance": "1000.0000"},
                {"exchange_index": 2, "balance": "234.5678"},
            ],
        }
    )
    assert balance.balance == 123456 and isinstance(balance.balance, int)
    assert balance.balance_dollars == Decimal("1234.5678")
    assert sum(b.balance for b in balance.balance_breakdown) == balance.balance_dollars
    assert balance.updated_ts == datetime.fromtimestamp(1787234700, tz=timezone.utc)
    with pytest.raises(ValidationError, match="updated_ts"):
        Balance.model_validate({"balance": 1, "balance_dollars": "0.01", "portfolio_value": 0, "updated_ts": "soon"})


def test_settlement():
    settlement = Settlement.model_validate(
        {
            "ticker": "KXHIGHNY-26AUG19-B85.5",
            "event_ticker": "KXHIGHNY-26AUG19",
            "exchange_index": 0,
            "market_result": "yes",
            "yes_count_fp": "12.00",
            "no_count_fp": "0.00",
            "yes_total_cost_dollars": "6.7200",
            "no_total_cost_dollars": "0.0000",
            "revenue": 1200,
            "value": None,
            "fee_cost": "0.084000",
            "settled_time": "2026-08-20T04:00:00Z",
        }
    )
    assert settlement.revenue == 1200 and settlement.yes_count_fp == Decimal("12")
    assert settlement.settled_time.tzinfo is not None


def test_exchange_status_and_user_data_timestamp_shapes():
    status = ExchangeStatus.model_validate(
        {
            "exchange_active": True,
            "trading_active": False,
            "exchange_estimated_resume_time": None,
            "exchange_index_statuses": [
                {"exchange_index": 0, "description": "default", "exchange_active": True, "trading_active": False},
                {"exchange_index": 2, "description": "crypto", "exchange_active": True, "trading_active": True},
            ],
        }
    )
    assert status.trading_active is False
    assert [s.exchange_index for s in status.exchange_index_statuses if s.trading_active] == [2]


def test_market_and_its_price_grid():
    market = Market.model_validate(
        {
            "ticker": "KXBTCD-26AUG2117-T118999.99",
            "event_ticker": "KXBTCD-26AUG2117",
            "market_type": "binary",
            "status": "active",
            "price_level_structure": "center_deci_edge_centi_cent",
            "price_ranges": [
                {"start": "0.0000", "end": "0.1000", "step": "0.0010"},
                {"start": "0.1000", "end": "0.9000", "step": "0.0100"},
                {"start": "0.9000", "end": "1.0000", "step": "0.0010"},
            ],
            "yes_bid_dollars": "0.4500",
            "close_time": "2026-08-21T21:00:00Z",
            "exchange_index": 2,
        }
    )
    assert market.price_ranges[0].step == Decimal("0.001")
    assert market.on_grid(Decimal("0.45")) and market.on_grid(Decimal("0.053"))
    assert not market.on_grid(Decimal("0.455")) and not market.on_grid(Decimal("1.5"))


# --- token bucket -----------------------------------------------------------------------------


class FakeTime:
    """A clock that only moves when the bucket sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)  # let other waiters run, as a real sleep would


@pytest.fixture
def fake() -> FakeTime:
    return FakeTime()


@pytest.mark.parametrize(
    ("tier", "rate", "capacity"),
    [("basic", 200, 400), ("advanced", 300, 600), ("expert", 600, 600), ("premier", 1000, 1000),
     ("paragon", 2000, 2000), ("prime", 4000, 4000), ("prestige", 10000, 10000)],
)
def test_bucket_per_tier(tier, rate, capacity):
    bucket = TokenBucket.for_tier(tier)
    assert (bucket.rate, bucket.capacity) == (rate, capacity)


def test_unknown_tier():
    with pytest.raises(ValueError, match="tier: unknown API usage tier 'gold'"):
        TokenBucket.for_tier("gold")


async def test_full_bucket_serves_a_burst_then_paces(fake):
    bucket = TokenBucket.for_tier("premier", clock=fake.clock, sleep=fake.sleep)
    for _ in range(100):  # 1,000 tokens: a second's worth of 10-token reads at once
        await bucket.take()
    assert fake.sleeps == []
    await bucket.take()  # the 101st waits for 10 tokens at 1,000/s
    assert fake.now - 1000.0 == pytest.approx(0.01)
    await bucket.take(2)
    assert fake.now - 1000.0 == pytest.approx(0.012)


async def test_refill_is_capped_at_capacity(fake):
    bucket = TokenBucket(100, 50, clock=fake.clock, sleep=fake.sleep)
    await bucket.take(50)
    assert bucket.tokens == 0
    fake.now += 0.2
    assert bucket.tokens == pytest.approx(20)
    fake.now += 3600
    assert bucket.tokens == 50
    await bucket.take(50)
    assert fake.sleeps == []


async def test_waiters_are_served_in_arrival_order(fake):
    bucket = TokenBucket(100, 10, clock=fake.clock, sleep=fake.sleep)
    await bucket.take(10)  # empty
    done: list[str] = []

    async def take(name: str, cost: int) -> None:
        await bucket.take(cost)
        done.append(f"{name}@{fake.now - 1000.0:.3f}")

    await asyncio.gather(take("big", 10), take("small", 2))
    assert done == ["big@0.100", "small@0.120"]


async def test_a_clock_stepping_back_does_not_drain(fake):
    bucket = TokenBucket(100, 10, clock=fake.clock, sleep=fake.sleep)
    fake.now -= 5
    assert bucket.tokens == 10


@pytest.mark.parametrize(("cost", "words"), [(0, "positive"), (-1, "positive"), (11, "exceeds the bucket's capacity")])
async def test_impossible_costs_are_refused(fake, cost, words):
    bucket = TokenBucket(100, 10, clock=fake.clock, sleep=fake.sleep)
    with pytest.raises(ValueError, match=words):
        await bucket.take(cost)


@pytest.mark.parametrize(("rate", "capacity"), [(0, 10), (10, 0), (-1, 10)])
def test_bucket_needs_positive_sizes(rate, capacity):
    with pytest.raises(ValueError, match="positive"):
        TokenBucket(rate, capacity)
