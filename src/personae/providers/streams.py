"""Helpers over provider streams: collect one into a whole reply, close one early."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
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
