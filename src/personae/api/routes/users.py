"""``/v1/users`` and ``/v1/keys``: accounts and their API keys (admins; a member may read
their own account and keys and revoke their own key).

A member asking about anyone else gets 403 whether or not that user exists, and
another user's key id is 404, as a missing one is.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Request

from personae.api.deps import CurrentPrincipal
from personae.api.schemas import error_responses
from personae.api.schemas.users import (
    LIMITS_EXAMPLE,
    KeyCreate,
    KeyCreatedPublic,
    KeyLimits,
    KeyPublic,
    KeysPublic,
    UserCreate,
    UserDetailPublic,
    UsersPublic,
    UserUpdate,
)
from personae.auth.records import ApiKey, User
from personae.auth.service import UserService

router = APIRouter(tags=["users"])
users_router = APIRouter(prefix="/users")
keys_router = APIRouter(prefix="/keys")


async def get_user_service(request: Request) -> UserService:
    service: UserService = request.app.state.runtime.users
    return service


UserServiceDep = Annotated[UserService, Depends(get_user_service)]


def _user(user: User) -> UserDetailPublic:
    return UserDetailPublic(id=user.id, name=user.name, role=user.role,
                            created_at=user.created_at.isoformat(), disabled=user.disabled)


def _key(key: ApiKey) -> KeyPublic:
    return KeyPublic(id=key.id, user_id=key.user_id, name=key.name, prefix=key.prefix,
                     created_at=key.created_at.isoformat(), revoked=key.revoked,
                     limits=key.limits)


@users_router.get("", responses=error_responses(401, 403))
async def list_users(principal: CurrentPrincipal, service: UserServiceDep) -> UsersPublic:
    found = await service.list_users(actor=principal)
    return UsersPublic(data=[_user(u) for u in found], count=len(found))


@users_router.post("", status_code=201, responses=error_responses(400, 401, 403, 409, 422))
async def create_user(body: UserCreate, principal: CurrentPrincipal,
                      service: UserServiceDep) -> UserDetailPublic:
    return _user(await service.create_user(body.name, body.role, actor=principal))


@users_router.get("/{name}", responses=error_responses(401, 403, 404))
async def get_user(name: str, principal: CurrentPrincipal,
                   service: UserServiceDep) -> UserDetailPublic:
    """A user by name or id (a member: only themselves)."""
    return _user(await service.require_user(name, actor=principal))


@users_router.patch("/{name}", responses=error_responses(400, 401, 403, 404, 409, 422))
async def update_user(name: str, body: UserUpdate, principal: CurrentPrincipal,
                      service: UserServiceDep) -> UserDetailPublic:
    """Change a role or disable a user (their keys stop working in under a second);
    the last admin cannot be demoted or disabled (409)."""
    return _user(await service.update_user(name, role=body.role, disabled=body.disabled,
                                           actor=principal))


@users_router.get("/{name}/keys", responses=error_responses(401, 403, 404))
async def list_keys(name: str, principal: CurrentPrincipal,
                    service: UserServiceDep) -> KeysPublic:
    found = await service.keys_of(name, actor=principal)
    return KeysPublic(data=[_key(k) for k in found], count=len(found))


@users_router.post("/{name}/keys", status_code=201,
                   responses=error_responses(400, 401, 403, 404, 422))
async def create_key(name: str, principal: CurrentPrincipal, service: UserServiceDep,
                     body: KeyCreate | None = None) -> KeyCreatedPublic:
    """A new key; its secret (``token``) is in this answer only."""
    token, key = await service.create_key(name, (body or KeyCreate()).name, actor=principal)
    return KeyCreatedPublic(token=token, **_key(key).model_dump())


@keys_router.delete("/{key_id}", status_code=204, responses=error_responses(401, 404, 409))
async def revoke_key(key_id: str, principal: CurrentPrincipal,
                     service: UserServiceDep) -> None:
    """Revoke a key (admins, or its owner); every server refuses it within a second."""
    await service.revoke_key(key_id, actor=principal)


@keys_router.put("/{key_id}/limits", responses=error_responses(400, 401, 403, 404, 422))
async def set_key_limits(
    key_id: str, principal: CurrentPrincipal, service: UserServiceDep,
    limits: Annotated[KeyLimits, Body(examples=[LIMITS_EXAMPLE])] = None,
) -> KeyPublic:
    """The key's own limits per route class (chat, audio, jobs, writes, other: a limit
    such as ``120/minute`` or ``unlimited``) and ``tokens_per_day``; ``{}`` or null
    restores its role's defaults."""
    return _key(await service.set_key_limits(key_id, limits, actor=principal))


router.include_router(users_router)
router.include_router(keys_router)
