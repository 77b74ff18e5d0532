"""Reading an order scenario's evidence, for the judges (and the drivers' waits) of ``orders``,
``cancel_replace`` and ``features``: the wire parsed into messages, the instructions the runner gave
with the client's answers, and the order requests' shape (Kalshi's rules on ClOrdID, price, quantity
and expiry). Pure: evidence in, values out. Registers no scenario.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

from conformance.instructions import Answer, StateOrder, read_answer
from conformance.model import Direction, Evidence, Finding, ScenarioResult, Verdict
from fixengine.fix.framing import FramingError, parse

# What the client sends that writes (costs the Write bucket) and what asks about an order.
ORDER_REQUESTS = frozenset({"D", "F", "G"})
WRITES = frozenset({"D", "F", "G", "q", "UOG"})
OPEN_STATUSES = frozenset({"pending_new", "new", "partially_filled", "pending_cancel", "pending_replace"})
CL_ORD_ID_PATTERN = re.compile(r"[A-Za-z0-9_\-+=:/]{1,64}")
TIME_IN_FORCE = frozenset({"0", "1", "3", "4", "6"})
CENT = Decimal("0.01")
TICK = Decimal("0.0001")


@dataclass(frozen=True, slots=True)
class Msg:
    """One message of the transcript, parsed: ``index`` into ``Evidence.messages``."""

    index: int
    at: float
    connection: int
    from_client: bool
    session: str
    fields: Mapping[int, str]  # the first value of each tag

    @property
    def type(self) -> str:
        return self.fields.get(35, "")

    def get(self, tag: int, default: str | None = None) -> str | None:
        return self.fields.get(tag, default)

    def describe(self) -> str:
        """The message in one short line, for a finding's ``seen``."""
        shown = [(t, v) for t, v in self.fields.items() if t not in (8, 9, 10, 49, 52, 56, 96, 95)]
        return " ".join(f"{t}={v}" for t, v in shown[:14])


@lru_cache(maxsize=1 << 16)
def _fields(raw: str) -> Mapping[int, str] | None:
    try:
        pairs = parse(raw.encode("latin-1"))
    except (FramingError, ValueError):
        return None  # garbled on purpose by a fault: not a message
    out: dict[int, str] = {}
    for tag, value in pairs:
        out.setdefault(tag, value)
    return out


def wire(evidence: Evidence) -> list[Msg]:
    """Every readable message of the run, in order."""
    out = []
    for i, m in enumerate(evidence.messages):
        fields = _fields(m.raw)
        if fields is not None:
            out.append(Msg(i, m.at, m.connection, m.direction is Direction.FROM_CLIENT, m.session, fields))
    return out


def sent(msgs: Iterable[Msg], *types: str) -> list[Msg]:
    """The client's messages (of ``types``, when given)."""
    return [m for m in msgs if m.from_client and (not types or m.type in types)]


def received(msgs: Iterable[Msg], *types: str) -> list[Msg]:
    """The simulator's messages to the client (of ``types``, when given)."""
    return [m for m in msgs if not m.from_client and (not types or m.type in types)]


def logged_on(msgs: Sequence[Msg]) -> bool:
    """A Logon went each way on one connection."""
    mine = {m.connection for m in sent(msgs, "A")}
    return any(m.connection in mine for m in received(msgs, "A"))


def logon_of(msgs: Sequence[Msg], connection: int) -> Mapping[int, str]:
    """The fields of the client's Logon on ``connection`` (empty when it sent none)."""
    return next((m.fields for m in msgs if m.from_client and m.type == "A" and m.connection == connection), {})


def flag(msgs: Sequence[Msg], connection: int, tag: int) -> bool:
    """A Logon switch of the connection (21005, 21011, 21026, 8013 ...) was Y."""
    return logon_of(msgs, connection).get(tag) == "Y"


def later(msgs: Iterable[Msg], after: float) -> list[Msg]:
    return [m for m in msgs if m.at > after]


def complaints(msgs: Iterable[Msg], after: float = float("-inf")) -> list[Msg]:
    """Rejects the client sent (35=3 session, 35=j business) after ``after``."""
    return [m for m in msgs if m.from_client and m.type in ("3", "j") and m.at > after]


def alive_after(msgs: Sequence[Msg], connection: int, at: float) -> bool:
    """The client spoke again on ``connection`` after ``at`` (a Logout is not staying up)."""
    return any(m.from_client and m.connection == connection and m.at > at and m.type != "5" for m in msgs)


def dropped_after(msgs: Sequence[Msg], connection: int, at: float) -> Msg | None:
    """The client's Logout on ``connection`` after ``at``, if it sent one."""
    return next((m for m in msgs if m.from_client and m.connection == connection and m.at > at and m.type == "5"),
                None)


# --- orders on the wire ---------------------------------------------------------------------------


def orders_on(msgs: Iterable[Msg], ticker: str) -> list[Msg]:
    """The client's NewOrderSingles on ``ticker``."""
    return [m for m in msgs if m.from_client and m.type == "D" and m.get(55) == ticker]


def reports_for(msgs: Iterable[Msg], cl_ord_ids: Iterable[str], *types: str) -> list[Msg]:
    """Reports to the client (35=8, 35=9 unless ``types``) naming one of ``cl_ord_ids`` in 11 or 41."""
    ids = set(cl_ord_ids)
    kinds = types or ("8", "9")
    return [m for m in msgs if not m.from_client and m.type in kinds and (m.get(11) in ids or m.get(41) in ids)]


def answers_to(msgs: Iterable[Msg], request: Msg) -> list[Msg]:
    """What answered ``request``: reports with its 11, and 35=3/35=j naming its 34 (45) on its
    connection or its 11 (379)."""
    cl, seq = request.get(11), request.get(34)
    out = []
    for m in msgs:
        if m.from_client or m.at < request.at:
            continue
        if m.type in ("8", "9") and cl is not None and m.get(11) == cl:
            out.append(m)
        elif m.type in ("3", "j") and m.connection == request.connection and (
                m.get(45) == seq or (cl is not None and m.get(379) == cl)):
            out.append(m)
    return out


def chain(msgs: Sequence[Msg], first: str) -> list[str]:
    """The ClOrdIDs an order had, in order: its NewOrderSingle's, then each accepted replace's
    (150=5) and its cancel's (150=4 or 150=6 naming it in 41)."""
    ids = [first]
    for m in msgs:
        if not m.from_client and m.type == "8" and m.get(41) == ids[-1] and m.get(11) not in ids:
            if m.get(150) in ("5", "4"):
                ids.append(m.get(11, ""))
    return ids


def current_cl_ord_id(msgs: Sequence[Msg], first: str, at: float) -> str:
    """The order's ClOrdID at ``at``: its NewOrderSingle's, or that of the last replace accepted
    (150=5) before then."""
    current = first
    for m in msgs:
        if m.at >= at:
            break
        if not m.from_client and m.type == "8" and m.get(150) == "5" and m.get(41) == current:
            current = m.get(11, current)
    return current


def same_terms(a: Msg, b: Msg) -> bool:
    """The same order: ticker, side, quantity and price (as decimals)."""
    return a.get(55) == b.get(55) and a.get(54) == b.get(54) and _num(a.get(38)) == _num(b.get(38)) \
        and _num(a.get(44)) == _num(b.get(44))


def _num(text: str | None) -> Decimal | None:
    try:
        return Decimal(text) if text is not None else None
    except InvalidOperation:
        return None


def decimal(text: str | None) -> Decimal | None:
    """A FIX decimal field, or None when absent or unreadable."""
    return _num(text)


# --- the shape of a request (Kalshi's rules, spec §10.2-10.3) ------------------------------------


def cl_ord_id_problem(value: str | None) -> str | None:
    if value is None:
        return "no ClOrdID (11)"
    if not CL_ORD_ID_PATTERN.fullmatch(value):
        return f"11={value!r} is not 1-64 characters of A-Z a-z 0-9 _ - + = : /"
    return None


def price_problem(value: str | None, dollars: bool) -> str | None:
    """44 as Kalshi takes it: whole cents 1-99, or dollars 0.0001-0.9999 with 21005=Y."""
    price = _num(value)
    if price is None or not price.is_finite():
        return f"44={value!r} is not a price"
    if dollars:
        if not (TICK <= price < 1) or price != price.quantize(TICK):
            return f"44={value} is not a dollar price between 0.0001 and 0.9999 (21005=Y)"
    elif not (1 <= price <= 99) or price != price.to_integral_value():
        return f"44={value} is not whole cents 1-99"
    return None


def quantity_problem(value: str | None) -> str | None:
    quantity = _num(value)
    if quantity is None or not quantity.is_finite() or quantity <= 0 or quantity != quantity.quantize(CENT):
        return f"38={value!r} is not a positive multiple of 0.01 contracts"
    return None


def expiry_problem(request: Msg) -> str | None:
    """59 is one Kalshi has, and 126 is there exactly when 59=6 (GTD)."""
    tif, expire = request.get(59), request.get(126)
    if tif is not None and tif not in TIME_IN_FORCE:
        return f"59={tif} is not a TimeInForce Kalshi takes (0, 1, 3, 4, 6)"
    if (tif == "6") != (expire is not None):
        return f"126 {'missing with' if tif == '6' else 'sent with'} 59={tif or '(none)'}: 126 goes with 59=6 only"
    return None


def request_problems(msgs: Sequence[Msg], request: Msg, used: set[str]) -> list[str]:
    """What is wrong with one D, F or G (P7, P8, 59/126); ``used``: the ClOrdIDs sent before it."""
    problems = [p for p in [cl_ord_id_problem(request.get(11))] if p]
    if request.get(11) in used:
        problems.append(f"11={request.get(11)} was used before")
    if request.type in ("D", "G"):
        if request.get(40, "2") != "2":
            problems.append(f"40={request.get(40)}: Kalshi takes limit orders (40=2) only")
        if request.type == "D" or request.get(44) is not None:
            problems += filter(None, [price_problem(request.get(44), flag(msgs, request.connection, 21005))])
        problems += filter(None, [quantity_problem(request.get(38)), expiry_problem(request)])
    return problems


# --- instructions, answers and the client's state ----------------------------------------------


@dataclass(frozen=True, slots=True)
class Asked:
    """One instruction the runner gave, and the client's answer (None: none came)."""

    at: float
    id: str
    body: Mapping[str, Any]
    answer: Answer | None
    answered_at: float | None

    @property
    def action(self) -> str:
        return str(self.body.get("action", ""))

    @property
    def ok(self) -> bool:
        return self.answer is not None and self.answer.ok


def asked(evidence: Evidence) -> list[Asked]:
    """The instructions in order, each with its answer."""
    answers: dict[str, tuple[float, Answer]] = {}
    for said in evidence.client:
        answer = read_answer(said.line)
        if answer is not None and answer.id not in answers:
            answers[answer.id] = (said.at, answer)
    out = []
    for given in evidence.instructions:
        try:
            body = json.loads(given.line)
        except ValueError:
            continue
        if not isinstance(body, dict):
            continue
        key = str(body.get("id", ""))
        at, answer = answers.get(key, (None, None))
        out.append(Asked(given.at, key, body, answer, at))
    return out


def states(evidence: Evidence) -> list[tuple[float, Answer]]:
    """The client's ``state`` answers that carry its book, in order, with when they came."""
    wanted = {a.id for a in asked(evidence) if a.action == "state"}
    out = []
    for said in evidence.client:
        answer = read_answer(said.line)
        if answer is not None and answer.id in wanted and answer.ok and answer.orders is not None:
            out.append((said.at, answer))
    return out


def state_after(evidence: Evidence, at: float) -> Answer | None:
    """The last state the client reported after ``at``."""
    found = [answer for when, answer in states(evidence) if when > at]
    return found[-1] if found else None


def order_in(state: Answer, cl_ord_ids: Iterable[str], order_id: str | None = None) -> StateOrder | None:
    """The order of ``state`` that had one of ``cl_ord_ids`` (or ``order_id``)."""
    ids = set(cl_ord_ids)
    for order in state.orders or []:
        if order.cl_ord_id in ids or order.order in ids or (order_id and order.order_id == order_id):
            return order
    return None


def instructed(evidence: Evidence, action: str, **match: Any) -> list[Asked]:
    """The instructions of ``action`` whose fields equal ``match`` (compared as text)."""
    return [a for a in asked(evidence) if a.action == action
            and all(str(a.body.get(k)) == str(v) for k, v in match.items())]


# --- verdicts ------------------------------------------------------------------------------------


def result(scenario: str, verdict: Verdict, reason: str, findings: Sequence[Finding] = (),
           measured: Sequence[tuple[str, float]] = ()) -> ScenarioResult:
    return ScenarioResult(scenario, verdict, reason, tuple(findings), tuple(measured))


def finding(expected: str, seen: str, message: Msg | None = None, rule: str | None = None) -> Finding:
    return Finding(expected, seen, message.index if message is not None else None, rule)


NO_STATE = " (no state reported: the client's own book not checked)"


def unwired(scenario_id: str, msgs: list[Msg]) -> ScenarioResult | None:
    """INCONCLUSIVE when the client never logged on: nothing it did can be judged."""
    if not logged_on(msgs):
        return result(scenario_id, Verdict.INCONCLUSIVE, "the client never logged on")
    return None


def failed(scenario_id: str, findings: list[Finding], what: str) -> ScenarioResult:
    """FAIL, its reason the first finding's expectation."""
    return result(scenario_id, Verdict.FAIL, f"{what}: {findings[0].expected.rstrip('.')}", findings)
