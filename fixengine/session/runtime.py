"""The engine's QuickFIX side: its initiators (one per TLS group), polled on the asyncio loop's
thread (``fixengine.fix.polled``), the inbox that carries what their callbacks saw to the engine,
and sending.

The callbacks only append to the inbox; after each pass of QuickFIX the inbox is taken, in order:
a run of application messages is handed over together (one journal commit), then the session
event that followed it, and so on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from functools import partial

import quickfix as fix

from fixengine.config import EngineConfig, SessionConfig
from fixengine.fix.framing import quickfix_text
from fixengine.fix.polled import PolledInitiator
from fixengine.fix.quickfix import LoopInbox, create
from fixengine.orders.wire import Fields
from fixengine.session.application import ApplicationMessage, EngineApplication, SessionRecord, last_sent_seq
from fixengine.session.events import SessionEvent
from fixengine.session.settings import initiator_groups, initiator_settings, session_id

Messages = list[tuple[str, str, str]]  # (session, MsgType, raw FIX) of a run of application messages


class InitiatorRuntime:
    """QuickFIX initiators for the engine's sessions, handing their events to the loop."""

    def __init__(self, config: EngineConfig, on_messages: Callable[[Messages], None],
                 on_event: Callable[[SessionEvent], None]):
        self._config = config
        self._on_messages = on_messages  # a run of application messages, in order
        self._on_event = on_event  # a session event, after the messages that came before it
        self._session_ids = {s.name: session_id(s) for s in config.sessions}
        self._initiators: list[PolledInitiator] = []
        self._inbox: LoopInbox[SessionEvent] = LoopInbox(self._take)  # from QuickFIX's callbacks

    @property
    def names(self) -> Iterable[str]:
        return self._session_ids.keys()

    def build(self, loop: asyncio.AbstractEventLoop, records: Mapping[str, SessionRecord]) -> None:
        """Create the initiators (not started yet: their sessions exist, so their stores can be read)."""
        self._inbox.loop = loop
        for group in initiator_groups(list(self._config.sessions)):
            self._initiators.append(self._initiator(group, records))

    def _initiator(self, sessions: list[SessionConfig], records: Mapping[str, SessionRecord]) -> PolledInitiator:
        settings = initiator_settings(self._config, sessions)
        mine = {session_id(s).toString(): records[s.name] for s in sessions}
        app = EngineApplication(mine, self._inbox.put)
        store = fix.FileStoreFactory(settings)
        tls = sessions[0].tls
        kind = fix.SSLSocketInitiator if tls else fix.SocketInitiator
        return PolledInitiator(partial(create, kind, app, store, settings, "the engine's"), [s.port for s in sessions],
                               self._inbox.drain, "quickfix-tls" if tls else "quickfix")

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        for initiator in self._initiators:
            initiator.start(loop)

    async def stop(self) -> None:
        """Stop QuickFIX, then hand over what it read before it stopped."""
        for initiator in self._initiators:
            await initiator.stop()
        self.take_inbox()

    def close(self) -> None:
        """Drop the initiators (after ``stop``, once their sessions' counts are read): their C++
        sessions leave QuickFIX's process-wide registry, so an engine started again in this
        process (same SessionIDs) gets fresh sessions."""
        self._initiators.clear()

    def lookup(self, name: str) -> fix.Session | None:
        """The QuickFIX session of ``name`` (None while the initiators stop)."""
        return fix.Session.lookupSession(self._session_ids[name])

    def send(self, session: SessionConfig, msg_type: str, fields: Fields) -> int | None:
        """Send an application message; the MsgSeqNum it went out with (a Reject names it), or None
        if QuickFIX would not send it. QuickFIX numbers the message it is handed, in place."""
        message = fix.Message(quickfix_text(session.dialect.begin_string, msg_type, fields), False)
        if not fix.Session.sendToTarget(message, self._session_ids[session.name]):
            return None
        return last_sent_seq()

    def send_message(self, name: str, message: fix.Message) -> bool:
        return fix.Session.sendToTarget(message, self._session_ids[name])

    def take_inbox(self) -> None:
        """Hand over now what QuickFIX's callbacks have put in the inbox (at stop)."""
        self._inbox.drain()

    def _take(self, events: list[SessionEvent]) -> None:
        messages: Messages = []  # a run of application messages, handled together
        for event in events:
            if isinstance(event, ApplicationMessage):
                messages.append((event.session, event.msg_type, event.raw))
                continue
            if messages:  # in the order things happened: a run, then this event
                self._on_messages(messages)
                messages = []
            self._on_event(event)
        if messages:
            self._on_messages(messages)
