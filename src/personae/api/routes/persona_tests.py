"""Persona test runs: ``POST /v1/personas/{id}/tests/run`` and ``/v1/test-runs``.

Starting a run answers **202 Accepted** at once with the run (``queued``) and a
``Location`` to follow it: ``GET /v1/test-runs/{id}`` (status and progress),
``/events`` (server-sent progress events until it ends), and ``/results`` (the JSON
report, 409 until it has completed). A run belongs to its creator (admins see all);
for anyone else every route here answers 404.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from sse_starlette import EventSourceResponse

from personae.api.deps import CurrentPrincipal
from personae.api.routes import personas  # noqa: F401  (registers {persona_id:persona})
from personae.api.schemas import (
    MAX_OFFSET,
    SSE_PING_SECONDS,
    TestReportPublic,
    TestRunCreate,
    TestRunProgressPublic,
    TestRunPublic,
    TestRunsPublic,
    error_responses,
    sse_event_schema,
)
from personae.api.schemas.persona_tests import TestComparisonPublic, TestSuitePublic
from personae.auth.principal import Principal
from personae.errors import PersonaeError
from personae.quality.records import RunStatus, TestRun
from personae.quality.service import TestRunOptions, TestRunService

router = APIRouter(tags=["persona tests"])

EVENTS_INTERVAL = 0.5  # seconds between progress polls of one /events stream
_PROGRESS = TestRunProgressPublic.model_json_schema()
_EVENTS_RESPONSE = {"description": "Server-sent events: progress, then done (or error)",
                    "content": {"text/event-stream": {"schema": sse_event_schema({
                        "progress": _PROGRESS, "done": _PROGRESS,
                        "error": {"$ref": "#/components/schemas/ErrorBody"}})}}}


async def get_test_runs(request: Request) -> TestRunService:
    service: TestRunService = request.app.state.runtime.test_runs
    return service


TestRunsDep = Annotated[TestRunService, Depends(get_test_runs)]


def _public(run: TestRun) -> TestRunPublic:
    return TestRunPublic.model_validate(run.public())


@router.post("/personas/{persona_id:persona}/tests/run", status_code=202,
             responses=error_responses(400, 401, 404, 409, 413, 422, 503))
async def run_persona_tests(persona_id: str, body: TestRunCreate, response: Response,
                            principal: CurrentPrincipal,
                            service: TestRunsDep) -> TestRunPublic:
    """Start a test run; 202 Accepted, because the suite runs in the background.

    A private persona is tested only by its owner or an admin; a public one by anyone.
    """
    suite: dict[str, Any] | str = body.suite if body.suite is not None else str(body.suite_yaml)
    run = await service.start(principal, persona_id, suite,
                              TestRunOptions(repeat=body.repeat, model=body.model))
    response.headers["Location"] = f"/v1/test-runs/{run.id}"
    return _public(run)


@router.get("/personas/{persona_id:persona}/tests/suite", responses=error_responses(401, 404))
async def persona_test_suite(persona_id: str, principal: CurrentPrincipal,
                             service: TestRunsDep) -> TestSuitePublic:
    """The suite shipped for the persona, ready to run (``available: false`` if none)."""
    found = await service.suite_for(principal, persona_id)
    return TestSuitePublic(persona_id=persona_id, available=found is not None,
                           name=found.name if found else None,
                           cases=found.cases if found else 0,
                           suite_yaml=found.text if found else None)


@router.get("/test-runs", responses=error_responses(401, 422))
async def list_test_runs(
    principal: CurrentPrincipal, service: TestRunsDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    status: RunStatus | None = None,
    persona: Annotated[str | None, Query(max_length=200,
                                         description="only this persona's runs")] = None,
) -> TestRunsPublic:
    """Your test runs (an admin's: everyone's), newest first."""
    found, count = await service.runs(principal, limit=limit, offset=offset, status=status,
                                      persona_id=persona)
    return TestRunsPublic.model_validate({"data": [r.public() for r in found],
                                          "count": count, "limit": limit, "offset": offset})


@router.get("/test-runs/{run_id}", responses=error_responses(401, 404))
async def get_test_run(run_id: str, principal: CurrentPrincipal,
                       service: TestRunsDep) -> TestRunPublic:
    return _public(await service.get(principal, run_id))


@router.get("/test-runs/{run_id}/results", responses=error_responses(401, 404, 409))
async def test_run_results(run_id: str, principal: CurrentPrincipal,
                           service: TestRunsDep) -> TestReportPublic:
    """The JSON report (per case: pass rate, interval, every repetition's checks)."""
    return TestReportPublic.model_validate(await service.results(principal, run_id))


@router.get("/test-runs/{run_id}/compare/{other_id}", responses=error_responses(401, 404, 409))
async def compare_test_runs(run_id: str, other_id: str, principal: CurrentPrincipal,
                            service: TestRunsDep) -> TestComparisonPublic:
    """Two completed runs case by case, with flips (``pass→fail``, ``fail→pass``) from
    ``other_id`` to ``run_id``: two versions of a persona, or two models."""
    return TestComparisonPublic.model_validate(
        await service.compare(principal, run_id, other_id))


@router.post("/test-runs/{run_id}/cancel", responses=error_responses(401, 404))
async def cancel_test_run(run_id: str, principal: CurrentPrincipal,
                          service: TestRunsDep) -> TestRunPublic:
    """Stop a queued or running run; a finished one is returned as it is."""
    return _public(await service.cancel(principal, run_id))


@router.get("/test-runs/{run_id}/events", response_model=None, response_class=Response,
            responses={200: _EVENTS_RESPONSE, **error_responses(401, 404)})
async def test_run_events(run_id: str, principal: CurrentPrincipal,
                          service: TestRunsDep) -> EventSourceResponse:
    """Server-sent events: ``progress`` now and on every change, then ``done`` once the
    run has ended (completed, failed or cancelled)."""
    first = await service.get(principal, run_id)  # 404 here, not in a stream
    return EventSourceResponse(_events(service, principal, first), ping=SSE_PING_SECONDS)


async def _events(service: TestRunService, principal: Principal,
                  current: TestRun) -> AsyncIterator[dict[str, str]]:
    sent: dict[str, Any] | None = None
    while True:
        data = current.progress()
        if data != sent:
            yield {"event": "progress", "data": json.dumps(data)}
            sent = data
        if current.finished:
            yield {"event": "done", "data": json.dumps(data)}
            return
        await asyncio.sleep(EVENTS_INTERVAL)
        try:
            current = await service.get(principal, current.id)
        except PersonaeError as exc:  # gone while we watched
            yield {"event": "error", "data": json.dumps(exc.to_dict()["error"])}
            return
