"""A persona's own figures: turns, tokens, latency, errors and ratings per version and day."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from personae.api.deps import CurrentPrincipal, RuntimeDep
from personae.api.routes.personas import PersonaIdConvertor
from personae.api.schemas.common import MAX_VERSION, error_responses
from personae.api.schemas.metrics import PersonaMetricsPublic
from personae.conversations.metrics import MAX_DAYS

router = APIRouter(prefix="/personas", tags=["persona metrics"])
_CONVERTOR = PersonaIdConvertor  # registered with it: {persona_id:persona}


@router.get("/{persona_id:persona}/metrics", responses=error_responses(401, 403, 404, 422))
async def persona_metrics(
        persona_id: str, principal: CurrentPrincipal, runtime: RuntimeDep,
        days: Annotated[int, Query(ge=1, le=MAX_DAYS, description="UTC days up to today")] = 30,
        version: Annotated[int | None, Query(ge=1, le=MAX_VERSION,
                                             description="one version only")] = None,
) -> PersonaMetricsPublic:
    """Per version and UTC day: turns, tokens, time to first token and response time
    (mean, p50, p95), errors, interruptions and ratings; for the persona's owner and
    admins."""
    report = await runtime.persona_metrics.report(principal, persona_id, days, version)
    return PersonaMetricsPublic.model_validate(report)
