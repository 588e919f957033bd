"""Persona versions prepared once per process: definition, rendered prompt, knowledge
index, compiled lore.

Every capability that needs a persona (conversations, the OpenAI-compatible gateway,
panels, and later voice, writing and persona tests) asks this one object, built once
by the runtime. Versions never change, so everything derived from one is computed on
first use and kept, least recently used dropped first. From async code the prompt is
rendered in a worker thread (a template may take up to its time bound), and callers
asking for the same version meanwhile share that one render.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cachetools import LRUCache

from personae.auth.principal import Principal
from personae.errors import Conflict, NotFound, PersonaeError
from personae.personas.knowledge import KnowledgeIndex
from personae.personas.lore import Lorebook
from personae.personas.macros import substitute
from personae.personas.prompt import build_system_prompt
from personae.personas.records import PersonaRecord
from personae.personas.schema import ModelSettings, PersonaDefinition
from personae.personas.service import PersonaService
from personae.providers.base import ModelChoice, approximate_tokens

if TYPE_CHECKING:
    from personae.providers.registry import ProviderRegistry

DEFAULT_MAX_ENTRIES = 1024


@dataclass(frozen=True, slots=True)
class PreparedPersona:
    """One immutable persona version with what every capability derives from it."""

    persona_id: str
    version: int
    definition: PersonaDefinition
    system_prompt: str  # ``{{char}}`` substituted; ``{{user}}`` is, per turn
    knowledge: KnowledgeIndex
    model: ModelChoice  # the persona's model settings, as providers take them
    lore: Lorebook = field(default_factory=Lorebook)  # lore entries, compiled
    post_history: str = ""  # post_history_instructions, ``{{char}}`` substituted


class PreparedPersonas:
    """The one place that turns "persona id for this caller" into a usable persona."""

    def __init__(self, personas: PersonaService,
                 max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        self.personas = personas
        self._prepared: LRUCache[tuple[str, int], PreparedPersona] = LRUCache(max_entries)
        self._pending: dict[tuple[str, int], asyncio.Future[PreparedPersona]] = {}

    async def usable(self, principal: Principal, persona_id: str) -> PreparedPersona:
        """The current version of a persona the caller may read and use (not archived)."""
        return await self.prepare_in_thread(await self.personas.usable(principal, persona_id))

    async def prepare_in_thread(self, record: PersonaRecord) -> PreparedPersona:
        """:meth:`prepare` for async callers: a miss is built off the event loop."""
        return await self._built((record.id, record.version), record.definition)

    def prepare(self, record: PersonaRecord) -> PreparedPersona:
        """The record's version prepared, built now (on this thread) if not cached yet."""
        key = (record.id, record.version)
        found = self._prepared.get(key)
        if found is None:
            found = _build(record.id, record.version, record.definition)
            self._prepared[key] = found
        return found

    async def get(self, persona_id: str, version: int) -> PreparedPersona:
        """A version pinned earlier (by a session or an evaluation), with no access check:
        the caller was checked when it pinned the version."""
        key = (persona_id, version)
        found = self._prepared.get(key)
        if found is None:
            stored = await self.personas.stored_version(persona_id, version)
            if stored is None:
                raise NotFound(f"persona '{persona_id}' version {version} no longer exists")
            found = await self._built(key, stored.definition)
        return found

    async def _built(self, key: tuple[str, int],
                     definition: PersonaDefinition) -> PreparedPersona:
        found = self._prepared.get(key)
        if found is not None:
            return found
        pending = self._pending.get(key)
        if pending is None:
            pending = asyncio.ensure_future(asyncio.to_thread(_build, *key, definition))
            self._pending[key] = pending
            pending.add_done_callback(lambda done: self._settle(key, done))
        return await asyncio.shield(pending)

    def _settle(self, key: tuple[str, int], done: asyncio.Future[PreparedPersona]) -> None:
        """Keep a finished build; a failed one is not kept, so it is tried again."""
        self._pending.pop(key, None)
        if not done.cancelled() and done.exception() is None:
            self._prepared[key] = done.result()

    async def shown_name(self, persona_id: str, version: int) -> str:
        """The name a pinned version goes by; its id once the version is gone."""
        try:
            return (await self.get(persona_id, version)).definition.shown_name
        except NotFound:
            return persona_id


def _build(persona_id: str, version: int, definition: PersonaDefinition) -> PreparedPersona:
    try:
        prompt = build_system_prompt(definition)
    except (ValueError, RecursionError) as exc:  # a template that fails or breaks a bound
        raise Conflict(f"persona '{persona_id}': {exc}") from exc
    char = definition.shown_name
    return PreparedPersona(
        persona_id, version, definition, substitute(prompt, char=char),
        KnowledgeIndex(definition.knowledge, definition.language),
        model_choice(definition.model),
        Lorebook.compile(definition.knowledge, definition.lorebook, char),
        substitute(definition.post_history_instructions, char=char).strip())


def model_choice(settings: ModelSettings) -> ModelChoice:
    """A persona's model settings in the providers' own terms (they never see personas)."""
    return ModelChoice(provider=settings.provider, model=settings.model,
                       temperature=settings.temperature, max_tokens=settings.max_tokens,
                       top_p=settings.top_p)


def prompt_tokens(prepared: PreparedPersona, providers: ProviderRegistry) -> int:
    """The system prompt's length in tokens, by the tokenizer of the model the persona
    runs on (providers estimate until their model is loaded); estimated here too when
    that provider cannot be built on this server."""
    try:
        llm, _ = providers.resolve(prepared.model)
    except PersonaeError:
        return approximate_tokens(prepared.system_prompt)
    return llm.count_tokens(prepared.system_prompt)
