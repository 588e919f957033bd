"""Throwaway PostgreSQL databases for tests and benchmarks.

The server comes from ``PERSONAE_TEST_POSTGRES_URL`` (a SQLAlchemy URL such as
``postgresql+asyncpg://postgres@127.0.0.1:5432/personae_test``); ``scripts/test.sh``
starts a private cluster and sets it. Every caller gets its own database, named
``t_<uuid hex>``, created on that server and dropped (``WITH (FORCE)``) afterwards.

Async code uses :func:`temporary_database` (or :func:`create_database` /
:func:`drop_database`); synchronous code such as benchmark drivers or process
launchers can use the ``*_sync`` variants, which must not be called from inside a
running event loop.
"""

from __future__ import annotations

import asyncio
import os
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.engine import make_url

POSTGRES_URL_ENV = "PERSONAE_TEST_POSTGRES_URL"
REQUIRE_POSTGRES_ENV = "PERSONAE_REQUIRE_POSTGRES"

DATABASE_PREFIX = "t_"
CONNECT_TIMEOUT = 15.0

_NAME_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def server_url() -> str | None:
    """The configured server URL, or ``None`` when PostgreSQL tests are not set up."""
    value = os.environ.get(POSTGRES_URL_ENV, "").strip()
    return value or None


def postgres_required() -> bool:
    """Whether a missing server must fail the run instead of skipping tests."""
    return os.environ.get(REQUIRE_POSTGRES_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def new_database_name(prefix: str = DATABASE_PREFIX) -> str:
    """A fresh, valid, unquoted-safe database name such as ``t_1f0c...``."""
    return _checked_name(f"{prefix}{uuid.uuid4().hex}")


def database_url(url: str, name: str) -> str:
    """``url`` pointed at database ``name`` (driver, credentials and options kept)."""
    return make_url(url).set(database=name).render_as_string(hide_password=False)


def asyncpg_dsn(url: str) -> str:
    """A DSN that :func:`asyncpg.connect` accepts, from a SQLAlchemy URL."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def database_name(url: str) -> str | None:
    """The database part of a URL."""
    return make_url(url).database


async def create_database(url: str, name: str | None = None) -> str:
    """Create a new database on the server of ``url``; return the URL that points at it.

    ``url`` must name a database that exists (it is only used to connect). The new
    database is copied from ``template0``, so concurrent creations never collide on a
    busy template.
    """
    name = _checked_name(name) if name is not None else new_database_name()
    conn = await _connect(url)
    try:
        await conn.execute(f"CREATE DATABASE {_quote(name)} TEMPLATE template0")
    finally:
        await conn.close()
    return database_url(url, name)


async def drop_database(url: str, name: str | None = None) -> None:
    """Drop database ``name`` (default: the one ``url`` names), ending open sessions.

    The ``DROP`` is issued from the database ``url`` names when that is not the
    target, else from the server's ``postgres`` or ``template1`` database, so ``url``
    may be the very URL that :func:`create_database` returned.
    """
    target = _checked_name(name if name is not None else database_name(url) or "")
    candidates = dict.fromkeys([database_name(url), "postgres", "template1"])
    last_error: Exception | None = None
    for maintenance in candidates:
        if not maintenance or maintenance == target:
            continue
        try:
            conn = await _connect(database_url(url, maintenance))
        except Exception as exc:  # the maintenance database may not exist
            last_error = exc
            continue
        try:
            await conn.execute(f"DROP DATABASE IF EXISTS {_quote(target)} WITH (FORCE)")
        finally:
            await conn.close()
        return
    raise RuntimeError(f"could not connect to drop database {target!r}") from last_error


@asynccontextmanager
async def temporary_database(url: str | None = None) -> AsyncIterator[str]:
    """A fresh database for the duration of the block; yields its SQLAlchemy URL."""
    base = url if url is not None else server_url()
    if base is None:
        raise RuntimeError(f"{POSTGRES_URL_ENV} is not set")
    created = await create_database(base)
    try:
        yield created
    finally:
        await drop_database(base, database_name(created))


async def server_version(url: str) -> int:
    """``server_version_num`` of the server behind ``url`` (e.g. ``150004``)."""
    conn = await _connect(url)
    try:
        return int(await conn.fetchval("SHOW server_version_num"))
    finally:
        await conn.close()


def create_database_sync(url: str, name: str | None = None) -> str:
    """Blocking :func:`create_database`, for code that is not running an event loop."""
    return asyncio.run(create_database(url, name))


def drop_database_sync(url: str, name: str | None = None) -> None:
    """Blocking :func:`drop_database`, for code that is not running an event loop."""
    asyncio.run(drop_database(url, name))


async def _connect(url: str):  # -> asyncpg.Connection
    import asyncpg  # imported lazily: SQLite-only runs need no PostgreSQL driver

    return await asyncpg.connect(asyncpg_dsn(url), timeout=CONNECT_TIMEOUT)


def _checked_name(name: str) -> str:
    if not _NAME_RE.fullmatch(name):
        raise ValueError(f"unsafe test database name: {name!r}")
    return name


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'
