"""Throwaway PostgreSQL databases for tests and benchmarks.

The server comes from ``PERSONAE_TEST_POSTGRES_URL`` (a SQLAlchemy URL such as
``postgresql+asyncpg://postgres@127.0.0.1:5432/personae_test``); ``scripts/test.sh``
starts a private cluster and sets it. Every caller gets its own database, named
``t_<uuid hex>``, created on that server and dropped (``WITH (FORCE)``) afterwards.
It is a copy of ``template0`` (empty) or of a template that :func:`ensure_template`
built once, e.g. a database already migrated, which is much cheaper to copy than to
migrate again for every test.

Async code uses :func:`temporary_database` (or :func:`create_database` /
:func:`drop_database`, or a :class:`DatabasePool`, which makes them ahead and drops
them in the background, as the test fixtures do); synchronous code such as
benchmark drivers or process launchers can use the ``*_sync`` variants, which must
not be called from inside a running event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import threading
import uuid
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from concurrent.futures import Future
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from sqlalchemy.engine import make_url

T = TypeVar("T")

POSTGRES_URL_ENV = "PERSONAE_TEST_POSTGRES_URL"
REQUIRE_POSTGRES_ENV = "PERSONAE_REQUIRE_POSTGRES"

DATABASE_PREFIX = "t_"
TEMPLATE_PREFIX = "personae_tmpl_"
BUILD_PREFIX = "personae_build_"
DUPLICATE_DATABASE = "42P04"  # SQLSTATE of a name already taken
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


async def create_database(url: str, name: str | None = None,
                          template: str = "template0") -> str:
    """Create a new database on the server of ``url``; return the URL that points at it.

    ``url`` must name a database that exists (it is only used to connect). The new
    database is a copy of ``template``: ``template0`` or one from
    :func:`ensure_template`, neither of which accepts connections, so concurrent
    creations never collide on a busy template.
    """
    name = _checked_name(name) if name is not None else new_database_name()
    conn = await _connect(url)
    try:
        await conn.execute(
            f"CREATE DATABASE {_quote(name)} TEMPLATE {_quote(_checked_name(template))}")
    finally:
        await conn.close()
    return database_url(url, name)


async def ensure_template(url: str, key: str, build: Callable[[str], Awaitable[None]]) -> str:
    """The name of template ``personae_tmpl_<key>`` on the server of ``url``, built on
    first use by ``build`` (given the URL of an empty database; it must close its
    connections).

    ``key`` names what the template holds (a digest of the migrations, say), so a
    change makes a new template instead of copying a stale one. It is built under a
    private name, closed to connections and only then renamed into place: a template
    that exists is complete and nobody is connected to it, so any number of sessions,
    in any number of processes, may copy it at once; the loser of a race to build it
    drops its own copy.
    """
    name = _checked_name(f"{TEMPLATE_PREFIX}{key}")
    if await _database_exists(url, name):
        return name
    staging = database_name(await create_database(url, new_database_name(BUILD_PREFIX)))
    assert staging is not None
    published = False
    try:
        await build(database_url(url, staging))
        published = await _publish(url, staging, name)
    finally:
        if not published:
            await drop_database(url, staging)
    return name


async def _database_exists(url: str, name: str) -> bool:
    conn = await _connect(url)
    try:
        return bool(await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name))
    finally:
        await conn.close()


async def _publish(url: str, staging: str, name: str) -> bool:
    """Close ``staging`` to connections and rename it ``name``; ``False`` if another
    session got there first."""
    conn = await _connect(url)
    try:
        await conn.execute(f"ALTER DATABASE {_quote(staging)} ALLOW_CONNECTIONS false")
        await conn.execute(f"ALTER DATABASE {_quote(staging)} RENAME TO {_quote(name)}")
    except Exception as exc:
        if getattr(exc, "sqlstate", None) == DUPLICATE_DATABASE:
            return False
        raise
    finally:
        await conn.close()
    return True


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
async def temporary_database(url: str | None = None,
                             template: str = "template0") -> AsyncIterator[str]:
    """A fresh copy of ``template`` for the duration of the block; yields its URL."""
    base = url if url is not None else server_url()
    if base is None:
        raise RuntimeError(f"{POSTGRES_URL_ENV} is not set")
    created = await create_database(base, template=template)
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


class DatabasePool:
    """New databases copied from ``template`` ahead of need, on a thread of their own.

    Copying a database costs as much as a short test (its files are created one by
    one, ~300 of them), so the pool makes the next ``ahead`` while the current test
    runs, and drops the used ones in the background. Every database is handed out
    once and dropped when given back: none is ever reused. :meth:`close` waits for all
    of that and drops what was made but not taken.
    """

    def __init__(self, url: str, template: str = "template0", ahead: int = 1) -> None:
        self.url, self.template, self.ahead = url, template, ahead
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever,
                                        name="test-databases", daemon=True)
        self._thread.start()
        self._ready: deque[Future[str]] = deque()
        self._pending: list[Future[None]] = []

    async def take(self) -> str:
        """The URL of a new database, private to the caller; made ahead if it could be."""
        while len(self._ready) <= self.ahead:
            self._ready.append(self._submit(create_database(self.url, template=self.template)))
        return await asyncio.wrap_future(self._ready.popleft())

    def give_back(self, url: str) -> None:
        """Drop the database at ``url`` (ending its sessions) without waiting for it."""
        self._pending.append(self._submit(drop_database(self.url, database_name(url))))

    def close(self) -> None:
        """Drop what was made and not taken, wait for every drop, stop the thread."""
        try:
            for made in self._ready:
                with contextlib.suppress(Exception):  # a failed creation left nothing
                    self.give_back(made.result())
            for drop in self._pending:
                drop.result()
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
            self._loop.close()

    def _submit(self, work: Coroutine[Any, Any, T]) -> Future[T]:
        return asyncio.run_coroutine_threadsafe(work, self._loop)
