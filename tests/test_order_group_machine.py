"""Order groups without sockets: the simulator's group machine (``simulator.exchange.groups``) fed
matching events and a clock the test moves, its UOG wire, and the engine's side (requests checked
before sending, answers matched to requests). The end-to-end tests are in test_order_groups.py."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone
from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fixengine.errors import InvalidOrderError, OrderGroupError
from fixengine.fix.tags import (
    ALLOC_ACCOUNT,
    EX_DESTINATION,
    ORDER_GROUP_ACTION,
    ORDER_GROUP_CONTRACTS_LIMIT,
    ORDER_GROUP_ID,
)
from fixengine.kalshi.prices import WireSide
from fixengine.orders.groups import (
    GroupResponse,
    OrderGroupAction,
    OrderGroupConfirmed,
    OrderGroupRefused,
    OrderGroupRequest,
    PendingGroupRequests,
    order_group_fields,
)
from fixengine.orders.book import OrderAccepted, OrderBook, OrderRejected
from fixengine.orders.groups import StoppedGroups
from fixengine.orders.reports import ExecType, ExecutionReport, OrdStatus, Reason, RejectCode
from simulator.exchange.groups import (
    WINDOW,
    GroupAction,
    GroupNotFound,
    GroupRequest,
    GroupState,
    OrderGroups,
    Owner,
)
from simulator.exchange.matching import AccountState, Exchange, MarketConfig
from simulator.fix.order_groups import GroupFieldError, parse_group_request
from tests.helpers.orders import book_order, order_spec

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=timezone.utc)
TICKER = "GROUPS-1"
MAKER, TAKER = "maker", "taker"
GID = "0b6d4c2e-3f1a-4c55-9d7e-2a8f6b1c9e01"


def groups() -> OrderGroups:
    counter = itertools.count(1)
    return OrderGroups(new_id=lambda: f"00000000-0000-4000-8000-{next(counter):012d}")


def exchange() -> Exchange:
    return Exchange([MarketConfig(TICKER)], [AccountState(MAKER, D(10_000)), AccountState(TAKER, D(10_000))])


class Market:
    """A maker whose orders may join a group and a taker who fills them, through the real matching
    engine, with the group machine following every event as the venue makes it follow them."""

    def __init__(self) -> None:
        self.exchange, self.groups = exchange(), groups()
        self.counter = itertools.count(1)
        self.canceled: list[str] = []

    def follow(self, events: list, now: datetime, joining: tuple[str, str, str] | None = None) -> list:
        for order_id in self.groups.observe(events, now, joining):
            more = self.exchange.cancel_order(order_id, now, RejectCode.ORDER_GROUP_CANCEL.value)
            self.groups.observe(more, now)
            self.canceled.append(order_id)
            events = events + more
        return events

    def offer(self, qty: int, price: str, group: str | None, now: datetime) -> str:
        cl = f"m{next(self.counter)}"
        spec = order_spec(TICKER, MAKER, cl, WireSide.SELL_YES, price, qty)
        events = self.follow(self.exchange.submit(spec, now), now, (MAKER, cl, group) if group else None)
        return events[0].order.order_id

    def request(self, request: GroupRequest, now: datetime) -> GroupState:
        """An OrderGroupRequest, with the cancels the venue makes of what it returns."""
        outcome = self.groups.apply(request, now)
        for order_id in outcome.cancel:
            self.follow(self.exchange.cancel_order(order_id, now, RejectCode.ORDER_GROUP_CANCEL.value), now)
            self.canceled.append(order_id)
        return outcome.state

    def take(self, qty: int, price: str, now: datetime) -> None:
        spec = order_spec(TICKER, TAKER, f"t{next(self.counter)}", WireSide.BUY_YES, price, qty)
        self.follow(self.exchange.submit(spec, now), now)

    def is_open(self, order_id: str) -> bool:
        return order_id in {o.order_id for o in self.exchange.open_orders()}


# --- the simulator's group machine ----------------------------------------------------------


def test_fills_inside_the_window_trigger_and_cancel_the_resting_members() -> None:
    m = Market()
    gid = m.groups.create(Owner(MAKER), 5, T0).state.group_id
    resting = m.offer(10, "0.60", gid, T0)  # never crossed: the member the trigger cancels
    m.offer(3, "0.40", gid, T0)
    m.take(3, "0.40", T0)
    assert m.groups.state(gid, T0).volume == 3 and not m.groups.state(gid, T0).triggered
    m.offer(3, "0.40", gid, T0 + timedelta(seconds=10))
    m.take(3, "0.40", T0 + timedelta(seconds=10))  # 6 in 15 s > 5
    assert m.groups.state(gid, T0 + timedelta(seconds=10)).triggered
    assert m.canceled == [resting] and not m.is_open(resting)
    assert m.groups.refusal(Owner(MAKER), gid) == (RejectCode.EXCEEDED_ORDER_GROUP_RISK_LIMIT.value, 3)


def test_a_fill_older_than_15_seconds_no_longer_counts() -> None:
    m = Market()
    gid = m.groups.create(Owner(MAKER), 5, T0).state.group_id
    resting = m.offer(10, "0.60", gid, T0)
    m.offer(3, "0.40", gid, T0)
    m.take(3, "0.40", T0)
    later = T0 + WINDOW  # the first fill is exactly 15 s old: out of the window
    m.offer(3, "0.40", gid, later)
    m.take(3, "0.40", later)
    state = m.groups.state(gid, later)
    assert state.volume == 3 and not state.triggered and m.is_open(resting) and m.canceled == []


def test_a_non_member_fill_counts_for_no_group_and_an_ended_member_leaves() -> None:
    m = Market()
    gid = m.groups.create(Owner(MAKER), 1, T0).state.group_id
    m.offer(5, "0.40", None, T0)
    m.take(5, "0.40", T0)
    assert m.groups.state(gid, T0).volume == 0
    member = m.offer(2, "0.40", gid, T0)
    m.follow(m.exchange.cancel(MAKER, m.exchange.order(member).cl_ord_id, "c-1", T0), T0)
    assert not m.is_open(member)
    assert m.groups.apply(GroupRequest(GroupAction.TRIGGER, Owner(MAKER), gid), T0).cancel == []


def test_a_member_filled_by_the_fill_that_triggers_is_not_cancelled_again() -> None:
    m = Market()
    gid = m.groups.create(Owner(MAKER), 2, T0).state.group_id
    resting = m.offer(4, "0.60", gid, T0)
    m.offer(3, "0.40", gid, T0)
    m.take(3, "0.40", T0)  # fills the member whole and triggers: only the resting one is cancelled
    assert m.canceled == [resting]


def test_reset_clears_the_trigger_and_the_window() -> None:
    g, owner = groups(), Owner(MAKER)
    gid = g.create(owner, 5, T0).state.group_id
    g.apply(GroupRequest(GroupAction.TRIGGER, owner, gid), T0)
    assert g.refusal(owner, gid) is not None
    state = g.apply(GroupRequest(GroupAction.RESET, owner, gid), T0).state
    assert not state.triggered and state.volume == 0 and g.refusal(owner, gid) is None


def test_update_below_the_volume_triggers_and_delete_cancels_the_members() -> None:
    m = Market()
    owner = Owner(MAKER)
    gid = m.groups.create(owner, 10, T0).state.group_id
    m.offer(4, "0.40", gid, T0)
    m.take(4, "0.40", T0)
    resting = m.offer(5, "0.60", gid, T0)
    outcome = m.groups.apply(GroupRequest(GroupAction.UPDATE, owner, gid, 3), T0)
    assert outcome.state.triggered and outcome.state.contracts_limit == 3 and outcome.cancel == [resting]
    gid2 = m.groups.create(owner, 10, T0).state.group_id
    other = m.offer(5, "0.60", gid2, T0)
    assert m.groups.apply(GroupRequest(GroupAction.DELETE, owner, gid2), T0).cancel == [other]
    assert m.groups.refusal(owner, gid2) == (RejectCode.ORDER_GROUP_NOT_FOUND.value, 11)


@pytest.mark.parametrize("other", [Owner(MAKER, subaccount=2), Owner(MAKER, shard=1), Owner(TAKER)],
                         ids=["subaccount", "shard", "account"])
def test_a_group_is_only_found_by_its_own_account_subaccount_and_shard(other: Owner) -> None:
    g = groups()
    gid = g.create(Owner(MAKER), 5, T0).state.group_id
    with pytest.raises(GroupNotFound):
        g.apply(GroupRequest(GroupAction.RESET, other, gid), T0)
    assert g.refusal(other, gid) == (RejectCode.ORDER_GROUP_NOT_FOUND.value, 11)
    assert g.refusal(Owner(MAKER), gid) is None


# The property: whatever happens, a group not triggered has never more than its limit filled in the
# last 15 s, and a reset leaves it untriggered with nothing in its window.

steps = st.lists(st.one_of(
    st.tuples(st.just("fill"), st.integers(1, 4)),
    st.tuples(st.just("wait"), st.integers(0, 20)),
    st.tuples(st.just("offer"), st.integers(1, 6)),
    st.tuples(st.just("update"), st.integers(1, 12)),
    st.tuples(st.just("reset"), st.just(0)),
    st.tuples(st.just("trigger"), st.just(0)),
), max_size=40)


@settings(max_examples=150, deadline=None)
@given(limit=st.integers(1, 10), script=steps)
def test_property_window_never_exceeds_the_limit_untriggered_and_reset_clears(limit: int, script: list) -> None:
    m, owner, now = Market(), Owner(MAKER), T0
    gid = m.groups.create(owner, limit, now).state.group_id
    for what, n in script:
        if what == "wait":
            now += timedelta(seconds=n)
        elif what == "offer" and m.groups.refusal(owner, gid) is None:
            m.offer(n, "0.40", gid, now)
        elif what == "fill":
            m.take(n, "0.40", now)
        elif what == "update":
            m.request(GroupRequest(GroupAction.UPDATE, owner, gid, n), now)
        elif what == "reset":
            state = m.request(GroupRequest(GroupAction.RESET, owner, gid), now)
            assert not state.triggered and state.volume == 0
        elif what == "trigger":
            m.request(GroupRequest(GroupAction.TRIGGER, owner, gid), now)
        state = m.groups.state(gid, now)
        assert state.triggered or state.volume <= state.contracts_limit
        if state.triggered:  # every maker order is the group's: none rests once it has triggered
            assert m.exchange.open_orders(MAKER) == []


# --- the simulator's UOG wire ---------------------------------------------------------------


@pytest.mark.parametrize(("fields", "tag", "reason"), [
    ({ORDER_GROUP_ACTION: "1", ORDER_GROUP_ID: GID, ORDER_GROUP_CONTRACTS_LIMIT: "5"}, ORDER_GROUP_ID, 5),
    ({ORDER_GROUP_ACTION: "2", ORDER_GROUP_ID: "not-a-uuid"}, ORDER_GROUP_ID, 6),
    ({ORDER_GROUP_ACTION: "3"}, ORDER_GROUP_ID, 1),
    ({ORDER_GROUP_ACTION: "1"}, ORDER_GROUP_CONTRACTS_LIMIT, 1),
    ({ORDER_GROUP_ACTION: "5", ORDER_GROUP_ID: GID, ORDER_GROUP_CONTRACTS_LIMIT: "0"}, ORDER_GROUP_CONTRACTS_LIMIT, 5),
    ({ORDER_GROUP_ACTION: "1", ORDER_GROUP_CONTRACTS_LIMIT: "1000001"}, ORDER_GROUP_CONTRACTS_LIMIT, 5),
    ({ORDER_GROUP_ACTION: "1", ORDER_GROUP_CONTRACTS_LIMIT: "ten"}, ORDER_GROUP_CONTRACTS_LIMIT, 6),
    ({ORDER_GROUP_ACTION: "9", ORDER_GROUP_ID: GID}, ORDER_GROUP_ACTION, 5),
    ({}, ORDER_GROUP_ACTION, 1),
    ({ORDER_GROUP_ACTION: "1", ORDER_GROUP_CONTRACTS_LIMIT: "5", ALLOC_ACCOUNT: "64"}, ALLOC_ACCOUNT, 5),
    ({ORDER_GROUP_ACTION: "1", ORDER_GROUP_CONTRACTS_LIMIT: "5", EX_DESTINATION: "-1"}, EX_DESTINATION, 5),
], ids=["id-on-create", "bad-uuid", "no-id", "no-limit", "limit-0", "limit-too-big", "limit-not-a-number",
        "bad-action", "no-action", "subaccount-64", "shard-negative"])
def test_a_malformed_request_names_its_field_and_reject_reason(fields: dict, tag: int, reason: int) -> None:
    with pytest.raises(GroupFieldError) as raised:
        parse_group_request(fields, MAKER)
    assert (raised.value.tag, raised.value.reason) == (tag, reason)
    assert f"({tag})" in str(raised.value)


def test_a_well_formed_request_is_read_with_its_owner() -> None:
    request = parse_group_request({ORDER_GROUP_ACTION: "5", ORDER_GROUP_ID: GID, ORDER_GROUP_CONTRACTS_LIMIT: "7",
                                   ALLOC_ACCOUNT: "3", EX_DESTINATION: "2"}, MAKER)
    assert request == GroupRequest(GroupAction.UPDATE, Owner(MAKER, 3, 2), GID, 7)


# --- the engine's side ------------------------------------------------------------------------


@pytest.mark.parametrize(("fields", "problem"), [
    (dict(action=OrderGroupAction.CREATE, group_id=GID, contracts_limit=5), "group_id: must not be given on create"),
    (dict(action=OrderGroupAction.RESET), "group_id: is required to reset"),
    (dict(action=OrderGroupAction.CREATE), "contracts_limit: is required to create"),
    (dict(action=OrderGroupAction.CREATE, contracts_limit=0), "contracts_limit: must be a whole number"),
    (dict(action=OrderGroupAction.UPDATE, group_id=GID, contracts_limit=1_000_001), "contracts_limit: must be"),
    (dict(action=OrderGroupAction.DELETE, group_id=GID, contracts_limit=5), "contracts_limit: is only sent"),
    (dict(action=OrderGroupAction.CREATE, contracts_limit=5, subaccount=64), "subaccount: must be 0"),
    (dict(action=OrderGroupAction.CREATE, contracts_limit=5, shard=-1), "shard: must be"),
])
def test_a_request_that_cannot_be_sent_names_the_field(fields: dict, problem: str) -> None:
    with pytest.raises(InvalidOrderError, match=problem):
        OrderGroupRequest(**fields)


def test_request_fields_in_wire_order() -> None:
    request = OrderGroupRequest(OrderGroupAction.UPDATE, GID, 9, subaccount=2, shard=1)
    assert order_group_fields(request) == [(20131, "5"), (20130, GID), (20132, "9"), (79, "2"), (100, "1")]


def test_answers_are_matched_in_order_and_rejects_by_msg_seq_num() -> None:
    pending = PendingGroupRequests()
    create = OrderGroupRequest(OrderGroupAction.CREATE, None, 5)
    bad = OrderGroupRequest(OrderGroupAction.RESET, "nope")
    reset = OrderGroupRequest(OrderGroupAction.RESET, GID)
    for seq, request in zip((7, 8, 9), (create, bad, reset)):
        pending.queued("s", request)
        assert pending.transmitted("s", seq) is None
    refused = pending.rejected("s", 8, Reason.of("OrderGroupID (20130) must be a UUID", 6), session_reject=True, ref_tag=20130)
    assert isinstance(refused, OrderGroupRefused) and refused.request_id == bad.request_id
    error = refused.error()
    assert isinstance(error, OrderGroupError) and error.session_reject and error.ref_tag == 20130 and error.number == 6
    made = pending.answered("s", GroupResponse("new-id", 5, 0))
    assert isinstance(made, OrderGroupConfirmed) and made.request_id == create.request_id and made.group.group_id == "new-id"
    done = pending.answered("s", GroupResponse(GID, None, 0))
    assert done is not None and done.request_id == reset.request_id
    assert pending.answered("s", GroupResponse(GID, None, 0)) is None  # nothing left to answer


def test_unsent_and_logged_out_requests_are_refused_as_unknown() -> None:
    pending = PendingGroupRequests()
    first, second = OrderGroupRequest(OrderGroupAction.TRIGGER, GID), OrderGroupRequest(OrderGroupAction.DELETE, GID)
    pending.queued("s", first)
    pending.queued("s", second)
    unsent = pending.transmitted("s", None)
    assert unsent is not None and unsent.request_id == first.request_id and "not sent" in unsent.reason.text
    assert pending.transmitted("s", 4) is None
    [gone] = pending.logged_out("s")
    assert gone.request_id == second.request_id and "outcome is unknown" in gone.reason.text
    assert pending.rejected("s", 4, Reason.of("x", 0), session_reject=False) is None


# --- what the engine knows of a group's state -------------------------------------------------------


def test_the_engine_refuses_orders_to_a_group_it_saw_triggered_until_kalshi_takes_one_again() -> None:
    book, stopped = OrderBook(), StoppedGroups()
    book.submit(book_order("m1", order_group_id="g1"))
    book.submit(book_order("m2", order_group_id="g1"))
    assert stopped.refusal("g1") is None
    refused = ExecutionReport("1;1", ExecType.REJECTED, OrdStatus.REJECTED, "", "m1", None, "HIGHNY-23DEC31",
                              WireSide.BUY_YES, D(10), D(0), D(0), D("0.45"),
                              reason=Reason.of("EXCEEDED_ORDER_GROUP_RISK_LIMIT", 3))
    [rejected] = book.apply(refused)
    assert isinstance(rejected, OrderRejected)
    stopped.learn(rejected)
    assert stopped.refusal("g1") is not None and "triggered" in stopped.refusal("g1")  # type: ignore[operator]
    assert stopped.refusal("g2") is None and stopped.refusal(None) is None
    accepted = ExecutionReport("1;2", ExecType.NEW, OrdStatus.NEW, "O2", "m2", None, "HIGHNY-23DEC31",
                               WireSide.BUY_YES, D(10), D(0), D(10), D("0.45"))
    [taken] = book.apply(accepted)
    assert isinstance(taken, OrderAccepted)
    stopped.learn(taken)  # reset elsewhere: Kalshi took an order of the group
    assert stopped.refusal("g1") is None
