"""Dashboard pages: the persona gallery (``/``) and editor."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from personae.web.pages import ViewerDep, render

router = APIRouter()


@router.get("/", response_class=HTMLResponse)
async def gallery(request: Request, viewer: ViewerDep) -> HTMLResponse:
    return render(request, viewer, "gallery.html", {"active": "personas"})
