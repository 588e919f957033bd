"""Persona operations with their access rules; adapters (API, CLI) call only this.

Access: global personas (no owner) are readable by everyone and writable by admins;
a user's persona is readable by its owner, by admins, and by everyone when public,
and writable by its owner and admins. A persona the caller may not read is reported
as not found, so private ids do not leak.
"""

from __future__ import annotations

import asyncio
import builtins
import difflib
from pathlib import Path
from typing import Any

import jsonpatch

from personae.auth.principal import USER_NAME_RULE, Principal, is_valid_user_name
from personae.auth.records import User
from personae.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    PermissionDenied,
    UnsupportedMediaType,
    VersionConflict,
)
from personae.personas import assets
from personae.personas import audit_notes as notes
from personae.personas.assets import AssetLimits, Blobs
from personae.personas.definition_bounds import check_bounds
from personae.personas.files import SyncReport, dump_definition, sync_folder
from personae.personas.records import ListQuery, NewVersion, Page, PersonaRecord, VersionRecord
from personae.personas.registry import CachedPersona, PersonaRegistry
from personae.personas.schema import (
    DEFINITION_FIELDS,
    PersonaAsset,
    PersonaDefinition,
    Status,
    Visibility,
    split_id,
)
from personae.personas.store import PersonaStore
from personae.personas.transfer import export_definition, needs_files
from personae.personas.validation import ALIASES, in_namespace, parse_persona


def can_read(principal: Principal, record: PersonaRecord) -> bool:
    return (principal.is_admin or record.owner_id is None
            or record.visibility is Visibility.public or record.owner_id == principal.user_id)


def can_write(principal: Principal, record: PersonaRecord) -> bool:
    return principal.is_admin or (
        record.owner_id is not None and record.owner_id == principal.user_id)


def namespace_for(name: str) -> str:
    """A user's persona namespace: their name (users created before names had to be slugs
    may hold one that cannot be; they get a clear refusal, not a broken id)."""
    if not is_valid_user_name(name):
        raise PermissionDenied(f"the user name '{name}' cannot be a persona namespace (it "
                               f"must use {USER_NAME_RULE}); create personas as another user")
    return name


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 JSON merge patch: mappings merge, ``null`` deletes, the rest replaces."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _traits_nested(changes: dict[str, Any]) -> dict[str, Any]:
    """Top-level trait keys in a patch (``{"pricing": ...}``) patch ``traits`` instead."""
    loose = {k: v for k, v in changes.items() if k not in DEFINITION_FIELDS and k not in ALIASES}
    if not loose:
        return changes
    nested = {k: v for k, v in changes.items() if k not in loose}
    traits = nested.get("traits")
    nested["traits"] = {**(traits if isinstance(traits, dict) else {}), **loose}
    return nested


class PersonaService:
    def __init__(self, store: PersonaStore, registry: PersonaRegistry, *,
                 asset_limits: AssetLimits = AssetLimits(),
                 audit: notes.AuditRecorder | None = None) -> None:
        self.store = store
        self.registry = registry
        self.asset_limits = asset_limits
        self.audit = audit  # told of every write once it succeeded

    # -- reads -------------------------------------------------------------

    async def get(self, principal: Principal, persona_id: str) -> CachedPersona:
        cached = await self.registry.get(persona_id)
        if cached is None or not can_read(principal, cached.record):
            raise NotFound(f"persona '{persona_id}' not found")
        return cached

    async def usable(self, principal: Principal, persona_id: str) -> PersonaRecord:
        """A persona the caller may read and use: archived ones are refused (409)."""
        record = (await self.get(principal, persona_id)).record
        if record.status is Status.archived:
            raise Conflict(f"persona '{persona_id}' is archived; restore it to use it",
                           {"persona": persona_id})
        return record

    async def stored_version(self, persona_id: str, number: int) -> VersionRecord | None:
        """A version by number with no access check, for versions pinned earlier."""
        return await self.store.version(persona_id, number)

    async def count(self) -> int:
        """How many personas are stored (every owner's, archived included)."""
        return await self.store.count()

    async def list(self, principal: Principal, **filters: Any) -> Page:
        query = ListQuery(viewer_id=principal.user_id, admin=principal.is_admin, **filters)
        return await self.store.list(query)

    async def versions(self, principal: Principal, persona_id: str) -> builtins.list[VersionRecord]:
        await self.get(principal, persona_id)
        return await self.store.versions(persona_id)

    async def version(self, principal: Principal, persona_id: str, number: int) -> VersionRecord:
        await self.get(principal, persona_id)
        found = await self.store.version(persona_id, number)
        if found is None:
            raise NotFound(f"persona '{persona_id}' has no version {number}")
        return found

    async def definition_at(self, principal: Principal, persona_id: str,
                            version: int | None = None) -> PersonaDefinition:
        """The current definition, or that of ``version``."""
        if version is None:
            return (await self.get(principal, persona_id)).record.definition
        return (await self.version(principal, persona_id, version)).definition

    async def avatar(self, principal: Principal, persona_id: str,
                     version: int | None = None) -> tuple[PersonaAsset, str, bytes]:
        """The avatar image (asset, media type, bytes); 404 when there is none, naming an
        external avatar URL in ``details.url``."""
        definition = await self.definition_at(principal, persona_id, version)
        asset = definition.avatar_asset
        if asset is None:
            details = {"url": definition.avatar} if definition.avatar else {}
            raise NotFound(f"persona '{persona_id}' has no avatar image", details)
        media_type, data = await self._stored_file(persona_id, asset.sha256)
        return asset, media_type, data

    async def asset(self, principal: Principal, persona_id: str, sha256: str,
                    version: int | None = None) -> tuple[PersonaAsset, str, bytes]:
        """A file the (current or given) version names; 404 for any other hash."""
        definition = await self.definition_at(principal, persona_id, version)
        asset = next((a for a in definition.assets if a.sha256 == sha256), None)
        if asset is None:
            raise NotFound(f"persona '{persona_id}' has no asset {sha256}")
        media_type, data = await self._stored_file(persona_id, sha256)
        return asset, media_type, data

    async def _stored_file(self, persona_id: str, sha256: str) -> tuple[str, bytes]:
        found = await self.store.asset(persona_id, sha256)
        if found is None:  # only if the persona was deleted under us
            raise NotFound(f"persona '{persona_id}' has no asset {sha256}")
        return found

    async def export(self, principal: Principal, persona_id: str,
                     fmt: str) -> tuple[bytes, str, str]:
        """The persona as a file of ``fmt`` (see ``transfer.EXPORT_FORMATS``), with its
        files for the card formats: (content, media type, file name)."""
        definition = (await self.get(principal, persona_id)).record.definition
        blobs = await self.store.asset_data(persona_id, (a.sha256 for a in definition.assets)) \
            if needs_files(fmt) else {}
        return await asyncio.to_thread(export_definition, definition, fmt, blobs)

    async def diff(self, principal: Principal, persona_id: str, old: int,
                   new: int) -> dict[str, Any]:
        before = (await self.version(principal, persona_id, old)).definition
        after = (await self.version(principal, persona_id, new)).definition
        patch = jsonpatch.make_patch(before.to_data(), after.to_data()).patch
        changed = sorted({op["path"].split("/")[1] for op in patch if op["path"].count("/")})
        # The persona files side by side, line by line: what a person reads in a review.
        lines = list(difflib.unified_diff(
            dump_definition(before).splitlines(), dump_definition(after).splitlines(),
            f"version {old}", f"version {new}", lineterm=""))
        return {"persona_id": persona_id, "from": old, "to": new,
                "changed_fields": changed, "patch": patch, "lines": lines}

    # -- writes ------------------------------------------------------------

    async def create(self, principal: Principal, raw: Any, *, visibility: Visibility =
                     Visibility.private, global_scope: bool = False, note: str = "",
                     author: str | None = None, blobs: Blobs | None = None) -> PersonaRecord:
        """Create one persona; an inline ``avatar`` (a ``data:`` URI) becomes its icon."""
        files = dict(blobs or {})
        if not isinstance(raw, PersonaDefinition):
            raw, inline = assets.inline_avatar(raw, limits=self.asset_limits)
            files |= inline
        # Validation renders the prompt template (up to its time bound): off the loop.
        definition = await asyncio.to_thread(
            check_bounds if isinstance(raw, PersonaDefinition) else parse_persona, raw)
        (record,) = await self.create_many(principal, [definition], visibility=visibility,
                                           global_scope=global_scope, note=note, author=author,
                                           blobs=files)
        return record

    async def create_many(self, principal: Principal,
                          definitions: builtins.list[PersonaDefinition], *,
                          visibility: Visibility = Visibility.private,
                          global_scope: bool = False, note: str = "",
                          author: str | None = None,
                          blobs: Blobs | None = None) -> builtins.list[PersonaRecord]:
        """Create several personas, all or none (an import of a multi-persona file),
        with the bytes of the files they name (``blobs``, by hash).

        A user's personas are created in their namespace (``id: tutor`` becomes
        ``alice/tutor``), so a clash can only ever be with the caller's own personas."""
        if global_scope and not principal.is_admin:
            raise PermissionDenied("only admins can create global personas")
        namespace = None if global_scope else namespace_for(principal.name)
        definitions = [in_namespace(d, namespace) for d in definitions]
        owner = None if global_scope else principal.user_id
        visibility = Visibility.public if global_scope else visibility
        items = [(NewVersion(d, author or principal.name, note or "created",
                             blobs=assets.check_write(d, blobs or {}, self.asset_limits)),
                  owner, visibility) for d in definitions]
        await self.store.create(items)
        created = [await self._fresh(d.id) for d in definitions]
        for record in created:
            await notes.record_all(self.audit, principal, record.id,
                                   [("persona.create", notes.create_note(record))])
        return created

    async def replace(self, principal: Principal, persona_id: str, raw: Any, *,
                      base_version: int, note: str = "",
                      visibility: Visibility | None = None) -> PersonaRecord:
        record = await self._writable(principal, persona_id)
        data = dict(raw) if isinstance(raw, dict) else raw
        if isinstance(data, dict):
            data.setdefault("id", persona_id)
            if data["id"] == split_id(persona_id)[1]:  # the plain name within its namespace
                data["id"] = persona_id
        data, inline = assets.inline_avatar(data, limits=self.asset_limits)
        definition = await asyncio.to_thread(parse_persona, data)
        if definition.id != persona_id:
            raise InvalidInput(f"id: cannot change a persona's id ('{persona_id}' -> "
                               f"'{definition.id}'); create a new persona instead")
        return await self._write(principal, record, definition, base_version, note, visibility,
                                 blobs=inline)

    async def patch(self, principal: Principal, persona_id: str, changes: dict[str, Any], *,
                    base_version: int, note: str = "",
                    visibility: Visibility | None = None) -> PersonaRecord:
        record = await self._writable(principal, persona_id)
        merged = merge_patch(record.definition.to_data(), _traits_nested(changes))
        return await self.replace(principal, persona_id, merged, base_version=base_version,
                                  note=note, visibility=visibility)

    async def set_status(self, principal: Principal, persona_id: str, status: Status, *,
                         base_version: int | None = None, note: str = "") -> PersonaRecord:
        record = await self._writable(principal, persona_id)
        if record.status is status:
            return record
        definition = record.definition.model_copy(update={"status": status})
        base = record.version if base_version is None else base_version
        default_note = "archived" if status is Status.archived else f"status set to {status}"
        return await self._write(principal, record, definition, base, note or default_note)

    async def rollback(self, principal: Principal, persona_id: str, to_version: int, *,
                       base_version: int | None = None, note: str = "") -> PersonaRecord:
        record = await self._writable(principal, persona_id)
        target = await self.version(principal, persona_id, to_version)
        base = record.version if base_version is None else base_version
        # The old version is current again: it meets today's bounds, as a new write would.
        definition = await asyncio.to_thread(check_bounds, target.definition)
        return await self._write(principal, record, definition, base,
                                 note or f"rollback to version {to_version}",
                                 action="persona.rollback")

    async def set_avatar(self, principal: Principal, persona_id: str, image: bytes,
                         media_type: str, *, base_version: int) -> PersonaRecord:
        """A new version with ``image`` (PNG, JPEG, WebP or GIF) as the avatar."""
        if media_type not in assets.AVATAR_MEDIA_TYPES:
            raise UnsupportedMediaType(
                f"an avatar is sent as {', '.join(assets.AVATAR_MEDIA_TYPES)}, "
                f"not {media_type or 'no Content-Type'}")
        record = await self._writable(principal, persona_id)
        asset = await asyncio.to_thread(assets.describe, image, name="main", what="the avatar",
                                        limits=self.asset_limits)
        if asset.media_type not in assets.AVATAR_MEDIA_TYPES:
            raise InvalidInput("the avatar must be a PNG, JPEG, WebP or GIF image")
        definition = assets.with_avatar(record.definition, asset)
        return await self._write(principal, record, definition, base_version, "avatar set",
                                 blobs={asset.sha256: image})

    async def remove_avatar(self, principal: Principal, persona_id: str, *,
                            base_version: int) -> PersonaRecord:
        """A new version without an avatar (no change, no version, if it had none)."""
        record = await self._writable(principal, persona_id)
        definition = assets.with_avatar(record.definition, None)
        return await self._write(principal, record, definition, base_version, "avatar removed")

    async def sync_folder(self, principal: Principal, folder: Path, *,
                          owner: User | None = None, skip_invalid: bool = False,
                          dry_run: bool = False) -> SyncReport:
        """Upsert a folder of persona files as global personas (admins only) or as
        ``owner``'s, in their namespace (that user, or an admin); see
        :mod:`personae.personas.files`."""
        if owner is None and not principal.is_admin:
            raise PermissionDenied("only admins can sync global personas; sync your own "
                                   "with an owner")
        if owner is not None and owner.id != principal.user_id and not principal.is_admin:
            raise PermissionDenied("only admins can sync another user's personas")
        namespace = None if owner is None else namespace_for(owner.name)
        try:
            report = await sync_folder(self.store, folder, author=principal.name,
                                       owner_id=owner.id if owner else None,
                                       namespace=namespace, skip_invalid=skip_invalid,
                                       dry_run=dry_run, limits=self.asset_limits)
        finally:
            self.registry.invalidate()
        if report.applied:
            await notes.record_all(self.audit, principal, namespace, [
                ("persona.sync", notes.sync_note(report, owner.id if owner else None))])
        return report

    async def seed(self, folder: Path, author: str) -> SyncReport:
        """Load a folder of global personas on the system's own behalf (the samples)."""
        try:
            return await sync_folder(self.store, folder, author=author,
                                     limits=self.asset_limits)
        finally:
            self.registry.invalidate()

    async def hard_delete(self, principal: Principal, persona_id: str) -> None:
        record = (await self.get(principal, persona_id)).record
        if not principal.is_admin:
            raise PermissionDenied("only admins can delete a persona for good; archive it instead")
        await self.store.delete(persona_id)
        self.registry.invalidate(persona_id)
        await notes.record_all(self.audit, principal, persona_id, [
            ("persona.delete", {"version": record.version, "owner_id": record.owner_id})])

    # -- helpers -----------------------------------------------------------

    async def _writable(self, principal: Principal, persona_id: str) -> PersonaRecord:
        record = (await self.get(principal, persona_id)).record
        if not can_write(principal, record):
            who = "admins" if record.is_global else "its owner and admins"
            raise PermissionDenied(f"persona '{persona_id}' can only be changed by {who}")
        return record

    async def _write(self, principal: Principal, record: PersonaRecord,
                     definition: PersonaDefinition, base_version: int, note: str,
                     visibility: Visibility | None = None, blobs: Blobs | None = None,
                     action: str = "persona.update") -> PersonaRecord:
        if base_version != record.version:
            raise VersionConflict(record.id, base_version, record.version)
        if definition.content_hash() == record.definition_hash and visibility in (
                None, record.visibility):
            return record  # nothing changed: no new version
        new = NewVersion(definition, principal.name, note or "updated", visibility=visibility,
                         blobs=assets.check_write(definition, blobs or {}, self.asset_limits))
        try:
            await self.store.append_version(record.id, new, base_version)
        finally:
            self.registry.invalidate(record.id)
        fresh = await self._fresh(record.id)
        await notes.record_all(self.audit, principal, record.id,
                               notes.write_notes(record, fresh, action))
        return fresh

    async def _fresh(self, persona_id: str) -> PersonaRecord:
        self.registry.invalidate(persona_id)
        cached = await self.registry.get(persona_id)
        if cached is None:
            raise NotFound(f"persona '{persona_id}' not found")
        return cached.record
