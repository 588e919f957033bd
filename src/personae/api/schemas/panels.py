"""Panel bodies and responses: a body is a :class:`PanelSpec`, a response adds its id."""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field

from personae.api.schemas.common import NOT_BLANK, ListPage, Timestamp
from personae.panels.records import PanelSpec


def _persona_ids(schema: dict[str, Any]) -> None:
    """Say what the spec's validator checks of ``personas``: ids not blank, none twice."""
    personas = schema["properties"]["personas"]
    personas["items"] = {**personas.get("items", {}), "minLength": 1, "pattern": NOT_BLANK}
    personas["uniqueItems"] = True


class _PanelBody(PanelSpec):
    model_config = ConfigDict(json_schema_extra=_persona_ids)
    classify: bool = Field(default=True, strict=True)
    adherence: bool = Field(default=False, strict=True)


class PanelCreate(_PanelBody):
    """A named set of personas plus a rubric; the name must be free among yours."""


class PanelUpdate(_PanelBody):
    """``PUT``: the whole panel; fields left out take their defaults."""


class PanelPublic(PanelSpec):
    id: str
    created_at: Timestamp
    updated_at: Timestamp


class PanelsPublic(ListPage[PanelPublic]):
    pass
