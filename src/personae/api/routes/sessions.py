"""``/v1/sessions``: conversations over REST, server-sent events and a WebSocket.

All three carry the same events (see ``conversations.events``). A second message
sent while a reply is streaming gets 409 ``turn_in_progress``.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse
from sse_starlette import EventSourceResponse

from personae.api.deps import (
    ConversationsDep,
    CurrentPrincipal,
    admit_turn,
    websocket_principal,
)
from personae.api.errors import error_body, error_headers
from personae.api.schemas import (
    MAX_OFFSET,
    REPLY_RESPONSES,
    SSE_PING_SECONDS,
    MessageCreate,
    MessagesPublic,
    ReplyPublic,
    SessionCreate,
    SessionOpenedPublic,
    SessionPublic,
    SessionsPublic,
    SwitchedPublic,
    SwitchRequest,
    error_responses,
)
from personae.conversations.engine import ConversationService
from personae.conversations.events import (
    Delta,
    Done,
    LiveEvent,
    TurnEvent,
    TurnFailed,
    event_dict,
    event_json,
)
from personae.conversations.live import LiveConversation
from personae.errors import InvalidInput, PersonaeError

router = APIRouter(prefix="/sessions", tags=["sessions"])


def _events(events: Sequence[TurnEvent]) -> list[dict[str, Any]]:
    return [event_dict(e) for e in events]


@router.post("", status_code=201, responses=error_responses(400, 401, 404, 409, 422))
async def open_session(body: SessionCreate, principal: CurrentPrincipal,
                       conversations: ConversationsDep) -> SessionOpenedPublic:
    """Start talking to a persona; its greeting, if it has one, is the first message."""
    session, events = await conversations.open(principal, body.persona_id,
                                               body.session_meta())
    return SessionOpenedPublic.model_validate({"session": session.public(),
                                               "events": _events(events)})


@router.get("", responses=error_responses(401, 422))
async def list_sessions(principal: CurrentPrincipal, conversations: ConversationsDep,
                        limit: Annotated[int, Query(ge=1, le=200)] = 50,
                        offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0
                        ) -> SessionsPublic:
    found, count = await conversations.list(principal, limit, offset)
    return SessionsPublic.model_validate({"data": [s.public() for s in found],
                                          "count": count})


@router.get("/{session_id}", responses=error_responses(401, 404))
async def get_session(session_id: str, principal: CurrentPrincipal,
                      conversations: ConversationsDep) -> SessionPublic:
    return SessionPublic.model_validate((await conversations.get(principal, session_id))
                                        .public())


@router.delete("/{session_id}", status_code=204, responses=error_responses(401, 404))
async def delete_session(session_id: str, principal: CurrentPrincipal,
                         conversations: ConversationsDep) -> None:
    await conversations.delete(principal, session_id)


@router.get("/{session_id}/messages", responses=error_responses(401, 404))
async def history(session_id: str, principal: CurrentPrincipal,
                  conversations: ConversationsDep) -> MessagesPublic:
    found = await conversations.history(principal, session_id)
    return MessagesPublic.model_validate({"data": [m.public() for m in found],
                                          "count": len(found)})


@router.post("/{session_id}/switch", responses=error_responses(400, 401, 404, 409, 422))
async def switch_persona(session_id: str, body: SwitchRequest, principal: CurrentPrincipal,
                         conversations: ConversationsDep) -> SwitchedPublic:
    """Hand the session to another persona; the history is kept (409 while replying)."""
    events = await conversations.switch(principal, session_id, body.persona_id)
    return SwitchedPublic.model_validate({"events": _events(events)})


@router.post("/{session_id}/messages", response_model=ReplyPublic, responses=REPLY_RESPONSES)
async def send_message(session_id: str, body: MessageCreate, request: Request,
                       principal: CurrentPrincipal, conversations: ConversationsDep
                       ) -> ReplyPublic | JSONResponse | EventSourceResponse:
    """The full reply as JSON, or (``stream`` / ``Accept: text/event-stream``) as SSE.
    A turn that fails answers with the failure's status and the saved partial reply."""
    events = await conversations.send(principal, session_id, body.content)
    if body.stream or "text/event-stream" in request.headers.get("accept", ""):
        return EventSourceResponse(_sse(events), ping=SSE_PING_SECONDS)
    collected = [event async for event in events]
    final = collected[-1]
    if isinstance(final, TurnFailed):
        body_ = error_body(final.code, final.message,
                           {**final.error.details,
                            "message": final.saved.public() if final.saved else None})
        return JSONResponse(body_, final.status,
                            headers=error_headers(final.status, final.error.details))
    assert isinstance(final, Done)
    saved = [e for e in collected[:-1] if not isinstance(e, Delta)]  # the reply has the text
    return ReplyPublic.model_validate({"events": _events(saved),
                                       "reply": final.message.public(), "usage": final.usage})


async def _sse(events: AsyncIterator[TurnEvent]) -> AsyncIterator[dict[str, str]]:
    async for event in events:
        yield {"event": event.type, "data": event_json(event)}


@router.websocket("/{session_id}/ws")
async def session_socket(websocket: WebSocket, session_id: str) -> None:
    """JSON events both ways. Send ``{"type": "message", "content": ...}``,
    ``{"type": "switch", "persona_id": ...}`` or ``{"type": "interrupt"}`` (stop the
    reply now; its partial text is kept); receive message/delta/done/error/interrupted
    and persona_switched events."""
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

    async def emit(event: LiveEvent) -> None:
        await websocket.send_text(event_json(event))

    live = LiveConversation(conversations, principal, session_id, emit)
    admit = functools.partial(admit_turn, websocket, principal)
    try:
        while True:
            await live.request(_client_request(live, await websocket.receive_json(), admit))
    except WebSocketDisconnect:
        pass
    except (ValueError, RecursionError):  # not JSON, or nested past any use
        with contextlib.suppress(Exception):
            await websocket.close(code=1003, reason="send JSON objects")
    finally:
        await live.close()


async def _client_request(live: LiveConversation, data: Any,
                          admit: Callable[[], Awaitable[None]]) -> None:
    """One client frame as a call on the live conversation; a message is a turn, and
    counts as a chat request (refused with an error event when the budget is spent)."""
    kind = data.get("type") if isinstance(data, dict) else None
    if kind == "message":
        await admit()
        await live.say(str(data.get("content", "")))
    elif kind == "switch":
        await live.switch(str(data.get("persona_id", "")))
    elif kind == "interrupt":
        await live.interrupt()
    else:
        raise InvalidInput('expected {"type": "message" | "switch" | "interrupt", ...}')
