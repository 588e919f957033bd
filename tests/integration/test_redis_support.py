"""The ``redis_url`` fixture reaches a real server and hands out an empty database."""

from __future__ import annotations

from urllib.parse import urlsplit

from redis.asyncio import Redis

from tests.support import redis as rd


async def test_redis_url_is_an_empty_database_that_stores_keys(redis_url: str) -> None:
    db = int(urlsplit(redis_url).path.lstrip("/"))
    assert rd.FIRST_TEST_DB <= db <= rd.LAST_TEST_DB  # never the server URL's own db 0
    client = Redis.from_url(redis_url, decode_responses=True)
    try:
        assert await client.dbsize() == 0  # flushed before the test
        await client.set("personae:test:key", "value")
        assert await client.get("personae:test:key") == "value"
        assert await client.dbsize() == 1
    finally:
        await client.aclose()
