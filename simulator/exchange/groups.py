"""Order groups (spec §12): Kalshi's kill-switch, as a pure state machine.

Like the matching engine, no I/O and no clock: every call takes ``now`` (an aware datetime, the
venue's clock) and says what to do; the venue cancels the orders it names and writes the answers.

A group belongs to an account, a subaccount (79; 0 = primary) and a shard (100; 0 when omitted):
a request or an order naming it under any other owner finds no group (ORDER_GROUP_NOT_FOUND), as on
Kalshi. Orders join with SecondaryClOrdID (526) on NewOrderSingle. The contracts their fills trade
are summed over a rolling 15-second window; when the sum exceeds the group's limit the group
triggers: its resting orders are cancelled (ORDER_GROUP_CANCEL) and new orders to it are refused
until a Reset, which also clears the window.

Simulator choices where Kalshi's documents are silent:

* A fill counts at the moment it happens; it falls out of the window 15 s later (a fill exactly
  15 s old no longer counts).
* Fills go on counting while the group is triggered (a Reset clears them anyway).
* An order refused because its group is triggered gets EXCEEDED_ORDER_GROUP_RISK_LIMIT with
  OrdRejReason 3, the pair Kalshi documents for a group's risk limit (§11.3/§11.4): no other
  documented code says "this group has stopped taking orders".
* Only the fills the venue shows this machine count (those of FIX order entry); an operator's
  fills behind FIX's back (``Venue.fill_order``) do not.
"""

from __future__ import annotations

import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from enum import Enum

from fixengine.orders.reports import OrdStatus, RejectCode
from simulator.exchange.matching import (
    Accepted,
    Canceled,
    Event,
    Expired,
    OrdRejReason,
    Traded,
)

WINDOW = timedelta(seconds=15)
LIMIT_MIN, LIMIT_MAX = 1, 1_000_000  # OrderGroupContractsLimit (20132)
ZERO = Decimal(0)


class GroupAction(str, Enum):
    """OrderGroupAction (20131)."""

    CREATE = "1"
    RESET = "2"
    DELETE = "3"
    TRIGGER = "4"
    UPDATE = "5"


@dataclass(frozen=True, slots=True)
class Owner:
    """Whose group it is: an exchange account, one of its subaccounts, one shard."""

    account_id: str
    subaccount: int = 0
    shard: int = 0


@dataclass(frozen=True, slots=True)
class GroupRequest:
    """An OrderGroupRequest (35=UOG) as the exchange sees it, its fields already checked."""

    action: GroupAction
    owner: Owner
    group_id: str | None = None  # None only on Create
    contracts_limit: int | None = None  # on Create and Update


@dataclass(frozen=True, slots=True)
class GroupState:
    """A group as a request left it (what OrderGroupResponse echoes)."""

    group_id: str
    owner: Owner
    contracts_limit: int
    triggered: bool
    volume: Decimal  # contracts filled in the window at ``now``


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a request did: the group after it, and the resting orders to cancel now."""

    state: GroupState
    cancel: list[str]  # order ids, in the order they joined


class GroupNotFound(LookupError):
    """No such group for this owner (deleted, never created, or another subaccount's or shard's)."""

    text = RejectCode.ORDER_GROUP_NOT_FOUND.value


@dataclass(slots=True)
class _Group:
    group_id: str
    owner: Owner
    limit: int
    triggered: bool = False
    fills: deque[tuple[datetime, Decimal]] = field(default_factory=deque)  # (when, contracts), oldest first
    members: dict[str, None] = field(default_factory=dict)  # open order ids, in the order they joined

    def volume(self, now: datetime) -> Decimal:
        while self.fills and self.fills[0][0] <= now - WINDOW:
            self.fills.popleft()
        return sum((q for _, q in self.fills), ZERO)

    def state(self, now: datetime) -> GroupState:
        return GroupState(self.group_id, self.owner, self.limit, self.triggered, self.volume(now))

    def trigger(self) -> list[str]:
        """Trigger (if not already): the members to cancel, who are no longer members."""
        if self.triggered:
            return []
        self.triggered = True
        cancel, self.members = list(self.members), {}
        return cancel


def _check_limit(limit: int) -> None:
    if not LIMIT_MIN <= limit <= LIMIT_MAX:
        raise ValueError(f"contracts limit {limit} is outside {LIMIT_MIN}-{LIMIT_MAX}")


class OrderGroups:
    """Every account's order groups, and which open orders belong to which."""

    def __init__(self, new_id: Callable[[], str] = lambda: str(uuid.uuid4())):
        self._new_id = new_id  # the exchange generates group ids (a test may make them predictable)
        self._groups: dict[str, _Group] = {}
        self._group_of: dict[str, str] = {}  # order id -> group id, while the order is open

    # --- requests (35=UOG) --------------------------------------------------------------------

    def apply(self, request: GroupRequest, now: datetime) -> Outcome:
        """Carry out an OrderGroupRequest. Raises ``GroupNotFound`` (nothing changed)."""
        if request.action is GroupAction.CREATE:
            assert request.contracts_limit is not None, "a Create carries its limit"
            return self.create(request.owner, request.contracts_limit, now)
        assert request.group_id is not None, "only a Create comes without a group id"
        group = self._find(request.owner, request.group_id)
        cancel: list[str] = []
        if request.action is GroupAction.RESET:
            group.triggered = False
            group.fills.clear()
        elif request.action is GroupAction.DELETE:
            cancel = list(group.members)
            del self._groups[group.group_id]
        elif request.action is GroupAction.TRIGGER:
            cancel = group.trigger()
        elif request.action is GroupAction.UPDATE:
            assert request.contracts_limit is not None, "an Update carries its limit"
            _check_limit(request.contracts_limit)
            group.limit = request.contracts_limit
            if group.volume(now) > group.limit:
                cancel = group.trigger()
        for order_id in cancel:
            self._group_of.pop(order_id, None)
        return Outcome(group.state(now), cancel)

    def create(self, owner: Owner, contracts_limit: int, now: datetime) -> Outcome:
        _check_limit(contracts_limit)
        group = _Group(self._new_id(), owner, contracts_limit)
        self._groups[group.group_id] = group
        return Outcome(group.state(now), [])

    def _find(self, owner: Owner, group_id: str) -> _Group:
        group = self._groups.get(group_id)
        if group is None or group.owner != owner:
            raise GroupNotFound(f"no order group {group_id} for {owner}")
        return group

    # --- orders (35=D with 526) ---------------------------------------------------------------

    def refusal(self, owner: Owner, group_id: str) -> tuple[str, int] | None:
        """Why a new order naming ``group_id`` must be rejected (Text, OrdRejReason), or None."""
        group = self._groups.get(group_id)
        if group is None or group.owner != owner:
            return RejectCode.ORDER_GROUP_NOT_FOUND.value, OrdRejReason.UNSUPPORTED_ORDER_CHARACTERISTIC
        if group.triggered:
            return RejectCode.EXCEEDED_ORDER_GROUP_RISK_LIMIT.value, OrdRejReason.ORDER_EXCEEDS_LIMIT
        return None

    def observe(self, events: Iterable[Event], now: datetime,
                joining: tuple[str, str, str] | None = None) -> list[str]:
        """Follow what the exchange did, in order: the order ``joining`` (account, ClOrdID, group
        id) joins its group when accepted; member fills count in the window; members that end
        leave. Returns the order ids to cancel now, of groups these fills triggered."""
        cancel: list[str] = []
        ended: set[str] = set()  # a member cancelled by a trigger may end later in the same events
        for event in events:
            if isinstance(event, Accepted):
                o = event.order
                if joining is not None and (o.account_id, o.cl_ord_id) == joining[:2] and joining[2] in self._groups:
                    self._groups[joining[2]].members[o.order_id] = None
                    self._group_of[o.order_id] = joining[2]
            elif isinstance(event, Traded):
                for snapshot in (event.taker, event.maker):
                    cancel += self._filled(snapshot.order_id, event.quantity, now)
                    if snapshot.status is OrdStatus.FILLED:
                        self._leave(snapshot.order_id)
                        ended.add(snapshot.order_id)
            elif isinstance(event, (Canceled, Expired)):
                self._leave(event.order.order_id)
                ended.add(event.order.order_id)
        return [order_id for order_id in cancel if order_id not in ended]

    def _filled(self, order_id: str, quantity: Decimal, now: datetime) -> list[str]:
        group = self._groups.get(self._group_of.get(order_id, ""))
        if group is None:
            return []
        group.fills.append((now, quantity))
        if group.volume(now) <= group.limit:
            return []
        cancel = group.trigger()
        for member in cancel:
            self._group_of.pop(member, None)
        return cancel

    def _leave(self, order_id: str) -> None:
        group = self._groups.get(self._group_of.pop(order_id, ""))
        if group is not None:
            group.members.pop(order_id, None)

    # --- views --------------------------------------------------------------------------------

    def state(self, group_id: str, now: datetime) -> GroupState:
        """A group as it is at ``now`` (KeyError if there is none)."""
        return self._groups[group_id].state(now)

    def groups(self, now: datetime) -> list[GroupState]:
        return [g.state(now) for g in self._groups.values()]
