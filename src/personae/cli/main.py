"""The ``personae`` entry point: global options, error handling, ``init``.

Errors are handled in one place, :class:`PersonaeGroup`, so every subcommand
reports core errors the same way: ``error: <message>`` on stderr, exit status 1.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from typer.core import TyperGroup

from personae import __version__
from personae.cli import (
    audit,
    chat,
    db,
    output,
    panels,
    personas,
    quality,
    serve,
    users,
    worker,
    write,
)
from personae.cli import models as models_cli
from personae.cli import voice as voice_cli
from personae.cli.session import CliState, in_runtime, settings_for
from personae.db.engine import safe_url
from personae.errors import PersonaeError, from_infrastructure
from personae.personas.files import SyncReport
from personae.runtime import Runtime

EPILOG = "Exit status: 0 success, 1 error (reported as 'error: ...'), 2 usage error."


class PersonaeGroup(TyperGroup):
    """Root group that turns expected failures into one-line errors, not tracebacks."""

    def invoke(self, ctx: Any) -> Any:  # click's Context, or the one typer vendors
        try:
            return super().invoke(ctx)
        except PersonaeError as exc:
            output.report_error(exc)
        except OSError as exc:
            where = f"{exc.filename}: " if exc.filename else ""
            output.error(f"{where}{exc.strerror or exc}")
        except Exception as exc:
            mapped = from_infrastructure(exc)
            if mapped is None:
                raise
            output.report_error(mapped)
        raise typer.Exit(1)


app = typer.Typer(
    cls=PersonaeGroup,
    help="Define an AI persona once; use it everywhere.",
    epilog=EPILOG,
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    rich_markup_mode=None,
)
app.add_typer(personas.app, name="personas")
app.add_typer(users.users_app, name="users")
app.add_typer(users.keys_app, name="keys")
app.add_typer(db.app, name="db")
app.add_typer(panels.app, name="panel")
app.add_typer(models_cli.app, name="models")
app.add_typer(write.app, name="write")
app.command()(serve.serve)
app.command()(chat.chat)
app.command()(voice_cli.say)
app.command()(voice_cli.voice)
app.command()(worker.worker)
app.command(name="test")(quality.run_tests)
app.command(name="audit")(audit.audit)


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"personae {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    ctx: typer.Context,
    database_url: str | None = typer.Option(
        None, "--database-url", metavar="URL",
        help="SQLAlchemy URL (overrides PERSONAE_DATABASE_URL; default SQLite in the data dir)."),
    data_dir: Path | None = typer.Option(
        None, "--data-dir", metavar="DIR", help="Data folder (overrides PERSONAE_DATA_DIR)."),
    version: bool = typer.Option(False, "--version", is_eager=True, callback=_show_version,
                                 help="Show the version and exit."),
) -> None:
    """Define an AI persona once; use it everywhere."""
    overrides: dict[str, Any] = {}
    if database_url:
        overrides["database_url"] = database_url
    if data_dir:
        overrides["data_dir"] = data_dir.expanduser()
    ctx.obj = CliState(overrides)


@app.command()
def init(
    ctx: typer.Context,
    no_samples: bool = typer.Option(False, "--no-samples", help="Do not load sample personas."),
) -> None:
    """Create the data folder and database, and load the sample personas."""
    settings = settings_for(ctx)
    settings.data_dir.mkdir(parents=True, exist_ok=True)

    async def work(runtime: Runtime) -> tuple[str | None, SyncReport | None]:
        await runtime.migrate()
        report = None if no_samples else await runtime.load_samples()
        return await runtime.schema_revision(), report

    revision, report = in_runtime(
        ctx, work, settings=settings.model_copy(update={"migrate_on_start": False}))
    output.say(f"Data folder: {settings.data_dir}")
    output.say(f"Database:    {safe_url(settings.resolved_database_url)} "
               f"(schema {revision})")
    if report is not None:
        output.say(f"Samples:     {len(report.created)} created, {len(report.updated)} "
                   f"updated, {len(report.unchanged)} unchanged")
        for entry in report.invalid:
            output.warn(f"sample not loaded: {entry['message']}")
    output.say("\nNext steps:", style="bold")
    output.say("  personae personas list        see the personas")
    served = "the dashboard and API" if settings.dashboard_enabled else "the API"
    output.say(f"  personae serve                start {served} on "
               f"{serve.base_url(settings.host, settings.port)}")
    output.say("  personae users create NAME    then `personae keys create NAME` for API keys")


def run() -> None:
    """Console-script entry point (``personae``)."""
    app(prog_name="personae")
