"""What the reference client writes: its Logon (built by ``conformance.harness.signed_logon``, then
broken on purpose by the Logon faults) and the bodies of its order messages."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from conformance.harness import sending_time_now, signed_logon, to_wire
from fixengine.fix import tags as t
from fixengine.fix.timestamps import utc_timestamp
from fixengine.kalshi.prices import format_price, format_quantity
from fixengine.kalshi.signing import SALT_LENGTH, logon_prehash
from tests.conformance_client.book import Order

Fields = list[tuple[int, str]]
WRONG_SALT_LENGTH = 20  # anything but Kalshi's 32 (the SHA-1 digest size: a common slip)
STALE_SIGNATURE_BY = timedelta(seconds=2)  # well inside the 30 s tolerance: only the signature is wrong
assert WRONG_SALT_LENGTH != SALT_LENGTH


def _pss_with_salt(private_key: rsa.RSAPrivateKey, message: bytes, salt_length: int) -> str:
    scheme = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=salt_length)
    return base64.b64encode(private_key.sign(message, scheme, hashes.SHA256())).decode("ascii")


def logon(key_id: str, private_key: rsa.RSAPrivateKey, *, target: str, begin: str, heartbeat: int,
          faults: frozenset[str]) -> bytes:
    """Logon (35=A) with MsgSeqNum 1: signed over the 52 it carries, 141=Y, unless a fault says otherwise."""
    reset = "no-reset-nr" not in faults
    if "stale-signature-time" in faults:
        signed_at = datetime.now(timezone.utc) - STALE_SIGNATURE_BY
        fields = signed_logon(key_id, private_key, target=target, begin=begin, heartbeat=heartbeat, reset=reset,
                              sent_at=signed_at)
        fields[t.SENDING_TIME] = sending_time_now()  # stamped again after signing
    else:
        fields = signed_logon(key_id, private_key, target=target, begin=begin, heartbeat=heartbeat, reset=reset)
    if "wrong-salt" in faults:
        prehash = logon_prehash(fields[t.SENDING_TIME], "A", fields[t.MSG_SEQ_NUM], key_id, target)
        fields[t.RAW_DATA] = _pss_with_salt(private_key, prehash, WRONG_SALT_LENGTH)
        fields[t.RAW_DATA_LENGTH] = str(len(fields[t.RAW_DATA]))
    return to_wire(fields)


def _now() -> str:
    return utc_timestamp(datetime.now(timezone.utc))


def new_order(order: Order, cl_ord_id: str) -> Fields:
    """NewOrderSingle (35=D): a limit order, YES price in cents."""
    return [(t.CL_ORD_ID, cl_ord_id), (t.SYMBOL, order.ticker), (t.SIDE, order.side), (t.TRANSACT_TIME, _now()),
            (t.ORDER_QTY, format_quantity(order.quantity)), (t.ORD_TYPE, "2"),
            (t.PRICE, format_price(order.yes_price, use_dollars=False)), (t.TIME_IN_FORCE, order.time_in_force)]


def cancel(order: Order, cl_ord_id: str) -> Fields:
    """OrderCancelRequest (35=F) of what remains, naming the order's latest ClOrdID."""
    fields = [(t.CL_ORD_ID, cl_ord_id), (t.ORIG_CL_ORD_ID, order.cl_ord_id)]
    if order.order_id:
        fields.append((t.ORDER_ID, order.order_id))
    return fields + [(t.SYMBOL, order.ticker), (t.SIDE, order.side), (t.TRANSACT_TIME, _now())]


def replace(order: Order, cl_ord_id: str, quantity: Decimal, yes_price: Decimal) -> Fields:
    """OrderCancelReplaceRequest (35=G): the new total quantity and price."""
    fields = [(t.CL_ORD_ID, cl_ord_id), (t.ORIG_CL_ORD_ID, order.cl_ord_id)]
    if order.order_id:
        fields.append((t.ORDER_ID, order.order_id))
    return fields + [(t.SYMBOL, order.ticker), (t.SIDE, order.side), (t.TRANSACT_TIME, _now()),
                     (t.ORDER_QTY, format_quantity(quantity)), (t.ORD_TYPE, "2"),
                     (t.PRICE, format_price(yes_price, use_dollars=False))]


def mass_cancel(cl_ord_id: str) -> Fields:
    """OrderMassCancelRequest (35=q): every order of the session (KalshiNR only)."""
    return [(t.CL_ORD_ID, cl_ord_id), (t.MASS_CANCEL_REQUEST_TYPE, "6"), (t.TRANSACT_TIME, _now())]
