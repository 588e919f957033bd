"""Dashboard pages: the persona gallery (``/``), a new persona, and the editor.

The pages only read, through the service calls the ``/v1/personas`` routes make (the
same listing, the same access rules, the same prompt and diff); every change is made
by the page's script through the JSON API.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from personae.api.routes.personas import PersonaIdConvertor
from personae.api.schemas.common import MAX_VERSION
from personae.auth.principal import Principal
from personae.errors import Conflict, NotFound
from personae.personas.language import normalize_language
from personae.personas.prepared import prompt_tokens
from personae.personas.records import PersonaRecord, PersonaSummary, Sort
from personae.personas.schema import LanguagePolicy, Status, Visibility
from personae.personas.service import can_write
from personae.runtime import Runtime
from personae.web.pages import ViewerDep, page_runtime, render

router = APIRouter()
_CONVERTOR = PersonaIdConvertor  # registers {persona_id:persona}
PAGE_SIZE = 48
StatusFilter = Literal["", "active", "draft", "archived", "all"]
SORTS: dict[str, str] = {"name": "Name", "newest": "Newest", "updated": "Recently changed",
                         "most_used": "Most used"}
STATUS_LABELS: dict[str, str] = {"": "Active and drafts", "active": "Active",
                                 "draft": "Drafts", "archived": "Archived", "all": "All"}
MAX_QUERY = 200
VersionParam = Annotated[int | None, Query(ge=1, le=MAX_VERSION)]


def initials(name: str) -> str:
    """What a card shows in place of an avatar image: up to two initials."""
    words = [w for w in name.replace("-", " ").split() if w[:1].isalnum()]
    return "".join(w[0] for w in words[:2]).upper() or "?"


def trait_blocks(traits: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """Trait blocks as the editor shows them: (name, text, structured). A block that is
    not text (a list or mapping) is structured: its kind shows as "List / mapping (JSON)"
    and it is edited as JSON, so saving it unchanged keeps its shape."""
    return [(name, value, False) if isinstance(value, str)
            else (name, json.dumps(value, ensure_ascii=False, indent=2), True)
            for name, value in traits.items()]


async def _card(runtime: Runtime, principal: Principal,
                summary: PersonaSummary) -> dict[str, Any] | None:
    """One gallery card: the listing's row with the definition's role and avatar (the
    cached read ``GET /v1/personas/{id}`` makes)."""
    try:
        record = (await runtime.personas.get(principal, summary.id)).record
    except NotFound:  # deleted since the listing was read
        return None
    definition = record.definition
    avatar = definition.avatar_asset
    return {"id": summary.id, "name": definition.shown_name, "status": summary.status.value,
            "role": definition.role or definition.speciality or "",
            "description": definition.description, "language": summary.language,
            "tags": summary.tags, "visibility": summary.visibility.value,
            "scope": "global" if summary.owner_id is None else "user",
            "initials": initials(definition.shown_name),
            "avatar": (f"/v1/personas/{summary.id}/avatar?version={record.version}"
                       if avatar else None)}


def _status_query(status: StatusFilter) -> dict[str, Any]:
    if status == "all":
        return {"status": None, "include_archived": True}
    return {"status": Status(status) if status else None, "include_archived": False}


@router.get("/", response_class=HTMLResponse)
async def gallery(
    request: Request, viewer: ViewerDep,
    q: Annotated[str, Query(max_length=MAX_QUERY)] = "",
    tag: Annotated[str, Query(max_length=MAX_QUERY)] = "",
    language: Annotated[str, Query(max_length=35)] = "",
    status: StatusFilter = "", sort: Sort = "name",
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
) -> HTMLResponse:
    runtime = page_runtime(request)
    errors: dict[str, str] = {}
    try:
        wanted = normalize_language(language) if language.strip() else None
    except ValueError as exc:
        errors["language"] = f"language: {exc}"
    cards: list[dict[str, Any]] = []
    count = 0
    if not errors:
        listing = await runtime.personas.list(
            viewer.principal, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE,
            tag=tag.strip() or None, language=wanted, text=q.strip() or None, sort=sort,
            **_status_query(status))
        count = listing.count
        found = [await _card(runtime, viewer.principal, s) for s in listing.data]
        cards = [card for card in found if card is not None]
    filters = {"q": q, "tag": tag, "language": language, "status": status, "sort": sort}
    return render(request, viewer, "personas/gallery.html", {
        "active": "personas", "cards": cards, "count": count, "filters": filters,
        "errors": errors, "page": page, "pages": max(1, -(-count // PAGE_SIZE)),
        "sorts": SORTS, "statuses": STATUS_LABELS})


@router.get("/personas/new", response_class=HTMLResponse)
async def new_persona(request: Request, viewer: ViewerDep) -> HTMLResponse:
    return render(request, viewer, "personas/new.html", {
        "active": "personas", "policies": [p.value for p in LanguagePolicy],
        "visibilities": [v.value for v in Visibility], "traits": [],
        "persona": {"definition": {}, "can_edit": True, "new": True}})


async def _prompt(runtime: Runtime, record: PersonaRecord) -> dict[str, Any]:
    """The current version's system prompt as conversations run it, or why it fails."""
    try:
        prepared = await runtime.prepared.prepare_in_thread(record)
    except Conflict as exc:
        return {"error": exc.message}
    return {"text": prepared.system_prompt,
            "tokens": prompt_tokens(prepared, runtime.providers)}


@router.get("/personas/{persona_id:persona}", response_class=HTMLResponse)
async def editor(request: Request, persona_id: str, viewer: ViewerDep,
                 saved: VersionParam = None,
                 from_: Annotated[int | None, Query(alias="from", ge=1,
                                                    le=MAX_VERSION)] = None,
                 to: VersionParam = None) -> HTMLResponse:
    runtime = page_runtime(request)
    service, principal = runtime.personas, viewer.principal
    record = (await service.get(principal, persona_id)).record
    versions = await service.versions(principal, persona_id)
    new = to or record.version
    old = from_ or max(new - 1, 1)
    diff = await service.diff(principal, persona_id, old, new) if old != new else None
    yaml_text, _, _ = await service.export(principal, persona_id, "yaml")
    editable = can_write(principal, record)
    definition = record.definition
    return render(request, viewer, "personas/editor.html", {
        "active": "personas", "record": record, "definition": definition,
        "name": definition.shown_name, "initials": initials(definition.shown_name),
        "can_edit": editable, "versions": list(reversed(versions)), "saved": saved,
        "diff": diff, "diff_from": old, "diff_to": new, "diff_asked": from_ is not None,
        "yaml": yaml_text.decode(), "prompt": await _prompt(runtime, record),
        "policies": [p.value for p in LanguagePolicy],
        "visibilities": [v.value for v in Visibility],
        "traits": trait_blocks(definition.traits),
        "persona": {"id": record.id, "version": record.version, "can_edit": editable,
                    "status": record.status.value, "visibility": record.visibility.value,
                    "scope": "global" if record.is_global else "user",
                    "definition": definition.to_data()}})
