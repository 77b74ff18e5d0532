"""The simulator's REST API: the portfolio subset of Kalshi's Trade API v2 (rest-spec §4, §7, §8),
over the same exchange as the FIX acceptor, plus the simulator's ``/admin`` calls.

The HTTP edge only: parse parameters, check the signature and the rate limit, call the pure
queries in ``simulator.rest_queries`` on a snapshot, and turn failures into Kalshi's error bodies:

* 401 nested ``{"error": {"code", "message", "details"}}``: missing header, unknown key, stale
  timestamp, bad signature (``rest_auth``); 404 the same for an unknown order, market or path;
* 400 bare ``{"msg": ...}``: a bad query parameter, e.g. ``limit`` above 1000;
* 429 ``{"error": "too many requests"}``, with no Retry-After header (``rest_limits``).

Handlers are coroutines and never block for long (snapshots are taken under the venue's lock and
then read without it), so no worker threads are involved.
"""

# No ``from __future__ import annotations``: FastAPI reads the routes' annotations at run time, and
# some name types local to the router builders.
import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader
from starlette.exceptions import HTTPException

from simulator.rest import models as m
from simulator.rest import queries as q
from simulator.fix.logon import Account
from simulator.rest.admin import Admin, AdminError
from simulator.rest.auth import KEY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, AuthFailure, authenticate
from simulator.maintenance import Maintenance
from simulator.rest.format import RATE_LIMITED_BODY, error_body, exchange_schedule_body, exchange_status_body
from simulator.rest.limits import DEFAULT_COST, GET_ORDER_COST, RateLimiter
from simulator.rest.paging import DEFAULT_LIMIT, MAX_LIMIT
from simulator.rest.state import Snapshots

API_PREFIX = "/trade-api/v2"
ADMIN_PREFIX = "/admin"
SCHEDULE_WEEKS = 4  # how far ahead /exchange/schedule lists maintenance windows


@dataclass(frozen=True)
class RestContext:
    """What the API serves from: the simulator's accounts, clock, exchange snapshots and admin."""

    accounts: Mapping[str, Account]
    snapshots: Snapshots  # what reads see (may lag: config rest_lag)
    fresh: Snapshots  # never lags: the admin calls answer with what they just did
    limiter: RateLimiter
    clock: Callable[[], datetime]  # the simulator's clock (skewable): signature timestamps
    tolerance_s: float
    admin: Admin
    maintenance: Maintenance | None = None  # the exchange's pauses and maintenance windows


class _Refused(Exception):
    """Answer the request with ``body`` and ``status``, whatever the route."""

    def __init__(self, status: int, body: dict[str, Any]):
        self.status = status
        self.body = body


_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": m.BareError, "description": "a bad query parameter"},
    401: {"model": m.ErrorBody, "description": "missing or bad KALSHI-ACCESS-* headers"},
    429: {"model": m.ThrottledError, "description": "the API key's read bucket is empty"},
}
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="page size")]
Cursor = Annotated[str | None, Query(description="from the previous page; empty or absent: first page")]
MinTs = Annotated[int | None, Query(description="Unix seconds, inclusive")]
MaxTs = Annotated[int | None, Query(description="Unix seconds, inclusive")]


def build_app(ctx: RestContext) -> FastAPI:
    app = FastAPI(
        title="Kalshi Trade API v2 (fixengine simulator)",
        version="2",
        description="The portfolio, market and exchange reads of Kalshi's Trade API v2, served by the "
        "local simulator over the exchange its FIX acceptor trades on; plus /admin calls for tests.",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
    )
    _install_error_handlers(app)
    app.include_router(_portfolio_router(ctx))
    app.include_router(_public_router(ctx))
    app.include_router(_admin_router(ctx))
    return app


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(_Refused)
    async def refused(_: Request, exc: _Refused) -> JSONResponse:
        return JSONResponse(exc.body, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def bad_parameter(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"msg": _validation_message(exc)}, status_code=400)

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "bad_request")
        return JSONResponse(error_body(code, str(exc.detail)), status_code=exc.status_code)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(x) for x in error.get("loc", ())[1:]) or "request"
        got = f" (got {error['input']!r})" if "input" in error and not isinstance(error["input"], dict) else ""
        parts.append(f"{where}: {error.get('msg', 'invalid')}{got}")
    return "; ".join(parts)


# --- authentication and rate limit ---------------------------------------------------------------

# Declared for the OpenAPI document; ``authenticate`` reads the headers itself.
_key = APIKeyHeader(name=KEY_HEADER, scheme_name="KalshiAccessKey", auto_error=False, description="API key id")
_timestamp = APIKeyHeader(name=TIMESTAMP_HEADER, scheme_name="KalshiAccessTimestamp", auto_error=False,
                          description="Unix time, milliseconds")
_signature = APIKeyHeader(name=SIGNATURE_HEADER, scheme_name="KalshiAccessSignature", auto_error=False,
                          description="base64 RSA-PSS(SHA-256) signature of timestamp + METHOD + path (no query)")


def _signed(ctx: RestContext, cost: int) -> Callable[..., Any]:
    """A dependency: the account whose key signed the request, after charging ``cost`` tokens."""

    async def account(
        request: Request,
        _k: Annotated[str | None, Depends(_key)],
        _t: Annotated[str | None, Depends(_timestamp)],
        _s: Annotated[str | None, Depends(_signature)],
    ) -> str:
        # The path as sent (percent-escapes and all): that is what the client signed.
        raw = request.scope.get("raw_path")
        path = raw.decode("latin-1") if isinstance(raw, bytes) else request.url.path
        now_ms = int(ctx.clock().timestamp() * 1000)
        found = authenticate(request.headers, request.method, path, ctx.accounts, now_ms, ctx.tolerance_s)
        if isinstance(found, AuthFailure):
            raise _Refused(401, error_body(found.code, found.message, found.details))
        if not ctx.limiter.allow(found.api_key_id, cost):
            raise _Refused(429, RATE_LIMITED_BODY)
        return found.owner  # the account the key trades for: what every portfolio read is about

    return account


def _not_found(exc: LookupError) -> _Refused:
    return _Refused(404, error_body("not_found", str(exc.args[0]) if exc.args else "not found"))


# --- routes ----------------------------------------------------------------------------------------


def _portfolio_router(ctx: RestContext) -> APIRouter:
    router = APIRouter(prefix=API_PREFIX, tags=["portfolio"], responses=_RESPONSES)
    Signed = Annotated[str, Depends(_signed(ctx, DEFAULT_COST))]

    @router.get("/portfolio/balance", response_model=m.Balance)
    async def get_balance(account: Signed) -> m.Balance:
        return q.balance(ctx.snapshots.get(account), account)

    @router.get("/portfolio/positions", response_model=m.PositionList)
    async def get_positions(
        account: Signed, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None, ticker: str | None = None,
        event_ticker: str | None = None,
        count_filter: Annotated[str | None, Query(pattern=r"^(position|total_traded)(,(position|total_traded))*$",
                                                  description="comma list of position, total_traded")] = None,
        settlement_status: q.SettlementStatusFilter = "unsettled",
    ) -> m.PositionList:
        filters = tuple(count_filter.split(",")) if count_filter else ()
        return q.positions(ctx.snapshots.get(account), account, limit=limit, cursor=cursor, ticker=ticker,
                           event_ticker=event_ticker, count_filter=filters, settlement_status=settlement_status)

    @router.get("/portfolio/orders", response_model=m.OrderList)
    async def get_orders(
        account: Signed, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None,
        status: q.OrderStatusFilter | None = None, ticker: str | None = None,
        event_ticker: Annotated[str | None, Query(description="comma list")] = None,
        min_ts: MinTs = None, max_ts: MaxTs = None,
    ) -> m.OrderList:
        return q.orders(ctx.snapshots.get(account), account, limit=limit, cursor=cursor, status=status, ticker=ticker,
                        event_ticker=event_ticker, min_ts=min_ts, max_ts=max_ts)

    @router.get("/portfolio/orders/{order_id}", response_model=m.OrderOne,
                responses={404: {"model": m.ErrorBody, "description": "unknown order"}})
    async def get_order(account: Annotated[str, Depends(_signed(ctx, GET_ORDER_COST))], order_id: str) -> m.OrderOne:
        try:
            return q.order(ctx.snapshots.get(account), account, order_id)
        except q.ResourceMissing as exc:
            raise _not_found(exc) from None

    @router.get("/portfolio/fills", response_model=m.FillList)
    async def get_fills(
        account: Signed, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None, ticker: str | None = None,
        order_id: str | None = None, min_ts: MinTs = None, max_ts: MaxTs = None,
    ) -> m.FillList:
        return q.fills(ctx.snapshots.get(account), account, limit=limit, cursor=cursor, ticker=ticker,
                       order_id=order_id, min_ts=min_ts, max_ts=max_ts)

    @router.get("/portfolio/settlements", response_model=m.SettlementList)
    async def get_settlements(
        account: Signed, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None, ticker: str | None = None,
        event_ticker: str | None = None, min_ts: MinTs = None, max_ts: MaxTs = None,
    ) -> m.SettlementList:
        return q.settlements(ctx.snapshots.get(account), account, limit=limit, cursor=cursor, ticker=ticker,
                             event_ticker=event_ticker, min_ts=min_ts, max_ts=max_ts)

    return router


def _public_router(ctx: RestContext) -> APIRouter:
    """Market and exchange reads: no signature needed (rest-spec §2.1)."""
    router = APIRouter(prefix=API_PREFIX, tags=["markets and exchange"])

    @router.get("/exchange/status", response_model=m.ExchangeStatus)
    async def get_exchange_status() -> m.ExchangeStatus:
        return exchange_status_body(ctx.maintenance.state() if ctx.maintenance is not None else None)

    @router.get("/exchange/schedule", response_model=m.ExchangeSchedule)
    async def get_exchange_schedule() -> m.ExchangeSchedule:
        maintenance = ctx.maintenance
        now = maintenance.now() if maintenance is not None else ctx.clock()
        windows = maintenance.upcoming(SCHEDULE_WEEKS) if maintenance is not None else []
        return exchange_schedule_body(now, windows, SCHEDULE_WEEKS)

    @router.get("/exchange/user_data_timestamp", response_model=m.UserDataTimestamp)
    async def get_user_data_timestamp() -> m.UserDataTimestamp:
        return q.user_data_timestamp(ctx.snapshots.get())

    @router.get("/markets", response_model=m.MarketList, responses={400: {"model": m.BareError}})
    async def get_markets(
        limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None, status: q.MarketStatusFilter | None = None,
        tickers: Annotated[str | None, Query(description="comma list")] = None, event_ticker: str | None = None,
    ) -> m.MarketList:
        wanted = tuple(t.strip() for t in tickers.split(",") if t.strip()) if tickers else ()
        return q.markets(ctx.snapshots.get(), limit=limit, cursor=cursor, status=status, tickers=wanted,
                         event_ticker=event_ticker)

    @router.get("/markets/{ticker}", response_model=m.MarketOne,
                responses={404: {"model": m.ErrorBody, "description": "unknown market"}})
    async def get_market(ticker: str) -> m.MarketOne:
        try:
            return q.market(ctx.snapshots.get(), ticker)
        except q.ResourceMissing as exc:
            raise _not_found(exc) from None

    return router


def _admin_router(ctx: RestContext) -> APIRouter:
    """``Simulator.admin`` over HTTP (no signature: the port listens on loopback only). Not Kalshi's."""
    router = APIRouter(prefix=ADMIN_PREFIX, tags=["simulator admin"], responses={
        400: {"model": m.ErrorBody, "description": "the exchange cannot do it"},
        404: {"model": m.ErrorBody, "description": "unknown order or market"},
    })

    def refused(exc: AdminError) -> _Refused:
        if exc.not_found:
            return _Refused(404, error_body("not_found", str(exc)))
        return _Refused(400, error_body("invalid_admin_request", str(exc)))

    @router.post("/orders/{order_id}/cancel", response_model=m.OrderOne)
    async def admin_cancel_order(order_id: str) -> m.OrderOne:
        """Cancel an open order; its FIX session is not told."""
        try:
            order = ctx.admin.cancel_order(order_id)
        except AdminError as exc:
            raise refused(exc) from None
        return q.order(ctx.fresh.get(order.account_id), order.account_id, order_id)

    @router.post("/orders/{order_id}/fill", response_model=m.OrderOne)
    async def admin_fill_order(order_id: str, body: m.AdminFill) -> m.OrderOne:
        """Fill part of an open order at its price against the house; its FIX session is not told."""
        try:
            order = ctx.admin.add_fill(order_id, body.quantity)
        except AdminError as exc:
            raise refused(exc) from None
        return q.order(ctx.fresh.get(order.account_id), order.account_id, order_id)

    @router.post("/exchange/pause", response_model=m.ExchangeStatus)
    async def admin_pause(body: m.AdminPause) -> m.ExchangeStatus:
        """Pause the exchange until resumed; CancelOrderOnPause orders are cancelled (and reported)."""
        try:
            await asyncio.to_thread(ctx.admin.pause, body.kind)  # may send reports: off the loop
        except AdminError as exc:
            raise refused(exc) from None
        return exchange_status_body(ctx.maintenance.state() if ctx.maintenance is not None else None)

    @router.post("/exchange/resume", response_model=m.ExchangeStatus)
    async def admin_resume() -> m.ExchangeStatus:
        """End the operator's pause (the maintenance window, if in force, still pauses trading)."""
        try:
            await asyncio.to_thread(ctx.admin.resume)
        except AdminError as exc:
            raise refused(exc) from None
        return exchange_status_body(ctx.maintenance.state() if ctx.maintenance is not None else None)

    @router.post("/clock", response_model=m.ExchangeStatus)
    async def admin_move_clock(body: m.AdminClock) -> m.ExchangeStatus:
        """Set the maintenance calendar's clock: a window that begins or ends at the new time does now."""
        try:
            await asyncio.to_thread(ctx.admin.move_clock, body.to)  # a window beginning logs sessions out
        except AdminError as exc:
            raise refused(exc) from None
        return exchange_status_body(ctx.maintenance.state() if ctx.maintenance is not None else None)

    @router.post("/markets/{ticker}/settle", response_model=m.MarketOne)
    async def admin_settle_market(ticker: str, body: m.AdminSettle) -> m.MarketOne:
        """Settle a market: orders end, winners are paid (a scalar's YES contracts ``price``), positions go
        to zero; the sessions entitled get settlement reports."""
        try:
            ctx.admin.settle_market(ticker, body.result, body.price)
        except AdminError as exc:
            raise refused(exc) from None
        return q.market(ctx.fresh.get(), ticker)

    return router

