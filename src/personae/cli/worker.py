"""``personae worker``: run panel jobs from Redis (``PERSONAE_QUEUE=arq``).

Start as many workers as you like, on any hosts that reach the same database and
Redis. arq runs its own event loop and, unless ``--burst``, stops gracefully on
SIGINT/SIGTERM, finishing the jobs in hand.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import TYPE_CHECKING, Any

import typer

from personae.cli import output
from personae.cli.session import settings_for
from personae.config import Settings
from personae.errors import PersonaeError
from personae.logs import install_redaction
from personae.runtime import Runtime

if TYPE_CHECKING:
    from arq.worker import Worker

log = logging.getLogger(__name__)
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
CHATTY = ("httpx", "httpx2")  # a line per HTTP request: shown only at debug level


def _check(settings: Settings) -> None:
    if settings.queue != "arq":
        raise PersonaeError(
            "personae worker runs panel jobs from Redis: set PERSONAE_QUEUE=arq and "
            "PERSONAE_REDIS_URL (with the default local queue, jobs run in the process "
            "that creates them and no worker is needed)")
    if not settings.redis_url:
        raise PersonaeError("PERSONAE_REDIS_URL is required when PERSONAE_QUEUE=arq "
                            "(e.g. redis://127.0.0.1:6379/0)")


def _configure_logging(name: str) -> None:
    """Logs on stderr at ``PERSONAE_LOG_LEVEL`` (info unless set)."""
    found = logging.getLevelName(name.upper())
    level = found if isinstance(found, int) else logging.INFO
    logging.basicConfig(level=level, stream=sys.stderr, format=LOG_FORMAT)
    logging.getLogger().setLevel(level)
    install_redaction(("",))  # e.g. a Redis or database URL's password
    for chatty in CHATTY:
        logging.getLogger(chatty).setLevel(max(level, logging.WARNING))


def worker(
    ctx: typer.Context,
    burst: bool = typer.Option(False, "--burst", help="Exit once the queue is empty."),
    concurrency: int | None = typer.Option(
        None, "--concurrency", min=1, max=1000,
        help="Jobs run at once (overrides PERSONAE_PANEL_CONCURRENCY, default 8)."),
) -> None:
    """Run panel jobs from Redis until stopped (needs PERSONAE_QUEUE=arq, PERSONAE_REDIS_URL)."""
    settings = settings_for(ctx)
    _check(settings)
    if concurrency is not None:
        settings = settings.model_copy(update={"panel_concurrency": concurrency})
    try:
        import arq  # noqa: F401  (the redis extra)
    except ModuleNotFoundError:
        raise PersonaeError("personae worker needs the redis extra: "
                            "pip install 'personae[redis]'") from None
    _configure_logging(settings.log_level)
    try:
        _run(build_worker(settings, burst=burst))
    except KeyboardInterrupt:
        output.warn("interrupted: jobs in hand run again once their time limit passes")
        raise typer.Exit(130) from None


def build_worker(settings: Settings, *, burst: bool = False) -> Worker:
    """An arq worker whose jobs share one runtime (database, model providers)."""
    from arq.worker import Worker

    from personae.panels.arq_queue import redis_settings, worker_functions
    from personae.quality.queue import worker_functions as test_run_functions

    async def startup(ctx: dict[str, Any]) -> None:
        runtime = await Runtime.open(settings, watch=True)
        ctx["runtime"] = runtime
        ctx["runner"] = runtime.panel_runner
        ctx["test_runs"] = runtime.test_run_job
        ctx["queue_name"] = settings.queue_name
        log.info("panel worker ready: queue %s, %d jobs at a time", settings.queue_name,
                 settings.panel_concurrency)

    async def shutdown(ctx: dict[str, Any]) -> None:
        runtime = ctx.get("runtime")
        if runtime is not None:
            await runtime.close()

    return Worker(
        functions=[*worker_functions(settings), *test_run_functions(settings)],
        redis_settings=redis_settings(settings),
        queue_name=settings.queue_name, on_startup=startup, on_shutdown=shutdown,
        max_jobs=settings.panel_concurrency, job_timeout=settings.job_timeout_seconds,
        keep_result=0, burst=burst, handle_signals=not burst, poll_delay=0.1,
        max_tries=settings.job_max_tries)


def _run(arq_worker: Worker) -> None:
    """Run an arq worker on the loop it made for itself, then close that loop."""
    try:
        arq_worker.run()
    finally:
        arq_worker.loop.close()
        asyncio.set_event_loop(None)
