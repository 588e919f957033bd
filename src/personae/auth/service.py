"""Authentication with a short-lived cache, so a hot read does not query for its key."""

from __future__ import annotations

import time

from personae.auth.principal import LOCAL_ADMIN_ID, Principal, Role
from personae.auth.store import UserStore
from personae.errors import AuthenticationRequired, Conflict

KEY_CACHE_SECONDS = 5.0


class Authenticator:
    """Resolves API keys to principals; a revoked key stops working within seconds."""

    def __init__(self, users: UserStore, cache_seconds: float = KEY_CACHE_SECONDS) -> None:
        self.users = users
        self.cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, Principal | None]] = {}

    async def authenticate(self, token: str) -> Principal:
        now = time.monotonic()
        cached = self._cache.get(token)
        if cached is not None and cached[0] > now:
            principal = cached[1]
        else:
            principal = await self.users.principal_for_token(token)
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[token] = (now + self.cache_seconds, principal)
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
