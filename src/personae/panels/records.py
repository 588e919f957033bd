"""Plain records for panels and evaluations, as the store returns them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from personae.panels.rubric import Rubric

EvaluationStatus = Literal["running", "completed", "cancelled"]
CellStatus = Literal["pending", "running", "done", "failed", "cancelled"]
TERMINAL_CELL = ("done", "failed", "cancelled")


class PanelSpec(BaseModel):
    """A named set of personas plus a rubric; what ``/v1/panels`` stores."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9 _.-]*$")
    description: str = Field(default="", max_length=2000)
    personas: list[str] = Field(min_length=1, max_length=50)
    rubric: Rubric = Field(default_factory=Rubric)
    classify: bool = True
    adherence: bool = False

    @field_validator("personas")
    @classmethod
    def _unique(cls, personas: list[str]) -> list[str]:
        seen = [p.strip() for p in personas]
        if any(not p for p in seen):
            raise ValueError("persona ids must not be empty")
        duplicates = sorted({p for p in seen if seen.count(p) > 1})
        if duplicates:
            raise ValueError(f"listed more than once: {', '.join(duplicates)}")
        return seen


@dataclass(frozen=True, slots=True)
class PanelRecord:
    id: str
    owner_id: str
    spec: PanelSpec
    created_at: datetime
    updated_at: datetime

    def public(self) -> dict[str, Any]:
        return {"id": self.id, **self.spec.model_dump(mode="json"),
                "created_at": self.created_at.isoformat(),
                "updated_at": self.updated_at.isoformat()}


@dataclass(frozen=True, slots=True)
class PinnedPersona:
    """One persona of an evaluation, at the version it was created with (pydantic
    validates it as a field of :class:`EvaluationSpec`)."""

    id: str
    version: int
    name: str


class EvaluationSpec(BaseModel):
    """What an evaluation was created with, frozen: stored as JSON in ``evaluations.spec``,
    validated once when the row is read and dumped once when it is written."""

    model_config = ConfigDict(frozen=True)

    personas: list[PinnedPersona]
    rubric: Rubric
    classify: bool
    adherence: bool = False


@dataclass(frozen=True, slots=True)
class EvaluationRecord:
    id: str
    owner_id: str
    panel_id: str | None
    title: str
    status: str
    content_format: str
    spec: EvaluationSpec
    created_at: datetime
    finished_at: datetime | None

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "panel_id": self.panel_id, "title": self.title,
                "status": self.status, "content_format": self.content_format,
                **self.spec.model_dump(mode="json"),
                "created_at": self.created_at.isoformat(),
                "finished_at": self.finished_at.isoformat() if self.finished_at else None}


@dataclass(frozen=True, slots=True)
class SegmentRow:
    index: int
    text: str
    start_ms: int | None
    end_ms: int | None
    status: str
    topic: str | None = None
    tone: str | None = None
    error: str | None = None
    attempts: int = 0

    def public(self) -> dict[str, Any]:
        return {"index": self.index, "text": self.text, "start_ms": self.start_ms,
                "end_ms": self.end_ms, "classification": {
                    "status": self.status, "topic": self.topic, "tone": self.tone,
                    "error": self.error}}


@dataclass(frozen=True, slots=True)
class CellRow:
    segment_index: int
    persona_id: str
    persona_version: int
    status: str
    score: int | None = None
    opinion: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    adherence: dict[str, Any] | None = None
    error: str | None = None
    attempts: int = 0

    def public(self) -> dict[str, Any]:
        return {"persona_id": self.persona_id, "persona_version": self.persona_version,
                "status": self.status, "score": self.score, "opinion": self.opinion,
                "fields": self.fields, "adherence": self.adherence, "error": self.error,
                "attempts": self.attempts}


@dataclass(frozen=True, slots=True)
class Progress:
    """Counts by status: what the progress endpoints and bars show."""

    status: str
    cells: dict[str, int]
    segments: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.cells.values())

    @property
    def finished(self) -> int:
        return sum(self.cells.get(s, 0) for s in TERMINAL_CELL)

    def public(self) -> dict[str, Any]:
        return {"status": self.status, "total": self.total, "finished": self.finished,
                "cells": {s: self.cells.get(s, 0) for s in
                          ("pending", "running", "done", "failed", "cancelled")},
                "segments": self.segments}
