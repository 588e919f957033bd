"""A runtime with panel-ready personas, talking to a real loopback OpenAI-protocol server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from personae.auth.principal import Principal, Role
from personae.config import ProviderConfig, Settings
from personae.panels.service import EvaluationRequest
from personae.providers.fake import FakeOpenAIServer
from personae.runtime import Runtime

ZED = {"id": "zed", "name": "Zed Gen-Z", "language": "en",
       "system_prompt": "You are Zed, nineteen, bored by anything slow."}
ADA = {"id": "ada", "name": "Ada Advertiser", "language": "en",
       "system_prompt": "You are Ada, a brand advertiser who values reach."}
SCORES = {"Zed": 2, "Ada": 4}
TEXT = ("Welcome to the show. Today we talk money. Saving is hard. Budgets help. "
        "Credit cards bite. Thanks for listening.")


def panel_answer(body: dict[str, Any]) -> dict[str, Any]:
    """Each persona's own score (found by its name in the prompt); labels for the classifier."""
    system = body["messages"][0]["content"]
    if system.startswith("You label segments"):
        return {"topic": "money", "tone": "casual"}
    if system.startswith("You check whether"):
        return {"in_character": True, "score": 5, "reason": "sounds right"}
    for name, score in SCORES.items():
        if name in system:
            return {"score": score, "opinion": f"{name} thinks so"}
    raise AssertionError(f"unexpected prompt: {system[:80]}")


@dataclass
class Panels:
    runtime: Runtime
    server: FakeOpenAIServer
    alice: Principal
    bob: Principal
    settings: Settings

    async def run(self, answer: Callable[[dict[str, Any]], Any] | None = panel_answer,
                  **options: Any) -> str:
        """Evaluate TEXT (two segments) with zed and ada, and wait for the end."""
        self.server.json_reply = answer
        request = EvaluationRequest(content=options.pop("content", TEXT),
                                    personas=options.pop("personas", ["zed", "ada"]),
                                    **options)
        evaluation = await self.runtime.panels.evaluate(self.alice, request)
        await self.drain()
        return evaluation.id

    async def drain(self) -> None:
        await self.runtime.panels.queue.drain()  # type: ignore[attr-defined]


def panel_settings(tmp_path: Path, database_url: str, base_url: str, **extra: Any) -> Settings:
    fake = ProviderConfig(kind="openai", base_url=base_url, model="fake-model", max_retries=0,
                          timeout_seconds=5)
    return Settings(data_dir=tmp_path, database_url=database_url, default_provider="fake",
                    providers={"fake": fake}, anonymous_loopback=False, **extra)


async def seeded(settings: Settings) -> tuple[Runtime, Principal, Principal]:
    runtime = await Runtime.open(settings, watch=False)
    people = []
    for name in ("alice", "bob"):
        user = await runtime.users.create_user(name, Role.member)
        people.append(Principal(user.id, user.name, user.role))
    admin = await runtime.auth.local_admin()
    for persona in (ZED, ADA):
        await runtime.personas.create(admin, persona, global_scope=True)
    return runtime, people[0], people[1]


@pytest.fixture
async def panels(database_url: str, tmp_path: Path) -> AsyncIterator[Panels]:
    async with FakeOpenAIServer() as server:
        settings = panel_settings(tmp_path, database_url, server.base_url)
        runtime, alice, bob = await seeded(settings)
        try:
            yield Panels(runtime, server, alice, bob, settings)
        finally:
            await runtime.close()
