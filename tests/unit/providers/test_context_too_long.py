"""A prompt longer than the model's context is the caller's to fix, not a provider fault.

The embedded model once answered a persona with a huge system prompt with a 502
``provider_error``; an upstream's ``context_length_exceeded`` was a 502 too. Both are
a 400 ``context_length_exceeded`` that says what to do, never retried, never sent to a
fallback, and never counted against the provider's circuit breaker.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from personae.config import ProviderConfig
from personae.errors import ContextTooLong, ProviderError
from personae.providers.base import ChatMessage, GenerationSettings
from personae.providers.chat_client import upstream_error
from personae.providers.fake import FakeOpenAIServer, ScriptedLLM
from personae.providers.llama_cpp import _provider_error
from personae.providers.openai_compat import OpenAICompatLLM
from personae.providers.resilience import CircuitBreaker, ResilientLLM
from personae.providers.streams import complete

HELLO = [ChatMessage("user", "hello there world")]
OPENAI_MESSAGE = ("This model's maximum context length is 8192 tokens. However, your "
                  "messages resulted in 10018 tokens. Please reduce the length of the messages.")


def _is_context_error(error: BaseException, provider: str) -> ContextTooLong:
    assert isinstance(error, ContextTooLong)
    assert (error.status, error.code, error.retryable) == (400, "context_length_exceeded", False)
    assert error.provider == provider and error.message.startswith(f"{provider}: ")
    assert "shorten the persona's prompt or the conversation" in error.message
    assert "larger context" in error.message
    return error


def test_the_embedded_models_overflow_is_a_context_error_with_its_counts() -> None:
    cause = ValueError("Requested tokens (1310815) exceed context window of 2048")
    error = _is_context_error(_provider_error(cause), "embedded")
    assert "1,310,815 tokens" in error.message and "2,048" in error.message
    assert error.details["prompt_tokens"] == 1310815
    assert error.details["context_window"] == 2048
    assert error.__cause__ is cause


def test_other_embedded_failures_stay_provider_errors() -> None:
    error = _provider_error(RuntimeError("llama_decode returned -3"))
    assert type(error) is ProviderError and error.status == 502


@pytest.mark.parametrize(("body", "prompt", "window"), [
    # OpenAI, Groq and others: the code, and the counts in the message
    (b'{"error": {"message": "' + OPENAI_MESSAGE.encode() + b'", "type": '
     b'"invalid_request_error", "param": "messages", "code": "context_length_exceeded"}}',
     10018, 8192),
    # llama.cpp's server: its own type, with the counts as fields
    (b'{"error": {"code": 400, "message": "the request exceeds the available context size",'
     b' "type": "exceed_context_size_error", "n_prompt_tokens": 5000, "n_ctx": 4096}}',
     5000, 4096),
    # a code alone, no counts
    (b'{"error": {"message": "too long", "code": "context_length_exceeded"}}', None, None),
])
def test_an_upstream_context_error_is_recognised(body: bytes, prompt: int | None,
                                                 window: int | None) -> None:
    error = _is_context_error(upstream_error("groq", 400, body), "groq")
    assert error.details.get("prompt_tokens") == prompt
    assert error.details.get("context_window") == window
    assert error.details["param"] == "messages"


@pytest.mark.parametrize(("status", "body"), [
    (400, b'{"error": {"message": "bad temperature", "code": "invalid_value"}}'),
    (500, b'{"error": {"message": "context_length_exceeded", "code": "server_error"}}'),
    (400, b"not json"),
])
def test_other_upstream_errors_are_not_context_errors(status: int, body: bytes) -> None:
    error = upstream_error("groq", status, body)
    assert type(error) is ProviderError and error.status == 502
    assert error.retryable is (status >= 500)


@pytest.fixture
async def upstream() -> AsyncIterator[tuple[FakeOpenAIServer, OpenAICompatLLM]]:
    async with FakeOpenAIServer() as server:
        config = ProviderConfig(kind="openai", base_url=server.base_url, model="fake-model")
        llm = OpenAICompatLLM("fake", config)
        yield server, llm
        await llm.aclose()


@pytest.mark.parametrize("stream", [True, False])
async def test_the_openai_kind_raises_it_for_an_upstream_400(
        upstream: tuple[FakeOpenAIServer, OpenAICompatLLM], stream: bool) -> None:
    server, llm = upstream
    server.fail_next(1, status=400, message=OPENAI_MESSAGE, code="context_length_exceeded")
    with pytest.raises(ContextTooLong) as raised:
        await complete(llm, HELLO, GenerationSettings(stream=stream))
    error = _is_context_error(raised.value, "fake")
    assert "10,018 tokens" in error.message and "8,192" in error.message
    assert error.details["upstream_message"] == OPENAI_MESSAGE


async def test_it_is_not_retried_not_sent_to_a_fallback_and_never_opens_the_breaker() -> None:
    too_long = ContextTooLong.for_prompt("primary", prompt_tokens=9000, context_window=4096)
    primary = ScriptedLLM("primary").queue(*[too_long] * 5)
    fallback = ScriptedLLM("fallback")
    breaker = CircuitBreaker(failures=2, reset_seconds=60)
    llm = ResilientLLM([primary, fallback], {"primary": breaker}, retries=3, timeout=5,
                       backoff_base=0.01)
    for attempt in range(1, 6):
        with pytest.raises(ContextTooLong):
            await complete(llm, HELLO, GenerationSettings())
        assert len(primary.requests) == attempt  # one call each: no retry
    assert fallback.requests == []
    assert breaker.state == "closed"
    reply = await complete(llm, [ChatMessage("user", "short now")], GenerationSettings())
    assert reply.text == "short now"  # the provider is served as before
