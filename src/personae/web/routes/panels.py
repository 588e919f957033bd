"""Dashboard pages: panels (``/panels``) and one evaluation (``/panels/{id}``).

Both pages only read, through the same panel service calls as ``/v1/evaluations``;
starting, cancelling and rerunning go through that API from the page's script.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from personae.api.routes.evaluations import MAX_UPLOAD_BYTES
from personae.web.pages import ViewerDep, page_runtime, render

router = APIRouter()

MAX_PERSONAS_SHOWN = 200  # the persona listing's largest page
RECENT_EVALUATIONS = 50
FORMATS = (("", "Detect"), ("text", "Plain text"), ("srt", "SubRip (SRT)"),
           ("vtt", "WebVTT"), ("json", "JSON segments"))
# The aggregate chart's geometry (SVG user units; the SVG scales to its box).
CHART_LABEL, CHART_BAR, CHART_ROW = 210, 330, 30


@dataclass(frozen=True)
class Bar:
    """One persona's mean score as a bar of the aggregate chart."""

    name: str
    mean: float | None
    width: float
    y: int


def chart_bars(aggregates: dict[str, Any], rubric: dict[str, Any]) -> list[Bar]:
    """Bar lengths in proportion to each mean on the rubric's scale."""
    low, high = rubric["scale_min"], rubric["scale_max"]
    bars = []
    for row, stats in enumerate(aggregates["personas"].values()):
        mean = stats["mean"]
        share = 0.0 if mean is None else (mean - low) / (high - low)
        bars.append(Bar(stats["name"], mean, round(CHART_BAR * max(0.0, min(1.0, share)), 1),
                        row * CHART_ROW))
    return bars


def clock(ms: int | None) -> str:
    """A subtitle time as ``m:ss.s`` (``h:mm:ss.s`` past an hour)."""
    if ms is None:
        return ""
    minutes, seconds = divmod(ms / 1000, 60)
    hours, minutes = divmod(int(minutes), 60)
    if hours:
        return f"{hours}:{minutes:02d}:{seconds:04.1f}"
    return f"{minutes}:{seconds:04.1f}"


def upload_limit(request: Request) -> int:
    """The largest file the API takes: its upload setting, or the content's own bound."""
    return min(page_runtime(request).settings.max_upload_bytes, MAX_UPLOAD_BYTES)


@router.get("/panels", response_class=HTMLResponse)
async def panels_page(request: Request, viewer: ViewerDep) -> HTMLResponse:
    """The form to start an evaluation, and the viewer's earlier evaluations."""
    runtime = page_runtime(request)
    personas = await runtime.personas.list(viewer.principal, limit=MAX_PERSONAS_SHOWN)
    saved = await runtime.panels.panels(viewer.principal)
    evaluations, count = await runtime.panels.evaluations(viewer.principal,
                                                          limit=RECENT_EVALUATIONS)
    return render(request, viewer, "panels/index.html", {
        "active": "panels", "personas": personas.data, "persona_count": personas.count,
        "saved_panels": saved, "evaluations": evaluations, "evaluation_count": count,
        "formats": FORMATS, "upload_limit": upload_limit(request)})


@router.get("/panels/{evaluation_id}", response_class=HTMLResponse)
async def evaluation_page(evaluation_id: str, request: Request,
                          viewer: ViewerDep) -> HTMLResponse:
    """Progress while running; then every card, the aggregates and the exports.
    Another user's evaluation is a 404 page, as the API answers."""
    results = await page_runtime(request).panels.results(viewer.principal, evaluation_id)
    bars = chart_bars(results["aggregates"], results["rubric"])
    return render(request, viewer, "panels/evaluation.html", {
        "active": "panels", "evaluation": results, "progress": results["progress"],
        "bars": bars, "chart": {"label": CHART_LABEL, "bar": CHART_BAR, "row": CHART_ROW,
                                "height": max(len(bars), 1) * CHART_ROW},
        "clock": clock})
