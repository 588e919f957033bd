"""``GET /metrics``: the Prometheus text exposition (at the root, not under /v1); and
``GET /v1/metrics/summary``: its headline figures as JSON, for admins.

Open to loopback callers; from elsewhere with ``Authorization: Bearer
<PERSONAE_METRICS_TOKEN>`` or an admin's API key. 404 when metrics are disabled.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from personae.api.deps import CurrentPrincipal, runtime_of
from personae.api.routes.health import health_of, require_operator
from personae.api.schemas import error_responses
from personae.api.schemas.metrics_summary import MetricsSummaryPublic
from personae.auth.principal import Principal
from personae.errors import NotFound, PermissionDenied
from personae.ops.metrics_summary import MetricsSummary, summarize

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


@router.get("/v1/metrics/summary", responses=error_responses(401, 403, 404))
async def metrics_summary(request: Request, principal: CurrentPrincipal) -> MetricsSummaryPublic:
    """Headline figures from the same counters (admins): requests, turns, errors,
    tokens, rate-limit refusals and the busiest personas, since the server started."""
    summary = await summary_for(request, principal)
    return MetricsSummaryPublic.model_validate(summary.to_dict())


async def summary_for(request: Request, principal: Principal) -> MetricsSummary:
    """The summary for an admin (403 for a member; 404 when metrics are disabled)."""
    if not principal.is_admin:
        raise PermissionDenied("only admins can read the metrics summary")
    runtime = runtime_of(request)
    if not runtime.metrics.enabled:
        raise NotFound("metrics are disabled (PERSONAE_METRICS_ENABLED=false)")
    await runtime.metrics.refresh(health_of(request).sources.counts)
    return summarize(runtime.metrics)
