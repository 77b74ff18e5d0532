"""The simulator's order-group wire (spec §12): OrderGroupRequest (35=UOG) fields to a checked
``GroupRequest``, and the answers: OrderGroupResponse (35=UOH), or a session Reject (35=3) naming
the malformed field.

Pure, like ``order_reports``. Business errors (an unknown group) are the venue's: a
BusinessMessageReject (35=j) from ``order_reports.business_reject``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from fixengine.fix.tags import (
    ALLOC_ACCOUNT,
    EX_DESTINATION,
    MSG_ORDER_GROUP_REQUEST,
    MSG_ORDER_GROUP_RESPONSE,
    MSG_REJECT,
    MSG_SEQ_NUM,
    ORDER_GROUP_ACTION,
    ORDER_GROUP_CONTRACTS_LIMIT,
    ORDER_GROUP_ID,
    REF_MSG_TYPE,
    REF_SEQ_NUM,
    REF_TAG_ID,
    SESSION_REJECT_REASON,
    TEXT,
)
from simulator.exchange.groups import (
    LIMIT_MAX,
    LIMIT_MIN,
    GroupAction,
    GroupRequest,
    GroupState,
    Owner,
)
from simulator.fix.order_reports import Outgoing

# SessionRejectReason (373) values used here.
REQUIRED_TAG_MISSING = 1
VALUE_INCORRECT = 5
INCORRECT_DATA_FORMAT = 6
# BusinessRejectReason (380) of ORDER_GROUP_NOT_FOUND: FIX's "Unknown ID" is exactly that.
UNKNOWN_ID = 1

MAX_SUBACCOUNT = 63  # AllocAccount 0-63 (§10.7, §12)
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)
NAMES = {
    ORDER_GROUP_ID: "OrderGroupID",
    ORDER_GROUP_ACTION: "OrderGroupAction",
    ORDER_GROUP_CONTRACTS_LIMIT: "OrderGroupContractsLimit",
    ALLOC_ACCOUNT: "AllocAccount",
    EX_DESTINATION: "ExDestination",
}


class GroupFieldError(ValueError):
    """A malformed OrderGroupRequest field: answered with a session Reject (35=3) naming ``tag``
    with SessionRejectReason ``reason``; the message says what is wrong, in words."""

    def __init__(self, tag: int, reason: int, problem: str):
        super().__init__(f"{NAMES[tag]} ({tag}) {problem}")
        self.tag = tag
        self.reason = reason


def _int(f: Mapping[int, str], tag: int, low: int, high: int | None) -> int | None:
    value = f.get(tag)
    if value is None:
        return None
    if not re.fullmatch(r"-?[0-9]+", value):
        raise GroupFieldError(tag, INCORRECT_DATA_FORMAT, f"must be a whole number, not {value!r}")
    number = int(value)
    if number < low or (high is not None and number > high):
        bounds = f"{low}-{high}" if high is not None else f"{low} or more"
        raise GroupFieldError(tag, VALUE_INCORRECT, f"must be {bounds}, not {number}")
    return number


def parse_group_request(f: Mapping[int, str], account_id: str) -> GroupRequest:
    """A UOG's fields, checked as §12 lays them out. Raises ``GroupFieldError`` (the first problem)."""
    raw_action = f.get(ORDER_GROUP_ACTION)
    if raw_action is None:
        raise GroupFieldError(ORDER_GROUP_ACTION, REQUIRED_TAG_MISSING, "is required")
    try:
        action = GroupAction(raw_action)
    except ValueError:
        raise GroupFieldError(ORDER_GROUP_ACTION, VALUE_INCORRECT, f"must be 1-5, not {raw_action!r}") from None
    group_id = f.get(ORDER_GROUP_ID)
    if action is GroupAction.CREATE:
        if group_id is not None:
            # Defined on UOG, but no value is right on a Create: the exchange assigns the id.
            raise GroupFieldError(ORDER_GROUP_ID, VALUE_INCORRECT, "must not be sent on Create: the exchange assigns it")
    elif group_id is None:
        raise GroupFieldError(ORDER_GROUP_ID, REQUIRED_TAG_MISSING, f"is required on {action.name.title()}")
    elif not UUID.match(group_id):
        raise GroupFieldError(ORDER_GROUP_ID, INCORRECT_DATA_FORMAT, f"must be a UUID, not {group_id!r}")
    limit = None
    if action in (GroupAction.CREATE, GroupAction.UPDATE):  # ignored on the other actions
        limit = _int(f, ORDER_GROUP_CONTRACTS_LIMIT, LIMIT_MIN, LIMIT_MAX)
        if limit is None:
            raise GroupFieldError(ORDER_GROUP_CONTRACTS_LIMIT, REQUIRED_TAG_MISSING, f"is required on {action.name.title()}")
    subaccount = _int(f, ALLOC_ACCOUNT, 0, MAX_SUBACCOUNT) or 0
    shard = _int(f, EX_DESTINATION, 0, None) or 0  # groups live on one shard: no auto-routing (-1)
    return GroupRequest(action, Owner(account_id, subaccount, shard), group_id, limit)


def order_owner(f: Mapping[int, str], account_id: str) -> Owner:
    """Whose group a NewOrderSingle may join: its account, subaccount (79) and shard (100; omitted
    or -1, auto-routing, is shard 0 here: the simulator has one). Unreadable values name no one's."""
    sub, shard = f.get(ALLOC_ACCOUNT, "0"), f.get(EX_DESTINATION, "0")
    if not sub.isdigit() or not re.fullmatch(r"-?[0-9]+", shard):
        return Owner(account_id, -1, -1)
    return Owner(account_id, int(sub), max(int(shard), 0))


def group_response(session_id: str, action: GroupAction, state: GroupState) -> Outgoing:
    """OrderGroupResponse (35=UOH): the id, the limit on Create/Update (v1.0.21), the subaccount
    always (v1.0.24, 0 = primary)."""
    fields = [(ORDER_GROUP_ID, state.group_id)]
    if action in (GroupAction.CREATE, GroupAction.UPDATE):
        fields.append((ORDER_GROUP_CONTRACTS_LIMIT, str(state.contracts_limit)))
    fields.append((ALLOC_ACCOUNT, str(state.owner.subaccount)))
    return Outgoing(session_id, MSG_ORDER_GROUP_RESPONSE, fields)


def session_reject(session_id: str, request: Mapping[int, str], error: GroupFieldError) -> Outgoing:
    """Reject (35=3) of a malformed UOG: RefSeqNum, the field (371), why (373) and in words (58)."""
    return Outgoing(session_id, MSG_REJECT, [
        (REF_SEQ_NUM, request.get(MSG_SEQ_NUM, "0")),
        (REF_TAG_ID, str(error.tag)),
        (REF_MSG_TYPE, MSG_ORDER_GROUP_REQUEST),
        (SESSION_REJECT_REASON, str(error.reason)),
        (TEXT, str(error)),
    ])
