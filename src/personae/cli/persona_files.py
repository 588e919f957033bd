"""``personae personas validate/sync/import/export``: personas as files.

``validate`` needs no database, so it can run in CI or a pre-commit hook; ``sync``
and ``export --all`` are inverses, so a folder of YAML files can be the source of
truth for a deployment.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any

import typer

from personae.auth.principal import Principal
from personae.cli import output
from personae.cli.session import as_admin, read_input
from personae.errors import InvalidInput, ValidationFailed
from personae.personas.files import (
    SyncReport,
    discover,
    parse_document,
    personas_in,
    write_files,
)
from personae.personas.lorebook_attach import Attached, attach_lorebook
from personae.personas.records import PersonaRecord
from personae.personas.schema import PersonaDefinition, Visibility
from personae.personas.transfer import Imported, import_bytes
from personae.personas.validation import parse_persona
from personae.runtime import Runtime


class ExportFormat(StrEnum):
    json = "json"
    yaml = "yaml"
    card = "card"
    card_png = "card-png"
    charx = "charx"


def load_documents(content: bytes, name: str, *,
                   single: bool = False) -> list[tuple[Any, str | None]]:
    """The raw personas in a file, each with the id a lone persona takes from its name."""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput(f"{name}: not UTF-8 text") from None
    as_json = text.lstrip().startswith(("{", "[")) if name == "<stdin>" else None
    items = personas_in(parse_document(text, name, as_json=as_json))
    if single and len(items) != 1:
        raise InvalidInput(f"{name}: holds {len(items)} personas; expected exactly one")
    stem = Path(name).stem if len(items) == 1 and name != "<stdin>" else None
    return [(raw, stem) for raw in items]


# -- validate ----------------------------------------------------------------


def _check_file(path: Path, seen: dict[str, str]) -> list[str]:
    """Problems in one file as ``file: field: reason`` lines (none when valid)."""
    label = str(path)
    try:
        documents = load_documents(path.read_bytes(), label)
    except InvalidInput as exc:
        return [exc.message]
    problems: list[str] = []
    for index, (raw, default_id) in enumerate(documents):
        where = label if len(documents) == 1 else f"{label}[{index}]"
        try:
            definition = parse_persona(raw, default_id=default_id)
        except ValidationFailed as exc:
            problems.extend(f"{where}: {issue}" for issue in exc.issues)
            continue
        if definition.id in seen:
            problems.append(f"{where}: id '{definition.id}' is also defined in "
                            f"{seen[definition.id]}")
        seen.setdefault(definition.id, where)
    return problems


def validate(
    paths: list[Path] = typer.Argument(..., metavar="PATH", exists=True,
                                       help="Persona files or folders of them."),
) -> None:
    """Check persona files without touching the database; exit 1 if any is invalid."""
    seen: dict[str, str] = {}
    problems: list[str] = []
    checked = 0
    for path in paths:
        files = discover(path) if path.is_dir() else [path]
        if not files:
            problems.append(f"{path}: no persona files (.json, .yaml, .yml)")
        for file in files:
            found = _check_file(file, seen)
            checked += 1
            problems.extend(found)
            if not found:
                output.say(f"ok: {file}", style="green")
    for problem in problems:
        output.say(problem, style="red")
    if problems:
        output.say(f"{len(problems)} problem(s) in {checked} file(s).", style="red")
        raise typer.Exit(1)
    output.say(f"All {checked} file(s) valid.", style="green")


# -- sync --------------------------------------------------------------------


def sync(
    ctx: typer.Context,
    folder: Path = typer.Argument(..., metavar="DIR", exists=True, file_okay=False),
    dry_run: bool = typer.Option(False, "--dry-run", help="Report only; write nothing."),
    skip_invalid: bool = typer.Option(False, "--skip-invalid",
                                      help="Apply the valid files even if some are invalid."),
    owner: str | None = typer.Option(None, "--owner", metavar="USER",
                                     help="Sync as this user's personas, in their "
                                          "namespace USER/ (default: global)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Create or update personas from a folder of files (idempotent, all or nothing)."""

    async def work(runtime: Runtime, principal: Principal) -> SyncReport:
        owner_user = await runtime.users.require_user(owner) if owner else None
        return await runtime.personas.sync_folder(principal, folder, owner=owner_user,
                                                  skip_invalid=skip_invalid, dry_run=dry_run)

    report = as_admin(ctx, work)
    if as_json:
        output.emit_json(report.to_dict())
    else:
        _print_report(report, dry_run)
    if report.invalid and not skip_invalid:
        raise typer.Exit(1)


def _print_report(report: SyncReport, dry_run: bool) -> None:
    for label, ids, style in (("created", report.created, "green"),
                              ("updated", report.updated, "yellow")):
        for persona_id in ids:
            output.say(f"{label}: {persona_id}", style=style)
    for entry in report.invalid:
        issues = entry.get("errors") or []
        lines = [f"{entry['source']}: {e['path']}: {e['message']}" if e["path"]
                 else f"{entry['source']}: {e['message']}" for e in issues]
        for line in lines or [entry["message"]]:
            output.say(f"invalid: {line}", style="red")
    output.say(f"{len(report.created)} created, {len(report.updated)} updated, "
               f"{len(report.unchanged)} unchanged, {len(report.invalid)} invalid.")
    if dry_run:
        output.say("Dry run: nothing was written.", style="dim")
    elif not report.applied:
        output.say("Nothing was applied: fix the invalid files or pass --skip-invalid.",
                   style="red")


# -- import / export ---------------------------------------------------------


def import_file(
    ctx: typer.Context,
    file: str = typer.Argument(..., metavar="FILE",
                               help="Persona JSON/YAML or Character Card (JSON, PNG, CHARX)."),
    persona_id: str | None = typer.Option(None, "--id", help="Id for the new persona."),
    global_: bool = typer.Option(False, "--global", help="Shared with everyone."),
    public: bool = typer.Option(False, "--public", help="Readable by everyone."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Import personas from a persona file or a Character Card."""
    content, name = read_input(file)
    filename = None if name == "<stdin>" else Path(name).name
    folder = None if name == "<stdin>" else Path(name).parent  # avatar: ./face.png
    imported = _with_id(import_bytes(content, filename, persona_id, folder), persona_id)
    visibility = Visibility.public if public else Visibility.private

    async def work(runtime: Runtime, principal: Principal) -> list[PersonaRecord]:
        return [await runtime.personas.create(
            principal, definition, visibility=visibility, global_scope=global_,
            note=f"imported from {filename or 'stdin'}", blobs=imported.blobs)
            for definition in imported.definitions]

    records = as_admin(ctx, work)
    for warning in imported.warnings:
        output.warn(warning)
    if as_json:
        output.emit_json({"data": [r.public() for r in records], "count": len(records),
                          "warnings": imported.warnings,
                          "source_format": imported.source_format})
        return
    for record in records:
        output.say(f"Imported {record.id} (version {record.version}) from "
                   f"{imported.source_format}.", style="green")


def import_lorebook(
    ctx: typer.Context,
    file: str = typer.Argument(..., metavar="FILE", help="SillyTavern World Info JSON, or a "
                                                        "Character Card character_book."),
    persona_id: str = typer.Option(..., "--to", metavar="ID", help="The persona to attach "
                                                                   "it to."),
    replace: bool = typer.Option(False, "--replace", help="Drop the persona's lore entries "
                                                          "first (plain knowledge stays)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Attach a lorebook to a persona as lore entries (a new version)."""
    content, name = read_input(file)
    filename = None if name == "<stdin>" else Path(name).name

    async def work(runtime: Runtime, principal: Principal) -> Attached:
        return await attach_lorebook(runtime.personas, principal, persona_id, content,
                                     filename=filename, mode="replace" if replace else "append")

    attached = as_admin(ctx, work)
    for warning in attached.warnings:
        output.warn(warning)
    if as_json:
        output.emit_json({"persona": attached.record.public(),
                          "entries_added": attached.entries_added,
                          "warnings": attached.warnings,
                          "source_format": attached.source_format})
        return
    output.say(f"Added {attached.entries_added} lore entries from {attached.source_format} "
               f"to {attached.record.id} (version {attached.record.version}).", style="green")


def _with_id(imported: Imported, persona_id: str | None) -> Imported:
    """Make ``--id`` win over an id inside a persona file (cards already honour it)."""
    if persona_id is None or [d.id for d in imported.definitions] == [persona_id]:
        return imported
    data = {**imported.definitions[0].to_data(), "id": persona_id}
    imported.definitions = [parse_persona(data, source="--id")]
    return imported


def export(
    ctx: typer.Context,
    persona_id: str | None = typer.Argument(None, metavar="ID"),
    fmt: ExportFormat = typer.Option(ExportFormat.yaml, "--format", help="Output format."),
    out: Path | None = typer.Option(None, "-o", "--output", help="File or folder to write."),
    all_dir: Path | None = typer.Option(None, "--all", metavar="DIR",
                                        help="Export every persona into DIR (json/yaml)."),
) -> None:
    """Export one persona (stdout or -o), or all of them with --all DIR."""
    if (persona_id is None) == (all_dir is None):
        raise typer.BadParameter("give a persona ID, or --all DIR (not both)")
    if all_dir is not None:
        _export_all(ctx, all_dir, fmt)
        return

    async def work(runtime: Runtime, principal: Principal) -> tuple[bytes, str, str]:
        return await runtime.personas.export(principal, str(persona_id), fmt.value)

    content, _, filename = as_admin(ctx, work)
    if out is not None:
        target = out / filename if out.is_dir() else out
        target.write_bytes(content)
        output.say(f"Wrote {target}.", style="green")
    elif fmt in (ExportFormat.card_png, ExportFormat.charx) and output.stdout_is_terminal():
        raise InvalidInput(f"{fmt.value} is binary: pass -o FILE (or redirect standard output)")
    else:
        typer.echo(content, nl=False)


def _export_all(ctx: typer.Context, folder: Path, fmt: ExportFormat) -> None:
    if fmt not in (ExportFormat.json, ExportFormat.yaml):
        raise typer.BadParameter("--all writes persona files: use --format json or yaml")

    async def work(runtime: Runtime, principal: Principal) -> list[PersonaDefinition]:
        definitions: list[PersonaDefinition] = []
        while True:
            page = await runtime.personas.list(principal, include_archived=True,
                                               limit=500, offset=len(definitions))
            for summary in page.data:
                cached = await runtime.personas.get(principal, summary.id)
                definitions.append(cached.record.definition)
            if not page.data or len(definitions) >= page.count:
                return definitions

    written = write_files(as_admin(ctx, work), folder, fmt.value)
    output.say(f"Wrote {len(written)} persona file(s) to {folder}.", style="green")
