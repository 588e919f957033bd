"""The voice provider contracts: hearing speech, recognising it, speaking text.

Audio crosses every boundary as 16-bit little-endian PCM (:class:`AudioChunk`), so
nothing here needs an array library. The pipeline (``personae.voice``) finds the
utterances with a :class:`VoiceActivityDetector`, hands each whole utterance to a
:class:`SpeechRecogniser`, and has a :class:`SpeechSynthesiser` speak the reply one
sentence at a time (so the first sentence is heard while the model still writes the
rest, and an interruption knows what was already spoken).

Providers are built by kind, like language models (see ``speech_registry``); the
ones that run a model load it once per process and run it off the event loop.
"""

from __future__ import annotations

import io
import wave
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

SAMPLE_WIDTH = 2  # bytes per sample: 16-bit PCM
RECOGNITION_RATE = 16_000  # what detectors and recognisers take


@dataclass(frozen=True, slots=True)
class AudioChunk:
    """A piece of 16-bit little-endian PCM, samples interleaved when ``channels`` > 1."""

    pcm: bytes
    sample_rate: int
    channels: int = 1

    def __post_init__(self) -> None:
        if self.sample_rate <= 0 or self.channels <= 0:
            raise ValueError("sample_rate and channels must be positive")
        if len(self.pcm) % (SAMPLE_WIDTH * self.channels):
            raise ValueError("pcm must hold whole 16-bit frames for every channel")

    @property
    def frames(self) -> int:
        """Samples per channel."""
        return len(self.pcm) // (SAMPLE_WIDTH * self.channels)

    @property
    def duration_ms(self) -> float:
        return self.frames * 1000 / self.sample_rate


def wav_bytes(audio: AudioChunk) -> bytes:
    """The PCM as a WAV file (what every transcription endpoint and player accepts)."""
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(audio.channels)
        wav.setsampwidth(SAMPLE_WIDTH)
        wav.setframerate(audio.sample_rate)
        wav.writeframes(audio.pcm)
    return out.getvalue()


@dataclass(frozen=True, slots=True)
class Transcript:
    """What a recogniser heard in one utterance.

    ``confidence`` is 0..1 when the recogniser tells (Whisper: the mean token
    probability); ``language`` is what it heard or was told (BCP 47).
    """

    text: str
    language: str | None
    confidence: float | None
    audio_ms: float
    provider: str
    model: str | None = None


Gender = Literal["female", "male", "neutral"]
VoiceQuality = Literal["neural", "formant"]


@dataclass(frozen=True, slots=True)
class Voice:
    """One voice a synthesiser offers."""

    id: str
    language: str  # BCP 47, e.g. "en-US", "hi"
    gender: Gender
    quality: VoiceQuality
    provider: str


@dataclass(frozen=True, slots=True)
class VoiceChoice:
    """Which voice speaks; ``None`` leaves it to the provider. ``speed`` 1.0 is normal."""

    voice_id: str | None = None
    speed: float = 1.0
    language: str | None = None


@runtime_checkable
class SpeechProbability(Protocol):
    """One audio stream's detector state: the chance that a frame holds speech."""

    def __call__(self, frame: bytes) -> float:
        """``frame``: exactly ``frame_samples`` mono PCM16 samples at 16 kHz."""
        ...

    def reset(self) -> None: ...


@runtime_checkable
class VoiceActivityDetector(Protocol):
    """Tells speech from silence and noise, frame by frame (cheap: run inline)."""

    name: str
    frame_samples: int  # 512 for Silero at 16 kHz: 32 ms

    def open(self) -> SpeechProbability:
        """A fresh state for one stream (one per call; never shared)."""
        ...

    async def aclose(self) -> None: ...


@runtime_checkable
class SpeechRecogniser(Protocol):
    """Transcribes one whole utterance (mono PCM16 at 16 kHz)."""

    name: str

    def languages(self) -> frozenset[str] | None:
        """Primary language subtags it recognises well (``{"en"}``); None: any."""
        ...

    async def transcribe(self, audio: AudioChunk, *, language: str | None = None,
                         prompt: str | None = None) -> Transcript:
        """``language`` is a hint (BCP 47), ``prompt`` earlier text for context."""
        ...

    async def aclose(self) -> None: ...


@runtime_checkable
class SpeechSynthesiser(Protocol):
    """Speaks one piece of text (a sentence or a clause) as a stream of audio.

    Every chunk of one call has the same sample rate, mono; the stream ends once the
    text is spoken. Closing the stream early stops the work.
    """

    name: str

    def voices(self) -> Sequence[Voice] | None:
        """The voices it offers; None: any id its service knows (a cloud provider)."""
        ...

    def synthesize(self, text: str, *, voice: VoiceChoice) -> AsyncIterator[AudioChunk]: ...

    async def aclose(self) -> None: ...
