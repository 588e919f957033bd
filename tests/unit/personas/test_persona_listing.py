"""Listing: pagination and filters (both databases)."""

from __future__ import annotations

from personae.auth.principal import Principal
from personae.personas.records import PersonaSummary
from personae.personas.schema import Status
from personae.runtime import Runtime


async def _seed(runtime: Runtime, admin: Principal) -> None:
    for index in range(12):
        language = "hi" if index % 3 == 0 else "en"
        tags = ["astrology"] if index % 2 == 0 else ["panel", "media"]
        await runtime.personas.create(
            admin, {"id": f"p{index:02d}", "name": f"Persona {index:02d}", "language": language,
                    "tags": tags, "description": "likes 100% cotton" if index == 7 else "",
                    "status": "draft" if index == 11 else "active"},
            global_scope=True)


def _ids(items: list[PersonaSummary]) -> list[str]:
    return [s.id for s in items]


async def test_pagination_is_stable(runtime: Runtime, people: dict[str, Principal]) -> None:
    await _seed(runtime, people["admin"])
    first = await runtime.personas.list(people["alice"], limit=5, offset=0)
    second = await runtime.personas.list(people["alice"], limit=5, offset=5)
    third = await runtime.personas.list(people["alice"], limit=5, offset=10)
    assert first.count == second.count == 12
    assert _ids(first.data + second.data + third.data) == [f"p{i:02d}" for i in range(12)]


async def test_filters(runtime: Runtime, people: dict[str, Principal]) -> None:
    await _seed(runtime, people["admin"])
    alice = people["alice"]
    hindi = await runtime.personas.list(alice, language="hi")
    assert _ids(hindi.data) == ["p00", "p03", "p06", "p09"]
    panel = await runtime.personas.list(alice, tag="panel", language="en")
    assert _ids(panel.data) == ["p01", "p05", "p07", "p11"]
    assert panel.data[0].tags == ["media", "panel"]
    drafts = await runtime.personas.list(alice, status=Status.draft)
    assert _ids(drafts.data) == ["p11"]
    text = await runtime.personas.list(alice, text="100%")
    assert _ids(text.data) == ["p07"]
    by_name = await runtime.personas.list(alice, text="PERSONA 04")
    assert _ids(by_name.data) == ["p04"]
    assert (await runtime.personas.list(alice, owner="global")).count == 12
    assert (await runtime.personas.list(alice, owner=alice.user_id)).count == 0
