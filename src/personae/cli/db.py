"""``personae db``: apply and inspect schema migrations explicitly.

These commands open the runtime with ``migrate_on_start`` off, so ``db current``
reports the schema as it really is instead of upgrading it first.
"""

from __future__ import annotations

import typer

from personae.cli import output
from personae.cli.session import in_runtime, settings_for
from personae.config import Settings
from personae.db.engine import head_revision, safe_url
from personae.runtime import Runtime

app = typer.Typer(help="Database schema migrations.", no_args_is_help=True)


def _unmigrated(ctx: typer.Context) -> Settings:
    return settings_for(ctx).model_copy(update={"migrate_on_start": False})


@app.command()
def upgrade(ctx: typer.Context) -> None:
    """Bring the database schema up to date (safe to run repeatedly)."""
    settings = _unmigrated(ctx)

    async def work(runtime: Runtime) -> tuple[str | None, str | None]:
        before = await runtime.schema_revision()
        await runtime.migrate()
        return before, await runtime.schema_revision()

    before, after = in_runtime(ctx, work, settings=settings)
    output.say(f"Database: {safe_url(settings.resolved_database_url)}")
    if before == after:
        output.say(f"Already up to date (schema {after}).")
    else:
        output.say(f"Upgraded schema {before or 'empty'} -> {after}.", style="green")


@app.command()
def current(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show the schema revision the database is at, and the latest one."""
    settings = _unmigrated(ctx)

    async def work(runtime: Runtime) -> str | None:
        return await runtime.schema_revision()

    revision, head = in_runtime(ctx, work, settings=settings), head_revision()
    if as_json:
        output.emit_json({"database_url": safe_url(settings.resolved_database_url),
                          "current": revision, "head": head, "up_to_date": revision == head})
        return
    output.say(f"Database: {safe_url(settings.resolved_database_url)}")
    output.say(f"Current:  {revision or 'none (empty database)'}")
    output.say(f"Latest:   {head}")
    if revision != head:
        output.warn("the schema is behind: run `personae db upgrade`")
