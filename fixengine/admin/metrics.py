"""Prometheus metrics of ``fixengine serve`` (``GET /metrics``), with prometheus-client.

Two kinds:

- what is true now (session states, sequence numbers, ages, queue depths, orders live, message
  counts, the throttle's buckets) is read from the engine and the gateway at each scrape, by a
  collector: nothing to keep in step on the hot path;
- what happened (rejects, reconnects, logon failures, reconciliation findings) is counted from
  the engine's events; journal commits and OMS round trips are timed where they happen.

Every label is bounded: session and client names come from the config, reasons and kinds from
fixed vocabularies (Kalshi's reject codes, the reconciliation's kinds). Never a ClOrdID, an
OrderID or free text; ``tests/golden/metrics.txt`` pins the surface.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import datetime, timezone

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector

from fixengine.admin.status import State, in_maintenance, session_state
from fixengine.engine import Engine
from fixengine.events import ConnectionFailed, Event, LogonRefused, ReconnectScheduled, SessionRejectReceived
from fixengine.gateway.service import Gateway
from fixengine.orders.book import CancelRejected, OrderRejected
from fixengine.orders.entry import BusinessRejected
from fixengine.reconcile.runner import ReconciliationDone, ReconciliationFailed
from fixengine.reconcile.compare import Kind
from fixengine.session.reconnect import Retry, classify_refusal

_MSG_TYPE = re.compile(r"^[0-9A-Za-z]{1,2}$")  # FIX MsgTypes; anything else is counted as "other"
# Journal commits take ~0.1-5 ms; an OMS round trip through Kalshi ~1-50 ms.
_COMMIT_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
_ROUND_TRIP_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    """The service's metrics in a registry of their own (not the process-wide default one)."""

    def __init__(self, engine: Engine, gateway: Gateway):
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.rejects = Counter("fixengine_rejects", "Rejects from Kalshi by session, kind and Kalshi reason code",
                               ["session", "kind", "code"], registry=r)
        self.reconnects = Counter("fixengine_reconnects", "Reconnect attempts scheduled, by Kalshi session",
                                  ["session"], registry=r)
        self.logon_failures = Counter("fixengine_logon_failures", "Kalshi logons that failed, by reason",
                                      ["session", "reason"], registry=r)
        self.reconciliations = Counter("fixengine_reconciliations", "Reconciliations by outcome (clean, unexplained, failed)",
                                       ["session", "outcome"], registry=r)
        self.discrepancies = Counter("fixengine_reconciliation_discrepancies",
                                     "Reconciliation findings by kind and whether they were healed",
                                     ["session", "kind", "healed"], registry=r)
        self.commit_seconds = Histogram("fixengine_journal_commit_seconds", "Journal commit latency",
                                        ["journal"], buckets=_COMMIT_BUCKETS, registry=r)
        self.round_trip_seconds = Histogram(
            "fixengine_oms_round_trip_seconds",
            "From an OMS request taken by the gateway to Kalshi's first answer to it, by OMS client",
            ["client"], buckets=_ROUND_TRIP_BUCKETS, registry=r)
        r.register(_Now(engine, gateway))
        # Known label sets start at 0, so a rate() or an alert sees the series before its first event.
        for session in (s.name for s in engine.config.sessions):
            self.reconnects.labels(session)
            for reason in ("connect_failed", *(f"refused_{retry.value}" for retry in Retry)):
                self.logon_failures.labels(session, reason)
            for outcome in ("clean", "unexplained", "failed"):
                self.reconciliations.labels(session, outcome)
            for kind in Kind:
                for healed in ("yes", "no"):
                    self.discrepancies.labels(session, kind.value, healed)
        engine.observe_commits(self.commit_seconds.labels("engine").observe)
        gateway.observe_commits(self.commit_seconds.labels("gateway").observe)
        gateway.observe_round_trips(lambda client, seconds: self.round_trip_seconds.labels(client).observe(seconds))

    def on_event(self, event: Event) -> None:
        if isinstance(event, (OrderRejected, CancelRejected)) and event.order.reason is not None:
            kind = "order" if isinstance(event, OrderRejected) else "cancel"
            self.rejects.labels(event.session, kind, event.order.reason.code.value).inc()
        elif isinstance(event, BusinessRejected):
            self.rejects.labels(event.session, "business", event.reason.code.value).inc()
        elif isinstance(event, SessionRejectReceived):
            self.rejects.labels(event.session, "session", str(event.reason_code) if event.reason_code is not None else "none").inc()
        elif isinstance(event, ReconnectScheduled):
            self.reconnects.labels(event.session).inc()
        elif isinstance(event, LogonRefused):
            self.logon_failures.labels(event.session, f"refused_{classify_refusal(event.reason).value}").inc()
        elif isinstance(event, ConnectionFailed):
            self.logon_failures.labels(event.session, "connect_failed").inc()
        elif isinstance(event, ReconciliationDone):
            f = event.findings
            self.reconciliations.labels(event.session, "clean" if f.clean else "unexplained").inc()
            for d in f.discrepancies:
                self.discrepancies.labels(event.session, d.kind.value, "yes" if d.healed else "no").inc()
        elif isinstance(event, ReconciliationFailed):
            self.reconciliations.labels(event.session, "failed").inc()

    def render(self) -> tuple[bytes, str]:
        """The Prometheus text format, and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class _Now(Collector):
    """What is true at the scrape, read from the engine and the gateway."""

    def __init__(self, engine: Engine, gateway: Gateway):
        self._engine = engine
        self._gateway = gateway

    def collect(self) -> Iterator[Metric]:
        now = time.time()
        maintenance = in_maintenance(datetime.now(timezone.utc))
        stopping = self._gateway.draining
        up = GaugeMetricFamily("fixengine_kalshi_session_up", "1 while the Kalshi session is logged on", labels=["session"])
        state = GaugeMetricFamily("fixengine_kalshi_session_state", "1 for the session's current state",
                                  labels=["session", "state"])
        seq = GaugeMetricFamily("fixengine_kalshi_session_next_seq", "Next MsgSeqNum, out (we send) and in (we expect)",
                                labels=["session", "direction"])
        age = GaugeMetricFamily("fixengine_kalshi_session_last_message_age_seconds",
                                "Seconds since the last message in or out", labels=["session", "direction"])
        held = GaugeMetricFamily("fixengine_kalshi_book_held", "1 while new orders are held until the book is confirmed",
                                 labels=["session"])
        live = GaugeMetricFamily("fixengine_orders_live", "Orders not yet final, by Kalshi session", labels=["session"])
        accounts = {s.account_id: s.name for s in reversed(self._engine.config.sessions)}  # first session of each account
        counts = dict.fromkeys(accounts.values(), 0)
        for order in self._engine.book.open_orders():
            name = accounts.get(order.account)
            if name is not None:
                counts[name] += 1
        for h in self._engine.health():
            up.add_metric([h.name], 1 if h.phase == "logged_on" else 0)
            current = session_state(h, maintenance=maintenance, stopping=stopping)
            for s in State:
                state.add_metric([h.name, s.value], 1 if s is current else 0)
            held.add_metric([h.name], 1 if h.book_held else 0)
            _seq_and_age(seq, age, h.name, h.next_out_seq, h.next_in_seq, h.last_out, h.last_in, now)
            live.add_metric([h.name], counts.get(h.name, 0))
        yield from (up, state, seq, age, held, live)

        c_up = GaugeMetricFamily("fixengine_oms_client_up", "1 while the OMS client is logged on", labels=["client"])
        c_seq = GaugeMetricFamily("fixengine_oms_client_next_seq", "Next MsgSeqNum on the OMS session, out and in",
                                  labels=["client", "direction"])
        c_age = GaugeMetricFamily("fixengine_oms_client_last_message_age_seconds",
                                  "Seconds since the last message in or out", labels=["client", "direction"])
        queue = GaugeMetricFamily("fixengine_oms_client_queue_depth",
                                  "OMS messages waiting for their Kalshi session to be ready", labels=["client"])
        c_live = GaugeMetricFamily("fixengine_oms_client_orders_live", "The client's orders not yet final", labels=["client"])
        buffered = GaugeMetricFamily("fixengine_oms_client_bytes_buffered",
                                     "Bytes of reports the OMS has not read yet (a slow consumer's backlog)", labels=["client"])
        for c in self._gateway.health():
            c_up.add_metric([c.name], 1 if c.logged_on else 0)
            _seq_and_age(c_seq, c_age, c.name, c.next_out_seq, c.next_in_seq, c.last_out, c.last_in, now)
            queue.add_metric([c.name], c.waiting)
            c_live.add_metric([c.name], c.orders_live)
            buffered.add_metric([c.name], c.bytes_buffered)
        yield from (c_up, c_seq, c_age, queue, c_live, buffered)

        level = GaugeMetricFamily("fixengine_throttle_bucket_tokens",
                                  "Write tokens left in the Kalshi session's bucket (the shared rate budget)", labels=["session"])
        capacity = GaugeMetricFamily("fixengine_throttle_bucket_capacity", "The bucket's size in tokens", labels=["session"])
        requests = CounterMetricFamily("fixengine_throttle_requests",
                                       "OMS requests by what the throttle did: admitted, queued (then admitted or refused), refused",
                                       labels=["client", "outcome"])
        waiting = GaugeMetricFamily("fixengine_throttle_waiting", "Requests queued for the rate budget now",
                                    labels=["client"])
        for session in self._gateway.throttle_status():
            level.add_metric([session.name], session.tokens)
            capacity.add_metric([session.name], session.capacity)
            for c in session.clients:
                for outcome, n in (("admitted", c.admitted), ("queued", c.queued), ("refused", c.refused)):
                    requests.add_metric([c.name, outcome], n)
                waiting.add_metric([c.name], c.waiting)
        yield from (level, capacity, requests, waiting)

        messages = CounterMetricFamily("fixengine_fix_messages", "FIX messages by side, session, direction and MsgType",
                                       labels=["side", "session", "direction", "msg_type"])
        for side, counts_by in (("kalshi", self._engine.message_counts), ("oms", self._gateway.message_counts)):
            totals: dict[tuple[str, str, str], int] = {}
            for (session, direction, msg_type), n in list(counts_by.items()):
                key = (session.removeprefix("oms-"), direction, msg_type if _MSG_TYPE.match(msg_type) else "other")
                totals[key] = totals.get(key, 0) + n
            for (session, direction, msg_type), n in sorted(totals.items()):
                messages.add_metric([side, session, direction, msg_type], n)
        yield messages


def _seq_and_age(seq: GaugeMetricFamily, age: GaugeMetricFamily, name: str, next_out: int | None, next_in: int | None,
                 last_out: float | None, last_in: float | None, now: float) -> None:
    for direction, n, last in (("out", next_out, last_out), ("in", next_in, last_in)):
        if n is not None:
            seq.add_metric([name, direction], n)
        if last is not None:
            age.add_metric([name, direction], max(0.0, now - last))
