"""Hearing the user on a call: utterances recognised, speculatively when possible, and
the clock of one voice turn from the end of speech to the first reply audio.

Recognition starts at the utterance's first short pause; when the turn then ends with
no more speech (the audio is the same), that transcript is the turn's, which saves the
recogniser's time from the end-of-turn wait. More speech discards it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any

from personae.providers.speech import AudioChunk, SpeechRecogniser, Transcript
from personae.voice.endpoint import Endpointer
from personae.voice.frames import SpeechPaused, SpeechStopped

Spawn = Callable[[Coroutine[Any, Any, Any]], "asyncio.Task[Any]"]
log = logging.getLogger(__name__)


class Hearing:
    """The endpointer and recogniser of one call, with the speculative transcript."""

    def __init__(self, endpointer: Endpointer, recogniser: SpeechRecogniser,
                 recogniser_name: str, language: str | None, spawn: Spawn) -> None:
        self.endpointer = endpointer
        self.recogniser, self.recogniser_name = recogniser, recogniser_name
        self.language = language
        self._spawn = spawn
        self._speculative: tuple[SpeechPaused, asyncio.Task[Transcript]] | None = None
        self.speculations_used = 0
        self.speculations_discarded = 0

    def retune(self, recogniser: SpeechRecogniser, language: str | None) -> None:
        """Another persona on the same recogniser: hear its language from now on."""
        self.recogniser, self.language = recogniser, language

    def speculate(self, paused: SpeechPaused) -> None:
        """Start recognising the utterance so far."""
        self._discard()
        self._speculative = (paused, self._spawn(self._transcribe(paused.audio)))

    async def recognise(self, stopped: SpeechStopped) -> Transcript:
        """The turn's transcript: the speculative one if nothing was said after it."""
        speculative, self._speculative = self._speculative, None
        if speculative is not None and _same_utterance(speculative[0], stopped):
            self.speculations_used += 1
            return await speculative[1]
        if speculative is not None:
            speculative[1].cancel()
            self.speculations_discarded += 1
        return await self._transcribe(stopped.audio)

    def ended_at(self, stopped: SpeechStopped, now: float) -> float:
        """When the user's last voiced sample arrived (on the clock ``now`` is read
        from), assuming the client streams at real time: the silence wait counts."""
        behind_ms = self.endpointer.clock_ms - stopped.at_ms
        return now - behind_ms / 1000

    def _discard(self) -> None:
        if self._speculative is not None:
            self._speculative[1].cancel()
            self.speculations_discarded += 1
            self._speculative = None

    async def _transcribe(self, audio: AudioChunk) -> Transcript:
        return await self.recogniser.transcribe(audio, language=self.language)


def _same_utterance(paused: SpeechPaused, stopped: SpeechStopped) -> bool:
    return paused.at_ms == stopped.at_ms and paused.audio.pcm == stopped.audio.pcm


# A voice stage's name and its latency in seconds (metrics listen to these).
StageListener = Callable[[str, float], None]
# The timings of a call's turn (VoiceTurn.timings) as the voice stages they measure.
CALL_STAGES = {"end_of_speech_to_transcript_ms": "stt",
               "transcript_to_first_token_ms": "llm_first_token",
               "first_token_to_first_audio_ms": "tts_first_audio",
               "end_of_speech_to_first_audio_ms": "first_audio"}
# The timings of a one-shot spoken turn (VoiceService.respond).
RESPONSE_STAGES = {"decode_ms": "decode", "stt_ms": "stt", "reply_ms": "reply",
                   "tts_ms": "tts"}


def report_stages(listener: StageListener, timings: Mapping[str, float | None],
                  stages: Mapping[str, str]) -> None:
    """Tell ``listener`` each measured stage of ``timings``; a failing listener is
    logged, never raised (the call goes on)."""
    try:
        for key, stage in stages.items():
            value = timings.get(key)
            if value is not None:
                listener(stage, value / 1000)
    except Exception:
        log.exception("voice stage listener failed")


def _ms(start: float | None, end: float | None) -> float | None:
    return None if start is None or end is None else round((end - start) * 1000, 1)


@dataclass
class VoiceTurn:
    """One spoken turn's moments (on the call's clock) and what was heard."""

    ended_at: float
    clock: Callable[[], float] = time.monotonic
    transcript: Transcript | None = None
    transcript_at: float | None = None
    first_token_at: float | None = None
    first_audio_at: float | None = None

    def transcribed(self, transcript: Transcript) -> None:
        self.transcript, self.transcript_at = transcript, self.clock()

    def first_token(self) -> None:
        if self.first_token_at is None:
            self.first_token_at = self.clock()

    def first_audio(self, at: float | None) -> None:
        self.first_audio_at = at

    def timings(self) -> dict[str, float | None]:
        return {
            "end_of_speech_to_transcript_ms": _ms(self.ended_at, self.transcript_at),
            "transcript_to_first_token_ms": _ms(self.transcript_at, self.first_token_at),
            "first_token_to_first_audio_ms": _ms(self.first_token_at, self.first_audio_at),
            "end_of_speech_to_first_audio_ms": _ms(self.ended_at, self.first_audio_at)}

    def user_meta(self, recogniser: str | None) -> dict[str, Any]:
        """What the user's message keeps of its audio."""
        heard = self.transcript
        assert heard is not None
        return {"audio": {"audio_ms": round(heard.audio_ms), "confidence": heard.confidence,
                          "recogniser": recogniser or heard.provider,
                          "language": heard.language}}

    def metrics(self) -> dict[str, float]:
        """The persona's voice metrics for this turn (summed per persona version)."""
        timings = self.timings()
        found = {"voice_stt_ms": timings["end_of_speech_to_transcript_ms"],
                 "voice_first_audio_ms": timings["end_of_speech_to_first_audio_ms"]}
        return {"voice_turns": 1.0, **{k: v for k, v in found.items() if v is not None}}
