"""Versioning, optimistic concurrency, rollback and diff through the service (both DBs)."""

from __future__ import annotations

import asyncio

import pytest

from personae.auth.principal import Principal
from personae.errors import Conflict, NotFound, PermissionDenied, VersionConflict
from personae.personas.schema import Status, Visibility
from personae.runtime import Runtime

TINA = {"id": "tina", "name": "Tina Kulkarni", "language": "Hindi",
        "greeting": "नमस्ते, मैं तीना हूं", "tags": ["astrology"],
        "consultation_style": {"pace": "slow and detailed"}}
ALICES_TINA = "alice/tina"  # TINA created by alice: in her namespace


async def test_create_then_read_back(runtime: Runtime, people: dict[str, Principal]) -> None:
    record = await runtime.personas.create(people["admin"], TINA, global_scope=True)
    assert record.version == 1 and record.owner_id is None
    assert record.visibility is Visibility.public
    got = (await runtime.personas.get(people["alice"], "tina")).record
    assert got.definition.language == "hi"
    assert got.definition.traits == {"consultation_style": {"pace": "slow and detailed"}}
    assert got.definition.greetings == ["नमस्ते, मैं तीना हूं"]


async def test_duplicate_id_is_a_conflict(runtime: Runtime, people: dict[str, Principal]) -> None:
    await runtime.personas.create(people["alice"], TINA)
    with pytest.raises(Conflict, match="'alice/tina' already exists"):
        await runtime.personas.create(people["alice"], TINA)
    theirs = await runtime.personas.create(people["bob"], TINA)  # in bob's own namespace
    assert theirs.id == "bob/tina"


async def test_every_write_is_a_new_immutable_version(
    runtime: Runtime, people: dict[str, Principal]
) -> None:
    alice = people["alice"]
    await runtime.personas.create(alice, TINA)
    await runtime.personas.patch(alice, ALICES_TINA, {"description": "Vedic"}, base_version=1)
    await runtime.personas.patch(alice, ALICES_TINA, {"description": "Vedic marriage"},
                                 base_version=2, note="clearer")
    versions = await runtime.personas.versions(alice, ALICES_TINA)
    assert [v.number for v in versions] == [1, 2, 3]
    assert versions[0].definition.description == ""
    assert versions[1].definition.description == "Vedic"
    assert versions[2].note == "clearer" and versions[2].author == "alice"


async def test_stale_write_gets_version_conflict(
    runtime: Runtime, people: dict[str, Principal]
) -> None:
    alice = people["alice"]
    await runtime.personas.create(alice, TINA)
    await runtime.personas.patch(alice, ALICES_TINA, {"description": "first"}, base_version=1)
    with pytest.raises(VersionConflict) as caught:
        await runtime.personas.patch(alice, ALICES_TINA, {"description": "second"}, base_version=1)
    assert caught.value.current_version == 2
    current = (await runtime.personas.get(alice, ALICES_TINA)).record
    assert current.definition.description == "first"


async def test_concurrent_writers_one_wins(runtime: Runtime,
                                           people: dict[str, Principal]) -> None:
    alice = people["alice"]
    await runtime.personas.create(alice, TINA)
    results = await asyncio.gather(
        *[runtime.personas.patch(alice, ALICES_TINA, {"description": f"writer {i}"}, base_version=1)
          for i in range(5)],
        return_exceptions=True)
    wins = [r for r in results if not isinstance(r, BaseException)]
    assert len(wins) == 1
    assert all(isinstance(r, VersionConflict) for r in results if r not in wins)
    assert [v.number for v in await runtime.personas.versions(alice, ALICES_TINA)] == [1, 2]


async def test_rollback_is_a_new_version(runtime: Runtime, people: dict[str, Principal]) -> None:
    alice = people["alice"]
    await runtime.personas.create(alice, TINA)
    await runtime.personas.patch(alice, ALICES_TINA, {"system_prompt": "Be brief."}, base_version=1)
    rolled = await runtime.personas.rollback(alice, ALICES_TINA, 1)
    assert rolled.version == 3
    assert rolled.definition.system_prompt == ""
    assert rolled.definition_hash == (await runtime.store.version(ALICES_TINA, 1)).definition_hash
    assert (await runtime.store.version(ALICES_TINA, 3)).note == "rollback to version 1"


async def test_diff_names_changed_fields(runtime: Runtime, people: dict[str, Principal]) -> None:
    alice = people["alice"]
    await runtime.personas.create(alice, TINA)
    await runtime.personas.patch(alice, ALICES_TINA, {"description": "new",
                                                 "consultation_style": None}, base_version=1)
    diff = await runtime.personas.diff(alice, ALICES_TINA, 1, 2)
    assert diff["changed_fields"] == ["description", "traits"]
    ops = {(op["op"], op["path"]) for op in diff["patch"]}
    assert ("add", "/description") in ops
    assert ("remove", "/traits") in ops


async def test_archive_and_restore(runtime: Runtime, people: dict[str, Principal]) -> None:
    alice = people["alice"]
    await runtime.personas.create(alice, TINA)
    archived = await runtime.personas.set_status(alice, ALICES_TINA, Status.archived)
    assert archived.status is Status.archived and archived.version == 2
    assert (await runtime.personas.list(alice)).count == 0
    assert (await runtime.personas.list(alice, include_archived=True)).count == 1
    restored = await runtime.personas.set_status(alice, ALICES_TINA, Status.active)
    assert restored.status is Status.active and restored.version == 3


async def test_hard_delete_is_admin_only(runtime: Runtime, people: dict[str, Principal]) -> None:
    await runtime.personas.create(people["alice"], TINA)
    with pytest.raises(PermissionDenied):
        await runtime.personas.hard_delete(people["alice"], ALICES_TINA)
    await runtime.personas.hard_delete(people["admin"], ALICES_TINA)
    with pytest.raises(NotFound):
        await runtime.personas.get(people["admin"], ALICES_TINA)
    assert await runtime.store.versions(ALICES_TINA) == []
