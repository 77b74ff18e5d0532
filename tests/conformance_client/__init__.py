"""A small Kalshi FIX client on a bare socket, the reference the conformance suite is proved on:
``python -m tests.conformance_client [--fault NAME]``. It reads the runner's environment
(``conformance.clients.env``) and speaks the instruction protocol (``conformance.instructions``:
place, cancel, replace, mass_cancel, state) on standard input and output.

By default it does everything as Kalshi asks (``session``, ``client``): a signed Logon with 141=Y
(FIXT.1.1 with 1137=9), heartbeats at its HeartBtInt, TestRequests answered, a TestRequest after
silence and a reconnect after twice the interval, a gap on KalshiNR recovered by Logout, a reset
Logon and REST reconciliation before new orders, execution reports applied once per ExecID
(PossDup copies of seen ones ignored), backoff between reconnects and none after a permanent
refusal, and an EXCHANGE_UNAVAILABLE order settled over REST or retried under the same ClOrdID.

Each fault breaks exactly one of those (``FAULTS``), for the scenarios that must catch it (in
brackets: what ``tests/test_conformance_clients.py`` sees each of them FAIL).

    wrong-salt               RSA-PSS salt length 20 instead of 32 in the Logon signature   (logon/01)
    stale-signature-time     signs a SendingTime, then sends another                       (logon/01)
    no-reset-nr              no 141=Y on the Logon (KalshiNR refuses it)                   (logon/01, /03, seq-nr/01)
    resend-on-nr             a gap on KalshiNR answered with ResendRequest (35=2)          (seq-nr/02)
    ignore-gap               a gap on KalshiNR ignored: no reset, no reconciliation        (seq-nr/02)
    no-heartbeats            never sends a Heartbeat of its own                            (hb/01)
    ignore-test-request      never answers a TestRequest                                   (hb/02)
    reconnect-forever        reconnects at once after a permanent refusal, forever         (logon/03)
    new-clordid-on-unknown   sends an EXCHANGE_UNAVAILABLE order again under a new ClOrdID (ord/05)
    double-count-possdup     applies a PossDup copy of a fill again                        (seq-all/01)

The pieces: ``wire`` (the Logon, with its faults, and the order messages), ``session`` (the FIX
session), ``book`` (the order book, pure), ``client`` (reconciliation and instructions).
"""

FAULTS: dict[str, str] = {
    "wrong-salt": "RSA-PSS salt length other than 32 in the Logon signature",
    "stale-signature-time": "the Logon signs a SendingTime other than the one it sends",
    "no-reset-nr": "no ResetSeqNumFlag (141=Y) on the Logon",
    "resend-on-nr": "ResendRequest (35=2) on a KalshiNR gap instead of a reset",
    "ignore-gap": "a KalshiNR gap ignored: no reset, no reconciliation",
    "no-heartbeats": "no Heartbeat of its own",
    "ignore-test-request": "TestRequests left unanswered",
    "reconnect-forever": "reconnects at once after a permanent refusal, forever",
    "new-clordid-on-unknown": "an EXCHANGE_UNAVAILABLE order sent again under a new ClOrdID",
    "double-count-possdup": "a PossDup copy of a fill applied again",
}
