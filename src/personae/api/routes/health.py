"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter

from personae import __version__
from personae.api.deps import RuntimeDep

router = APIRouter(tags=["health"])


@router.get("/health")
async def health(runtime: RuntimeDep) -> dict:
    personas = await runtime.store.count()
    return {"status": "ok", "version": __version__, "personas": personas}
