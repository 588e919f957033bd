"""``/v1/audio/transcriptions`` and ``/v1/audio/speech``: OpenAI's audio calls.

``model`` (or, for speech, ``voice``) naming a persona the key may use picks its
language and recogniser, or its voice; any other name (``whisper-1``, ``tts-1``,
``alloy``) gets the default recogniser, a local voice of that id, or the default
voice. Errors are in OpenAI's shape (see :mod:`.openai_compat`), which the SDKs parse.
Speech is streamed as it is spoken (chunked), as OpenAI streams it.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import ValidationError
from starlette.datastructures import FormData, UploadFile
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from personae.api.deps import get_principal
from personae.api.routes.openai_compat import OpenAIRoute
from personae.api.schemas.audio import (
    SPEECH_RESPONSES,
    TRANSCRIPTION_RESPONSES,
    SpeechRequest,
    missing_file,
)
from personae.errors import InvalidInput, UnsupportedParameter, invalid_param
from personae.limits import load_json
from personae.providers.speech import Transcript
from personae.providers.streams import aclose_stream
from personae.voice.clips import MEDIA_TYPES
from personae.voice.service import VoiceService

router = APIRouter(prefix="/audio", tags=["openai"], route_class=OpenAIRoute)
TRANSCRIPTION_FORMATS = ("json", "text", "verbose_json")


def _voice(request: Request) -> VoiceService:
    voice: VoiceService = request.app.state.runtime.voice
    return voice


def _field(form: FormData, name: str) -> str | None:
    value = form.get(name)
    if isinstance(value, UploadFile):
        raise invalid_param(name, "must be a form field, not a file")
    return value.strip() or None if isinstance(value, str) else None


@router.post("/transcriptions", response_model=None, responses=TRANSCRIPTION_RESPONSES,
             openapi_extra={"requestBody": {"required": True, "content": {
                 "multipart/form-data": {"schema": {
                     "type": "object", "required": ["file", "model"], "properties": {
                         "file": {"type": "string", "format": "binary"},
                         "model": {"type": "string"}, "language": {"type": "string"},
                         "prompt": {"type": "string"},
                         "response_format": {"enum": list(TRANSCRIPTION_FORMATS)},
                         "temperature": {"type": "number"}}}}}}})
async def transcriptions(request: Request) -> Response:
    """The text of a recording; ``model`` may name a persona (its language)."""
    principal = await get_principal(request)
    voice = _voice(request)
    async with request.form() as form:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise missing_file()
        data = await upload.read(voice.settings.voice_max_audio_bytes + 1)
        fields = {name: _field(form, name) for name in
                  ("model", "language", "prompt", "response_format", "stream")}
    response_format = fields["response_format"] or "json"
    if response_format not in TRANSCRIPTION_FORMATS:
        raise UnsupportedParameter(
            f"response_format: {response_format!r} is not supported; use json, text or "
            "verbose_json", {"param": "response_format"})
    if (fields["stream"] or "false").lower() == "true":
        raise UnsupportedParameter("stream: streamed transcriptions are not supported",
                                   {"param": "stream"})
    persona_id = await voice.persona_named(principal, fields["model"])
    transcript = await voice.transcribe(principal, data, language=fields["language"],
                                        persona_id=persona_id, prompt=fields["prompt"])
    return _transcription(transcript, response_format)


def _transcription(transcript: Transcript, response_format: str) -> Response:
    text = transcript.text.strip()
    if response_format == "text":
        return Response(text + "\n", media_type="text/plain; charset=utf-8")
    body: dict[str, Any] = {"text": text}
    if response_format == "verbose_json":
        duration = round(transcript.audio_ms / 1000, 3)
        body = {"task": "transcribe", "language": transcript.language or "", "duration":
                duration, "text": text, "segments": [{
                    "id": 0, "seek": 0, "start": 0.0, "end": duration, "text": text,
                    "tokens": [], "temperature": 0.0, "avg_logprob": 0.0,
                    "compression_ratio": 1.0, "no_speech_prob": 0.0}]}
    return Response(json.dumps(body, ensure_ascii=False), media_type="application/json")


@router.post("/speech", response_model=None, response_class=Response,
             responses=SPEECH_RESPONSES,
             openapi_extra={"requestBody": {"required": True, "content": {
                 "application/json": {"schema": SpeechRequest.model_json_schema()}}}})
async def speech(request: Request) -> Response:
    """``input`` spoken: in a persona's voice when ``voice`` or ``model`` names one;
    the audio is sent as each sentence is spoken."""
    principal = await get_principal(request)
    voice = _voice(request)
    body = _speech_request(await request.body())
    persona_id = (await voice.persona_named(principal, body.voice)
                  or await voice.persona_named(principal, body.model))
    spoken = await voice.speak_stream(principal, body.input, persona_id,
                                      None if persona_id else body.voice, body.speed,
                                      body.response_format)
    return _ClosingStream(spoken.chunks, media_type=MEDIA_TYPES[body.response_format],
                          headers={"X-Voice": f"{spoken.synthesiser}/{spoken.voice_id or ''}"})


class _ClosingStream(StreamingResponse):
    """Closes its body however the response ends: a client gone mid-file stops the
    synthesis at once, not when the abandoned stream is collected."""

    def __init__(self, chunks: AsyncIterator[bytes], *, media_type: str,
                 headers: dict[str, str]) -> None:
        super().__init__(chunks, media_type=media_type, headers=headers)
        self.chunks = chunks

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await aclose_stream(self.chunks)


def _speech_request(raw: bytes) -> SpeechRequest:
    try:
        return SpeechRequest.model_validate(load_json(raw, "the request body"))
    except ValidationError as exc:
        issue = exc.errors()[0]
        param = ".".join(str(part) for part in issue["loc"]) or "body"
        raise invalid_param(param, issue["msg"]) from None
    except ValueError:
        raise InvalidInput("the request body must be JSON") from None
