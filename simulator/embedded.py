"""The engine with the simulator started in-process: the local default, for trying things out.

Sessions are pointed at the simulator's actual listeners (and its TLS certificate), and a session
key that does not exist yet is generated and registered with the simulator as an account.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from fixengine.config import EngineConfig, SessionConfig
from fixengine.errors import FixEngineError
from fixengine.kalshi.signing import load_private_key, public_key_pem, write_keypair
from simulator.events import SimEventSink
from simulator.config import FIX44_LISTENER, AccountConfig, load_simulator_config
from simulator.server import Simulator


def _listener_for(session: SessionConfig) -> str:
    return FIX44_LISTENER if not session.dialect.is_fixt else session.session_type.value


@contextmanager
def embedded_simulator(config: EngineConfig, on_event: SimEventSink | None = None) -> Iterator[tuple[EngineConfig, Simulator]]:
    """Start the configured simulator; yield the engine config re-pointed at it, and the simulator."""
    embedded = config.embedded_simulator
    if embedded is None:
        raise FixEngineError("this config has no [embedded_simulator] section")
    sim_config = load_simulator_config(embedded.config)
    accounts = []
    for s in config.sessions:
        if s.private_key_file is not None and not s.private_key_file.exists() and embedded.generate_keys:
            write_keypair(s.private_key_file, s.private_key_file.with_suffix(".pub.pem"))
        key = load_private_key(file=s.private_key_file, env=s.private_key_env)
        if s.api_key_id not in {a.api_key_id for a in sim_config.accounts}:
            accounts.append(AccountConfig(api_key_id=s.api_key_id, public_key_pem=public_key_pem(key).decode()))
    simulator = Simulator(sim_config, extra_accounts=accounts, on_event=on_event)
    simulator.start()
    try:
        sessions = []
        for s in config.sessions:
            listener = _listener_for(s)
            if listener not in simulator.ports:
                raise FixEngineError(f"session {s.name}: the embedded simulator has no {listener} listener")
            sessions.append(
                s.model_copy(
                    update={
                        "host": sim_config.host,
                        "port": simulator.ports[listener],
                        "tls": simulator.tls_cert_file is not None,
                        "tls_ca_file": simulator.tls_cert_file,
                    }
                )
            )
        yield config.model_copy(update={"sessions": sessions}), simulator
    finally:
        simulator.stop()
