"""The QuickFIX settings the engine derives from its config."""

from __future__ import annotations

from fixengine.config import EngineConfig, LogonFlags, SessionConfig
from fixengine.dialect import Dialect
from fixengine.kalshi import SessionType
from fixengine.quickfix_settings import initiator_settings, session_id


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
