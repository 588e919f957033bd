"""The caller, as ``/v1/me`` reports it, and the accounts admins manage: users and keys."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from personae.api.schemas.common import NOT_BLANK, Body, ListPage, Public, Timestamp
from personae.auth.principal import USER_NAME_RULE, Role


class UserPublic(Public):
    id: str
    name: str
    role: Role


class UserCreate(Body):
    name: str = Field(min_length=1, max_length=32, description=USER_NAME_RULE)
    role: Role = Role.member


class UserUpdate(Body):
    """Fields left out stay as they are."""

    role: Role | None = None
    disabled: bool | None = Field(None, description="a disabled user's keys stop working")


class UserDetailPublic(Public):
    id: str
    name: str
    role: Role
    created_at: Timestamp
    disabled: bool


class UsersPublic(ListPage[UserDetailPublic]):
    pass


class KeyCreate(Body):
    name: str = Field("default", min_length=1, max_length=100, pattern=NOT_BLANK,
                      description="a label for the key")


class KeyPublic(Public):
    id: str
    user_id: str
    name: str
    prefix: str = Field(description="the key's first characters, to recognise it")
    created_at: Timestamp
    revoked: bool
    limits: dict[str, str | int] | None = Field(
        description="the key's own rate limits (null: its role's defaults)")


class KeysPublic(ListPage[KeyPublic]):
    pass


class KeyCreatedPublic(KeyPublic):
    token: str = Field(description="the secret: shown this once, never again")


# The body of PUT /v1/keys/{key_id}/limits: route class or "tokens_per_day" -> a limit.
MAX_TOKENS_PER_DAY = 10**15 - 1
KeyLimits = dict[str, Annotated[str, Field(max_length=200)]
                 | Annotated[int, Field(ge=0, le=MAX_TOKENS_PER_DAY)]] | None
LIMITS_EXAMPLE = {"chat": "120/minute", "tokens_per_day": 50000, "jobs": "unlimited"}
