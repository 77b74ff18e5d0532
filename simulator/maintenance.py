"""The simulator's pauses in time (``Simulator.maintenance``): its calendar clock, the weekly
maintenance window and an operator's pauses, acted on as they begin and end.

- The calendar clock is real time plus an offset that tests set (``move_clock``): moving it to a
  Thursday 03:00 New York time starts the window now, without sleeping and without touching the
  clock that Logon SendingTimes are checked against (the clients' clocks do not move with it).
- As a pause begins, ends or changes kind, the exchange follows (``Venue.pause``: new orders,
  amends, and in an exchange pause cancels, refused; CancelOrderOnPause orders cancelled, and
  their reports sent). As the window begins every session is logged out; the gates refuse Logons
  until it ends (``logon_refusal``). KalshiRT keeps its sequence numbers across it.

The decisions are ``simulator.exchange.pauses``' (pure); this module holds the clock and a thread
that wakes when the window next begins or ends. ``evaluate`` runs under one lock, from that
thread and from whoever moves the clock or pauses, so each change is acted on once, in order.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

from fixengine.kalshi.maintenance import PauseKind, Window
from simulator.events import SimEvent, SimEventKind, SimEventSink
from simulator.exchange.pauses import PauseState, Pauses, maintenance_text

log = logging.getLogger("simulator.maintenance")

MAX_SLEEP_S = 1.0  # the thread looks at the clock at least this often


class Maintenance:
    def __init__(
        self,
        pauses: Pauses,
        apply: Callable[[PauseKind | None], None],
        log_out_all: Callable[[str], int],
        emit: SimEventSink,
    ):
        """``apply`` pauses the exchange (or opens it: None); ``log_out_all`` logs every session
        out with a Text and says how many it logged out."""
        self._pauses = pauses
        self._apply = apply
        self._log_out_all = log_out_all
        self._emit = emit
        self._offset = timedelta(0)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    # --- the clock and the operator's calls ---------------------------------------------------

    def now(self) -> datetime:
        """The calendar clock: real time plus the offset ``move_clock`` set."""
        return datetime.now(timezone.utc) + self._offset

    def move_clock(self, to: datetime) -> None:
        """Set the calendar clock to ``to`` (aware) and act on what that begins or ends now."""
        if not isinstance(to, datetime) or to.utcoffset() is None:
            raise ValueError(f"to must be an aware datetime (with a UTC offset), not {to!r}")
        self._offset = to - datetime.now(timezone.utc)
        self.evaluate()

    def pause(self, kind: PauseKind | str) -> None:
        """Pause the exchange: "trading" (new orders and amends refused, cancels allowed) or
        "exchange" (cancels refused too), until ``resume``."""
        try:
            self._pauses.operator = PauseKind(kind)
        except ValueError:
            raise ValueError(f"kind must be one of {', '.join(k.value for k in PauseKind)}, not {kind!r}") from None
        self.evaluate()

    def resume(self) -> None:
        """End the operator's pause (the weekly window, if on, still pauses trading)."""
        self._pauses.operator = None
        self.evaluate()

    # --- what the gates and the REST API ask --------------------------------------------------

    def state(self) -> PauseState:
        return self._pauses.at(self.now())

    def logon_refusal(self) -> str | None:
        """The Logout Text for a Logon now: set in the maintenance window."""
        return self._pauses.logon_refusal(self.now())

    def upcoming(self, count: int) -> list[Window]:
        """The maintenance window in force and the next ones (none when it is off)."""
        schedule = self._pauses.schedule
        return schedule.upcoming(self.now(), count) if schedule is not None else []

    # --- acting on changes --------------------------------------------------------------------

    def evaluate(self) -> None:
        """Act on what began or ended by now; the thread then waits for the next change."""
        self._act()
        self._wake.set()

    def _act(self) -> None:
        with self._lock:
            change = self._pauses.advance(self.now())
            state = change.state
            if change.kind_changed:
                self._apply(state.kind)
                if state.kind is None:
                    self._emit(SimEvent(SimEventKind.RESUMED, "trading again"))
                else:
                    until = f" until {state.resumes.isoformat()}" if state.resumes is not None else ""
                    why = "maintenance window" if state.operator is None else "operator"
                    self._emit(SimEvent(SimEventKind.PAUSED, f"{state.kind.value} pause ({why}){until}"))
            if change.window_began and state.window is not None:
                text = f"{maintenance_text(state.window, self._pauses.schedule)}: trading paused, reconnect after it"
                count = self._log_out_all(text)
                log.info("maintenance window began: %d sessions logged out", count)

    def start(self) -> None:
        self._act()
        if self._pauses.schedule is None:
            return  # nothing happens by the clock: the operator's calls act at once
        self._thread = threading.Thread(target=self._run, name="simulator-maintenance", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _run(self) -> None:
        while not self._stopping.is_set():
            now = self.now()
            nxt = self._pauses.next_change(now)
            delay = MAX_SLEEP_S if nxt is None else min(MAX_SLEEP_S, max(0.0, (nxt - now).total_seconds()))
            self._wake.wait(delay)
            self._wake.clear()
            if self._stopping.is_set():
                return
            try:
                self._act()
            except Exception:  # noqa: BLE001 - keep watching the clock; say what went wrong
                log.exception("maintenance: acting on a pause failed")
