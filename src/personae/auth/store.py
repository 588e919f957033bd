"""The only module that reads and writes users and API keys.

Keys are shown once at creation and stored as SHA-256 hashes: they are 256-bit random
tokens, so a fast hash is safe and keeps authentication off the hot path's budget.
Every write that changes what a key may do (revocation, a role, a user disabled, a key's
limits, a dashboard sign-out) records :data:`~personae.db.changes.AUTH_CHANGED` in its
transaction, so every process drops its cached principals within the change feed's
interval.
"""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from personae.auth.principal import KEY_PREFIX, LOCAL_ADMIN_ID, Principal, Role
from personae.auth.records import ApiKey, BrowserAccess, User
from personae.db.changes import AUTH_CHANGED, record_changes
from personae.db.tables import api_keys, aware, ended_browser_sessions, users, utcnow
from personae.errors import Conflict, NotFound
from personae.ops.ratelimit import validate_overrides


def hash_key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class UserStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def create_user(self, name: str, role: Role, user_id: str | None = None) -> User:
        user = User(id=user_id or uuid.uuid4().hex, name=name, role=role, created_at=utcnow(),
                    disabled=False)
        try:
            async with self.engine.begin() as conn:
                await conn.execute(users.insert().values(
                    id=user.id, name=name, role=role.value, created_at=user.created_at,
                    disabled=False))
        except IntegrityError as exc:
            raise Conflict(f"a user named '{name}' already exists") from exc
        return user

    async def get_user(self, name_or_id: str) -> User | None:
        query = sa.select(users).where(sa.or_(users.c.name == name_or_id,
                                              users.c.id == name_or_id))
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).mappings().first()
        return _user(row) if row else None

    async def list_users(self) -> list[User]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(sa.select(users).order_by(users.c.name))).mappings()
            return [_user(r) for r in rows]

    async def create_key(self, user_name_or_id: str, name: str = "default") -> tuple[str, ApiKey]:
        """Make a key for a user; returns the plaintext token (shown once) and its record."""
        user = await self.get_user(user_name_or_id)
        if user is None:
            raise NotFound(f"no user named '{user_name_or_id}'")
        token = KEY_PREFIX + secrets.token_urlsafe(32)
        key = ApiKey(id=uuid.uuid4().hex, user_id=user.id, name=name, prefix=token[:10],
                     created_at=utcnow(), revoked=False)
        async with self.engine.begin() as conn:
            await conn.execute(api_keys.insert().values(
                id=key.id, user_id=user.id, name=name, prefix=key.prefix,
                key_hash=hash_key(token), created_at=key.created_at))
        return token, key

    async def list_keys(self, user_id: str | None = None) -> list[ApiKey]:
        query = sa.select(api_keys).order_by(api_keys.c.created_at)
        if user_id:
            query = query.where(api_keys.c.user_id == user_id)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [_key(r) for r in rows]

    async def get_key(self, key_id: str) -> ApiKey | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(
                sa.select(api_keys).where(api_keys.c.id == key_id))).mappings().first()
        return _key(row) if row else None

    async def revoke_key(self, key_id: str) -> None:
        async with self.engine.begin() as conn:
            result = await conn.execute(
                api_keys.update()
                .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=utcnow()))
            if result.rowcount == 1:
                await record_changes(conn, [AUTH_CHANGED])
            exists = result.rowcount == 1 or (await conn.execute(
                sa.select(api_keys.c.id).where(api_keys.c.id == key_id))).first() is not None
        if not exists:
            raise NotFound(f"no API key with id '{key_id}'")
        if result.rowcount != 1:
            raise Conflict(f"API key '{key_id}' is already revoked")

    async def set_key_limits(self, key_id: str,
                             limits: Mapping[str, Any] | None) -> tuple[ApiKey, ApiKey]:
        """Replace a key's own limits (None or empty: its role's defaults); returns the
        key before and after. Raises InvalidInput naming a bad limit."""
        checked = validate_overrides(limits) if limits else None
        async with self.engine.begin() as conn:
            row = (await conn.execute(sa.select(api_keys).where(
                api_keys.c.id == key_id).with_for_update())).mappings().first()
            if row is None:
                raise NotFound(f"no API key with id '{key_id}'")
            await conn.execute(api_keys.update().where(api_keys.c.id == key_id)
                               .values(limits=checked))
            await record_changes(conn, [AUTH_CHANGED])
        before = _key(row)
        return before, _key({**row, "limits": checked})

    async def set_role(self, user_id: str, role: Role) -> User:
        """Change a user's role; demoting the last admin is refused (409)."""
        return await self._change_user(user_id, role=role.value)

    async def set_disabled(self, user_id: str, disabled: bool) -> User:
        """Disable (or enable) a user: their keys stop working; the last admin cannot be
        disabled (409)."""
        return await self._change_user(user_id, disabled=disabled)

    async def _change_user(self, user_id: str, **values: Any) -> User:
        async with self.engine.begin() as conn:
            row = (await conn.execute(sa.select(users).where(
                users.c.id == user_id).with_for_update())).mappings().first()
            if row is None:
                raise NotFound(f"no user named '{user_id}'")
            after = {**row, **values}
            was_admin = row["role"] == Role.admin.value and not row["disabled"]
            if was_admin and (after["role"] != Role.admin.value or after["disabled"]):
                await _keep_an_admin(conn, user_id)
            await conn.execute(users.update().where(users.c.id == user_id).values(**values))
            await record_changes(conn, [AUTH_CHANGED])
        return _user(after)

    async def principal_for_token(self, token: str) -> Principal | None:
        found = await self._principal(api_keys.c.key_hash == hash_key(token))
        return found.principal if found else None

    async def browser_principal(self, key_id: str,
                                session_id: str | None = None) -> BrowserAccess | None:
        """The owner of a live key, by the key's id (a dashboard session names its key),
        with the key's and this session's sign-outs, in one query."""
        return await self._principal(api_keys.c.id == key_id, session_id)

    async def end_browser_sessions(self, key_id: str) -> None:
        """Sign out every dashboard session made with this key so far."""
        async with self.engine.begin() as conn:
            await conn.execute(api_keys.update().where(api_keys.c.id == key_id)
                               .values(sessions_ended_at=time.time()))
            await record_changes(conn, [AUTH_CHANGED])

    async def end_browser_session(self, key_id: str, session_id: str,
                                  expires_at: float) -> None:
        """Sign out one dashboard session (again: nothing changes), and forget the
        sessions whose cookies have expired since they were signed out."""
        ended = ended_browser_sessions
        try:
            async with self.engine.begin() as conn:
                await conn.execute(ended.delete().where(ended.c.expires_at < time.time()))
                await conn.execute(ended.insert().values(
                    session_id=session_id, key_id=key_id, expires_at=expires_at))
                await record_changes(conn, [AUTH_CHANGED])
        except IntegrityError:  # ended before (or its key is gone): nothing to end
            pass

    async def _principal(self, which: sa.ColumnElement[bool],
                         session_id: str | None = None) -> BrowserAccess | None:
        ended = ended_browser_sessions
        session_ended = (sa.exists().where(ended.c.session_id == session_id,
                                           ended.c.key_id == api_keys.c.id)
                         if session_id else sa.false())
        query = (sa.select(users.c.id, users.c.name, users.c.role, api_keys.c.id,
                           api_keys.c.limits, api_keys.c.sessions_ended_at, session_ended)
                 .join(api_keys, api_keys.c.user_id == users.c.id)
                 .where(which, api_keys.c.revoked_at.is_(None),
                        users.c.disabled.is_(False)))
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            return None
        overrides = tuple(sorted((str(k), str(v)) for k, v in (row[4] or {}).items()))
        principal = Principal(row[0], row[1], Role(row[2]), key_id=row[3],
                              limit_overrides=overrides)
        return BrowserAccess(principal, row[5], bool(row[6]))


async def _keep_an_admin(conn: AsyncConnection, leaving_id: str) -> None:
    """Refuse a change that would leave no enabled admin (the built-in keyless ``local``
    admin does not count: it answers only on the host itself). The other admins' rows
    are locked, so two concurrent demotions cannot both pass."""
    others = (await conn.execute(
        sa.select(users.c.id).where(users.c.role == Role.admin.value,
                                    users.c.disabled.is_(False), users.c.id != leaving_id,
                                    users.c.id != LOCAL_ADMIN_ID)
        .with_for_update())).all()
    if not others:
        raise Conflict("this is the last admin: make another user an admin first",
                       {"user": leaving_id})


def _user(row: Mapping[Any, Any]) -> User:
    return User(id=row["id"], name=row["name"], role=Role(row["role"]),
                created_at=aware(row["created_at"]), disabled=row["disabled"])


def _key(row: Mapping[Any, Any]) -> ApiKey:
    return ApiKey(id=row["id"], user_id=row["user_id"], name=row["name"], prefix=row["prefix"],
                  created_at=aware(row["created_at"]), revoked=row["revoked_at"] is not None,
                  limits=dict(row["limits"]) if row["limits"] else None)
