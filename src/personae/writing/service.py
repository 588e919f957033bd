"""Writing personas with their access rules; adapters (API, CLI) call only this.

A writing persona is a persona: it is created, versioned and read through
:class:`~personae.personas.service.PersonaService`, so its access rules apply (a
persona you cannot read is 404 here too). Its samples are private: only the owner and
admins may read them.

**Order of a create, and what a crash leaves.** Nothing is written until the samples
are measured and the synthesis is done (or recorded as failed). Then the persona is
created (version 1, its block naming the samples' digest) and the samples stored. If
storing the samples fails, the persona is deleted again. If the process dies between
the two writes, the persona is whole (its block is everything validation, drafting and
chat read) and only its samples are missing: its block names a digest no stored set
has, so reading the samples or regenerating says so (409, asking for the samples again
with ``PUT .../samples``, which repairs it) instead of showing a partial set. A replace
writes the new version first and the samples after it, under the same rule.
"""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from personae.auth.principal import Principal
from personae.auth.service import UserService
from personae.errors import (
    Conflict,
    FieldIssue,
    NotFound,
    PermissionDenied,
    ProviderError,
    TooLarge,
    ValidationFailed,
)
from personae.personas.prepared import PreparedPersonas
from personae.personas.records import PersonaRecord
from personae.personas.schema import Status, split_id
from personae.personas.service import PersonaService, can_write, namespace_for
from personae.personas.writing_block import Fingerprint, Onboarding, Synthesis, WritingBlock
from personae.providers.base import ModelChoice
from personae.providers.registry import ProviderRegistry
from personae.writing import adaptation, drafting, fingerprint, platforms, text, validation
from personae.writing.adaptation import PlatformAdaptation
from personae.writing.building import (
    AttemptCounter,
    Progress,
    WritingProgress,
    WritingRequest,
    check_attempts,
    check_embedded_model,
    check_language,
    definition,
    model_choice,
    persona_slug,
    summary,
    tell,
    with_block,
)
from personae.writing.records import SampleText, StoredSample, samples_digest
from personae.writing.reports import ValidationReport
from personae.writing.samples import (
    check_enough_words,
    check_is_writing,
    check_no_control_characters,
    check_samples,
)
from personae.writing.store import WritingStore
from personae.writing.synthesis import synthesise

MAX_DRAFT_CHARS = 100_000  # a draft to validate or optimise
MAX_TOPIC_CHARS = 2_000
MAX_NOTES_CHARS = 10_000
LIST_LIMIT = 200  # writing personas listed for one user


@dataclass(frozen=True, slots=True)
class CheckedCreate:
    """A create request that passed every check made before the work."""

    request: WritingRequest
    samples: builtins.list[SampleText]
    language: str | None


class WritingService:
    def __init__(self, personas: PersonaService, prepared: PreparedPersonas,
                 providers: ProviderRegistry, store: WritingStore, users: UserService) -> None:
        self.personas = personas
        self.prepared = prepared
        self.providers = providers
        self.store = store
        self.users = users

    # -- making and remaking -------------------------------------------------

    async def check_create(self, principal: Principal,
                           request: WritingRequest) -> CheckedCreate:
        """Every check a create makes before its work (bounds, attempts, language,
        model, samples that are writing, the id free), so a caller that streams the work
        can answer bad input before its stream opens."""
        samples = check_samples(request.samples)
        check_no_control_characters(request.name, "name", subject="request")
        check_attempts(request.max_attempts)
        language = check_language(request.language)
        self.model(request.model)
        await asyncio.to_thread(check_is_writing, samples, language)
        await self._check_free(principal, request)
        return CheckedCreate(request, samples, language)

    async def create(self, principal: Principal, request: WritingRequest | CheckedCreate,
                     progress: Progress | None = None) -> PersonaRecord:
        """Measure, synthesise, then create the persona (version 1) and its samples."""
        checked = (request if isinstance(request, CheckedCreate)
                   else await self.check_create(principal, request))
        request, samples, language = checked.request, checked.samples, checked.language
        block, words = await self._block(samples, request.onboarding, language,
                                         request.model, request.max_attempts, progress)
        await tell(progress, WritingProgress("storing", "storing the persona"))
        record = await self.personas.create(principal, definition(request, block),
                                            visibility=request.visibility,
                                            note="writing persona created")
        await self._store_or_undo(record, samples, words)
        await tell(progress, WritingProgress("stored", f"stored version {record.version}"))
        return record

    async def replace_samples(self, principal: Principal, persona_id: str,
                              samples: Sequence[SampleText], *, model: str | None = None,
                              max_attempts: int = 3,
                              progress: Progress | None = None) -> PersonaRecord:
        """New samples: re-measured and re-synthesised as a new version; the same
        samples (by digest) make no new version."""
        record, kept = await self.check_replace(principal, persona_id, samples, model=model,
                                                max_attempts=max_attempts)
        old = _block_of(record)
        stored = await self.store.samples(persona_id)
        digest = samples_digest([s.text for s in kept])
        if digest == old.samples.sha256 and _complete(old, stored):
            await tell(progress, WritingProgress("unchanged", "the samples are unchanged: "
                                                 f"still version {record.version}"))
            return record
        return await self._remake(principal, record, kept, model, max_attempts, progress,
                                  note="samples replaced")

    async def check_replace(self, principal: Principal, persona_id: str,
                            samples: Sequence[SampleText], *, model: str | None = None,
                            max_attempts: int = 3
                            ) -> tuple[PersonaRecord, builtins.list[SampleText]]:
        """Every check a samples replace makes before its work (see :meth:`check_create`)."""
        record = _not_archived(await self._owned(principal, persona_id))
        kept = check_samples(samples)
        check_attempts(max_attempts)
        self.model(model)
        await asyncio.to_thread(check_is_writing, kept, None)
        return record, kept

    async def regenerate(self, principal: Principal, persona_id: str, *,
                         model: str | None = None, max_attempts: int = 3,
                         progress: Progress | None = None) -> PersonaRecord:
        """Re-synthesise from the stored samples: a new version (none if the model's
        answer is the same as before: ``progress`` is then told "unchanged")."""
        record = _not_archived(await self._owned(principal, persona_id))
        check_attempts(max_attempts)
        self.model(model)
        stored = await self._complete_samples(record)
        kept = [SampleText(s.text, s.title) for s in stored]
        return await self._remake(principal, record, kept, model, max_attempts, progress,
                                  note="regenerated")

    # -- reads ------------------------------------------------------------------

    async def get(self, principal: Principal, persona_id: str) -> PersonaRecord:
        record = (await self.personas.get(principal, persona_id)).record
        _block_of(record)
        return record

    async def samples(self, principal: Principal,
                      persona_id: str) -> builtins.list[StoredSample]:
        """The samples, for the owner and admins only (anyone else: 404)."""
        record = await self._owned(principal, persona_id, hidden=True)
        return await self._complete_samples(record)

    async def list_for(self, principal: Principal, user: str) -> builtins.list[PersonaRecord]:
        """A user's writing personas ("me", a user id or name): themself or an admin."""
        yourself = user in ("me", principal.user_id, principal.name)
        if not yourself and not principal.is_admin:  # refused before any lookup: no leak
            raise PermissionDenied("only that user and admins can list a user's writing "
                                   "personas")
        owner_id = principal.user_id if yourself else await self._user_id(user)
        page = await self.personas.list(principal, owner=owner_id, tag="writing",
                                        limit=LIST_LIMIT)
        found = [(await self.personas.get(principal, item.id)).record for item in page.data]
        return [record for record in found if record.definition.writing is not None]

    # -- platforms ----------------------------------------------------------------

    async def adaptation(self, principal: Principal, persona_id: str,
                         platform_id: str) -> PlatformAdaptation:
        spec = platforms.platform(platform_id)
        persona = await self.prepared.usable(principal, persona_id)
        return adaptation.adapt(spec, persona_id=persona.persona_id, version=persona.version,
                                definition=persona.definition)

    async def validate(self, principal: Principal, platform_id: str, persona_id: str,
                       draft: str, title: str | None = None) -> ValidationReport:
        spec = platforms.platform(platform_id)
        _check_draft(draft)
        check_no_control_characters(title or "", "title", subject="draft")
        persona = await self.prepared.usable(principal, persona_id)
        return validation.validate(draft, spec, persona_id=persona.persona_id,
                                   version=persona.version, definition=persona.definition,
                                   title=title)

    async def optimise(self, principal: Principal, platform_id: str, persona_id: str,
                       draft: str, *, model: str | None = None,
                       max_attempts: int = 3) -> AsyncIterator[drafting.WritingEvent]:
        """The rewrite loop's events (checked before the first one is made)."""
        spec = platforms.platform(platform_id)
        _check_draft(draft)
        check_attempts(max_attempts)
        choice = self.model(model)
        persona = await self.prepared.usable(principal, persona_id)
        llm, settings = self.providers.resolve(choice or persona.model)
        return drafting.optimise(llm, settings, text=draft, spec=spec,
                                 persona_id=persona.persona_id, version=persona.version,
                                 definition=persona.definition, max_attempts=max_attempts)

    async def draft(self, principal: Principal, platform_id: str, persona_id: str,
                    topic: str, *, notes: str = "", model: str | None = None,
                    max_attempts: int = 3) -> AsyncIterator[drafting.WritingEvent]:
        spec = platforms.platform(platform_id)
        if not topic.strip() or len(topic) > MAX_TOPIC_CHARS or len(notes) > MAX_NOTES_CHARS:
            raise ValidationFailed([FieldIssue("topic", f"give a topic of 1-{MAX_TOPIC_CHARS:,} "
                                               f"characters (notes: at most "
                                               f"{MAX_NOTES_CHARS:,})")], subject="topic")
        check_no_control_characters(topic, "topic", subject="topic")
        check_no_control_characters(notes, "notes", subject="topic")
        check_attempts(max_attempts)
        choice = self.model(model)
        persona = await self.prepared.usable(principal, persona_id)
        llm, settings = self.providers.resolve(choice or persona.model)
        return drafting.draft(llm, settings, topic=topic, notes=notes, spec=spec,
                              persona_id=persona.persona_id, version=persona.version,
                              definition=persona.definition, max_attempts=max_attempts)

    def model(self, spec: str | None) -> ModelChoice | None:
        """The model a caller named, resolved before any work: an unknown provider or
        embedded model is a 422 naming the known ones."""
        choice = model_choice(spec, self.providers.names())
        provider = (choice.provider if choice else None) or self.providers.settings.default_provider
        try:
            kind = self.providers.config(provider).kind
        except ProviderError as exc:  # the configured default itself is missing
            raise ValidationFailed([FieldIssue("model", exc.message)], subject="model") from None
        check_embedded_model(choice, kind)
        return choice

    # -- steps ----------------------------------------------------------------------

    async def _block(self, samples: Sequence[SampleText], onboarding: Onboarding,
                     language: str | None, model: str | None, max_attempts: int,
                     progress: Progress | None) -> tuple[WritingBlock, list[int]]:
        await tell(progress, WritingProgress("measuring", "measuring the samples"))
        texts = [s.text for s in samples]
        measured = await asyncio.to_thread(fingerprint.measure, texts, language=language)
        check_enough_words(measured.word_count)
        words = await asyncio.to_thread(_word_counts, texts, measured.language)
        synthesis = await self._synthesis(measured, onboarding, texts, model, max_attempts,
                                          progress)
        block = WritingBlock(onboarding=onboarding, fingerprint=measured, synthesis=synthesis,
                             samples=summary(samples, measured.word_count))
        return block, words

    async def _synthesis(self, measured: Fingerprint, onboarding: Onboarding,
                         texts: Sequence[str], model: str | None, max_attempts: int,
                         progress: Progress | None) -> Synthesis:
        choice = self.model(model)
        llm, settings = self.providers.resolve(choice)
        counted = AttemptCounter(llm, progress, max_attempts)
        result = await synthesise(counted, settings, fingerprint=measured, onboarding=onboarding,
                                  samples=texts, max_attempts=max_attempts)
        provider = (choice.provider if choice else None) or self.providers.settings.default_provider
        return result.model_copy(update={"provider": result.provider or provider,
                                         "model": result.model or settings.model})

    async def _remake(self, principal: Principal, record: PersonaRecord,
                      samples: Sequence[SampleText], model: str | None, max_attempts: int,
                      progress: Progress | None, *, note: str) -> PersonaRecord:
        old = _block_of(record)
        block, words = await self._block(samples, old.onboarding, None, model, max_attempts,
                                         progress)
        await tell(progress, WritingProgress("storing", "storing the new version"))
        fresh = await self.personas.replace(
            principal, record.id, with_block(record.definition, block).to_data(),
            base_version=record.version, note=note)
        await self.store.replace(record.id, record.owner_id, samples, words)
        if fresh.version == record.version:  # the same definition: the registry keeps it
            await tell(progress, WritingProgress(
                "unchanged", f"unchanged: still version {fresh.version} (the new synthesis "
                "is the same as the stored one)"))
        else:
            await tell(progress, WritingProgress("stored", f"stored version {fresh.version}"))
        return fresh

    async def _store_or_undo(self, record: PersonaRecord, samples: Sequence[SampleText],
                             words: Sequence[int]) -> None:
        try:
            await self.store.replace(record.id, record.owner_id, samples, words)
        except BaseException:
            await self.personas.store.delete(record.id)
            self.personas.registry.invalidate(record.id)
            raise

    async def _check_free(self, principal: Principal, request: WritingRequest) -> None:
        """An id outside the caller's namespace, or a clash with one of the caller's
        personas, is told before any model call."""
        given, name = split_id(request.id or persona_slug(request.name))
        namespace = namespace_for(principal.name)
        if given is not None and given != namespace:
            raise PermissionDenied(f"'{request.id}': you can only create personas in your "
                                   f"own namespace '{namespace}/'",
                                   {"namespace": f"{namespace}/"})
        wanted = f"{namespace}/{name}"
        if await self.personas.registry.get(wanted) is not None:
            raise Conflict(f"persona '{wanted}' already exists; choose another id or "
                           "replace its samples", {"persona": wanted})

    async def _owned(self, principal: Principal, persona_id: str, *,
                     hidden: bool = False) -> PersonaRecord:
        """A writing persona the caller may change (owner or admin); with ``hidden``,
        anyone else is told it does not exist, as for a persona they cannot read."""
        record = await self.get(principal, persona_id)
        if not can_write(principal, record):
            if hidden:
                raise NotFound(f"persona '{persona_id}' not found")
            raise PermissionDenied(f"only the owner of '{persona_id}' and admins can "
                                   "change its samples")
        return record

    async def _complete_samples(self, record: PersonaRecord) -> builtins.list[StoredSample]:
        stored = await self.store.samples(record.id)
        if not _complete(_block_of(record), stored):
            raise Conflict(f"no samples are stored for persona '{record.id}' at its current "
                           "version (it was imported, or a write was interrupted): send "
                           f"them with PUT /v1/writing/personas/{record.id}/samples",
                           {"persona": record.id})
        return stored

    async def _user_id(self, user: str) -> str:
        found = await self.users.get_user(user)
        if found is None:
            raise NotFound(f"user '{user}' not found")
        return found.id


def _block_of(record: PersonaRecord) -> WritingBlock:
    if record.definition.writing is None:
        raise NotFound(f"persona '{record.id}' is not a writing persona")
    return record.definition.writing


def _not_archived(record: PersonaRecord) -> PersonaRecord:
    """Archived personas are not remade, as they are not used (restore them first)."""
    if record.status is Status.archived:
        raise Conflict(f"persona '{record.id}' is archived; restore it to use it",
                       {"persona": record.id})
    return record


def _complete(block: WritingBlock, stored: Sequence[StoredSample]) -> bool:
    return bool(stored) and samples_digest([s.text for s in stored]) == block.samples.sha256


def _check_draft(draft: str) -> None:
    check_no_control_characters(draft, "text", subject="draft")
    if not draft.strip():
        raise ValidationFailed([FieldIssue("text", "the draft is empty")], subject="draft")
    if len(draft) > MAX_DRAFT_CHARS:
        raise TooLarge(f"the draft has {len(draft):,} characters; at most "
                       f"{MAX_DRAFT_CHARS:,} are accepted", {"limit": MAX_DRAFT_CHARS})


def _word_counts(texts: Sequence[str], language: str) -> list[int]:
    return [len(text.words(sample, language)) for sample in texts]
