"""The loop's supervision of each session: its phase, its reconnect timers, the connect probe.

Two halves, as in the rest of the house:

- ``step(status, event) -> Step`` is the policy, pure: it moves a session's ``Phase`` for a session
  event and says what to do (publish it, reconnect after a backoff, stop for good, probe the
  address). Tested without sockets (``tests/test_session_supervisor.py``).
- ``SessionSupervisor`` is the shell on the asyncio loop: it feeds events to ``step``, runs the
  timers (backoff, connect check) and the probe, and enables sessions in QuickFIX again.

    CONNECTING --LoggedOn--> LOGGED_ON --LoggedOut--> WAITING --backoff--> CONNECTING
        |  ^                                            ^
        |  +-- ConnectionFailed (probe) ----------------+
        +--LogonRefused (may pass)---> WAITING          LogonRefused (for good) --> STOPPED

In Kalshi's weekly maintenance (``maintenance`` says why) a session that goes down WAITs for the
window's end (``maintenance_over``) instead of retrying: no backoff, no probe, no attempt counted.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import Enum
from typing import Any

import quickfix as fix

from fixengine.config import SessionConfig
from fixengine.errors import FixEngineError, LogonRefusedError, SessionUnavailableError
from fixengine._event import Event
from fixengine.session.events import (
    ConnectionFailed,
    LoggedOn,
    LoggedOut,
    LogonRefused,
    ReconnectScheduled,
    SessionStopped,
)
from fixengine.session.application import LogonUnanswered
from fixengine.session.probe import probe
from fixengine.session.reconnect import Backoff, Retry, classify_refusal, retry_delay

# A session not logged on this long after starting (or after reconnect_interval, once it lost its
# connection) is probed, and the reason it cannot connect is reported as ConnectionFailed.
CONNECT_GRACE_S = 3.0


class Phase(Enum):
    CONNECTING = "connecting"  # enabled in QuickFIX: connecting, or its Logon is out
    LOGGED_ON = "logged_on"
    WAITING = "waiting"  # down and disabled until its backoff has passed
    STOPPED = "stopped"  # refused for good: not retried until the engine restarts (or an operator enables it)
    DISABLED = "disabled"  # taken down by an operator: not retried until enabled


@dataclass
class SessionStatus:
    """The loop's view of one session."""

    config: SessionConfig
    phase: Phase = Phase.CONNECTING
    refusal: str | None = None  # the last Logon refusal, until a logon succeeds
    stopped_reason: str | None = None  # why it is STOPPED
    failure: str | None = None  # the connect failure last reported, until a logon succeeds
    attempt: int = 0  # reconnect attempts since the session was last logged on
    connect_check: asyncio.TimerHandle | None = None
    retry: asyncio.TimerHandle | None = None  # the scheduled reconnect
    disabled: bool = False  # an operator took it down: DISABLED once logged out, until enabled
    maintenance: str | None = None  # WAITING for Kalshi's maintenance to end (not an outage): why
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def logged_on(self) -> bool:
        return self.phase is Phase.LOGGED_ON

    @property
    def backoff(self) -> Backoff:
        return Backoff(float(self.config.reconnect_interval), float(self.config.reconnect_max_interval))


@dataclass(frozen=True)
class Step:
    """What the shell does after ``step``: in this order, cancel the timers, publish the event,
    publish ``stopped`` (a SessionStopped), schedule a reconnect, probe; then wake the waiters."""

    publish: bool = True
    cancel_timers: bool = False
    stopped: SessionStopped | None = None
    reconnect: Retry | None = None
    probe_if_reachable: str | None = None  # probe, and report this if the address answers
    probe: bool = False
    changed: bool = True


DROP = Step(publish=False, changed=False)


def step(status: SessionStatus, event: Event) -> Step:
    """The policy: move ``status`` for ``event`` and say what the shell must do."""
    if isinstance(event, LogonUnanswered):
        return Step(publish=False, changed=False, probe=True,
                    probe_if_reachable="closed the connection before answering the Logon")
    if isinstance(event, ConnectionFailed):
        if event.reason == status.failure:
            return DROP  # reported once per streak of identical failures
        status.failure = event.reason
        return Step()
    if isinstance(event, LoggedOn):
        status.phase, status.refusal, status.failure, status.attempt = Phase.LOGGED_ON, None, None, 0
        status.maintenance = None
        return Step(cancel_timers=True)
    if isinstance(event, LoggedOut):
        if status.disabled:
            status.phase = Phase.DISABLED
            return Step(cancel_timers=True)
        status.phase = Phase.CONNECTING
        return Step(reconnect=Retry.BACKOFF)
    if isinstance(event, LogonRefused):
        status.phase, status.refusal = Phase.CONNECTING, event.reason
        retry = classify_refusal(event.reason)
        if retry is Retry.NEVER:
            status.phase, status.stopped_reason = Phase.STOPPED, event.reason
            return Step(cancel_timers=True, stopped=SessionStopped(event.session, event.at, event.reason))
        return Step(reconnect=retry)
    return Step()


class SessionSupervisor:
    """Runs ``step`` on the loop for every session, with its timers and the probe."""

    def __init__(
        self,
        sessions: Iterable[SessionConfig],
        lookup: Callable[[str], fix.Session | None],
        publish: Callable[[Event], None],
        spawn: Callable[[Coroutine[Any, Any, None]], None],
        maintenance: Callable[[], str | None] = lambda: None,
    ):
        self.status = {s.name: SessionStatus(s) for s in sessions}
        self._maintenance = maintenance  # why reconnects wait now (Kalshi's maintenance window), or None
        self._lookup = lookup  # the session's QuickFIX Session, by name (None while stopping)
        self._publish = publish
        self._spawn = spawn
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped = False

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        for status in self.status.values():
            self._expect_logon(status, CONNECT_GRACE_S)

    def stop(self) -> None:
        """The engine is stopping: its Logouts must not schedule reconnects, probes or checks."""
        self._stopped = True
        for status in self.status.values():
            self._cancel_timers(status)

    def on_event(self, event: Event) -> bool:
        """Handle a session event; False when it is not to be published (a repeat, or internal)."""
        status = self.status.get(event.session)
        if status is None:
            self._publish(event)
            return True
        what = step(status, event)
        if what.cancel_timers:
            self._cancel_timers(status)
        if what.publish:
            self._publish(event)
        if what.stopped is not None:
            self._publish(what.stopped)
        if what.reconnect is not None:
            self._reconnect_later(status, what.reconnect)
        if what.probe:
            self._diagnose(status, what.probe_if_reachable)
        if what.changed:
            self._changed(status)
        return what.publish

    # --- waiting ------------------------------------------------------------------------------

    def is_logged_on(self, session: str) -> bool:
        return self.status[session].logged_on

    async def all_logged_out(self) -> None:
        while any(s.logged_on for s in self.status.values()):
            await self._any_change()

    async def wait_logged_on(self, sessions: Iterable[str] | None, timeout: float) -> None:
        names = list(sessions) if sessions is not None else list(self.status)
        for name in names:
            if name not in self.status:
                raise FixEngineError(f"no session named {name!r}; configured: {', '.join(self.status)}")

        async def wait() -> None:
            while True:
                for name in names:
                    refusal = self.status[name].refusal
                    if refusal is not None:
                        raise LogonRefusedError(name, refusal, permanent=self.status[name].phase is Phase.STOPPED)
                if all(self.status[n].logged_on for n in names):
                    return
                await self._any_change()

        try:
            await asyncio.wait_for(wait(), timeout)
        except asyncio.TimeoutError:
            down = [n for n in names if not self.status[n].logged_on]
            raise SessionUnavailableError(f"not logged on after {timeout:.0f}s: {', '.join(down)}") from None

    async def _any_change(self) -> None:
        waiters = [asyncio.ensure_future(s.changed.wait()) for s in self.status.values()]
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()

    @staticmethod
    def _changed(status: SessionStatus) -> None:
        status.changed.set()
        status.changed = asyncio.Event()

    # --- reconnecting (policy: fixengine/session/reconnect.py) --------------------------------

    def _cancel_timers(self, status: SessionStatus) -> None:
        for timer in (status.connect_check, status.retry):
            if timer is not None:
                timer.cancel()
        status.connect_check = status.retry = None

    def _reconnect_later(self, status: SessionStatus, retry: Retry) -> None:
        """The session is down and disabled (onLogout disables it; so does a failed connect):
        enable it again once the backoff for this attempt has passed."""
        if self._stopped or self._loop is None or status.phase in (Phase.STOPPED, Phase.DISABLED) or status.disabled:
            return
        self._cancel_timers(status)
        why = self._maintenance()
        if why is not None:  # Kalshi is in maintenance: retrying now is refused; maintenance_over() reconnects
            status.phase, status.maintenance = Phase.WAITING, why
            return
        delay = retry_delay(retry, status.attempt, status.backoff, status.config.heartbeat_interval, random.random())
        if delay is None:
            return
        status.attempt += 1
        status.phase = Phase.WAITING
        status.retry = self._loop.call_later(delay, self._enable, status)
        self._publish(ReconnectScheduled(status.config.name, datetime.now(timezone.utc), delay, status.attempt))

    def maintenance_over(self) -> None:
        """Kalshi's maintenance window ended: reconnect the sessions that waited for it, each after
        its first retry delay (jittered, so that engines cut off together do not return at once)."""
        for status in self.status.values():
            if status.maintenance is not None:
                status.maintenance, status.attempt = None, 0
                if status.phase is Phase.WAITING:
                    self._reconnect_later(status, Retry.BACKOFF)
                self._changed(status)

    # --- an operator's actions (the service's admin API) -----------------------------------------

    def disable(self, name: str) -> None:
        """Log the session out and keep it down until ``enable``."""
        status = self.status[name]
        self._cancel_timers(status)
        status.disabled = True
        if not status.logged_on:
            status.phase = Phase.DISABLED  # logged on: DISABLED once its Logout is answered
        session = self._lookup(name)
        if session is not None:
            session.logout("disabled by an operator")
        self._changed(status)

    def enable(self, name: str) -> None:
        """Connect a disabled or stopped session again now, from a first attempt."""
        status = self.status[name]
        status.disabled = False
        if status.phase not in (Phase.DISABLED, Phase.STOPPED):
            return  # still logging out: it reconnects after its Logout, as after any
        status.phase, status.stopped_reason, status.refusal, status.attempt = Phase.CONNECTING, None, None, 0
        self._enable(status)
        self._changed(status)

    def force_logout(self, name: str) -> None:
        """Log the session out now; it reconnects as after any logout (its backoff)."""
        session = self._lookup(name)
        if session is not None:
            session.logout("logged out by an operator")

    def _enable(self, status: SessionStatus) -> None:
        status.retry = None
        if self._stopped or status.phase in (Phase.STOPPED, Phase.DISABLED):
            return
        status.phase = Phase.CONNECTING
        session = self._lookup(status.config.name)
        if session is not None:
            session.logon()  # QuickFIX connects enabled sessions within a second
        self._expect_logon(status, CONNECT_GRACE_S + 1)

    def _expect_logon(self, status: SessionStatus, within: float) -> None:
        """Unless the session is logged on (or refused) within ``within`` seconds, find out why."""
        if self._stopped or self._loop is None:
            return
        if status.connect_check is not None:
            status.connect_check.cancel()

        def check() -> None:
            status.connect_check = None
            if not status.logged_on and status.phase is not Phase.STOPPED and status.retry is None:
                self._diagnose(status, if_reachable=None)

        status.connect_check = self._loop.call_later(within, check)

    def _diagnose(self, status: SessionStatus, if_reachable: str | None) -> None:
        """Probe the session's address; report why it cannot log on as ConnectionFailed. When the
        address is reachable, report ``if_reachable`` (None: nothing to report yet)."""
        if self._stopped:
            return
        s = status.config

        async def diagnose() -> None:
            reason = await probe(s.host, s.port, s.tls, s.tls_ca_file)
            if reason is None and if_reachable is not None:
                reason = f"{s.host}:{s.port} {if_reachable}"
            if self._stopped or status.logged_on or status.phase is Phase.STOPPED:
                return
            if reason is None:  # reachable: a Logon may still be on its way; look again later
                self._expect_logon(status, CONNECT_GRACE_S)
                return
            self.on_event(ConnectionFailed(s.name, datetime.now(timezone.utc), reason))
            session = self._lookup(s.name)
            if session is not None:
                session.logout()  # no more attempts by QuickFIX until the backoff has passed
            self._reconnect_later(status, Retry.BACKOFF)

        self._spawn(diagnose())
