"""Settings and runtime plumbing every command shares.

Each command runs its async work through :func:`in_runtime` (or :func:`as_admin`),
which opens a :class:`Runtime` without the change watcher (a CLI process is too
short-lived to need it) and always closes it, even when the work fails.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import typer
from pydantic import ValidationError

from personae.auth.principal import Principal
from personae.config import Settings
from personae.errors import InvalidInput
from personae.ops import context as request
from personae.runtime import Runtime

T = TypeVar("T")


@dataclass
class CliState:
    """Global options given before the subcommand (``--database-url``, ``--data-dir``)."""

    overrides: dict[str, Any] = field(default_factory=dict)
    settings: Settings | None = None


def settings_for(ctx: typer.Context) -> Settings:
    """Settings from the environment, with the global command-line options on top."""
    state = ctx.find_root().obj
    if not isinstance(state, CliState):
        state = ctx.find_root().obj = CliState()
    if state.settings is None:
        try:
            state.settings = Settings(**state.overrides)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
            raise InvalidInput(f"invalid settings (PERSONAE_* variables): {problems}") from None
    return state.settings


def in_runtime(ctx: typer.Context, work: Callable[[Runtime], Awaitable[T]], *,
               settings: Settings | None = None) -> T:
    """Run ``work`` against a freshly opened runtime and close it afterwards."""
    chosen = settings or settings_for(ctx)

    async def main() -> T:
        request.current.set(request.RequestContext(client="cli"))  # for the audit log
        runtime = await Runtime.open(chosen, watch=False)
        try:
            return await work(runtime)
        finally:
            await runtime.close()

    return asyncio.run(main())


def as_admin(ctx: typer.Context,
             work: Callable[[Runtime, Principal], Awaitable[T]]) -> T:
    """Like :func:`in_runtime`, acting as the local admin (the CLI runs on the host)."""

    async def with_principal(runtime: Runtime) -> T:
        return await work(runtime, await runtime.auth.local_admin())

    return in_runtime(ctx, with_principal)


async def user_id_for(runtime: Runtime, name_or_id: str) -> str:
    return (await runtime.users.require_user(name_or_id)).id


def read_input(path: str) -> tuple[bytes, str]:
    """Bytes and a display name for a FILE argument; ``-`` reads standard input."""
    if path == "-":
        return sys.stdin.buffer.read(), "<stdin>"
    try:
        return Path(path).read_bytes(), path
    except OSError as exc:
        raise InvalidInput(f"{path}: {exc.strerror or exc}") from None
