"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter

from personae import __version__
from personae.api.deps import RuntimeDep
from personae.api.schemas import HealthPublic, error_responses

router = APIRouter(tags=["health"])


@router.get("/health", responses=error_responses())
async def health(runtime: RuntimeDep) -> HealthPublic:
    personas = await runtime.personas.count()
    return HealthPublic(status="ok", version=__version__, personas=personas)
