"""Which of QuickFIX's FIX 4.4 acceptance scenarios cannot apply to an acceptor, and why: they are
N/A for it, not FAIL. Pure data; ``exclusions(name, target)`` picks a named set.

``kalshi``: an acceptor that follows Kalshi's FIX rules, as the simulator's FIX 4.4 listener does
(``../shared/kalshi/fix-spec.md``). It needs ``--reset-seq-num`` and ``--sign-key`` to get past a
Logon at all; what is left out below is where Kalshi answers otherwise than QuickFIX's ``at``
program by design, never where it merely could be wrong.
"""

from __future__ import annotations

from collections.abc import Mapping

from fixengine.kalshi.facts import RESET_REQUIRED

_ECHO = ("the script needs QuickFIX's at application, which sends a NewOrderSingle (35=D) straight back; a Kalshi "
         "acceptor answers it as an order (an ExecutionReport, 35=8)")
_LOGON_REFUSAL = ("Kalshi answers a Logon it refuses with a Logout saying why (spec §6; a Reject first for "
                  "SendingTime) before it closes; the script expects the connection closed with nothing sent")
_ALREADY_EXISTS = ("Kalshi answers a second connection of a logged-on API key with a Logout 'already exists' "
                   "(spec §6) before it closes; the script expects the connection closed with nothing sent")

KALSHI: Mapping[str, str] = {
    "14a_BadField": "Kalshi refuses an undefined user-defined tag with 373=3 'Undefined tag received' "
                    "(spec §18.1), where QuickFIX says 373=0 'Invalid tag number'",
    "14e_IncorrectEnumValue": _ECHO,
    "15_HeaderAndBodyFieldsOrderedDifferently": _ECHO,
    "19a_PossResendMessageThatHAsAlreadyBeenSent": _ECHO,
    "19b_PossResendMessageThatHasNotBeenSent": _ECHO,
    "1b_DuplicateIdentity": _ALREADY_EXISTS,
    "1c_InvalidSenderCompID": _LOGON_REFUSAL,
    "1c_InvalidTargetCompID": _LOGON_REFUSAL,
    "1d_InvalidLogonBadSendingTime": _LOGON_REFUSAL,
    "1d_InvalidLogonWrongBeginString": _LOGON_REFUSAL,
    "20_SimultaneousResendRequest": _ECHO,
    "21_RepeatingGroupSpecifierWithValueOfZero": "the script needs QuickFIX's at application, which sends a "
                                                 "SecurityDefinition (35=d) straight back; Kalshi does not take 35=d",
    "2d_GarbledMessage": _ECHO,
    "2f_PossDupOrigSendingTimeTooHigh": _ECHO,
    "2g_PossDupNoOrigSendingTime": _ECHO,
    "2m_BodyLengthValueNotCorrect": _ECHO,
    "3b_InvalidChecksum": _ECHO,
    "3c_GarbledMessage": _ECHO,
    "8_AdminAndApplicationMessages": _ECHO,
    "8_OnlyApplicationMessages": _ECHO,
    "AlreadyLoggedOn": _ALREADY_EXISTS,
}

_NO_RETRANSMISSION = ("{target} has no retransmission: Kalshi refuses SequenceReset (35=4) and ResendRequest (35=2) "
                      "there with a Reject (spec §7.3)")

# Where there is no retransmission (KalshiNR, KalshiDC, ...), Kalshi also requires ResetSeqNumFlag.
KALSHI_RESET_REQUIRED: Mapping[str, str] = {
    "1a_ValidLogonMsgSeqNumTooHigh": "{target} refuses a Logon without ResetSeqNumFlag (141)=Y (spec §6), and "
                                     "the script's point is a Logon numbered 5 that does not reset",
    "10_MsgSeqNumEqual": _NO_RETRANSMISSION,
    "11a_NewSeqNoGreater": _NO_RETRANSMISSION,
    "11b_NewSeqNoEqual": _NO_RETRANSMISSION,
    "11c_NewSeqNoLess": _NO_RETRANSMISSION,
    "8_OnlyAdminMessages": _NO_RETRANSMISSION,
}
# Where there is (KalshiRT, KalshiPT), the acceptor keeps its numbers from one connection to the next.
KALSHI_RETRANSMISSION: Mapping[str, str] = {
    "1a_ValidLogonMsgSeqNumTooHigh": "{target} keeps its sequence numbers from one connection to the next (no "
                                     "reset on Logon, as QuickFIX's at has), so its answer to a Logon without "
                                     "ResetSeqNumFlag is not numbered 1",
}

NAMES = ("none", "kalshi")


def exclusions(name: str, target: str) -> dict[str, str]:
    """The named set for an acceptor whose SenderCompID is ``target`` (stem -> reason)."""
    if name == "none":
        return {}
    if name == "kalshi":
        by_session = KALSHI_RESET_REQUIRED if target in {t.value for t in RESET_REQUIRED} else KALSHI_RETRANSMISSION
        return {**KALSHI, **{stem: reason.format(target=target) for stem, reason in by_session.items()}}
    raise ValueError(f"exclusions: unknown set {name!r}; one of {', '.join(NAMES)}")
