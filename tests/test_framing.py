"""The raw FIX framer used by the simulator's logon gate."""

import pytest

from fixengine.fix.framing import FrameReader, FramingError, checksum, encode, parse


def test_encode_computes_body_length_and_checksum() -> None:
    msg = encode("FIX.4.4", [(35, "0"), (34, "2"), (49, "A"), (56, "B")])
    body = b"35=0\x0134=2\x0149=A\x0156=B\x01"
    head = b"8=FIX.4.4\x019=" + str(len(body)).encode() + b"\x01"
    assert msg == head + body + b"10=" + checksum(head + body).encode() + b"\x01"
    assert parse(msg)[:3] == [(8, "FIX.4.4"), (9, str(len(body))), (35, "0")]


def test_reader_waits_for_whole_messages_fed_byte_by_byte() -> None:
    a = encode("FIXT.1.1", [(35, "A"), (34, "1")])
    b = encode("FIXT.1.1", [(35, "0"), (34, "2")])
    reader = FrameReader()
    out = []
    for byte in a + b:
        reader.feed(bytes([byte]))
        message = reader.next_message()
        if message is not None:
            out.append(message)
    assert out == [a, b]
    assert reader.next_message() is None


def test_wrong_checksum_and_wrong_length_are_errors() -> None:
    good = encode("FIX.4.4", [(35, "0")])
    bad_sum = good[:-4] + (b"000" if not good.endswith(b"000\x01") else b"001") + b"\x01"
    reader = FrameReader()
    reader.feed(bad_sum)
    with pytest.raises(FramingError, match="CheckSum"):
        reader.next_message()
    reader = FrameReader()
    reader.feed(good.replace(b"9=5", b"9=3"))
    with pytest.raises(FramingError, match="BodyLength"):
        reader.next_message()


def test_garbage_is_not_fix() -> None:
    reader = FrameReader()
    reader.feed(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    with pytest.raises(FramingError, match="does not start with a FIX header"):
        reader.next_message()
