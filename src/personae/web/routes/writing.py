"""Dashboard pages: the writing studio (``/writing``) and one writing persona's desk.

Reads go through the writing service the ``/v1/writing`` routes use; building a
persona, validating, optimising and drafting are the page script's calls to that API.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from personae.api.routes import personas  # noqa: F401  (registers {persona_id:persona})
from personae.personas.records import PersonaRecord
from personae.web.pages import ViewerDep, page_runtime, render
from personae.writing import platforms
from personae.writing.platforms import PlatformSpec
from personae.writing.samples import MAX_SAMPLE_CHARS, MAX_SAMPLES

router = APIRouter()


def _platform(spec: PlatformSpec) -> dict[str, Any]:
    """What the draft desk's script needs of a platform: its post limit."""
    limit, title = spec.text_limit, spec.limit_for("title")
    return {"id": spec.id, "name": spec.name, "field": limit.field, "limit": limit.max,
            "counting": limit.counting, "title": title.max if title else None}


def _card(record: PersonaRecord) -> dict[str, Any]:
    block = record.definition.writing
    assert block is not None  # the service lists writing personas only
    return {"id": record.id, "name": record.definition.display_name or record.definition.name,
            "version": record.version, "language": block.fingerprint.language,
            "confidence": block.fingerprint.confidence.level,
            "synthesis": block.synthesis.status, "samples": block.samples.count,
            "words": block.samples.words, "visibility": record.visibility.value}


@router.get("/writing", response_class=HTMLResponse)
async def studio(request: Request, viewer: ViewerDep) -> HTMLResponse:
    found = await page_runtime(request).writing.list_for(viewer.principal, "me")
    return render(request, viewer, "writing/index.html", {
        "active": "writing", "personas": [_card(record) for record in found],
        "max_samples": MAX_SAMPLES, "max_sample_chars": MAX_SAMPLE_CHARS})


@router.get("/writing/{persona_id:persona}", response_class=HTMLResponse)
async def desk(request: Request, persona_id: str, viewer: ViewerDep) -> HTMLResponse:
    record = await page_runtime(request).writing.get(viewer.principal, persona_id)
    block = record.definition.writing
    found = platforms.all_platforms()
    return render(request, viewer, "writing/persona.html", {
        "active": "writing", "persona": _card(record), "block": block,
        "platforms": found,
        "desk": {"persona": record.id, "platforms": [_platform(spec) for spec in found]}})
