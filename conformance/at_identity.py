"""QuickFIX's ``.def`` scripts played as another counterparty: the acceptor's own CompIDs and
BeginString in every line, a ResetSeqNumFlag where the acceptor keeps or refuses sequence numbers,
and a Kalshi signature on each Logon. Pure (signing is only arithmetic).

The fix44 scripts are written for QuickFIX's ``at`` acceptor: the harness is TW44, the acceptor
ISLD, the BeginString FIX.4.4. ``outgoing`` rewrites an I line (after its ``<TIME>`` s) and
``expected`` an E line:

- CompIDs, both directions: in an I line 49=TW44 becomes 49=<sender> and 56=ISLD 56=<target>; in an
  E line (the acceptor speaking) 49=ISLD becomes 49=<target> and 56=TW44 56=<sender>. Only those
  exact values: the wrong ones a script sends on purpose (49=WT, 56=DLSI) stay wrong.
- BeginString: 8=FIX.4.4 becomes 8=<begin string>; another version (2i sends FIX.4.1) stays.
- ``reset_seq_num``: a Logon numbered 1 without ResetSeqNumFlag gets 141=Y after HeartBtInt (108),
  and so does the E line of the answer (a Logon without 141 expected on the connection after one
  was added), as the FIX session protocol has the acceptor answer a reset. A Logon numbered
  otherwise is sent as written: it is what the script tests.
- ``sign_key``: each Logon sent gets RawDataLength (95) and RawData (96) at the end of its body,
  Kalshi's RSA-PSS signature over its 52, 35, 34, 49 and 56 as sent: the signing
  ``conformance.harness.signed_logon`` does, from ``fixengine.kalshi.signing`` (not the harness
  itself, which needs the simulator installed; an acceptor run does not).

A BodyLength (9) or CheckSum (10) written in a line on purpose keeps its distance from the right
value: each moves by what the rewrite changed (9 by the body's length, 10 by its byte sum, mod 256),
so a message too short by 21 bytes stays too short by 21 bytes. A line without them gets the right
ones afterwards (``quickfix_at.fixify``), as before.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric import rsa

from fixengine.kalshi.signing import logon_prehash, sign

SCRIPT_BEGIN_STRING = "FIX.4.4"
SCRIPT_SENDER = "TW44"  # the harness, in every fix44 script
SCRIPT_TARGET = "ISLD"  # QuickFIX's ``at`` acceptor
_SOH = b"\x01"


@dataclass(frozen=True)
class Identity:
    """Who the runner is to the acceptor under test, and how it logs on."""

    begin_string: str = SCRIPT_BEGIN_STRING
    sender: str = SCRIPT_SENDER  # our SenderCompID (49): the acceptor's TargetCompID
    target: str = SCRIPT_TARGET  # our TargetCompID (56): the acceptor's SenderCompID
    reset_seq_num: bool = False
    sign_key: rsa.RSAPrivateKey | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        for name in ("begin_string", "sender", "target"):
            value = getattr(self, name)
            if not value or any(c in value for c in "\x01=") or not value.isprintable():
                raise ValueError(f"{name} {value!r} must be printable, non-empty, without '=' or SOH")

    def adds_reset(self, message: bytes) -> bool:
        """Whether ``outgoing`` adds 141=Y to this I line: a Logon numbered 1 that has none."""
        parts = message.split(_SOH)
        return (self.reset_seq_num and _value(parts, b"35") == b"A" and _value(parts, b"34") == b"1"
                and _value(parts, b"141") is None)

    def outgoing(self, message: bytes) -> bytes:
        """An I line's message (placeholders expanded) as this counterparty sends it."""
        compids = {b"49": (SCRIPT_SENDER, self.sender), b"56": (SCRIPT_TARGET, self.target)}
        return _rewrite(message, compids, self, reset=self.adds_reset(message), signed=self.sign_key is not None)

    def expected(self, message: bytes, *, answers_reset: bool = False) -> bytes:
        """An E line's message (placeholders expanded) as this acceptor would send it; with
        ``answers_reset`` (the last Logon sent on the connection had 141=Y added), a Logon gets 141=Y."""
        compids = {b"49": (SCRIPT_TARGET, self.target), b"56": (SCRIPT_SENDER, self.sender)}
        reset = answers_reset and _value(message.split(_SOH), b"141") is None
        return _rewrite(message, compids, self, reset=reset, signed=False)


def _value(parts: list[bytes], tag: bytes) -> bytes | None:
    for part in parts:
        name, eq, value = part.partition(b"=")
        if eq and name == tag:
            return value
    return None


def _rewrite(message: bytes, compids: dict[bytes, tuple[str, str]], identity: Identity, *, reset: bool,
             signed: bool) -> bytes:
    parts = message.split(_SOH)
    ends_with_soh = parts[-1] == b""
    # where the hand-written 9 and 10 are, as fixify finds them: 9 anywhere after the first field,
    # 10 the first field from which the rest is the trailer
    length_at = next((i for i, p in enumerate(parts) if i and p.startswith(b"9=")), None)
    trailer_at = next((i for i, p in enumerate(parts) if i and p.startswith(b"10=")), None) if ends_with_soh else None
    body_end = trailer_at if trailer_at is not None else len(parts) - (1 if ends_with_soh else 0)

    new = list(parts)
    for i, part in enumerate(parts):
        if i in (length_at, trailer_at):
            continue
        tag, eq, value = part.partition(b"=")
        if not eq:
            continue
        if tag == b"8" and value == SCRIPT_BEGIN_STRING.encode():
            new[i] = b"8=" + identity.begin_string.encode("latin-1")
        elif tag in compids and value == compids[tag][0].encode():
            new[i] = tag + b"=" + compids[tag][1].encode("latin-1")

    added_at: list[tuple[int, bytes]] = []  # (index in ``new`` to insert before, field)
    logon = _value(new, b"35") == b"A"
    if logon and reset:
        heartbeat = next((i for i, p in enumerate(new[:body_end]) if p.startswith(b"108=")), None)
        added_at.append((heartbeat + 1 if heartbeat is not None else body_end, b"141=Y"))
    if logon and signed and identity.sign_key is not None:
        with_reset = _insert(new, added_at)  # the signature covers the Logon as it goes out
        text = {tag: (_value(with_reset, tag) or b"").decode("latin-1") for tag in (b"52", b"34", b"49", b"56")}
        prehash = logon_prehash(text[b"52"], "A", text[b"34"], text[b"49"], text[b"56"])
        signature = sign(identity.sign_key, prehash).encode()
        added_at += [(body_end, b"95=%d" % len(signature)), (body_end, b"96=" + signature)]
    new = _insert(new, added_at)
    shift = len(new) - len(parts)
    new_trailer_at = trailer_at + shift if trailer_at is not None else None

    if length_at is not None and parts[length_at][2:].isdigit():
        old_body = _SOH.join(parts[length_at + 1: body_end])
        new_body = _SOH.join(new[length_at + 1: body_end + shift])
        new[length_at] = b"9=%d" % (int(parts[length_at][2:]) + len(new_body) - len(old_body))
    if trailer_at is not None and new_trailer_at is not None:
        written = parts[trailer_at][3:]
        if len(written) == 3 and written.isdigit() and int(written) < 256:
            before = sum(_SOH.join(parts[:trailer_at]))
            after = sum(_SOH.join(new[:new_trailer_at]))
            new[new_trailer_at] = b"10=%03d" % ((int(written) + after - before) % 256)
    return _SOH.join(new)


def _insert(parts: list[bytes], added_at: list[tuple[int, bytes]]) -> list[bytes]:
    """``parts`` with each field put before its index (in the order given, for equal indexes)."""
    out: list[bytes] = []
    for i in range(len(parts) + 1):
        out += [added for at, added in added_at if at == i]
        if i < len(parts):
            out.append(parts[i])
    return out
