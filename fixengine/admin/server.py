"""The service's HTTP endpoint, in the engine's own asyncio loop (every handler reads the engine and
the gateway where they live: no locks, no copies across threads).

    GET  /livez      the loop turns and the journals can be written            200 | 503
    GET  /readyz     every Kalshi session logged on with its book confirmed,   200 | 503
                     outside maintenance, not stopping or draining
    GET  /status     JSON: each Kalshi session and OMS client (``fixengine.admin.status``)
    GET  /           the status page (refreshes itself from /status)
    GET  /metrics    Prometheus text format
    POST /admin/...  operators' actions, bearer token only, each one audited

Reading is open to whoever reaches the port (bind it to loopback or a private network, as the
default does); every state change is a POST with the token of ``[admin] token_file``. An admin
request without it gets 401, and is audited too.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import os
import shutil
import socket
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from fixengine.admin.metrics import Metrics
from fixengine.admin.status import Recent, readiness, status_document, in_maintenance
from fixengine.config import EngineConfig
from fixengine.engine import Engine
from fixengine.errors import FixEngineError
from fixengine.events import Event
from fixengine.gateway.service import Gateway
from fixengine.reconcile.runner import ReconciliationDone, ReconciliationFailed
from fixengine.secrets import read_secret

log = logging.getLogger("fixengine.admin")

LOOP_TICK = 0.5  # seconds between the loop's liveness ticks
LOOP_STALL = 5.0  # a tick this late means the loop is stuck: not live
MIN_FREE_BYTES = 64 * 1024 * 1024  # below this on the journal's disk, it is not writable for long
GRACEFUL_SHUTDOWN = 1.0  # open HTTP requests get this long at stop


class _Server(uvicorn.Server):
    """uvicorn in a loop it does not own: the service handles SIGTERM/SIGINT/SIGHUP itself."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class AdminServer:
    """The HTTP endpoint of one ``fixengine serve``. ``start`` binds and returns its URL."""

    def __init__(self, config: EngineConfig, engine: Engine, gateway: Gateway, *,
                 stopping: Callable[[], bool] = lambda: False):
        self.config = config
        self._engine = engine
        self._gateway = gateway
        self._stopping = stopping
        self._recent = Recent()
        self._metrics: Metrics | None = None  # at start: it times the engine's journal, open from then on
        self._token = read_secret(config.admin.token_file, "admin token file") if config.admin.token_file else None
        self._audit_path = config.data_dir / "admin-audit.log"
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._last_tick = time.monotonic()
        self.url: str | None = None
        engine.observe(self._on_event)

    # --- lifecycle ----------------------------------------------------------------------------------

    async def start(self) -> str:
        self._metrics = Metrics(self._engine, self._gateway)
        a = self.config.admin
        sock = socket.socket(socket.AF_INET6 if ":" in a.host else socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((a.host, a.port))
        except OSError as exc:
            sock.close()
            raise FixEngineError(f"admin: cannot listen on {a.host}:{a.port} ([admin] host/port): {exc.strerror}") from None
        config = uvicorn.Config(self.app(), log_config=None, access_log=False, lifespan="off", http="h11", ws="none",
                                timeout_graceful_shutdown=GRACEFUL_SHUTDOWN, server_header=False)
        self._server = _Server(config)
        self._task = asyncio.ensure_future(self._server.serve(sockets=[sock]))
        while not self._server.started:
            if self._task.done():  # it failed to start: say why
                self._task.result()
                raise FixEngineError("admin: the HTTP server stopped while starting")
            await asyncio.sleep(0.01)
        self._ticker = asyncio.ensure_future(self._tick())
        host, port = sock.getsockname()[:2]
        self.url = f"http://{'[' + host + ']' if ':' in host else host}:{port}"
        return self.url

    async def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._task, GRACEFUL_SHUTDOWN + 2)
        self._server = self._task = None

    async def _tick(self) -> None:
        while True:
            self._last_tick = time.monotonic()
            await asyncio.sleep(LOOP_TICK)

    def _on_event(self, event: Event) -> None:
        if isinstance(event, ReconciliationDone):
            self._recent.reconciled(event.session, event.at, event.findings, event.describe())
        elif isinstance(event, ReconciliationFailed):
            self._recent.failed(event.session, event.at, event.reason)
        if self._metrics is not None:
            self._metrics.on_event(event)

    # --- what it says -------------------------------------------------------------------------------

    def stopping(self) -> bool:
        return self._stopping() or self._gateway.draining

    def status(self) -> dict[str, Any]:
        engine, gateway = self._engine, self._gateway
        return status_document(
            engine.health(), gateway.health(), now=datetime.now(timezone.utc), stopping=self.stopping(),
            book=engine.book, accounts={s.account_id: s.name for s in reversed(self.config.sessions)},
            client_of=gateway.clients_of_orders(), rejects=gateway.rejects, findings=self._recent.findings,
        )

    def liveness(self) -> tuple[bool, dict[str, Any]]:
        lag = time.monotonic() - self._last_tick
        checks: dict[str, Any] = {"loop": {"ok": lag < LOOP_STALL, "since_last_tick": round(lag, 3)}}
        for name, path in (("journal", self.config.journal_path), ("gateway_journal", self.config.gateway_path)):
            if path is not None:
                checks[name] = _writable(path)
        return all(c["ok"] for c in checks.values()), checks

    # --- HTTP ---------------------------------------------------------------------------------------

    def app(self) -> FastAPI:
        app = FastAPI(title="fixengine serve", docs_url=None, redoc_url=None, openapi_url=None)

        @app.get("/livez")
        def livez() -> JSONResponse:
            live, checks = self.liveness()
            return JSONResponse({"live": live, "checks": checks}, status_code=200 if live else 503)

        @app.get("/readyz")
        def readyz() -> JSONResponse:
            ready, reasons = readiness(self._engine.health(), maintenance=in_maintenance(datetime.now(timezone.utc)),
                                       stopping=self.stopping())
            return JSONResponse({"ready": ready, "not_ready": reasons}, status_code=200 if ready else 503)

        @app.get("/status")
        def status() -> JSONResponse:
            return JSONResponse(self.status())

        @app.get("/metrics")
        def metrics() -> Response:
            assert self._metrics is not None
            body, content_type = self._metrics.render()
            return Response(body, media_type=content_type)

        @app.get("/", response_class=HTMLResponse)
        def page() -> HTMLResponse:
            return HTMLResponse(_page())

        admin = self._authorized

        @app.post("/admin/kalshi/{name}/{action}")
        def kalshi_session(name: str, action: str, who: str = Depends(admin)) -> JSONResponse:
            actions = {"enable": self._engine.enable_session, "disable": self._engine.disable_session,
                       "logout": self._engine.force_logout}
            return self._act(who, f"kalshi {name} {action}", lambda: _pick(actions, action)(name))

        @app.post("/admin/oms/{name}/{action}")
        def oms_client(name: str, action: str, who: str = Depends(admin)) -> JSONResponse:
            actions = {"enable": self._gateway.enable_client, "disable": self._gateway.disable_client,
                       "logout": self._gateway.logout_client}
            return self._act(who, f"oms {name} {action}", lambda: _pick(actions, action)(name))

        @app.post("/admin/drain")
        def drain(who: str = Depends(admin)) -> JSONResponse:
            return self._act(who, "drain", self._gateway.drain)

        @app.post("/admin/resume")
        def resume(who: str = Depends(admin)) -> JSONResponse:
            return self._act(who, "resume", self._gateway.resume_orders)

        @app.post("/admin/reconcile/{session}")
        async def reconcile(session: str, who: str = Depends(admin)) -> JSONResponse:
            try:
                findings = await self._engine.reconcile(session)
            except FixEngineError as exc:
                self._audit(who, f"reconcile {session}", f"refused: {exc}")
                raise HTTPException(409, str(exc)) from None
            result = {"clean": findings.clean, "discrepancies": [d.describe() for d in findings.discrepancies],
                      "unexplained": len(findings.unexplained)}
            self._audit(who, f"reconcile {session}", "clean" if findings.clean else f"{len(findings.unexplained)} unexplained")
            return JSONResponse(result)

        @app.get("/admin/cl-ord-id/{client}/{cl_ord_id}")
        def cl_ord_id(client: str, cl_ord_id: str, who: str = Depends(admin)) -> JSONResponse:
            found = self._gateway.cl_ord_id(client, cl_ord_id)
            self._audit(who, f"look up {client} {cl_ord_id}", "found" if found else "not found")
            if found is None:
                raise HTTPException(404, f"OMS client {client!r} never sent ClOrdID {cl_ord_id!r}")
            return JSONResponse(found)

        return app

    def _authorized(self, request: Request) -> str:
        """The caller (its address) if it carries the admin token; 401 (audited) otherwise."""
        who = request.client.host if request.client else "?"
        given = request.headers.get("authorization", "")
        scheme, _, token = given.partition(" ")
        if self._token is None:
            reason = "admin actions are off: no [admin] token_file configured"
        elif scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), self._token.encode()):
            reason = "a bearer token is required" if not given else "wrong token"
        else:
            return who
        self._audit(who, f"{request.method} {request.url.path}", f"401 {reason}")
        raise HTTPException(401, reason, headers={"WWW-Authenticate": "Bearer"})

    def _act(self, who: str, action: str, do: Callable[[], object]) -> JSONResponse:
        try:
            do()
        except (FixEngineError, KeyError) as exc:
            self._audit(who, action, f"refused: {exc}")
            raise HTTPException(404 if isinstance(exc, KeyError) else 409, str(exc).strip("'\"")) from None
        self._audit(who, action, "done")
        return JSONResponse({"done": action})

    def _audit(self, who: str, action: str, outcome: str) -> None:
        """One line per admin request, appended (and logged): who, what, and how it ended."""
        record = {"time": datetime.now(timezone.utc).isoformat(), "from": who, "action": action, "outcome": outcome}
        log.warning("admin: %s from %s: %s", action, who, outcome)
        self._audit_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self._audit_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")


def _pick(actions: dict[str, Callable[[str], None]], action: str) -> Callable[[str], None]:
    if action not in actions:
        raise KeyError(f"no action {action!r}; one of {', '.join(actions)}")
    return actions[action]


def _writable(path: Path) -> dict[str, Any]:
    """Whether the journal at ``path`` (a file, or a directory of them) can take writes now."""
    directory = path if path.is_dir() else path.parent
    if not os.access(directory, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        return {"ok": False, "reason": f"{path} is not writable"}
    free = shutil.disk_usage(directory).free
    if free < MIN_FREE_BYTES:
        return {"ok": False, "reason": f"{free // (1024 * 1024)} MiB free on {directory}'s disk"}
    return {"ok": True}


def _page() -> str:
    return resources.files("fixengine.admin").joinpath("page.html").read_text(encoding="utf-8")
