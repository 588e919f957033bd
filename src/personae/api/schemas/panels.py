"""Panel bodies and responses: a body is a :class:`PanelSpec`, a response adds its id."""

from __future__ import annotations

from personae.api.schemas.common import ListPage, Timestamp
from personae.panels.records import PanelSpec


class PanelCreate(PanelSpec):
    """A named set of personas plus a rubric; the name must be free among yours."""


class PanelUpdate(PanelSpec):
    """``PUT``: the whole panel; fields left out take their defaults."""


class PanelPublic(PanelSpec):
    id: str
    created_at: Timestamp
    updated_at: Timestamp


class PanelsPublic(ListPage[PanelPublic]):
    pass
