"""``personae personas``: list, read, change and version personas.

Commands act as the local admin through :class:`PersonaService`, so the same access
rules and version checks apply as over HTTP. File-oriented commands live in
``persona_files`` and ``edit`` in ``persona_edit``; they are registered here.
"""

from __future__ import annotations

import difflib
from typing import Any

import typer
from rich.text import Text

from personae.auth.principal import Principal
from personae.cli import output, persona_edit, persona_files, persona_metrics
from personae.cli.session import as_admin, user_id_for
from personae.errors import InvalidInput
from personae.personas.files import dump_definition
from personae.personas.language import normalize_language
from personae.personas.records import Page, PersonaRecord, PersonaSummary, VersionRecord
from personae.personas.schema import Status
from personae.runtime import Runtime

app = typer.Typer(help="Create, read, change and version personas.", no_args_is_help=True)
app.command("create")(persona_edit.create)
app.command("edit")(persona_edit.edit)
app.command("validate")(persona_files.validate)
app.command("sync")(persona_files.sync)
app.command("import")(persona_files.import_file)
app.command("import-lorebook")(persona_files.import_lorebook)
app.command("export")(persona_files.export)
app.command("metrics")(persona_metrics.metrics)

JSON_OPTION = typer.Option(False, "--json", help="Print JSON.")
NOTE_OPTION = typer.Option("", "--note", help="Why (kept in the version history).")


def _scope(owner_id: str | None, visibility: str) -> str:
    return "global" if owner_id is None else f"{visibility} ({owner_id})"


def _language(value: str | None) -> str | None:
    try:
        return normalize_language(value) if value else None
    except ValueError as exc:
        raise InvalidInput(f"--language: {exc}") from None


@app.command("list")
def list_personas(
    ctx: typer.Context,
    tag: str | None = typer.Option(None, "--tag", help="Only personas with this tag."),
    language: str | None = typer.Option(None, "--language", help="Code or name, e.g. hi."),
    status: Status | None = typer.Option(None, "--status", help="draft, active or archived."),
    owner: str | None = typer.Option(None, "--owner", help="'global', 'me' or a user."),
    q: str | None = typer.Option(None, "--q", help="Text in id, name, description, tags."),
    limit: int = typer.Option(50, "--limit", min=1, max=1000),
    offset: int = typer.Option(0, "--offset", min=0),
    include_archived: bool = typer.Option(False, "--all", help="Include archived personas."),
    as_json: bool = JSON_OPTION,
) -> None:
    """List personas (archived ones only with --all or --status archived)."""
    filters: dict[str, Any] = {"tag": tag, "language": _language(language), "status": status,
                               "text": q, "include_archived": include_archived,
                               "limit": limit, "offset": offset}

    async def work(runtime: Runtime, principal: Principal) -> Page:
        if owner == "me":
            filters["owner"] = principal.user_id
        elif owner:
            filters["owner"] = "global" if owner == "global" else \
                await user_id_for(runtime, owner)
        return await runtime.personas.list(principal, **filters)

    page = as_admin(ctx, work)
    if as_json:
        output.emit_json({"data": [s.public() for s in page.data], "count": page.count,
                          "limit": limit, "offset": offset})
        return
    _print_page(page, offset)


def _print_page(page: Page, offset: int) -> None:
    summaries: list[PersonaSummary] = page.data
    if not summaries:
        output.say("No personas found." if page.count == 0 else
                   f"No personas at offset {offset} ({page.count} in all).")
        return
    rows = [(s.id, s.name, s.language, s.status.value,
             _scope(s.owner_id, s.visibility.value), s.version, ", ".join(s.tags))
            for s in summaries]
    output.show(output.table(("id", "name", "language", "status", "scope", "version", "tags"),
                             rows, wrap=("name", "tags")))
    if page.count > offset + len(summaries):
        output.say(f"Showing {offset + 1}-{offset + len(summaries)} of {page.count}; "
                   "use --offset/--limit for more.", style="dim")


@app.command()
def show(
    ctx: typer.Context,
    persona_id: str = typer.Argument(..., metavar="ID"),
    version: int | None = typer.Option(None, "--version", min=1, help="An older version."),
    as_json: bool = typer.Option(False, "--json", help="The API representation as JSON."),
    as_yaml: bool = typer.Option(False, "--yaml", help="The definition as YAML."),
    prompt: bool = typer.Option(False, "--prompt", help="The rendered system prompt."),
) -> None:
    """Show a persona (its current version unless --version)."""
    if as_json and as_yaml:
        raise typer.BadParameter("choose one of --json and --yaml")

    async def work(runtime: Runtime, principal: Principal
                   ) -> tuple[PersonaRecord, VersionRecord | None, str | None]:
        record = (await runtime.personas.get(principal, persona_id)).record
        older = None if version is None else \
            await runtime.personas.version(principal, persona_id, version)
        text = await _system_prompt(runtime, record, older) if prompt else None
        return record, older, text

    record, older, text = as_admin(ctx, work)
    if text is not None:
        _print_prompt(record, older, text, as_json)
    elif as_yaml:
        output.emit_text(dump_definition((older or record).definition, "yaml"))
    elif as_json:
        output.emit_json(older.public() if older else record.public())
    else:
        _print_persona(record, older)


async def _system_prompt(runtime: Runtime, record: PersonaRecord,
                         older: VersionRecord | None) -> str:
    """The prompt as conversations run it, from the runtime's prepared personas (a
    template failing to render is a Conflict there). ``older`` was access-checked."""
    if older is None:
        return runtime.prepared.prepare(record).system_prompt
    return (await runtime.prepared.get(record.id, older.number)).system_prompt


def _print_prompt(record: PersonaRecord, older: VersionRecord | None, text: str,
                  as_json: bool) -> None:
    number = older.number if older else record.version
    if as_json:
        output.emit_json({"persona_id": record.id, "version": number, "system_prompt": text})
    else:
        output.emit_text(text)


def _print_persona(record: PersonaRecord, older: VersionRecord | None) -> None:
    number = older.number if older else record.version
    output.say(f"{record.definition.shown_name} ({record.id})", style="bold")
    output.say(f"version {number} of {record.version} · {record.status.value} · "
               f"{_scope(record.owner_id, record.visibility.value)} · "
               f"updated {output.when(record.updated_at)}", style="dim")
    if older:
        output.say(f"by {older.author} at {output.when(older.created_at)}: {older.note}",
                   style="dim")
    output.say("")
    output.emit_code(dump_definition((older or record).definition, "yaml"), "yaml")


@app.command()
def history(ctx: typer.Context, persona_id: str = typer.Argument(..., metavar="ID"),
            as_json: bool = JSON_OPTION) -> None:
    """List a persona's versions, oldest first."""

    async def work(runtime: Runtime, principal: Principal) -> list[VersionRecord]:
        return await runtime.personas.versions(principal, persona_id)

    versions = as_admin(ctx, work)
    if as_json:
        output.emit_json([v.public(with_definition=False) for v in versions])
        return
    current = versions[-1].number if versions else 0
    rows = [(f"{v.number}{' *' if v.number == current else ''}", output.when(v.created_at),
             v.author, v.note, v.definition_hash[:10]) for v in versions]
    output.show(output.table(("version", "created", "author", "note", "hash"), rows,
                             wrap=("note",)))


@app.command()
def diff(
    ctx: typer.Context,
    persona_id: str = typer.Argument(..., metavar="ID"),
    old: int | None = typer.Argument(None, metavar="FROM", min=1,
                                     help="Default: the version before TO."),
    new: int | None = typer.Argument(None, metavar="TO", min=1, help="Default: current."),
    as_json: bool = typer.Option(False, "--json", help="Print the JSON patch instead."),
) -> None:
    """Show what changed between two versions, as a diff of their YAML."""

    async def work(runtime: Runtime, principal: Principal) -> tuple[Any, ...]:
        current = (await runtime.personas.get(principal, persona_id)).record.version
        to = new or current
        start = old or max(to - 1, 1)
        if as_json:
            return (await runtime.personas.diff(principal, persona_id, start, to),)
        before = await runtime.personas.version(principal, persona_id, start)
        after = await runtime.personas.version(principal, persona_id, to)
        return before, after

    found = as_admin(ctx, work)
    if as_json:
        output.emit_json(found[0])
    else:
        _print_diff(*found)


def _print_diff(before: VersionRecord, after: VersionRecord) -> None:
    lines = list(difflib.unified_diff(
        dump_definition(before.definition).splitlines(),
        dump_definition(after.definition).splitlines(),
        f"{before.persona_id} v{before.number}", f"{after.persona_id} v{after.number}",
        lineterm=""))
    if not lines:
        output.say(f"No differences between versions {before.number} and {after.number}.")
        return
    styles = {"+++": "bold", "---": "bold", "@@": "cyan", "+": "green", "-": "red"}
    for line in lines:
        style = next((s for prefix, s in styles.items() if line.startswith(prefix)), "")
        output.console.print(Text(line, style=style), soft_wrap=True)


def _done(record: PersonaRecord, verb: str) -> None:
    output.say(f"{verb} {record.id}: now version {record.version} ({record.status.value}).",
               style="green")


@app.command()
def rollback(ctx: typer.Context, persona_id: str = typer.Argument(..., metavar="ID"),
             version: int = typer.Argument(..., min=1, help="The version to bring back."),
             note: str = NOTE_OPTION) -> None:
    """Make an old version current again (as a new version; history is kept)."""

    async def work(runtime: Runtime, principal: Principal) -> PersonaRecord:
        return await runtime.personas.rollback(principal, persona_id, version, note=note)

    _done(as_admin(ctx, work), f"Rolled back to version {version}:")


def _set_status(ctx: typer.Context, persona_id: str, status: Status, note: str) -> None:
    async def work(runtime: Runtime, principal: Principal) -> PersonaRecord:
        return await runtime.personas.set_status(principal, persona_id, status, note=note)

    _done(as_admin(ctx, work), "Archived" if status is Status.archived else "Restored")


@app.command()
def archive(ctx: typer.Context, persona_id: str = typer.Argument(..., metavar="ID"),
            note: str = NOTE_OPTION) -> None:
    """Hide a persona from listings (reversible with `restore`)."""
    _set_status(ctx, persona_id, Status.archived, note)


@app.command()
def restore(ctx: typer.Context, persona_id: str = typer.Argument(..., metavar="ID"),
            note: str = NOTE_OPTION) -> None:
    """Make an archived persona active again."""
    _set_status(ctx, persona_id, Status.active, note)


@app.command()
def delete(
    ctx: typer.Context,
    persona_id: str = typer.Argument(..., metavar="ID"),
    hard: bool = typer.Option(False, "--hard", help="Required: delete with all versions."),
    yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation."),
) -> None:
    """Delete a persona and its whole history for good (admins; prefer `archive`)."""
    if not hard:
        raise typer.BadParameter("deleting is permanent: pass --hard (or use `archive`)",
                                 param_hint="--hard")
    if not yes:
        typer.confirm(f"Delete '{persona_id}' and all its versions for good?", abort=True)

    async def work(runtime: Runtime, principal: Principal) -> None:
        await runtime.personas.hard_delete(principal, persona_id)

    as_admin(ctx, work)
    output.say(f"Deleted {persona_id}.", style="green")
