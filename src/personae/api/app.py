"""The HTTP application: ``create_app(settings)`` builds a fresh app (no globals)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from types import FrameType

from fastapi import FastAPI
from sse_starlette.sse import AppStatus
from starlette.middleware.cors import CORSMiddleware

from personae import __version__
from personae.api.docs import install_docs
from personae.api.errors import install_error_handlers
from personae.api.limits import BodyLimits
from personae.api.observe import Observe
from personae.api.routes import (
    audio,
    audit,
    evaluations,
    health,
    me,
    metrics,
    openai_audio,
    openai_compat,
    panels,
    persona_files,
    persona_metrics,
    persona_tests,
    persona_versions,
    personas,
    ratings,
    sessions,
    users,
    voice_socket,
    writing,
)
from personae.config import Settings, get_settings
from personae.logs import install_redaction
from personae.runtime import Runtime
from personae.web.app import install_dashboard

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


def _drain_on_termination(runtime: Runtime) -> Callable[[], None]:
    """Start draining turns the moment SIGTERM or SIGINT reaches the server.

    uvicorn runs the lifespan shutdown only after its graceful wait for open responses,
    which streamed replies prolong; so its signal handler is wrapped: from the signal
    on, new turns are refused, running ones get ``shutdown_grace_seconds`` and are then
    stopped and saved, and only then are other event streams let go (sse-starlette
    would otherwise cut them all at the signal). Returns the undo; does nothing where
    no server handles the signals (in-process tests)."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    loop = asyncio.get_running_loop()
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    servers = {sig: handler for sig, handler in previous.items()
               if callable(handler) and handler is not signal.default_int_handler}
    draining: list[asyncio.Task[None]] = []

    async def drain() -> None:
        await runtime.conversations.drain(runtime.settings.shutdown_grace_seconds)
        AppStatus.should_exit = True  # the turns are saved: end the other event streams

    def begin() -> None:
        if not draining:
            draining.append(loop.create_task(drain(), name="drain-on-signal"))

    def handle(sig: int, frame: FrameType | None) -> None:
        loop.call_soon_threadsafe(begin)
        servers[signal.Signals(sig)](sig, frame)

    for sig in servers:
        signal.signal(sig, handle)
    if servers:
        AppStatus.enable_automatic_graceful_drain = False  # the drain above ends them

    def undo() -> None:
        for sig, handler in servers.items():
            if signal.getsignal(sig) is handle:
                signal.signal(sig, handler)

    return undo


_heap_frozen = False
GC_YOUNG_THRESHOLD = 10_000  # Python's default, 700, is crossed by every few requests


def _freeze_startup_heap() -> None:
    """Once per process, move what start-up built (modules, the runtime, its caches) out
    of the cyclic collector's sight, and collect the young generation less often.

    Requests free their objects by reference counting; what the collector found was
    the objects of requests in flight, again and again. In `bench/gateway_overhead.py`
    at concurrency 100, full collections walking the ~200k start-up objects paused the
    server ~90 ms twice a second, and young collections took 6% of the time besides.
    Objects made later are collected as usual. (A flag, not ``gc.get_freeze_count()``,
    tells whether it was done: that call walks every frozen object.)"""
    global _heap_frozen
    if not _heap_frozen:
        _heap_frozen = True
        gc.collect()
        gc.freeze()
        gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])


# Response headers a browser script on another origin may read.
CORS_EXPOSED = ["X-Request-ID", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset",
                "Retry-After", "ETag"]


def install_cors(app: FastAPI, settings: Settings) -> None:
    """Cross-origin access for ``settings.cors_origins`` only (none: no CORS headers)."""
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins,
                           allow_credentials=settings.cors_allow_credentials,
                           allow_methods=["*"], allow_headers=["*"],
                           expose_headers=CORS_EXPOSED, max_age=600)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        install_redaction()  # the server has configured logging by now: no keys in logs
        runtime = await Runtime.open(settings)
        app.state.runtime = runtime
        app.state.local_admin = (await runtime.auth.local_admin()
                                 if settings.keyless_allowed else None)
        sweeper = asyncio.create_task(_expire_idle_sessions(runtime), name="session-expiry")
        await runtime.conversations.start()  # turns a killed or restarted server left
        await runtime.panels.resume()  # in-process jobs left unfinished by a restart
        await runtime.test_runs.resume()  # and test runs, started again from scratch
        await runtime.voice.start()  # sweeps reply audio left by an earlier process
        undo_signals = _drain_on_termination(runtime)
        _freeze_startup_heap()
        try:
            yield
        finally:
            undo_signals()
            await runtime.voice.stop()
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
            await runtime.conversations.drain(settings.shutdown_grace_seconds)
            await runtime.close()
            runtime.metrics.close()

    app = FastAPI(
        title="Personae",
        version=__version__,
        summary="Define an AI persona once; use it everywhere.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    install_error_handlers(app)
    app.add_middleware(BodyLimits, max_body_bytes=settings.max_body_bytes,
                       max_upload_bytes=settings.max_upload_bytes,
                       max_audio_bytes=settings.voice_max_audio_bytes)
    install_cors(app, settings)
    app.add_middleware(Observe)  # outermost: sees every answer, preflights and 413s too
    install_docs(app)
    # Routes match in order: the hot paths first, chat completions (three routes, cheap to
    # pass over) ahead of the persona router (its cached GET; many more routes to try).
    # The persona's three routers one after another, in their routes' (and documents') order.
    for module in (openai_compat, openai_audio, personas, persona_versions, persona_files,
                   persona_metrics, me, sessions, ratings, audio, panels, evaluations,
                   persona_tests, voice_socket, writing, users, audit):
        app.include_router(module.router, prefix="/v1")
    app.include_router(health.router)
    app.include_router(metrics.router)
    install_dashboard(app, settings)
    return app
