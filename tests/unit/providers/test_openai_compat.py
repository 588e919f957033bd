"""The OpenAI-compatible adapter against a real loopback server speaking the protocol."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from personae.config import ProviderConfig
from personae.errors import ProviderError, ProviderTimeout, ProviderUnavailable
from personae.providers.base import (
    ChatMessage,
    Finished,
    GenerationSettings,
    StreamEvent,
    TextDelta,
)
from personae.providers.fake import FakeOpenAIServer
from personae.providers.openai_compat import OpenAICompatLLM
from personae.providers.streams import complete

HELLO = [ChatMessage("system", "Be brief."), ChatMessage("user", "hello there world")]


@pytest.fixture
async def server() -> AsyncIterator[FakeOpenAIServer]:
    async with FakeOpenAIServer() as running:
        yield running


def make_llm(base_url: str, **config: Any) -> OpenAICompatLLM:
    options: dict[str, Any] = {"model": "fake-model", "timeout_seconds": 5.0, **config}
    return OpenAICompatLLM("fake", ProviderConfig(kind="openai", base_url=base_url, **options))


@pytest.fixture
async def llm(server: FakeOpenAIServer) -> AsyncIterator[OpenAICompatLLM]:
    provider = make_llm(server.base_url)
    yield provider
    await provider.aclose()


async def collect(llm: OpenAICompatLLM, settings: GenerationSettings | None = None,
                  messages: list[ChatMessage] = HELLO) -> list[StreamEvent]:
    return [event async for event in llm.stream(messages, settings or GenerationSettings())]


async def drain(stream: AsyncIterator[StreamEvent], seen: list[StreamEvent]) -> None:
    """Consume a stream, keeping what arrived before any failure."""
    async for event in stream:
        seen.append(event)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_streams_deltas_then_one_finished_with_usage(llm: OpenAICompatLLM) -> None:
    events = await collect(llm)
    deltas = [event.text for event in events if isinstance(event, TextDelta)]
    assert "".join(deltas) == "hello there world"  # deltas read together come as one
    assert all(deltas) and 1 <= len(deltas) <= 3
    assert events[-1] == Finished(usage=events[-1].usage, finish_reason="stop",
                                  provider="fake", model="fake-model")
    assert (events[-1].usage.prompt_tokens, events[-1].usage.completion_tokens) == (5, 3)
    assert sum(isinstance(event, Finished) for event in events) == 1


async def test_complete_collects_the_whole_reply(llm: OpenAICompatLLM) -> None:
    completion = await complete(llm, HELLO, GenerationSettings())
    assert completion.text == "hello there world"
    assert completion.provider == "fake" and 1 <= completion.deltas <= 3


async def test_whole_reply_is_fetched_without_a_stream(server: FakeOpenAIServer,
                                                      llm: OpenAICompatLLM) -> None:
    events = await collect(llm, GenerationSettings(stream=False, max_tokens=2))
    assert server.last_request.body["stream"] is False
    assert "stream_options" not in server.last_request.body
    assert events[0] == TextDelta("hello there")
    assert isinstance(events[-1], Finished) and len(events) == 2
    assert events[-1].finish_reason == "length"
    assert events[-1].usage.completion_tokens == 2


async def test_whole_reply_that_is_not_a_completion_is_a_provider_error() -> None:
    body = b'["not", "a", "completion"]'

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))
        await writer.drain()
        writer.close()

    listener = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    llm = make_llm(f"http://127.0.0.1:{port}/v1")
    try:
        with pytest.raises(ProviderError, match="unexpected reply") as raised:
            await collect(llm, GenerationSettings(stream=False))
        assert raised.value.provider == "fake" and raised.value.retryable
    finally:
        await llm.aclose()
        listener.close()


async def test_usage_is_estimated_when_the_server_sends_none(
        server: FakeOpenAIServer, llm: OpenAICompatLLM) -> None:
    server.send_usage = False
    completion = await complete(llm, HELLO, GenerationSettings())
    assert completion.usage.prompt_tokens > 0
    assert completion.usage.completion_tokens == llm.count_tokens("hello there world")


async def test_max_tokens_cut_reports_length(server: FakeOpenAIServer,
                                             llm: OpenAICompatLLM) -> None:
    completion = await complete(llm, HELLO, GenerationSettings(max_tokens=2))
    assert (completion.text, completion.finish_reason) == ("hello there", "length")


async def test_generation_settings_are_sent(server: FakeOpenAIServer,
                                            llm: OpenAICompatLLM) -> None:
    settings = GenerationSettings(model="other-model", temperature=0.3, max_tokens=40,
                                  top_p=0.9, stop=("END",))
    await complete(llm, HELLO, settings)
    body = server.last_request.body
    assert body["model"] == "other-model"
    assert (body["temperature"], body["max_tokens"], body["top_p"]) == (0.3, 40, 0.9)
    assert body["stop"] == ["END"]
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert server.last_request.messages == [{"role": "system", "content": "Be brief."},
                                            {"role": "user", "content": "hello there world"}]


async def test_unset_settings_are_left_to_the_server(server: FakeOpenAIServer,
                                                     llm: OpenAICompatLLM) -> None:
    await complete(llm, HELLO, GenerationSettings())
    body = server.last_request.body
    assert not {"temperature", "max_tokens", "top_p", "stop", "response_format"} & set(body)


async def test_json_schema_is_forwarded_as_response_format(server: FakeOpenAIServer,
                                                           llm: OpenAICompatLLM) -> None:
    schema = {"type": "object", "properties": {"mood": {"type": "string"}},
              "required": ["mood"], "additionalProperties": False}
    server.json_reply = {"mood": "calm"}
    completion = await complete(llm, HELLO, GenerationSettings(json_schema=schema))
    assert server.last_request.body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "output", "schema": schema, "strict": True},
    }
    assert json.loads(completion.text) == {"mood": "calm"}


async def test_concurrent_replies_reach_their_own_caller(server: FakeOpenAIServer,
                                                         llm: OpenAICompatLLM) -> None:
    server.reply = lambda body: f"reply to {body['messages'][-1]['content']}"

    async def ask(nonce: str) -> str:
        completion = await complete(llm, [ChatMessage("user", nonce)], GenerationSettings())
        return completion.text

    nonces = [f"nonce-{index}" for index in range(50)]
    replies = await asyncio.gather(*(ask(nonce) for nonce in nonces))
    assert replies == [f"reply to {nonce}" for nonce in nonces]


async def test_bad_request_is_not_retryable_and_keeps_the_upstream_message(
        server: FakeOpenAIServer, llm: OpenAICompatLLM) -> None:
    server.fail_next(1, status=400, message="model 'x' does not support json_schema")
    with pytest.raises(ProviderError) as caught:
        await collect(llm)
    error = caught.value
    assert type(error) is ProviderError and error.status == 502
    assert not error.retryable
    assert error.message == "fake: 400 model 'x' does not support json_schema"
    assert error.details == {"provider": "fake", "status": 400}


@pytest.mark.parametrize("status", [429, 500, 503])
async def test_rate_limits_and_server_errors_are_retryable(
        server: FakeOpenAIServer, llm: OpenAICompatLLM, status: int) -> None:
    server.fail_next(1, status=status)
    with pytest.raises(ProviderError) as caught:
        await collect(llm)
    assert caught.value.retryable
    assert caught.value.details["status"] == status
    assert (await complete(llm, HELLO, GenerationSettings())).text == "hello there world"


async def test_slow_server_raises_provider_timeout(server: FakeOpenAIServer) -> None:
    server.hang = True
    llm = make_llm(server.base_url, timeout_seconds=0.3)
    started = time.monotonic()
    with pytest.raises(ProviderTimeout) as caught:
        await collect(llm)
    assert caught.value.retryable and caught.value.status == 504
    assert time.monotonic() - started < 1.3
    await llm.aclose()


async def test_unreachable_server_is_unavailable() -> None:
    llm = make_llm(f"http://127.0.0.1:{free_port()}/v1")
    with pytest.raises(ProviderUnavailable) as caught:
        await collect(llm)
    assert caught.value.retryable and caught.value.status == 503
    await llm.aclose()


@pytest.mark.parametrize("with_error_event", [False, True])
async def test_failure_after_a_delta_still_raises(server: FakeOpenAIServer,
                                                  llm: OpenAICompatLLM,
                                                  with_error_event: bool) -> None:
    server.interrupt_after, server.interrupt_with_error = 1, with_error_event
    seen: list[StreamEvent] = []
    with pytest.raises(ProviderError) as caught:
        await drain(llm.stream(HELLO, GenerationSettings()), seen)
    assert seen == [TextDelta("hello")]
    assert caught.value.retryable
    if with_error_event:  # the server's own explanation, from the error event
        assert caught.value.message == "fake: stream failed: fake failure mid-stream"
    else:
        assert isinstance(caught.value, ProviderUnavailable)


async def test_missing_model_is_a_configuration_error(server: FakeOpenAIServer) -> None:
    llm = make_llm(server.base_url, model=None)
    with pytest.raises(ProviderError, match="no model configured") as caught:
        await collect(llm)
    assert not caught.value.retryable
    assert server.chat_count == 0
    await llm.aclose()


async def test_api_key_is_sent_as_bearer_token(server: FakeOpenAIServer) -> None:
    llm = make_llm(server.base_url, api_key="sk-test")
    await complete(llm, HELLO, GenerationSettings())
    assert server.last_request.headers["authorization"] == "Bearer sk-test"
    await llm.aclose()


async def test_fake_server_answers_without_streaming_and_lists_models(
        server: FakeOpenAIServer) -> None:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=5) as client:
        reply = await client.post("/chat/completions", json={
            "model": "m", "messages": [{"role": "user", "content": "one two"}]})
        models = await client.get("/models")
    body = reply.json()
    assert body["choices"][0]["message"] == {"role": "assistant", "content": "one two"}
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"] == {"prompt_tokens": 2, "completion_tokens": 2, "total_tokens": 4}
    assert [model["id"] for model in models.json()["data"]] == ["fake-model"]
