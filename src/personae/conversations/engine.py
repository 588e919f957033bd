"""Conversations: a user, a session, a persona, and a model, with no HTTP in sight.

A turn is an async stream of events. The user's message is committed before the
model is called; the reply is committed when the stream ends, as ``complete``,
``interrupted`` (the client went away, or the model failed mid-reply) or ``failed``.
A session is pinned to the persona version it started with (or last switched to).
"""

from __future__ import annotations

import asyncio
import builtins
import time
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from dataclasses import replace
from datetime import timedelta
from typing import Any

from personae.auth.principal import Principal
from personae.conversations.context import build_messages
from personae.conversations.events import (
    Delta,
    Done,
    MessageSaved,
    PersonaSwitched,
    TurnEvent,
    TurnFailed,
)
from personae.conversations.store import ConversationStore, MessageRecord, SessionRecord
from personae.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    PersonaeError,
    TurnInProgress,
)
from personae.personas.knowledge import RankedItem
from personae.personas.prepared import PreparedPersona, PreparedPersonas
from personae.providers.base import Finished, TextDelta, Usage
from personae.providers.registry import ProviderRegistry
from personae.providers.streams import aclose_stream

DEFAULT_REPLY_TOKENS = 256
HISTORY_LIMIT = 400
MAX_MESSAGE_CHARS = 32_000


class ConversationService:
    def __init__(self, store: ConversationStore, prepared: PreparedPersonas,
                 providers: ProviderRegistry, *, turn_stale: timedelta = timedelta(minutes=10),
                 knowledge_items: int = 3, max_turns_in_flight: int = 64) -> None:
        self.store = store
        self.prepared = prepared
        self.providers = providers
        self.turn_stale = turn_stale
        self.knowledge_items = knowledge_items
        self._in_flight = asyncio.Semaphore(max_turns_in_flight)

    # -- sessions ----------------------------------------------------------

    async def open(self, principal: Principal, persona_id: str,
                   meta: dict[str, Any] | None = None) -> tuple[SessionRecord, list[TurnEvent]]:
        """Start a session; the persona's greeting is its first message."""
        persona = await self.prepared.usable(principal, persona_id)
        session = await self.store.create_session(principal.user_id, persona_id,
                                                  persona.version, meta)
        greeting = await self._greet(session.id, persona)
        return session, [MessageSaved(greeting)] if greeting else []

    async def get(self, principal: Principal, session_id: str) -> SessionRecord:
        session = await self.store.get_session(principal.user_id, session_id)
        if session is None:
            raise NotFound(f"session '{session_id}' not found")
        return session

    async def list(self, principal: Principal, limit: int = 50,
                   offset: int = 0) -> tuple[builtins.list[SessionRecord], int]:
        return await self.store.list_sessions(principal.user_id, limit, offset)

    async def history(self, principal: Principal, session_id: str) -> builtins.list[MessageRecord]:
        await self.get(principal, session_id)
        return await self.store.messages(session_id)

    async def last_message(self, principal: Principal,
                           session_id: str) -> MessageRecord | None:
        await self.get(principal, session_id)
        found = await self.store.messages(session_id, limit=1)
        return found[-1] if found else None

    async def delete(self, principal: Principal, session_id: str) -> None:
        if not await self.store.delete_session(principal.user_id, session_id):
            raise NotFound(f"session '{session_id}' not found")

    async def expire_idle(self, idle: timedelta) -> int:
        """Close every session idle longer than ``idle`` (their history stays)."""
        return await self.store.expire_idle(idle)

    async def switch(self, principal: Principal, session_id: str,
                     persona_id: str) -> builtins.list[TurnEvent]:
        """Hand the session to another persona: it greets; history is kept, marked."""
        session = await self._open_session(principal, session_id)
        persona = await self.prepared.usable(principal, persona_id)
        definition, version = persona.definition, persona.version
        turn = await self._claim(session.id)
        try:
            await self.store.switch_persona(session.id, persona_id, version)
            note = await self.store.add_message(
                session.id, "event", f"switched to {definition.shown_name}", persona_id,
                version, meta={"from": session.persona_id, "to": persona_id})
            events: builtins.list[TurnEvent] = [
                PersonaSwitched(persona_id, version, definition.shown_name, definition.language,
                                definition.voice.model_dump(mode="json")),
                MessageSaved(note)]
            greeting = await self._greet(session.id, persona)
            if greeting:
                events.append(MessageSaved(greeting))
            return events
        finally:
            await self.store.finish_turn(session.id, turn, None)

    # -- turns -------------------------------------------------------------

    async def send(self, principal: Principal, session_id: str,
                   text: str) -> AsyncIterator[TurnEvent]:
        """One turn. Raises before the first event on 404/409/4xx; streams after.

        The session is claimed when the stream starts (so a stream never iterated holds
        nothing); a claim lost to a concurrent turn arrives as a 409 ``TurnFailed``.
        """
        if not text.strip():
            raise InvalidInput("content: must not be empty")
        if len(text) > MAX_MESSAGE_CHARS:
            raise InvalidInput(f"content: longer than {MAX_MESSAGE_CHARS} characters")
        session = await self._open_session(principal, session_id)
        if await self.store.turn_busy(session.id, self.turn_stale):
            raise turn_in_progress(session.id)
        return self._turn(session, text)

    async def _turn(self, session: SessionRecord, text: str) -> AsyncIterator[TurnEvent]:
        async with self._in_flight:  # bounded: waiting turns queue here, not in the DB pool
            turn = await self.store.claim_turn(session.id, self.turn_stale)
            if turn is None:
                yield TurnFailed(turn_in_progress(session.id))
                return
            final: TurnEvent | None = None
            response_ms: float | None = None
            try:
                user = await self.store.add_message(session.id, "user", text,
                                                    session.persona_id, session.persona_version)
                yield MessageSaved(user)
                started = time.perf_counter()
                # aclosing: if our consumer goes away, the reply (and the model) stop now
                # and the partial reply is saved as interrupted before the turn is released.
                async with aclosing(self._reply(session, text)) as replies:
                    async for event in replies:
                        if isinstance(event, Done | TurnFailed):
                            final = event  # sent once the session is free for the next turn
                        else:
                            yield event
                response_ms = (time.perf_counter() - started) * 1000
            finally:
                await asyncio.shield(self.store.finish_turn(session.id, turn, response_ms))
        if final is not None:
            yield final

    async def _reply(self, session: SessionRecord,
                     text: str) -> AsyncGenerator[TurnEvent, None]:
        run = _Run()
        try:
            persona = await self.prepared.get(session.persona_id, session.persona_version)
            run.knowledge = persona.knowledge.top(text, self.knowledge_items)
            llm, settings = self.providers.resolve(persona.model)
            settings = replace(settings, fairness_key=session.id)
            history = await self.store.messages(session.id, limit=HISTORY_LIMIT)
            messages = build_messages(
                system_prompt=persona.system_prompt, knowledge=run.knowledge,
                history=history[:-1], user_text=text, persona_id=session.persona_id,
                names=await self._names(history), context_window=llm.context_window,
                reply_tokens=settings.max_tokens or DEFAULT_REPLY_TOKENS,
                count=llm.count_tokens)
            stream = llm.stream(messages, settings)
            try:
                async for event in stream:
                    if isinstance(event, TextDelta) and event.text:
                        run.delta(event.text)
                        yield Delta(event.text)
                    elif isinstance(event, Finished):
                        run.finished = event
            finally:  # if our consumer goes away, the model stops now
                await aclose_stream(stream)
        except PersonaeError as exc:
            run.error = exc
        except (asyncio.CancelledError, GeneratorExit):
            run.cancelled = True
            raise
        finally:
            saved = await asyncio.shield(self._save_reply(session, run))
        if run.error is not None:
            yield TurnFailed(run.error, saved)
        else:
            yield Done(saved, run.usage())

    async def _save_reply(self, session: SessionRecord, run: _Run) -> MessageRecord:
        saved = await self.store.add_message(
            session.id, "assistant", run.text(), session.persona_id, session.persona_version,
            status=run.status(), meta=run.meta())
        await self.store.record_metrics(session.persona_id, session.persona_version,
                                        run.metrics())
        return saved

    # -- helpers -----------------------------------------------------------

    async def _claim(self, session_id: str) -> str:
        turn = await self.store.claim_turn(session_id, self.turn_stale)
        if turn is None:
            raise turn_in_progress(session_id)
        return turn

    async def _open_session(self, principal: Principal, session_id: str) -> SessionRecord:
        session = await self.get(principal, session_id)
        if session.status != "open":
            raise Conflict(f"session '{session_id}' is {session.status}; start a new one")
        return session

    async def _names(self, history: builtins.list[MessageRecord]) -> dict[str, str]:
        pinned = {(m.persona_id, m.persona_version) for m in history}
        return {persona_id: await self.prepared.shown_name(persona_id, version)
                for persona_id, version in pinned}

    async def _greet(self, session_id: str, persona: PreparedPersona) -> MessageRecord | None:
        greeting = persona.definition.greeting
        if not greeting:
            return None
        return await self.store.add_message(session_id, "assistant", greeting,
                                            persona.persona_id, persona.version,
                                            meta={"greeting": True})


class _Run:
    """Book-keeping for one reply while it streams."""

    def __init__(self) -> None:
        self.knowledge: builtins.list[RankedItem] = []
        self.parts: builtins.list[str] = []
        self.started = time.perf_counter()
        self.first_token_ms: float | None = None
        self.finished: Finished | None = None
        self.error: PersonaeError | None = None
        self.cancelled = False

    def delta(self, text: str) -> None:
        if self.first_token_ms is None:
            self.first_token_ms = (time.perf_counter() - self.started) * 1000
        self.parts.append(text)

    def text(self) -> str:
        return "".join(self.parts)

    def status(self) -> str:
        if self.finished is not None and self.error is None and not self.cancelled:
            return "complete"
        return "interrupted" if self.parts else "failed"

    def usage(self) -> dict[str, int]:
        usage = self.finished.usage if self.finished else Usage()
        return {"prompt_tokens": usage.prompt_tokens,
                "completion_tokens": usage.completion_tokens,
                "total_tokens": usage.total_tokens}

    def meta(self) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "knowledge": [{"label": r.label, "index": r.index, "score": round(r.score, 3)}
                          for r in self.knowledge],
            "usage": self.usage(),
            "time_to_first_token_ms": _rounded(self.first_token_ms),
            "response_ms": round((time.perf_counter() - self.started) * 1000, 1),
        }
        if self.finished is not None:
            meta["provider"], meta["model"] = self.finished.provider, self.finished.model
            meta["finish_reason"] = self.finished.finish_reason
        if self.error is not None:
            meta["error"] = {"code": self.error.code, "message": self.error.message}
        return meta

    def metrics(self) -> dict[str, float]:
        usage = self.usage()
        values = {"turns": 1.0, "prompt_tokens": float(usage["prompt_tokens"]),
                  "completion_tokens": float(usage["completion_tokens"]),
                  "response_ms": (time.perf_counter() - self.started) * 1000}
        if self.first_token_ms is not None:
            values["time_to_first_token_ms"] = self.first_token_ms
        if self.error is not None or self.cancelled:
            values["errors" if self.error is not None else "interrupted"] = 1.0
        return values


def turn_in_progress(session_id: str) -> TurnInProgress:
    return TurnInProgress(f"session '{session_id}' is already answering a message; "
                          "wait for that reply to finish, then send again")


def _rounded(value: float | None) -> float | None:
    return round(value, 1) if value is not None else None
