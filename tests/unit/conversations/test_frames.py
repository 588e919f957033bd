"""A turn's reply reaches its client in frames, not a delta per token: the same text,
the first delta at once, a frame at most per window or per ``max_deltas``."""

from __future__ import annotations

import asyncio

from personae.config import Settings
from personae.conversations.events import Delta, Done, TurnEvent
from personae.providers.streams import FrameTiming
from tests.support.chat import Chat

WORDS = [f"w{i}" for i in range(120)]


async def _reply(chat: Chat, words: list[str], token_delay: float) -> list[TurnEvent]:
    chat.server.reply, chat.server.token_delay = (lambda _body: " ".join(words)), token_delay
    session, _ = await chat.runtime.conversations.open(chat.alice, "tina")
    events = await chat.runtime.conversations.send(chat.alice, session.id, "talk to me")
    return [event async for event in events]


def _deltas(events: list[TurnEvent]) -> list[str]:
    return [event.text for event in events if isinstance(event, Delta)]


async def test_a_reply_reaches_the_client_in_frames_not_a_delta_per_token(chat: Chat) -> None:
    chat.runtime.conversations.frames = FrameTiming(0.1, 16)
    events = await _reply(chat, WORDS, 0.001)
    done = events[-1]
    assert isinstance(done, Done) and done.message.status == "complete"
    deltas = _deltas(events)
    assert "".join(deltas) == done.message.content == " ".join(WORDS)
    # 120 deltas: the first alone, then a frame per 100 ms or per 16 deltas
    assert 2 <= len(deltas) <= len(WORDS) // 4


async def test_the_first_delta_is_not_held_for_a_frame(chat: Chat) -> None:
    chat.runtime.conversations.frames = FrameTiming(5.0, 1000)  # only the end sends more
    chat.server.reply, chat.server.token_delay = (lambda _body: " ".join(WORDS[:6])), 0.3
    session, _ = await chat.runtime.conversations.open(chat.alice, "tina")
    events = await chat.runtime.conversations.send(chat.alice, session.id, "talk to me")
    loop = asyncio.get_running_loop()
    started = loop.time()
    while not isinstance(event := await anext(events), Delta):
        pass
    assert loop.time() - started < 1.2  # the first word, not the 1.5 s the rest take
    assert event.text.strip() == "w0"
    rest = [event async for event in events]
    assert _deltas(rest) == [" " + " ".join(WORDS[1:6])]  # the rest: one frame, at the end


async def test_without_a_window_every_delta_is_sent_as_it_comes(chat: Chat) -> None:
    chat.runtime.conversations.frames = FrameTiming(0.0, 16)
    events = await _reply(chat, WORDS[:40], 0.005)
    assert "".join(_deltas(events)) == " ".join(WORDS[:40])
    assert len(_deltas(events)) >= 20  # about one per word


def test_frames_default_to_25_ms_or_16_deltas(chat: Chat) -> None:
    assert chat.runtime.conversations.frames == FrameTiming(0.025, 16)
    settings = Settings(stream_frame_ms=0, stream_frame_tokens=4)
    assert (settings.stream_frame_ms, settings.stream_frame_tokens) == (0, 4)
