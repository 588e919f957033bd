"""WritingService on a real database (SQLite and PostgreSQL) with the scripted model:
create, replace, regenerate, a failed synthesis, and a failure between the writes."""

from __future__ import annotations

from typing import Any

import pytest

from personae.auth.principal import Principal
from personae.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from personae.providers.fake.scripted import ScriptedLLM
from personae.runtime import Runtime
from personae.writing.building import WritingProgress, WritingRequest
from personae.writing.records import SampleText
from tests.support.writing_samples import IDENTITY, SAMPLES, scripted_model, synthesis_answer


def model(runtime: Runtime) -> ScriptedLLM:
    return scripted_model(runtime.providers)


def request(samples: tuple[str, ...] = SAMPLES, **fields: Any) -> WritingRequest:
    return WritingRequest(name="Sam Lee", samples=[SampleText(t) for t in samples], **fields)


async def test_create_stores_version_one_with_the_block_and_the_samples(
        runtime: Runtime, people: dict[str, Principal]) -> None:
    model(runtime).queue(synthesis_answer())
    seen: list[WritingProgress] = []
    record = await runtime.writing.create(people["alice"], request(), seen.append)
    assert (record.id, record.version) == ("alice/sam-lee", 1)
    block = record.definition.writing
    assert block is not None and block.synthesis.status == "ok"
    assert record.definition.description == IDENTITY and "writing" in record.definition.tags
    assert block.samples.count == len(SAMPLES)
    stored = await runtime.writing.samples(people["alice"], record.id)
    assert [s.text for s in stored] == list(SAMPLES)
    messages = [event.message for event in seen]
    assert messages[0] == "measuring the samples"
    assert "synthesis attempt 1 of 3" in messages and messages[-1] == "stored version 1"


async def test_new_samples_make_version_two_and_the_same_samples_none(
        runtime: Runtime, people: dict[str, Principal]) -> None:
    alice = people["alice"]
    model(runtime).queue(synthesis_answer(), synthesis_answer("A lead who writes plainly."))
    record = await runtime.writing.create(alice, request())
    changed = [*SAMPLES[:3], SAMPLES[3] + " We fixed that with a checklist."]
    second = await runtime.writing.replace_samples(alice, record.id,
                                                   [SampleText(t) for t in changed])
    assert second.version == 2
    assert [s.text for s in await runtime.writing.samples(alice, record.id)] == changed
    seen: list[WritingProgress] = []
    same = await runtime.writing.replace_samples(
        alice, record.id, [SampleText(t) for t in changed], progress=seen.append)
    assert same.version == 2 and seen[-1].stage == "unchanged"
    assert len(model(runtime).requests) == 2  # no model call for unchanged samples


async def test_a_failed_synthesis_is_stored_as_failed_with_nothing_invented(
        runtime: Runtime, people: dict[str, Principal]) -> None:
    model(runtime).queue("not json", '{"identity": 3}', "still not json")
    record = await runtime.writing.create(people["alice"], request())
    block = record.definition.writing
    assert block is not None
    assert block.synthesis.status == "failed" and len(block.synthesis.errors) == 3
    assert block.synthesis.identity is None and block.synthesis.tones is None
    assert record.definition.description.startswith("Sam Lee's writing voice, measured from 4")


async def test_a_failure_storing_the_samples_leaves_no_persona(
        runtime: Runtime, people: dict[str, Principal], monkeypatch: pytest.MonkeyPatch) -> None:
    model(runtime).queue(synthesis_answer())

    async def broken(*args: Any) -> None:
        raise OSError("disk gone")

    monkeypatch.setattr(runtime.writing.store, "replace", broken)
    with pytest.raises(OSError, match="disk gone"):
        await runtime.writing.create(people["alice"], request())
    with pytest.raises(NotFound):
        await runtime.personas.get(people["alice"], "alice/sam-lee")
    assert await runtime.writing.list_for(people["alice"], "me") == []


async def test_samples_missing_after_an_interrupted_write_are_reported_then_repaired(
        runtime: Runtime, people: dict[str, Principal]) -> None:
    alice = people["alice"]
    model(runtime).queue(synthesis_answer())
    record = await runtime.writing.create(alice, request())
    await runtime.writing.store.replace(record.id, alice.user_id, [], [])  # the crash
    with pytest.raises(Conflict, match="PUT"):
        await runtime.writing.samples(alice, record.id)
    with pytest.raises(Conflict):
        await runtime.writing.regenerate(alice, record.id)
    repaired = await runtime.writing.replace_samples(alice, record.id,
                                                     [SampleText(t) for t in SAMPLES])
    assert len(await runtime.writing.samples(alice, record.id)) == len(SAMPLES)
    assert repaired.version in (1, 2)


async def test_regenerate_uses_the_stored_samples(
        runtime: Runtime, people: dict[str, Principal]) -> None:
    alice = people["alice"]
    model(runtime).queue(synthesis_answer(), synthesis_answer("A lead who writes plainly."))
    record = await runtime.writing.create(alice, request())
    again = await runtime.writing.regenerate(alice, record.id)
    assert again.version == 2 and again.definition.description == "A lead who writes plainly."
    assert "Shipping beats polishing." in model(runtime).requests[1].messages[-1].content


async def test_samples_and_listings_belong_to_their_owner(
        runtime: Runtime, people: dict[str, Principal]) -> None:
    model(runtime).queue(synthesis_answer())
    record = await runtime.writing.create(people["alice"], request())
    with pytest.raises(NotFound):
        await runtime.writing.samples(people["bob"], record.id)
    with pytest.raises(NotFound):
        await runtime.writing.get(people["bob"], record.id)
    with pytest.raises(PermissionDenied):
        await runtime.writing.list_for(people["bob"], "alice")
    assert len(await runtime.writing.samples(people["admin"], record.id)) == len(SAMPLES)
    listed = await runtime.writing.list_for(people["admin"], people["alice"].user_id)
    assert [r.id for r in listed] == [record.id]
    assert await runtime.writing.list_for(people["bob"], "me") == []


async def test_too_little_text_is_refused_before_any_model_call(
        runtime: Runtime, people: dict[str, Principal]) -> None:
    with pytest.raises(ValidationFailed, match="at least 50 are needed"):
        await runtime.writing.create(people["alice"], request(("Just a few words.",)))
    assert model(runtime).requests == []


async def test_an_id_in_use_is_refused_before_any_model_call(
        runtime: Runtime, people: dict[str, Principal]) -> None:
    model(runtime).queue(synthesis_answer())
    await runtime.writing.create(people["alice"], request())
    with pytest.raises(Conflict, match="already exists"):
        await runtime.writing.create(people["alice"], request())
    assert len(model(runtime).requests) == 1
    model(runtime).queue(synthesis_answer())  # the same name is free in bob's namespace
    assert (await runtime.writing.create(people["bob"], request())).id == "bob/sam-lee"
