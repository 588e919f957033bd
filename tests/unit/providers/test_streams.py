"""Frames over a provider stream: the first delta at once, then at most one frame per
window or per ``max_deltas``, nothing held past its window, everything flushed before
``Finished`` and before an error, and closing that stops the model at once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from personae.errors import ProviderError
from personae.providers.base import (
    ChatMessage,
    Finished,
    GenerationSettings,
    StreamEvent,
    TextDelta,
    Usage,
)
from personae.providers.fake import ScriptedLLM
from personae.providers.streams import FrameTiming, coalesce, collect

LONG_WINDOW = 10.0  # no frame is due by time in a test that uses it


class Source:
    """A provider stream a test releases step by step: ``send`` lets deltas out."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[StreamEvent | BaseException | None] = asyncio.Queue()
        self.closed = asyncio.Event()
        self.read = 0  # events the consumer side has taken from this stream

    def send(self, *items: StreamEvent | BaseException | None) -> None:
        for item in items:
            self.queue.put_nowait(item)

    async def events(self) -> AsyncIterator[StreamEvent]:
        try:
            while (item := await self.queue.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                self.read += 1
                yield item
        finally:
            self.closed.set()


def deltas(*texts: str) -> list[TextDelta]:
    return [TextDelta(text) for text in texts]


FINISHED = Finished(Usage(3, 5), "stop", "test", "m")


async def frames_of(stream: AsyncIterator[StreamEvent]) -> list[StreamEvent]:
    return [event async for event in stream]


async def test_the_first_delta_goes_out_alone_and_the_rest_in_frames() -> None:
    source = Source()
    source.send(*deltas("a", "b", "c", "d"), FINISHED, None)  # all there at once
    frames = await frames_of(coalesce(source.events(), LONG_WINDOW, 16))
    assert frames == [TextDelta("a"), TextDelta("bcd"), FINISHED]


async def test_a_frame_holds_at_most_max_deltas() -> None:
    source = Source()
    source.send(*deltas(*"0123456789"), FINISHED, None)
    frames = await frames_of(coalesce(source.events(), LONG_WINDOW, 4))
    assert frames == [*deltas("0", "1234", "5678", "9"), FINISHED]


async def test_held_text_goes_out_when_its_window_ends_not_with_the_next_delta() -> None:
    source = Source()
    stream = coalesce(source.events(), 0.05, 16)
    source.send(TextDelta("first"))
    assert await anext(stream) == TextDelta("first")
    source.send(TextDelta(" held"))  # and then the model pauses
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await asyncio.wait_for(anext(stream), 2) == TextDelta(" held")
    assert loop.time() - started >= 0.04  # not before its window (timer resolution aside)
    assert source.queue.empty() and not source.closed.is_set()  # nothing else came
    source.send(FINISHED, None)
    assert await frames_of(stream) == [FINISHED]


async def test_a_delta_after_a_quiet_window_goes_out_at_once() -> None:
    source = Source()
    stream = coalesce(source.events(), 0.02, 16)
    source.send(TextDelta("a"))
    assert await anext(stream) == TextDelta("a")
    waiting = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0.1)  # the window passed with nothing to send
    assert not waiting.done()
    loop = asyncio.get_running_loop()
    sent = loop.time()
    source.send(TextDelta("b"))
    assert await asyncio.wait_for(waiting, 2) == TextDelta("b")
    assert loop.time() - sent < 0.015  # at once, not a window later
    source.send(None)
    assert await frames_of(stream) == []


async def test_everything_held_goes_out_before_an_error_is_raised() -> None:
    source = Source()
    failure = ProviderError("test", "the upstream dropped the stream")
    source.send(*deltas("a", "b", "c"), failure)
    stream = coalesce(source.events(), LONG_WINDOW, 16)
    received: list[StreamEvent] = []

    async def consume() -> None:
        async for event in stream:
            received.append(event)

    with pytest.raises(ProviderError, match="dropped the stream"):
        await consume()
    assert received == deltas("a", "bc")


async def test_held_text_goes_out_when_the_stream_ends_without_finished() -> None:
    source = Source()
    source.send(*deltas("a", "b"), None)
    assert await frames_of(coalesce(source.events(), LONG_WINDOW, 16)) == deltas("a", "b")


async def test_closing_the_frames_closes_the_model_stream_at_once() -> None:
    source = Source()
    stream = coalesce(source.events(), LONG_WINDOW, 2)
    source.send(*deltas("a", "b", "c"))  # and the model goes on (nothing ends it)
    assert await anext(stream) == TextDelta("a")
    assert await anext(stream) == TextDelta("bc")
    assert not source.closed.is_set()
    await stream.aclose()  # type: ignore[attr-defined]
    assert source.closed.is_set()


async def test_a_consumer_cancelled_while_waiting_stops_the_model() -> None:
    """As a turn stopped by a drain is: cancelled inside its wait for the next frame."""
    source = Source()
    stream = coalesce(source.events(), LONG_WINDOW, 16)
    source.send(TextDelta("a"))
    assert await anext(stream) == TextDelta("a")
    waiting = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0.01)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert source.closed.is_set()  # closed before the cancelled wait returned


async def test_closing_before_the_first_delta_closes_the_model_stream() -> None:
    source = Source()
    stream = coalesce(source.events(), LONG_WINDOW, 16)
    waiting = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0.01)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert source.closed.is_set()


async def test_no_window_leaves_the_stream_as_it_is() -> None:
    source = Source()
    events = source.events()
    assert coalesce(events, 0, 16) is events
    assert FrameTiming(0.0, 16).apply(events) is events
    assert coalesce(events, 0.025, 1) is events


async def test_a_whole_reply_collected_through_frames_is_unchanged() -> None:
    llm = ScriptedLLM().queue("one two three four five six")
    asked = [ChatMessage("user", "count")]
    stream = FrameTiming(0.025, 16).apply(llm.stream(asked, GenerationSettings()))
    reply = await collect(stream)
    assert reply.text == "one two three four five six"
    assert reply.finish_reason == "stop"
