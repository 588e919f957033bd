"""WritingService rules found in use: the namespace checked before any work, archived
personas not remade, and what an imported persona without samples is told."""

from __future__ import annotations

from pathlib import Path

import pytest

from personae.auth.principal import Principal
from personae.errors import Conflict, PermissionDenied, ValidationFailed
from personae.personas.schema import Status
from personae.providers.fake.scripted import ScriptedLLM
from personae.runtime import Runtime
from personae.writing.building import WritingRequest
from personae.writing.records import SampleText
from personae.writing.samples import read_folder
from tests.support.writing_samples import SAMPLES, scripted_model, synthesis_answer, write_samples


def model(runtime: Runtime) -> ScriptedLLM:
    return scripted_model(runtime.providers)


def request(**fields: str) -> WritingRequest:
    return WritingRequest(name="Sam Lee", samples=[SampleText(t) for t in SAMPLES], **fields)


async def test_an_id_in_another_namespace_is_refused_by_the_checks_before_any_work(
        runtime: Runtime, people: dict[str, Principal]) -> None:
    with pytest.raises(PermissionDenied, match="namespace 'bob/'"):
        await runtime.writing.check_create(people["bob"], request(id="alice/zzz"))
    assert model(runtime).requests == []


async def test_an_archived_persona_is_neither_regenerated_nor_given_new_samples(
        runtime: Runtime, people: dict[str, Principal]) -> None:
    alice = people["alice"]
    model(runtime).queue(synthesis_answer(), synthesis_answer())
    record = await runtime.writing.create(alice, request())
    archived = await runtime.personas.set_status(alice, record.id, Status.archived)
    with pytest.raises(Conflict, match="archived; restore it"):
        await runtime.writing.regenerate(alice, record.id)
    changed = [SampleText(t) for t in (*SAMPLES[:3], SAMPLES[3] + " And a checklist.")]
    with pytest.raises(Conflict, match="archived; restore it"):
        await runtime.writing.replace_samples(alice, record.id, changed)
    assert len(model(runtime).requests) == 1
    assert (await runtime.personas.get(alice, record.id)).record.version == archived.version


async def test_an_imported_writing_persona_is_told_to_send_its_samples(
        runtime: Runtime, people: dict[str, Principal]) -> None:
    model(runtime).queue(synthesis_answer())
    record = await runtime.writing.create(people["alice"], request())
    data = record.definition.to_data() | {"id": "sam-lee"}
    copy = await runtime.personas.create(people["bob"], data)  # as an import makes it
    with pytest.raises(Conflict) as raised:
        await runtime.writing.regenerate(people["bob"], copy.id)
    message = raised.value.message
    assert "no samples are stored" in message and "imported" in message
    assert f"PUT /v1/writing/personas/{copy.id}/samples" in message


async def test_a_nul_in_a_sample_or_a_samples_file_is_refused_naming_it(
        runtime: Runtime, people: dict[str, Principal], tmp_path: Path) -> None:
    broken = [*SAMPLES[:3], SAMPLES[3] + "\u0000"]
    with pytest.raises(ValidationFailed, match=r"U\+0000") as raised:
        await runtime.writing.check_create(
            people["alice"], WritingRequest(name="Sam Lee",
                                            samples=[SampleText(t) for t in broken]))
    assert raised.value.details["errors"][0]["path"] == "samples[3].text"
    folder = write_samples(tmp_path / "posts", tuple(broken))
    with pytest.raises(ValidationFailed, match=r"post-03.txt: contains the control "
                                               r"character U\+0000"):
        read_folder(folder)
    assert model(runtime).requests == []
