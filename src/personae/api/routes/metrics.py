"""``GET /metrics``: the Prometheus text exposition (at the root, not under /v1).

Open to loopback callers; from elsewhere with ``Authorization: Bearer
<PERSONAE_METRICS_TOKEN>`` or an admin's API key. 404 when metrics are disabled.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from personae.api.deps import runtime_of
from personae.api.routes.health import health_of, require_operator
from personae.api.schemas import error_responses
from personae.errors import NotFound

router = APIRouter(tags=["metrics"])
TEXT = {"text/plain": {"schema": {"type": "string"}}}


@router.get("/metrics", response_class=Response,
            responses={200: {"description": "Prometheus text format", "content": TEXT},
                       **error_responses(401, 403, 404)})
async def metrics(request: Request) -> Response:
    runtime = runtime_of(request)
    if not runtime.metrics.enabled:
        raise NotFound("metrics are disabled (PERSONAE_METRICS_ENABLED=false)")
    await require_operator(request, runtime.settings.metrics_token)
    await runtime.metrics.refresh(health_of(request).sources.counts)
    body, content_type = runtime.metrics.render()
    return Response(body, media_type=content_type)
