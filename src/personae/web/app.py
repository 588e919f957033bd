"""Mounts the dashboard on the API's app: its pages, its static files, its error pages."""

from __future__ import annotations

from fastapi import FastAPI
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


def install_dashboard(app: FastAPI, settings: Settings) -> None:
    """The dashboard at ``/`` (unless ``dashboard_enabled`` is off)."""
    if not settings.dashboard_enabled:
        return
    app.mount("/static", StaticFiles(packages=[("personae.web", "static")]), name="static")
    for module in (sign_in, personas, chat, voice, panels, writing, tests, admin):
        app.include_router(module.router, include_in_schema=False)
    app.state.html_error = html_error
