"""The QuickFIX settings the engine derives from its config."""

from __future__ import annotations

from fixengine.config import EngineConfig, LogonFlags, SessionConfig
from fixengine.fix.dialect import Dialect
from fixengine.kalshi.facts import SessionType
from fixengine.session.settings import initiator_settings, session_id


def test_only_retransmission_sessions_keep_sent_messages(tmp_path) -> None:
    def session(name: str, kind: SessionType) -> SessionConfig:
        return SessionConfig(
            name=name, host="127.0.0.1", port=1, tls=False, session_type=kind, dialect=Dialect.FIX44,
            api_key_id=f"key-{name}", private_key_file=tmp_path / "k.pem",
            logon=LogonFlags(reset_seq_num=kind is not SessionType.RT),
        )

    sessions = [session("nr", SessionType.NR), session("rt", SessionType.RT)]
    settings = initiator_settings(EngineConfig(data_dir=tmp_path, sessions=sessions), sessions)
    nr, rt = (settings.get(session_id(s)) for s in sessions)
    assert nr.getString("PersistMessages") == "N"  # never asked to resend: no store write per message
    assert not rt.has("PersistMessages")  # QuickFIX's default (Y): a ResendRequest can be answered


def test_sent_requests_are_those_the_store_counted(tmp_path) -> None:
    """QuickFIX stores a message, then counts it in the next sender MsgSeqNum, then sends it. A
    process killed between the first two left a request in the store's body that never left (its
    number went to the next Logon): only counted numbers' latest index entries are sent."""
    from fixengine.fix.store import sent_cl_ord_ids

    assert sent_cl_ord_ids(tmp_path) is None
    messages = [b"8=FIXT.1.1\x019=5\x0135=D\x0134=1\x0111=sent\x0110=000\x01",
                b"8=FIXT.1.1\x019=5\x0135=D\x0134=2\x0111=stored-not-counted\x0110=000\x01"]
    body, index, offset = b"", b"", 0
    for seq, message in enumerate(messages, 1):
        body += message
        index += b"%d,%d,%d " % (seq, offset, len(message))
        offset += len(message)
    stem = "FIXT.1.1-key-KalshiRT"  # QuickFIX's names: BeginString-SenderCompID-TargetCompID.kind
    (tmp_path / f"{stem}.body").write_bytes(body)
    (tmp_path / f"{stem}.header").write_bytes(index)
    (tmp_path / f"{stem}.seqnums").write_text("00000000000000000002 : 00000000000000000007")
    assert sent_cl_ord_ids(tmp_path) == {"sent"}
    (tmp_path / f"{stem}.seqnums").write_text("00000000000000000003 : 00000000000000000007")
    assert sent_cl_ord_ids(tmp_path) == {"sent", "stored-not-counted"}
