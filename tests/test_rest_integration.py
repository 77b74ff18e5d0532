"""The REST client against the simulator's REST API over loopback: pagination, rate limits, auth."""

from __future__ import annotations

import time
from decimal import Decimal as D

import httpx
import pytest

from fixengine.session.reconnect import Backoff
from fixengine.rest import AuthenticationError, KalshiRest, RateLimitedError, TokenBucket
from fixengine.kalshi.signing import Signer, generate_private_key, load_private_key
from simulator.config import MarketEntry, ReadBudget, SeedOrder

TICKER = "PAGE-1"
FAST = Backoff(0.01, 0.05)


def client(sim, key, **options) -> KalshiRest:
    return KalshiRest(sim.rest_url, key.key_id, load_private_key(file=key.private_key_file), **options)


async def test_orders_are_read_to_the_end_across_pages(make_key, start_simulator) -> None:
    key = make_key()
    seeds = [SeedOrder(ticker=TICKER, side="buy_yes", price=D("0.30"), quantity=D(1), account=key.key_id)] * 2100
    sim, _ = start_simulator([key.account()], markets=[MarketEntry(ticker=TICKER)], seed_orders=seeds, rest_port=0)
    async with client(sim, key) as rest:
        orders = await rest.orders(status="resting")
    assert len(orders) == 2100 and len({o.order_id for o in orders}) == 2100  # 3 pages of 1000, none twice
    assert all(o.remaining_count_fp == D(1) and o.yes_price_dollars == D("0.30") for o in orders)


async def test_an_empty_bucket_is_waited_out_or_reported(make_key, start_simulator) -> None:
    key = make_key()
    tiny = {"premier": ReadBudget(refill_rate=20, capacity=20)}  # two requests, then 0.5 s per request
    sim, _ = start_simulator([key.account()], rest_port=0, rest_read_budgets=tiny)
    unlimited = TokenBucket(rate=1e6, capacity=1e6)  # our own bucket must not hide the server's
    async with client(sim, key, bucket=unlimited, max_retries=0) as rest:
        await rest.balance()
        await rest.balance()
        with pytest.raises(RateLimitedError) as limited:
            await rest.balance()
    assert limited.value.status == 429 and "too many requests" in str(limited.value)
    async with client(sim, key, bucket=unlimited, max_retries=30, backoff=FAST) as rest:
        for _ in range(4):
            assert (await rest.balance()).balance_dollars == D("10000")  # 429s retried until the refill


async def test_a_bad_signature_and_an_expired_timestamp_are_refused(make_key, start_simulator) -> None:
    key = make_key()
    sim, _ = start_simulator([key.account()], rest_port=0)
    async with KalshiRest(sim.rest_url, key.key_id, generate_private_key()) as rest:  # not the registered key
        with pytest.raises(AuthenticationError) as refused:
            await rest.balance()
    assert refused.value.status == 401 and refused.value.details == "INCORRECT_API_KEY_SIGNATURE"

    signer = Signer(key.key_id, load_private_key(file=key.private_key_file))
    path = "/trade-api/v2/portfolio/balance"
    old = int((time.time() - 600) * 1000)
    async with httpx.AsyncClient() as http:
        response = await http.get(sim.rest_url.removesuffix("/trade-api/v2") + path, headers=signer.rest_headers("GET", path, old))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "header_timestamp_expired"
