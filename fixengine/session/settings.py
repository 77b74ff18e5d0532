"""Engine config -> the initiators' QuickFIX SessionSettings (on the shared defaults of
``fixengine.fix.quickfix``)."""

from __future__ import annotations

import ssl
from pathlib import Path

import quickfix as fix

from fixengine.config import EngineConfig, SessionConfig
from fixengine.fix.dialect import Dialect
from fixengine.fix.dictionary import DictionaryPaths, build_dictionaries
from fixengine.errors import FixEngineError
from fixengine.fix.quickfix import common_defaults, set_dictionaries
from fixengine.kalshi.facts import RESET_REQUIRED

# Kalshi requires TLS 1.2 or higher (spec §1.3). QuickFIX's own syntax: TLSv1_2, +TLSv1_3.
TLS_PROTOCOLS = "TLSv1_2 +TLSv1_3"


def session_id(session: SessionConfig) -> fix.SessionID:
    return fix.SessionID(session.dialect.begin_string, session.sender_comp_id, session.target_comp_id)


def default_ca_file() -> Path:
    paths = ssl.get_default_verify_paths()
    for candidate in (paths.cafile, paths.openssl_cafile):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    raise FixEngineError("no system CA bundle found to verify TLS servers; set tls_ca_file")


def initiator_groups(sessions: list[SessionConfig]) -> list[list[SessionConfig]]:
    """Sessions that can share one QuickFIX initiator. QuickFIX's TLS initiator reads its TLS
    settings (CA file, protocols) from [DEFAULT] only, so each CA file needs its own initiator."""
    groups: dict[tuple[bool, Path | None], list[SessionConfig]] = {}
    for s in sessions:
        groups.setdefault((s.tls, s.tls_ca_file if s.tls else None), []).append(s)
    return list(groups.values())


def initiator_settings(config: EngineConfig, sessions: list[SessionConfig]) -> fix.SessionSettings:
    """Settings for one QuickFIX initiator serving ``sessions`` (one group of ``initiator_groups``)."""
    dictionaries: dict[Dialect, DictionaryPaths] = {}
    settings = fix.SessionSettings()
    defaults = common_defaults("initiator")
    # Kalshi adds fields its own dictionary does not list; an unknown field on an execution report
    # must not make us reject (and so lose) the report. Known fields are still validated.
    defaults.setString("ValidateUserDefinedFields", "N")
    defaults.setString("AllowUnknownMsgFields", "Y")
    defaults.setString("LogonTimeout", "10")
    defaults.setString("LogoutTimeout", "5")
    # The engine decides when a session may reconnect (fixengine/session/reconnect.py) by disabling it
    # after a disconnect and enabling it when the backoff has passed; QuickFIX (which reads this
    # from [DEFAULT] only) then connects enabled sessions within a second.
    defaults.setString("ReconnectInterval", "1")
    if sessions[0].tls:
        defaults.setString("SSLProtocol", TLS_PROTOCOLS)
        # With a CA file QuickFIX verifies the server's chain; without one it would verify nothing.
        ca_file = sessions[0].tls_ca_file or default_ca_file()
        defaults.setString(fix.CERTIFICATE_AUTHORITIES_FILE, str(ca_file))  # "CertificationAuthoritiesFile"
    settings.set(defaults)

    for s in sessions:
        d = fix.Dictionary()
        d.setString("SocketConnectHost", s.host)
        d.setInt("SocketConnectPort", s.port)
        d.setInt("HeartBtInt", s.heartbeat_interval)
        d.setString("FileStorePath", str(config.store_path / s.name))
        d.setString("ResetOnLogon", "Y" if s.logon.reset_seq_num else "N")
        if s.session_type in RESET_REQUIRED:
            # Kalshi never asks these sessions to retransmit: keep sequence numbers, not messages
            # (saves a store write per message).
            d.setString("PersistMessages", "N")
        if s.dialect not in dictionaries:
            dictionaries[s.dialect] = build_dictionaries(s.dialect, config.data_dir / "dictionaries")
        set_dictionaries(d, s.dialect, dictionaries[s.dialect])
        settings.set(session_id(s), d)
    return settings
