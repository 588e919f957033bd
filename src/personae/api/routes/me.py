"""Who the caller is."""

from __future__ import annotations

from fastapi import APIRouter

from personae.api.deps import CurrentPrincipal

router = APIRouter(tags=["auth"])


@router.get("/me")
async def me(principal: CurrentPrincipal) -> dict:
    return {"id": principal.user_id, "name": principal.name, "role": principal.role.value}
