"""Scoring through the real runner and store: valid results, failures kept as failures."""

from __future__ import annotations

import json
from typing import Any

from personae.panels.records import PanelSpec
from personae.panels.runner import CellJob
from personae.panels.service import EvaluationRequest
from tests.support.panels import SCORES, Panels, panel_answer


async def test_every_persona_scores_every_segment_with_its_pinned_version(
        panels: Panels) -> None:
    evaluation_id = await panels.run()
    results = await panels.runtime.panels.results(panels.alice, evaluation_id)
    assert results["status"] == "completed"
    assert len(results["segments"]) == 2
    for segment in results["segments"]:
        assert segment["classification"] == {"status": "done", "topic": "money",
                                              "tone": "casual", "error": None}
        cards = {card["persona_id"]: card for card in segment["cards"]}
        assert set(cards) == {"zed", "ada"}
        assert cards["zed"]["score"] == SCORES["Zed"] and cards["ada"]["score"] == SCORES["Ada"]
        assert all(card["persona_version"] == 1 and card["status"] == "done"
                   for card in cards.values())
    persona_stats = results["aggregates"]["personas"]
    assert persona_stats["zed"]["mean"] == 2 and persona_stats["zed"]["distribution"] == {"2": 2}
    assert results["aggregates"]["topics"]["money"]["by_persona"] == {"ada": 4.0, "zed": 2.0}


async def test_the_persona_prompt_and_the_rubric_shape_the_request(panels: Panels) -> None:
    await panels.run(classify=False)
    scoring = [r for r in panels.server.requests if "Zed" in r.messages[0]["content"]]
    assert scoring, "zed was never asked"
    body = scoring[0].body
    assert body["messages"][0]["content"].startswith("You are Zed")
    assert "Score from 1 to 5" in body["messages"][1]["content"]
    schema = body["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["score"] == {"type": "integer", "minimum": 1, "maximum": 5}
    assert schema["required"] == ["score", "opinion"]
    assert body["stream"] is False


async def test_extra_rubric_fields_are_required_and_stored(panels: Panels) -> None:
    rubric = {"extra_fields": {"would_share": {"type": "boolean"}}}

    def answer(body: dict[str, Any]) -> dict[str, Any]:
        return {**panel_answer(body), "would_share": True}

    evaluation_id = await panels.run(answer, rubric=rubric, classify=False)
    cells = await panels.runtime.panels.store.cells(evaluation_id)
    assert {cell.status for cell in cells} == {"done"}
    assert all(cell.fields == {"would_share": True} for cell in cells)


async def test_invalid_answers_are_retried_then_accepted(panels: Panels) -> None:
    asked: list[int] = []

    def answer(body: dict[str, Any]) -> Any:
        asked.append(1)
        return {"score": 9, "opinion": "too high"} if len(asked) % 2 else panel_answer(body)

    evaluation_id = await panels.run(answer, classify=False, personas=["zed"],
                                     content="One. Two. Three.")
    [cell] = await panels.runtime.panels.store.cells(evaluation_id)
    assert (cell.status, cell.score, cell.attempts) == ("done", 2, 2)


async def test_answers_that_stay_invalid_are_failed_never_invented(panels: Panels) -> None:
    evaluation_id = await panels.run(lambda body: {"score": 99, "opinion": "x"}, classify=False)
    cells = await panels.runtime.panels.store.cells(evaluation_id)
    assert {cell.status for cell in cells} == {"failed"}
    assert all(cell.score is None and cell.opinion is None for cell in cells)
    assert all(cell.attempts == 3 and "99 is greater than the maximum of 5" in (cell.error or "")
               for cell in cells)
    stats = (await panels.runtime.panels.aggregates(panels.alice, evaluation_id))["personas"]
    assert stats["zed"] == {**stats["zed"], "mean": None, "scored": 0, "failed": 2}
    progress = await panels.runtime.panels.progress(panels.alice, evaluation_id)
    assert progress.status == "completed" and progress.cells == {"failed": 4}


async def test_text_that_is_not_json_is_a_failure_with_the_reason(panels: Panels) -> None:
    evaluation_id = await panels.run(lambda body: "not json at all", classify=False,
                                     personas=["ada"])
    cells = await panels.runtime.panels.store.cells(evaluation_id)
    assert all(cell.status == "failed" for cell in cells)
    assert all("does not match the schema" in (cell.error or "") for cell in cells)


async def test_provider_failures_fail_the_cell_and_classification(panels: Panels) -> None:
    panels.server.fail_always(500, "upstream exploded")
    evaluation_id = await panels.run()
    store = panels.runtime.panels.store
    segments = await store.segments(evaluation_id)
    assert all(s.status == "failed" and s.topic is None for s in segments)
    assert all("upstream exploded" in (s.error or "") for s in segments)
    cells = await store.cells(evaluation_id)
    assert all(c.status == "failed" and c.score is None for c in cells)
    # Each names the provider and the cause (once the breaker opens, the cause is that).
    assert all((c.error or "").startswith("fake: ") for c in cells)
    assert all("upstream exploded" in (c.error or "") or "circuit open" in (c.error or "")
               for c in cells)


async def test_rerun_of_failed_cells_overwrites_them_in_place(panels: Panels) -> None:
    def zed_fails(body: dict[str, Any]) -> Any:
        if "Zed" in body["messages"][0]["content"]:
            return {"score": 0, "opinion": "x"}
        return panel_answer(body)

    evaluation_id = await panels.run(zed_fails, classify=False)
    store = panels.runtime.panels.store
    before = {(c.segment_index, c.persona_id): c for c in await store.cells(evaluation_id)}
    panels.server.json_reply = panel_answer
    await panels.runtime.panels.rerun(panels.alice, evaluation_id)
    await panels.drain()
    after = await store.cells(evaluation_id)
    assert len(after) == 4 and {c.status for c in after} == {"done"}
    for cell in after:
        if cell.persona_id == "ada":
            assert cell == before[(cell.segment_index, "ada")]  # untouched
        else:
            assert before[(cell.segment_index, "zed")].status == "failed"
            assert cell.score == 2
    progress = await panels.runtime.panels.progress(panels.alice, evaluation_id)
    assert progress.status == "completed"


async def test_rerun_answers_with_the_reopened_state_however_fast_the_workers(
        panels: Panels) -> None:
    def zed_fails(body: dict[str, Any]) -> Any:
        if "Zed" in body["messages"][0]["content"]:
            return {"score": 0, "opinion": "x"}
        return panel_answer(body)

    evaluation_id = await panels.run(zed_fails, classify=False)
    panels.server.json_reply = panel_answer
    queue = panels.runtime.panels.queue
    enqueue = queue.score

    async def score_at_once(job: Any) -> None:  # a worker that finishes before we answer
        await enqueue(job)
        await panels.drain()

    queue.score = score_at_once  # type: ignore[method-assign]
    progress = await panels.runtime.panels.rerun(panels.alice, evaluation_id)
    assert progress.status == "running"
    assert progress.cells.get("failed", 0) == 0 and progress.cells["pending"] == 2
    final = await panels.runtime.panels.progress(panels.alice, evaluation_id)
    assert (final.status, final.cells) == ("completed", {"done": 4})


async def test_a_replayed_job_finds_its_cell_done_and_changes_nothing(panels: Panels) -> None:
    evaluation_id = await panels.run(classify=False, personas=["zed"], content="Only one.")
    store = panels.runtime.panels.store
    [cell] = await store.cells(evaluation_id)
    calls = panels.server.chat_count
    job = CellJob(evaluation_id, 0, "zed", 1)
    assert job.job_id == f"score:{evaluation_id}:0:zed:1"
    assert await panels.runtime.panel_runner.score(job) == "skipped"
    assert panels.server.chat_count == calls
    assert await store.cells(evaluation_id) == [cell]


async def test_versions_are_pinned_when_the_evaluation_starts(panels: Panels) -> None:
    admin = await panels.runtime.auth.local_admin()
    panels.server.latency = 0.2
    evaluation = await panels.runtime.panels.evaluate(
        panels.alice, EvaluationRequest(content="Hello there.", personas=["zed"],
                                        classify=False))
    await panels.runtime.personas.patch(admin, "zed", {"system_prompt": "You are Zed v2."},
                                        base_version=1)
    panels.server.json_reply = panel_answer
    await panels.drain()
    [cell] = await panels.runtime.panels.store.cells(evaluation.id)
    assert (cell.persona_version, cell.status) == (1, "done")
    prompts = [r.messages[0]["content"] for r in panels.server.requests]
    assert not any("v2" in prompt for prompt in prompts)


async def test_adherence_is_checked_and_kept_next_to_the_score(panels: Panels) -> None:
    evaluation_id = await panels.run(classify=False, adherence=True, personas=["ada"])
    cells = await panels.runtime.panels.store.cells(evaluation_id)
    assert all(c.adherence == {"status": "done", "in_character": True, "score": 5,
                               "reason": "sounds right"} for c in cells)


async def test_saved_panel_drives_an_evaluation(panels: Panels) -> None:
    spec = {"name": "listeners", "personas": ["ada", "zed"],
            "rubric": {"scale_min": 1, "scale_max": 10, "anchors": {"1": "bad", "10": "great"}}}
    panel = await panels.runtime.panels.create_panel(panels.alice, spec)
    assert isinstance(panel.spec, PanelSpec) and panel.spec.rubric.scale_max == 10
    evaluation_id = await panels.run(panel="listeners", personas=[])
    evaluation = await panels.runtime.panels.evaluation(panels.alice, evaluation_id)
    assert [p.id for p in evaluation.spec.personas] == ["ada", "zed"]
    assert evaluation.spec.rubric.scale_max == 10
    assert evaluation.panel_id == panel.id
    request = next(r for r in panels.server.requests if "Ada" in r.messages[0]["content"])
    schema = request.body["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["score"]["maximum"] == 10
    assert json.loads(json.dumps(evaluation.public()))["rubric"]["scale_max"] == 10
