"""Personas behind the OpenAI chat-completions protocol, so any OpenAI client can use one.

``model`` names a persona the caller may read (unknown or unreadable: NotFound naming
it; archived: Conflict).

**Stateless (the default)**, like OpenAI's own API: the client sends the whole history.
The persona's system prompt goes first; the client's ``system`` (or ``developer``)
messages keep their place after it, as extra instructions; user and assistant messages
pass through unchanged. Generation settings are the persona's model settings, overridden
by the request's ``temperature``, ``max_completion_tokens`` (or ``max_tokens``),
``top_p``, ``stop`` and ``response_format`` (``json_schema``). Nothing is stored.

**Persisted into a session (opt in)**: name a session the caller owns with
``"metadata": {"session_id": "<id>"}`` in the body, or the ``X-Personae-Session``
header. The call then runs as one turn of that session (``ConversationService.send``):
the **last user message** is the turn's text and everything else the client sent is
ignored; the model sees the session's own history (with the persona's knowledge), and
both the user message and the reply are saved to it. ``model`` must be the session's
current persona; the persona's own generation settings apply (request overrides are
ignored); another user's session is NotFound; a call while the session is still
answering is Conflict (``turn_in_progress``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, TypeVar

from personae.auth.principal import Principal
from personae.conversations.engine import ConversationService
from personae.conversations.events import Delta, Done, TurnEvent, TurnFailed
from personae.errors import Conflict, NotFound, invalid_param
from personae.personas.prepared import PreparedPersona, PreparedPersonas
from personae.personas.schema import Status
from personae.personas.service import PersonaService
from personae.providers.base import (
    ChatMessage,
    Completion,
    Finished,
    GenerationSettings,
    StreamEvent,
    TextDelta,
    Usage,
)
from personae.providers.registry import ProviderRegistry
from personae.providers.streams import aclose_stream, collect

LIST_PAGE = 500
T = TypeVar("T")


# -- the request ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """A validated chat-completions request; only what Personae acts on is kept."""

    model: str
    messages: tuple[ChatMessage, ...]
    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None
    stop: tuple[str, ...] = ()
    json_schema: dict[str, Any] | None = None
    session_id: str | None = None
    stream: bool = False
    include_usage: bool = False

    def last_user_text(self) -> str:
        for message in reversed(self.messages):
            if message.role == "user":
                return message.content
        raise invalid_param("messages", "a session turn needs a user message")

    def settings(self, base: GenerationSettings) -> GenerationSettings:
        """The persona's settings with this request's overrides on top."""
        return replace(
            base,
            temperature=base.temperature if self.temperature is None else self.temperature,
            max_tokens=self.max_tokens or base.max_tokens,
            top_p=base.top_p if self.top_p is None else self.top_p,
            stop=self.stop or base.stop,
            json_schema=base.json_schema if self.json_schema is None else self.json_schema,
            stream=self.stream)


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
        persona: PreparedPersona = await _as_model(
            self.prepared.usable(principal, request.model), request.model)
        llm, settings = self.providers.resolve(persona.model)
        system = ChatMessage("system", persona.system_prompt)
        return llm.stream((system, *request.messages), request.settings(settings))

    async def complete(self, principal: Principal, request: ChatRequest) -> Completion:
        return await collect(await self.stream(principal, request))

    async def _session_turn(self, principal: Principal,
                            request: ChatRequest) -> AsyncIterator[StreamEvent]:
        assert request.session_id is not None
        session = await self.conversations.get(principal, request.session_id)
        if session.persona_id != request.model:
            raise invalid_param("model", f"session '{session.id}' talks to persona "
                                         f"'{session.persona_id}', not '{request.model}'")
        text = request.last_user_text()
        return _turn_events(await self.conversations.send(principal, session.id, text))


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
