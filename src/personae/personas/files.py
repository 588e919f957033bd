"""Persona files (JSON/YAML) in and out of the store.

``sync_folder`` is an idempotent upsert: a file whose bytes match what was last synced
is skipped without parsing, a file whose definition is unchanged makes no version, and
the whole batch is written in one transaction, so a failure applies nothing. By default
one invalid file stops the sync (reported with reasons); ``skip_invalid`` applies the rest.
Files are read with the bounds of :mod:`personae.limits` (no YAML aliases, nesting at
most ``MAX_DEPTH`` levels), and parsed and validated in a worker thread, since
validating a definition renders its prompt template.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from personae.errors import InvalidInput, PermissionDenied, PersonaeError, ValidationFailed
from personae.limits import load_json, load_yaml
from personae.personas.assets import AssetLimits, Blobs, check_write, inline_avatar
from personae.personas.records import NewVersion, SourceState
from personae.personas.schema import PersonaDefinition, Visibility, split_id
from personae.personas.store import PersonaStore
from personae.personas.validation import in_namespace, parse_persona

SUFFIXES = (".json", ".yaml", ".yml")
_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


@dataclass
class SyncReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    invalid: list[dict[str, Any]] = field(default_factory=list)
    applied: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"created": self.created, "updated": self.updated, "unchanged": self.unchanged,
                "invalid": self.invalid, "applied": self.applied}


@dataclass
class _Entry:
    source: str
    source_hash: str
    default_id: str
    raw: Any


def parse_document(text: str, source: str, *, as_json: bool | None = None) -> Any:
    """Parse JSON or YAML text (by suffix unless told); errors name file, line, column.

    YAML aliases are refused and nesting deeper than ``MAX_DEPTH`` levels too."""
    if as_json if as_json is not None else source.endswith(".json"):
        try:
            return load_json(text, source)
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"{source}: line {exc.lineno} column {exc.colno}: {exc.msg}") \
                from None
    try:
        return load_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1} column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise InvalidInput(f"{source}: {where}{problem}") from None


def personas_in(document: Any) -> list[Any]:
    """A file holds one persona, a list of them, or ``{"personas": [...]}``."""
    if isinstance(document, list):
        return document
    if isinstance(document, dict):
        found = document.get("personas")
        if isinstance(found, list):
            return found
    return [document]


def discover(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise InvalidInput(f"{folder}: not a folder")
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in SUFFIXES and p.is_file())


def _source_hash(content: bytes, index: int | None = None) -> str:
    """A file's hash; entries of a multi-persona file each get their own (``index``)."""
    suffix = b"" if index is None else f"#{index}".encode()
    return hashlib.sha256(content + suffix).hexdigest()


def _entries(path: Path, source: str, content: bytes) -> Iterator[_Entry]:
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput(f"{source}: not UTF-8 text") from None
    items = personas_in(parse_document(text, source))
    for index, raw in enumerate(items):
        digest = _source_hash(content, index if len(items) > 1 else None)
        label = source if len(items) == 1 else f"{source}[{index}]"
        yield _Entry(label, digest, path.stem if len(items) == 1 else "", raw)


class _Plan:
    def __init__(self, states: dict[str, SourceState], owner_id: str | None,
                 namespace: str | None, limits: AssetLimits) -> None:
        self.states = states
        self.limits = limits
        self.owner_id = owner_id
        self.namespace = namespace  # the owner's: ids are put in it (None: global, plain)
        self.by_source = {s.source_hash: s.id for s in states.values() if s.source_hash}
        self.report = SyncReport()
        self.seen: dict[str, str] = {}
        self.creates: list[tuple[NewVersion, str | None, Visibility]] = []
        self.updates: list[tuple[str, NewVersion, int]] = []
        self.touches: list[tuple[str, str]] = []

    def invalid(self, source: str, error: PersonaeError) -> None:
        issues = error.details.get("errors") if isinstance(error, ValidationFailed) else None
        self.report.invalid.append({"source": source, "message": error.message,
                                    "errors": issues or []})

    def claim(self, persona_id: str, source: str) -> bool:
        if persona_id in self.seen:
            self.invalid(source, InvalidInput(
                f"{source}: id '{persona_id}' is also defined in {self.seen[persona_id]}"))
            return False
        self.seen[persona_id] = source
        return True

    def add(self, entry: _Entry, definition: PersonaDefinition, author: str,
            visibility: Visibility, blobs: Blobs) -> None:
        state = self.states.get(definition.id)
        new = NewVersion(definition, author, f"synced from {entry.source}", entry.source_hash,
                         blobs=blobs)
        if state is None:
            self.creates.append((new, self.owner_id, visibility))
            self.report.created.append(definition.id)
        elif state.owner_id != self.owner_id:
            owner = state.owner_id or "global"
            self.invalid(entry.source, InvalidInput(
                f"{entry.source}: persona '{definition.id}' exists with another owner ({owner})"))
        elif state.definition_hash == definition.content_hash():
            self.report.unchanged.append(definition.id)
            if state.source_hash != entry.source_hash:
                self.touches.append((definition.id, entry.source_hash))
        else:
            self.updates.append((definition.id, new, state.version))
            self.report.updated.append(definition.id)


async def sync_folder(store: PersonaStore, folder: Path, *, author: str,
                      owner_id: str | None = None, namespace: str | None = None,
                      visibility: Visibility | None = None,
                      skip_invalid: bool = False, dry_run: bool = False,
                      limits: AssetLimits = AssetLimits()) -> SyncReport:
    """Upsert every persona file under ``folder``; see the module docstring.

    A user's personas (``owner_id``) go in their ``namespace``: ``id: tutor`` is stored
    as ``alice/tutor`` and an id in another namespace is reported invalid. An
    ``avatar: ./face.png`` is read relative to its file (inside ``folder``)."""
    if (owner_id is None) != (namespace is None):
        raise ValueError("an owner's personas need the owner's namespace, and only theirs")
    if visibility is None:  # global personas are public; a user's are private by default
        visibility = Visibility.public if owner_id is None else Visibility.private
    plan = _Plan(await store.source_states(), owner_id, namespace, limits)
    await asyncio.to_thread(_plan_files, plan, folder, author, visibility)
    report = plan.report
    if dry_run or (report.invalid and not skip_invalid):
        return report
    await store.apply_batch(plan.creates, plan.updates, plan.touches)
    report.applied = True
    return report


def _plan_files(plan: _Plan, folder: Path, author: str, visibility: Visibility) -> None:
    for path in discover(folder):
        _plan_file(plan, path, folder, author, visibility)


def _plan_file(plan: _Plan, path: Path, folder: Path, author: str,
               visibility: Visibility) -> None:
    source = str(path.relative_to(folder))
    content = path.read_bytes()
    # Bytes identical to the last sync of a single-persona file: unchanged, no parsing.
    known = plan.by_source.get(_source_hash(content))
    if known is not None and plan.states[known].owner_id == plan.owner_id:
        if plan.claim(known, source):
            plan.report.unchanged.append(known)
        return
    try:
        entries = list(_entries(path, source, content))
    except InvalidInput as exc:
        plan.invalid(source, exc)
        return
    for entry in entries:
        try:
            raw, blobs = inline_avatar(entry.raw, folder=path.parent, root=folder,
                                       limits=plan.limits)
            definition = in_namespace(parse_persona(
                raw, default_id=entry.default_id or None, source=entry.source),
                plan.namespace, whose="the owner's")
            blobs = check_write(definition, blobs, plan.limits)
        except (InvalidInput, PermissionDenied) as exc:
            plan.invalid(entry.source, exc)
            continue
        if plan.claim(definition.id, entry.source):
            plan.add(entry, definition, author, visibility, blobs)


def dump_definition(definition: PersonaDefinition, fmt: str = "yaml") -> str:
    data = definition.to_data()
    if fmt == "json":
        return json.dumps(data, ensure_ascii=False, indent=2) + "\n"
    if fmt in {"yaml", "yml"}:
        return yaml.dump(data, Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=100)
    raise InvalidInput(f"unknown format '{fmt}': use json or yaml")


def persona_file(folder: Path, persona_id: str, suffix: str) -> Path:
    """Where a persona's file goes under ``folder``: a user's persona in its namespace's
    subfolder (``alice/tutor`` -> ``alice/tutor.yaml``), so every id has its own file and
    ``sync --owner alice DIR/alice`` reads them back. Never outside ``folder``."""
    namespace, name = split_id(persona_id)
    path = (folder / namespace if namespace else folder) / f"{name}.{suffix}"
    if not path.resolve().is_relative_to(folder.resolve()):  # ids hold no '..'; kept so
        raise InvalidInput(f"persona id '{persona_id}' cannot name a file")
    return path


def write_files(definitions: list[PersonaDefinition], folder: Path,
                fmt: str = "yaml") -> list[Path]:
    """Write one file per persona (the inverse of ``sync_folder``; see ``persona_file``)."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for definition in definitions:
        path = persona_file(folder, definition.id, "json" if fmt == "json" else "yaml")
        path.parent.mkdir(exist_ok=True)
        path.write_text(dump_definition(definition, fmt), encoding="utf-8")
        written.append(path)
    return written


__all__ = ["SyncReport", "discover", "dump_definition", "parse_document", "persona_file",
           "personas_in", "sync_folder", "write_files"]
