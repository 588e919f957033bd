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

from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from personae.auth.principal import Principal
from personae.conversations.engine import ConversationService
from personae.conversations.events import Delta, Done, TurnEvent, TurnFailed
from personae.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    PersonaeError,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
)
from personae.personas.records import PersonaRecord
from personae.personas.schema import Status
from personae.personas.service import PersonaService
from personae.providers.base import (
    ChatMessage,
    Completion,
    Finished,
    GenerationSettings,
    Role,
    StreamEvent,
    TextDelta,
    Usage,
)
from personae.providers.registry import ProviderRegistry

SESSION_HEADER = "x-personae-session"
LIST_PAGE = 500
MAX_STOP_SEQUENCES = 4
_ROLES: dict[str, Role] = {"system": "system", "developer": "system", "user": "user",
                           "assistant": "assistant"}
_PROVIDER_ERRORS: dict[int, type[ProviderError]] = {
    502: ProviderError, 503: ProviderUnavailable, 504: ProviderTimeout}
_TURN_ERRORS: dict[int, type[PersonaeError]] = {400: InvalidInput, 404: NotFound, 409: Conflict}


def _invalid(param: str, problem: str) -> InvalidInput:
    """A 400 that names the field, also as ``param`` (OpenAI clients show it)."""
    return InvalidInput(f"{param}: {problem}", {"param": param})


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

    @classmethod
    def from_openai(cls, body: Any, session_header: str | None = None) -> ChatRequest:
        """Parse an OpenAI request body; unknown fields are ignored, as OpenAI clients
        send many (``user``, ``seed``, ...) that have no meaning here."""
        if not isinstance(body, dict):
            raise InvalidInput("the request body must be a JSON object")
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise _invalid("model", "name a persona id (GET /v1/models lists them)")
        _unsupported(body)
        stream_options = body.get("stream_options") or {}
        return cls(
            model=model, messages=_messages(body.get("messages")),
            temperature=_number(body, "temperature", 0.0, 2.0),
            max_tokens=_max_tokens(body), top_p=_number(body, "top_p", 0.0, 1.0, open_low=True),
            stop=_stop(body.get("stop")), json_schema=_json_schema(body.get("response_format")),
            session_id=_session_id(body.get("metadata")) or session_header or None,
            stream=_flag(body, "stream"),
            include_usage=isinstance(stream_options, dict)
            and stream_options.get("include_usage") is True)

    def last_user_text(self) -> str:
        for message in reversed(self.messages):
            if message.role == "user":
                return message.content
        raise _invalid("messages", "a session turn needs a user message")

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


def _messages(raw: Any) -> tuple[ChatMessage, ...]:
    if not isinstance(raw, list) or not raw:
        raise _invalid("messages", "must be a non-empty list of {role, content} objects")
    return tuple(_message(index, item) for index, item in enumerate(raw))


def _message(index: int, raw: Any) -> ChatMessage:
    where = f"messages[{index}]"
    if not isinstance(raw, dict):
        raise _invalid(where, "must be an object with 'role' and 'content'")
    role = raw.get("role")
    if not isinstance(role, str) or role not in _ROLES:
        raise _invalid(f"{where}.role", f"must be 'system', 'user' or 'assistant', got {role!r}")
    return ChatMessage(_ROLES[role], _content(f"{where}.content", raw.get("content")))


def _content(where: str, raw: Any) -> str:
    if isinstance(raw, str):
        return raw
    if not isinstance(raw, list):
        raise _invalid(where, "must be a string or a list of text parts")
    texts = []
    for index, part in enumerate(raw):
        if not (isinstance(part, dict) and part.get("type") == "text"
                and isinstance(part.get("text"), str)):
            raise _invalid(f"{where}[{index}]", 'only {"type": "text", "text": ...} parts '
                                                "are supported")
        texts.append(part["text"])
    return "".join(texts)


def _number(body: dict[str, Any], name: str, low: float, high: float, *,
            open_low: bool = False) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if (isinstance(value, bool) or not isinstance(value, int | float)
            or not (low < value if open_low else low <= value) or value > high):
        bound = f"above {low:g}" if open_low else f"from {low:g}"
        raise _invalid(name, f"must be a number {bound} to {high:g}, got {value!r}")
    return float(value)


def _max_tokens(body: dict[str, Any]) -> int | None:
    name = "max_completion_tokens" if body.get("max_completion_tokens") is not None \
        else "max_tokens"
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _invalid(name, f"must be a positive integer, got {value!r}")
    return value


def _stop(raw: Any) -> tuple[str, ...]:
    if raw is None:
        return ()
    stops = [raw] if isinstance(raw, str) else raw
    if (not isinstance(stops, list) or len(stops) > MAX_STOP_SEQUENCES
            or not all(isinstance(s, str) and s for s in stops)):
        raise _invalid("stop", f"must be a string or a list of up to {MAX_STOP_SEQUENCES} "
                               "non-empty strings")
    return tuple(stops)


def _json_schema(raw: Any) -> dict[str, Any] | None:
    if raw is None:
        return None
    kind = raw.get("type") if isinstance(raw, dict) else None
    if kind == "text":
        return None
    if kind != "json_schema":
        raise _invalid("response_format.type", f"must be 'text' or 'json_schema', got {kind!r}")
    wrapper = raw.get("json_schema")
    schema = wrapper.get("schema") if isinstance(wrapper, dict) else None
    if not isinstance(schema, dict):
        raise _invalid("response_format.json_schema.schema", "must be a JSON schema object")
    return schema


def _session_id(metadata: Any) -> str | None:
    if metadata is None:
        return None
    if not isinstance(metadata, dict):
        raise _invalid("metadata", "must be an object of strings")
    value = metadata.get("session_id")
    if value is not None and (not isinstance(value, str) or not value):
        raise _invalid("metadata.session_id", "must be a session id string")
    return value


def _flag(body: dict[str, Any], name: str) -> bool:
    value = body.get(name)
    if value is not None and not isinstance(value, bool):
        raise _invalid(name, f"must be true or false, got {value!r}")
    return bool(value)


def _unsupported(body: dict[str, Any]) -> None:
    """Refuse what would silently change the answer's meaning if ignored."""
    n = body.get("n")
    if n is not None and n != 1:
        raise _invalid("n", "only one choice per request is supported")
    if body.get("tools") or body.get("functions"):
        raise _invalid("tools", "tool calling is not supported by personas")


# -- the gateway ---------------------------------------------------------------------


def model_object(persona_id: str, owner_id: str | None, created: datetime) -> dict[str, Any]:
    """A persona as an OpenAI model entry."""
    return {"id": persona_id, "object": "model", "created": int(created.timestamp()),
            "owned_by": owner_id or "global"}


class ChatGateway:
    """Runs OpenAI-shaped chat requests against personas (no HTTP here)."""

    def __init__(self, personas: PersonaService, providers: ProviderRegistry,
                 conversations: ConversationService) -> None:
        self.personas = personas
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
        record = await self._usable(principal, persona_id)
        return model_object(record.id, record.owner_id, record.updated_at)

    async def stream(self, principal: Principal,
                     request: ChatRequest) -> AsyncIterator[StreamEvent]:
        """Deltas, then one Finished. Access errors raise here; provider errors on the
        first ``anext`` (nothing was sent yet) or later (the reply is cut short)."""
        if request.session_id is not None:
            return await self._session_turn(principal, request)
        record = await self._usable(principal, request.model)
        llm, settings = self.providers.resolve(record.definition.model)
        return llm.stream((self._system(record), *request.messages), request.settings(settings))

    async def complete(self, principal: Principal, request: ChatRequest) -> Completion:
        events = await self.stream(principal, request)
        parts: list[str] = []
        finished = Finished(Usage())
        try:
            async for event in events:
                if isinstance(event, TextDelta):
                    parts.append(event.text)
                else:
                    finished = event
        finally:
            await aclose_stream(events)
        return Completion("".join(parts), finished.usage, finished.finish_reason,
                          finished.provider, finished.model, len(parts))

    async def _usable(self, principal: Principal, persona_id: str) -> PersonaRecord:
        try:
            record = (await self.personas.get(principal, persona_id)).record
        except NotFound:
            raise NotFound(f"model '{persona_id}' not found: no persona with that id is "
                           "readable with your key (GET /v1/models lists them)",
                           {"param": "model"}) from None
        if record.status is Status.archived:
            raise Conflict(f"model '{persona_id}': the persona is archived; restore it to "
                           "talk to it", {"param": "model"})
        return record

    def _system(self, record: PersonaRecord) -> ChatMessage:
        """The persona's system prompt, rendered once per version (shared with sessions)."""
        prepared = self.conversations.versions.prepare(record.id, record.version,
                                                       record.definition)
        return ChatMessage("system", prepared.system_prompt)

    async def _session_turn(self, principal: Principal,
                            request: ChatRequest) -> AsyncIterator[StreamEvent]:
        assert request.session_id is not None
        session = await self.conversations.get(principal, request.session_id)
        if session.persona_id != request.model:
            raise _invalid("model", f"session '{session.id}' talks to persona "
                                    f"'{session.persona_id}', not '{request.model}'")
        text = request.last_user_text()
        return _turn_events(await self.conversations.send(principal, session.id, text))


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
                raise turn_error(event)
    finally:
        await aclose_stream(events)


def turn_error(failed: TurnFailed) -> PersonaeError:
    """A failed turn as the exception a stateless call would have raised."""
    provider_error = _PROVIDER_ERRORS.get(failed.status)
    if provider_error is not None:
        provider, _, cause = failed.message.partition(": ")
        return provider_error(provider, cause or failed.message)
    return _TURN_ERRORS.get(failed.status, PersonaeError)(failed.message)


async def aclose_stream(events: AsyncIterator[Any]) -> None:
    """Close a stream now, so its provider call (or session turn) is released at once."""
    close = getattr(events, "aclose", None)
    if close is not None:
        await close()
