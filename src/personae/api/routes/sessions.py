"""``/v1/sessions``: conversations over REST, server-sent events and a WebSocket.

All three carry the same events (see ``conversations.events``). A second message
sent while a reply is streaming gets 409 ``turn_in_progress``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sse_starlette import EventSourceResponse

from personae.api.deps import ConversationsDep, CurrentPrincipal, websocket_principal
from personae.api.errors import error_body
from personae.auth.principal import Principal
from personae.conversations.engine import ConversationService
from personae.conversations.events import Delta, Done, TurnEvent, TurnFailed, event_dict
from personae.errors import PersonaeError

router = APIRouter(prefix="/sessions", tags=["sessions"])
log = logging.getLogger(__name__)


class SessionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    persona_id: str = Field(description="the persona to talk to")
    meta: dict[str, Any] = Field(default_factory=dict, description="your own labels")


class MessageCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    content: str = Field(description="what the user says")
    stream: bool = Field(default=False, description="reply as server-sent events")


class SwitchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    persona_id: str


def _events(events: list[TurnEvent]) -> list[dict[str, Any]]:
    return [event_dict(e) for e in events]


@router.post("", status_code=201)
async def open_session(body: SessionCreate, principal: CurrentPrincipal,
                       conversations: ConversationsDep) -> dict[str, Any]:
    session, events = await conversations.open(principal, body.persona_id, body.meta)
    return {"session": session.public(), "events": _events(events)}


@router.get("")
async def list_sessions(principal: CurrentPrincipal, conversations: ConversationsDep,
                        limit: Annotated[int, Query(ge=1, le=200)] = 50,
                        offset: Annotated[int, Query(ge=0)] = 0) -> dict[str, Any]:
    found, count = await conversations.list(principal, limit, offset)
    return {"data": [s.public() for s in found], "count": count}


@router.get("/{session_id}")
async def get_session(session_id: str, principal: CurrentPrincipal,
                      conversations: ConversationsDep) -> dict[str, Any]:
    return (await conversations.get(principal, session_id)).public()


@router.delete("/{session_id}", status_code=204)
async def delete_session(session_id: str, principal: CurrentPrincipal,
                         conversations: ConversationsDep) -> None:
    await conversations.delete(principal, session_id)


@router.get("/{session_id}/messages")
async def history(session_id: str, principal: CurrentPrincipal,
                  conversations: ConversationsDep) -> dict[str, Any]:
    found = await conversations.history(principal, session_id)
    return {"data": [m.public() for m in found], "count": len(found)}


@router.post("/{session_id}/switch")
async def switch_persona(session_id: str, body: SwitchRequest, principal: CurrentPrincipal,
                         conversations: ConversationsDep) -> dict[str, Any]:
    return {"events": _events(await conversations.switch(principal, session_id,
                                                         body.persona_id))}


@router.post("/{session_id}/messages", response_model=None)
async def send_message(session_id: str, body: MessageCreate, request: Request,
                       principal: CurrentPrincipal, conversations: ConversationsDep
                       ) -> JSONResponse | EventSourceResponse:
    """The full reply as JSON, or (``stream`` / ``Accept: text/event-stream``) as SSE."""
    events = await conversations.send(principal, session_id, body.content)
    if body.stream or "text/event-stream" in request.headers.get("accept", ""):
        return EventSourceResponse(_sse(events), ping=15)
    collected = [event async for event in events]
    final = collected[-1]
    if isinstance(final, TurnFailed):
        body_ = error_body(final.code, final.message,
                           {"message": final.saved.public() if final.saved else None})
        return JSONResponse(body_, final.status)
    assert isinstance(final, Done)
    saved = [e for e in collected[:-1] if not isinstance(e, Delta)]  # the reply has the text
    return JSONResponse({"events": _events(saved), "reply": final.message.public(),
                         "usage": final.usage}, 200)


async def _sse(events: AsyncIterator[TurnEvent]) -> AsyncIterator[dict[str, str]]:
    async for event in events:
        data = event_dict(event)
        yield {"event": data["type"], "data": json.dumps(data, ensure_ascii=False)}


@router.websocket("/{session_id}/ws")
async def session_socket(websocket: WebSocket, session_id: str) -> None:
    """JSON events both ways: send ``{"type": "message", "content": ...}`` or
    ``{"type": "switch", "persona_id": ...}``; receive message/delta/done/error events."""
    conversations: ConversationService = websocket.app.state.runtime.conversations
    try:
        principal = await websocket_principal(websocket)
        session = await conversations.get(principal, session_id)
    except PersonaeError as exc:
        # Accept first: a refusal before accepting reaches the client as a bare 403.
        await websocket.accept()
        await websocket.close(code=4000 + exc.status, reason=exc.message[:120])
        return
    await websocket.accept()
    await websocket.send_json({"type": "ready", "session": session.public()})
    await _SocketConversation(websocket, conversations, principal, session_id).run()


class _SocketConversation:
    """Reads client events while a reply streams, so a second send gets a clear 409."""

    def __init__(self, websocket: WebSocket, conversations: ConversationService,
                 principal: Principal, session_id: str) -> None:
        self.ws, self.conversations = websocket, conversations
        self.principal, self.session_id = principal, session_id
        self.turn: asyncio.Task[None] | None = None
        self.final_sent = False  # the running turn has sent its done/error event

    async def run(self) -> None:
        try:
            while True:
                await self._handle(await self.ws.receive_json())
        except WebSocketDisconnect:
            pass
        except (ValueError, json.JSONDecodeError):
            with contextlib.suppress(Exception):
                await self.ws.close(code=1003, reason="send JSON objects")
        finally:
            if self.turn is not None and not self.turn.done():
                self.turn.cancel()  # the partial reply is saved as interrupted
                with contextlib.suppress(asyncio.CancelledError):
                    await self.turn

    async def _handle(self, data: Any) -> None:
        kind = data.get("type") if isinstance(data, dict) else None
        if self.turn is not None and self.final_sent:
            await self.turn  # it sent its last event and is finishing: not a conflict
        try:
            if kind == "message" and self.turn is not None and not self.turn.done():
                await self._error("turn_in_progress", 409,
                                  "a reply is still streaming on this session; wait for "
                                  "its done event, then send again")
            elif kind == "message":
                events = await self.conversations.send(self.principal, self.session_id,
                                                       str(data.get("content", "")))
                self.final_sent = False
                self.turn = asyncio.create_task(self._stream(events))
            elif kind == "switch":
                for event in await self.conversations.switch(
                        self.principal, self.session_id, str(data.get("persona_id", ""))):
                    await self.ws.send_json(event_dict(event))
            else:
                await self._error("invalid_input", 400,
                                  "expected {\"type\": \"message\" | \"switch\", ...}")
        except PersonaeError as exc:
            await self._error(exc.code, exc.status, exc.message)
        except Exception:
            log.exception("session %s: request failed", self.session_id)
            await self._error("internal_error", 500, "internal server error; see server log")

    async def _stream(self, events: AsyncIterator[TurnEvent]) -> None:
        try:
            async for event in events:
                if isinstance(event, Done | TurnFailed):
                    self.final_sent = True
                await self.ws.send_json(event_dict(event))
        except (WebSocketDisconnect, RuntimeError, asyncio.CancelledError):
            raise
        except Exception:
            log.exception("session %s: turn failed", self.session_id)
            with contextlib.suppress(Exception):
                await self._error("internal_error", 500,
                                  "internal server error; see server log")
            self.final_sent = True

    async def _error(self, code: str, status: int, message: str) -> None:
        await self.ws.send_json({"type": "error",
                                 "error": {"code": code, "message": message, "status": status}})
