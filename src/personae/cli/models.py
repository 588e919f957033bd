"""``personae models``: the embedded models Personae knows, and assembling one."""

from __future__ import annotations

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Column, Table

from personae.cli import output
from personae.cli.session import settings_for
from personae.providers.assembly import describe, model_path
from personae.providers.catalogue import CATALOGUE, LICENCE_NOTE, get_model

app = typer.Typer(help="The embedded models: list them, prepare one.", no_args_is_help=False,
                  invoke_without_command=True)


JSON_OPTION = typer.Option(False, "--json", help="Print JSON.")


@app.callback()
def models(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
    """List the embedded models (installed or not), with size, speed, licence, origin."""
    if ctx.invoked_subcommand is None:
        _print_models(ctx, as_json)


@app.command("list")
def list_models(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
    """List the embedded models: the same as plain `personae models`."""
    group = ctx.parent.params if ctx.parent else {}
    _print_models(ctx, as_json or bool(group.get("as_json")))


def _print_models(ctx: typer.Context, as_json: bool) -> None:
    data_dir = settings_for(ctx).data_dir
    rows = [describe(spec, data_dir) for spec in CATALOGUE.values()]
    if as_json:
        output.emit_json({"models": rows, "note": LICENCE_NOTE})
        return
    table = Table("installed", "size", "speed", "context", "languages", "licence")
    table.columns.insert(0, Column("name", no_wrap=True))
    for spec, row in zip(CATALOGUE.values(), rows, strict=True):
        table.add_row(spec.name, "yes" if row["installed"] else "no", _size(spec.size_bytes),
                      spec.speed, str(spec.context_length), ", ".join(spec.languages),
                      spec.licence)
    output.console.print(table)
    for spec, row in zip(CATALOGUE.values(), rows, strict=True):
        install = "" if row["installed"] else f" Install: {spec.install_command}"
        output.say(f"{spec.name}: {spec.origin}.{install}")
    output.say(LICENCE_NOTE)


@app.command()
def prepare(ctx: typer.Context,
            name: str = typer.Argument(..., help="a model name from `personae models`")) -> None:
    """Assemble and verify a model's file now, rather than on its first use."""
    spec = get_model(name)
    data_dir = settings_for(ctx).data_dir
    columns = (TextColumn(f"assembling {spec.name}"), BarColumn(), DownloadColumn(),
               TimeRemainingColumn())
    with Progress(*columns, console=output.err_console, transient=True) as progress:
        task = progress.add_task("assemble", total=spec.size_bytes)
        path = model_path(spec, data_dir,
                          lambda done, total: progress.update(task, completed=done, total=total))
    output.say(f"{spec.name}: {path}")


def _size(size_bytes: int) -> str:
    return f"{size_bytes / 1e6:.0f} MB" if size_bytes < 1e9 else f"{size_bytes / 1e9:.2f} GB"
