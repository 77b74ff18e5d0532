"""The REST API's HTTP server: uvicorn on a thread of its own, started and stopped synchronously.

The listening socket is bound here, before uvicorn starts, so a port in use fails ``start()`` with
the OSError itself and port 0 is known at once. uvicorn gets no signal handlers (not the main
thread), no logging configuration (the process's own stays as it is) and a bounded graceful
shutdown, so ``stop()`` cannot hang on a client that keeps its connection open.
"""

from __future__ import annotations

import logging
import socket
import threading

import uvicorn
from fastapi import FastAPI

log = logging.getLogger("simulator.rest")

START_TIMEOUT_S = 10.0
GRACEFUL_SHUTDOWN_S = 2  # open requests get this long to finish at stop


class _Server(uvicorn.Server):
    """uvicorn's server, telling a waiting thread when it accepts connections."""

    def __init__(self, config: uvicorn.Config, ready: threading.Event):
        super().__init__(config)
        self._ready = ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().startup(sockets)
        finally:
            self._ready.set()


class RestServer:
    def __init__(self, app: FastAPI, host: str, port: int):
        self._app = app
        self._host = host
        self._requested_port = port
        self.port: int | None = None
        self._socket: socket.socket | None = None
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> int:
        """Listen and serve; return the port once connections are accepted."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self._host, self._requested_port))
        except OSError:
            sock.close()
            raise
        self._socket = sock
        config = uvicorn.Config(
            self._app, log_config=None, access_log=False, lifespan="off", loop="asyncio", http="h11",
            ws="none", timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S, server_header=False,
        )
        ready = threading.Event()
        self._server = _Server(config, ready)
        self._thread = threading.Thread(target=self._run, name="simulator-rest", daemon=True)
        self._thread.start()
        if not ready.wait(START_TIMEOUT_S) or not self._server.started:
            self.stop()
            raise RuntimeError("the simulator's REST server did not start")
        self.port = sock.getsockname()[1]
        return self.port

    def _run(self) -> None:
        assert self._server is not None and self._socket is not None
        try:
            self._server.run(sockets=[self._socket])
        except BaseException:  # noqa: BLE001 - SystemExit from uvicorn included: say it, end the thread
            log.exception("the simulator's REST server stopped with an error")

    def stop(self) -> None:
        """Stop accepting, let open requests finish (bounded), close every connection, join."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=GRACEFUL_SHUTDOWN_S + 5)
            if self._thread.is_alive() and self._server is not None:
                self._server.force_exit = True
                self._thread.join(timeout=5)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None
        self.port = None
