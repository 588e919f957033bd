"""``personae serve``: prepare the database, say how the server can be reached, run uvicorn.

Settings reach the server through ``PERSONAE_*`` environment variables rather than
objects, because uvicorn's worker processes (``--workers``, ``--reload``) import the
app factory afresh and only inherit the environment.

On SIGTERM uvicorn stops accepting connections and waits for open responses; the app
drains its turns meanwhile (``shutdown_grace_seconds``, then the rest are saved as
interrupted), and uvicorn's own deadline is set a little past that, as a backstop.
"""

from __future__ import annotations

import math
import os
import socket
from dataclasses import dataclass

import typer
import uvicorn

from personae import __version__
from personae.cli import output
from personae.cli.session import in_runtime, settings_for
from personae.config import Settings, get_settings, is_loopback_host
from personae.db.engine import safe_url
from personae.ops.logging import configure_logging
from personae.ops.metrics import prepare_multiprocess
from personae.runtime import Runtime

KEYLESS_NOTE = ("Keyless access: requests without an API key act as the local admin "
                "(only because the server is bound to {host}).")
KEYS_NOTE = "API keys required (create one: personae keys create USER)"
# Past the grace period, a stopped turn may take this long to save before uvicorn
# cancels what is left.
STOP_MARGIN_SECONDS = 6


@dataclass
class Preparation:
    samples_loaded: int
    active_keys: int


async def _prepare(runtime: Runtime) -> Preparation:
    """Migrate, and seed samples into an empty store so a first run has something to show."""
    await runtime.migrate()
    loaded = 0
    if await runtime.personas.count() == 0:
        loaded = len((await runtime.load_samples()).created)
    keys = await runtime.users.list_keys()
    return Preparation(loaded, sum(1 for key in keys if not key.revoked))


def base_url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def node_name(settings: Settings) -> str | None:
    """The name a restart of this server shares, so that it frees the turns of the
    process before it at once. Workers share one port, so they get none (their turns
    are freed when their leases expire)."""
    if settings.workers > 1:
        if settings.node_name:
            output.warn("PERSONAE_NODE_NAME is ignored with several workers: "
                        "each needs its own; their turns are freed by lease expiry")
        return None
    return settings.node_name or f"{socket.gethostname()}:{settings.port}"


def _export_environment(settings: Settings) -> None:
    os.environ.update({
        "PERSONAE_HOST": settings.host,
        "PERSONAE_PORT": str(settings.port),
        "PERSONAE_WORKERS": str(settings.workers),
        "PERSONAE_DATABASE_URL": settings.resolved_database_url,
        "PERSONAE_DATA_DIR": str(settings.data_dir),
    })
    node = node_name(settings)
    if node is None:
        os.environ.pop("PERSONAE_NODE_NAME", None)
    else:
        os.environ["PERSONAE_NODE_NAME"] = node
    get_settings.cache_clear()


def _banner(settings: Settings, prep: Preparation) -> None:
    url = base_url(settings.host, settings.port)
    output.say(f"Personae {__version__}", style="bold")
    output.say(f"  URL:       {url}")
    if settings.dashboard_enabled:
        output.say(f"  Dashboard: {url}/")
    output.say(f"  API docs:  {url}/docs")
    output.say(f"  Database:  {safe_url(settings.resolved_database_url)}")
    auth = KEYLESS_NOTE.format(host=settings.host) if settings.keyless_allowed else KEYS_NOTE
    output.say(f"  Auth:      {auth}")
    if prep.samples_loaded:
        output.say(f"  Loaded {prep.samples_loaded} sample personas into the empty database.")
    if not is_loopback_host(settings.host) and prep.active_keys == 0:
        output.warn(f"{settings.host} is reachable from other machines but no API key "
                    "exists, so every request will be refused. Create one: "
                    "personae users create NAME && personae keys create NAME")


def serve(
    ctx: typer.Context,
    host: str | None = typer.Option(
        None, "--host", help="Address to bind [default: PERSONAE_HOST or 127.0.0.1]."),
    port: int | None = typer.Option(
        None, "--port", min=1, max=65535, help="Port [default: PERSONAE_PORT or 8000]."),
    workers: int | None = typer.Option(
        None, "--workers", min=1, help="Worker processes [default: PERSONAE_WORKERS or 1]."),
    reload: bool = typer.Option(False, "--reload/--no-reload",
                                help="Restart on code changes (development only)."),
) -> None:
    """Run the HTTP API (migrates the database and seeds samples into an empty one)."""
    base = settings_for(ctx)
    settings = base.model_copy(update={
        "host": host or base.host, "port": port or base.port,
        "workers": workers or base.workers})
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    prep = in_runtime(ctx, _prepare,
                      settings=settings.model_copy(update={"migrate_on_start": False}))
    _export_environment(settings)
    if settings.workers > 1 and not reload and settings.metrics_enabled:
        # Each worker writes its metrics here and a scrape of any of them reads all.
        prepare_multiprocess(settings.data_dir / f"metrics-{settings.port}")
    _banner(settings, prep)
    uvicorn.run("personae.api.app:create_app", factory=True, host=settings.host,
                port=settings.port, workers=None if reload else settings.workers,
                reload=reload, log_level=settings.log_level,
                log_config=configure_logging(settings),
                access_log=False,  # the app writes one structured line per request
                timeout_graceful_shutdown=math.ceil(settings.shutdown_grace_seconds)
                + STOP_MARGIN_SECONDS)
