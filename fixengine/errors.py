"""Every public error fixengine raises, in one place. Each carries a message a user can act on: it
names the field, file or request and the reason.

The hierarchy (as in httpx's ``_exceptions.py``)::

    FixEngineError                   everything fixengine raises on purpose
    ├── ConfigError                  a configuration cannot be used; ``problems`` lists every Problem
    ├── KeyLoadError                 a private or public key cannot be loaded
    ├── SessionError                 the FIX session layer
    │   ├── LogonRefusedError        the counterparty refused our Logon
    │   └── SessionUnavailableError  not logged on (yet), or no answer in time
    ├── OrderError                   order entry: refused before anything was sent
    │   ├── InvalidOrderError        the request cannot be sent as it is; ``problems`` names each field
    │   ├── DuplicateClOrdIDError    a ClOrdID used before (ClOrdIDs are unique forever)
    │   ├── ThrottledError           it would break one of Kalshi's rate limits
    │   ├── BookUnconfirmedError     new risk is held until the session's book is confirmed
    │   ├── MaintenanceError         Kalshi's weekly maintenance: no new orders or amends until it ends
    │   └── BookError (ValueError)   the book cannot do that to that order (unknown, done, in flight)
    ├── OrderGroupError              Kalshi refused an order-group request (35=j or 35=3)
    ├── StaleSnapshotError           reconciliation: REST never caught up with the last FIX report
    └── RestError                    the Kalshi REST client (``fixengine.rest``)
        ├── AuthenticationError      401: key id, key file or clock
        ├── NotFoundError            404: no such order, market or event
        ├── RateLimitedError         429 after every retry
        ├── ServerError              5xx after every retry
        ├── RestTransportError       no HTTP answer after every retry
        └── InvalidResponseError     a 2xx answer that is not what Kalshi documents

Names: every public error ends in ``Error``; the base classes under ``FixEngineError`` name a layer
(``SessionError``, ``OrderError``, ``RestError``): ``except OrderError`` catches every refusal of an
order request by order entry (a session not logged on raises ``SessionUnavailableError``). Errors
that never reach a user stay ``ValueError`` subclasses in their modules: ``FramingError`` and
``ReportError`` (bytes that cannot be read; the report is published as ``ReportUnreadable``) and
``PriceError`` (requests and order entry turn it into ``InvalidOrderError``).

Whose fault it is (h11's ``LocalProtocolError`` / ``RemoteProtocolError``): an error raised at a
caller says what the caller must change; what a counterparty got wrong arrives as an event. The
gateway will have two counterparties: an OMS that sends bad FIX is the OMS's fault, to be rejected to
the OMS and never reported as Kalshi's (nor Kalshi's as the OMS's), so give each side its own layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


class FixEngineError(Exception):
    """Base class of every error fixengine raises on purpose."""


# --- configuration and keys ------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a configuration: where (a dotted field path) and why."""

    where: str
    reason: str

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}" if self.where else self.reason


class ConfigError(FixEngineError):
    """A configuration cannot be used. ``problems`` lists every reason, not just the first."""

    def __init__(self, source: str, problems: list[Problem]):
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{source}: {len(problems)} problem(s)\n{lines}")


class KeyLoadError(FixEngineError):
    """A key or another secret file could not be loaded (missing, unsafe permissions, not a PEM key)."""


# --- the session layer -----------------------------------------------------------------------


class SessionError(FixEngineError):
    """A FIX session is not in a state that allows what was asked."""


class LogonRefusedError(SessionError):
    """The counterparty refused our Logon; ``reason`` is its Text (58) when it gave one.
    ``permanent``: the engine has stopped trying (otherwise it keeps retrying with backoff)."""

    def __init__(self, session: str, reason: str, permanent: bool = True):
        self.session = session
        self.reason = reason
        self.permanent = permanent
        retrying = "" if permanent else " (still retrying)"
        super().__init__(f"session {session}: logon refused: {reason}{retrying}")


class SessionUnavailableError(SessionError):
    """A session did not reach the state we waited for (logged on, logged out) in time."""


class DropCopyRefusedError(SessionError):
    """Kalshi's drop copy refused a replay (EventResendReject, 35=U3). ``reason`` is its
    EventResendRejectReason (21004): 1 too many requests, 2 server error, 3 BeginExecID outside the
    3-hour look-back, 4 EndExecID beyond the latest."""

    def __init__(self, session: str, reason: int | None, description: str):
        self.session = session
        self.reason = reason
        super().__init__(f"session {session}: drop copy replay refused: {description}")


# --- order entry -----------------------------------------------------------------------------


class OrderError(FixEngineError):
    """An order request refused before anything was sent or journaled."""


class InvalidOrderError(OrderError):
    """An order request that cannot be sent; ``problems`` name each field and reason."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("invalid order: " + "; ".join(problems))


class DuplicateClOrdIDError(OrderError):
    """The journal already holds this ClOrdID: ClOrdIDs are unique forever (order entry reports it
    as an ``InvalidOrderError`` naming ``client_order_id``)."""

    def __init__(self, cl_ord_id: str):
        self.cl_ord_id = cl_ord_id
        super().__init__(f"client_order_id {cl_ord_id} was used before; ClOrdIDs are unique forever")


class JournalCorruptError(FixEngineError):
    """A committed line of the order journal is not a journal entry (the file was edited or
    damaged): the engine does not start on a book it cannot read whole."""


class JournalWriteError(OrderError):
    """The order journal could not be written (a full disk, a failed device): order entry is
    halted. Nothing that was not journaled was sent; the engine stops. Restart it once the journal
    can be written: it replays what was committed, and reconciliation finds what happened since."""


class ThrottledError(OrderError):
    """Refused before sending: it would break one of Kalshi's rate limits."""


class BookUnconfirmedError(OrderError):
    """Refused before sending: the session's book may be missing reports (see ``BookHeld``), so no
    new risk goes out until it is confirmed. Cancels, mass cancels and same-ClOrdID retries still do."""


class MaintenanceError(OrderError):
    """Refused before sending: Kalshi's weekly maintenance (a trading pause) is under way, so new
    orders and amends would only be rejected; ``ends`` says when it is over. Cancels still go out."""

    def __init__(self, session: str, window: str, ends: datetime):
        self.session = session
        self.window = window
        self.ends = ends
        super().__init__(
            f"session {session}: new orders and amends are refused during Kalshi's weekly maintenance "
            f"({window}) until {ends.isoformat()}; cancels are still accepted"
        )


class BookError(OrderError, ValueError):
    """A request the book cannot accept (unknown order, ClOrdID reused, order already done), or a
    lookup of an order it does not know (``engine.book.order(key)``). Also a ``ValueError``, as it
    always was."""


class OrderGroupError(FixEngineError):
    """Kalshi refused an order-group request (35=UOG), or its answer never came. ``code`` is
    Kalshi's Text as a code (e.g. ``ORDER_GROUP_NOT_FOUND``; ``OTHER`` for words), ``text`` its
    words. A business reject (35=j) gives ``number`` = BusinessRejectReason (380); a malformed field
    gets a session Reject (35=3, ``session_reject``): ``number`` = SessionRejectReason (373),
    ``ref_tag`` the field. ``action``: create, reset, delete, trigger or update."""

    def __init__(self, session: str, action: str, group_id: str | None, code: str, text: str, *,
                 number: int | None = None, ref_tag: int | None = None, session_reject: bool = False):
        self.session = session
        self.action = action
        self.group_id = group_id
        self.code = code
        self.text = text
        self.number = number
        self.ref_tag = ref_tag
        self.session_reject = session_reject
        which = f"order group {group_id}" if group_id else "order group"
        kind = "session Reject (35=3)" if session_reject else "refused"
        tag = f", tag {ref_tag}" if ref_tag is not None else ""
        reason = f" {number}" if number is not None else ""
        super().__init__(f"session {session}: {action} of {which} {kind}{tag}{reason}: {text or code}")


# --- reconciliation --------------------------------------------------------------------------


class StaleSnapshotError(FixEngineError):
    """REST never showed data as recent as the last FIX report within ``staleness_timeout``."""


# --- the REST client (answers are parsed in fixengine.rest.errors) ---------------------------


class RestError(FixEngineError):
    """A Kalshi REST request failed. ``status`` is the HTTP status (None when no answer came),
    ``code`` Kalshi's machine-readable code (None in the shapes without one; it may embed ids,
    e.g. ``user_not_found:_<uuid>``, so match it by prefix), ``message`` and ``details`` its text.
    ``attempts`` is how many times the request was sent."""

    def __init__(
        self,
        method: str,
        path: str,
        status: int | None,
        message: str,
        *,
        code: str | None = None,
        details: str | None = None,
        attempts: int = 1,
    ):
        self.method = method.upper()
        self.path = path.split("?", 1)[0]
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.attempts = attempts
        super().__init__(self._describe())

    def _describe(self) -> str:
        where = f"{self.method} {self.path}"
        status = f"HTTP {self.status}" if self.status is not None else "no response:"
        text = self.message
        if self.code and self.code != self.message:
            text = f"{self.code}: {text}"
        if self.details and self.details not in (self.code, self.message):
            text = f"{text} ({self.details})"
        tries = f" [gave up after {self.attempts} attempts]" if self.attempts > 1 else ""
        return f"{where}: {status} {text}{tries}"


class AuthenticationError(RestError):
    """401: bad signature, stale timestamp (``header_timestamp_expired``), unknown key, missing
    header. Retrying the same request does not help; check the key id, key file and clock."""


class NotFoundError(RestError):
    """404: unknown order, market or event. For an order this is proof it is not live."""


class RateLimitedError(RestError):
    """429 still after every retry: the account's read budget is spent faster than it refills."""


class ServerError(RestError):
    """5xx still after every retry (Kalshi down, in maintenance, or a gateway timeout)."""


class RestTransportError(RestError):
    """No HTTP answer after every retry: connection refused or reset, DNS failure, timeout."""


class InvalidResponseError(RestError):
    """A 2xx answer whose body is not what Kalshi documents: not JSON, or missing or malformed
    fields. ``message`` lists each problem with the field's path, e.g. ``orders[3].fill_count_fp``."""


__all__ = [
    "AuthenticationError",
    "BookError",
    "BookUnconfirmedError",
    "ConfigError",
    "DuplicateClOrdIDError",
    "FixEngineError",
    "InvalidOrderError",
    "InvalidResponseError",
    "KeyLoadError",
    "LogonRefusedError",
    "MaintenanceError",
    "NotFoundError",
    "OrderError",
    "OrderGroupError",
    "Problem",
    "RateLimitedError",
    "RestError",
    "RestTransportError",
    "ServerError",
    "SessionError",
    "SessionUnavailableError",
    "StaleSnapshotError",
    "ThrottledError",
]
