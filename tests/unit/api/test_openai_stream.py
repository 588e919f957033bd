"""The chat-completions SSE body: what goes out together, and that nothing is lost."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from personae.api.routes.openai_compat import _sse
from personae.conversations.gateway import ChatRequest, ChoiceEvent
from personae.errors import ProviderError
from personae.providers.base import ChatMessage, Finished, TextDelta, Usage

CHAT = ChatRequest(model="tina", messages=(ChatMessage("user", "hi"),), stream=True,
                   include_usage=True)


async def scripted(*events: ChoiceEvent, error: Exception | None = None,
                   ) -> AsyncIterator[ChoiceEvent]:
    for event in events:
        yield event
    if error is not None:
        raise error


def payloads(block: bytes) -> list[Any]:
    """The events in one written block, ``[DONE]`` as a string."""
    found = []
    for event in block.decode().split("\n\n")[:-1]:
        assert event.startswith("data: ")
        data = event[len("data: "):]
        found.append(data if data == "[DONE]" else json.loads(data))
    return found


async def written(first: ChoiceEvent, *rest: ChoiceEvent,
                  error: Exception | None = None) -> list[list[Any]]:
    return [payloads(block) async for block in _sse(scripted(*rest, error=error), first, CHAT)]


def deltas(events: list[Any]) -> list[Any]:
    return [event["choices"][0]["delta"] if event != "[DONE]" and event["choices"] else event
            for event in events]


async def test_what_is_ready_at_once_goes_out_in_one_write() -> None:
    blocks = await written((0, TextDelta("Hel")), (0, TextDelta("lo")),
                           (0, Finished(Usage(3, 2), "stop", "p", "m")))
    assert [deltas(block) for block in blocks] == [
        [{"role": "assistant", "content": ""}, {"content": "Hel"}],  # the role with the first
        [{"content": "lo"}],
        [{}, blocks[-1][1], "[DONE]"],  # the finish, the usage and [DONE] together
    ]
    assert blocks[-1][0]["choices"][0]["finish_reason"] == "stop"
    assert blocks[-1][1]["usage"] == {"prompt_tokens": 3, "completion_tokens": 2,
                                      "total_tokens": 5}


async def test_a_failure_mid_stream_is_reported_in_band_then_done() -> None:
    error = ProviderError("p", "stream failed: overloaded", retryable=True)
    blocks = await written((0, TextDelta("Hel")), error=error)
    assert deltas(blocks[0]) == [{"role": "assistant", "content": ""}, {"content": "Hel"}]
    assert blocks[-1][0]["error"]["message"] == "p: stream failed: overloaded"
    assert blocks[-1][-1] == "[DONE]" and len(blocks) == 2
