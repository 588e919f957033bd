"""The voice pipeline's frames: what flows between the endpointer, the recogniser, the
model and the synthesiser, and how each appears on the voice socket.

Small immutable values, so a stage hands one on without anyone changing it under it.
Times (``at_ms``) are on the input stream's clock: milliseconds of audio received
since the call started.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from personae.providers.speech import AudioChunk, Transcript


@dataclass(frozen=True, slots=True)
class AudioIn:
    """Decoded input audio, mono PCM16 at 16 kHz."""

    chunk: AudioChunk


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    """Speech began (confirmed over a few frames); ``at_ms`` is its first voiced frame."""

    at_ms: float


@dataclass(frozen=True, slots=True)
class SpeechPaused:
    """A short pause: the utterance so far may already be recognised (speculatively).

    ``at_ms`` is the end of the last voiced frame; ``audio`` the utterance up to the
    pause, exactly what :class:`SpeechStopped` will carry if no more speech comes.
    """

    at_ms: float
    audio: AudioChunk


@dataclass(frozen=True, slots=True)
class SpeechStopped:
    """The user's turn ended; ``at_ms`` is the end of the last voiced frame."""

    at_ms: float
    audio: AudioChunk


@dataclass(frozen=True, slots=True)
class SpeechDiscarded:
    """What started as speech was too short to be a turn (a click, a cough)."""

    at_ms: float


@dataclass(frozen=True, slots=True)
class TranscriptReady:
    transcript: Transcript


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class AudioOut:
    """One sentence's audio (or a piece of it) for the client; ``index`` its sentence."""

    chunk: AudioChunk
    index: int


@dataclass(frozen=True, slots=True)
class Interruption:
    """The user spoke over the reply; ``spoken`` is the text whose audio had played."""

    spoken: str


Frame = (AudioIn | SpeechStarted | SpeechPaused | SpeechStopped | SpeechDiscarded
         | TranscriptReady | TextDelta | AudioOut | Interruption)


def frame_event(frame: Frame) -> dict[str, Any] | None:
    """The socket's JSON event for a frame; None for frames the client does not see
    (input audio, pauses, discarded noise) or that travel otherwise (audio is binary;
    deltas and interruptions go out as the live conversation's own events)."""
    if isinstance(frame, SpeechStarted):
        return {"type": "speech_started", "at_ms": round(frame.at_ms)}
    if isinstance(frame, SpeechStopped):
        return {"type": "speech_stopped", "at_ms": round(frame.at_ms)}
    if isinstance(frame, TranscriptReady):
        heard = frame.transcript
        return {"type": "transcript", "text": heard.text, "confidence": heard.confidence,
                "language": heard.language, "audio_ms": round(heard.audio_ms)}
    return None
