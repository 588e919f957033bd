"""Any server that speaks OpenAI chat completions, chosen by configuration alone.

OpenAI, Groq, Ollama, vLLM, llama.cpp's server and Gemini's OpenAI endpoint differ
only in ``base_url``, key and model, so one adapter serves them all, over the small
protocol client in :mod:`personae.providers.chat_client`. It does not retry:
retrying, fallback and the circuit breaker live in
:mod:`personae.providers.resilience`, which needs every failure to surface at once
and classified (``retryable``, see :func:`~personae.providers.chat_client.map_error`).

A streamed reply's deltas are handed on one per read of the socket: when several
arrived together (a fast model, a busy server) they become one ``TextDelta``, so
everything downstream does its per-delta work once for them.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Sequence
from typing import Any

from personae.config import ProviderConfig, Settings
from personae.errors import ProviderError
from personae.providers.base import (
    ChatMessage,
    Finished,
    GenerationSettings,
    StreamEvent,
    TextDelta,
    Usage,
    approximate_tokens,
)
from personae.providers.chat_client import DEFAULT_BASE_URL, ChatClient, map_error

__all__ = ["OpenAICompatLLM", "build_openai", "build_request", "map_error"]


def build_openai(name: str, config: ProviderConfig, settings: Settings) -> OpenAICompatLLM:
    """The ``openai`` kind's factory (a :data:`~personae.providers.kinds.ProviderFactory`)."""
    return OpenAICompatLLM(name, config)


class OpenAICompatLLM:
    """A provider backed by an OpenAI-compatible ``/chat/completions`` endpoint.

    Without ``base_url``, ``OPENAI_BASE_URL`` or OpenAI's own API is used; without a
    key, none is sent (local servers need none, and ``OPENAI_API_KEY`` is never sent
    to a server it was not configured for)."""

    def __init__(self, name: str, config: ProviderConfig) -> None:
        self.name = name
        self.context_window = config.context_window
        self.model = config.model
        base_url = config.base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL
        key = config.api_key.get_secret_value() if config.api_key else None
        self._client = ChatClient(name, base_url, key, timeout=config.timeout_seconds,
                                  max_connections=config.max_connections)

    def count_tokens(self, text: str) -> int:
        return approximate_tokens(text)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def stream(self, messages: Sequence[ChatMessage],
                     settings: GenerationSettings) -> AsyncIterator[StreamEvent]:
        """Stream deltas, then one ``Finished``; any failure raises a ProviderError.

        A failure after deltas were yielded still raises, so the caller can mark the
        reply as interrupted instead of mistaking a fragment for a whole answer.
        """
        model = settings.model or self.model
        if not model:
            raise ProviderError(self.name, "no model configured for this provider or persona")
        tally = _Tally(self.name, model)
        body = build_request(messages, settings, model, stream=settings.stream)
        if settings.stream:
            async for chunks in self._client.stream(body):
                text = tally.feed(chunks, "delta")
                if text:
                    yield TextDelta(text)
        else:
            text = tally.feed([await self._client.complete(body)], "message")
            if text:
                yield TextDelta(text)
        if tally.reason is None:
            raise ProviderError(self.name, "the reply ended without a finish reason",
                                retryable=True)
        usage = tally.usage or self._estimate(messages, "".join(tally.parts))
        reason = "length" if tally.reason == "length" else "stop"
        yield Finished(usage, reason, self.name, tally.model)

    def _estimate(self, messages: Sequence[ChatMessage], reply: str) -> Usage:
        """Usage for servers that ignore ``stream_options.include_usage``."""
        prompt = sum(self.count_tokens(message.content) for message in messages)
        return Usage(prompt, self.count_tokens(reply))


class _Tally:
    """What a stream has said so far: its text, usage, finish reason and served model."""

    def __init__(self, provider: str, model: str) -> None:
        self.provider = provider
        self.model = model
        self.parts: list[str] = []
        self.usage: Usage | None = None
        self.reason: str | None = None

    def feed(self, bodies: list[Any], part: str) -> str:
        """Take in chunks (``part="delta"``) or a whole reply (``"message"``).

        Returns their new text, joined. A body that is not the expected JSON shape is
        a provider fault, reported as such rather than as a crash.
        """
        texts: list[str] = []
        for body in bodies:
            if not isinstance(body, dict):
                raise ProviderError(self.provider, f"unexpected reply: {str(body)[:200]}",
                                    retryable=True)
            self.model = body.get("model") or self.model
            usage = body.get("usage")
            if isinstance(usage, dict):
                self.usage = Usage(usage.get("prompt_tokens") or 0,
                                   usage.get("completion_tokens") or 0)
            for choice in body.get("choices") or ():
                content = (choice.get(part) or {}).get("content")
                if isinstance(content, str) and content:
                    texts.append(content)
                self.reason = choice.get("finish_reason") or self.reason
        text = "".join(texts)
        if text:
            self.parts.append(text)
        return text


def build_request(messages: Sequence[ChatMessage], settings: GenerationSettings,
                  model: str, *, stream: bool = True) -> dict[str, Any]:
    """The request body; unset options are left out so servers use their defaults.
    ``user`` is the end user the caller acts for (OpenAI's abuse-monitoring id)."""
    request: dict[str, Any] = {
        "model": model,
        "messages": [{"role": m.role, "content": m.content} for m in messages],
        "stream": stream,
    }
    if stream:
        request["stream_options"] = {"include_usage": True}
    optional = {"temperature": settings.temperature, "max_tokens": settings.max_tokens,
                "top_p": settings.top_p, "stop": list(settings.stop) or None,
                "seed": settings.seed, "presence_penalty": settings.presence_penalty,
                "frequency_penalty": settings.frequency_penalty, "user": settings.user}
    request.update({key: value for key, value in optional.items() if value is not None})
    if settings.json_schema is not None:
        request["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "output", "schema": settings.json_schema, "strict": True},
        }
    elif settings.json_object:
        request["response_format"] = {"type": "json_object"}
    return request
