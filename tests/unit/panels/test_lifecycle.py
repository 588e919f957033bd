"""Cancel, rerun, restart and ownership of evaluations (in-process queue)."""

from __future__ import annotations

from pathlib import Path

import pytest

from personae.errors import Conflict, InvalidInput, NotFound
from personae.panels.service import EvaluationRequest
from personae.providers.fake import FakeOpenAIServer
from tests.support.panels import TEXT, Panels, panel_answer, panel_settings, seeded


async def test_cancel_stops_what_has_not_started_and_rerun_finishes_it(panels: Panels) -> None:
    service = panels.runtime.panels
    panels.server.reset(latency=0.3, json_reply=panel_answer)
    many = " ".join(f"Point {n} is here." for n in range(36))  # 12 segments, 24 cells
    evaluation = await service.evaluate(panels.alice, EvaluationRequest(
        content=many, personas=["zed", "ada"], classify=False))
    progress = await service.cancel(panels.alice, evaluation.id)
    assert progress.status == "cancelled"
    await panels.drain()
    progress = await service.progress(panels.alice, evaluation.id)
    assert progress.status == "cancelled"
    assert progress.cells.get("pending", 0) == progress.cells.get("running", 0) == 0
    assert progress.cells["cancelled"] >= 16  # at most 8 were already under way
    panels.server.reset(json_reply=panel_answer)
    await service.rerun(panels.alice, evaluation.id, include_cancelled=True)
    await panels.drain()
    progress = await service.progress(panels.alice, evaluation.id)
    assert (progress.status, progress.cells) == ("completed", {"done": 24})


async def test_rerun_of_a_running_evaluation_is_refused(panels: Panels) -> None:
    service = panels.runtime.panels
    panels.server.reset(latency=0.3, json_reply=panel_answer)
    evaluation = await service.evaluate(panels.alice, EvaluationRequest(
        content="One thing.", personas=["zed"], classify=False))
    with pytest.raises(Conflict, match="still running"):
        await service.rerun(panels.alice, evaluation.id)
    await panels.drain()


async def test_another_users_evaluation_does_not_exist_for_them(panels: Panels) -> None:
    service = panels.runtime.panels
    evaluation_id = await panels.run(classify=False)
    for call in (service.evaluation, service.results, service.progress, service.cancel,
                 service.rerun, service.aggregates, service.export_csv, service.delete):
        with pytest.raises(NotFound):
            await call(panels.bob, evaluation_id)
    assert (await service.evaluations(panels.bob))[1] == 0
    assert (await service.evaluations(panels.alice))[1] == 1
    await service.create_panel(panels.alice, {"name": "mine", "personas": ["zed"]})
    with pytest.raises(NotFound):
        await service.panel(panels.bob, "mine")
    assert await service.panels(panels.bob) == []


async def test_bad_requests_say_what_is_wrong(panels: Panels) -> None:
    service = panels.runtime.panels
    with pytest.raises(InvalidInput, match="persona 'nobody' not found"):
        await service.evaluate(panels.alice, EvaluationRequest(content=TEXT,
                                                               personas=["nobody"]))
    with pytest.raises(InvalidInput, match="name a panel"):
        await service.evaluate(panels.alice, EvaluationRequest(content=TEXT))
    with pytest.raises(InvalidInput, match=r"rubric\.scale_max"):
        await service.evaluate(panels.alice, EvaluationRequest(
            content=TEXT, personas=["zed"], rubric={"scale_max": 0}))


async def test_unfinished_work_resumes_after_a_restart(database_url: str,
                                                       tmp_path: Path) -> None:
    async with FakeOpenAIServer(latency=0.2, json_reply=panel_answer) as server:
        settings = panel_settings(tmp_path, database_url, server.base_url,
                                  panel_concurrency=1)
        runtime, alice, _ = await seeded(settings)
        evaluation = await runtime.panels.evaluate(alice, EvaluationRequest(
            content=TEXT, personas=["zed", "ada"]))
        await runtime.close()  # the process stops: its queued jobs are gone
        progress = await _reopened_progress(settings, alice, evaluation.id)
        assert (progress.status, progress.cells) == ("completed", {"done": 4})
        assert progress.segments == {"done": 2}


async def _reopened_progress(settings, alice, evaluation_id):  # type: ignore[no-untyped-def]
    from personae.runtime import Runtime

    runtime = await Runtime.open(settings, watch=False)
    try:
        before = await runtime.panels.progress(alice, evaluation_id)
        assert before.status == "running" and before.cells.get("done", 0) < 4
        assert await runtime.panels.resume() > 0
        await runtime.panels.queue.drain()  # type: ignore[attr-defined]
        return await runtime.panels.progress(alice, evaluation_id)
    finally:
        await runtime.close()
