"""Everything a process needs, built from Settings once: engine, stores, caches, services.

Adapters (API, CLI, workers) open a :class:`Runtime` and close it on exit; nothing is
built at import time, so tests can run several runtimes side by side.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from personae.auth.service import Authenticator
from personae.auth.store import UserStore
from personae.config import Settings
from personae.conversations.engine import ConversationService
from personae.conversations.store import ConversationStore
from personae.db.engine import make_engine, migrate
from personae.panels.queue import JobQueue, LocalQueue
from personae.panels.runner import PanelRunner
from personae.panels.service import PanelService
from personae.panels.store import PanelStore
from personae.personas.files import SyncReport, sync_folder
from personae.personas.registry import PersonaRegistry
from personae.personas.service import PersonaService
from personae.personas.store import PersonaStore
from personae.providers.registry import ProviderRegistry


def samples_folder() -> Path:
    return Path(str(resources.files("personae.personas") / "samples"))


@dataclass
class Runtime:
    settings: Settings
    engine: AsyncEngine
    store: PersonaStore
    registry: PersonaRegistry
    personas: PersonaService
    users: UserStore
    auth: Authenticator
    providers: ProviderRegistry
    conversations: ConversationService
    panel_runner: PanelRunner
    panels: PanelService

    @classmethod
    async def open(cls, settings: Settings, *, watch: bool = True) -> Runtime:
        """Connect, migrate if configured, and (with ``watch``) follow other writers."""
        if settings.database_url is None:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = make_engine(settings.resolved_database_url, settings.database_pool_size)
        if settings.migrate_on_start:
            await migrate(engine)
        store = PersonaStore(engine)
        registry = PersonaRegistry(store, ttl_seconds=settings.cache_ttl_seconds,
                                   max_entries=settings.cache_max_entries,
                                   poll_seconds=settings.change_poll_seconds)
        if watch:
            await registry.start()
        users = UserStore(engine)
        personas = PersonaService(store, registry)
        providers = ProviderRegistry(settings)
        conversations = ConversationService(
            ConversationStore(engine), personas, providers,
            max_turns_in_flight=settings.max_turns_in_flight)
        runner = PanelRunner(PanelStore(engine), conversations.versions, providers,
                             max_attempts=settings.panel_max_attempts)
        panels = PanelService(runner.store, personas, _panel_queue(settings, runner))
        return cls(settings, engine, store, registry, personas, users, Authenticator(users),
                   providers, conversations, runner, panels)

    async def close(self) -> None:
        await self.panels.queue.close()
        await self.registry.stop()
        await self.providers.aclose()
        await self.engine.dispose()

    async def load_samples(self, author: str = "personae") -> SyncReport:
        report = await sync_folder(self.store, samples_folder(), author=author)
        self.registry.invalidate()
        return report


def _panel_queue(settings: Settings, runner: PanelRunner) -> JobQueue:
    """In-process jobs by default; arq on Redis (an optional extra) when configured."""
    if settings.queue == "local":
        return LocalQueue(runner, settings.panel_concurrency)
    from personae.panels.arq_queue import ArqQueue

    return ArqQueue(settings)
