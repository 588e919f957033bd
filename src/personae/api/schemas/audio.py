"""Bodies of the audio routes: a one-shot spoken turn, and OpenAI's audio calls."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from personae.api.schemas.common import error_response, error_responses
from personae.api.schemas.openai import OpenAIError, openai_responses
from personae.api.schemas.sessions import MessagePublic
from personae.errors import FieldIssue, ValidationFailed

AUDIO_DOWNLOAD = {"type": "string", "format": "binary"}
UNSUPPORTED_AUDIO = ("Not audio Personae reads: empty, corrupt or truncated, or not WAV, "
                     "FLAC, MP3, OGG/Opus, WebM, M4A or AAC (unsupported_media_type)")
AUDIO_INPUTS = "WAV, FLAC, MP3, OGG/Opus, WebM, M4A or AAC (ADTS)"
NOT_SPOKEN = ("The audio is longer than the limit, holds no speech, or no recogniser "
              "knows the persona's language (validation_error)")
SPEECH_FORMATS = Literal["mp3", "opus", "aac", "flac", "wav", "pcm"]
MAX_SPEECH_INPUT = 4096


def missing_file() -> ValidationFailed:
    """The 422 both audio upload routes answer when the form has no ``file`` part."""
    error = ValidationFailed([FieldIssue("file", "required: the audio file, as a file part")])
    error.details["param"] = "file"  # OpenAI's clients show the field by this
    return error


class TranscriptPublic(BaseModel):
    text: str
    confidence: float | None = Field(description="0..1 when the recogniser tells")
    language: str | None
    audio_ms: float = Field(description="length of the audio heard")


class ClipPublic(BaseModel):
    id: str
    url: str = Field(description="GET it (with the same key) until it expires")
    media_type: str
    audio_ms: float
    voice: dict[str, Any] = Field(description="synthesiser and voice_id that spoke")


class SpokenReplyPublic(BaseModel):
    """A spoken turn: what was heard, the two saved messages, the reply's audio."""

    transcript: TranscriptPublic
    message: MessagePublic = Field(description="the user's message: the transcript")
    reply: MessagePublic = Field(description="the persona's reply, its meta holding "
                                             "voice and timings")
    audio: ClipPublic | None = Field(description="none when no voice speaks the "
                                                 "persona's language (see warnings)")
    timings: dict[str, float] = Field(description="decode_ms, stt_ms, reply_ms, tts_ms, "
                                                  "total_ms")
    warnings: list[str] = Field(default_factory=list)


class SpeechRequest(BaseModel):
    """OpenAI's ``POST /v1/audio/speech`` body."""

    model_config = ConfigDict(extra="ignore")

    model: str = Field(min_length=1, description="tts-1, or a persona id: its voice")
    input: str = Field(min_length=1, max_length=MAX_SPEECH_INPUT)
    voice: str = Field(default="alloy", min_length=1, description="a persona id, a local "
                       "voice id (en_US-joe-medium, an espeak-ng voice such as hi), or a "
                       "cloud provider's voice (alloy, nova, ...)")
    response_format: SPEECH_FORMATS = "mp3"
    speed: float = Field(default=1.0, ge=0.25, le=4.0)
    instructions: str | None = Field(default=None, description="accepted, not used")


class TranscriptionSegment(BaseModel):
    id: int
    start: float
    end: float
    text: str


class TranscriptionPublic(BaseModel):
    """``{"text"}``; with ``response_format=verbose_json`` also the rest (one segment)."""

    text: str
    task: Literal["transcribe"] | None = None
    language: str | None = Field(default=None, description="BCP 47, e.g. en")
    duration: float | None = Field(default=None, description="seconds")
    segments: list[TranscriptionSegment] | None = None


SPOKEN_TURN_RESPONSES: dict[int | str, dict[str, Any]] = {
    201: {"model": SpokenReplyPublic,
          "description": "The spoken turn as JSON; with `Accept: audio/wav` the reply's "
                         "WAV itself (X-Transcript, X-Message-Id, X-Audio-Id headers)",
          "content": {"audio/wav": {"schema": AUDIO_DOWNLOAD}}},
    **error_responses(400, 401, 404, 409, 413, 422),
    415: error_response(415, UNSUPPORTED_AUDIO),
}
CLIP_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "The audio file", "content": {
        media: {"schema": AUDIO_DOWNLOAD} for media in ("audio/wav", "audio/mpeg")}},
    **error_responses(401, 404),
}
TRANSCRIPTION_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": TranscriptionPublic,
          "description": "The text (json), the text alone (text), or with language, "
                         "duration and segments (verbose_json)",
          "content": {"text/plain": {"schema": {"type": "string"}}}},
    **openai_responses(400, 401, 413, 502, 503, 504),
    415: error_response(415, UNSUPPORTED_AUDIO, OpenAIError),
    422: error_response(422, NOT_SPOKEN, OpenAIError),
}
SPEECH_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "The audio, in response_format", "content": {
        media: {"schema": AUDIO_DOWNLOAD} for media in (
            "audio/mpeg", "audio/ogg", "audio/aac", "audio/flac", "audio/wav", "audio/pcm")}},
    **openai_responses(400, 401, 404, 409, 413, 502, 503, 504),
    422: error_response(422, "No voice speaks the persona's language (validation_error)",
                        OpenAIError),
}
