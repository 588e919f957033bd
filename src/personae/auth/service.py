"""Users, API keys, and authentication with a short-lived cache.

A hot read must not query for its key, so resolved keys are cached for a few
seconds; a key revoked here is forgotten at once, and in other processes within
the cache's lifetime.
"""

from __future__ import annotations

from cachetools import TTLCache

from personae.auth.principal import (
    LOCAL_ADMIN_ID,
    USER_NAME_RULE,
    Principal,
    Role,
    is_valid_user_name,
)
from personae.auth.records import ApiKey, User
from personae.auth.store import UserStore
from personae.errors import AuthenticationRequired, Conflict, InvalidInput, NotFound

KEY_CACHE_SECONDS = 5.0
KEY_CACHE_ENTRIES = 10_000


class Authenticator:
    """Resolves API keys to principals; a revoked key stops working within seconds."""

    def __init__(self, users: UserStore, cache_seconds: float = KEY_CACHE_SECONDS) -> None:
        self.users = users
        self._cache: TTLCache[str, Principal | None] = TTLCache(KEY_CACHE_ENTRIES,
                                                                 cache_seconds)

    async def authenticate(self, token: str) -> Principal:
        try:
            principal = self._cache[token]
        except KeyError:
            principal = await self.users.principal_for_token(token)
            self._cache[token] = principal
        if principal is None:
            raise AuthenticationRequired("the API key is not valid (unknown or revoked)")
        return principal

    def forget(self) -> None:
        self._cache.clear()

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
    """Who may call the API, and with which keys (run by the host's operator)."""

    def __init__(self, store: UserStore, auth: Authenticator) -> None:
        self.store = store
        self.auth = auth

    async def create_user(self, name: str, role: Role = Role.member) -> User:
        if not is_valid_user_name(name):
            raise InvalidInput(f"user name {name!r}: use {USER_NAME_RULE} (a user's name "
                               "is the namespace of their persona ids, as in 'alice/tutor')")
        return await self.store.create_user(name, role)

    async def get_user(self, name_or_id: str) -> User | None:
        return await self.store.get_user(name_or_id)

    async def require_user(self, name_or_id: str) -> User:
        user = await self.store.get_user(name_or_id)
        if user is None:
            raise NotFound(f"no user named '{name_or_id}' (see `personae users list`)")
        return user

    async def list_users(self) -> list[User]:
        return await self.store.list_users()

    async def create_key(self, user_name_or_id: str,
                         name: str = "default") -> tuple[str, ApiKey]:
        """A new key: the secret is returned once and only its hash is kept."""
        return await self.store.create_key(user_name_or_id, name)

    async def list_keys(self, user_id: str | None = None) -> list[ApiKey]:
        return await self.store.list_keys(user_id)

    async def revoke_key(self, key_id: str) -> None:
        await self.store.revoke_key(key_id)
        self.auth.forget()  # this process stops accepting it now
