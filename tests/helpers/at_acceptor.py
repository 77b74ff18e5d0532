"""The gateway's OMS acceptor as QuickFIX's ``at`` program: the product's acceptor settings with
``at``'s echo application, for the tests that play QuickFIX's acceptance scenarios against it
(``conformance.acceptor``)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import quickfix as fix

from conformance.acceptor import wait_reachable
from fixengine.config import GatewayConfig, OmsClientConfig
from fixengine.gateway.acceptor import OmsAcceptors, OmsApplication, session_id
from tests.helpers.sessions import unused_port

HOST = "127.0.0.1"
AT_DIR = Path(__file__).resolve().parents[2] / ".." / "shared" / "quickfix-at" / "fix44"
MSG_NEW_ORDER_SINGLE, MSG_SECURITY_DEFINITION, MSG_EMAIL = "D", "d", "C"


class AtEchoApplication(OmsApplication):
    """QuickFIX's ``at`` application (``src/at_application.h``) on the gateway's acceptor:
    NewOrderSingle, SecurityDefinition and Email are sent straight back; a NewOrderSingle with
    PossResend (97) Y whose ClOrdID this session has already seen is dropped (the seen-set is
    cleared at logout); any other application message is refused with UnsupportedMessageType,
    which QuickFIX answers with a BusinessMessageReject (35=j, 380=3)."""

    def __init__(self, *args: object, **kwargs: object):
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._seen: set[tuple[str, str]] = set()

    def onLogout(self, session_id: fix.SessionID) -> None:
        self._seen.clear()  # as at's onLogout: m_cracker.reset()
        super().onLogout(session_id)

    def on_app(self, client: str, message: fix.Message, raw: str, msg_type: str) -> None:
        header = message.getHeader()
        # the session the message came in on: ours is its reverse
        sid = fix.SessionID(header.getField(8), header.getField(56), header.getField(49))
        if msg_type == MSG_NEW_ORDER_SINGLE:
            poss_resend = header.isSetField(97) and header.getField(97) == "Y"
            seen = (message.getField(11), sid.toString())
            if poss_resend and seen in self._seen:
                return
            self._seen.add(seen)
        elif msg_type not in (MSG_SECURITY_DEFINITION, MSG_EMAIL):
            raise fix.UnsupportedMessageType()
        fix.Session.sendToTarget(fix.Message(message), sid)


@dataclass
class AtAcceptor:
    port: int
    client: OmsClientConfig
    acceptors: OmsAcceptors

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Wait until the scenario before has left no connection behind: QuickFIX has dropped the
        session's last connection (a scenario may end by closing its own side, 1b)."""
        sid = session_id(self.client)
        deadline = time.monotonic() + timeout
        while fix.Session.isSessionRegistered(sid) and time.monotonic() < deadline:
            time.sleep(0.01)  # QuickFIX has no notification of a connection dropped: poll
        assert not fix.Session.isSessionRegistered(sid), f"the session is still connected after {timeout:g} s"


@contextmanager
def at_acceptor(data_dir: Path, *, client_comp_id: str = "TW44", gateway_comp_id: str = "ISLD",
                name: str = "at") -> Iterator[AtAcceptor]:
    """One OMS acceptor (the product's settings) serving ``client_comp_id`` -> ``gateway_comp_id``
    with the echo application, its hand-off loop on a thread of its own."""
    port = unused_port()
    client = OmsClientConfig(
        name=name, sender_comp_id=client_comp_id, target_comp_id=gateway_comp_id, port=port, session="any",
        max_quantity=Decimal(1_000_000), max_notional=Decimal(1_000_000), reset_on_logon=True,
    )
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name=f"quickfix-at-loop-{name}", daemon=True)
    thread.start()
    acceptors = OmsAcceptors(GatewayConfig(), [client], data_dir, lambda events: None, application=AtEchoApplication)

    async def start() -> None:  # in its loop: QuickFIX is polled there
        acceptors.start(loop)
    asyncio.run_coroutine_threadsafe(start(), loop).result(timeout=30)
    try:
        wait_reachable(HOST, port, 10.0)
        yield AtAcceptor(port, client, acceptors)
    finally:
        asyncio.run_coroutine_threadsafe(acceptors.stop(), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
