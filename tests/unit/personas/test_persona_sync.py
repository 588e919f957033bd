"""Folder sync: idempotent upsert, reports, all-or-nothing (both databases)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from personae.auth.principal import Principal
from personae.errors import InvalidInput
from personae.personas.files import sync_folder, write_files
from personae.personas.records import NewVersion
from personae.personas.schema import Visibility
from personae.personas.validation import parse_persona
from personae.runtime import Runtime

ASTRO = """\
id: mohit
name: Mohit
language: English
greeting: Namaste! I am Mohit.
consultation_style:
  pace: brisk
"""


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "personas"
    _write(root, "mohit.yaml", ASTRO)
    _write(root, "priyanka.json", json.dumps({"name": "Priyanka", "language": "en",
                                              "tags": ["astrology", "love"]}))
    _write(root, "nested/panel.yml", "personas:\n  - {id: genz, name: Gen Z}\n"
                                     "  - {id: adv, name: Advertiser}\n")
    return root


async def test_sync_creates_then_reports_unchanged(runtime: Runtime, folder: Path) -> None:
    first = await sync_folder(runtime.store, folder, author="sync")
    assert sorted(first.created) == ["adv", "genz", "mohit", "priyanka"]
    assert first.applied and not first.invalid
    second = await sync_folder(runtime.store, folder, author="sync")
    assert sorted(second.unchanged) == ["adv", "genz", "mohit", "priyanka"]
    assert second.created == second.updated == []
    assert [v.number for v in await runtime.store.versions("mohit")] == [1]
    record = await runtime.store.get("priyanka")
    assert record is not None and record.definition.id == "priyanka"  # id from file stem


async def test_reformatted_file_is_unchanged(runtime: Runtime, folder: Path) -> None:
    await sync_folder(runtime.store, folder, author="sync")
    _write(folder, "mohit.yaml", "# a comment\n" + ASTRO.replace("pace: brisk", "pace:  brisk"))
    report = await sync_folder(runtime.store, folder, author="sync")
    assert "mohit" in report.unchanged and not report.updated
    assert [v.number for v in await runtime.store.versions("mohit")] == [1]


async def test_changed_file_makes_one_new_version(runtime: Runtime, folder: Path) -> None:
    await sync_folder(runtime.store, folder, author="sync")
    _write(folder, "mohit.yaml", ASTRO.replace("brisk", "slow"))
    report = await sync_folder(runtime.store, folder, author="sync")
    assert report.updated == ["mohit"]
    record = await runtime.store.get("mohit")
    assert record is not None and record.version == 2
    assert record.definition.traits["consultation_style"] == {"pace": "slow"}
    assert (await runtime.store.version("mohit", 2)).note == "synced from mohit.yaml"


async def test_invalid_file_applies_nothing(runtime: Runtime, folder: Path) -> None:
    _write(folder, "broken.yaml", "name: Broken\ngreetings: ['']\n")
    _write(folder, "bad-syntax.json", '{"name": "x",}')
    report = await sync_folder(runtime.store, folder, author="sync")
    assert not report.applied
    problems = {item["source"]: item["message"] for item in report.invalid}
    assert problems["broken.yaml"] == "broken.yaml: greetings[0]: must not be empty"
    assert problems["bad-syntax.json"].startswith("bad-syntax.json: line 1 column")
    assert await runtime.store.count() == 0


async def test_skip_invalid_applies_the_rest(runtime: Runtime, folder: Path) -> None:
    _write(folder, "broken.yaml", "name: Broken\nsytem_prompt: hi\n")
    report = await sync_folder(runtime.store, folder, author="sync", skip_invalid=True)
    assert report.applied and len(report.created) == 4
    assert report.invalid[0]["errors"] == [
        {"path": "sytem_prompt", "message": "unknown field; did you mean 'system_prompt'?"}]


async def test_duplicate_ids_are_invalid(runtime: Runtime, folder: Path) -> None:
    _write(folder, "zz-copy.yaml", ASTRO)
    report = await sync_folder(runtime.store, folder, author="sync")
    assert not report.applied
    assert "also defined in mohit.yaml" in report.invalid[0]["message"]


async def test_dry_run_writes_nothing(runtime: Runtime, folder: Path) -> None:
    report = await sync_folder(runtime.store, folder, author="sync", dry_run=True)
    assert len(report.created) == 4 and not report.applied
    assert await runtime.store.count() == 0


async def test_sync_does_not_take_over_a_users_persona(
    runtime: Runtime, people: dict[str, Principal], folder: Path
) -> None:
    # A user's persona with a plain id, as rows made before owner namespaces have.
    mine = NewVersion(parse_persona({"id": "mohit", "name": "Mine"}), "alice", "created")
    await runtime.store.create([(mine, people["alice"].user_id, Visibility.private)])
    report = await sync_folder(runtime.store, folder, author="sync")
    assert "exists with another owner" in report.invalid[0]["message"]
    assert not report.applied


async def test_missing_folder_is_a_clear_error(runtime: Runtime, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="not a folder"):
        await sync_folder(runtime.store, tmp_path / "nope", author="sync")


async def test_export_then_sync_round_trips(runtime: Runtime, folder: Path,
                                            tmp_path: Path) -> None:
    await sync_folder(runtime.store, folder, author="sync")
    records = [await runtime.store.get(pid) for pid in ("mohit", "priyanka", "genz", "adv")]
    out = tmp_path / "exported"
    write_files([r.definition for r in records if r], out)
    report = await sync_folder(runtime.store, out, author="sync")
    assert sorted(report.unchanged) == ["adv", "genz", "mohit", "priyanka"]
    assert not report.updated and not report.created


async def test_sync_for_an_owner_is_private_by_default(
    runtime: Runtime, people: dict[str, Principal], folder: Path
) -> None:
    alice = people["alice"]
    await sync_folder(runtime.store, folder, author="alice", owner_id=alice.user_id,
                      namespace="alice")
    record = await runtime.store.get("alice/mohit")
    assert record is not None
    assert record.owner_id == alice.user_id
    assert record.visibility.value == "private"
    assert (await runtime.personas.list(people["bob"])).count == 0


async def test_sync_for_an_owner_keeps_to_their_namespace(
    runtime: Runtime, people: dict[str, Principal], folder: Path
) -> None:
    _write(folder, "theirs.yaml", "{id: bob/theirs, name: Theirs}\n")
    _write(folder, "own.yaml", "{id: alice/own, name: Own}\n")
    report = await sync_folder(runtime.store, folder, author="alice",
                               owner_id=people["alice"].user_id, namespace="alice",
                               skip_invalid=True)
    (refused,) = report.invalid
    assert refused["source"] == "theirs.yaml"
    assert "only create personas in the owner's namespace 'alice/'" in refused["message"]
    assert sorted(report.created) == ["alice/adv", "alice/genz", "alice/mohit", "alice/own",
                                      "alice/priyanka"]
    assert await runtime.store.get("bob/theirs") is None


async def test_a_global_sync_refuses_namespaced_ids(runtime: Runtime, folder: Path) -> None:
    _write(folder, "owned.yaml", "{id: alice/owned, name: Owned}\n")
    report = await sync_folder(runtime.store, folder, author="sync")
    assert not report.applied
    assert "a global persona has a plain id" in report.invalid[0]["message"]
