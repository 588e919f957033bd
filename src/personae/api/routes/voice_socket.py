"""``WS /v1/sessions/{id}/voice``: a real-time voice call on a session.

A thin adapter: auth and ownership as on the text socket, then every frame is handed
to :class:`~personae.voice.call.VoiceCall` (binary frames are audio, text frames JSON
requests) and what it sends goes back out.
"""

from __future__ import annotations

import contextlib
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from personae.api.deps import admit_turn, websocket_principal
from personae.errors import PersonaeError
from personae.voice.call import VoiceCall

router = APIRouter(prefix="/sessions", tags=["voice"])


@router.websocket("/{session_id}/voice")
async def voice_socket(websocket: WebSocket, session_id: str) -> None:
    """Send binary audio (PCM16 mono 16 kHz unless declared with ``{"type": "start",
    "format", "sample_rate"}``) and JSON requests (message, switch, interrupt,
    end_of_speech); receive ready, speech_started/stopped, transcript, the
    conversation's events, audio_start/audio_end around binary PCM16 reply audio,
    timings and warnings."""
    runtime = websocket.app.state.runtime
    try:
        principal = await websocket_principal(websocket)
        await runtime.conversations.get(principal, session_id)
    except PersonaeError as exc:
        await websocket.accept()  # a refusal before accepting reaches the client as 403
        await websocket.close(code=4000 + exc.status, reason=exc.message[:120])
        return
    await websocket.accept()

    async def send_event(event: dict[str, Any]) -> None:
        await websocket.send_json(event)

    async def admit() -> None:  # each voice turn counts as a chat request
        await admit_turn(websocket, principal)

    call = VoiceCall(runtime.conversations, runtime.speech, runtime.settings, principal,
                     session_id, send_event, websocket.send_bytes, before_turn=admit,
                     on_stage=runtime.metrics.voice_stage)
    try:
        await call.start()
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break
            if message.get("bytes") is not None:
                await call.receive_audio(message["bytes"])
            elif message.get("text") is not None:
                await call.receive_text(message["text"])
    except WebSocketDisconnect:
        pass
    except PersonaeError as exc:  # the call could not start (its persona is gone)
        with contextlib.suppress(Exception):
            await websocket.close(code=4000 + exc.status, reason=exc.message[:120])
    finally:
        await call.close()
