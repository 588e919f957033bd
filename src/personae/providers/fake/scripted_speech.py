"""In-process speech providers that answer from a script, for fast unit tests.

No model, no server: a :class:`ScriptedRecogniser` hears what the test queued (or what
a callable makes of the audio), a :class:`ScriptedSynthesiser` speaks real PCM (a tone
whose length follows the text), and both record every call::

    stt = ScriptedRecogniser(["hello there", ProviderError("scripted-stt", "down",
                                                           retryable=True)])
    tts = ScriptedSynthesiser(ms_per_char=20)
    ...
    assert stt.calls[0].language == "en" and tts.calls[0].text == "Hello."

An exception in the answers is raised by the call that reaches it; with the answers
used up, the last one is repeated (an empty list hears ``""``).
"""

from __future__ import annotations

import asyncio
import math
import sys
from array import array
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass

from personae.providers.speech import AudioChunk, Transcript, Voice, VoiceChoice

Answer = str | BaseException
Answers = Sequence[Answer] | Callable[[AudioChunk], str]
CHUNK_MS = 100  # the synthesiser yields audio in pieces this long
TONE_HZ = 220.0
TONE_AMPLITUDE = 8000


@dataclass(frozen=True, slots=True)
class RecognitionCall:
    """One call to ``transcribe``, as the recogniser received it."""

    audio: AudioChunk
    language: str | None
    prompt: str | None


@dataclass(frozen=True, slots=True)
class SynthesisCall:
    """One call to ``synthesize``, as the synthesiser received it."""

    text: str
    voice: VoiceChoice


class ScriptedRecogniser:
    """A :class:`~personae.providers.speech.SpeechRecogniser` that hears the script.

    ``delay`` seconds pass before each answer (a slow provider, for timeouts).
    """

    def __init__(self, answers: Answers, languages: frozenset[str] | None = None,
                 name: str = "scripted-stt", delay: float = 0.0) -> None:
        self.name = name
        self.model = name
        self._answers = answers
        self._languages = languages
        self.delay = delay
        self.calls: list[RecognitionCall] = []
        self.closed = False

    def languages(self) -> frozenset[str] | None:
        return self._languages

    async def transcribe(self, audio: AudioChunk, *, language: str | None = None,
                         prompt: str | None = None) -> Transcript:
        index = len(self.calls)
        self.calls.append(RecognitionCall(audio, language, prompt))
        if self.delay:
            await asyncio.sleep(self.delay)
        answer = self._answer(index, audio)
        if isinstance(answer, BaseException):
            raise answer
        return Transcript(answer, language, 1.0 if answer else None, audio.duration_ms,
                          self.name, self.model)

    def _answer(self, index: int, audio: AudioChunk) -> Answer:
        if callable(self._answers):
            return self._answers(audio)
        if not self._answers:
            return ""
        return self._answers[min(index, len(self._answers) - 1)]

    async def aclose(self) -> None:
        self.closed = True


class ScriptedSynthesiser:
    """A :class:`~personae.providers.speech.SpeechSynthesiser` that speaks a tone.

    Each call yields ``ms_per_char`` of real PCM16 per character of text (at least one
    chunk), in chunks of 100 ms at ``rate`` Hz, each after ``delay`` seconds; a test
    can make a call fail by putting an exception in ``failures`` (raised before the
    first chunk, in order) or ``failures_after_first`` (after the first chunk).
    ``closed_streams`` counts streams closed (or cancelled) before their end.
    """

    def __init__(self, name: str = "scripted-tts", rate: int = 16_000,
                 ms_per_char: float = 30.0, voices: Sequence[Voice] | None = None,
                 delay: float = 0.0) -> None:
        self.name = name
        self.rate = rate
        self.ms_per_char = ms_per_char
        self._voices = list(voices) if voices is not None else None
        self.delay = delay
        self.calls: list[SynthesisCall] = []
        self.failures: list[BaseException] = []
        self.failures_after_first: list[BaseException] = []
        self.chunks_sent = 0
        self.closed_streams = 0
        self.closed = False

    def voices(self) -> Sequence[Voice] | None:
        return self._voices

    def audio_ms(self, text: str) -> float:
        """How long the audio for ``text`` is."""
        return max(len(text) * self.ms_per_char, CHUNK_MS)

    def synthesize(self, text: str, *, voice: VoiceChoice) -> AsyncIterator[AudioChunk]:
        self.calls.append(SynthesisCall(text, voice))
        return self._speak(text)

    async def _speak(self, text: str) -> AsyncIterator[AudioChunk]:
        total = int(self.audio_ms(text) * self.rate / 1000)
        chunk = int(CHUNK_MS * self.rate / 1000)
        if self.failures:
            raise self.failures.pop(0)
        try:
            for start in range(0, total, chunk):
                if self.delay:
                    await asyncio.sleep(self.delay)
                if start and self.failures_after_first:
                    raise self.failures_after_first.pop(0)
                self.chunks_sent += 1
                yield AudioChunk(tone(start, min(chunk, total - start), self.rate), self.rate)
        except (GeneratorExit, asyncio.CancelledError):
            self.closed_streams += 1
            raise

    async def aclose(self) -> None:
        self.closed = True


def tone(start: int, samples: int, rate: int, hz: float = TONE_HZ) -> bytes:
    """``samples`` of a sine tone as PCM16 LE, continuing from sample ``start``."""
    step = 2 * math.pi * hz / rate
    pcm = array("h", (int(TONE_AMPLITUDE * math.sin(step * (start + i)))
                      for i in range(samples)))
    if sys.byteorder == "big":
        pcm.byteswap()
    return pcm.tobytes()
