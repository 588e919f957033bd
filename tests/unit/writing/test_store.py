"""The writing samples store on a real database (SQLite and PostgreSQL): a set replaced
whole, kept in order, and gone with its persona."""

from __future__ import annotations

from personae.runtime import Runtime
from personae.writing.records import SampleText
from personae.writing.store import WritingStore
from tests.support.runtime import create_people


async def persona_of_alice(runtime: Runtime) -> tuple[str, str]:
    alice = (await create_people(runtime))["alice"]
    record = await runtime.personas.create(alice, {"id": "voice", "name": "Voice"})
    return record.id, alice.user_id


async def test_replace_keeps_order_and_replaces_the_whole_set(runtime: Runtime) -> None:
    persona_id, owner = await persona_of_alice(runtime)
    store = WritingStore(runtime.engine)
    await store.replace(persona_id, owner, [SampleText("b first", "b"), SampleText("a")], [2, 1])
    first = await store.samples(persona_id)
    assert [(s.position, s.title, s.text, s.words) for s in first] == [
        (0, "b", "b first", 2), (1, None, "a", 1)]
    assert first[0].sha256 == SampleText("b first").sha256

    await store.replace(persona_id, owner, [SampleText("only one")], [2])
    assert [s.text for s in await store.samples(persona_id)] == ["only one"]
    assert await store.count(persona_id) == 1


async def test_samples_go_with_their_persona(runtime: Runtime) -> None:
    persona_id, owner = await persona_of_alice(runtime)
    store = WritingStore(runtime.engine)
    await store.replace(persona_id, owner, [SampleText("some words here")], [3])
    admin = await runtime.auth.local_admin()
    await runtime.personas.hard_delete(admin, persona_id)
    assert await store.samples(persona_id) == []

