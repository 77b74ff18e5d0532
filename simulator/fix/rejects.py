"""Session-level Rejects (35=3) worded as Kalshi words them, where QuickFIX's own differ.

QuickFIX (ValidateUserDefinedFields=Y, AllowUnknownMsgFields=N: the acceptor's settings) refuses a
tag its dictionary does not define with SessionRejectReason (373) 0, "Invalid tag number". Kalshi
answers an undefined user-defined tag with 373=3 (fix-spec §18.1, its example:
``35=3|45=5|58=Undefined tag received|371=333333|372=D|373=3``). Below the user-defined range the
reject stays QuickFIX's 0: Kalshi's table keeps both reasons, and its one example is user-defined.
"""

from __future__ import annotations

import quickfix as fix

from fixengine.fix.framing import msg_type_of
from fixengine.fix.tags import MSG_REJECT, REF_TAG_ID, SESSION_REJECT_REASON, TEXT

USER_DEFINED_MIN = 5000  # FIX's first user-defined tag number (QuickFIX's FIELD::UserMin)
INVALID_TAG_NUMBER = "0"
UNDEFINED_TAG = "3"
TEXT_UNDEFINED_TAG = "Undefined tag received"


def as_kalshi_words_it(message: fix.Message, raw: str) -> str:
    """``raw`` (``message`` as text) unless ``message`` is QuickFIX's reject of an undefined
    user-defined tag: then ``message`` is reworded in place (from toAdmin, before QuickFIX sends
    it) and its new text returned. Never raises: it runs inside a QuickFIX callback."""
    if msg_type_of(raw) != MSG_REJECT:
        return raw
    if not (message.isSetField(SESSION_REJECT_REASON) and message.isSetField(REF_TAG_ID)):
        return raw
    if message.getField(SESSION_REJECT_REASON) != INVALID_TAG_NUMBER:
        return raw
    try:
        tag = int(message.getField(REF_TAG_ID))
    except ValueError:
        return raw
    if tag < USER_DEFINED_MIN:
        return raw
    message.setField(SESSION_REJECT_REASON, UNDEFINED_TAG)
    message.setField(TEXT, TEXT_UNDEFINED_TAG)
    return message.toString()
