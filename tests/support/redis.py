"""Throwaway Redis databases for tests.

The server comes from ``PERSONAE_TEST_REDIS_URL`` (a URL such as
``redis://127.0.0.1:6379/0``); ``scripts/test.sh`` starts a private server and sets
it. Redis has only 16 numbered databases and no cheap way to create more, so each
caller of :func:`temporary_redis_db` gets the server URL pointed at a random
database from 1 to 15, flushed (``FLUSHDB``) before and after use. That isolates
tests that run one after another, as they do in one pytest process; it does not
isolate concurrent users of the same server, and it wipes databases 1-15 of the
server it is given.
"""

from __future__ import annotations

import os
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit, urlunsplit

REDIS_URL_ENV = "PERSONAE_TEST_REDIS_URL"
REQUIRE_REDIS_ENV = "PERSONAE_REQUIRE_REDIS"

FIRST_TEST_DB = 1
LAST_TEST_DB = 15
CONNECT_TIMEOUT = 15.0


def server_url() -> str | None:
    """The configured server URL, or ``None`` when Redis tests are not set up."""
    value = os.environ.get(REDIS_URL_ENV, "").strip()
    return value or None


def redis_required() -> bool:
    """Whether a missing server must fail the run instead of skipping tests."""
    return os.environ.get(REQUIRE_REDIS_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def database_url(url: str, db: int) -> str:
    """``url`` pointed at database number ``db`` (scheme, credentials, query kept)."""
    if not 0 <= db <= LAST_TEST_DB:
        raise ValueError(f"Redis database number out of range: {db}")
    parts = urlsplit(url)
    if parts.scheme not in {"redis", "rediss"}:
        raise ValueError(f"not a redis:// or rediss:// URL: {url!r}")
    return urlunsplit(parts._replace(path=f"/{db}"))


def new_database_number() -> int:
    """A random database number from ``FIRST_TEST_DB`` to ``LAST_TEST_DB``."""
    return random.randint(FIRST_TEST_DB, LAST_TEST_DB)


async def flush_database(url: str) -> None:
    """Delete every key of the database ``url`` names."""
    from redis.asyncio import Redis  # imported lazily: runs without Redis need no client

    client = Redis.from_url(url, socket_connect_timeout=CONNECT_TIMEOUT)
    try:
        await client.flushdb()
    finally:
        await client.aclose()


@asynccontextmanager
async def temporary_redis_db(url: str | None = None) -> AsyncIterator[str]:
    """An empty database for the duration of the block; yields its ``redis://`` URL."""
    base = url if url is not None else server_url()
    if base is None:
        raise RuntimeError(f"{REDIS_URL_ENV} is not set")
    target = database_url(base, new_database_number())
    await flush_database(target)
    try:
        yield target
    finally:
        await flush_database(target)
