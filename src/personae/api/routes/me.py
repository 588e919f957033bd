"""Who the caller is."""

from __future__ import annotations

from fastapi import APIRouter

from personae.api.deps import CurrentPrincipal
from personae.api.schemas import UserPublic, error_responses

router = APIRouter(tags=["auth"])


@router.get("/me", responses=error_responses(401))
async def me(principal: CurrentPrincipal) -> UserPublic:
    return UserPublic(id=principal.user_id, name=principal.name, role=principal.role)
