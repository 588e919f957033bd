"""The work of one job: classify one segment, or have one persona score one segment.

Both queues (in-process and arq) call these same functions, so they behave alike.
A model answer is parsed and checked against the schema; an invalid one is asked
for again, a bounded number of times. What still fails is stored as *failed* with
its reason: nothing here ever makes up a label or a score.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from cachetools import LRUCache

from personae.errors import PersonaeError
from personae.panels.prompts import (
    adherence_messages,
    classification_messages,
    scoring_messages,
)
from personae.panels.records import EvaluationRecord, SegmentRow
from personae.panels.rubric import ADHERENCE, CLASSIFICATION, AnswerSchema, result_schema
from personae.panels.store import PanelStore
from personae.personas.prepared import PreparedPersonas
from personae.providers.base import ChatMessage, ModelChoice
from personae.providers.registry import ProviderRegistry
from personae.providers.streams import complete

log = logging.getLogger(__name__)
EVALUATION_CACHE = 256


@dataclass(frozen=True, slots=True)
class CellJob:
    """One persona x segment: its deterministic job id names every part of it."""

    evaluation_id: str
    segment_index: int
    persona_id: str
    persona_version: int

    @property
    def job_id(self) -> str:
        return (f"score:{self.evaluation_id}:{self.segment_index}:{self.persona_id}:"
                f"{self.persona_version}")


def classify_job_id(evaluation_id: str, index: int) -> str:
    return f"classify:{evaluation_id}:{index}"


@dataclass(frozen=True, slots=True)
class PreparedEvaluation:
    """What every cell of one evaluation shares, worked out once per process: the
    record (its spec validated on read) and the answer schema built from its rubric."""

    record: EvaluationRecord
    answer: AnswerSchema


@dataclass(frozen=True, slots=True)
class Answer:
    """A schema-valid answer, or why there is none after every attempt."""

    value: dict[str, Any] | None
    attempts: int
    error: str | None = None


class PanelRunner:
    def __init__(self, store: PanelStore, prepared: PreparedPersonas,
                 providers: ProviderRegistry, *, max_attempts: int = 3,
                 on_failed: Callable[[str], None] | None = None) -> None:
        self.store = store
        self.on_failed = on_failed  # told "panel" when a cell fails (metrics)
        self.prepared = prepared
        self.providers = providers
        self.max_attempts = max_attempts
        self._evaluations: LRUCache[str, PreparedEvaluation] = LRUCache(EVALUATION_CACHE)

    async def classify(self, evaluation_id: str, index: int) -> list[CellJob]:
        """Label the segment, then hand back its cells, which are now ready to score."""
        evaluation = await self.store.evaluation(evaluation_id)
        segment = await self.store.segment(evaluation_id, index)
        if evaluation is None or segment is None or evaluation.status != "running":
            return []
        if segment.status == "pending":
            answer = await self._ask(classification_messages(segment), CLASSIFICATION, None)
            value = answer.value or {}
            await self.store.classified(evaluation_id, index, topic=value.get("topic"),
                                        tone=value.get("tone"), error=answer.error,
                                        attempts=answer.attempts)
        cells = [CellJob(evaluation_id, index, cell.persona_id, cell.persona_version)
                 for cell in await self.store.cells(evaluation_id, index)
                 if cell.status in ("pending", "running")]
        if not cells:  # its cells were all finished already (a replayed job)
            await self.store.finish_if_done(evaluation_id)
        return cells

    async def score(self, job: CellJob) -> str:
        """Score one cell and store its one result; returns the cell's final status."""
        segment = await self.store.start_cell(job.evaluation_id, job.segment_index,
                                              job.persona_id)
        if segment is None:
            return "skipped"  # finished already (a replayed job), or cancelled
        evaluation = await self._prepare(job.evaluation_id)
        if evaluation is None:
            return "gone"
        ids = {"evaluation_id": job.evaluation_id, "panel_id": evaluation.record.panel_id,
               "segment": job.segment_index, "persona_id": job.persona_id,
               "persona_version": job.persona_version}
        log.info("panel.cell.started", extra=ids)
        status = await self._score(evaluation, segment, job)
        log.info("panel.cell.failed" if status == "failed" else "panel.cell.finished",
                 extra={**ids, "status": status})
        if status == "failed" and self.on_failed is not None:
            self.on_failed("panel")
        return status

    async def _prepare(self, evaluation_id: str) -> PreparedEvaluation | None:
        """The evaluation and its answer schema, read and built once per process."""
        found = self._evaluations.get(evaluation_id)
        if found is None:
            record = await self.store.evaluation(evaluation_id)
            if record is None:
                return None
            found = PreparedEvaluation(record, AnswerSchema(result_schema(record.spec.rubric)))
            self._evaluations[evaluation_id] = found
        return found

    async def _score(self, evaluation: PreparedEvaluation, segment: SegmentRow,
                     job: CellJob) -> str:
        key = (job.evaluation_id, job.segment_index, job.persona_id)
        try:
            prepared = await self.prepared.get(job.persona_id, job.persona_version)
        except PersonaeError as exc:
            await self.store.save_cell(*key, status="failed", attempts=0, error=exc.message)
            return "failed"
        spec = evaluation.record.spec
        answer = await self._ask(scoring_messages(prepared.system_prompt, spec.rubric, segment),
                                 evaluation.answer, prepared.model)
        if answer.value is None:
            await self.store.save_cell(*key, status="failed", attempts=answer.attempts,
                                       error=answer.error)
            return "failed"
        value = dict(answer.value)
        score, opinion = value.pop("score"), value.pop("opinion")
        adherence = None
        if spec.adherence:
            adherence = await self._adherence(prepared.system_prompt, opinion,
                                              prepared.model)
        await self.store.save_cell(*key, status="done", attempts=answer.attempts, score=score,
                                   opinion=opinion, fields=value, adherence=adherence)
        return "done"

    async def _adherence(self, persona_prompt: str, opinion: str,
                         model: ModelChoice | None) -> dict[str, Any]:
        """The in-character check, or its failure: recorded either way, never guessed."""
        answer = await self._ask(adherence_messages(persona_prompt, opinion), ADHERENCE, model)
        if answer.value is None:
            return {"status": "failed", "error": answer.error, "attempts": answer.attempts}
        return {"status": "done", **answer.value}

    async def _ask(self, messages: list[ChatMessage], schema: AnswerSchema,
                   model: ModelChoice | None) -> Answer:
        """Ask for JSON matching ``schema``; retry invalid answers, up to the limit."""
        llm, settings = self.providers.resolve(model)
        settings = replace(settings, json_schema=schema.schema, stream=False)
        error = "no attempt made"
        for attempt in range(1, self.max_attempts + 1):
            try:
                reply = await complete(llm, messages, settings)
            except PersonaeError as exc:  # the provider layer has already retried
                return Answer(None, attempt, exc.message)
            value, error = parse_answer(reply.text, schema)
            if value is not None:
                return Answer(value, attempt)
            log.info("invalid model answer (attempt %d): %s", attempt, error)
        return Answer(None, self.max_attempts, error)


def parse_answer(text: str, schema: AnswerSchema) -> tuple[dict[str, Any] | None, str]:
    """The answer as JSON if it matches ``schema``, else ``None`` and the reason."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, f"the model's answer is not JSON ({exc.msg}): {text[:200]!r}"
    problems = schema.errors(value)
    if problems:
        return None, "the model's answer does not match the schema: " + "; ".join(problems[:5])
    return value, ""
