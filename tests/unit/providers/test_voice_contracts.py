"""The voice contracts: audio frames, and the protocols the coming providers implement."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator

import pytest

from personae.providers.base import (
    AudioChunk,
    FinalTranscript,
    PartialTranscript,
    SpeechStarted,
    SpeechStopped,
    SpeechToText,
    TextToSpeech,
    TranscriptEvent,
    VadEvent,
    VoiceActivityDetector,
    VoiceChoice,
)

RATE = 16_000
SILENCE_100MS = AudioChunk(b"\x00\x00" * 1_600, RATE)


class WholeStreamVad:
    """Calls the whole stream one utterance."""

    name = "whole"

    async def detect(self, audio: AsyncIterable[AudioChunk]) -> AsyncIterator[VadEvent]:
        elapsed = 0.0
        async for chunk in audio:
            if elapsed == 0.0:
                yield SpeechStarted(0.0)
            elapsed += chunk.duration_ms
        yield SpeechStopped(elapsed)

    async def aclose(self) -> None:
        return None


class CountingStt:
    """Transcribes every chunk as its duration."""

    name = "counting"

    async def transcribe(self, audio: AsyncIterable[AudioChunk], *,
                         language: str | None = None) -> AsyncIterator[TranscriptEvent]:
        heard: list[str] = []
        async for chunk in audio:
            heard.append(f"{chunk.duration_ms:g}ms")
            yield PartialTranscript(" ".join(heard))
        yield FinalTranscript(" ".join(heard), language, 1.0)

    async def aclose(self) -> None:
        return None


class SilentTts:
    """Speaks every piece of text as 10 ms of silence."""

    name = "silent"

    async def synthesize(self, text: AsyncIterable[str], *,
                         voice: VoiceChoice) -> AsyncIterator[AudioChunk]:
        async for _ in text:
            yield AudioChunk(b"\x00\x00" * int(RATE / 100 / voice.speed), RATE)

    async def aclose(self) -> None:
        return None


async def chunks(*items: AudioChunk) -> AsyncIterator[AudioChunk]:
    for item in items:
        yield item


async def words(*items: str) -> AsyncIterator[str]:
    for item in items:
        yield item


def test_durations_follow_rate_and_channels() -> None:
    assert SILENCE_100MS.frames == 1_600
    assert SILENCE_100MS.duration_ms == 100.0
    stereo = AudioChunk(b"\x00\x00" * 2 * 480, 48_000, channels=2)
    assert (stereo.frames, stereo.duration_ms) == (480, 10.0)
    assert AudioChunk(b"", RATE).duration_ms == 0.0


@pytest.mark.parametrize(("pcm", "rate", "channels"), [
    (b"\x00", RATE, 1),  # half a sample
    (b"\x00\x00", RATE, 2),  # half a stereo frame
    (b"", 0, 1),
    (b"", RATE, 0),
])
def test_malformed_chunks_are_refused(pcm: bytes, rate: int, channels: int) -> None:
    with pytest.raises(ValueError, match="must"):
        AudioChunk(pcm, rate, channels)


def test_trivial_implementations_satisfy_the_protocols() -> None:
    vad: VoiceActivityDetector = WholeStreamVad()
    stt: SpeechToText = CountingStt()
    tts: TextToSpeech = SilentTts()
    assert isinstance(vad, VoiceActivityDetector)
    assert isinstance(stt, SpeechToText)
    assert isinstance(tts, TextToSpeech)
    assert not isinstance(vad, SpeechToText)
    assert not isinstance(object(), TextToSpeech)


async def test_events_flow_through_the_contracts() -> None:
    vad_events = [e async for e in WholeStreamVad().detect(chunks(SILENCE_100MS,
                                                                  SILENCE_100MS))]
    assert vad_events == [SpeechStarted(0.0), SpeechStopped(200.0)]
    transcript = [e async for e in CountingStt().transcribe(chunks(SILENCE_100MS),
                                                             language="en")]
    assert transcript == [PartialTranscript("100ms"), FinalTranscript("100ms", "en", 1.0)]
    audio = [c async for c in SilentTts().synthesize(words("Hi", " there"),
                                                     voice=VoiceChoice(speed=2.0))]
    assert [chunk.duration_ms for chunk in audio] == [5.0, 5.0]


def test_voice_choice_defaults_leave_the_voice_to_the_provider() -> None:
    assert VoiceChoice() == VoiceChoice(voice_id=None, speed=1.0, language=None)
