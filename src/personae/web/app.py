"""Mounts the dashboard on the API's app: its pages, its static files, its error pages."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles

from personae.config import Settings
from personae.web.errors import html_error
from personae.web.routes import (
    admin,
    chat,
    panels,
    personas,
    sign_in,
    tests,
    voice,
    writing,
)

# The dashboard's page routers, in the order their routes match.
PAGE_MODULES = (sign_in, personas, chat, voice, panels, writing, tests, admin)


def answer_head(router: APIRouter) -> APIRouter:
    """Every GET page of ``router`` answers HEAD too (as Starlette's own routes do, and
    FastAPI's do not): uptime checks and ``curl -I`` ask with HEAD. The server sends the
    GET's status and headers without its body."""
    for route in router.routes:
        if isinstance(route, APIRoute) and route.methods and "GET" in route.methods:
            route.methods.add("HEAD")
    return router


def install_dashboard(app: FastAPI, settings: Settings) -> None:
    """The dashboard at ``/`` (unless ``dashboard_enabled`` is off)."""
    if not settings.dashboard_enabled:
        return
    app.mount("/static", StaticFiles(packages=[("personae.web", "static")]), name="static")
    for module in PAGE_MODULES:
        app.include_router(answer_head(module.router), include_in_schema=False)
    app.state.html_error = html_error
