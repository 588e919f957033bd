"""The HTTP application: ``create_app(settings)`` builds a fresh app (no globals)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import FastAPI

from personae import __version__
from personae.api.docs import install_docs
from personae.api.errors import install_error_handlers
from personae.api.routes import evaluations, health, me, openai_compat, panels, personas, sessions
from personae.config import Settings, get_settings
from personae.runtime import Runtime

log = logging.getLogger(__name__)


async def _expire_idle_sessions(runtime: Runtime) -> None:
    """Close sessions idle longer than ``session_idle_seconds`` (their history stays)."""
    idle = timedelta(seconds=runtime.settings.session_idle_seconds)
    while True:
        try:
            await runtime.conversations.expire_idle(idle)
        except Exception:  # the database may be briefly away; try again next round
            log.warning("expiring idle sessions failed", exc_info=True)
        await asyncio.sleep(min(60.0, runtime.settings.session_idle_seconds / 2))


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = await Runtime.open(settings)
        app.state.runtime = runtime
        app.state.local_admin = (await runtime.auth.local_admin()
                                 if settings.keyless_allowed else None)
        sweeper = asyncio.create_task(_expire_idle_sessions(runtime), name="session-expiry")
        await runtime.panels.resume()  # in-process jobs left unfinished by a restart
        try:
            yield
        finally:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
            await runtime.close()

    app = FastAPI(
        title="Personae",
        version=__version__,
        summary="Define an AI persona once; use it everywhere.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    install_error_handlers(app)
    install_docs(app)
    # The persona router goes first: its cached GET is the hot path and routes match in order.
    app.include_router(personas.router, prefix="/v1")
    app.include_router(openai_compat.router, prefix="/v1")
    app.include_router(health.router)
    app.include_router(me.router, prefix="/v1")
    app.include_router(sessions.router, prefix="/v1")
    app.include_router(panels.router, prefix="/v1")
    app.include_router(evaluations.router, prefix="/v1")
    return app
