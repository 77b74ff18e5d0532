"""Order groups (spec §12), Kalshi's kill-switch: an account's group has a contracts limit; when its
orders fill more than that within 15 seconds, Kalshi cancels the group's resting orders
(ORDER_GROUP_CANCEL) and refuses new ones until the group is reset. Orders join a group with
``NewOrder.order_group_id`` (SecondaryClOrdID, 526).

Pure: the typed request and its OrderGroupRequest (35=UOG) fields, the OrderGroupResponse (35=UOH)
read back, the events, and ``PendingGroupRequests``, which says which request an answer is for.
A UOH names no request (a Create's answer carries the id the exchange made up), so it answers the
oldest request of its session still unanswered: Kalshi answers a session's requests in turn. A
rejection names the request's MsgSeqNum (RefSeqNum, 45): a BusinessMessageReject (35=j) for a
business error (e.g. ORDER_GROUP_NOT_FOUND), a session Reject (35=3) for a malformed field.

Groups are the exchange's state and are not journaled; their requests go out with the orders of
the same loop turn, in order, after its journal commit.
"""

from __future__ import annotations

import uuid
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum

from fixengine._event import _StampedNow
from fixengine.errors import InvalidOrderError, OrderGroupError
from fixengine.fix.tags import (
    ALLOC_ACCOUNT,
    EX_DESTINATION,
    ORDER_GROUP_ACTION,
    ORDER_GROUP_CONTRACTS_LIMIT,
    ORDER_GROUP_ID,
)
from fixengine.orders.reports import Reason, RejectCode
from fixengine.orders.wire import Fields, ReportError

CONTRACTS_LIMIT_MAX = 1_000_000  # OrderGroupContractsLimit (20132): 1 to 1,000,000
MAX_SUBACCOUNT = 63  # AllocAccount (79): 0 (primary) to 63


class OrderGroupAction(str, Enum):
    """OrderGroupAction (20131)."""

    CREATE = "1"
    RESET = "2"  # clears the triggered state and the 15-second volume
    DELETE = "3"  # removes the group and cancels its resting orders
    TRIGGER = "4"  # cancels its resting orders now; new ones refused until a reset
    UPDATE = "5"  # a new limit; triggers if the volume already exceeds it


@dataclass(frozen=True, slots=True)
class OrderGroupRequest:
    """One OrderGroupRequest, checked when made: ``InvalidOrderError`` names each field at fault.

    ``group_id`` is sent as given: it is the exchange's identifier, and a malformed one comes back
    as Kalshi's session Reject (an ``OrderGroupError``), never guessed at here."""

    action: OrderGroupAction
    group_id: str | None = None  # every action but CREATE
    contracts_limit: int | None = None  # CREATE and UPDATE
    subaccount: int | None = None  # AllocAccount (79); a group is managed under the subaccount it was made with
    shard: int | None = None  # ExDestination (100); Kalshi: omitted is shard 0
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)  # ours, never sent: matches the answer

    def __post_init__(self) -> None:
        problems = []
        needs_id = self.action is not OrderGroupAction.CREATE
        if not needs_id and self.group_id is not None:
            problems.append("group_id: must not be given on create: Kalshi assigns it")
        elif needs_id and not self.group_id:
            problems.append(f"group_id: is required to {self.action.name.lower()} a group")
        elif self.group_id is not None and not (self.group_id.isprintable() and self.group_id.isascii()):
            problems.append(f"group_id: {self.group_id!r} is not printable ASCII")
        needs_limit = self.action in (OrderGroupAction.CREATE, OrderGroupAction.UPDATE)
        limit = self.contracts_limit
        if needs_limit and limit is None:
            problems.append(f"contracts_limit: is required to {self.action.name.lower()} a group")
        elif not needs_limit and limit is not None:
            problems.append(f"contracts_limit: is only sent to create or update a group, not to {self.action.name.lower()} it")
        elif limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= CONTRACTS_LIMIT_MAX):
            problems.append(f"contracts_limit: must be a whole number of contracts from 1 to {CONTRACTS_LIMIT_MAX:,}, not {limit!r}")
        if self.subaccount is not None and not _whole_in(self.subaccount, 0, MAX_SUBACCOUNT):
            problems.append(f"subaccount: must be 0 (primary) to {MAX_SUBACCOUNT}, not {self.subaccount!r}")
        if self.shard is not None and not _whole_in(self.shard, 0, None):
            problems.append(f"shard: must be a shard index, 0 or more, not {self.shard!r}")
        if problems:
            raise InvalidOrderError(problems)


def _whole_in(value: object, low: int, high: int | None) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= low and (high is None or value <= high)


@dataclass(frozen=True, slots=True)
class OrderGroup:
    """A group as Kalshi's answer (35=UOH) describes it."""

    group_id: str
    subaccount: int  # 0: the primary account
    contracts_limit: int | None  # echoed on create and update; None for the other actions


@dataclass(frozen=True, slots=True)
class GroupResponse:
    group_id: str
    contracts_limit: int | None
    subaccount: int


def order_group_fields(request: OrderGroupRequest) -> Fields:
    """OrderGroupRequest (35=UOG) body."""
    fields: Fields = [(ORDER_GROUP_ACTION, request.action.value)]
    if request.group_id is not None:
        fields.append((ORDER_GROUP_ID, request.group_id))
    if request.contracts_limit is not None:
        fields.append((ORDER_GROUP_CONTRACTS_LIMIT, str(request.contracts_limit)))
    if request.subaccount is not None:
        fields.append((ALLOC_ACCOUNT, str(request.subaccount)))
    if request.shard is not None:
        fields.append((EX_DESTINATION, str(request.shard)))
    return fields


def parse_order_group_response(f: Mapping[int, str]) -> GroupResponse:
    """OrderGroupResponse (35=UOH): 20130, 20132 on create/update, 79 (absent: the primary, 0)."""
    group_id = f.get(ORDER_GROUP_ID)
    if not group_id:
        raise ReportError("OrderGroupResponse without OrderGroupID (20130)")
    limit, subaccount = f.get(ORDER_GROUP_CONTRACTS_LIMIT), f.get(ALLOC_ACCOUNT, "0")
    if (limit is not None and not limit.isdigit()) or not subaccount.isdigit():
        raise ReportError(f"OrderGroupResponse with a count that is not a whole number: 20132={limit!r}, 79={subaccount!r}")
    return GroupResponse(group_id, None if limit is None else int(limit), int(subaccount))


# --- events -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OrderGroupConfirmed(_StampedNow):
    """Kalshi carried out an order-group request (35=UOH)."""

    request_id: str
    action: OrderGroupAction
    group: OrderGroup

    def describe(self) -> str:
        limit = f", limit {self.group.contracts_limit} contracts in 15 s" if self.group.contracts_limit is not None else ""
        sub = f" (subaccount {self.group.subaccount})" if self.group.subaccount else ""
        return f"order group {self.group.group_id}{sub}: {self.action.name.lower()} done{limit}"


@dataclass(frozen=True, slots=True)
class OrderGroupRefused(_StampedNow):
    """Kalshi refused an order-group request: a BusinessMessageReject (35=j: ``reason.number`` is
    BusinessRejectReason 380, ``reason.code`` e.g. ORDER_GROUP_NOT_FOUND) or a session Reject of a
    malformed field (35=3, ``session_reject``: ``reason.number`` is SessionRejectReason 373,
    ``ref_tag`` the field). Also published, with no number, when it could not be sent or its
    session logged out before the answer (the outcome is then unknown)."""

    request_id: str
    action: OrderGroupAction
    group_id: str | None
    reason: Reason
    session_reject: bool = False
    ref_tag: int | None = None

    def describe(self) -> str:
        which = f"order group {self.group_id}" if self.group_id else "order group"
        field_ = f" (tag {self.ref_tag})" if self.ref_tag is not None else ""
        return f"{which}: {self.action.name.lower()} refused{field_}: {self.reason.text or self.reason.code.value}"

    def error(self) -> OrderGroupError:
        return OrderGroupError(
            self.session, self.action.name.lower(), self.group_id, self.reason.code.value, self.reason.text,
            number=self.reason.number, ref_tag=self.ref_tag, session_reject=self.session_reject,
        )


@dataclass(frozen=True, slots=True)
class OrderGroupTriggered(_StampedNow):
    """Kalshi cancelled resting orders of an order group (Text ORDER_GROUP_CANCEL): the group
    triggered (its orders filled more than its limit in 15 s, or a trigger request) and refuses new
    orders until it is reset. A delete cancels the same way. ``orders``: the keys of the book's
    orders cancelled, in one run of reports."""

    group_id: str
    orders: list[str]

    def describe(self) -> str:
        return (f"order group {self.group_id}: {len(self.orders)} resting orders cancelled by Kalshi "
                "(triggered or deleted; new orders to it are refused until it is reset)")


OrderGroupEvent = OrderGroupConfirmed | OrderGroupRefused | OrderGroupTriggered


def group_cancels(canceled: Iterable[tuple[str, str | None, Reason | None, str]]) -> list[OrderGroupTriggered]:
    """One ``OrderGroupTriggered`` per (session, group) among ``(session, group id, reason, order
    key)`` of the orders a run of reports cancelled, for those Kalshi cancelled for their group."""
    by_group: dict[tuple[str, str], list[str]] = {}
    for session, group_id, reason, key in canceled:
        if group_id is not None and reason is not None and reason.code is RejectCode.ORDER_GROUP_CANCEL:
            by_group.setdefault((session, group_id), []).append(key)
    return [OrderGroupTriggered(session, group_id, keys) for (session, group_id), keys in by_group.items()]


class StoppedGroups:
    """The order groups Kalshi refuses new orders to, as far as this engine has seen: triggered (its
    orders cancelled with ORDER_GROUP_CANCEL, a confirmed trigger, an order refused with
    EXCEEDED_ORDER_GROUP_RISK_LIMIT) until a reset confirmed or an order of the group accepted (the
    group was reset elsewhere). A deleted group is left to Kalshi (ORDER_GROUP_NOT_FOUND). Pure: fed
    the events the order entry publishes."""

    def __init__(self) -> None:
        self._triggered: set[str] = set()
        self._deleted: set[str] = set()

    def learn(self, event: object) -> None:
        if isinstance(event, OrderGroupTriggered):
            if event.group_id not in self._deleted:  # a delete's cancels carry the same Text
                self._triggered.add(event.group_id)
        elif isinstance(event, OrderGroupConfirmed):
            gid = event.group.group_id
            if event.action is OrderGroupAction.TRIGGER:
                self._triggered.add(gid)
            elif event.action is OrderGroupAction.RESET:
                self._triggered.discard(gid)
            elif event.action is OrderGroupAction.DELETE:
                self._triggered.discard(gid)
                self._deleted.add(gid)
        else:
            order = getattr(event, "order", None)  # an order event of the book
            gid = getattr(order, "order_group_id", None)
            if gid is None:
                return
            reason = order.reason
            if reason is not None and reason.code is RejectCode.EXCEEDED_ORDER_GROUP_RISK_LIMIT:
                self._triggered.add(gid)
            elif order.order_id is not None and not order.status.terminal:
                self._triggered.discard(gid)  # Kalshi took an order of the group: it is active again

    def refusal(self, group_id: str | None) -> str | None:
        """Why a new order to ``group_id`` is refused before it is sent, or None."""
        if group_id is None or group_id not in self._triggered:
            return None
        return (f"order_group_id: order group {group_id} is triggered; Kalshi refuses its new orders until it is "
                "reset (engine.reset_order_group)")


# --- which request an answer is for ------------------------------------------------------------


class PendingGroupRequests:
    """Order-group requests queued, then sent (with their MsgSeqNum), until answered; per session.
    Each method returns the event to publish, or None."""

    def __init__(self) -> None:
        self._queued: dict[str, deque[OrderGroupRequest]] = {}  # in the outbox, in order
        self._sent: dict[str, dict[int, OrderGroupRequest]] = {}  # MsgSeqNum -> request, in order sent

    def queued(self, session: str, request: OrderGroupRequest) -> None:
        self._queued.setdefault(session, deque()).append(request)

    def transmitted(self, session: str, seq_num: int | None) -> OrderGroupRefused | None:
        """The oldest queued request of ``session`` went out as MsgSeqNum ``seq_num`` (None: not sent)."""
        request = self._queued[session].popleft()
        if seq_num is not None:
            self._sent.setdefault(session, {})[seq_num] = request
            return None
        return _refused(session, request, f"not sent: session {session} is not logged on")

    def answered(self, session: str, response: GroupResponse) -> OrderGroupConfirmed | None:
        """A UOH: the oldest request of the session still unanswered (if its group id agrees)."""
        sent = self._sent.get(session, {})
        seq = next(iter(sent), None)
        if seq is None:
            return None
        request = sent[seq]
        if request.group_id is not None and request.group_id != response.group_id:
            seq = next((s for s, r in sent.items() if r.group_id == response.group_id), None)
            if seq is None:
                return None
            request = sent[seq]
        del sent[seq]
        group = OrderGroup(response.group_id, response.subaccount, response.contracts_limit)
        return OrderGroupConfirmed(session, request.request_id, request.action, group)

    def rejected(self, session: str, ref_seq_num: int | None, reason: Reason, *, session_reject: bool,
                 ref_tag: int | None = None) -> OrderGroupRefused | None:
        """A 35=j or 35=3 naming a UOG by its MsgSeqNum."""
        request = self._sent.get(session, {}).pop(ref_seq_num, None) if ref_seq_num is not None else None
        if request is None:
            return None
        return OrderGroupRefused(session, request.request_id, request.action, request.group_id, reason,
                                 session_reject=session_reject, ref_tag=ref_tag)

    def logged_out(self, session: str) -> list[OrderGroupRefused]:
        """The session went away: its unanswered requests will not be answered on it."""
        sent = self._sent.pop(session, {})
        text = f"no answer before session {session} logged out: the request's outcome is unknown"
        return [_refused(session, request, text) for request in sent.values()]


def _refused(session: str, request: OrderGroupRequest, text: str) -> OrderGroupRefused:
    return OrderGroupRefused(session, request.request_id, request.action, request.group_id,
                             Reason(RejectCode.OTHER, None, text))
