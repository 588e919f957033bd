"""The chat-completions protocol client: SSE reading, grouping per read, connections.

Where the exact bytes or their timing matter, the upstream is a bare loopback HTTP
server written here, which sends what each test scripts and counts its connections.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from personae.config import ProviderConfig
from personae.errors import ProviderError
from personae.providers.base import (
    ChatMessage,
    Finished,
    GenerationSettings,
    StreamEvent,
    TextDelta,
)
from personae.providers.chat_client import EventDecoder, upstream_message
from personae.providers.fake import FakeOpenAIServer
from personae.providers.openai_compat import OpenAICompatLLM
from personae.providers.streams import complete

HELLO = [ChatMessage("user", "hello there world")]
Writer = Callable[[asyncio.StreamWriter], Awaitable[None]]


def sse_event(payload: Any) -> bytes:
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
    return sse_event({"model": "m", "choices": [{"index": 0, "delta": delta,
                                                  "finish_reason": finish}]})


REPLY_HEAD = (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
              b"Connection: close\r\n\r\n" + chunk({"role": "assistant", "content": ""}))
REPLY_END = chunk({}, "stop") + b"data: [DONE]\n\n"


class ScriptedUpstream:
    """Answers every request with ``answer(writer)``; counts connections, and the most
    that were open at once."""

    def __init__(self, answer: Writer) -> None:
        self.answer = answer
        self.connections = self.open = self.most_open = 0
        self.all_closed = asyncio.Event()
        self._server: asyncio.Server | None = None

    @property
    def base_url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}/v1"

    async def __aenter__(self) -> ScriptedUpstream:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open += 1
        self.most_open = max(self.most_open, self.open)
        self.all_closed.clear()
        try:
            while await _read_request(reader):
                await self.answer(writer)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()
            self.open -= 1
            if not self.open:
                self.all_closed.set()


async def _read_request(reader: asyncio.StreamReader) -> bool:
    """One request's head and body; False when the client closed the connection."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return False
    length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    await reader.readexactly(length)
    return True


async def drain(stream: AsyncIterator[StreamEvent], seen: list[StreamEvent]) -> None:
    """Consume a stream, keeping what arrived before any failure."""
    async for event in stream:
        seen.append(event)


def json_answer(status: int, body: bytes, content_type: bytes = b"application/json",
                ) -> Writer:
    async def answer(writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 %d X\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n%s"
                     % (status, content_type, len(body), body))
    return answer


COMPLETION = json.dumps({"model": "m", "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": "hi"}}]}).encode()


@pytest.fixture
async def providers() -> AsyncIterator[list[OpenAICompatLLM]]:
    built: list[OpenAICompatLLM] = []
    yield built
    for llm in built:
        await llm.aclose()


@pytest.fixture
def connect(providers: list[OpenAICompatLLM]) -> Callable[..., OpenAICompatLLM]:
    def build(base_url: str, **options: Any) -> OpenAICompatLLM:
        config = ProviderConfig(kind="openai", base_url=base_url, model="m",
                                timeout_seconds=5.0, **options)
        providers.append(OpenAICompatLLM("fake", config))
        return providers[-1]
    return build


# -- grouping: one delta per read ----------------------------------------------------


async def test_deltas_that_arrive_together_are_handed_on_as_one(
        connect: Callable[..., OpenAICompatLLM]) -> None:
    words = b"".join(chunk({"content": word}) for word in ("hello", " there", " world"))

    async def answer(writer: asyncio.StreamWriter) -> None:
        writer.write(REPLY_HEAD + words + REPLY_END)  # one write: one read at the client

    async with ScriptedUpstream(answer) as upstream:
        llm = connect(upstream.base_url)
        events = [event async for event in llm.stream(HELLO, GenerationSettings())]
    assert events[0] == TextDelta("hello there world")
    assert isinstance(events[1], Finished) and len(events) == 2


async def test_deltas_that_arrive_apart_stay_apart(
        connect: Callable[..., OpenAICompatLLM]) -> None:
    first_seen = asyncio.Event()

    async def answer(writer: asyncio.StreamWriter) -> None:
        writer.write(REPLY_HEAD + chunk({"content": "hello"}))
        await writer.drain()
        await first_seen.wait()  # the rest only once the first delta has been handed on
        writer.write(chunk({"content": " there"}) + chunk({"content": " world"}) + REPLY_END)

    async with ScriptedUpstream(answer) as upstream:
        stream = connect(upstream.base_url).stream(HELLO, GenerationSettings())
        assert await anext(stream) == TextDelta("hello")
        first_seen.set()
        rest = [event async for event in stream]
    assert rest[0] == TextDelta(" there world") and isinstance(rest[1], Finished)


async def test_an_error_event_comes_after_the_text_read_with_it(
        connect: Callable[..., OpenAICompatLLM]) -> None:
    error = sse_event({"error": {"message": "overloaded", "type": "server_error"}})

    async def answer(writer: asyncio.StreamWriter) -> None:
        writer.write(REPLY_HEAD + chunk({"content": "hel"}) + chunk({"content": "lo"})
                     + error + b"data: [DONE]\n\n")

    seen: list[StreamEvent] = []
    async with ScriptedUpstream(answer) as upstream:
        stream = connect(upstream.base_url).stream(HELLO, GenerationSettings())
        with pytest.raises(ProviderError) as caught:
            await drain(stream, seen)
    assert seen == [TextDelta("hello")]
    assert caught.value.message == "fake: stream failed: overloaded"
    assert caught.value.retryable


# -- server-sent events --------------------------------------------------------------


STREAM = (b": a comment\r\nevent: message\r\ndata: {\"a\": 1}\r\n\r\n"
          b"data: first line\ndata:second line\nid: 7\n\n"
          b"data: [DONE]\r\r")


def test_events_are_read_whatever_the_cut_between_reads() -> None:
    expected = [b'{"a": 1}', b"first line\nsecond line", b"[DONE]"]
    for cut in range(len(STREAM) + 1):
        decoder = EventDecoder()
        found = decoder.feed(STREAM[:cut]) + decoder.feed(STREAM[cut:]) + decoder.end()
        assert found == expected, cut
        assert decoder.done


def test_an_event_cut_short_by_the_end_of_the_body_still_counts() -> None:
    decoder = EventDecoder()
    assert decoder.feed(b"data: one\n\ndata: two") == [b"one"]
    assert decoder.end() == [b"two"]
    assert not decoder.done


# -- errors --------------------------------------------------------------------------


@pytest.mark.parametrize(("body", "shown"), [
    (b'{"error": {"message": "no such model", "type": "invalid_request_error"}}',
     "no such model"),
    (b'{"error": "quota exceeded"}', "quota exceeded"),
    (b'{"message": "bad key"}', "bad key"),
    (b"Bad Gateway from the proxy", "Bad Gateway from the proxy"),
    (b"", "X"),  # nothing to show but the status line's reason
])
def test_the_upstream_explanation_is_found_in_any_error_body(body: bytes, shown: str) -> None:
    assert upstream_message(body, "X") == shown


async def test_an_error_body_that_is_not_json_keeps_its_text(
        connect: Callable[..., OpenAICompatLLM]) -> None:
    answer = json_answer(502, b"upstream proxy error", b"text/plain")
    async with ScriptedUpstream(answer) as upstream:
        with pytest.raises(ProviderError) as caught:
            await complete(connect(upstream.base_url), HELLO, GenerationSettings())
    assert caught.value.message == "fake: 502 upstream proxy error"
    assert caught.value.retryable and caught.value.details["status"] == 502


async def test_a_stream_body_that_is_not_json_is_a_retryable_provider_error(
        connect: Callable[..., OpenAICompatLLM]) -> None:
    async def answer(writer: asyncio.StreamWriter) -> None:
        writer.write(REPLY_HEAD + b"data: <html>\n\n" + REPLY_END)

    async with ScriptedUpstream(answer) as upstream:
        with pytest.raises(ProviderError, match="unexpected reply: <html>") as caught:
            await complete(connect(upstream.base_url), HELLO, GenerationSettings())
    assert caught.value.retryable


async def test_no_authorization_is_sent_without_a_key(
        connect: Callable[..., OpenAICompatLLM]) -> None:
    async with FakeOpenAIServer() as server:
        await complete(connect(server.base_url), HELLO, GenerationSettings())
    assert "authorization" not in server.last_request.headers
    assert server.last_request.headers["content-type"] == "application/json"


# -- connections ---------------------------------------------------------------------


async def test_requests_share_one_kept_alive_connection(
        connect: Callable[..., OpenAICompatLLM]) -> None:
    async with ScriptedUpstream(json_answer(200, COMPLETION)) as upstream:
        llm = connect(upstream.base_url)
        for _ in range(10):
            reply = await complete(llm, HELLO, GenerationSettings(stream=False))
            assert reply.text == "hi"
    assert upstream.connections == 1


async def test_open_connections_are_bounded_by_max_connections(
        connect: Callable[..., OpenAICompatLLM]) -> None:
    async def slow(writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(0.02)  # the upstream's latency, so callers overlap
        await json_answer(200, COMPLETION)(writer)

    async with ScriptedUpstream(slow) as upstream:
        llm = connect(upstream.base_url, max_connections=2)
        replies = await asyncio.gather(*(complete(llm, HELLO, GenerationSettings(stream=False))
                                         for _ in range(10)))
    assert [reply.text for reply in replies] == ["hi"] * 10
    assert upstream.most_open == 2


async def test_aclose_closes_the_pooled_connections(
        connect: Callable[..., OpenAICompatLLM]) -> None:
    async with ScriptedUpstream(json_answer(200, COMPLETION)) as upstream:
        llm = connect(upstream.base_url)
        await complete(llm, HELLO, GenerationSettings(stream=False))
        assert upstream.open == 1
        await llm.aclose()
        await asyncio.wait_for(upstream.all_closed.wait(), 5)
        # and the provider still works afterwards, on a new connection
        await complete(llm, HELLO, GenerationSettings(stream=False))
    assert upstream.connections == 2


def test_one_provider_serves_several_event_loops() -> None:
    """Each loop gets its own pool: a CLI or worker running ``asyncio.run`` per job."""
    with FakeOpenAIServer() as server:
        config = ProviderConfig(kind="openai", base_url=server.base_url, model="m")
        llm = OpenAICompatLLM("fake", config)

        async def ask() -> str:
            try:
                return (await complete(llm, HELLO, GenerationSettings())).text
            finally:
                await llm.aclose()  # closes this loop's pool, before the loop ends

        replies = [asyncio.run(ask()), asyncio.run(ask())]
        other: list[str] = []
        thread = threading.Thread(target=lambda: other.append(asyncio.run(ask())))
        thread.start()
        thread.join(timeout=10)
    assert [*replies, *other] == ["hello there world"] * 3
