"""Any server that speaks OpenAI chat completions, chosen by configuration alone.

OpenAI, Groq, Ollama, vLLM, llama.cpp's server and Gemini's OpenAI endpoint differ
only in ``base_url``, key and model, so one adapter serves them all. The SDK's own
retries are off: retrying, fallback and the circuit breaker live in
:mod:`personae.providers.resilience`, which needs every failure to surface at once
and classified (``retryable``) by :func:`map_error`.

The SDK sends over aiohttp (its ``aiohttp`` extra) and its generic ``post`` returns
plain JSON dicts: building typed request and chunk models costs about three times
the HTTP exchange itself, and this is every turn's hot path.
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

import openai
from openai import AsyncOpenAI, AsyncStream, DefaultAioHttpClient

from personae.config import ProviderConfig, Settings
from personae.errors import ProviderError, ProviderTimeout, ProviderUnavailable
from personae.providers.base import (
    ChatMessage,
    Finished,
    GenerationSettings,
    StreamEvent,
    TextDelta,
    Usage,
    approximate_tokens,
)

# Local servers (Ollama, llama.cpp, vLLM) ignore the key, but the SDK insists on one;
# a placeholder also keeps OPENAI_API_KEY from leaking to a third-party base_url.
NO_KEY = "not-needed"


def _transport_errors() -> tuple[type[Exception], ...]:
    """openai 3.x sends over httpx2, 1.x over httpx; either may be installed."""
    errors: list[type[Exception]] = []
    for module in ("httpx2", "httpx"):
        try:
            errors.append(importlib.import_module(module).TransportError)
        except (ImportError, AttributeError):
            continue
    return tuple(errors)


TRANSPORT_ERRORS = _transport_errors()


def build_openai(name: str, config: ProviderConfig, settings: Settings) -> OpenAICompatLLM:
    """The ``openai`` kind's factory (a :data:`~personae.providers.kinds.ProviderFactory`)."""
    return OpenAICompatLLM(name, config)


class OpenAICompatLLM:
    """A provider backed by an OpenAI-compatible ``/chat/completions`` endpoint."""

    def __init__(self, name: str, config: ProviderConfig) -> None:
        self.name = name
        self.context_window = config.context_window
        self.model = config.model
        key = config.api_key.get_secret_value() if config.api_key else NO_KEY
        self._client = AsyncOpenAI(base_url=config.base_url, api_key=key,
                                   timeout=config.timeout_seconds, max_retries=0,
                                   http_client=DefaultAioHttpClient())

    def count_tokens(self, text: str) -> int:
        return approximate_tokens(text)

    async def aclose(self) -> None:
        await self._client.close()

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
        try:
            if settings.stream:
                async for delta in self._streamed(messages, settings, model, tally):
                    yield delta
            else:
                reply = await self._client.post(
                    "/chat/completions", cast_to=object,
                    body=build_request(messages, settings, model, stream=False))
                for text in tally.feed(reply, "message"):
                    yield TextDelta(text)
        except openai.APIError as exc:
            raise map_error(self.name, exc) from exc
        except TRANSPORT_ERRORS as exc:  # older SDKs let mid-stream drops through unwrapped
            raise ProviderUnavailable(self.name, f"connection failed: {exc}",
                                      retryable=True) from exc
        if tally.reason is None:
            raise ProviderError(self.name, "the reply ended without a finish reason",
                                retryable=True)
        usage = tally.usage or self._estimate(messages, "".join(tally.parts))
        reason = "length" if tally.reason == "length" else "stop"
        yield Finished(usage, reason, self.name, tally.model)

    async def _streamed(self, messages: Sequence[ChatMessage], settings: GenerationSettings,
                        model: str, tally: _Tally) -> AsyncIterator[TextDelta]:
        response = await self._client.post(
            "/chat/completions", cast_to=object, stream=True,
            stream_cls=AsyncStream[object],
            body=build_request(messages, settings, model, stream=True))
        try:
            async for chunk in response:
                for text in tally.feed(chunk, "delta"):
                    yield TextDelta(text)
        finally:
            await response.close()

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

    def feed(self, body: Any, part: str) -> list[str]:
        """Take in one chunk (``part="delta"``) or a whole reply (``"message"``).

        Returns its new text pieces. A body that is not the expected JSON shape is a
        provider fault, reported as such rather than as a crash.
        """
        if not isinstance(body, dict):
            raise ProviderError(self.provider, f"unexpected reply: {str(body)[:200]}",
                                retryable=True)
        self.model = body.get("model") or self.model
        usage = body.get("usage")
        if isinstance(usage, dict):
            self.usage = Usage(usage.get("prompt_tokens") or 0,
                               usage.get("completion_tokens") or 0)
        texts: list[str] = []
        for choice in body.get("choices") or ():
            content = (choice.get(part) or {}).get("content")
            if isinstance(content, str) and content:
                texts.append(content)
            self.reason = choice.get("finish_reason") or self.reason
        self.parts.extend(texts)
        return texts


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


def map_error(provider: str, exc: openai.APIError) -> ProviderError:
    """Classify an SDK error: what is worth retrying, and which status it becomes."""
    if isinstance(exc, openai.APITimeoutError) and not _refused(exc):
        return ProviderTimeout(provider, "timed out waiting for the server", retryable=True)
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__ or exc
        return ProviderUnavailable(provider, f"connection failed: {cause}",
                                   retryable=True)
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        retryable = status == 429 or status >= 500
        return ProviderError(provider, f"{status} {upstream_message(exc)}",
                             retryable=retryable, details={"status": status})
    return ProviderError(provider, f"stream failed: {upstream_message(exc)}", retryable=True)


def _refused(exc: BaseException) -> bool:
    """The aiohttp transport reports a refused connection as a connect *timeout*; the
    underlying OS error tells the two apart."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and not isinstance(seen, TimeoutError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def upstream_message(exc: openai.APIError) -> str:
    """The server's own explanation, without the SDK's ``Error code: ...`` wrapping."""
    body = exc.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        message = inner.get("message") if isinstance(inner, dict) else None
        if isinstance(message, str):
            return message
        if isinstance(inner, str):
            return inner
    return exc.message
