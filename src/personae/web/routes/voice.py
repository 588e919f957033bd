"""Dashboard pages: the voice call (``/voice``, ``/voice/{session_id}``).

Read like the chat page (the same service calls); the call itself is
``static/voice.js`` on the voice WebSocket. Without voice installed the page says how
to enable it (the template reads ``capabilities``).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from personae.web.pages import ViewerDep, page_runtime, render
from personae.web.routes.chat import chat_context

router = APIRouter()


@router.get("/voice", response_class=HTMLResponse)
async def voice_home(request: Request, viewer: ViewerDep) -> HTMLResponse:
    context = await chat_context(page_runtime(request), viewer.principal, None)
    return render(request, viewer, "voice/index.html", {**context, "active": "voice"})


@router.get("/voice/{session_id}", response_class=HTMLResponse)
async def voice_session(session_id: str, request: Request, viewer: ViewerDep) -> HTMLResponse:
    """A call on one of the viewer's sessions; another user's is a 404 page."""
    context = await chat_context(page_runtime(request), viewer.principal, session_id)
    return render(request, viewer, "voice/index.html", {**context, "active": "voice"})
