"""One live conversation: a client connected to a session, sending while replies stream.

A transport (the WebSocket today, the voice pipeline next) feeds it what the user
does: :meth:`LiveConversation.say`, :meth:`switch`, :meth:`interrupt` (barge-in), and
:meth:`close` when the client goes away. Everything it has to tell the client arrives,
in order, through one ``emit`` callback as a ``LiveEvent``. One turn runs at a time,
in the background, so the client can still be heard while the persona speaks: a
second message gets a clear ``turn_in_progress``; an interruption stops the reply,
whose partial text is kept as ``interrupted``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from personae.auth.principal import Principal
from personae.conversations.engine import ConversationService, turn_in_progress
from personae.conversations.events import (
    Done,
    Interrupted,
    LiveError,
    LiveEvent,
    TurnEvent,
    TurnFailed,
)
from personae.conversations.records import MessageRecord
from personae.errors import PersonaeError

log = logging.getLogger(__name__)


Emit = Callable[[LiveEvent], Awaitable[None]]


class LiveConversation:
    """Drives one session for one connected client (no transport in here)."""

    def __init__(self, conversations: ConversationService, principal: Principal,
                 session_id: str, emit: Emit) -> None:
        self.conversations = conversations
        self.principal = principal
        self.session_id = session_id
        self._emit = emit
        self._turn: asyncio.Task[None] | None = None
        self._finishing = False  # the running turn has emitted its done/error event

    @property
    def answering(self) -> bool:
        """A reply is streaming (its final event not yet emitted)."""
        return self._turn is not None and not self._turn.done() and not self._finishing

    async def say(self, text: str, meta: dict[str, Any] | None = None) -> None:
        """Start a turn with the user's words (``meta`` kept with them); its events
        stream through ``emit``."""
        await self._settle()
        if self.answering:
            raise turn_in_progress(self.session_id)
        events = await self.conversations.send(self.principal, self.session_id, text,
                                               meta=meta)
        self._finishing = False
        self._turn = asyncio.create_task(self._stream(events), name=f"turn {self.session_id}")

    async def switch(self, persona_id: str) -> None:
        """Hand the session to another persona (refused while a reply streams)."""
        await self._settle()
        if self.answering:
            raise turn_in_progress(self.session_id)
        for event in await self.conversations.switch(self.principal, self.session_id,
                                                     persona_id):
            await self._emit(event)

    async def interrupt(self) -> bool:
        """Barge-in: stop the running reply, keeping its partial text as interrupted.
        Returns whether there was a reply to stop."""
        if not self.answering:
            return False
        await self._cancel()
        await self._emit(Interrupted(await self.last_reply()))
        return True

    async def close(self) -> None:
        """The client went away: stop any running reply (saved as interrupted)."""
        await self._cancel()

    async def request(self, work: Awaitable[None]) -> None:
        """Run one client request, reporting its failure to the client, not the caller."""
        try:
            await work
        except PersonaeError as exc:
            await self._emit(LiveError(exc))
        except Exception:
            log.exception("session %s: request failed", self.session_id)
            await self._emit(LiveError(PersonaeError("internal error; see server log")))

    async def _stream(self, events: AsyncIterator[TurnEvent]) -> None:
        try:
            async for event in events:
                if isinstance(event, Done | TurnFailed):
                    self._finishing = True
                await self._emit(event)
        except asyncio.CancelledError:
            raise
        except Exception:  # the transport failed, or a bug: the turn is saved either way
            log.exception("session %s: turn failed", self.session_id)
            self._finishing = True
            with contextlib.suppress(Exception):
                await self._emit(LiveError(PersonaeError("internal error; see server log")))
        finally:  # cancelled inside ``emit``: close the turn now, so its partial is saved
            close = getattr(events, "aclose", None)
            if close is not None:
                await close()

    async def _settle(self) -> None:
        """Wait for a turn that already emitted its final event to let go of the session."""
        if self._turn is not None and self._finishing:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await self._turn

    async def _cancel(self) -> None:
        turn, self._turn = self._turn, None
        if turn is not None and not turn.done():
            turn.cancel()  # the engine saves the partial reply before the task ends
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await turn

    async def last_reply(self) -> MessageRecord | None:
        """The session's last message if it is the persona's (a reply just saved)."""
        last = await self.conversations.last_message(self.principal, self.session_id)
        return last if last is not None and last.role == "assistant" else None
