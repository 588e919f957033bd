"""What a panel asks each persona, and the JSON every answer must match.

A rubric is a score scale with anchors, an opinion, and optional extra fields given
as JSON-schema properties. From it comes one result schema, used twice: to constrain
the model's output and to validate what came back (a model can ignore constraints).
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

RESERVED_FIELDS = ("score", "opinion")
FIELD_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
DEFAULT_ANCHORS = {1: "poor: you would stop listening", 2: "weak", 3: "fine",
                   4: "good", 5: "excellent: you would share it"}
TONES = ("informative", "humorous", "serious", "emotional", "persuasive", "casual",
         "critical", "inspirational", "neutral")


class Rubric(BaseModel):
    """Score scale (integers ``min``..``max``), anchors, and extra answer fields."""

    model_config = ConfigDict(extra="forbid")

    scale_min: int = Field(default=1, ge=0, le=100)
    scale_max: int = Field(default=5, ge=1, le=100)
    anchors: dict[int, str] = Field(default_factory=lambda: dict(DEFAULT_ANCHORS))
    question: str = Field(default="How well does this segment work for you?",
                          min_length=1, max_length=500)
    opinion_max_chars: int = Field(default=400, ge=20, le=4000)
    extra_fields: dict[str, dict[str, Any]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check_scale(self) -> Rubric:
        if self.scale_max <= self.scale_min:
            raise ValueError("scale_max must be greater than scale_min")
        outside = [k for k in self.anchors if not self.scale_min <= k <= self.scale_max]
        if outside:
            raise ValueError(f"anchors {outside} are outside the scale "
                             f"{self.scale_min}..{self.scale_max}")
        return self

    @field_validator("extra_fields")
    @classmethod
    def _check_fields(cls, fields: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        if len(fields) > 20:
            raise ValueError("at most 20 extra fields")
        for name, schema in fields.items():
            if name in RESERVED_FIELDS:
                raise ValueError(f"'{name}' is always part of the answer; pick another name")
            if not FIELD_NAME.match(name):
                raise ValueError(f"'{name}': field names are lower_snake_case, "
                                 "starting with a letter")
            problem = _schema_problem(json.dumps(schema, sort_keys=True))
            if problem:
                raise ValueError(f"'{name}': not a valid JSON schema: {problem}")
            if not isinstance(schema, dict) or "type" not in schema:
                raise ValueError(f"'{name}': the schema needs a 'type'")
        return fields


@lru_cache(maxsize=512)
def _schema_problem(schema_json: str) -> str | None:
    """Why a field's schema is not a valid JSON schema; checked once per distinct schema,
    since every stored evaluation's rubric is validated again when it is read."""
    try:
        Draft202012Validator.check_schema(json.loads(schema_json))
    except SchemaError as exc:
        return exc.message
    return None


def result_schema(rubric: Rubric) -> dict[str, Any]:
    """The JSON schema one persona's answer for one segment must match."""
    properties: dict[str, Any] = {
        "score": {"type": "integer", "minimum": rubric.scale_min,
                  "maximum": rubric.scale_max},
        "opinion": {"type": "string", "minLength": 1, "maxLength": rubric.opinion_max_chars},
        **rubric.extra_fields,
    }
    return {"type": "object", "properties": properties, "required": list(properties),
            "additionalProperties": False}


CLASSIFICATION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"topic": {"type": "string", "minLength": 1, "maxLength": 80},
                   "tone": {"type": "string", "enum": list(TONES)}},
    "required": ["topic", "tone"],
    "additionalProperties": False,
}

ADHERENCE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"in_character": {"type": "boolean"},
                   "score": {"type": "integer", "minimum": 1, "maximum": 5},
                   "reason": {"type": "string", "minLength": 1, "maxLength": 300}},
    "required": ["in_character", "score", "reason"],
    "additionalProperties": False,
}


class AnswerSchema:
    """A JSON schema and its validator, built once: every answer it judges reuses it."""

    def __init__(self, schema: dict[str, Any]) -> None:
        self.schema = schema
        self._validator = Draft202012Validator(schema)

    def errors(self, value: Any) -> list[str]:
        """Why ``value`` does not match (empty when it does), path first."""
        found = []
        for error in sorted(self._validator.iter_errors(value), key=lambda e: list(e.path)):
            where = "/".join(str(part) for part in error.path)
            found.append(f"{where}: {error.message}" if where else error.message)
        return found


CLASSIFICATION = AnswerSchema(CLASSIFICATION_SCHEMA)
ADHERENCE = AnswerSchema(ADHERENCE_SCHEMA)
