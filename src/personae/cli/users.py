"""``personae users`` and ``personae keys``: who may call the API, and with which key."""

from __future__ import annotations

import typer

from personae.auth.principal import Role
from personae.auth.records import ApiKey, User
from personae.cli import output
from personae.cli.session import in_runtime, user_id_for
from personae.runtime import Runtime

users_app = typer.Typer(help="Manage users.", no_args_is_help=True)
keys_app = typer.Typer(help="Manage API keys.", no_args_is_help=True)

JSON_OPTION = typer.Option(False, "--json", help="Print JSON.")


def _user_data(user: User) -> dict[str, object]:
    return {"id": user.id, "name": user.name, "role": user.role.value,
            "created_at": user.created_at.isoformat(), "disabled": user.disabled}


def _key_data(key: ApiKey, owner: str) -> dict[str, object]:
    return {"id": key.id, "user_id": key.user_id, "user": owner, "name": key.name,
            "prefix": key.prefix, "created_at": key.created_at.isoformat(),
            "revoked": key.revoked}


@users_app.command("create")
def create_user(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Unique user name."),
    role: Role = typer.Option(Role.member, "--role", help="admin or member."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Create a user (then give them a key with `personae keys create NAME`)."""

    async def work(runtime: Runtime) -> User:
        return await runtime.users.create_user(name, role)

    user = in_runtime(ctx, work)
    if as_json:
        output.emit_json(_user_data(user))
        return
    output.say(f"Created {user.role.value} '{user.name}' (id {user.id}).", style="green")
    output.say(f"Next: personae keys create {user.name}")


@users_app.command("list")
def list_users(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
    """List users."""

    async def work(runtime: Runtime) -> list[User]:
        return await runtime.users.list_users()

    found = in_runtime(ctx, work)
    if as_json:
        output.emit_json([_user_data(u) for u in found])
        return
    rows = [(u.name, u.id, u.role.value, output.when(u.created_at),
             "disabled" if u.disabled else "active") for u in found]
    output.show(output.table(("name", "id", "role", "created", "state"), rows))


@keys_app.command("create")
def create_key(
    ctx: typer.Context,
    user: str = typer.Argument(..., help="User name or id."),
    name: str | None = typer.Option(
        None, "--name", help="A label for the key (default: 'default', or 'default-2' and "
        "so on when the user has a key labelled so)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Create an API key; the token is shown once and cannot be shown again."""

    async def work(runtime: Runtime) -> tuple[str, ApiKey]:
        label = name
        if label is None:
            label = _free_label({k.name for k in await runtime.users.keys_of(user)})
        return await runtime.users.create_key(user, label)

    token, key = in_runtime(ctx, work)
    if as_json:
        output.emit_json({"token": token, **_key_data(key, user)})
        return
    output.say(f"API key '{key.name}' for {user} (key id {key.id}):")
    output.emit_text(token)
    output.warn("store this key now: it cannot be shown again. "
                "Send it as 'Authorization: Bearer <key>'.")


def _free_label(taken: set[str], base: str = "default") -> str:
    """``base``, else the first free ``base-2``, ``base-3``..., so unnamed keys stay apart
    in `keys list` (which shows revoked keys too, so their labels count)."""
    if base not in taken:
        return base
    number = 2
    while f"{base}-{number}" in taken:
        number += 1
    return f"{base}-{number}"


@keys_app.command("list")
def list_keys(
    ctx: typer.Context,
    user: str | None = typer.Argument(None, help="Only this user's keys (name or id)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """List API keys (prefixes only: the tokens themselves are never stored)."""

    async def work(runtime: Runtime) -> tuple[list[ApiKey], dict[str, str]]:
        user_id = await user_id_for(runtime, user) if user else None
        names = {u.id: u.name for u in await runtime.users.list_users()}
        return await runtime.users.list_keys(user_id), names

    keys, names = in_runtime(ctx, work)
    if as_json:
        output.emit_json([_key_data(k, names.get(k.user_id, k.user_id)) for k in keys])
        return
    rows = [(k.id, names.get(k.user_id, k.user_id), k.name, k.prefix + "…",
             output.when(k.created_at), "revoked" if k.revoked else "active") for k in keys]
    output.show(output.table(("id", "user", "name", "prefix", "created", "state"), rows,
                             wrap=("name",)))


@keys_app.command("revoke")
def revoke_key(ctx: typer.Context,
               key_id: str = typer.Argument(..., help="Key id (see `personae keys list`).")
               ) -> None:
    """Revoke an API key; every server stops accepting it within a second."""

    async def work(runtime: Runtime) -> None:
        await runtime.users.revoke_key(key_id)

    in_runtime(ctx, work)
    output.say(f"Revoked key {key_id}.", style="green")


def _set_user(ctx: typer.Context, name: str, *, role: Role | None = None,
              disabled: bool | None = None) -> User:
    async def work(runtime: Runtime) -> User:
        return await runtime.users.update_user(name, role=role, disabled=disabled)

    return in_runtime(ctx, work)


@users_app.command("role")
def set_role(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="User name or id."),
    role: Role = typer.Argument(..., help="admin or member."),
) -> None:
    """Make a user an admin or a member (the last admin stays one)."""
    user = _set_user(ctx, name, role=role)
    output.say(f"'{user.name}' is now {user.role.value}.", style="green")


@users_app.command("disable")
def disable_user(ctx: typer.Context,
                 name: str = typer.Argument(..., help="User name or id.")) -> None:
    """Disable a user: their keys stop working on every server within a second."""
    user = _set_user(ctx, name, disabled=True)
    output.say(f"Disabled '{user.name}'.", style="green")


@users_app.command("enable")
def enable_user(ctx: typer.Context,
                name: str = typer.Argument(..., help="User name or id.")) -> None:
    """Enable a disabled user again."""
    user = _set_user(ctx, name, disabled=False)
    output.say(f"Enabled '{user.name}'.", style="green")


LIMIT_HELP = "e.g. 120/minute, 10/second;300/hour, or unlimited"


@keys_app.command("limits")
def key_limits(
    ctx: typer.Context,
    key_id: str = typer.Argument(..., help="Key id (see `personae keys list`)."),
    chat: str | None = typer.Option(None, "--chat", help=f"Chat turns; {LIMIT_HELP}."),
    audio: str | None = typer.Option(None, "--audio", help="Transcription and speech."),
    jobs: str | None = typer.Option(None, "--jobs", help="Panels, tests, writing jobs."),
    writes: str | None = typer.Option(None, "--writes", help="Registry writes."),
    other: str | None = typer.Option(None, "--other", help="Everything else."),
    tokens_per_day: str | None = typer.Option(
        None, "--tokens-per-day", metavar="N", help="Model tokens a day, or unlimited."),
    clear: bool = typer.Option(False, "--clear", help="Back to the role's defaults."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Show or set a key's own rate limits; the limits given replace the key's earlier
    ones (those left out follow its role). Servers apply them within a second."""
    given = {name: value for name, value in (
        ("chat", chat), ("audio", audio), ("jobs", jobs), ("writes", writes),
        ("other", other), ("tokens_per_day", tokens_per_day)) if value is not None}
    if clear and given:
        raise typer.BadParameter("--clear cannot be combined with limits")

    async def work(runtime: Runtime) -> ApiKey:
        if not given and not clear:
            return await runtime.users.get_key(key_id)
        return await runtime.users.set_key_limits(key_id, given or None)

    key = in_runtime(ctx, work)
    if as_json:
        output.emit_json({"id": key.id, "limits": key.limits})
        return
    if not key.limits:
        output.say(f"Key {key.id} follows its role's limits.")
        return
    output.show(output.table(("limit", "value"), sorted(key.limits.items())))
