"""Users, API keys, and authentication with a short-lived cache.

A hot read must not query for its key, so resolved keys (and dashboard sessions, by
key and session id) are cached for a few seconds; a key revoked (or a role or a key's
limits changed, or a session signed out) here is forgotten at once, and in other
processes as soon as the change feed reports it (the store records the change in the
same transaction; under a second), at the latest when the cache entry expires.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from cachetools import TTLCache

from personae.auth.principal import (
    LOCAL_ADMIN_ID,
    USER_NAME_RULE,
    Principal,
    Role,
    is_valid_user_name,
)
from personae.auth.records import ApiKey, BrowserAccess, User
from personae.auth.store import UserStore
from personae.errors import (
    AuthenticationRequired,
    Conflict,
    InvalidInput,
    NotFound,
    PermissionDenied,
)
from personae.ops.audit import AuditLog

KEY_CACHE_SECONDS = 5.0
K = TypeVar("K")
T = TypeVar("T")
KEY_CACHE_ENTRIES = 10_000


class Authenticator:
    """Resolves API keys to principals; a revoked key stops working within seconds."""

    def __init__(self, users: UserStore, cache_seconds: float = KEY_CACHE_SECONDS, *,
                 on_lookup: Callable[[bool], None] | None = None) -> None:
        self.users = users
        self.on_lookup = on_lookup  # told of each key lookup: True on a hit (metrics)
        self._cache: TTLCache[str, Principal | None] = TTLCache(KEY_CACHE_ENTRIES,
                                                                 cache_seconds)
        self._browser_cache: TTLCache[tuple[str, str | None], BrowserAccess | None] = \
            TTLCache(KEY_CACHE_ENTRIES, cache_seconds)

    async def authenticate(self, token: str) -> Principal:
        principal = await self._lookup(self._cache, token, self.users.principal_for_token)
        if principal is None:
            raise AuthenticationRequired("the API key is not valid (unknown or revoked)")
        return principal

    async def authenticate_browser(self, key_id: str, issued_at: float,
                                   session_id: str | None = None) -> Principal:
        """A dashboard session's key, by id: refused once the key is revoked, its user
        disabled, the session signed out, or all the key's sessions ended after this
        one was issued."""
        found = await self._lookup(self._browser_cache, (key_id, session_id),
                                   self._browser_access)
        if (found is None or found.session_ended or (
                found.sessions_ended_at is not None and issued_at <= found.sessions_ended_at)):
            raise AuthenticationRequired("this sign-in has ended (signed out, or its key was "
                                         "revoked or its user disabled): sign in again")
        return found.principal

    async def _browser_access(self, entry: tuple[str, str | None]) -> BrowserAccess | None:
        return await self.users.browser_principal(*entry)

    async def _lookup(self, cache: TTLCache[K, T], entry: K,
                      fetch: Callable[[K], Awaitable[T]]) -> T:
        """The cached answer for ``entry``, or the store's (cached for a few seconds)."""
        try:
            found = cache[entry]
            hit = True
        except KeyError:
            hit = False
            found = await fetch(entry)
            cache[entry] = found
        if self.on_lookup is not None:
            self.on_lookup(hit)
        return found

    async def end_browser_sessions(self, key_id: str) -> None:
        """Sign out every dashboard session made with this key so far."""
        await self.users.end_browser_sessions(key_id)
        self.forget()

    async def end_browser_session(self, key_id: str, session_id: str,
                                  expires_at: float) -> None:
        """Sign out one dashboard session (``expires_at``: when its cookie would have
        expired, after which the record of it is pruned)."""
        await self.users.end_browser_session(key_id, session_id, expires_at)
        self._browser_cache.pop((key_id, session_id), None)

    def forget(self) -> None:
        self._cache.clear()
        self._browser_cache.clear()

    async def local_admin(self) -> Principal:
        """The user keyless loopback requests act as; created on first use."""
        user = await self.users.get_user(LOCAL_ADMIN_ID)
        if user is None:
            try:
                user = await self.users.create_user(LOCAL_ADMIN_ID, Role.admin,
                                                    user_id=LOCAL_ADMIN_ID)
            except Conflict:  # another process created it first
                user = await self.users.get_user(LOCAL_ADMIN_ID)
        if user is None:
            raise AuthenticationRequired("the local admin user could not be created")
        return Principal(user.id, user.name, user.role)


class UserService:
    """Who may call the API, and with which keys.

    ``actor`` is who asks: None is the host's operator (the CLI, tests, workers), who may
    do anything; an API caller must be an admin, except to read their own account and
    keys and to revoke their own key. A member asking about anyone else is refused
    before any lookup, so the answer never says whether that user exists.
    """

    def __init__(self, store: UserStore, auth: Authenticator,
                 audit: AuditLog | None = None) -> None:
        self.store = store
        self.auth = auth
        self.audit = audit

    async def create_user(self, name: str, role: Role = Role.member, *,
                          actor: Principal | None = None) -> User:
        _admin_only(actor)
        if not is_valid_user_name(name):
            raise InvalidInput(f"user name {name!r}: use {USER_NAME_RULE} (a user's name "
                               "is the namespace of their persona ids, as in 'alice/tutor')")
        user = await self.store.create_user(name, role)
        await self._note(actor, "user.create", "user", user.id,
                         {"name": user.name, "role": user.role.value})
        return user

    async def get_user(self, name_or_id: str) -> User | None:
        return await self.store.get_user(name_or_id)

    async def require_user(self, name_or_id: str, *,
                           actor: Principal | None = None) -> User:
        _self_or_admin(actor, name_or_id)
        user = await self.store.get_user(name_or_id)
        if user is None:
            raise NotFound(f"no user named '{name_or_id}' (see `personae users list`)")
        return user

    async def list_users(self, *, actor: Principal | None = None) -> list[User]:
        _admin_only(actor)
        return await self.store.list_users()

    async def set_role(self, name_or_id: str, role: Role, *,
                       actor: Principal | None = None) -> User:
        """Make a user an admin or a member; the last admin stays one (409)."""
        _admin_only(actor)
        user = _changeable(await self.require_user(name_or_id))
        if user.role is role:
            return user
        changed = await self.store.set_role(user.id, role)
        self.auth.forget()
        await self._note(actor, "user.role", "user", user.id,
                         {"name": user.name, "from": user.role.value, "to": role.value})
        return changed

    async def set_disabled(self, name_or_id: str, disabled: bool, *,
                           actor: Principal | None = None) -> User:
        """Disable a user (their keys stop working at once) or enable them again."""
        _admin_only(actor)
        user = _changeable(await self.require_user(name_or_id))
        if user.disabled is disabled:
            return user
        changed = await self.store.set_disabled(user.id, disabled)
        self.auth.forget()
        await self._note(actor, "user.disable" if disabled else "user.enable", "user",
                         user.id, {"name": user.name})
        return changed

    async def update_user(self, name_or_id: str, *, role: Role | None = None,
                          disabled: bool | None = None,
                          actor: Principal | None = None) -> User:
        """Change a user's role and/or state (what is None stays as it is)."""
        _admin_only(actor)
        user = await self.require_user(name_or_id)
        if role is not None:
            user = await self.set_role(user.id, role, actor=actor)
        if disabled is not None:
            user = await self.set_disabled(user.id, disabled, actor=actor)
        return user

    async def create_key(self, user_name_or_id: str, name: str = "default", *,
                         actor: Principal | None = None) -> tuple[str, ApiKey]:
        """A new key: the secret is returned once and only its hash is kept."""
        _admin_only(actor)
        token, key = await self.store.create_key(user_name_or_id, name)
        await self._note(actor, "key.create", "key", key.id,
                         {"user_id": key.user_id, "name": key.name})
        return token, key

    async def list_keys(self, user_id: str | None = None) -> list[ApiKey]:
        return await self.store.list_keys(user_id)

    async def keys_of(self, name_or_id: str, *, actor: Principal | None = None) -> list[ApiKey]:
        """A user's keys (their own, for a member)."""
        user = await self.require_user(name_or_id, actor=actor)
        return await self.store.list_keys(user.id)

    async def get_key(self, key_id: str, *, actor: Principal | None = None) -> ApiKey:
        """A key by id: admins, or the key's owner (anyone else's key is not found)."""
        key = await self.store.get_key(key_id)
        if key is None or (actor is not None and not actor.is_admin
                           and key.user_id != actor.user_id):
            raise NotFound(f"no API key with id '{key_id}'")
        return key

    async def revoke_key(self, key_id: str, *, actor: Principal | None = None) -> None:
        """Revoke a key: admins, or the key's owner (anyone else's key is not found)."""
        key = await self.get_key(key_id, actor=actor)
        await self.store.revoke_key(key_id)
        self.auth.forget()  # this process stops accepting it now; others via the feed
        await self._note(actor, "key.revoke", "key", key_id,
                         {"user_id": key.user_id, "name": key.name})

    async def set_key_limits(self, key_id: str, limits: Mapping[str, Any] | None, *,
                             actor: Principal | None = None) -> ApiKey:
        """Give a key its own rate limits (None or empty: back to its role's)."""
        _admin_only(actor)
        before, after = await self.store.set_key_limits(key_id, limits)
        self.auth.forget()
        await self._note(actor, "key.limits", "key", key_id,
                         {"user_id": after.user_id, "from": before.limits or {},
                          "to": after.limits or {}})
        return after

    async def _note(self, actor: Principal | None, action: str, target_type: str,
                    target_id: str, summary: dict[str, Any]) -> None:
        if self.audit is not None:
            await self.audit.record(actor, action, target_type, target_id, summary)


def _admin_only(actor: Principal | None) -> None:
    if actor is not None and not actor.is_admin:
        raise PermissionDenied("only admins can manage users and keys")


def _self_or_admin(actor: Principal | None, name_or_id: str) -> None:
    if actor is not None and not actor.is_admin and name_or_id not in (actor.name,
                                                                        actor.user_id):
        raise PermissionDenied("members can only see their own account")


def _changeable(user: User) -> User:
    """The built-in ``local`` admin (the keyless loopback caller) keeps its rules."""
    if user.id == LOCAL_ADMIN_ID:
        raise Conflict("the built-in local admin (keyless requests on this host) cannot "
                       "be demoted or disabled", {"user": user.id})
    return user
