"""The real HTTP app in process, with an admin and two members holding API keys."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx

from personae.api.app import create_app
from personae.auth.principal import Role
from personae.config import Settings
from personae.runtime import Runtime


@dataclass
class Api:
    client: httpx.AsyncClient
    keys: dict[str, str]
    runtime: Runtime

    def as_(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[name]}"}


async def serve_app(settings: Settings) -> AsyncIterator[Api]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        users = app.state.runtime.users
        keys = {}
        for name, role in [("admin", Role.admin), ("alice", Role.member), ("bob", Role.member)]:
            await users.create_user(name, role)
            keys[name], _ = await users.create_key(name)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://personae") as client:
            yield Api(client, keys, app.state.runtime)


async def serve_with_persona(settings: Settings, definition: dict[str, Any], *,
                             owner: str = "alice",
                             visibility: str = "public") -> AsyncIterator[Api]:
    """:func:`serve_app`, with ``definition`` created as ``owner``'s persona."""
    async for api in serve_app(settings):
        created = await api.client.post("/v1/personas", json={
            "definition": definition, "visibility": visibility}, headers=api.as_(owner))
        assert created.status_code == 201, created.text
        yield api
