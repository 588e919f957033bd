from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from personae.auth.principal import Principal, Role
from personae.config import Settings
from personae.runtime import Runtime


@pytest.fixture
async def runtime(database_url: str, tmp_path: Path) -> AsyncIterator[Runtime]:
    """A migrated runtime on an empty database (SQLite and PostgreSQL)."""
    rt = await Runtime.open(Settings(data_dir=tmp_path, database_url=database_url), watch=False)
    try:
        yield rt
    finally:
        await rt.close()


@pytest.fixture
async def people(runtime: Runtime) -> dict[str, Principal]:
    """An admin and two members, as principals."""
    found = {}
    for name, role in [("admin", Role.admin), ("alice", Role.member), ("bob", Role.member)]:
        user = await runtime.users.create_user(name, role)
        found[name] = Principal(user.id, user.name, user.role)
    return found
