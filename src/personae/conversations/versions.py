"""Persona versions prepared once per process: definition, rendered prompt, knowledge index.

Versions never change, so everything derived from one is computed on first use and
kept (least recently used dropped first); turns and gateway calls share it.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from personae.conversations.knowledge import KnowledgeIndex
from personae.errors import Conflict, NotFound
from personae.personas.prompt import build_system_prompt
from personae.personas.schema import PersonaDefinition
from personae.personas.store import PersonaStore


@dataclass(frozen=True, slots=True)
class PreparedPersona:
    definition: PersonaDefinition
    system_prompt: str
    knowledge: KnowledgeIndex


class PreparedPersonas:
    def __init__(self, store: PersonaStore, max_entries: int = 1024) -> None:
        self.store = store
        self.max_entries = max_entries
        self._prepared: OrderedDict[tuple[str, int], PreparedPersona] = OrderedDict()

    def prepare(self, persona_id: str, version: int,
                definition: PersonaDefinition) -> PreparedPersona:
        """The prepared version, built from ``definition`` if not cached yet."""
        key = (persona_id, version)
        found = self._prepared.get(key)
        if found is None:
            try:
                prompt = build_system_prompt(definition)
            except ValueError as exc:  # a prompt template that fails at render time
                raise Conflict(f"persona '{persona_id}': {exc}") from exc
            found = PreparedPersona(definition, prompt,
                                    KnowledgeIndex(definition.knowledge, definition.language))
            self._prepared[key] = found
            while len(self._prepared) > self.max_entries:
                self._prepared.popitem(last=False)
        self._prepared.move_to_end(key)
        return found

    async def get(self, persona_id: str, version: int) -> PreparedPersona:
        """The prepared version, loaded from the store when not cached."""
        found = self._prepared.get((persona_id, version))
        if found is not None:
            self._prepared.move_to_end((persona_id, version))
            return found
        stored = await self.store.version(persona_id, version)
        if stored is None:
            raise NotFound(f"persona '{persona_id}' version {version} no longer exists")
        return self.prepare(persona_id, version, stored.definition)
