"""A runtime with panel-ready personas, talking to a real loopback OpenAI-protocol server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from personae.auth.principal import Principal
from personae.config import ProviderConfig, Settings
from personae.panels.service import EvaluationRequest
from personae.providers.fake import FakeOpenAIServer
from personae.runtime import Runtime
from tests.support.personas import ADA, ZED
from tests.support.runtime import MEMBERS, create_global_personas, create_people

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
    """An open runtime (the caller closes it) with alice, bob and the personas ZED and ADA."""
    runtime = await Runtime.open(settings, watch=False)
    people = await create_people(runtime, MEMBERS)
    await create_global_personas(runtime, (ZED, ADA))
    return runtime, people["alice"], people["bob"]


@asynccontextmanager
async def open_panels(database_url: str, tmp_path: Path) -> AsyncIterator[Panels]:
    async with FakeOpenAIServer() as server:
        settings = panel_settings(tmp_path, database_url, server.base_url)
        runtime, alice, bob = await seeded(settings)
        try:
            yield Panels(runtime, server, alice, bob, settings)
        finally:
            await runtime.close()
