"""``KalshiRest``: an async client for the Kalshi REST reads the engine reconciles against.

One ``httpx.AsyncClient`` per instance; every request is signed (rest-spec.md §2.1), paced by a
client-side token bucket (§10.1), retried on 429, 5xx and transport failures with capped
exponential backoff and jitter (Kalshi sends no Retry-After, §10.1), paginated to the end (§3.3)
and parsed into the models of ``fixengine.rest.models``. Every method is a read (a GET), which is
what makes retrying any failure safe; a write added later needs its own retry policy.

One file on purpose (over 400 lines): one client, one method an endpoint, all on the same signing,
pacing, retry and paging path.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from types import TracebackType
from typing import Any, Literal, TypeVar
from urllib.parse import quote, urlsplit

import httpx
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import BaseModel, TypeAdapter, ValidationError

from fixengine.kalshi.facts import TIERS
from fixengine.session.reconnect import Backoff
from fixengine.rest.errors import InvalidResponseError, RestTransportError, error_for
from fixengine.rest.models import (
    Balance,
    ExchangeStatus,
    RestFill,
    Market,
    MarketPosition,
    RestOrder,
    OrderStatus,
    Settlement,
    Timestamp,
)
from fixengine.rest.ratelimit import DEFAULT_COST, SINGLE_ORDER_COST, TokenBucket
from fixengine.kalshi.signing import Signer

log = logging.getLogger("fixengine.rest")

PRODUCTION_URL = "https://external-api.kalshi.com/trade-api/v2"
DEMO_URL = "https://external-api.demo.kalshi.co/trade-api/v2"
API_PREFIX = "/trade-api/v2"

PAGE_LIMIT = 1000  # the maximum for orders, fills, settlements, positions and markets (§3.3)
DEFAULT_MAX_RETRIES = 5
# 429: Kalshi refills in milliseconds, so start short; 5xx and resets: back off to a few seconds.
DEFAULT_BACKOFF = Backoff(initial=0.1, cap=5.0)

MarketStatusFilter = Literal["unopened", "open", "paused", "closed", "settled"]
_ORDER_STATUSES = ("resting", "canceled", "executed")
_MARKET_FILTERS = ("unopened", "open", "paused", "closed", "settled")
_COUNT_FILTERS = ("position", "total_traded")

M = TypeVar("M", bound=BaseModel)


def local_url(port: int, host: str = "127.0.0.1") -> str:
    """The REST root of a simulator (or any Kalshi imitation) listening on ``host:port``."""
    return f"http://{host}:{port}{API_PREFIX}"


class KalshiRest:
    """Signed, paced, retried reads of one Kalshi account.

    ``base_url`` is the API root including ``/trade-api/v2`` (``PRODUCTION_URL``, ``DEMO_URL`` or
    ``local_url(port)``). ``tier`` sizes the read token bucket; pass ``bucket`` instead to share one
    bucket between clients of the same key. ``max_retries`` is the number of retries after the
    first attempt, spaced by ``backoff``.
    """

    def __init__(
        self,
        base_url: str,
        api_key_id: str,
        private_key: rsa.RSAPrivateKey,
        *,
        tier: str = "premier",
        timeout: float = 10.0,
        max_retries: int = DEFAULT_MAX_RETRIES,
        backoff: Backoff = DEFAULT_BACKOFF,
        bucket: TokenBucket | None = None,
    ):
        self.base_url = _check_base_url(base_url)
        self._prefix = urlsplit(self.base_url).path
        if not api_key_id:
            raise ValueError("api_key_id: empty (the KALSHI-ACCESS-KEY id of the API key)")
        if not isinstance(private_key, rsa.RSAPrivateKey):
            # The value itself is never shown: it may be the PEM text.
            raise TypeError(
                f"private_key: expected an RSA private key from fixengine.signing.load_private_key, "
                f"got {type(private_key).__name__}"
            )
        if tier not in TIERS:
            raise ValueError(f"tier: unknown API usage tier {tier!r}; one of {', '.join(TIERS)}")
        if max_retries < 0:
            raise ValueError(f"max_retries must be 0 or more (got {max_retries})")
        if not timeout > 0:
            raise ValueError(f"timeout must be a positive number of seconds (got {timeout})")
        self._signer = Signer(api_key_id, private_key)
        self._bucket = bucket if bucket is not None else TokenBucket.for_tier(tier)
        self._max_retries = max_retries
        self._backoff = backoff
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=timeout,
            headers={"Accept": "application/json", "User-Agent": "fixengine"},
        )

    @property
    def api_key_id(self) -> str:
        return self._signer.key_id

    @property
    def bucket(self) -> TokenBucket:
        return self._bucket

    def __repr__(self) -> str:
        return f"KalshiRest({self.base_url!r}, api_key_id={self.api_key_id!r})"

    async def __aenter__(self) -> KalshiRest:
        await self._http.__aenter__()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool (``async with`` does this for you)."""
        await self._http.aclose()

    # --- portfolio -----------------------------------------------------------------------------

    async def balance(self, *, subaccount: int | None = None) -> Balance:
        """``GET /portfolio/balance``: cash across all shards (subaccount 0 unless given)."""
        body = await self._get("/portfolio/balance", {"subaccount": _subaccount(subaccount)})
        return self._parse(Balance, body, "/portfolio/balance")

    async def positions(
        self,
        ticker: str | None = None,
        event_ticker: str | None = None,
        count_filter: str | Sequence[str] | None = None,
        *,
        subaccount: int | None = None,
    ) -> list[MarketPosition]:
        """``GET /portfolio/positions``, every page: unsettled market positions (subaccount 0 unless
        given). ``count_filter="position"`` drops rows whose position is zero."""
        params = {
            "ticker": ticker,
            "event_ticker": event_ticker,
            "count_filter": _count_filter(count_filter),
            "subaccount": _subaccount(subaccount),
        }
        return await self._all_pages("/portfolio/positions", "market_positions", MarketPosition, params)

    async def orders(
        self,
        status: OrderStatus | None = None,
        ticker: str | None = None,
        min_ts: datetime | int | None = None,
        *,
        subaccount: int | None = None,
    ) -> list[RestOrder]:
        """``GET /portfolio/orders``, every page (all subaccounts unless given). Orders older than
        ``GET /historical/cutoff`` are only in ``/historical/orders`` (not covered here)."""
        if status is not None and status not in _ORDER_STATUSES:
            raise ValueError(f"status: {status!r} is not one of {', '.join(_ORDER_STATUSES)}")
        params = {
            "status": status,
            "ticker": ticker,
            "min_ts": _unix_seconds(min_ts, "min_ts"),
            "subaccount": _subaccount(subaccount),
        }
        return await self._all_pages("/portfolio/orders", "orders", RestOrder, params)

    async def order(self, order_id: str) -> RestOrder:
        """``GET /portfolio/orders/{order_id}``; ``NotFoundError`` when Kalshi does not know it."""
        path = f"/portfolio/orders/{_segment(order_id, 'order_id')}"
        body = await self._get(path, {}, cost=SINGLE_ORDER_COST)
        return self._parse(RestOrder, self._member(body, "order", path), path, "order")

    async def fills(
        self,
        min_ts: datetime | int | None = None,
        ticker: str | None = None,
        order_id: str | None = None,
        *,
        subaccount: int | None = None,
    ) -> list[RestFill]:
        """``GET /portfolio/fills``, every page (all subaccounts unless given)."""
        params = {
            "min_ts": _unix_seconds(min_ts, "min_ts"),
            "ticker": ticker,
            "order_id": order_id,
            "subaccount": _subaccount(subaccount),
        }
        return await self._all_pages("/portfolio/fills", "fills", RestFill, params)

    async def settlements(
        self,
        min_ts: datetime | int | None = None,
        ticker: str | None = None,
        *,
        subaccount: int | None = None,
    ) -> list[Settlement]:
        """``GET /portfolio/settlements``, every page (all subaccounts unless given)."""
        params = {
            "min_ts": _unix_seconds(min_ts, "min_ts"),
            "ticker": ticker,
            "subaccount": _subaccount(subaccount),
        }
        return await self._all_pages("/portfolio/settlements", "settlements", Settlement, params)

    # --- exchange and markets ------------------------------------------------------------------

    async def exchange_status(self) -> ExchangeStatus:
        """``GET /exchange/status``. Kalshi sends this body with 500/503/504 during maintenance;
        such an answer is returned, not raised."""
        path = "/exchange/status"
        body = await self._get(path, {}, answer_in_5xx=ExchangeStatus)
        return self._parse(ExchangeStatus, body, path)

    async def user_data_timestamp(self) -> datetime:
        """``GET /exchange/user_data_timestamp``: portfolio reads reflect the exchange up to this
        time (``as_of_time``); read again until it is past the event you wait for."""
        path = "/exchange/user_data_timestamp"
        body = await self._get(path, {})
        return self._parse(_AsOf, body, path).as_of_time

    async def markets(
        self, tickers: Sequence[str] | None = None, status: MarketStatusFilter | None = None
    ) -> list[Market]:
        """``GET /markets``, every page. ``status`` is the filter vocabulary (``open`` lists markets
        whose status is ``active``)."""
        if isinstance(tickers, str):
            tickers = [tickers]  # a bare string would otherwise be split into characters
        if status is not None and status not in _MARKET_FILTERS:
            raise ValueError(f"status: {status!r} is not one of {', '.join(_MARKET_FILTERS)}")
        params = {"tickers": ",".join(tickers) if tickers else None, "status": status}
        return await self._all_pages("/markets", "markets", Market, params)

    async def market(self, ticker: str) -> Market:
        """``GET /markets/{ticker}``; ``NotFoundError`` when unknown (or archived to /historical)."""
        path = f"/markets/{_segment(ticker, 'ticker')}"
        body = await self._get(path, {})
        return self._parse(Market, self._member(body, "market", path), path, "market")

    # --- plumbing ------------------------------------------------------------------------------

    async def _all_pages(
        self, path: str, key: str, model: type[M], params: Mapping[str, object]
    ) -> list[M]:
        """Follow ``cursor`` until Kalshi says the end (empty string, null or absent)."""
        adapter = TypeAdapter(list[model])  # type: ignore[valid-type]
        query = {name: value for name, value in params.items() if value is not None}
        query["limit"] = PAGE_LIMIT
        items: list[M] = []
        seen: set[str] = set()
        while True:
            body = await self._get(path, query)
            page = body.get(key)
            if key not in body or (page is not None and not isinstance(page, list)):
                raise InvalidResponseError("GET", self._full(path), 200, f"{key}: expected a list of objects")
            items.extend(self._parse(adapter, page or [], path, key))
            cursor = body.get("cursor")
            if not cursor:
                return items
            if not isinstance(cursor, str):
                raise InvalidResponseError("GET", self._full(path), 200, f"cursor: expected a string, got {cursor!r}")
            if cursor in seen:  # a server repeating itself would otherwise page forever
                raise InvalidResponseError("GET", self._full(path), 200, f"cursor {cursor!r} came back twice")
            seen.add(cursor)
            query["cursor"] = cursor

    async def _get(
        self,
        path: str,
        params: Mapping[str, object],
        *,
        cost: int = DEFAULT_COST,
        answer_in_5xx: type[BaseModel] | None = None,
    ) -> dict[str, Any]:
        response = await self._send("GET", path, params, cost, answer_in_5xx)
        try:
            body = _json(response.content)
        except ValueError:
            raise InvalidResponseError(
                "GET", self._full(path), response.status_code, f"body is not JSON: {response.text[:100]!r}"
            ) from None
        if not isinstance(body, dict):
            raise InvalidResponseError("GET", self._full(path), response.status_code, "body is not a JSON object")
        return body

    def _parse(self, model: Any, data: object, path: str, where: str = "") -> Any:
        """Validate ``data`` with a model (or TypeAdapter); a mismatch is ``InvalidResponseError``
        listing every field at fault, e.g. ``orders[3].fill_count_fp: Field required``."""
        try:
            if isinstance(model, TypeAdapter):
                return model.validate_python(data)
            return model.model_validate(data)
        except ValidationError as exc:
            problems = [f"{_loc(where, err['loc'])}: {err['msg']}" for err in exc.errors(include_url=False)]
            raise InvalidResponseError("GET", self._full(path), 200, "; ".join(problems)) from None

    def _member(self, body: dict[str, Any], key: str, path: str) -> object:
        if key not in body:
            raise InvalidResponseError("GET", self._full(path), 200, f"{key}: Field required")
        return body[key]

    def _full(self, path: str) -> str:
        """The path as signed and sent, for error messages."""
        return self._prefix + path

    def _signed_request(self, method: str, path: str, params: Mapping[str, object]) -> httpx.Request:
        """The request with its three ``KALSHI-ACCESS-*`` headers. The signed path is the path
        as it goes on the wire (percent-encoded, with the API root) without the query string."""
        query = {name: _query_value(value) for name, value in params.items() if value is not None}
        request = self._http.build_request(method, path, params=query)
        wire_path = request.url.raw_path.split(b"?", 1)[0].decode("ascii")
        request.headers.update(self._signer.rest_headers(method, wire_path))
        return request

    async def _send(
        self, method: str, path: str, params: Mapping[str, object], cost: int, answer_in_5xx: type[BaseModel] | None
    ) -> httpx.Response:
        attempt = 0
        while True:
            await self._bucket.take(cost)
            # Signed per attempt: the timestamp must be fresh.
            request = self._signed_request(method, path, params)
            signed_path = request.url.raw_path.split(b"?", 1)[0].decode("ascii")
            started = time.monotonic()
            failure: str
            response: httpx.Response | None
            try:
                response = await self._http.send(request)
            except httpx.TransportError as exc:
                response = None
                failure = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            else:
                log.debug(
                    "%s %s -> %d in %.0f ms", method, signed_path, response.status_code,
                    (time.monotonic() - started) * 1000,
                )
                status = response.status_code
                if response.is_success or (status >= 500 and _carries(response, answer_in_5xx)):
                    return response
                if status != 429 and status < 500:
                    raise error_for(method, signed_path, status, response.content, attempts=attempt + 1)
                failure = f"HTTP {status}"
            if attempt >= self._max_retries:
                if response is None:
                    raise RestTransportError(method, signed_path, None, failure, attempts=attempt + 1)
                raise error_for(
                    method, signed_path, response.status_code, response.content, attempts=attempt + 1
                )
            delay = self._backoff.delay(attempt, random.random())
            log.warning(
                "%s %s: %s; retry %d of %d in %.2fs", method, signed_path, failure, attempt + 1,
                self._max_retries, delay,
            )
            await asyncio.sleep(delay)
            attempt += 1


class _AsOf(BaseModel):
    as_of_time: Timestamp


def _json(content: bytes) -> object:
    # parse_float=Decimal: a JSON number that reaches a money field arrives exact.
    return json.loads(content, parse_float=Decimal)


def _carries(response: httpx.Response, model: type[BaseModel] | None) -> bool:
    """Whether an error answer's body is a valid ``model`` (Kalshi's status-in-a-503 case)."""
    if model is None:
        return False
    try:
        model.model_validate(_json(response.content))
    except (ValueError, ValidationError):
        return False
    return True


def _loc(where: str, loc: tuple[int | str, ...]) -> str:
    text = where
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "body"


def _check_base_url(base_url: str) -> str:
    url = base_url.rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"base_url {base_url!r} is not an http(s) URL (e.g. {PRODUCTION_URL})")
    if not parts.path.startswith("/trade-api/"):
        raise ValueError(
            f"base_url {base_url!r} must include the API root path /trade-api/v2 "
            f"(e.g. {PRODUCTION_URL}): it is part of every signed path"
        )
    if parts.query or parts.fragment:
        raise ValueError(f"base_url {base_url!r} must not carry a query or fragment")
    return url


def _segment(value: str, name: str) -> str:
    """One path segment, escaped: an id is never allowed to change which endpoint is called."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name}: expected a non-empty string (got {value!r})")
    return quote(value, safe="")


def _unix_seconds(value: datetime | int | None, name: str) -> int | None:
    """A ``min_ts``-style filter as Unix seconds (floored: a filter must not skip the boundary)."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"{name}: expected a datetime or Unix seconds, got a boolean")
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"{name}: {value} has no timezone; pass an aware datetime (e.g. UTC)")
        return int(value.timestamp() // 1)
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"{name}: {value} is before 1970")
        if value > 10**11:
            raise ValueError(f"{name}: {value} looks like milliseconds; Kalshi filters take Unix seconds")
        return value
    raise ValueError(f"{name}: expected a datetime or Unix seconds, got {type(value).__name__}")


def _subaccount(value: int | None) -> int | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 63):
        raise ValueError(f"subaccount: {value!r} is not a subaccount number (0 to 63)")
    return value


def _count_filter(value: str | Sequence[str] | None) -> str | None:
    if value is None:
        return None
    names = value.split(",") if isinstance(value, str) else list(value)
    unknown = [n for n in names if n not in _COUNT_FILTERS]
    if unknown or not names:
        raise ValueError(f"count_filter: {', '.join(unknown) or 'empty'} not among {', '.join(_COUNT_FILTERS)}")
    return ",".join(names)


def _query_value(value: object) -> str | int:
    return value if isinstance(value, (str, int)) else str(value)


__all__ = ["DEFAULT_BACKOFF", "DEMO_URL", "PAGE_LIMIT", "PRODUCTION_URL", "KalshiRest", "local_url"]
