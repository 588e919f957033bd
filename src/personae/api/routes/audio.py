"""One-shot voice: ``POST /v1/sessions/{id}/audio`` (a recorded question answered in
the persona's voice) and ``GET /v1/audio/{id}`` (the reply's audio, owner only)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, BinaryIO
from urllib.parse import quote

from fastapi import APIRouter, Depends, File, Request, Response, UploadFile
from starlette.background import BackgroundTask
from starlette.responses import StreamingResponse

from personae.api.deps import CurrentPrincipal
from personae.api.schemas.audio import (
    AUDIO_INPUTS,
    CLIP_RESPONSES,
    SPOKEN_TURN_RESPONSES,
    SpokenReplyPublic,
)
from personae.voice.service import SpokenReply, VoiceService

router = APIRouter(tags=["audio"])
CHUNK_BYTES = 64 * 1024
WAV = "audio/wav"


async def get_voice(request: Request) -> VoiceService:
    voice: VoiceService = request.app.state.runtime.voice
    return voice


VoiceDep = Annotated[VoiceService, Depends(get_voice)]


@router.post("/sessions/{session_id}/audio", status_code=201, response_model=None,
             responses=SPOKEN_TURN_RESPONSES)
async def spoken_turn(
    session_id: str, request: Request, principal: CurrentPrincipal, voice: VoiceDep,
    file: Annotated[UploadFile, File(description=f"the question: {AUDIO_INPUTS}")],
) -> SpokenReplyPublic | Response:
    """A recorded question answered in the persona's voice: the transcript is the
    user's message, the spoken reply the persona's. JSON with a link to the reply's
    audio, or (``Accept: audio/wav``) the WAV itself."""
    data = await file.read(voice.settings.voice_max_audio_bytes + 1)
    spoken = await voice.respond(principal, session_id, data, file.filename,
                                 file.content_type)
    if WAV in request.headers.get("accept", "") and spoken.clip is not None:
        return Response(spoken.audio, 201, media_type=WAV, headers={
            "X-Transcript": quote(spoken.transcript.text, safe=""),
            "X-Message-Id": str(spoken.reply.id), "X-Audio-Id": spoken.clip.id})
    return _public(spoken)


def _public(spoken: SpokenReply) -> SpokenReplyPublic:
    heard = spoken.transcript
    clip = spoken.clip
    return SpokenReplyPublic.model_validate({
        "transcript": {"text": heard.text, "confidence": heard.confidence,
                       "language": heard.language, "audio_ms": heard.audio_ms},
        "message": spoken.message.public(), "reply": spoken.reply.public(),
        "audio": None if clip is None else {
            "id": clip.id, "url": f"/v1/audio/{clip.id}", "media_type": clip.media_type,
            "audio_ms": spoken.audio_ms, "voice": spoken.voice},
        "timings": spoken.timings, "warnings": spoken.warnings})


@router.get("/audio/{clip_id}", response_class=Response, responses=CLIP_RESPONSES)
async def get_clip(clip_id: str, principal: CurrentPrincipal,
                   voice: VoiceDep) -> StreamingResponse:
    """A reply's audio, to the user it was made for, until it expires."""
    file, media_type, size = await voice.clip(principal, clip_id)
    return StreamingResponse(_chunks(file), media_type=media_type,
                             headers={"Content-Length": str(size),
                                      "Cache-Control": "private, no-store"},
                             background=BackgroundTask(file.close))


def _chunks(file: BinaryIO) -> Iterator[bytes]:
    """The open file's bytes (read on a worker thread by the response)."""
    while chunk := file.read(CHUNK_BYTES):
        yield chunk
