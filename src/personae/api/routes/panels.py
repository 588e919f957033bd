"""``/v1/panels``: named sets of personas plus a rubric, owned by their creator.

The body is a :class:`~personae.panels.records.PanelSpec`. Like every other body it is
validated by FastAPI, so bad input gets the one 422 shape with field paths
(``rubric.scale_max``, ``personas[0]``); the service then checks what only it can: the
personas exist and you can read them (400 naming the persona), the name is free (409).
Another user's panel is 404, whether you read, replace or delete it.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from personae.api.deps import CurrentPrincipal
from personae.panels.records import PanelSpec
from personae.panels.service import PanelService

router = APIRouter(prefix="/panels", tags=["panels"])


async def get_panel_service(request: Request) -> PanelService:
    return request.app.state.runtime.panels


PanelServiceDep = Annotated[PanelService, Depends(get_panel_service)]


def _body(spec: PanelSpec) -> dict[str, Any]:
    """Hand the service plain JSON: it validates again, as for the CLI."""
    return spec.model_dump(mode="json")


@router.post("", status_code=201)
async def create_panel(body: PanelSpec, principal: CurrentPrincipal,
                       service: PanelServiceDep) -> dict[str, Any]:
    return (await service.create_panel(principal, _body(body))).public()


@router.get("")
async def list_panels(principal: CurrentPrincipal, service: PanelServiceDep) -> dict[str, Any]:
    found = await service.panels(principal)
    return {"data": [panel.public() for panel in found], "count": len(found)}


@router.get("/{panel}")
async def get_panel(panel: str, principal: CurrentPrincipal,
                    service: PanelServiceDep) -> dict[str, Any]:
    """A panel by id or by name."""
    return (await service.panel(principal, panel)).public()


@router.put("/{panel}")
async def replace_panel(panel: str, body: PanelSpec, principal: CurrentPrincipal,
                        service: PanelServiceDep) -> dict[str, Any]:
    """Replace the whole panel (id or name); fields left out take their defaults."""
    return (await service.replace_panel(principal, panel, _body(body))).public()


@router.delete("/{panel}", status_code=204)
async def delete_panel(panel: str, principal: CurrentPrincipal,
                       service: PanelServiceDep) -> None:
    """Evaluations made with the panel keep their own copy of its spec."""
    await service.delete_panel(principal, panel)
