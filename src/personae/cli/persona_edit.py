"""``personae personas create`` and ``edit``: write new versions from files, flags or $EDITOR.

Every edit sends the version it was based on, so a change made meanwhile by someone
else is refused with the core's version-conflict message instead of being overwritten.
"""

from __future__ import annotations

import os
import sys
import tempfile
from typing import Any

import click
import typer
import yaml

from personae.auth.principal import Principal
from personae.cli import output
from personae.cli.persona_files import load_documents
from personae.cli.session import as_admin, read_input
from personae.errors import InvalidInput, PersonaeError
from personae.limits import load_yaml
from personae.personas.files import dump_definition, parse_document
from personae.personas.records import PersonaRecord
from personae.personas.schema import Visibility
from personae.personas.service import merge_patch
from personae.personas.transfer import download_stem
from personae.personas.validation import parse_persona
from personae.runtime import Runtime

FILE_HELP = "Persona JSON or YAML file; '-' reads standard input."


def _scope(global_: bool, public: bool, private: bool) -> tuple[bool, Visibility]:
    if global_ + public + private > 1:
        raise typer.BadParameter("choose one of --global, --public and --private")
    return global_, Visibility.public if public else Visibility.private


def create(
    ctx: typer.Context,
    file: str = typer.Argument(..., metavar="FILE", help=FILE_HELP),
    global_: bool = typer.Option(False, "--global", help="Shared with everyone (admins)."),
    public: bool = typer.Option(False, "--public", help="Yours, readable by everyone."),
    private: bool = typer.Option(False, "--private", help="Yours only (the default)."),
    note: str = typer.Option("", "--note", help="Kept in the version history."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Create personas from a JSON or YAML file (one persona or a list)."""
    global_scope, visibility = _scope(global_, public, private)
    content, name = read_input(file)
    definitions = [parse_persona(raw, default_id=default_id, source=name)
                   for raw, default_id in load_documents(content, name)]

    async def work(runtime: Runtime, principal: Principal) -> list[PersonaRecord]:
        return [await runtime.personas.create(
            principal, definition, visibility=visibility, global_scope=global_scope,
            note=note or f"created from {name}") for definition in definitions]

    records = as_admin(ctx, work)
    if as_json:
        output.emit_json(records[0].public() if len(records) == 1 else
                         [r.public() for r in records])
        return
    for record in records:
        output.say(f"Created {record.id} (version {record.version}).", style="green")


def parse_assignments(items: list[str]) -> dict[str, Any]:
    """``voice.speed=1.1`` -> ``{"voice": {"speed": 1.1}}``; values are YAML scalars."""
    changes: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        parts = key.strip().split(".")
        if not sep or not all(parts):
            raise typer.BadParameter(f"expected key=value, got {item!r}", param_hint="--set")
        try:
            value = load_yaml(text) if text.strip() else ""  # no aliases, bounded depth
        except yaml.YAMLError as exc:
            raise InvalidInput(f"--set {key}: not a valid value ({exc})") from None
        target = changes
        for part in parts[:-1]:
            target = target.setdefault(part, {})
            if not isinstance(target, dict):
                raise typer.BadParameter(f"{key} conflicts with another --set",
                                         param_hint="--set")
        target[parts[-1]] = value
    return changes


def _same(record: PersonaRecord, data: Any) -> bool:
    """Whether ``data`` would make a version identical to the current one."""
    if isinstance(data, dict):
        data = {"id": record.id, **data}
    return parse_persona(data).content_hash() == record.definition.content_hash()


def edit(
    ctx: typer.Context,
    persona_id: str = typer.Argument(..., metavar="ID"),
    file: str | None = typer.Option(None, "--file", metavar="FILE",
                                    help="Replace the definition with this file."),
    assignments: list[str] | None = typer.Option(
        None, "--set", metavar="KEY=VALUE",
        help="Change one field (dotted keys, YAML values; 'null' removes). Repeatable."),
    note: str = typer.Option("", "--note", help="Why (kept in the version history)."),
) -> None:
    """Change a persona: --file replaces, --set merges, neither opens $EDITOR."""
    if file and assignments:
        raise typer.BadParameter("use --file or --set, not both")
    if file:
        content, name = read_input(file)
        documents = load_documents(content, name, single=True)
        _write(ctx, persona_id, documents[0][0], note, merge=False)
    elif assignments:
        _write(ctx, persona_id, parse_assignments(assignments), note, merge=True)
    else:
        _edit_in_editor(ctx, persona_id, note)


def _write(ctx: typer.Context, persona_id: str, data: Any, note: str, *, merge: bool,
           base_version: int | None = None) -> None:
    async def work(runtime: Runtime, principal: Principal) -> PersonaRecord | None:
        record = (await runtime.personas.get(principal, persona_id)).record
        base = record.version if base_version is None else base_version
        full = merge_patch(record.definition.to_data(), data) if merge else data
        if base == record.version and _same(record, full):
            return None
        if merge:
            return await runtime.personas.patch(principal, persona_id, data,
                                                base_version=base, note=note)
        return await runtime.personas.replace(principal, persona_id, data,
                                              base_version=base, note=note)

    record = as_admin(ctx, work)
    if record is None:
        output.say(f"No changes: {persona_id} stays as it is.")
    else:
        output.say(f"Updated {record.id}: now version {record.version}.", style="green")


def _edit_in_editor(ctx: typer.Context, persona_id: str, note: str) -> None:
    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR")
    if not editor and not sys.stdin.isatty():
        raise InvalidInput("no editor to open: set $EDITOR, or pass --file FILE or "
                           "--set KEY=VALUE")

    async def read(runtime: Runtime, principal: Principal) -> PersonaRecord:
        return (await runtime.personas.get(principal, persona_id)).record

    record = as_admin(ctx, read)
    edited = click.edit(dump_definition(record.definition), editor=editor,
                        extension=".yaml", require_save=True)
    if edited is None:
        output.say(f"No changes: {persona_id} stays as it is.")
        return
    try:
        data = parse_document(edited, f"{persona_id}.yaml")
        _write(ctx, persona_id, data, note, merge=False, base_version=record.version)
    except PersonaeError:
        _keep_edits(persona_id, edited)
        raise


def _keep_edits(persona_id: str, text: str) -> None:
    """Save rejected edits so the user can fix them and retry with --file."""
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", delete=False,
                                     prefix=f"{download_stem(persona_id)}-",
                                     suffix=".yaml") as handle:
        handle.write(text)
    output.warn(f"your edits were kept in {handle.name}; fix them and run "
                f"`personae personas edit {persona_id} --file {handle.name}`")
