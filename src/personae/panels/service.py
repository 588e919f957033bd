"""Panels and evaluations for one caller: access rules, pinning, fan-out, results.

A panel and an evaluation belong to the user who made it; anyone else gets 404.
An evaluation pins each persona's current version when it is created, splits the
content into segments, writes one cell per persona x segment, and enqueues the work.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from personae.auth.principal import Principal
from personae.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    QueueUnavailable,
    ValidationFailed,
)
from personae.panels import report
from personae.panels.content import ContentFormat, SplitRule, detect_format, parse_content
from personae.panels.queue import JobQueue, LocalQueue, requeue
from personae.panels.records import (
    EvaluationRecord,
    EvaluationSpec,
    PanelRecord,
    PanelSpec,
    PinnedPersona,
    Progress,
)
from personae.panels.rubric import Rubric
from personae.panels.runner import CellJob
from personae.panels.store import PanelStore
from personae.personas.prepared import PreparedPersonas
from personae.personas.validation import issues_from


@dataclass(frozen=True)
class EvaluationRequest:
    """What to evaluate and with whom: a panel, or personas with an optional rubric."""

    content: str
    content_format: ContentFormat | None = None
    filename: str | None = None
    title: str | None = None
    panel: str | None = None
    personas: Sequence[str] = ()
    rubric: Rubric | dict[str, Any] | None = None
    classify: bool | None = None
    adherence: bool | None = None
    split: SplitRule | None = None
    language: str = "en"


def parse_panel(raw: Any) -> PanelSpec:
    """A panel spec from JSON; one validated already (an API body) is taken as it is."""
    if isinstance(raw, PanelSpec):
        return raw
    try:
        return PanelSpec.model_validate(raw)
    except ValidationError as exc:
        raise ValidationFailed(issues_from(exc)) from None


def parse_rubric(raw: Any) -> Rubric:
    """A rubric from JSON; one validated already (an API body) is taken as it is."""
    if isinstance(raw, Rubric):
        return raw
    try:
        return Rubric.model_validate(raw)
    except ValidationError as exc:
        raise ValidationFailed(issues_from(exc, ("rubric",))) from None


class PanelService:
    def __init__(self, store: PanelStore, prepared: PreparedPersonas, queue: JobQueue) -> None:
        self.store = store
        self.prepared = prepared
        self.queue = queue

    async def resume(self) -> int:
        """Requeue unfinished in-process work (arq keeps its own queue in Redis)."""
        if isinstance(self.queue, LocalQueue):
            return await self.queue.resume()
        return 0

    # -- panels ------------------------------------------------------------------------

    async def create_panel(self, principal: Principal, raw: Any) -> PanelRecord:
        spec = parse_panel(raw)
        await self._pin(principal, spec.personas)
        return await self.store.create_panel(principal.user_id, spec)

    async def panel(self, principal: Principal, id_or_name: str) -> PanelRecord:
        found = await self.store.panel(principal.user_id, id_or_name)
        if found is None:
            raise NotFound(f"panel '{id_or_name}' not found")
        return found

    async def panels(self, principal: Principal) -> list[PanelRecord]:
        return await self.store.panels(principal.user_id)

    async def replace_panel(self, principal: Principal, id_or_name: str,
                            raw: Any) -> PanelRecord:
        current = await self.panel(principal, id_or_name)
        spec = parse_panel(raw)
        await self._pin(principal, spec.personas)
        updated = await self.store.update_panel(principal.user_id, current.id, spec)
        if updated is None:
            raise NotFound(f"panel '{id_or_name}' not found")
        return updated

    async def delete_panel(self, principal: Principal, id_or_name: str) -> None:
        current = await self.panel(principal, id_or_name)
        await self.store.delete_panel(principal.user_id, current.id)

    # -- evaluations ---------------------------------------------------------------------

    async def evaluate(self, principal: Principal,
                       request: EvaluationRequest) -> EvaluationRecord:
        """Create an evaluation and enqueue its jobs; returns at once."""
        spec, panel_id = await self._spec(principal, request)
        content_format = (request.content_format
                          or detect_format(request.content, request.filename))
        parts = parse_content(request.content, content_format, rule=request.split,
                              language=request.language, filename=request.filename)
        count = f"{len(parts)} segment" + ("s" if len(parts) != 1 else "")
        title = (request.title or request.filename or count)[:200]
        evaluation = await self.store.create_evaluation(
            principal.user_id, panel_id, title, content_format, spec, parts)
        try:
            await self._enqueue_all(evaluation, [p.index for p in parts])
        except QueueUnavailable:  # no half-made evaluation that nothing will ever run
            await self.store.delete_evaluation(principal.user_id, evaluation.id)
            raise
        return evaluation

    async def _spec(self, principal: Principal,
                    request: EvaluationRequest) -> tuple[EvaluationSpec, str | None]:
        panel: PanelRecord | None = None
        if request.panel:
            if request.personas:
                raise InvalidInput("give a panel or a list of personas, not both")
            panel = await self.panel(principal, request.panel)
        elif not request.personas:
            raise InvalidInput("name a panel, or list the personas to evaluate with")
        persona_ids = panel.spec.personas if panel else list(dict.fromkeys(request.personas))
        rubric = (parse_rubric(request.rubric) if request.rubric is not None
                  else panel.spec.rubric if panel else Rubric())
        personas = await self._pin(principal, persona_ids)
        spec = EvaluationSpec(
            personas=personas, rubric=rubric,
            classify=_choose(request.classify, panel.spec.classify if panel else True),
            adherence=_choose(request.adherence, panel.spec.adherence if panel else False))
        return spec, panel.id if panel else None

    async def _pin(self, principal: Principal, persona_ids: Sequence[str]) -> list[PinnedPersona]:
        """Each persona's current version; every id must be readable and active."""
        found = []
        for persona_id in persona_ids:
            try:
                persona = await self.prepared.usable(principal, persona_id)
            except NotFound:
                raise InvalidInput(f"persona '{persona_id}' not found",
                                   {"persona": persona_id}) from None
            found.append(PinnedPersona(persona.persona_id, persona.version,
                                       persona.definition.shown_name))
        return found

    async def _enqueue_all(self, evaluation: EvaluationRecord, indexes: list[int]) -> None:
        if evaluation.spec.classify:
            for index in indexes:
                await self.queue.classify(evaluation.id, index)
            return
        for index in indexes:
            for persona in evaluation.spec.personas:
                await self.queue.score(CellJob(evaluation.id, index, persona.id,
                                               persona.version))

    async def evaluation(self, principal: Principal, evaluation_id: str) -> EvaluationRecord:
        found = await self.store.evaluation(evaluation_id, principal.user_id)
        if found is None:
            raise NotFound(f"evaluation '{evaluation_id}' not found")
        return found

    async def evaluations(self, principal: Principal, *, limit: int = 50, offset: int = 0,
                          status: str | None = None) -> tuple[list[EvaluationRecord], int]:
        return await self.store.evaluations(principal.user_id, limit=limit, offset=offset,
                                            status=status)

    async def progress(self, principal: Principal, evaluation_id: str) -> Progress:
        await self.evaluation(principal, evaluation_id)
        found = await self.store.progress(evaluation_id)
        if found is None:
            raise NotFound(f"evaluation '{evaluation_id}' not found")
        return found

    async def cancel(self, principal: Principal, evaluation_id: str) -> Progress:
        evaluation = await self.evaluation(principal, evaluation_id)
        if evaluation.status == "running":
            await self.store.cancel(evaluation_id)
        return await self.progress(principal, evaluation_id)

    async def rerun(self, principal: Principal, evaluation_id: str, *,
                    include_cancelled: bool = False) -> Progress:
        """Run the failed (and, if asked, cancelled) cells again, with the same job ids.

        The answer is the reopened evaluation as it stands before its work is queued,
        so it says what the rerun did, however fast the workers then are."""
        evaluation = await self.evaluation(principal, evaluation_id)
        if evaluation.status == "running":
            raise Conflict(f"evaluation '{evaluation_id}' is still running; cancel it or "
                           "wait until it finishes")
        statuses = ("failed", "cancelled") if include_cancelled else ("failed",)
        if not await self.store.reopen(evaluation_id, statuses):
            return await self.progress(principal, evaluation_id)
        reopened = await self.progress(principal, evaluation_id)
        await requeue(self.store, self.queue, evaluation_id)
        return reopened

    async def requeue(self, principal: Principal, evaluation_id: str) -> int:
        """Queue a running evaluation's unfinished work again (say, after its process
        stopped); returns how many jobs were queued. Safe to repeat."""
        evaluation = await self.evaluation(principal, evaluation_id)
        if evaluation.status != "running":
            return 0
        return await requeue(self.store, self.queue, evaluation_id)

    async def delete(self, principal: Principal, evaluation_id: str) -> None:
        evaluation = await self.evaluation(principal, evaluation_id)
        if evaluation.status == "running":
            await self.store.cancel(evaluation_id)
        await self.store.delete_evaluation(principal.user_id, evaluation_id)

    async def results(self, principal: Principal, evaluation_id: str) -> dict[str, Any]:
        """The evaluation, its progress, every segment with its cards, and aggregates."""
        evaluation = await self.evaluation(principal, evaluation_id)
        segments = await self.store.segments(evaluation_id)
        cells = await self.store.cells(evaluation_id)
        progress = await self.store.progress(evaluation_id)
        return {**evaluation.public(), "progress": progress.public() if progress else None,
                "segments": report.results(evaluation, segments, cells),
                "aggregates": report.aggregates(evaluation, segments, cells)}

    async def aggregates(self, principal: Principal, evaluation_id: str) -> dict[str, Any]:
        evaluation = await self.evaluation(principal, evaluation_id)
        return report.aggregates(evaluation, await self.store.segments(evaluation_id),
                                 await self.store.cells(evaluation_id))

    async def export_csv(self, principal: Principal, evaluation_id: str) -> str:
        await self.evaluation(principal, evaluation_id)
        return report.to_csv(await self.store.segments(evaluation_id),
                             await self.store.cells(evaluation_id))

    async def settle(self, principal: Principal, evaluation_id: str) -> None:
        """Mark a running evaluation finished if all its work is (no job is left to)."""
        await self.evaluation(principal, evaluation_id)
        await self.store.finish_if_done(evaluation_id)


def _choose(asked: bool | None, default: bool) -> bool:
    return default if asked is None else asked
