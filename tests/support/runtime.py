"""A migrated runtime on a test database, and the users and personas seeded into it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any

from personae.auth.principal import Principal, Role
from personae.config import Settings
from personae.runtime import Runtime

PEOPLE = (("admin", Role.admin), ("alice", Role.member), ("bob", Role.member))
MEMBERS = (("alice", Role.member), ("bob", Role.member))


@asynccontextmanager
async def open_runtime(settings: Settings) -> AsyncIterator[Runtime]:
    """A runtime (migrations applied, no folder watcher), closed on the way out."""
    runtime = await Runtime.open(settings, watch=False)
    try:
        yield runtime
    finally:
        await runtime.close()


async def create_people(runtime: Runtime,
                        people: Iterable[tuple[str, Role]] = PEOPLE) -> dict[str, Principal]:
    """Create each user and return them as principals, by name."""
    found = {}
    for name, role in people:
        user = await runtime.users.create_user(name, role)
        found[name] = Principal(user.id, user.name, user.role)
    return found


async def create_global_personas(runtime: Runtime,
                                 personas: Iterable[Mapping[str, Any]]) -> None:
    """Create each persona as the local admin, visible to everyone."""
    admin = await runtime.auth.local_admin()
    for persona in personas:
        await runtime.personas.create(admin, persona, global_scope=True)


async def member_keys(settings: Settings,
                      personas: Iterable[Mapping[str, Any]]) -> tuple[str, str]:
    """API keys of two new members, alice and bob, on a store where ``personas`` are
    global; written before a server starts on it."""
    async with open_runtime(settings) as runtime:
        keys = []
        for name, role in MEMBERS:
            await runtime.users.create_user(name, role)
            keys.append((await runtime.users.create_key(name))[0])
        await create_global_personas(runtime, personas)
        return keys[0], keys[1]
