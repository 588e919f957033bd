"""Everything a process needs, built from Settings once: engine, stores, caches, services.

Adapters (API, CLI, workers) open a :class:`Runtime` and close it on exit; nothing is
built at import time, so tests can run several runtimes side by side.
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from datetime import timedelta
from importlib import resources
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from personae.auth.browser import BrowserSessions, load_secret
from personae.auth.service import Authenticator, UserService
from personae.auth.store import UserStore
from personae.config import Settings
from personae.conversations.durability import TurnTiming
from personae.conversations.engine import ConversationService
from personae.conversations.gateway import ChatGateway
from personae.conversations.metrics import PersonaMetrics
from personae.conversations.metrics_store import MetricsStore
from personae.conversations.rating_store import RatingStore
from personae.conversations.ratings import Ratings
from personae.conversations.store import ConversationStore, TurnHolder
from personae.db.changes import AUTH_CHANGED
from personae.db.engine import current_revision, make_engine, migrate, safe_url
from personae.errors import DatabaseUnavailable, from_infrastructure
from personae.ops.audit import AuditLog
from personae.ops.audit_store import AuditStore
from personae.ops.logging import TurnLogger
from personae.ops.metrics import Metrics
from personae.ops.ratelimit import RateLimiter
from personae.panels.queue import JobQueue, LocalQueue
from personae.panels.runner import PanelRunner
from personae.panels.service import PanelService
from personae.panels.store import PanelStore
from personae.personas.assets import AssetLimits
from personae.personas.files import SyncReport
from personae.personas.prepared import PreparedPersonas
from personae.personas.registry import PersonaRegistry
from personae.personas.service import PersonaService
from personae.personas.store import PersonaStore
from personae.providers.registry import ProviderRegistry
from personae.providers.speech_registry import SpeechProviders
from personae.providers.streams import FrameTiming
from personae.quality.jobs import TestRunJob
from personae.quality.queue import LocalTestQueue, TestRunQueue
from personae.quality.runner import PersonaTester
from personae.quality.service import TestRunService
from personae.quality.store import TestRunStore
from personae.voice.clips import ClipStore
from personae.voice.service import VoiceService
from personae.writing.service import WritingService
from personae.writing.store import WritingStore


def samples_folder() -> Path:
    return Path(str(resources.files("personae.personas") / "samples"))


@dataclass
class Runtime:
    settings: Settings
    engine: AsyncEngine
    store: PersonaStore
    registry: PersonaRegistry
    personas: PersonaService
    users: UserService
    auth: Authenticator
    providers: ProviderRegistry
    prepared: PreparedPersonas
    conversations: ConversationService
    gateway: ChatGateway
    panel_runner: PanelRunner
    panels: PanelService
    test_runs: TestRunService
    test_run_job: TestRunJob
    speech: SpeechProviders
    voice: VoiceService
    writing: WritingService
    limiter: RateLimiter
    metrics: Metrics
    audit: AuditLog
    browser_sessions: BrowserSessions

    @classmethod
    async def open(cls, settings: Settings, *, watch: bool = True) -> Runtime:
        """Connect, migrate if configured, and (with ``watch``) follow other writers."""
        if settings.database_url is None:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = make_engine(settings.resolved_database_url, settings.database_pool_size)
        await _connect(engine, settings)
        metrics = Metrics(settings.metrics_enabled)
        store = PersonaStore(engine)
        registry = PersonaRegistry(store, ttl_seconds=settings.cache_ttl_seconds,
                                   max_entries=settings.cache_max_entries,
                                   poll_seconds=settings.change_poll_seconds,
                                   on_lookup=metrics.cache_counter("personas"))
        if watch:
            await registry.start()
        user_store = UserStore(engine)
        auth = Authenticator(user_store, on_lookup=metrics.cache_counter("keys"))
        registry.subscribe(lambda changed: auth.forget() if changed in (None, AUTH_CHANGED)
                           else None)
        audit = AuditLog(AuditStore(engine))
        limiter = RateLimiter(settings, on_refused=metrics.rate_limited)
        await limiter.open()
        personas = PersonaService(store, registry, asset_limits=AssetLimits(
            settings.max_asset_bytes, settings.max_persona_assets), audit=audit)
        providers = ProviderRegistry(settings, breaker_listener=metrics.breaker_listener)
        prepared = PreparedPersonas(personas)
        conversations = ConversationService(
            ConversationStore(engine), prepared, providers,
            holder=TurnHolder(uuid.uuid4().hex, settings.node_name),
            timing=TurnTiming(timedelta(seconds=settings.turn_lease_seconds),
                              settings.stream_flush_seconds),
            max_turns_in_flight=settings.max_turns_in_flight,
            frames=FrameTiming(settings.stream_frame_ms / 1000, settings.stream_frame_tokens),
            observers=[metrics, TurnLogger()])
        gateway = ChatGateway(personas, prepared, providers, conversations)
        runner = PanelRunner(PanelStore(engine), prepared, providers,
                             max_attempts=settings.panel_max_attempts,
                             on_failed=metrics.job_failed)
        panels = PanelService(runner.store, prepared, _panel_queue(settings, runner))
        users = UserService(user_store, auth, audit)
        tester = PersonaTester(personas, prepared, providers, conversations,
                               settings.judge_provider)
        job = TestRunJob(TestRunStore(engine), tester, users, on_failed=metrics.job_failed)
        test_runs = TestRunService(job.store, prepared, providers.names,
                                   _test_queue(settings, job))
        speech = SpeechProviders(settings, breaker_listener=metrics.breaker_listener)
        voice = VoiceService(conversations, speech, settings, ClipStore(
            settings.data_dir / "audio", settings.voice_audio_ttl_seconds),
            on_stage=metrics.voice_stage)
        writing = WritingService(personas, prepared, providers, WritingStore(engine), users)
        return cls(settings, engine, store, registry, personas, users, auth, providers,
                   prepared, conversations, gateway, runner, panels, test_runs, job,
                   speech, voice, writing, limiter=limiter, metrics=metrics, audit=audit,
                   browser_sessions=browser_sessions_for(settings))

    @functools.cached_property
    def ratings(self) -> Ratings:
        """Ratings of replies (built on first use: they need only the engine)."""
        return Ratings(self.conversations, RatingStore(self.engine))

    @functools.cached_property
    def persona_metrics(self) -> PersonaMetrics:
        """A persona's figures per version and day, ratings counted in."""
        return PersonaMetrics(self.personas, MetricsStore(self.engine), RatingStore(self.engine))

    async def close(self) -> None:
        await self.conversations.close()  # stops any turn still running, saved interrupted
        await self.speech.aclose()
        await self.panels.queue.close()
        await self.test_runs.queue.close()
        await self.registry.stop()
        await self.limiter.close()
        await self.providers.aclose()
        await self.engine.dispose()

    async def load_samples(self, author: str = "personae") -> SyncReport:
        return await self.personas.seed(samples_folder(), author)

    async def migrate(self) -> None:
        """Bring the database schema up to date (idempotent)."""
        await migrate(self.engine)

    async def schema_revision(self) -> str | None:
        return await current_revision(self.engine)



async def _connect(engine: AsyncEngine, settings: Settings) -> None:
    """Connect (and migrate, if configured) now, so a wrong URL or a database that is
    down fails at start with the database's own reason and its (password-free) URL."""
    try:
        async with engine.connect():
            pass
        if settings.migrate_on_start:
            await migrate(engine)
    except Exception as exc:
        await engine.dispose()
        if not isinstance(exc, OSError) and from_infrastructure(exc) is None:
            raise
        reason = getattr(exc, "orig", None) or exc
        raise DatabaseUnavailable(f"cannot open the database "
                                  f"{safe_url(settings.resolved_database_url)}: {reason}") from exc


def browser_sessions_for(settings: Settings) -> BrowserSessions:
    configured = settings.web_secret.get_secret_value() if settings.web_secret else None
    return BrowserSessions(load_secret(configured, settings.data_dir),
                           int(settings.web_session_hours * 3600))


def _panel_queue(settings: Settings, runner: PanelRunner) -> JobQueue:
    """In-process jobs by default; arq on Redis (an optional extra) when configured."""
    if settings.queue == "local":
        return LocalQueue(runner, settings.panel_concurrency)
    from personae.panels.arq_queue import ArqQueue

    return ArqQueue(settings)


def _test_queue(settings: Settings, job: TestRunJob) -> TestRunQueue:
    """Test runs go where panel jobs go: in process, or to the arq workers."""
    if settings.queue == "local":
        return LocalTestQueue(job, settings.panel_concurrency)
    from personae.quality.queue import ArqTestQueue

    return ArqTestQueue(settings)
