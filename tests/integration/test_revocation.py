"""A key revoked, or a user disabled, through one API process is refused by another
process on the same database within a second, although that process had the key's
owner cached (for 5 s): the write reaches it through the change feed."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from personae.auth.principal import Role
from personae.config import Settings
from tests.support.runtime import open_runtime
from tests.support.servers import api_server

pytestmark = pytest.mark.slow

POLL_SECONDS = 0.05
WITHIN_SECONDS = 1.0


async def _seed(database_url: str, data_dir: Path) -> dict[str, str]:
    """An admin and two members with keys, written before the servers start."""
    async with open_runtime(Settings(data_dir=data_dir, database_url=database_url)) as runtime:
        keys = {}
        for name, role in (("root", Role.admin), ("alice", Role.member), ("bob", Role.member)):
            await runtime.users.create_user(name, role)
            keys[name], _ = await runtime.users.create_key(name)
        return keys


async def _refused_after(client: httpx.AsyncClient, url: str, token: str) -> float:
    """Seconds until ``url`` answers 401 to ``token``, polling every 50 ms."""
    start = time.monotonic()
    while time.monotonic() - start < WITHIN_SECONDS + 2:
        response = await client.get(url, headers={"Authorization": f"Bearer {token}"})
        if response.status_code == 401:
            return time.monotonic() - start
        assert response.status_code == 200, response.text
        await asyncio.sleep(POLL_SECONDS)
    raise AssertionError(f"{url} still accepts the key after {WITHIN_SECONDS + 2}s")


async def _warm(client: httpx.AsyncClient, url: str, token: str) -> None:
    for _ in range(3):  # cached in this process from here on
        response = await client.get(url, headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200, response.text


async def test_revocation_and_disabling_reach_every_process_within_a_second(
    database_url: str, tmp_path: Path
) -> None:
    keys = await _seed(database_url, tmp_path)
    admin = {"Authorization": f"Bearer {keys['root']}"}
    with api_server(database_url, tmp_path) as first, api_server(database_url, tmp_path) as second:
        async with httpx.AsyncClient(timeout=10) as client:
            await _warm(client, f"{second}/v1/me", keys["alice"])
            await _warm(client, f"{second}/v1/me", keys["bob"])
            listed = await client.get(f"{first}/v1/users/alice/keys", headers=admin)
            (alice_key,) = listed.json()["data"]
            revoked = await client.delete(f"{first}/v1/keys/{alice_key['id']}", headers=admin)
            assert revoked.status_code == 204, revoked.text
            revoked_after = await _refused_after(client, f"{second}/v1/me", keys["alice"])

            disabled = await client.patch(f"{first}/v1/users/bob", headers=admin,
                                          json={"disabled": True})
            assert disabled.status_code == 200, disabled.text
            disabled_after = await _refused_after(client, f"{second}/v1/me", keys["bob"])
            assert (await client.get(f"{second}/v1/me", headers=admin)).status_code == 200
    assert revoked_after < WITHIN_SECONDS
    assert disabled_after < WITHIN_SECONDS
