"""Two API processes on one database agree: a write in one is served by the other
within one second, although each caches reads for far longer (TTL 300 s)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from personae.config import Settings
from personae.runtime import Runtime
from tests.support.servers import api_server

pytestmark = pytest.mark.slow


async def _wait_for(client: httpx.AsyncClient, url: str, predicate, within: float) -> float:
    start = time.monotonic()
    while time.monotonic() - start < within:
        response = await client.get(url)
        if predicate(response):
            return time.monotonic() - start
        await asyncio.sleep(0.02)
    raise AssertionError(f"{url} did not change within {within}s: {response.text}")


async def test_write_in_one_process_is_served_by_the_other(
    database_url: str, tmp_path: Path
) -> None:
    runtime = await Runtime.open(Settings(data_dir=tmp_path, database_url=database_url),
                                 watch=False)
    await runtime.close()  # migrated once, before two servers race to do it
    env = {"PERSONAE_CACHE_TTL_SECONDS": "300"}
    with api_server(database_url, tmp_path, **env) as first, \
            api_server(database_url, tmp_path, **env) as second:
        async with httpx.AsyncClient(timeout=10) as client:
            created = await client.post(f"{first}/v1/personas", json={
                "definition": {"id": "mohit", "name": "Mohit"}, "global": True})
            assert created.status_code == 201, created.text
            for _ in range(3):  # warm the second process's cache
                assert (await client.get(f"{second}/v1/personas/mohit")).json()["version"] == 1
            patched = await client.patch(f"{first}/v1/personas/mohit", json={
                "definition": {"description": "changed"}, "base_version": 1})
            assert patched.status_code == 200
            seen_after = await _wait_for(
                client, f"{second}/v1/personas/mohit",
                lambda r: r.json()["version"] == 2, within=1.0)
            assert (await client.get(f"{second}/v1/personas/mohit")).json()["definition"][
                "description"] == "changed"
            deleted = await client.delete(f"{second}/v1/personas/mohit?hard=true")
            assert deleted.status_code == 204
            await _wait_for(client, f"{first}/v1/personas/mohit",
                            lambda r: r.status_code == 404, within=1.0)
    assert seen_after < 1.0
