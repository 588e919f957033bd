"""Helpers over provider streams: collect one into a whole reply, close one early, and
coalesce its deltas into frames.

**Frames.** A model sends a delta per token, and every delta a transport writes costs a
message to encode and a write; a reader sees no difference between 40 deltas a second
and frames every 25 ms. :func:`coalesce` sends the first delta at once (the time to the
first token is untouched), then at most one frame per window, or sooner once
``max_deltas`` deltas wait. Text is never held longer than the window (a timer sends it,
not the next delta), and everything held goes out before ``Finished``, at the end of
the stream and before a provider error is raised.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from personae.providers.base import (
    LLM,
    ChatMessage,
    Completion,
    Finished,
    GenerationSettings,
    StreamEvent,
    TextDelta,
    Usage,
)


async def complete(llm: LLM, messages: Sequence[ChatMessage],
                   settings: GenerationSettings) -> Completion:
    """Ask ``llm`` and return its whole reply."""
    return await collect(llm.stream(messages, settings), llm.name, settings.model or "")


async def collect(events: AsyncIterator[StreamEvent], provider: str = "",
                  model: str = "") -> Completion:
    """Run a stream to its end (closing it whatever happens) and return the whole reply.

    ``provider`` and ``model`` name the answer when the stream's ``Finished`` does not.
    """
    parts: list[str] = []
    finished: Finished | None = None
    try:
        async for event in events:
            if isinstance(event, TextDelta):
                parts.append(event.text)
            else:
                finished = event
    finally:
        await aclose_stream(events)
    if finished is None:
        finished = Finished(Usage(), "stop", provider, model)
    return Completion("".join(parts), finished.usage, finished.finish_reason,
                      finished.provider or provider, finished.model or model, len(parts))


async def aclose_stream(events: AsyncIterator[Any]) -> None:
    """Close a stream now, so its provider call (or session turn) is released at once."""
    close = getattr(events, "aclose", None)
    if close is not None:
        await close()


@dataclass(frozen=True, slots=True)
class FrameTiming:
    """How :func:`coalesce` frames a stream: a frame at most every ``window_seconds``,
    or sooner once ``max_deltas`` deltas wait. A window of 0 sends every delta."""

    window_seconds: float = 0.025
    max_deltas: int = 16

    def apply(self, events: AsyncIterator[StreamEvent]) -> AsyncIterator[StreamEvent]:
        return coalesce(events, self.window_seconds, self.max_deltas)


def coalesce(events: AsyncIterator[StreamEvent], window_seconds: float = 0.025,
             max_deltas: int = 16) -> AsyncIterator[StreamEvent]:
    """``events`` with its deltas joined into frames (see the module's docstring).

    Closing the result closes ``events`` at once, so the model stops; a window of 0
    (or ``max_deltas`` of 1) returns ``events`` itself.
    """
    if window_seconds <= 0 or max_deltas <= 1:
        return events
    return _coalesced(events, window_seconds, max_deltas)


async def _coalesced(events: AsyncIterator[StreamEvent], window: float,
                     max_deltas: int) -> AsyncIterator[StreamEvent]:
    """Up to the first text, the stream itself; from then on, frames from a reader."""
    reader: _FrameReader | None = None
    try:
        async for event in events:
            yield event
            if isinstance(event, TextDelta) and event.text:
                reader = _FrameReader(events, window, max_deltas)
                break
        if reader is not None:
            async for frame in reader.frames():
                yield frame
    finally:
        if reader is not None:
            await reader.stop()
        else:
            await aclose_stream(events)


class _FrameReader:
    """Reads the rest of a stream in its own task, holding text until its frame is due;
    the consumer wakes once per frame, not once per delta."""

    def __init__(self, events: AsyncIterator[StreamEvent], window: float,
                 max_deltas: int) -> None:
        self._loop = asyncio.get_running_loop()
        self._window = window
        self._max_deltas = max_deltas
        self._parts: list[str] = []
        self._after: list[StreamEvent] = []  # Finished: sent once the text before it is
        self._error: Exception | None = None
        self._ended = False
        self._due = self._loop.time() + window  # the next frame goes out no sooner
        self._waiter: asyncio.Future[None] | None = None  # the consumer, waiting for a frame
        self._taken: asyncio.Future[None] | None = None  # the reader, waiting for room
        self._timer: asyncio.TimerHandle | None = None
        self._task = self._loop.create_task(self._read(events))

    async def frames(self) -> AsyncIterator[StreamEvent]:
        while True:
            if self._parts and (self._ended or self._after or self._frame_due()):
                yield TextDelta(self._take())
            elif self._after:
                yield self._after.pop(0)
            elif self._ended:
                if self._error is not None:
                    raise self._error
                return
            else:
                self._waiter = self._loop.create_future()
                try:
                    await self._waiter
                finally:
                    self._waiter = None

    async def stop(self) -> None:
        """Stop reading: the stream is closed (the model stops) before this returns."""
        self._cancel_timer()
        if not self._task.done():
            self._task.cancel()
        await asyncio.wait({self._task})

    async def _read(self, events: AsyncIterator[StreamEvent]) -> None:
        try:
            async for event in events:
                if not isinstance(event, TextDelta):
                    self._after.append(event)
                    self._wake()
                elif event.text:
                    self._parts.append(event.text)
                    if len(self._parts) >= self._max_deltas:
                        await self._handed_over()
                    elif len(self._parts) == 1:
                        self._time_held_text()
        except Exception as exc:  # raised to the consumer after the text before it
            self._error = exc
        finally:
            self._ended = True
            self._wake()
            await aclose_stream(events)

    async def _handed_over(self) -> None:
        """A full frame waits: read no further until the consumer has taken it (a slow
        client slows the reading, and no frame holds more than ``max_deltas``)."""
        self._taken = self._loop.create_future()
        self._wake()
        try:
            await self._taken
        finally:
            self._taken = None

    def _time_held_text(self) -> None:
        """The first text held waits no longer than the frame's due time."""
        if self._loop.time() >= self._due:
            self._wake()
        else:
            self._timer = self._loop.call_at(self._due, self._window_over)

    def _frame_due(self) -> bool:
        return len(self._parts) >= self._max_deltas or self._loop.time() >= self._due

    def _take(self) -> str:
        parts, self._parts = self._parts, []
        self._cancel_timer()
        if self._taken is not None and not self._taken.done():
            self._taken.set_result(None)
        self._due = self._loop.time() + self._window
        return parts[0] if len(parts) == 1 else "".join(parts)

    def _window_over(self) -> None:
        """The held text's window is over (a timer may fire a hair before ``due`` by
        the loop's clock: the frame is due all the same)."""
        self._timer = None
        self._due = self._loop.time()
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
