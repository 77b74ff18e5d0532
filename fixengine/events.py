"""Every event the engine publishes, in one place (``fixengine`` re-exports them all).

Each derives from ``Event`` (``fixengine._event``) and has ``session`` (the session's name in the
config), ``at`` (when the engine learnt it, UTC) and ``describe()`` (one line for a person), so a
subscriber can handle any of them without knowing its type::

    async for event in engine.events():
        print(event.at, event.session, event.describe())

Where they are made, and so where they are defined:

- session events (``fixengine.session.events``), in QuickFIX's callbacks: logons, logouts,
  heartbeats, rejects, gaps and resends, connect failures and reconnects;
- order events (``fixengine.orders.book``), by the pure order book, stamped with their session by
  whoever publishes them: ``OrderEvent``'s subclasses, ``PositionChanged``, ``UnmatchedReport``, and
  ``MarketSettled`` (``fixengine.orders.settlement``: a settlement report applied);
- order-entry events (``fixengine.orders.entry``): the book held or released, business rejects,
  mass cancels, sends that failed, reports that could not be read;
- order groups (``fixengine.orders.groups``): a request carried out or refused, a group's orders
  cancelled by Kalshi;
- drop copy (``fixengine.orders.drop_copy``): a replay complete or refused;
- reconciliation (``fixengine.reconcile.runner``): done or failed;
- Kalshi's pauses (``fixengine.maintenance``): its weekly maintenance, or a pause a report told of,
  started or ended.

``AnyEvent`` is the closed union of the concrete events, for exhaustive matching; ``Event``,
``SessionEvent`` and ``OrderEvent`` are their bases.
"""

from __future__ import annotations

from fixengine._event import Event
from fixengine.orders.book import (
    CancelRejected,
    OrderAccepted,
    OrderCanceled,
    OrderEvent,
    OrderExpired,
    OrderFilled,
    OrderPending,
    OrderRejected,
    OrderReplaced,
    PositionChanged,
    UnmatchedReport,
)
from fixengine.orders.drop_copy import DropCopyRefused, DropCopyReplayed
from fixengine.orders.entry import (
    BookHeld,
    BookReleased,
    BusinessRejected,
    MassCancelDone,
    OrderEntryHalted,
    ReportUnreadable,
    SendFailed,
)
from fixengine.maintenance import MaintenanceEnded, MaintenanceStarted
from fixengine.orders.settlement import MarketSettled
from fixengine.orders.groups import OrderGroupConfirmed, OrderGroupRefused, OrderGroupTriggered
from fixengine.reconcile.runner import ReconciliationDone, ReconciliationFailed
from fixengine.session.events import (
    ConnectionFailed,
    HeartbeatReceived,
    HeartbeatTimeout,
    LoggedOn,
    LoggedOut,
    LogonRefused,
    LogonSent,
    MessagesSkipped,
    ReconnectScheduled,
    ResendRefused,
    ResendRequested,
    SequenceGap,
    SessionEvent,
    SessionRejectReceived,
    SessionStopped,
)

# Everything a subscriber may see.
AnyEvent = (
    # the session
    LogonSent | LoggedOn | LogonRefused | LoggedOut | HeartbeatReceived | HeartbeatTimeout | SessionRejectReceived
    | ConnectionFailed | ReconnectScheduled | SessionStopped | SequenceGap | ResendRefused | MessagesSkipped
    | ResendRequested
    # orders
    | OrderPending | OrderAccepted | OrderFilled | OrderReplaced | OrderCanceled | OrderExpired | OrderRejected
    | CancelRejected | PositionChanged | UnmatchedReport | MarketSettled
    # order entry
    | BookHeld | BookReleased | BusinessRejected | MassCancelDone | SendFailed | ReportUnreadable | OrderEntryHalted
    # order groups
    | OrderGroupConfirmed | OrderGroupRefused | OrderGroupTriggered
    # drop copy
    | DropCopyReplayed | DropCopyRefused
    # reconciliation
    | ReconciliationDone | ReconciliationFailed
    # Kalshi's pauses
    | MaintenanceStarted | MaintenanceEnded
)

__all__ = [
    "AnyEvent",
    "BookHeld",
    "BookReleased",
    "BusinessRejected",
    "CancelRejected",
    "ConnectionFailed",
    "DropCopyRefused",
    "DropCopyReplayed",
    "Event",
    "HeartbeatReceived",
    "HeartbeatTimeout",
    "LoggedOn",
    "LoggedOut",
    "LogonRefused",
    "LogonSent",
    "MaintenanceEnded",
    "MaintenanceStarted",
    "MarketSettled",
    "MassCancelDone",
    "MessagesSkipped",
    "OrderAccepted",
    "OrderCanceled",
    "OrderEntryHalted",
    "OrderEvent",
    "OrderExpired",
    "OrderFilled",
    "OrderGroupConfirmed",
    "OrderGroupRefused",
    "OrderGroupTriggered",
    "OrderPending",
    "OrderRejected",
    "OrderReplaced",
    "PositionChanged",
    "ReconciliationDone",
    "ReconciliationFailed",
    "ReconnectScheduled",
    "ReportUnreadable",
    "ResendRefused",
    "ResendRequested",
    "SendFailed",
    "SequenceGap",
    "SessionEvent",
    "SessionRejectReceived",
    "SessionStopped",
    "UnmatchedReport",
]
