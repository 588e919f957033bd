"""The only module that reads and writes users and API keys.

Keys are shown once at creation and stored as SHA-256 hashes: they are 256-bit random
tokens, so a fast hash is safe and keeps authentication off the hot path's budget.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from personae.auth.principal import KEY_PREFIX, Principal, Role
from personae.auth.records import ApiKey, User
from personae.db.tables import api_keys, users, utcnow
from personae.errors import Conflict, NotFound


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
        return [ApiKey(id=r["id"], user_id=r["user_id"], name=r["name"], prefix=r["prefix"],
                       created_at=r["created_at"], revoked=r["revoked_at"] is not None)
                for r in rows]

    async def revoke_key(self, key_id: str) -> None:
        async with self.engine.begin() as conn:
            result = await conn.execute(
                api_keys.update()
                .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=utcnow()))
            exists = result.rowcount == 1 or (await conn.execute(
                sa.select(api_keys.c.id).where(api_keys.c.id == key_id))).first() is not None
        if not exists:
            raise NotFound(f"no API key with id '{key_id}'")
        if result.rowcount != 1:
            raise Conflict(f"API key '{key_id}' is already revoked")

    async def principal_for_token(self, token: str) -> Principal | None:
        query = (sa.select(users.c.id, users.c.name, users.c.role)
                 .join(api_keys, api_keys.c.user_id == users.c.id)
                 .where(api_keys.c.key_hash == hash_key(token), api_keys.c.revoked_at.is_(None),
                        users.c.disabled.is_(False)))
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return Principal(row[0], row[1], Role(row[2])) if row else None


def _user(row: sa.RowMapping) -> User:
    return User(id=row["id"], name=row["name"], role=Role(row["role"]),
                created_at=row["created_at"], disabled=row["disabled"])
