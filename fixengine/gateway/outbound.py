"""Every message for an OMS is checked against FIX 4.4 before it is journaled or sent: one that
fails is never sent malformed (the gateway raises an alert instead)."""

from __future__ import annotations

import quickfix as fix

from pathlib import Path

from fixengine.fix.dictionary import fix44_as_the_gateway_speaks
from fixengine.fix.framing import quickfix_text
from fixengine.fix.tags import MSG_SEQ_NUM, SENDER_COMP_ID, SENDING_TIME, TARGET_COMP_ID

# The header the session adds on sending, stood in for, so the body can be checked as a whole message.
_HEADER = [(SENDER_COMP_ID, "GATEWAY"), (TARGET_COMP_ID, "OMS"), (MSG_SEQ_NUM, "1"), (SENDING_TIME, "20260101-00:00:00.000")]


class Fix44Check:
    """QuickFIX's FIX 4.4 dictionary, as the OMS's own engine would apply it (with 380=8, which
    the gateway sends for a rate refusal unless ``[gateway] throttle_reject_reason = 0``)."""

    def __init__(self, dictionary_dir: Path) -> None:
        self._dictionary = fix.DataDictionary(str(fix44_as_the_gateway_speaks(dictionary_dir)))

    def problem(self, msg_type: str, fields: list[tuple[int, str]]) -> str | None:
        """Why the message is not valid FIX 4.4, or None."""
        text = quickfix_text("FIX.4.4", msg_type, _HEADER + fields)
        try:
            self._dictionary.validate(fix.Message(text, self._dictionary, False))
        except Exception as exc:  # noqa: BLE001 - QuickFIX raises a different class per rule
            return f"{type(exc).__name__}: {exc}".strip(": ")
        return None
