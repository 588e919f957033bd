"""``/v1/evaluations``: run content past a panel of personas, then read the results.

``POST /v1/evaluations`` answers **202 Accepted** at once: the content is split into
segments, every persona x segment cell is written as *pending*, and the scoring
continues as background jobs. Follow it with ``GET /v1/evaluations/{id}`` (progress),
``GET /v1/evaluations/{id}/events`` (server-sent progress events) and read
``/results``, ``/aggregates`` or ``/export`` as cells finish.

The content comes as JSON (``{"content": "...", "panel": "...", ...}``) or as a
``multipart/form-data`` upload: a ``file`` part plus the same options as form fields
(``personas`` comma-separated, ``rubric`` as a JSON string). An evaluation belongs to
its creator; for anyone else every route here answers 404.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from sse_starlette import EventSourceResponse
from starlette.datastructures import FormData, UploadFile

from personae.api.deps import CurrentPrincipal
from personae.api.routes.panels import PanelServiceDep
from personae.api.schemas import (
    EVALUATION_CREATE_BODY,
    MAX_OFFSET,
    SSE_PING_SECONDS,
    AggregatesPublic,
    EvaluationCreate,
    EvaluationDetailPublic,
    EvaluationRerun,
    EvaluationResultsPublic,
    EvaluationsPublic,
    ProgressPublic,
    ResumePublic,
    error_responses,
    sse_event_schema,
)
from personae.auth.principal import Principal
from personae.errors import InvalidInput, PersonaeError
from personae.limits import load_json
from personae.panels.content import MAX_CONTENT_CHARS, split_rule
from personae.panels.records import EvaluationStatus, Progress
from personae.panels.rubric import Rubric
from personae.panels.service import EvaluationRequest, PanelService
from personae.personas.language import normalize_language

router = APIRouter(prefix="/evaluations", tags=["evaluations"])

EVENTS_INTERVAL = 0.5  # seconds between progress polls of one /events stream
MAX_UPLOAD_BYTES = MAX_CONTENT_CHARS * 4  # UTF-8 takes at most 4 bytes per character
EXPORT_FORMATS = ("csv", "json")
# Downloads and streams: the media types are documented, the bodies are written directly.
_EXPORT_RESPONSE = {"description": "CSV (one row per persona x segment) or the JSON results",
                    "model": EvaluationResultsPublic,
                    "content": {"text/csv": {"schema": {"type": "string"}}}}
_EVENTS_RESPONSE = {"description": "Server-sent events: progress, then done (or error)",
                    "content": {"text/event-stream": {"schema": sse_event_schema({
                        "progress": {"$ref": "#/components/schemas/ProgressPublic"},
                        "done": {"$ref": "#/components/schemas/ProgressPublic"},
                        "error": {"$ref": "#/components/schemas/ErrorBody"}})}}}


async def _json_body(request: Request) -> Any:
    """The JSON body, nested at most MAX_DEPTH levels (its size is bounded by the
    body-limit middleware: an upload, since it carries the content)."""
    try:
        return load_json(await request.body(), "the request body")
    except ValueError:
        raise InvalidInput("the request body must be JSON") from None


async def _form_body(request: Request) -> dict[str, Any]:
    async with request.form() as form:
        return await _form_fields(form)


async def _form_fields(form: FormData) -> dict[str, Any]:
    """Form fields as the JSON body would have them; empty fields count as absent."""
    raw: dict[str, Any] = {}
    upload = form.get("file")
    if isinstance(upload, UploadFile):
        raw["content"] = await _read_upload(upload)
        if upload.filename:
            raw["filename"] = upload.filename
    elif upload is not None:
        raise InvalidInput("'file' must be a file part", {"field": "file"})
    for name in form:
        if name == "file":
            continue
        values = form.getlist(name)
        if any(isinstance(value, UploadFile) for value in values):
            raise InvalidInput(f"'{name}' must be a form field, not a file", {"field": name})
        texts = [str(value) for value in values if str(value).strip()]
        if not texts:
            continue
        if name == "personas":
            raw[name] = [p.strip() for text in texts for p in text.split(",") if p.strip()]
        elif name == "rubric":
            raw[name] = _json_field(name, texts[-1])
        elif name == "content" and "content" in raw:
            raise InvalidInput("send the content as a 'file' part or a 'content' field, "
                               "not both")
        else:
            raw[name] = texts[-1] if name == "content" else texts[-1].strip()
    if "content" not in raw:
        raise InvalidInput("no content: send it as a 'file' part (or a 'content' field)",
                           {"field": "file"})
    return raw


async def _read_upload(upload: UploadFile) -> str:
    data = await upload.read(MAX_UPLOAD_BYTES + 1)
    if len(data) > MAX_UPLOAD_BYTES:
        raise InvalidInput(f"the file is larger than {MAX_UPLOAD_BYTES:,} bytes",
                           {"field": "file"})
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput("the file must be UTF-8 text", {"field": "file"}) from None


def _json_field(name: str, text: str) -> Any:
    try:
        return load_json(text, f"'{name}'")
    except ValueError:
        raise InvalidInput(f"'{name}' must be a JSON object", {"field": name}) from None


def _validated(raw: Any) -> tuple[EvaluationCreate, Rubric | None]:
    """Validate like a body parameter, so errors get the usual 422 shape and paths
    (the rubric too: ``rubric.scale_max``, exactly as ``/v1/panels`` reports them)."""
    try:
        body = EvaluationCreate.model_validate(raw)
        rubric = None if body.rubric is None else Rubric.model_validate(body.rubric)
    except ValidationError as exc:
        prefix = ("body",) if exc.title == EvaluationCreate.__name__ else ("body", "rubric")
        errors = [{**error, "loc": (*prefix, *error["loc"])} for error in exc.errors()]
        raise RequestValidationError(errors) from None
    return body, rubric


def _request(body: EvaluationCreate, rubric: Rubric | None) -> EvaluationRequest:
    split = None
    if body.sentences_per_segment is not None or body.target_chars is not None:
        split = split_rule(body.sentences_per_segment, body.target_chars)
    try:
        language = normalize_language(body.language)
    except ValueError as exc:
        raise InvalidInput(f"language: {exc}", {"field": "language"}) from None
    return EvaluationRequest(
        content=body.content, content_format=body.format, filename=body.filename,
        title=body.title, panel=body.panel, personas=body.personas, rubric=rubric,
        classify=body.classify, adherence=body.adherence, split=split, language=language)


async def _with_progress(service: PanelService, principal: Principal,
                         evaluation_id: str) -> EvaluationDetailPublic:
    evaluation = await service.evaluation(principal, evaluation_id)
    progress = await service.progress(principal, evaluation_id)
    return EvaluationDetailPublic.model_validate(
        {**evaluation.public(), "progress": progress.public()})


@router.post("", status_code=202, openapi_extra=EVALUATION_CREATE_BODY,
             responses=error_responses(400, 401, 404, 409, 422, 503))
async def create_evaluation(request: Request, response: Response, principal: CurrentPrincipal,
                            service: PanelServiceDep) -> EvaluationDetailPublic:
    """Start an evaluation; 202 Accepted, because the scoring goes on in the background.

    Send JSON, or ``multipart/form-data`` with a ``file`` part. The answer is the
    evaluation with its ``progress``; ``Location`` names where to follow it.
    """
    content_type = request.headers.get("content-type", "").lower()
    if content_type.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
        raw: Any = await _form_body(request)
    else:
        raw = await _json_body(request)
    evaluation = await service.evaluate(principal, _request(*_validated(raw)))
    response.headers["Location"] = f"/v1/evaluations/{evaluation.id}"
    return await _with_progress(service, principal, evaluation.id)


@router.get("", responses=error_responses(401, 422))
async def list_evaluations(
    principal: CurrentPrincipal, service: PanelServiceDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    status: EvaluationStatus | None = None,
) -> EvaluationsPublic:
    """Your evaluations, newest first."""
    found, count = await service.evaluations(principal, limit=limit, offset=offset,
                                             status=status)
    return EvaluationsPublic.model_validate({
        "data": [e.public() for e in found], "count": count, "limit": limit,
        "offset": offset})


@router.get("/{evaluation_id}", responses=error_responses(401, 404))
async def get_evaluation(evaluation_id: str, principal: CurrentPrincipal,
                         service: PanelServiceDep) -> EvaluationDetailPublic:
    return await _with_progress(service, principal, evaluation_id)


@router.get("/{evaluation_id}/results", responses=error_responses(401, 404))
async def evaluation_results(evaluation_id: str, principal: CurrentPrincipal,
                             service: PanelServiceDep) -> EvaluationResultsPublic:
    """Every segment with one card per persona, plus the aggregates."""
    return EvaluationResultsPublic.model_validate(
        await service.results(principal, evaluation_id))


@router.get("/{evaluation_id}/aggregates", responses=error_responses(401, 404))
async def evaluation_aggregates(evaluation_id: str, principal: CurrentPrincipal,
                                service: PanelServiceDep) -> AggregatesPublic:
    """Per persona, per topic and per tone; failed cells never enter a mean."""
    return AggregatesPublic.model_validate(await service.aggregates(principal, evaluation_id))


@router.get("/{evaluation_id}/export", response_model=None, response_class=Response,
            responses={200: _EXPORT_RESPONSE, **error_responses(400, 401, 404)})
async def export_evaluation(
    evaluation_id: str, principal: CurrentPrincipal, service: PanelServiceDep,
    format: Annotated[str, Query(description=" | ".join(EXPORT_FORMATS),
                                 json_schema_extra={"enum": list(EXPORT_FORMATS)})] = "csv",
) -> Response:
    """A download: CSV (one row per persona x segment) or JSON (the full results)."""
    kind = format.strip().lower()
    if kind not in EXPORT_FORMATS:
        raise InvalidInput(f"unknown export format {format!r}; use "
                           f"{' or '.join(EXPORT_FORMATS)}", {"format": format})
    if kind == "csv":
        body = await service.export_csv(principal, evaluation_id)
        media_type = "text/csv; charset=utf-8"
    else:
        results = await service.results(principal, evaluation_id)
        body = json.dumps(results, ensure_ascii=False, indent=2)
        media_type = "application/json"
    disposition = f'attachment; filename="evaluation-{evaluation_id}.{kind}"'
    return Response(body.encode("utf-8"), media_type=media_type,
                    headers={"Content-Disposition": disposition})


@router.post("/{evaluation_id}/cancel", responses=error_responses(401, 404))
async def cancel_evaluation(evaluation_id: str, principal: CurrentPrincipal,
                            service: PanelServiceDep) -> ProgressPublic:
    """Stop: cells not started are cancelled; finished ones keep their results."""
    return ProgressPublic.model_validate((await service.cancel(principal, evaluation_id)).public())


@router.post("/{evaluation_id}/rerun",
             responses=error_responses(400, 401, 404, 409, 422, 503))
async def rerun_evaluation(
    evaluation_id: str, principal: CurrentPrincipal, service: PanelServiceDep,
    body: EvaluationRerun | None = None,
    include_cancelled: Annotated[bool | None, Query(
        description="also run cancelled cells (or send it in the body)")] = None,
) -> ProgressPublic:
    """Run failed (and, if asked, cancelled) cells again; 409 while still running."""
    again = bool(include_cancelled) or (body is not None and body.include_cancelled)
    progress = await service.rerun(principal, evaluation_id, include_cancelled=again)
    return ProgressPublic.model_validate(progress.public())


@router.post("/{evaluation_id}/resume", responses=error_responses(401, 404, 503))
async def resume_evaluation(evaluation_id: str, principal: CurrentPrincipal,
                            service: PanelServiceDep) -> ResumePublic:
    """Queue a running evaluation's unfinished work again (after its jobs were lost,
    say with a Redis restart). Safe to repeat: queued jobs are not doubled."""
    queued = await service.requeue(principal, evaluation_id)
    progress = await service.progress(principal, evaluation_id)
    return ResumePublic.model_validate({**progress.public(), "queued": queued})


@router.delete("/{evaluation_id}", status_code=204, responses=error_responses(401, 404))
async def delete_evaluation(evaluation_id: str, principal: CurrentPrincipal,
                            service: PanelServiceDep) -> None:
    """Delete the evaluation and its results; a running one is cancelled first."""
    await service.delete(principal, evaluation_id)


@router.get("/{evaluation_id}/events", response_model=None, response_class=Response,
            responses={200: _EVENTS_RESPONSE, **error_responses(401, 404)})
async def evaluation_events(evaluation_id: str, principal: CurrentPrincipal,
                            service: PanelServiceDep) -> EventSourceResponse:
    """Server-sent events: ``progress`` now and on every change, then ``done`` once the
    evaluation is no longer running. Both carry the progress object."""
    first = await service.progress(principal, evaluation_id)  # 404 here, not in a stream
    return EventSourceResponse(_progress_events(service, principal, evaluation_id, first),
                               ping=SSE_PING_SECONDS)


async def _progress_events(service: PanelService, principal: Principal, evaluation_id: str,
                           current: Progress) -> AsyncIterator[dict[str, str]]:
    sent: dict[str, Any] | None = None
    while True:
        data = current.public()
        if data != sent:
            yield {"event": "progress", "data": json.dumps(data)}
            sent = data
        if current.status != "running":
            yield {"event": "done", "data": json.dumps(data)}
            return
        await asyncio.sleep(EVENTS_INTERVAL)
        try:
            current = await service.progress(principal, evaluation_id)
        except PersonaeError as exc:  # deleted while we watched
            yield {"event": "error", "data": json.dumps(exc.to_dict()["error"])}
            return
