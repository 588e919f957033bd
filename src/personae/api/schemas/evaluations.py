"""Evaluation bodies and responses: an evaluation, its progress, results and aggregates."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, WithJsonSchema

from personae.api.schemas.common import Body, OffsetPage, Public, Timestamp
from personae.panels.content import ContentFormat
from personae.panels.records import CellStatus, EvaluationStatus, PinnedPersona
from personae.panels.rubric import Rubric

SegmentStatus = Literal["pending", "skipped", "done", "failed"]


# Whole numbers documented with their bounds, checked (with a 400) where they are used.
SegmentSentences = Annotated[int, WithJsonSchema({"type": "integer", "minimum": 1,
                                                  "maximum": 50})]
SegmentChars = Annotated[int, WithJsonSchema({"type": "integer", "minimum": 50,
                                              "maximum": 20_000})]


class EvaluationCreate(Body):
    """What to evaluate, and with whom: a ``panel``, or ``personas`` (+ ``rubric``)."""

    content: str = Field(description="the text, SubRip, WebVTT or JSON segments to judge")
    format: ContentFormat | None = Field(
        default=None, description="content format; detected from filename/content if absent")
    filename: str | None = Field(default=None, max_length=255,
                                 description="the source file's name (its extension "
                                             "helps detect the format)")
    title: str | None = Field(default=None, max_length=200)
    panel: str | None = Field(default=None, description="a panel of yours, by id or name")
    personas: list[str] = Field(default_factory=list,
                                description="persona ids, when no panel is given")
    # A dict here, validated as a Rubric on its own: the body's schema below is inlined
    # into the OpenAPI document, where a nested model's $ref would not resolve.
    rubric: dict[str, Any] | None = Field(
        default=None, description="overrides the panel's rubric (scale_min, scale_max, "
                                  "anchors, question, opinion_max_chars, extra_fields)")
    classify: bool | None = Field(default=None,
                                  description="label each segment's topic and tone first")
    adherence: bool | None = Field(default=None,
                                   description="check each opinion stays in character")
    # Bounds checked where the content is split (400), for JSON and form uploads alike.
    sentences_per_segment: SegmentSentences | None = Field(
        default=None, description="plain text: sentences per segment (1-50, default 3)")
    target_chars: SegmentChars | None = Field(
        default=None, description="plain text: pack sentences up to about this many "
                                  "characters instead (50-20000)")
    language: str = Field(default="en", description="BCP-47 tag; picks sentence rules")


class EvaluationRerun(Body):
    include_cancelled: bool = Field(default=False, strict=True,
                                    description="also run the cells a cancel left undone")


def _upload_schema() -> dict[str, Any]:
    """The multipart form: the JSON fields, as text, with ``file`` instead of ``content``."""
    schema = EvaluationCreate.model_json_schema()
    properties = {name: {"type": "string", "description": prop.get("description", "")}
                  for name, prop in schema["properties"].items() if name != "content"}
    properties["personas"]["description"] = "comma-separated persona ids"
    properties["rubric"]["description"] = "the rubric as a JSON object"
    return {"type": "object", "required": ["file"],
            "properties": {"file": {"type": "string", "format": "binary",
                                    "description": "the content, UTF-8"}, **properties}}


# ``POST /v1/evaluations`` reads its body itself (JSON or a form), so FastAPI cannot
# derive this part of the document: it is given as the operation's ``openapi_extra``.
EVALUATION_CREATE_BODY: dict[str, Any] = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": EvaluationCreate.model_json_schema()},
    "multipart/form-data": {"schema": _upload_schema()}}}}


class CellCounts(Public):
    pending: int
    running: int
    done: int
    failed: int
    cancelled: int


class ProgressPublic(Public):
    status: EvaluationStatus
    total: int = Field(description="cells: one per persona x segment")
    finished: int = Field(description="cells done, failed or cancelled")
    cells: CellCounts
    segments: dict[SegmentStatus, int] = Field(description="segments by classification status")


class ResumePublic(ProgressPublic):
    queued: int = Field(description="jobs queued again")


class EvaluationPublic(Public):
    id: str
    panel_id: str | None
    title: str
    status: EvaluationStatus
    content_format: ContentFormat
    personas: list[PinnedPersona] = Field(description="each at the version it was pinned")
    rubric: Rubric
    classify: bool
    adherence: bool
    created_at: Timestamp
    finished_at: Timestamp | None


class EvaluationDetailPublic(EvaluationPublic):
    """The evaluation with its progress."""

    progress: ProgressPublic


class EvaluationsPublic(OffsetPage[EvaluationPublic]):
    pass


class ClassificationPublic(Public):
    status: SegmentStatus
    topic: str | None
    tone: str | None
    error: str | None


class CardPublic(Public):
    """One persona's result for one segment; failed cells have an error, never a score."""

    persona_id: str
    persona_name: str
    persona_version: int
    status: CellStatus
    score: int | None
    opinion: str | None
    fields: dict[str, Any] = Field(description="the rubric's extra fields")
    adherence: dict[str, Any] | None = Field(
        description="the in-character check: status, and in_character, score, reason "
                    "(done) or error, attempts (failed)")
    error: str | None
    attempts: int


class SegmentResultPublic(Public):
    index: int
    text: str
    start_ms: int | None
    end_ms: int | None
    classification: ClassificationPublic
    cards: list[CardPublic]


class PersonaAggregatePublic(Public):
    name: str
    version: int
    mean: float | None = Field(description="over scored cells only; null when none")
    scored: int
    distribution: dict[str, int] = Field(description="how many cells got each score")
    failed: int
    pending: int


class LabelAggregatePublic(Public):
    segments: int
    mean: float | None
    scored: int
    distribution: dict[str, int]
    by_persona: dict[str, float] = Field(description="each persona's mean score")


class AggregatesPublic(Public):
    personas: dict[str, PersonaAggregatePublic] = Field(description="by persona id")
    topics: dict[str, LabelAggregatePublic] = Field(description="by segment topic")
    tones: dict[str, LabelAggregatePublic] = Field(description="by segment tone")


class EvaluationResultsPublic(EvaluationPublic):
    """Every segment with one card per persona, plus the aggregates."""

    progress: ProgressPublic | None
    segments: list[SegmentResultPublic]
    aggregates: AggregatesPublic
