"""Dashboard pages: chat (``/chat``, ``/chat/{session_id}``).

The page is read through the same service calls as ``GET /v1/sessions``, its
messages and its ratings; everything it changes (start, send, switch, stop, rate)
goes through the JSON API and the session WebSocket from ``static/chat.js`` (or, where
the socket cannot be opened, the same turns over server-sent events).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from personae.auth.principal import Principal
from personae.personas.records import PersonaSummary
from personae.personas.schema import Status
from personae.runtime import Runtime
from personae.web.pages import ViewerDep, page_runtime, render

router = APIRouter()
SESSIONS_SHOWN = 50
PERSONAS_SHOWN = 200


@router.get("/chat", response_class=HTMLResponse)
async def chat_home(request: Request, viewer: ViewerDep,
                    persona: Annotated[str | None, Query(max_length=200)] = None) -> HTMLResponse:
    """The chat page; ``?persona=ID`` (the editor's Chat link) preselects that persona."""
    context = await chat_context(page_runtime(request), viewer.principal, None)
    context["preselected"] = persona
    return render(request, viewer, "chat/index.html", context)


@router.get("/chat/{session_id}", response_class=HTMLResponse)
async def chat_session(session_id: str, request: Request, viewer: ViewerDep) -> HTMLResponse:
    """One of the viewer's sessions with its history; another user's is a 404 page."""
    return render(request, viewer, "chat/index.html",
                  await chat_context(page_runtime(request), viewer.principal, session_id))


async def chat_context(runtime: Runtime, principal: Principal,
                       session_id: str | None) -> dict[str, Any]:
    """What the chat (and voice) page shows: the viewer's personas and sessions, and
    the chosen session with its history and the viewer's ratings of its replies."""
    context: dict[str, Any] = {"active": "chat", "session": None, "history": [],
                               "ratings": {}}
    if session_id is not None:
        session = await runtime.conversations.get(principal, session_id)
        context["session"] = session.public()
        context["history"] = [m.public() for m in
                              await runtime.conversations.history(principal, session_id)]
        context["ratings"] = {r.message_id: r.rating for r in
                              await runtime.ratings.of_session(principal, session_id)}
    sessions, count = await runtime.conversations.list(principal, SESSIONS_SHOWN, 0)
    listed = (await runtime.personas.list(principal, limit=PERSONAS_SHOWN, sort="name",
                                          include_archived=True)).data
    names = {p.id: shown_name(p) for p in listed}
    context.update(
        sessions=[s.public() for s in sessions], session_count=count, names=names,
        personas=[{"id": p.id, "name": shown_name(p)} for p in listed
                  if p.status is not Status.archived])
    return context


def shown_name(persona: PersonaSummary) -> str:
    return persona.display_name or persona.name
