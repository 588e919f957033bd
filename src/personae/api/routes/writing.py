"""``/v1/writing``: writing personas, their samples, platforms, and drafts (thin).

A writing persona is a persona: ``POST /v1/writing/personas`` answers 201 with the same
representation as ``GET /v1/personas/{id}``. A persona you cannot read is 404 on every
route here; its samples are the owner's and admins' only (404 for anyone else).
``?user=`` another user is 403 unless you are an admin. With ``Accept:
text/event-stream`` a create streams ``progress`` events, then ``persona``; optimize and
draft with ``stream: true`` stream ``attempt``, ``delta``, ``scored`` and ``done``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from sse_starlette import EventSourceResponse

from personae.api.deps import CurrentPrincipal
from personae.api.routes import personas  # noqa: F401  (registers {persona_id:persona})
from personae.api.schemas import (
    SSE_PING_SECONDS,
    PersonaPublic,
    error_responses,
    sse_event_schema,
)
from personae.api.schemas.writing import (
    AttemptPublic,
    DraftOptimize,
    DraftValidate,
    DraftWrite,
    PlatformsPublic,
    Regenerate,
    SampleIn,
    SamplesPublic,
    SamplesReplace,
    WritingPersonaCreate,
    WritingPersonasPublic,
    WritingResultPublic,
)
from personae.errors import PersonaeError, from_infrastructure
from personae.personas.records import PersonaRecord
from personae.writing import drafting, platforms
from personae.writing.adaptation import PlatformAdaptation
from personae.writing.building import WritingProgress, WritingRequest
from personae.writing.platforms import PlatformSpec
from personae.writing.records import SampleText
from personae.writing.reports import ValidationReport
from personae.writing.service import WritingService

router = APIRouter(prefix="/writing", tags=["writing"])
log = logging.getLogger(__name__)
CHANGED_HEADER = "X-Persona-Changed"
_RUNNING: set[asyncio.Future[PersonaRecord]] = set()  # streamed creates, until they end
_STREAM = {"description": "with Accept: text/event-stream or stream: true, server-sent "
                          "events", "content": {"text/event-stream": {"schema": sse_event_schema({
                              "progress": {"type": "object"}, "persona": {"type": "object"},
                              "attempt": {"type": "object"}, "delta": {"type": "object"},
                              "scored": {"type": "object"}, "done": {"type": "object"},
                              "error": {"$ref": "#/components/schemas/ErrorBody"}})}}}

_RESULT = {**_STREAM, "model": WritingResultPublic,
           "description": "the best attempt (JSON), or with stream: true server-sent events"}


async def get_writing(request: Request) -> WritingService:
    service: WritingService = request.app.state.runtime.writing
    return service


WritingDep = Annotated[WritingService, Depends(get_writing)]


def _persona(record: PersonaRecord) -> PersonaPublic:
    return PersonaPublic.model_validate(record.public())


def _samples(samples: list[SampleIn | str]) -> list[SampleText]:
    return [SampleText(s) if isinstance(s, str) else SampleText(s.text, s.title)
            for s in samples]


def _wants_stream(request: Request) -> bool:
    return "text/event-stream" in request.headers.get("accept", "")


async def _changed(response: Response, run: Callable[[Callable[[WritingProgress], None]],
                                                     Awaitable[PersonaRecord]]
                   ) -> PersonaPublic:
    """The persona, with ``X-Persona-Changed`` saying whether a new version was made
    (the service tells an "unchanged" stage when none was)."""
    stages: list[str] = []
    record = await run(lambda event: stages.append(event.stage))
    response.headers[CHANGED_HEADER] = "false" if "unchanged" in stages else "true"
    return _persona(record)


# -- writing personas ------------------------------------------------------------------

@router.post("/personas", status_code=201, response_model=PersonaPublic,
             responses={200: _STREAM, **error_responses(400, 401, 409, 413, 422)})
async def create_writing_persona(body: WritingPersonaCreate, request: Request,
                                 principal: CurrentPrincipal, service: WritingDep) -> Any:
    """Measure the samples, synthesise the voice, store version 1 (201, the persona)."""
    writing = WritingRequest(name=body.name, samples=_samples(body.samples),
                             onboarding=body.onboarding(), id=body.id, language=body.language,
                             model=body.model, visibility=body.visibility,
                             max_attempts=body.max_attempts)
    checked = await service.check_create(principal, writing)  # bad input: 4xx, no stream
    if not _wants_stream(request):
        return _persona(await service.create(principal, checked))
    return _progress_stream(lambda tell: service.create(principal, checked, tell))


@router.get("/personas", responses=error_responses(401, 403, 404, 422))
async def list_writing_personas(principal: CurrentPrincipal, service: WritingDep,
                                user: Annotated[str, Query(max_length=100)] = "me",
                                ) -> WritingPersonasPublic:
    """A user's writing personas: ``me`` (default), or a user id or name (admins)."""
    found = await service.list_for(principal, user)
    return WritingPersonasPublic(data=[r.public() for r in found], count=len(found))


@router.get("/personas/user/{user_id}", responses=error_responses(401, 403, 404))
async def list_user_writing_personas(user_id: str, principal: CurrentPrincipal,
                                     service: WritingDep) -> WritingPersonasPublic:
    return await list_writing_personas(principal, service, user_id)


@router.get("/personas/{persona_id:persona}/samples", responses=error_responses(401, 404, 409))
async def get_samples(persona_id: str, principal: CurrentPrincipal,
                      service: WritingDep) -> SamplesPublic:
    """The samples (the owner's and admins' only)."""
    found = await service.samples(principal, persona_id)
    return SamplesPublic.model_validate({"persona_id": persona_id, "count": len(found),
                                         "data": [s.public() for s in found]})


@router.put("/personas/{persona_id:persona}/samples", response_model=PersonaPublic,
            responses={200: _STREAM, **error_responses(400, 401, 403, 404, 409, 413, 422)})
async def replace_samples(persona_id: str, body: SamplesReplace, request: Request,
                          response: Response, principal: CurrentPrincipal,
                          service: WritingDep) -> Any:
    """New samples: re-measured and re-synthesised, a new version (same samples: none,
    and the ``X-Persona-Changed: false`` header says so)."""
    def run(tell: Callable[[WritingProgress], None] | None) -> Awaitable[PersonaRecord]:
        return service.replace_samples(principal, persona_id, _samples(body.samples),
                                       model=body.model, max_attempts=body.max_attempts,
                                       progress=tell)
    if not _wants_stream(request):
        return await _changed(response, run)
    await service.check_replace(principal, persona_id, _samples(body.samples),
                                model=body.model, max_attempts=body.max_attempts)
    return _progress_stream(run)


@router.post("/personas/{persona_id:persona}/regenerate", response_model=PersonaPublic,
             responses=error_responses(400, 401, 403, 404, 409, 422))
async def regenerate(persona_id: str, principal: CurrentPrincipal, service: WritingDep,
                     response: Response, body: Regenerate | None = None) -> PersonaPublic:
    """Re-synthesise from the stored samples: a new version, unless the synthesis came
    out the same (``X-Persona-Changed: false``, the version as it was)."""
    wanted = body or Regenerate()
    return await _changed(response, lambda tell: service.regenerate(
        principal, persona_id, model=wanted.model, max_attempts=wanted.max_attempts,
        progress=tell))


@router.get("/personas/{persona_id:persona}/platform/{platform}",
            responses=error_responses(401, 404, 409))
async def platform_adaptation(persona_id: str, platform: str, principal: CurrentPrincipal,
                              service: WritingDep) -> PlatformAdaptation:
    """The persona's fingerprint under the platform's rules, and a brief for a model."""
    return await service.adaptation(principal, persona_id, platform)


@router.get("/personas/{persona_id:persona}", response_model=PersonaPublic,
            responses=error_responses(401, 404))
async def get_writing_persona(persona_id: str, principal: CurrentPrincipal,
                              service: WritingDep) -> PersonaPublic:
    return _persona(await service.get(principal, persona_id))


# -- platforms and drafts -----------------------------------------------------------------

@router.get("/platforms", responses=error_responses(401))
async def list_platforms(principal: CurrentPrincipal) -> PlatformsPublic:
    found = platforms.all_platforms()
    return PlatformsPublic(data=found, count=len(found))


@router.get("/platforms/{platform}", responses=error_responses(401, 404))
async def get_platform(platform: str, principal: CurrentPrincipal) -> PlatformSpec:
    return platforms.platform(platform)


@router.post("/{platform}/validate", responses=error_responses(400, 401, 404, 409, 413, 422))
async def validate_draft(platform: str, body: DraftValidate, principal: CurrentPrincipal,
                         service: WritingDep) -> ValidationReport:
    """Hard violations, meters (``271/280``) and a style report for one draft."""
    return await service.validate(principal, platform, body.persona, body.text, body.title)


@router.post("/{platform}/optimize", response_model=None,
             responses={200: _RESULT, **error_responses(400, 401, 404, 409, 413, 422)})
async def optimize_draft(platform: str, body: DraftOptimize, principal: CurrentPrincipal,
                         service: WritingDep) -> Any:
    """Rewrite the draft in the persona's voice within the platform's rules."""
    events = await service.optimise(principal, platform, body.persona, body.text,
                                    model=body.model, max_attempts=body.max_attempts)
    return await _answer(events, body.stream)


@router.post("/{platform}/draft", response_model=None,
             responses={200: _RESULT, **error_responses(400, 401, 404, 409, 422)})
async def write_draft(platform: str, body: DraftWrite, principal: CurrentPrincipal,
                      service: WritingDep) -> Any:
    """A new post on a topic, in the persona's voice, within the platform's rules."""
    events = await service.draft(principal, platform, body.persona, body.topic,
                                 notes=body.notes, model=body.model,
                                 max_attempts=body.max_attempts)
    return await _answer(events, body.stream)


# -- serialising --------------------------------------------------------------------------

_EVENT_NAMES = {drafting.AttemptStarted: "attempt", drafting.AttemptDelta: "delta",
                drafting.AttemptScored: "scored", drafting.WritingDone: "done"}


def event_data(event: drafting.WritingEvent) -> dict[str, Any]:
    """A drafting event as JSON (reports as the API writes them)."""
    data = asdict(event)
    if isinstance(event, drafting.AttemptScored | drafting.WritingDone):
        data["report"] = event.report.model_dump(mode="json")
    if isinstance(event, drafting.WritingDone):
        data["attempts"] = [event_data(each) for each in event.attempts]
    return data


async def _answer(events: AsyncIterator[drafting.WritingEvent], stream: bool) -> Any:
    if stream:
        return EventSourceResponse(_sse(events), ping=SSE_PING_SECONDS)
    done: drafting.WritingDone | None = None
    async for event in events:
        if isinstance(event, drafting.WritingDone):
            done = event
    if done is None:
        raise PersonaeError("the writing loop ended without a result")
    return WritingResultPublic(
        best=done.best, text=done.text, report=done.report, meets_limits=done.meets_limits,
        reason=done.reason, attempts=[AttemptPublic(number=a.number, text=a.text, report=a.report,
                                                    same_as=a.same_as) for a in done.attempts])


async def _sse(events: AsyncIterator[drafting.WritingEvent]) -> AsyncIterator[dict[str, str]]:
    try:
        async for event in events:
            yield {"event": _EVENT_NAMES[type(event)], "data": json.dumps(event_data(event))}
    except Exception as exc:  # the stream has started: the error is its last event
        yield {"event": "error", "data": json.dumps(_stream_error(exc).to_dict()["error"])}


def _stream_error(exc: Exception) -> PersonaeError:
    """An error inside a started stream, in the tree (unexpected ones logged, not shown)."""
    if isinstance(exc, PersonaeError):
        return exc
    mapped = from_infrastructure(exc)
    if mapped is None:
        log.exception("a writing stream failed")
        return PersonaeError("internal error: the work stopped unexpectedly")
    return mapped


def _progress_stream(run: Callable[[Callable[[WritingProgress], None]],
                                   Awaitable[PersonaRecord]]) -> Response:
    """Progress events while ``run`` works, then the persona (or an error event). A client
    that goes away does not stop the work: it ends as the same request without a stream
    would (kept referenced until then)."""
    queue: asyncio.Queue[WritingProgress] = asyncio.Queue()

    async def events() -> AsyncIterator[dict[str, str]]:
        task = asyncio.ensure_future(run(queue.put_nowait))
        _RUNNING.add(task)
        task.add_done_callback(_RUNNING.discard)
        try:
            while not (task.done() and queue.empty()):
                waiter = asyncio.ensure_future(queue.get())
                await asyncio.wait({waiter, task}, return_when=asyncio.FIRST_COMPLETED)
                if waiter.done():
                    yield {"event": "progress", "data": json.dumps(asdict(waiter.result()))}
                else:
                    waiter.cancel()
            record = task.result()
            yield {"event": "persona", "data": json.dumps(record.public())}
        except Exception as exc:  # the stream has started: the error is its last event
            yield {"event": "error", "data": json.dumps(_stream_error(exc).to_dict()["error"])}

    return EventSourceResponse(events(), ping=SSE_PING_SECONDS)
