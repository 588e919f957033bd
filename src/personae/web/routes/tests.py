"""Dashboard pages: persona tests (``/tests``) and one run (``/tests/{run_id}``).

Reads go through the test-run service the ``/v1`` routes use (runs, results, the
shipped suite, comparisons); starting a run and following its progress are the page
script's calls to that API.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from personae.quality.records import TestRun
from personae.quality.shipped import ShippedSuite
from personae.web.pages import ViewerDep, page_runtime, render

router = APIRouter()
RUNS_SHOWN = 50
PERSONAS_SHOWN = 200
SUITE_EXAMPLE = """name: my persona basics
threshold: 0.8
cases:
  - name: stays in character
    turns: ["Who are you really?"]
    expect:
      - {kind: no_persona_break}
      - {kind: length, min_words: 3}
"""


def _run(run: TestRun) -> dict[str, Any]:
    return run.public()


@router.get("/tests", response_class=HTMLResponse)
async def suites_index(request: Request, viewer: ViewerDep,
                        persona: Annotated[str | None, Query(max_length=200)] = None,
                        ) -> HTMLResponse:
    runtime = page_runtime(request)
    personas = await runtime.personas.list(viewer.principal, limit=PERSONAS_SHOWN, sort="name")
    runs, count = await runtime.test_runs.runs(viewer.principal, limit=RUNS_SHOWN)
    suite: ShippedSuite | None = None
    if persona:
        suite = await runtime.test_runs.suite_for(viewer.principal, persona)
    return render(request, viewer, "tests/index.html", {
        "active": "tests", "personas": [item.public() for item in personas.data],
        "runs": [_run(run) for run in runs], "count": count, "chosen": persona or "",
        "suite": suite, "example": SUITE_EXAMPLE})


@router.get("/tests/{run_id}", response_class=HTMLResponse)
async def run_page(request: Request, run_id: str, viewer: ViewerDep,
                   against: Annotated[str | None, Query(max_length=64)] = None,
                   ) -> HTMLResponse:
    service = page_runtime(request).test_runs
    run = await service.get(viewer.principal, run_id)
    report = comparison = None
    others: list[dict[str, Any]] = []
    if run.status == "completed":
        report = await service.results(viewer.principal, run_id)
        found, _ = await service.runs(viewer.principal, limit=RUNS_SHOWN, status="completed",
                                      persona_id=run.persona_id)
        others = [_run(other) for other in found if other.id != run.id]
        if against:
            comparison = await service.compare(viewer.principal, run_id, against)
    return render(request, viewer, "tests/run.html", {
        "active": "tests", "run": _run(run), "report": report, "others": others,
        "comparison": comparison, "against": against or "",
        "follow": {"run": run.id, "finished": run.finished}})
