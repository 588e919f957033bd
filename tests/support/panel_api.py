"""Shared pieces for the panel and evaluation API tests.

The app runs on a real database, with the sample personas loaded, and its default
provider is a real loopback OpenAI-protocol server whose structured answers a test
steers through :class:`Judges`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from personae.config import ProviderConfig, Settings
from personae.providers.fake import FakeOpenAIServer
from tests.support.api import Api, serve_app

GENZ, ADVERTISER = "genz-listener", "advertiser"
NAMES = {GENZ: "Gen Z Listener", ADVERTISER: "Brand Advertiser"}
TEXT = ("Coffee is the best start to any morning. I drink three cups before noon. "
        "My dentist does not agree with me. She says tea is kinder to teeth.")
SRT = ("1\n00:00:01,000 --> 00:00:02,500\nHello there.\n\n"
       "2\n00:00:03,000 --> 00:00:04,250\n<i>Welcome</i> to the show.\n")


@dataclass
class Judges:
    """What the fake model answers: a score per persona, a label for the classifier."""

    scores: dict[str, Any] = field(default_factory=lambda: {GENZ: 2, ADVERTISER: 4})
    label: dict[str, str] = field(default_factory=lambda: {"topic": "coffee",
                                                           "tone": "casual"})

    def __call__(self, body: dict[str, Any]) -> Any:
        messages = body.get("messages") or []
        first = str(messages[0].get("content") or "") if messages else ""
        if first.startswith("You label segments"):
            return self.label
        if first.startswith("You check whether"):
            return {"in_character": True, "score": 5, "reason": "sounds right"}
        prompt = " ".join(str(m.get("content") or "") for m in messages
                          if m.get("role") == "system")
        for persona_id, name in NAMES.items():
            if f"You are {name}" in prompt:
                score = self.scores[persona_id]
                return score if isinstance(score, dict) else {
                    "score": score, "opinion": f"{name} gives it a {score}"}
        return None  # a minimal instance of the schema


@dataclass
class PanelApi:
    api: Api
    server: FakeOpenAIServer
    judges: Judges

    @property
    def client(self) -> httpx.AsyncClient:
        return self.api.client

    def as_(self, who: str) -> dict[str, str]:
        return self.api.as_(who)

    async def drain(self) -> None:
        await self.api.runtime.panels.queue.drain()

    async def evaluate(self, who: str = "alice", **body: Any) -> dict[str, Any]:
        response = await self.client.post("/v1/evaluations", json=body, headers=self.as_(who))
        assert response.status_code == 202, response.text
        return response.json()

    async def results(self, evaluation_id: str, who: str = "alice") -> dict[str, Any]:
        response = await self.client.get(f"/v1/evaluations/{evaluation_id}/results",
                                         headers=self.as_(who))
        assert response.status_code == 200, response.text
        return response.json()

    async def panel(self, who: str = "alice", **spec: Any) -> dict[str, Any]:
        body = {"name": "listeners", "personas": [GENZ, ADVERTISER], **spec}
        response = await self.client.post("/v1/panels", json=body, headers=self.as_(who))
        assert response.status_code == 201, response.text
        return response.json()


def panel_settings(tmp_path: Path, database_url: str, base_url: str,
                   **overrides: Any) -> Settings:
    fake = ProviderConfig(kind="openai", base_url=base_url, api_key="test-key",
                          model="fake-model", max_retries=0, timeout_seconds=10)
    return Settings(data_dir=tmp_path, database_url=database_url, default_provider="fake",
                    providers={"fake": fake}, anonymous_loopback=False, **overrides)


async def serve_panels(database_url: str, tmp_path: Path,
                       **overrides: Any) -> AsyncIterator[PanelApi]:
    """The real app with the samples loaded, its provider a steerable fake server."""
    judges = Judges()
    async with FakeOpenAIServer(json_reply=judges) as server:
        settings = panel_settings(tmp_path, database_url, server.base_url, **overrides)
        async for api in serve_app(settings):
            await api.runtime.load_samples()
            harness = PanelApi(api, server, judges)
            yield harness
            await harness.drain()


def cards(results: dict[str, Any]) -> list[dict[str, Any]]:
    return [card for segment in results["segments"] for card in segment["cards"]]


async def sse_events(response: httpx.Response) -> list[tuple[str, dict[str, Any]]]:
    """``(event, data)`` pairs of a server-sent event stream."""
    found, event = [], "message"
    async for line in response.aiter_lines():
        if line.startswith("event:"):
            event = line.removeprefix("event:").strip()
        elif line.startswith("data:"):
            found.append((event, json.loads(line.removeprefix("data:").strip())))
            event = "message"
    return found
