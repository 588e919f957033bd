"""Conversations: a user, a session, a persona, and a model, with no HTTP in sight.

A turn is an async stream of events. The user's message is committed before the
model is called, together with the session's claim and the reply's row
(``streaming``), whose text is flushed about every second while it streams (see
``durability``); the model's deltas reach the client in frames (``FrameTiming``: the
first at once, then about every 25 ms), and when the stream ends the
reply is ``complete``, ``interrupted`` (the client went away, the model failed
mid-reply, or the server stopped it) or ``failed``. A session is pinned to the persona
version it started with (or last switched to).
"""

from __future__ import annotations

import asyncio
import builtins
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from contextlib import aclosing
from dataclasses import replace
from datetime import timedelta
from typing import Any

from personae.auth.principal import Principal
from personae.conversations.context import build_messages, recent_texts
from personae.conversations.durability import ActiveTurn, TurnRegistry, TurnTiming
from personae.conversations.events import (
    Delta,
    Done,
    MessageSaved,
    PersonaSwitched,
    TurnEvent,
    TurnFailed,
)
from personae.conversations.observe import TurnObserver, TurnReport, tell_observers
from personae.conversations.records import (
    MessageRecord,
    MessageRevision,
    OpenedTurn,
    Recovered,
    SessionRecord,
    TurnEnd,
    TurnHolder,
)
from personae.conversations.store import ConversationStore
from personae.conversations.turn_run import TurnRun
from personae.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    PersonaeError,
    ShuttingDown,
    TurnInProgress,
)
from personae.personas.lore import FiredEntry
from personae.personas.macros import substitute, user_name_or_default
from personae.personas.prepared import PreparedPersona, PreparedPersonas
from personae.providers.base import (
    LLM,
    NO_OVERRIDES,
    ChatMessage,
    Finished,
    GenerationOverrides,
    TextDelta,
)
from personae.providers.registry import ProviderRegistry
from personae.providers.streams import FrameTiming, aclose_stream

DEFAULT_REPLY_TOKENS = 256
HISTORY_LIMIT = 400
MAX_MESSAGE_CHARS = 32_000


class ConversationService:
    def __init__(self, store: ConversationStore, prepared: PreparedPersonas,
                 providers: ProviderRegistry, *, holder: TurnHolder | None = None,
                 timing: TurnTiming | None = None, knowledge_items: int = 3,
                 max_turns_in_flight: int = 1024, frames: FrameTiming | None = None,
                 observers: Sequence[TurnObserver] = ()) -> None:
        self.store = store
        self.prepared = prepared
        self.providers = providers
        self.turns = TurnRegistry(store, holder or TurnHolder(uuid.uuid4().hex),
                                  timing or TurnTiming())
        self.knowledge_items = knowledge_items
        self.frames = frames or FrameTiming()
        self.observers = tuple(observers)  # told of each finished turn (metrics, logs)
        # Called with (user id, session id) after a session is deleted.
        self.on_delete: builtins.list[Callable[[str, str], Awaitable[None]]] = []
        self._in_flight = asyncio.Semaphore(max_turns_in_flight)

    # -- serving (see ``durability``) -----------------------------------------

    async def start(self) -> None:
        """Serve turns: free what processes that are gone left, and keep doing so."""
        await self.turns.serve()

    async def recover(self) -> Recovered:
        """Free dead holders' claims; their streaming replies become interrupted."""
        return await self.turns.recover()

    async def drain(self, grace_seconds: float) -> None:
        """Take no new turns; let running ones finish for ``grace_seconds``, then stop
        them (saved interrupted) and wait for their saves."""
        await self.turns.drain(grace_seconds)

    async def close(self) -> None:
        await self.turns.close()

    # -- sessions ----------------------------------------------------------

    async def open(self, principal: Principal, persona_id: str,
                   meta: dict[str, Any] | None = None) -> tuple[SessionRecord, list[TurnEvent]]:
        """Start a session; the persona's greeting is its first message."""
        persona = await self.prepared.usable(principal, persona_id)
        session = await self.store.create_session(principal.user_id, persona_id,
                                                  persona.version, meta)
        greeting = await self._greet(session, persona)
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

    async def annotate(self, principal: Principal, session_id: str, message_id: int,
                       meta: dict[str, Any], metrics: dict[str, float] | None = None,
                       revision: MessageRevision | None = None) -> MessageRecord:
        """Add to a message's metadata what was learnt after it was saved (a spoken
        reply's audio and timings), ``metrics`` to its persona version's, and apply
        ``revision`` (a spoken reply cut short keeps what was heard)."""
        await self.get(principal, session_id)
        saved = await self.store.annotate_message(session_id, message_id, meta, revision)
        if saved is None:
            raise NotFound(f"message {message_id} not found in session '{session_id}'")
        if metrics:
            await self.store.add_metrics(saved.persona_id, saved.persona_version, metrics)
        return saved

    async def delete(self, principal: Principal, session_id: str) -> None:
        """Delete the session and its history; then each of ``on_delete`` (what other
        rooms keep per session, such as reply audio, goes with it)."""
        if not await self.store.delete_session(principal.user_id, session_id):
            raise NotFound(f"session '{session_id}' not found")
        for hook in self.on_delete:
            await hook(principal.user_id, session_id)

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
            greeting = await self._greet(session, persona)
            if greeting:
                events.append(MessageSaved(greeting))
            return events
        finally:
            await self.store.finish_turn(session.id, turn, None)

    # -- turns -------------------------------------------------------------

    async def send(self, principal: Principal, session_id: str, text: str,
                   overrides: GenerationOverrides | None = None,
                   meta: dict[str, Any] | None = None) -> AsyncIterator[TurnEvent]:
        """One turn. Raises before the first event on 404/409/4xx; streams after.
        ``overrides`` (the caller's own settings) win over the persona's for this reply;
        ``meta`` is kept with the user's message (a spoken message's audio).

        The session is claimed when the stream starts (so a stream never iterated holds
        nothing); a claim lost to a concurrent turn arrives as a 409 ``TurnFailed``.
        """
        self.turns.refuse_if_draining()
        if not text.strip():
            raise InvalidInput("content: must not be empty")
        if len(text) > MAX_MESSAGE_CHARS:
            raise InvalidInput(f"content: longer than {MAX_MESSAGE_CHARS} characters")
        session = await self._open_session(principal, session_id)
        if session.answering:  # read with the session: no round trip of its own
            raise turn_in_progress(session.id)
        return self._turn(session, text, overrides or NO_OVERRIDES, meta)

    async def _turn(self, session: SessionRecord, text: str,
                    overrides: GenerationOverrides = NO_OVERRIDES,
                    meta: dict[str, Any] | None = None) -> AsyncIterator[TurnEvent]:
        async with self._in_flight:  # bounded: waiting turns queue here
            started = await self._start_turn(session, text, meta)
            if isinstance(started, PersonaeError):
                yield TurnFailed(started)
                return
            active, opened = started
            run = TurnRun(overrides)
            run.reply = opened.reply
            active.keep(self.turns.timing, lambda: self._flush(run),
                        lambda: self.turns.renew(active))
            try:
                yield MessageSaved(opened.user)
                # aclosing: if our consumer goes away, the reply (and the model) stop now
                # and the partial reply is saved as interrupted before the turn is released.
                async with aclosing(self._reply(session, active, run, opened)) as replies:
                    async for event in replies:
                        yield event
            except (asyncio.CancelledError, GeneratorExit):
                run.cancelled = True
                raise
            finally:
                saved = await self.turns.shielded(self._end_turn(session, active, run))
                if self.observers:
                    tell_observers(self.observers, turn_report(session, run))
        # The final event goes out once the session is free for the next turn.
        yield Done(saved, run.usage()) if run.error is None else TurnFailed(run.error, saved)

    async def _start_turn(self, session: SessionRecord, text: str,
                          meta: dict[str, Any] | None
                          ) -> tuple[ActiveTurn, OpenedTurn] | PersonaeError:
        try:
            started = await self.turns.open(session.id, text, session.persona_id,
                                            session.persona_version, HISTORY_LIMIT, meta)
        except ShuttingDown as exc:
            return exc
        return turn_in_progress(session.id) if started is None else started

    async def _reply(self, session: SessionRecord, active: ActiveTurn, run: TurnRun,
                     opened: OpenedTurn) -> AsyncGenerator[TurnEvent, None]:
        """The model's reply as frames of deltas; how it went is kept in ``run``."""
        run.started = time.perf_counter()
        try:
            persona = await self.prepared.get(session.persona_id, session.persona_version)
            run.knowledge = persona.knowledge.top(opened.user.content, self.knowledge_items)
            llm, settings = self.providers.resolve(persona.model)
            run.warnings = self.providers.language_warnings(persona.model,
                                                            persona.definition.language)
            settings = replace(run.overrides.apply(settings), fairness_key=session.id)
            messages = await self._messages(session, persona, run, opened, llm,
                                            settings.max_tokens or DEFAULT_REPLY_TOKENS)
            stream = self.frames.apply(llm.stream(messages, settings))
            try:
                while (event := await active.next_event(stream)) is not None:
                    if isinstance(event, TextDelta) and event.text:
                        run.delta(event.text)
                        yield Delta(event.text)
                    elif isinstance(event, Finished):
                        run.finished = event
            finally:  # if our consumer goes away, the model stops now
                await aclose_stream(stream)
        except PersonaeError as exc:
            run.error = exc
        if active.stop_error is not None and run.finished is None:
            run.stopped(active.stop_error)

    async def _messages(self, session: SessionRecord, persona: PreparedPersona, run: TurnRun,
                        opened: OpenedTurn, llm: LLM, reply_tokens: int
                        ) -> builtins.list[ChatMessage]:
        """What the model sees for this turn; the lore that fired is kept in ``run``."""
        history, user = opened.history, opened.user
        user_name = user_name_or_default(session.meta.get("user_name"))
        fired = await _fired_lore(persona, recent_texts(history, user.content))
        run.lore = persona.lore.fit(fired, llm.count_tokens, user_name)
        return build_messages(
            system_prompt=persona.system_prompt, knowledge=run.knowledge, history=history,
            user_text=user.content, persona_id=session.persona_id,
            names=await self._names(history), context_window=llm.context_window,
            reply_tokens=reply_tokens, count=llm.count_tokens, lore=run.lore,
            post_history=persona.post_history, char=persona.definition.shown_name,
            user_name=user_name)

    async def _flush(self, run: TurnRun) -> None:
        """Write the reply's new text, if any (the keeper calls this every second)."""
        count = len(run.parts)
        if run.reply is not None and count > run.flushed:
            await self.store.flush_reply(run.reply.id, "".join(run.parts[:count]))
            run.flushed = count

    async def _end_turn(self, session: SessionRecord, active: ActiveTurn,
                        run: TurnRun) -> MessageRecord:
        """Save the reply's final state and free the session (one transaction, shared
        with turns ending at the same time); if that fails, free the session anyway (the
        reply keeps its last flush, and recovery marks it interrupted)."""
        try:
            await active.close_keeper()
            assert run.reply is not None  # set when the turn opened
            saved = replace(run.reply, content=run.text(), status=run.status(),
                            meta=run.meta())
            try:
                await self.store.end_turn(TurnEnd(session.id, active.turn_id, saved,
                                                  run.response_ms(), run.metrics()))
            except BaseException:
                await self.store.finish_turn(session.id, active.turn_id, None)
                raise
            return saved
        finally:
            self.turns.remove(active)

    # -- helpers -----------------------------------------------------------

    async def _claim(self, session_id: str) -> str:
        turn = await self.turns.claim(session_id)
        if turn is None:
            raise turn_in_progress(session_id)
        return turn

    async def _open_session(self, principal: Principal, session_id: str) -> SessionRecord:
        """The caller's open session, its persona still readable by the caller."""
        session = await self.get(principal, session_id)
        if session.status != "open":
            raise Conflict(f"session '{session_id}' is {session.status}; start a new one")
        await self._close_unless_readable(principal, session)
        return session

    async def _close_unless_readable(self, principal: Principal, session: SessionRecord) -> None:
        """Access is checked on every turn, not only when the session opened: a persona
        made private (or deleted) since then closes the session, naming the persona."""
        try:
            await self.prepared.personas.get(principal, session.persona_id)  # cached read
        except NotFound:
            await self.store.close_session(session.id)
            raise NotFound(f"persona '{session.persona_id}' is no longer available to you; "
                           "this session is closed",
                           {"persona": session.persona_id, "session": session.id}) from None

    async def _names(self, history: builtins.list[MessageRecord]) -> dict[str, str]:
        pinned = {(m.persona_id, m.persona_version) for m in history}
        return {persona_id: await self.prepared.shown_name(persona_id, version)
                for persona_id, version in pinned}

    async def _greet(self, session: SessionRecord,
                     persona: PreparedPersona) -> MessageRecord | None:
        """Save the persona's greeting, its macros substituted for this session's user."""
        greeting = persona.definition.greeting
        if not greeting:
            return None
        text = substitute(greeting, char=persona.definition.shown_name,
                          user=user_name_or_default(session.meta.get("user_name"))).strip()
        if not text:  # nothing but a comment
            return None
        return await self.store.add_message(session.id, "assistant", text,
                                            persona.persona_id, persona.version,
                                            meta={"greeting": True})


async def _fired_lore(persona: PreparedPersona,
                      texts: builtins.list[str]) -> builtins.list[FiredEntry]:
    """The persona's lore entries firing on this turn, scanned off the event loop
    (regular-expression keys may each take up to their timeout)."""
    if not persona.lore:
        return []
    return await asyncio.to_thread(persona.lore.fire, texts)


def turn_report(session: SessionRecord, run: TurnRun) -> TurnReport:
    """What observers learn of a finished turn: ids, outcome, timings, token counts."""
    finished, error, usage = run.finished, run.error, run.usage()
    provider = (finished.provider if finished is not None and finished.provider
                else getattr(error, "provider", None))
    return TurnReport(session.id, session.persona_id, session.persona_version, provider,
                      finished.model if finished is not None and finished.model else None,
                      run.status(), run.first_token_ms, run.response_ms(),
                      usage["prompt_tokens"], usage["completion_tokens"],
                      error.code if error is not None else None)


def turn_in_progress(session_id: str) -> TurnInProgress:
    return TurnInProgress(f"session '{session_id}' is already answering a message; "
                          "wait for that reply to finish, then send again")
