"""Personas behind the OpenAI chat-completions protocol, so any OpenAI client can use one.

``model`` names a persona the caller may read (unknown or unreadable: NotFound naming
it; archived: Conflict).

**Stateless (the default)**, like OpenAI's own API: the client sends the whole history.
The persona's system prompt goes first (with the lore entries the client's messages
fire, and ``{{user}}`` as ``user_name``, else "User"); the client's ``system`` (or
``developer``) messages keep their place after it, as extra instructions; user and
assistant messages pass through unchanged; the persona's
``post_history_instructions``, if any, come last. Nothing is stored. ``n`` > 1 runs
that many generations at once (``stream_choices``, ``complete_choices``); with a
``seed``, choice i uses ``seed + i``.

**Persisted into a session (opt in)**: name a session the caller owns with
``"metadata": {"session_id": "<id>"}`` in the body, or the ``X-Personae-Session``
header. The call then runs as one turn of that session (``ConversationService.send``):
the **last user message** is the turn's text and every other message the client sent
is ignored; the model sees the session's own history (with the persona's knowledge),
and both the user message and the reply are saved to it. ``model`` must be the
session's current persona; ``n`` must be 1; another user's session is NotFound; a call
while the session is still answering is Conflict (``turn_in_progress``).

**Generation settings**, in both modes, are the persona's model settings with the
request's own on top (:class:`~personae.providers.base.GenerationOverrides`):
``temperature``, ``max_completion_tokens`` (or ``max_tokens``), ``top_p``, ``stop``,
``seed``, ``presence_penalty``, ``frequency_penalty``, ``response_format``
(``json_object`` or ``json_schema``) and ``user`` (the end user's id, passed to
OpenAI-compatible upstreams).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, TypeVar

from cachetools import LRUCache

from personae.auth.principal import Principal
from personae.conversations.context import persona_system, post_history_message
from personae.conversations.engine import ConversationService
from personae.conversations.events import Delta, Done, TurnEvent, TurnFailed
from personae.errors import Conflict, NotFound, invalid_param
from personae.personas.lore import FiredEntry
from personae.personas.macros import user_name_or_default
from personae.personas.prepared import PreparedPersona, PreparedPersonas
from personae.personas.schema import Status
from personae.personas.service import PersonaService
from personae.providers.base import (
    LLM,
    NO_OVERRIDES,
    ChatMessage,
    Completion,
    Finished,
    GenerationOverrides,
    GenerationSettings,
    StreamEvent,
    TextDelta,
    Usage,
)
from personae.providers.registry import ProviderRegistry
from personae.providers.streams import aclose_stream, collect

LIST_PAGE = 500
FRAMINGS_CACHED = 1024  # (persona version, user name) pairs whose framing is kept
T = TypeVar("T")
ChoiceEvent = tuple[int, StreamEvent]  # (choice index, event)


# -- the request ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """A validated chat-completions request; only what Personae acts on is kept."""

    model: str
    messages: tuple[ChatMessage, ...]
    overrides: GenerationOverrides = NO_OVERRIDES  # the caller's settings, in both modes
    session_id: str | None = None
    stream: bool = False
    include_usage: bool = False
    n: int = 1  # choices (stateless only)
    user_name: str | None = None  # the caller's display name, for ``{{user}}``

    def last_user_text(self) -> str:
        for message in reversed(self.messages):
            if message.role == "user":
                return message.content
        raise invalid_param("messages", "a session turn needs a user message")

    def settings(self, base: GenerationSettings) -> GenerationSettings:
        """The persona's settings with this request's overrides on top."""
        settings = base if self.overrides is NO_OVERRIDES else self.overrides.apply(base)
        return settings if settings.stream == self.stream else replace(settings,
                                                                        stream=self.stream)

    def choice_settings(self, base: GenerationSettings) -> list[GenerationSettings]:
        """One per choice; with a ``seed``, choice i gets ``seed + i``, so choices differ
        from each other and each is reproducible."""
        settings = self.settings(base)
        if settings.seed is None:
            return [settings] * self.n
        return [replace(settings, seed=settings.seed + index) for index in range(self.n)]


# -- the gateway ---------------------------------------------------------------------


def model_object(persona_id: str, owner_id: str | None, created: datetime) -> dict[str, Any]:
    """A persona as an OpenAI model entry."""
    return {"id": persona_id, "object": "model", "created": int(created.timestamp()),
            "owned_by": owner_id or "global"}


class ChatGateway:
    """Runs OpenAI-shaped chat requests against personas (no HTTP here)."""

    def __init__(self, personas: PersonaService, prepared: PreparedPersonas,
                 providers: ProviderRegistry, conversations: ConversationService) -> None:
        self.personas = personas
        self.prepared = prepared
        self.providers = providers
        self.conversations = conversations
        self._framings = _Framings()

    async def models(self, principal: Principal) -> list[dict[str, Any]]:
        """Every active persona the caller can read."""
        found: list[dict[str, Any]] = []
        while True:
            page = await self.personas.list(principal, limit=LIST_PAGE, offset=len(found),
                                            status=Status.active)
            found.extend(model_object(s.id, s.owner_id, s.updated_at) for s in page.data)
            if not page.data or len(found) >= page.count:
                return found

    async def model(self, principal: Principal, persona_id: str) -> dict[str, Any]:
        record = await _as_model(self.personas.usable(principal, persona_id), persona_id)
        return model_object(record.id, record.owner_id, record.updated_at)

    async def stream(self, principal: Principal,
                     request: ChatRequest) -> AsyncIterator[StreamEvent]:
        """Deltas, then one Finished. Access errors raise here; provider errors on the
        first ``anext`` (nothing was sent yet) or later (the reply is cut short)."""
        if request.session_id is not None:
            return await self._session_turn(principal, request)
        llm, messages, settings = await self._stateless(principal, request)
        return llm.stream(messages, settings[0])

    async def complete(self, principal: Principal, request: ChatRequest) -> Completion:
        """The first choice, whole."""
        return await collect(await self.stream(principal, request))

    async def stream_choices(self, principal: Principal,
                             request: ChatRequest) -> AsyncIterator[ChoiceEvent]:
        """Every choice's events as they come, each tagged with its index (0..n-1); the
        ``n`` generations run at once. A failure of any one ends them all."""
        if request.session_id is not None:  # the session's turn frames its own deltas
            return _indexed(await self.stream(principal, request))
        llm, messages, settings = await self._stateless(principal, request)
        frames = self.conversations.frames
        if request.n == 1:
            return _indexed(frames.apply(llm.stream(messages, settings[0])))
        return _merged([frames.apply(llm.stream(messages, each)) for each in settings])

    async def complete_choices(self, principal: Principal,
                               request: ChatRequest) -> list[Completion]:
        """Every choice, whole, in index order; the generations run at once."""
        if request.n == 1 or request.session_id is not None:
            return [await self.complete(principal, request)]
        llm, messages, settings = await self._stateless(principal, request)
        return await _all([collect(llm.stream(messages, each)) for each in settings])

    async def _stateless(self, principal: Principal, request: ChatRequest
                         ) -> tuple[LLM, list[ChatMessage], list[GenerationSettings]]:
        """The persona's model, what it is sent, and each choice's settings."""
        persona: PreparedPersona = await _as_model(
            self.prepared.usable(principal, request.model), request.model)
        llm, settings = self.providers.resolve(persona.model)
        messages = await _stateless_messages(persona, request, llm.count_tokens,
                                             self._framings)
        return llm, messages, request.choice_settings(settings)

    async def _session_turn(self, principal: Principal,
                            request: ChatRequest) -> AsyncIterator[StreamEvent]:
        assert request.session_id is not None
        if request.n != 1:
            raise invalid_param("n", "a session turn has one reply; ask for several "
                                     "choices without a session")
        session = await self.conversations.get(principal, request.session_id)
        if session.persona_id != request.model:
            raise invalid_param("model", f"session '{session.id}' talks to persona "
                                         f"'{session.persona_id}', not '{request.model}'")
        text = request.last_user_text()
        return _turn_events(await self.conversations.send(principal, session.id, text,
                                                          request.overrides))


Framing = tuple[ChatMessage, ChatMessage | None]  # the persona's messages around the client's


class _Framings:
    """The persona's system and post-history messages for a request that fires no lore:
    the same for every request to one version with one user name, so built once."""

    def __init__(self, entries: int = FRAMINGS_CACHED) -> None:
        self._built: LRUCache[tuple[str, int, str], Framing] = LRUCache(entries)

    def get(self, persona: PreparedPersona, user_name: str) -> Framing:
        key = (persona.persona_id, persona.version, user_name)
        found = self._built.get(key)
        if found is None:
            found = self._built[key] = _framing(persona, [], user_name)
        return found


def _framing(persona: PreparedPersona, lore: list[FiredEntry], user_name: str) -> Framing:
    system = persona_system(persona.system_prompt, lore=lore,
                            char=persona.definition.shown_name, user=user_name)
    return ChatMessage("system", system), post_history_message(persona.post_history,
                                                               user_name)


async def _stateless_messages(persona: PreparedPersona, request: ChatRequest,
                              count: Callable[[str], int],
                              framings: _Framings) -> list[ChatMessage]:
    """The persona's system message (its lore fired by the client's messages, macros
    substituted for ``user_name``), the client's messages, then any
    ``post_history_instructions``."""
    user_name = user_name_or_default(request.user_name)
    lore: list[FiredEntry] = []
    if persona.lore:
        texts = [m.content for m in request.messages if m.role in ("user", "assistant")]
        fired = await asyncio.to_thread(persona.lore.fire, texts)
        lore = persona.lore.fit(fired, count, user_name)
    system, after = _framing(persona, lore, user_name) if lore else framings.get(
        persona, user_name)
    return [system, *request.messages, *([after] if after else [])]


async def _as_model(lookup: Awaitable[T], persona_id: str) -> T:
    """A persona lookup whose errors speak of the ``model`` parameter, as OpenAI's do."""
    try:
        return await lookup
    except NotFound:
        raise NotFound(f"model '{persona_id}' not found: no persona with that id is "
                       "readable with your key (GET /v1/models lists them)",
                       {"param": "model"}) from None
    except Conflict as exc:
        raise Conflict(f"model '{persona_id}': {exc.message}",
                       {**exc.details, "param": "model"}) from None


async def _turn_events(events: AsyncIterator[TurnEvent]) -> AsyncIterator[StreamEvent]:
    """A session turn's events as provider events; the turn is released on close."""
    try:
        async for event in events:
            if isinstance(event, Delta):
                yield TextDelta(event.text)
            elif isinstance(event, Done):
                meta = event.message.meta
                usage = Usage(event.usage.get("prompt_tokens", 0),
                              event.usage.get("completion_tokens", 0))
                yield Finished(usage, meta.get("finish_reason", "stop"),
                               meta.get("provider", ""), meta.get("model", ""))
            elif isinstance(event, TurnFailed):
                raise event.error
    finally:
        await aclose_stream(events)


async def _indexed(events: AsyncIterator[StreamEvent]) -> AsyncIterator[ChoiceEvent]:
    """One stream as choice 0."""
    try:
        async for event in events:
            yield 0, event
    finally:
        await aclose_stream(events)


async def _merged(streams: list[AsyncIterator[StreamEvent]]) -> AsyncIterator[ChoiceEvent]:
    """The streams' events as they come, tagged with each stream's index. The first
    failure is raised and stops the others; leaving early stops them all."""
    queue: asyncio.Queue[tuple[int, StreamEvent | Exception | None]] = asyncio.Queue(
        maxsize=8 * len(streams))

    async def pump(index: int, events: AsyncIterator[StreamEvent]) -> None:
        try:
            async for event in events:
                await queue.put((index, event))
        except Exception as exc:
            await queue.put((index, exc))
            return
        finally:
            await aclose_stream(events)
        await queue.put((index, None))

    tasks = [asyncio.create_task(pump(index, events)) for index, events in enumerate(streams)]
    try:
        running = len(tasks)
        while running:
            index, item = await queue.get()
            if item is None:
                running -= 1
            elif isinstance(item, Exception):
                raise item
            else:
                yield index, item
    finally:
        await _cancel(tasks)


async def _all(calls: list[Coroutine[Any, Any, T]]) -> list[T]:
    """Run the calls at once; the first failure is raised and cancels the others."""
    tasks = [asyncio.create_task(call) for call in calls]
    try:
        return list(await asyncio.gather(*tasks))
    finally:
        await _cancel(tasks)


async def _cancel(tasks: list[asyncio.Task[Any]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
