"""What a user asks the engine to do with orders: typed, validated before anything is sent.

A request that cannot be sent raises ``InvalidOrderError`` naming the field and the reason. Prices are
Decimal dollars of the contract the request names (``contract=YES, price=0.45`` buys YES at 45¢);
``fixengine.prices`` turns them into Kalshi's YES book.
"""

from __future__ import annotations

import os
import re
from datetime import datetime, timezone
from decimal import Decimal
from enum import Enum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from fixengine.errors import InvalidOrderError
from fixengine.kalshi.prices import Action, Contract, PriceError, YesQuote, check_price, check_quantity, to_yes_book

# ClOrdID (11): at most 64 characters of letters, digits and _ - + = : / (spec §10.2).
CL_ORD_ID = re.compile(r"^[-\w:+=/]{1,64}$", re.ASCII)
TICKER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class TimeInForce(str, Enum):
    """TimeInForce (59). Always sent: Kalshi's default when it is omitted is undocumented."""

    DAY = "0"  # until 23:59:59.999 ET
    GTC = "1"
    IOC = "3"
    FOK = "4"
    GTD = "6"  # with expire_time


class SelfTradePrevention(str, Enum):
    """SelfTradePreventionType (2964)."""

    TAKER_AT_CROSS = "1"  # the incoming order is cancelled (Kalshi's default)
    MAKER = "2"  # your resting order is cancelled


# Random bytes for ClOrdIDs, taken 4 KiB at a time: ``uuid.uuid4`` reads 16 bytes with a system
# call of its own, which cost 10-25 µs per order on the order path here. Emptied in a forked child,
# which must not give the ClOrdIDs its parent will.
_RANDOM: list[bytes] = []
os.register_at_fork(after_in_child=_RANDOM.clear)
# The UUID variant's first hex digit (two bits 10, then two random): 8, 9, a or b.
_VARIANT = {d: "89ab"[int(d, 16) & 3] for d in "0123456789abcdef"}


def new_cl_ord_id() -> str:
    """A random (version 4) UUID, as ``str(uuid.uuid4())`` makes it; written out from the hex
    directly (a third of the cost of building a ``uuid.UUID``): the version nibble is 4, and the
    variant's two bits are 10 (the first hex digit of the fourth group one of 8, 9, a, b)."""
    try:
        raw = _RANDOM.pop()  # atomic: any thread may ask
    except IndexError:
        block = os.urandom(16 * 256)
        _RANDOM.extend([block[i:i + 16] for i in range(0, len(block), 16)])
        raw = _RANDOM.pop()
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}"


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @classmethod
    def create(cls, **fields: object):  # type: ignore[no-untyped-def]
        """Build and validate; raise ``InvalidOrderError`` (not pydantic's error) when it is not sendable."""
        try:
            return cls(**fields)
        except ValidationError as exc:
            problems = []
            for err in exc.errors():
                where = ".".join(str(p) for p in err["loc"]) or "order"
                msg = err["msg"].removeprefix("Value error, ")
                if err["type"] == "extra_forbidden":
                    msg = "unknown field"
                problems.append(f"{where}: {msg}")
            raise InvalidOrderError(problems) from None


def _cl_ord_id(value: str) -> str:
    if not CL_ORD_ID.match(value):
        raise ValueError("must be 1-64 characters of letters, digits and _ - + = : /")
    return value


def _as_value_error(check):  # type: ignore[no-untyped-def]
    def run(value):  # type: ignore[no-untyped-def]
        try:
            return check(value)
        except PriceError as exc:
            raise ValueError(str(exc)) from None

    return run


# Field types shared by the requests: each validates itself, with a message naming the problem.
ClOrdID = Annotated[str, AfterValidator(_cl_ord_id)]
Quantity = Annotated[Decimal, AfterValidator(_as_value_error(check_quantity))]
Price = Annotated[Decimal, AfterValidator(_as_value_error(check_price))]


class NewOrder(_Request):
    """A limit order on one market (Kalshi takes limit orders only)."""

    ticker: str
    action: Action
    contract: Contract
    quantity: Quantity
    price: Price
    time_in_force: TimeInForce = TimeInForce.GTC
    expire_time: datetime | None = None
    post_only: bool = False
    self_trade_prevention: SelfTradePrevention | None = None
    max_execution_cost: Decimal | None = Field(None, description="dollars; 21009")
    cancel_on_pause: bool = False
    subaccount: Annotated[int, Field(ge=0, le=63)] | None = None
    ex_destination: Annotated[int, Field(ge=-1)] | None = None
    order_group_id: str | None = None
    client_order_id: ClOrdID = Field(default_factory=new_cl_ord_id)

    @field_validator("ticker")
    @classmethod
    def _ticker(cls, v: str) -> str:
        if not TICKER.match(v):
            raise ValueError(f"{v!r} is not a market ticker")
        return v

    @field_validator("max_execution_cost")
    @classmethod
    def _cost(cls, v: Decimal | None) -> Decimal | None:
        if v is not None and (not v.is_finite() or v <= 0):
            raise ValueError("must be a positive dollar amount")
        return v

    @model_validator(mode="after")
    def _combinations(self) -> "NewOrder":
        if self.time_in_force is TimeInForce.GTD:
            if self.expire_time is None:
                raise ValueError("expire_time is required with time_in_force GTD")
            if self.expire_time.tzinfo is None:
                raise ValueError("expire_time must carry a time zone (UTC is safest)")
        elif self.expire_time is not None:
            raise ValueError("expire_time is only allowed with time_in_force GTD")
        if self.post_only and self.time_in_force in (TimeInForce.IOC, TimeInForce.FOK):
            raise ValueError(f"post_only cannot rest, so it cannot be combined with {self.time_in_force.name}")
        return self

    @property
    def yes_quote(self) -> YesQuote:
        """Side (54) and YES price (44) on Kalshi's book."""
        return to_yes_book(self.action, self.contract, self.price)

    def expires_in_past(self, now: datetime | None = None) -> bool:
        return self.expire_time is not None and self.expire_time <= (now or datetime.now(timezone.utc))


class CancelOrder(_Request):
    """Cancel the remaining quantity of an order, named by its first ClOrdID."""

    order: str = Field(description="the client_order_id the order was submitted with")
    client_order_id: ClOrdID = Field(default_factory=new_cl_ord_id)


class ReplaceOrder(_Request):
    """Change an order's price and/or total quantity (and optionally its expiry)."""

    order: str = Field(description="the client_order_id the order was submitted with")
    quantity: Quantity | None = Field(None, description="new total quantity, fills included")
    price: Price | None = Field(None, description="new price of the order's contract")
    time_in_force: TimeInForce | None = None
    expire_time: datetime | None = None
    client_order_id: ClOrdID = Field(default_factory=new_cl_ord_id)

    @model_validator(mode="after")
    def _something_changes(self) -> "ReplaceOrder":
        if self.quantity is None and self.price is None and self.time_in_force is None:
            raise ValueError("a replace must change quantity, price or time_in_force")
        if self.time_in_force not in (None, TimeInForce.DAY, TimeInForce.GTC, TimeInForce.GTD):
            raise ValueError("an order's expiry can only be amended to DAY, GTC or GTD")
        if (self.time_in_force is TimeInForce.GTD) != (self.expire_time is not None):
            raise ValueError("expire_time goes with time_in_force GTD, and only with it")
        return self
