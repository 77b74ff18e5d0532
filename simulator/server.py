"""The simulator as one object: account registry, QuickFIX acceptor, logon gates and REST API.

    with Simulator(load_simulator_config("config/simulator.toml")) as sim:
        print(sim.ports)        # {"KalshiNR": 8228, ..., "fix44": 8240}
        print(sim.rest_url)     # http://127.0.0.1:8250/trade-api/v2 (config rest_port)
        sim.faults.drop_outbound(key_id, 2)   # fault injection (simulator.faults)
        sim.admin.cancel_order("O3")          # state changes behind FIX's back (simulator.rest_admin)
        sim.maintenance.pause("trading")      # pauses and the maintenance clock (simulator.maintenance)

Start and stop are synchronous so that tests, the CLI and the engine's embedded mode can all use it;
the gates run on an asyncio loop in a thread of their own, QuickFIX on another, uvicorn (REST) on a
third.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from simulator.budgets import WriteBudgets
from simulator.events import SimEvent, SimEventKind, SimEventSink
from simulator.fix.acceptor import Acceptor
from simulator.config import HOUSE_ACCOUNT, AccountConfig, ListenerSpec, SimulatorConfig
from simulator.control import ControlServer
from simulator.exchange.pauses import Pauses
from simulator.maintenance import Maintenance
from simulator.faults import FaultController, FaultError
from simulator.fix.gate import GateHub, utc_now
from simulator.fix.logon import Account, LogonPolicy, Refusal, check_logon
from simulator.exchange.matching import AccountState
from simulator.fix.order_reports import Outgoing
from simulator.recording import RestRecorder, RestSink, WireSink
from simulator.rest.admin import Admin
from simulator.rest.api import API_PREFIX, RestContext, build_app
from simulator.rest.limits import RateLimiter
from simulator.rest.server import RestServer
from simulator.rest.state import Snapshots
from simulator.tls import server_context, write_self_signed
from simulator.exchange.venue import Venue

log = logging.getLogger("simulator")


class Simulator:
    """A local imitation of Kalshi's FIX acceptor and REST portfolio API."""

    def __init__(
        self,
        config: SimulatorConfig,
        *,
        extra_accounts: Iterable[AccountConfig] = (),
        on_event: SimEventSink | None = None,
        on_wire: WireSink | None = None,
        on_rest: RestSink | None = None,
    ):
        """``on_wire``/``on_rest``: record every FIX message both ways on every client connection
        and every REST call (``simulator.recording``), e.g. for a conformance run; off by default."""
        self.config = config
        self._on_event = on_event
        self._on_wire = on_wire
        self._on_rest = on_rest
        account_configs = [*config.accounts, *extra_accounts]
        self.accounts = {a.api_key_id: Account(a.api_key_id, a.public_key(), a.tier, a.account_id) for a in account_configs}
        self._balances = {a.api_key_id: a.balance for a in account_configs if a.account is None}
        self.policy = LogonPolicy(
            sending_time_tolerance=config.sending_time_tolerance,
            min_heartbeat_interval=config.min_heartbeat_interval,
            fix_tiers=frozenset(config.fix_tiers),
        )
        self._faults = FaultController(self.accounts, config.clock_offset, self._sequence_reset,
                                       test_requester=self._test_request, inbound_rewinder=self._forget_inbound)
        self._write_budget = (
            WriteBudgets(lambda key_id: config.write_budget(self.accounts[key_id].tier))
            if config.enforce_write_budget else None
        )
        self.ports: dict[str, int] = {}
        self.control_port: int | None = None
        self.rest_port: int | None = None
        self.tls_cert_file: Path | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._acceptor: Acceptor | None = None
        self._hub: GateHub | None = None
        self._control: ControlServer | None = None
        self._venue: Venue | None = None
        self._admin: Admin | None = None
        self._maintenance: Maintenance | None = None
        self._rest: RestServer | None = None

    @property
    def faults(self) -> FaultController:
        """Fault injection, armed at run time (see ``simulator.faults``)."""
        return self._faults

    @property
    def write_budget(self) -> WriteBudgets | None:
        """Kalshi's Write budget per API key (``write_budget.tokens(key_id)``); None when config
        ``enforce_write_budget`` is off and order entry is unlimited."""
        return self._write_budget

    def now(self) -> datetime:
        """The simulator's clock: real time plus config ``clock_offset`` or ``faults.skew_clock``."""
        return utc_now(self._faults.clock_offset)

    def _sequence_reset(self, key_id: str, gap_fill: bool, new_seq_no: int | None) -> int:
        if self._acceptor is None:
            raise FaultError(f"API key {key_id} has no session: the simulator is not running")
        return self._acceptor.sequence_reset(key_id, gap_fill, new_seq_no)

    def _test_request(self, key_id: str, test_req_id: str) -> None:
        if self._acceptor is None:
            raise FaultError(f"API key {key_id} has no session: the simulator is not running")
        self._acceptor.test_request(key_id, test_req_id)

    def _forget_inbound(self, key_id: str, from_seq: int) -> None:
        if self._acceptor is None:
            raise FaultError(f"API key {key_id} has no session: the simulator is not running")
        self._acceptor.forget_inbound(key_id, from_seq)

    def _emit(self, event: SimEvent) -> None:
        log.info("%s %s %s %s", event.kind, event.session_type, event.key_id, event.detail)
        if self._on_event is not None:
            self._on_event(event)

    def _decide(self, fields: dict[int, str], spec: ListenerSpec, connected: set[str]) -> Refusal | None:
        closed = self._maintenance.logon_refusal() if self._maintenance is not None else None
        if closed is not None:  # Kalshi's gateway takes no Logon in its maintenance window
            return Refusal(closed)
        return check_logon(fields, spec, self.accounts, connected, self.policy, self.now())

    def start(self) -> None:
        """Start QuickFIX and every listener; return once they accept connections."""
        if self._thread is not None:
            raise RuntimeError("simulator already started")
        self._venue = self._exchange()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="simulator-gates", daemon=True)
        self._thread.start()
        try:
            if self.accounts:
                self._acceptor = acceptor = Acceptor(self.config, {k: a.owner for k, a in self.accounts.items()},
                                                     self._venue, self._emit, self._faults, self._write_budget)

                async def start_acceptor() -> None:  # polled in the gates' loop: started there
                    acceptor.start(asyncio.get_running_loop())
                asyncio.run_coroutine_threadsafe(start_acceptor(), self._loop).result(timeout=10)
            else:  # QuickFIX cannot run without sessions; the gates refuse every Logon anyway
                log.warning("no accounts configured: every Logon will be refused")
            self._maintenance = self._start_maintenance()
            self._admin = Admin(self._venue, self._send, self.config.house_balance, self._maintenance)
            context = self._tls_context()
            upstream = self._acceptor.port if self._acceptor is not None else 0
            self._hub = GateHub(self._decide, upstream, self._emit, self.config.logon_timeout, self.now, self._faults,
                                self._on_wire)
            for spec in self.config.listener_specs():
                future = asyncio.run_coroutine_threadsafe(self._hub.listen(spec, self.config.host, context), self._loop)
                self.ports[spec.name] = future.result(timeout=10)
            if self.config.control_port is not None:
                self._control = ControlServer(self._faults)
                future = asyncio.run_coroutine_threadsafe(self._control.start(self.config.control_port), self._loop)
                self.control_port = future.result(timeout=10)
            if self.config.rest_port is not None:
                app = build_app(self._rest_context(self._admin))
                if self._on_rest is not None:
                    app.add_middleware(RestRecorder, sink=self._on_rest)
                self._rest = RestServer(app, "127.0.0.1", self.config.rest_port)
                self.rest_port = self._rest.start()
        except BaseException:
            self.stop()
            raise
        where = ", ".join(f"{name}={port}" for name, port in self.ports.items())
        scheme = "TLS" if context else "plain TCP"
        control = f"; control port 127.0.0.1:{self.control_port}" if self.control_port is not None else ""
        rest = f"; REST {self.rest_url}" if self.rest_url is not None else ""
        self._emit(SimEvent(SimEventKind.LISTENING, f"{self.config.host} ({scheme}): {where}{control}{rest}"))

    def _exchange(self) -> Venue:
        """The one exchange the FIX acceptor and the REST API both serve: markets, accounts (the
        house too when seed orders need it) and seed orders."""
        balances = dict(self._balances)
        if any(seed.account == HOUSE_ACCOUNT for seed in self.config.seed_orders):
            balances.setdefault(HOUSE_ACCOUNT, self.config.house_balance)
        # On the simulator's clock (``faults.skew_clock`` moves it), like the REST API: e.g. an
        # order group's 15-second window can be stepped through without waiting.
        venue = Venue([m.market() for m in self.config.markets], [AccountState(k, b) for k, b in balances.items()],
                      clock=self.now, settlement_page_size=self.config.settlement_page_size,
                      drop_copy_interval=self.config.drop_copy_request_interval)
        venue.seed(self.config.seed_orders)
        return venue

    def _start_maintenance(self) -> Maintenance:
        """The exchange's pauses, acted on from now (the weekly window is already in force if the
        simulator starts in it)."""
        venue = self._venue
        assert venue is not None
        schedule = self.config.maintenance.schedule() if self.config.maintenance.enabled else None
        maintenance = Maintenance(Pauses(schedule), lambda kind: self._send(venue.pause(kind)), self._log_out_all, self._emit)
        maintenance.start()
        return maintenance

    def _log_out_all(self, text: str) -> int:
        return sum(self.logout(key_id, text) for key_id in self.accounts)

    @property
    def maintenance(self) -> Maintenance:
        """The exchange's pauses and the maintenance clock (``simulator.maintenance``):
        ``pause("trading" | "exchange")``, ``resume()``, ``move_clock(to)``, ``state()``."""
        if self._maintenance is None:
            raise RuntimeError("simulator not started: pauses need its exchange")
        return self._maintenance

    def _send(self, outgoing: list[Outgoing]) -> None:
        if outgoing and self._acceptor is not None:
            self._acceptor.application.send(outgoing)

    def _rest_context(self, admin: Admin) -> RestContext:
        assert self._venue is not None
        return RestContext(
            accounts=self.accounts,
            snapshots=Snapshots(self._venue.read, self.config.rest_lag),
            fresh=Snapshots(self._venue.read, 0.0),
            limiter=RateLimiter(lambda key_id: self.config.read_budget(self.accounts[key_id].tier)),
            clock=self.now,
            tolerance_s=self.config.sending_time_tolerance,
            admin=admin,
            maintenance=self._maintenance,
        )

    @property
    def rest_url(self) -> str | None:
        """The REST API's base URL, ``http://127.0.0.1:PORT/trade-api/v2`` (None: not serving)."""
        return f"http://127.0.0.1:{self.rest_port}{API_PREFIX}" if self.rest_port is not None else None

    @property
    def admin(self) -> Admin:
        """Calls that change the exchange behind the FIX sessions' backs (``simulator.rest_admin``):
        ``cancel_order(order_id)``, ``add_fill(order_id, quantity)``, ``settle_market(ticker, result)``."""
        if self._admin is None:
            raise RuntimeError("simulator not started: admin calls need its exchange")
        return self._admin

    def _tls_context(self):  # type: ignore[no-untyped-def]
        tls = self.config.tls
        if not tls.enabled:
            return None
        if tls.cert_file is not None and tls.key_file is not None:
            cert, key = tls.cert_file, tls.key_file
        else:
            cert = self.config.data_dir / "tls" / "simulator-cert.pem"
            key = self.config.data_dir / "tls" / "simulator-key.pem"
            write_self_signed(cert, key, [self.config.host, "localhost"])
        self.tls_cert_file = cert
        return server_context(cert, key)

    def logout(self, api_key_id: str, text: str) -> int:
        """Log out the key's established sessions with ``text``, as Kalshi does before maintenance.
        Returns how many sessions were logged out."""
        return self._acceptor.logout(api_key_id, text) if self._acceptor is not None else 0

    def logon_flags(self, api_key_id: str) -> dict[int, str]:
        """The Kalshi flags (141, 8013, 2xxxx) of the key's latest Logon, as received."""
        if self._acceptor is None:
            return {}
        for session_id, flags in self._acceptor.application.logon_flags.items():
            if session_id.endswith("->" + api_key_id):
                return dict(flags)
        return {}

    @property
    def exchange(self):  # type: ignore[no-untyped-def]
        """The matching engine (read it from tests; it is changed through FIX and ``admin``)."""
        assert self._venue is not None, "simulator not started"
        return self._venue.exchange

    def stop(self) -> None:
        """Close every listener and connection, then stop QuickFIX."""
        if self._rest is not None:  # first: its admin calls reach into QuickFIX
            self._rest.stop()
        if self._maintenance is not None:  # so does a pause beginning
            self._maintenance.stop()
        if self._loop is not None and self._control is not None:
            asyncio.run_coroutine_threadsafe(self._control.close(), self._loop).result(timeout=10)
        if self._loop is not None and self._hub is not None:
            asyncio.run_coroutine_threadsafe(self._hub.close(), self._loop).result(timeout=15)
        if self._loop is not None and self._acceptor is not None:  # polled there: stopped there
            asyncio.run_coroutine_threadsafe(self._acceptor.stop(), self._loop).result(timeout=30)
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._loop is not None:
            self._loop.close()
        self._loop = self._thread = self._acceptor = self._hub = self._control = None
        self._rest = self._venue = self._admin = self._maintenance = None
        self.control_port = self.rest_port = None

    def __enter__(self) -> "Simulator":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
