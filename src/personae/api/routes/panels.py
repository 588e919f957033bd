"""``/v1/panels``: named sets of personas plus a rubric, owned by their creator.

The body is a :class:`~personae.panels.records.PanelSpec`. Like every other body it is
validated by FastAPI, once (the service takes the spec as it is), so bad input gets the
one 422 shape with field paths (``rubric.scale_max``, ``personas[0]``); the service then
checks what only it can: the personas exist and you can read them (400 naming the
persona), none is archived and the name is free (409).
Another user's panel is 404, whether you read, replace or delete it.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from personae.api.deps import CurrentPrincipal
from personae.api.schemas import (
    PanelCreate,
    PanelPublic,
    PanelsPublic,
    PanelUpdate,
    error_responses,
)
from personae.panels.service import PanelService

router = APIRouter(prefix="/panels", tags=["panels"])


async def get_panel_service(request: Request) -> PanelService:
    service: PanelService = request.app.state.runtime.panels
    return service


PanelServiceDep = Annotated[PanelService, Depends(get_panel_service)]


@router.post("", status_code=201, responses=error_responses(400, 401, 409, 422))
async def create_panel(body: PanelCreate, principal: CurrentPrincipal,
                       service: PanelServiceDep) -> PanelPublic:
    return PanelPublic.model_validate((await service.create_panel(principal, body)).public())


@router.get("", responses=error_responses(401))
async def list_panels(principal: CurrentPrincipal, service: PanelServiceDep) -> PanelsPublic:
    found = await service.panels(principal)
    return PanelsPublic.model_validate({"data": [panel.public() for panel in found],
                                        "count": len(found)})


@router.get("/{panel}", responses=error_responses(401, 404))
async def get_panel(panel: str, principal: CurrentPrincipal,
                    service: PanelServiceDep) -> PanelPublic:
    """A panel by id or by name."""
    return PanelPublic.model_validate((await service.panel(principal, panel)).public())


@router.put("/{panel}", responses=error_responses(400, 401, 404, 409, 422))
async def replace_panel(panel: str, body: PanelUpdate, principal: CurrentPrincipal,
                        service: PanelServiceDep) -> PanelPublic:
    """Replace the whole panel (id or name); fields left out take their defaults."""
    return PanelPublic.model_validate(
        (await service.replace_panel(principal, panel, body)).public())


@router.delete("/{panel}", status_code=204, responses=error_responses(401, 404))
async def delete_panel(panel: str, principal: CurrentPrincipal,
                       service: PanelServiceDep) -> None:
    """Evaluations made with the panel keep their own copy of its spec."""
    await service.delete_panel(principal, panel)
