"""Dashboard pages: admin (users, their keys, the audit log, metrics, health).

Every page is for admins only (a member gets the 403 page, as the admin API answers)
and only reads, through the calls the ``/v1`` routes make: the user service, the audit
log, the metrics summary and the detailed health report. Every change (a user, a role,
a key) is made by ``admin.js`` through the JSON API; a new key's secret is only ever in
that API's answer, never in a page.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from personae import __version__
from personae.api.routes.health import health_of
from personae.api.routes.metrics import summary_for
from personae.auth.principal import LOCAL_ADMIN_ID, Principal, Role
from personae.auth.records import ApiKey, User
from personae.errors import InvalidInput, PermissionDenied
from personae.ops.audit import (
    ACTIONS,
    DEFAULT_LIMIT,
    MAX_LIMIT,
    TARGET_TYPES,
    AuditQuery,
    parse_moment,
)
from personae.ops.metrics_summary import MetricsSummary
from personae.web.pages import Viewer, ViewerDep, page_runtime, render

router = APIRouter()
SECTIONS = (("overview", "Overview", "/admin"), ("users", "Users and keys", "/admin/users"),
            ("audit", "Audit log", "/admin/audit"), ("metrics", "Metrics", "/admin/metrics"),
            ("health", "Health", "/admin/health"))
BADGES = {"ok": "ok", "degraded": "warn", "down": "failed", "off": ""}
AUDIT_FILTERS = ("actor", "action", "target_type", "target_id", "since", "until")
Filter = Annotated[str, Query(max_length=200)]


def admin_of(viewer: Viewer) -> Principal:
    """The viewer, if an admin; a member is refused as the admin API refuses them."""
    if not viewer.is_admin:
        raise PermissionDenied("only admins can use the admin pages")
    return viewer.principal


def _page(request: Request, viewer: Viewer, template: str, section: str,
          context: dict[str, Any], status: int = 200) -> HTMLResponse:
    return render(request, viewer, f"admin/{template}",
                  {**context, "active": "admin", "section": section, "sections": SECTIONS},
                  status=status)


def _user(user: User) -> dict[str, Any]:
    return {"id": user.id, "name": user.name, "role": user.role.value,
            "disabled": user.disabled, "created_at": user.created_at.isoformat(),
            "built_in": user.id == LOCAL_ADMIN_ID}


def _key(key: ApiKey) -> dict[str, Any]:
    return {"id": key.id, "name": key.name, "prefix": key.prefix, "revoked": key.revoked,
            "created_at": key.created_at.isoformat(), "limits": key.limits or {}}


@router.get("/admin", response_class=HTMLResponse)
async def overview(request: Request, viewer: ViewerDep) -> HTMLResponse:
    principal = admin_of(viewer)
    users = await page_runtime(request).users.list_users(actor=principal)
    report = await health_of(request).detailed()
    return _page(request, viewer, "overview.html", "overview", {
        "users": [_user(u) for u in users], "summary": await _summary(request, principal),
        "health": {"status": report["status"], "problems": report["problems"]},
        "badges": BADGES})


async def _summary(request: Request, principal: Principal) -> MetricsSummary | None:
    """The metrics summary, or None when metrics are switched off."""
    if not page_runtime(request).metrics.enabled:
        return None
    return await summary_for(request, principal)


@router.get("/admin/users", response_class=HTMLResponse)
async def users_page(request: Request, viewer: ViewerDep) -> HTMLResponse:
    principal = admin_of(viewer)
    users = await page_runtime(request).users.list_users(actor=principal)
    return _page(request, viewer, "users.html", "users", {
        "users": [_user(u) for u in users], "roles": [r.value for r in Role]})


@router.get("/admin/users/{name}", response_class=HTMLResponse)
async def user_keys(request: Request, viewer: ViewerDep, name: str) -> HTMLResponse:
    """One user and their keys (prefixes only: a secret is never stored to show)."""
    principal = admin_of(viewer)
    service = page_runtime(request).users
    user = await service.require_user(name, actor=principal)
    keys = await service.keys_of(user.id, actor=principal)
    return _page(request, viewer, "keys.html", "users", {
        "user": _user(user), "keys": [_key(k) for k in keys]})


@router.get("/admin/audit", response_class=HTMLResponse)
async def audit_page(
    request: Request, viewer: ViewerDep, actor: Filter = "", action: Filter = "",
    target_type: Filter = "", target_id: Filter = "", since: Filter = "",
    until: Filter = "",
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[int | None, Query(ge=0, le=2**31 - 1)] = None,
) -> HTMLResponse:
    """The audit API's filters as a GET form; a bad filter is shown next to its field."""
    principal = admin_of(viewer)
    given = {"actor": actor, "action": action, "target_type": target_type,
             "target_id": target_id, "since": since, "until": until}
    filters = {k: v.strip() or None for k, v in given.items()}
    context: dict[str, Any] = {"filters": given, "limit": limit, "cursor": cursor,
                               "actions": ACTIONS, "target_types": TARGET_TYPES,
                               "entries": [], "count": 0, "next_cursor": None, "error": None,
                               "kept": {k: v for k, v in given.items() if v}}
    try:
        entries, count = await page_runtime(request).audit.list(
            _audit_query(filters, limit, cursor), viewer=principal)
    except InvalidInput as error:
        context["error"] = {"param": error.details.get("param"), "message": error.message}
        return _page(request, viewer, "audit.html", "audit", context, status=400)
    more = len(entries) == limit
    context.update(entries=[_entry(e.to_dict()) for e in entries], count=count,
                   next_cursor=entries[-1].id if more else None)
    return _page(request, viewer, "audit.html", "audit", context)


def _audit_query(filters: dict[str, str | None], limit: int,
                 cursor: int | None) -> AuditQuery:
    """The query ``GET /v1/audit`` builds from the same parameters."""
    since, until = filters["since"], filters["until"]
    return AuditQuery(actor=filters["actor"], action=filters["action"],
                      target_type=filters["target_type"], target_id=filters["target_id"],
                      since=parse_moment(since, "since") if since else None,
                      until=parse_moment(until, "until") if until else None,
                      limit=limit, cursor=cursor)


def _entry(entry: dict[str, Any]) -> dict[str, Any]:
    """An entry with its summary as ``field: value`` text (escaped by the template)."""
    summary = [(k, v if isinstance(v, str) else json.dumps(v, ensure_ascii=False))
               for k, v in (entry.get("summary") or {}).items()]
    return {**entry, "summary_items": summary}


@router.get("/admin/metrics", response_class=HTMLResponse)
async def metrics_page(request: Request, viewer: ViewerDep) -> HTMLResponse:
    principal = admin_of(viewer)
    return _page(request, viewer, "metrics.html", "metrics",
                 {"summary": await _summary(request, principal)})


@router.get("/admin/health", response_class=HTMLResponse)
async def health_page(request: Request, viewer: ViewerDep) -> HTMLResponse:
    """The report ``/health/detailed`` gives, as a table (a down database included)."""
    admin_of(viewer)
    report = await health_of(request).detailed()
    return _page(request, viewer, "health.html", "health", {
        "report": report, "rows": health_rows(report), "badges": BADGES,
        "server_version": __version__})


def health_rows(report: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(component, ok/degraded/down/off, detail) per line of the report."""
    database = report["database"]
    rows = [("Database", "ok" if database.get("ok") else "down",
             _details(database, ("latency_ms", "revision", "head", "migrated", "error")))]
    for name, part in (("Rate-limit storage (Redis)", report["redis"]),
                       ("Job queue", report["queue"])):
        configured = part.get("configured", True)
        state = "off" if not configured else ("ok" if part.get("ok", True) else "degraded")
        rows.append((name, state, _details(part, ("latency_ms", "depth", "jobs",
                                                  "active_sessions", "error"))
                     or ("not configured: in process" if not configured else "")))
    for name, breaker in report["providers"].items():
        state = {"closed": "ok", "half_open": "degraded"}.get(breaker.get("state"), "degraded")
        rows.append((f"Provider {name}", state,
                     _details(breaker, ("state", "last_error", "retry_after_seconds"))))
    for name, disk in report["disk"].items():
        fraction = disk.get("free_fraction")
        free = f"{fraction:.0%} free" if isinstance(fraction, int | float) else ""
        rows.append((f"Disk {name}", "ok" if disk.get("ok") else "degraded",
                     " · ".join(p for p in (str(disk.get("path", "")), free) if p)))
    for model in report["embedded_models"]:
        rows.append((f"Model {model.get('provider')}", "ok" if model.get("loaded") else "off",
                     f"{model.get('model')} ({'loaded' if model.get('loaded') else 'not loaded'})"))
    for model in report["voice_models"]:
        rows.append((f"Voice {model.get('group')}", "ok",
                     f"{model.get('name')} ({model.get('kind')})"))
    return rows


def _details(part: dict[str, Any], keys: tuple[str, ...]) -> str:
    def shown(value: Any) -> str:
        if isinstance(value, dict):
            return ", ".join(f"{k} {v}" for k, v in value.items())
        return str(value)

    return " · ".join(f"{k}: {shown(part[k])}" for k in keys
                      if part.get(k) not in (None, "", {}))
