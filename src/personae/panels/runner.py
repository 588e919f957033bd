"""The work of one job: classify one segment, or have one persona score one segment.

Both queues (in-process and arq) call these same functions, so they behave alike.
A model answer is parsed and checked against the schema; an invalid one is asked
for again, a bounded number of times. What still fails is stored as *failed* with
its reason: nothing here ever makes up a label or a score.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from typing import Any

from personae.conversations.versions import PreparedPersonas
from personae.errors import PersonaeError
from personae.panels.prompts import (
    adherence_messages,
    classification_messages,
    scoring_messages,
)
from personae.panels.records import EvaluationRecord, SegmentRow
from personae.panels.rubric import (
    ADHERENCE_SCHEMA,
    CLASSIFICATION_SCHEMA,
    result_schema,
    schema_errors,
)
from personae.panels.store import PanelStore
from personae.personas.schema import ModelSettings
from personae.providers.base import ChatMessage, complete
from personae.providers.registry import ProviderRegistry

log = logging.getLogger(__name__)
SPEC_CACHE = 256


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
class Answer:
    """A schema-valid answer, or why there is none after every attempt."""

    value: dict[str, Any] | None
    attempts: int
    error: str | None = None


class PanelRunner:
    def __init__(self, store: PanelStore, versions: PreparedPersonas,
                 providers: ProviderRegistry, *, max_attempts: int = 3) -> None:
        self.store = store
        self.versions = versions
        self.providers = providers
        self.max_attempts = max_attempts
        self._specs: dict[str, EvaluationRecord] = {}

    async def classify(self, evaluation_id: str, index: int) -> list[CellJob]:
        """Label the segment, then hand back its cells, which are now ready to score."""
        evaluation = await self.store.evaluation(evaluation_id)
        segment = await self.store.segment(evaluation_id, index)
        if evaluation is None or segment is None or evaluation.status != "running":
            return []
        if segment.status == "pending":
            answer = await self._ask(classification_messages(segment), CLASSIFICATION_SCHEMA,
                                     None)
            value = answer.value or {}
            await self.store.classified(evaluation_id, index, topic=value.get("topic"),
                                        tone=value.get("tone"), error=answer.error,
                                        attempts=answer.attempts)
        return [CellJob(evaluation_id, index, cell.persona_id, cell.persona_version)
                for cell in await self.store.cells(evaluation_id, index)
                if cell.status in ("pending", "running")]

    async def score(self, job: CellJob) -> str:
        """Score one cell and store its one result; returns the cell's final status."""
        segment = await self.store.start_cell(job.evaluation_id, job.segment_index,
                                              job.persona_id)
        if segment is None:
            return "skipped"  # finished already (a replayed job), or cancelled
        evaluation = await self._evaluation(job.evaluation_id)
        if evaluation is None:
            return "gone"
        return await self._score(evaluation, segment, job)

    async def _evaluation(self, evaluation_id: str) -> EvaluationRecord | None:
        """The evaluation's frozen spec (rubric, options), read once per process."""
        found = self._specs.get(evaluation_id)
        if found is None:
            found = await self.store.evaluation(evaluation_id)
            if found is not None:
                self._specs[evaluation_id] = found
                while len(self._specs) > SPEC_CACHE:
                    self._specs.pop(next(iter(self._specs)))
        return found

    async def _score(self, evaluation: EvaluationRecord, segment: SegmentRow,
                     job: CellJob) -> str:
        key = (job.evaluation_id, job.segment_index, job.persona_id)
        try:
            prepared = await self.versions.get(job.persona_id, job.persona_version)
        except PersonaeError as exc:
            await self.store.save_cell(*key, status="failed", attempts=0, error=exc.message)
            return "failed"
        rubric = evaluation.rubric
        answer = await self._ask(scoring_messages(prepared.system_prompt, rubric, segment),
                                 result_schema(rubric), prepared.definition.model)
        if answer.value is None:
            await self.store.save_cell(*key, status="failed", attempts=answer.attempts,
                                       error=answer.error)
            return "failed"
        value = dict(answer.value)
        score, opinion = value.pop("score"), value.pop("opinion")
        adherence = None
        if evaluation.spec.get("adherence"):
            adherence = await self._adherence(prepared.system_prompt, opinion,
                                              prepared.definition.model)
        await self.store.save_cell(*key, status="done", attempts=answer.attempts, score=score,
                                   opinion=opinion, fields=value, adherence=adherence)
        return "done"

    async def _adherence(self, persona_prompt: str, opinion: str,
                         model: ModelSettings | None) -> dict[str, Any]:
        """The in-character check, or its failure: recorded either way, never guessed."""
        answer = await self._ask(adherence_messages(persona_prompt, opinion),
                                 ADHERENCE_SCHEMA, model)
        if answer.value is None:
            return {"status": "failed", "error": answer.error, "attempts": answer.attempts}
        return {"status": "done", **answer.value}

    async def _ask(self, messages: list[ChatMessage], schema: dict[str, Any],
                   model: ModelSettings | None) -> Answer:
        """Ask for JSON matching ``schema``; retry invalid answers, up to the limit."""
        llm, settings = self.providers.resolve(model)
        settings = replace(settings, json_schema=schema, stream=False)
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


def parse_answer(text: str, schema: dict[str, Any]) -> tuple[dict[str, Any] | None, str]:
    """The answer as JSON if it matches ``schema``, else ``None`` and the reason."""
    try:
        value = json.loads(text)
    except ValueError as exc:
        return None, f"the model's answer is not JSON ({exc.msg}): {text[:200]!r}"
    problems = schema_errors(schema, value)
    if problems:
        return None, "the model's answer does not match the schema: " + "; ".join(problems[:5])
    return value, ""
