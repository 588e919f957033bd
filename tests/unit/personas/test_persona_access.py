"""Ownership and visibility rules (both databases)."""

from __future__ import annotations

import pytest

from personae.auth.principal import Principal
from personae.errors import NotFound, PermissionDenied
from personae.personas.schema import Visibility
from personae.runtime import Runtime


async def test_member_cannot_edit_global_persona(
    runtime: Runtime, people: dict[str, Principal]
) -> None:
    await runtime.personas.create(people["admin"], {"id": "mohit", "name": "Mohit"},
                                  global_scope=True)
    assert (await runtime.personas.get(people["alice"], "mohit")).record.is_global
    with pytest.raises(PermissionDenied, match="only be changed by admins"):
        await runtime.personas.patch(people["alice"], "mohit", {"description": "x"},
                                     base_version=1)


async def test_member_cannot_create_global_persona(
    runtime: Runtime, people: dict[str, Principal]
) -> None:
    with pytest.raises(PermissionDenied):
        await runtime.personas.create(people["alice"], {"name": "Mohit"}, global_scope=True)


async def test_private_persona_is_invisible_to_other_members(
    runtime: Runtime, people: dict[str, Principal]
) -> None:
    alice, bob = people["alice"], people["bob"]
    diary = (await runtime.personas.create(alice, {"id": "diary", "name": "Diary"})).id
    assert diary == "alice/diary"
    with pytest.raises(NotFound):
        await runtime.personas.get(bob, diary)
    with pytest.raises(NotFound):
        await runtime.personas.versions(bob, diary)
    with pytest.raises(NotFound):
        await runtime.personas.patch(bob, diary, {"description": "x"}, base_version=1)
    assert [s.id for s in (await runtime.personas.list(bob)).data] == []
    assert [s.id for s in (await runtime.personas.list(alice)).data] == [diary]


async def test_public_persona_readable_not_writable_by_others(
    runtime: Runtime, people: dict[str, Principal]
) -> None:
    alice, bob = people["alice"], people["bob"]
    coach = (await runtime.personas.create(alice, {"id": "coach", "name": "Coach"},
                                           visibility=Visibility.public)).id
    assert (await runtime.personas.get(bob, coach)).record.owner_id == alice.user_id
    with pytest.raises(PermissionDenied):
        await runtime.personas.patch(bob, coach, {"description": "x"}, base_version=1)
    updated = await runtime.personas.patch(people["admin"], coach, {"description": "ok"},
                                           base_version=1)
    assert updated.version == 2
