"""Speaks a reply sentence by sentence, and keeps the client's playback clock.

Sentences are queued as the model writes them and synthesised in order by one task;
each sentence's audio goes out as it is made, in short binary frames between an
``audio_start`` and an ``audio_end`` event, so the client hears the first clause while
later ones are still being written and synthesised. The client is assumed to play
the audio as it arrives, at real time, from the reply's first frame: the clock here
follows that, so an interruption knows which sentences had been heard in full.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from personae.errors import PersonaeError
from personae.providers.speech import SAMPLE_WIDTH, AudioChunk, SpeechSynthesiser, VoiceChoice
from personae.voice.audio import ChunkResampler

log = logging.getLogger(__name__)

OUTPUT_RATE = 22_050  # what the socket sends (the local voices' own rate)
FRAME_MS = 80  # each binary frame carries at most this much audio

SendEvent = Callable[[dict[str, Any]], Awaitable[None]]
SendAudio = Callable[[bytes], Awaitable[None]]


@dataclass
class ReplyAudio:
    """What one reply's audio came to (so far, if it was stopped)."""

    message_id: int | None
    audio_ms: float = 0.0
    first_audio_at: float | None = None  # the speaker's clock at the first frame sent
    heard: list[tuple[float, str]] = field(default_factory=list)  # (played-out time, text)
    stopped: bool = False

    def spoken(self, at: float) -> str:
        """The sentences whose audio had played in full by ``at``."""
        return " ".join(text for played, text in self.heard if played <= at)


class Speaker:
    """One call's voice: a synthesiser, a voice, and the reply being spoken."""

    def __init__(self, send_event: SendEvent, send_audio: SendAudio,
                 rate: int = OUTPUT_RATE) -> None:
        self.send_event, self.send_audio = send_event, send_audio
        self.rate = rate
        self.synthesiser: SpeechSynthesiser | None = None
        self.voice = VoiceChoice()
        self._queue: asyncio.Queue[str | None] = asyncio.Queue()
        self._worker: asyncio.Task[ReplyAudio] | None = None
        self._reply = ReplyAudio(None)
        self._playhead = 0.0  # when the audio sent so far will have played out
        self.clock: Callable[[], float] = time.monotonic
        self._retired: set[asyncio.Task[ReplyAudio]] = set()

    def use(self, synthesiser: SpeechSynthesiser | None, voice: VoiceChoice) -> None:
        self.synthesiser, self.voice = synthesiser, voice

    @property
    def reply(self) -> ReplyAudio:
        return self._reply

    def busy(self, now: float | None = None) -> bool:
        """Synthesising, or audio sent is still playing at the client."""
        running = self._worker is not None and not self._worker.done()
        return running or (now or self.clock()) < self._playhead

    def begin(self, message_id: int | None = None) -> None:
        """Start a reply (the previous one must have been stopped or ended)."""
        if self._worker is not None and not self._worker.done():
            self._worker.cancel()  # a reply left unended: stop it (awaited by ``stop``)
            self._retired.add(self._worker)
        self._queue = asyncio.Queue()
        self._reply = ReplyAudio(message_id)
        if self.synthesiser is not None:
            self._worker = asyncio.create_task(self._run(self._queue, self._reply),
                                               name="voice speaker")

    def say(self, text: str) -> None:
        if self._worker is not None and not self._worker.done():
            self._queue.put_nowait(text)

    def end(self) -> None:
        """No more sentences for this reply."""
        self._queue.put_nowait(None)

    async def wait(self) -> ReplyAudio:
        """The reply once all its audio has been sent (or it was stopped)."""
        reply, worker = self._reply, self._worker
        if worker is not None:
            await asyncio.wait({worker})  # until it ends, spoken out or stopped
        return reply

    async def stop(self) -> str:
        """Stop the reply now; the text whose audio the client had heard."""
        now = self.clock()
        reply, worker, self._worker = self._reply, self._worker, None
        reply.stopped = True
        self._playhead = 0.0
        stopping, self._retired = {*self._retired, *([worker] if worker else [])}, set()
        for task in stopping:
            task.cancel()
        for task in stopping:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        return reply.spoken(now)

    async def _run(self, queue: asyncio.Queue[str | None], reply: ReplyAudio) -> ReplyAudio:
        index = 0
        while (text := await queue.get()) is not None:
            await self._sentence(reply, index, text)
            index += 1
        return reply

    async def _sentence(self, reply: ReplyAudio, index: int, text: str) -> None:
        await self.send_event({"type": "audio_start", "index": index, "text": text,
                               "sample_rate": self.rate, "format": "pcm16",
                               "message_id": reply.message_id})
        before = reply.audio_ms
        try:
            await self._synthesise(reply, text)
        except PersonaeError as exc:  # the text was shown; say why it was not heard
            log.warning("speech synthesis failed: %s", exc.message)
            await self.send_event({"type": "warning",
                                   "message": f"this sentence could not be spoken: "
                                              f"{exc.message}"})
        await self.send_event({"type": "audio_end", "index": index,
                               "audio_ms": round(reply.audio_ms - before)})
        reply.heard.append((self._playhead, text))

    async def _synthesise(self, reply: ReplyAudio, text: str) -> None:
        assert self.synthesiser is not None
        resampler = ChunkResampler(self.rate)
        stream = self.synthesiser.synthesize(text, voice=self.voice)
        try:
            async for chunk in stream:
                await self._send(reply, resampler.push(chunk))
        finally:
            close = getattr(stream, "aclose", None)
            if close is not None:
                with contextlib.suppress(Exception):
                    await close()
        await self._send(reply, resampler.flush())

    async def _send(self, reply: ReplyAudio, chunk: AudioChunk) -> None:
        step = int(self.rate * FRAME_MS / 1000) * SAMPLE_WIDTH
        for start in range(0, len(chunk.pcm), step):
            piece = chunk.pcm[start:start + step]
            now = self.clock()
            if reply.first_audio_at is None:
                reply.first_audio_at = now
            await self.send_audio(piece)
            ms = len(piece) / SAMPLE_WIDTH * 1000 / self.rate
            self._playhead = max(self._playhead, now) + ms / 1000
            reply.audio_ms += ms
