"""Imports and writes that used to be accepted and fail later, over HTTP: a card whose
name is too long for an id, and a card or definition with unbounded text."""

from __future__ import annotations

import json
import time

from personae.personas.definition_bounds import MAX_TEXT_CHARS
from personae.personas.schema import ID_MAX_LENGTH
from tests.support.api import Api

NEMO = "Captain Nemo of the Nautilus, Master of the Twenty Thousand Leagues"


def _card(**data: str) -> bytes:
    return json.dumps({"spec": "chara_card_v2", "spec_version": "2.0",
                       "data": {"name": NEMO, "description": "Commander of the Nautilus.",
                                "first_mes": "Welcome aboard.", **data}}).encode()


async def _import(api: Api, content: bytes, **form: str):
    return await api.client.post("/v1/personas/import", files={"file": ("card.json", content)},
                                 data=form, headers=api.as_("alice"))


def _paths(response) -> list[str]:
    return [issue["path"] for issue in response.json()["error"]["details"]["errors"]]


async def test_a_card_with_a_long_name_imports_with_an_id_that_fits(api: Api) -> None:
    response = await _import(api, _card())
    assert response.status_code == 201, response.text
    created = response.json()["data"][0]
    assert created["id"].startswith("alice/captain-nemo-of-the-nautilus-")
    assert len(created["id"]) <= ID_MAX_LENGTH and not created["id"].endswith("-")
    assert created["definition"]["name"] == NEMO
    fetched = await api.client.get(f"/v1/personas/{created['id']}", headers=api.as_("alice"))
    assert fetched.status_code == 200, fetched.text


async def test_an_explicit_id_too_long_for_the_namespace_is_still_a_422(api: Api) -> None:
    response = await _import(api, _card(), id="n" * 60)
    assert response.status_code == 422, response.text
    assert _paths(response) == ["id"]
    assert "longer than 64 characters" in response.json()["error"]["message"]


async def test_a_card_with_a_10_mb_description_is_refused_at_once(api: Api) -> None:
    started = time.perf_counter()
    response = await _import(api, _card(description="d" * (10 * 1024 * 1024)))
    assert response.status_code == 422, response.text[:500]
    assert _paths(response) == ["description"]
    assert f"at most {MAX_TEXT_CHARS:,}" in response.json()["error"]["message"]
    assert time.perf_counter() - started < 5
    listed = await api.client.get("/v1/personas", headers=api.as_("alice"))
    assert all(p["name"] != NEMO for p in listed.json()["data"])


async def test_a_definition_with_a_too_long_field_is_a_422_naming_it(api: Api) -> None:
    body = {"definition": {"id": "ada", "name": "Ada",
                           "greetings": ["Hello.", "g" * (MAX_TEXT_CHARS + 1)]}}
    created = await api.client.post("/v1/personas", json=body, headers=api.as_("alice"))
    assert created.status_code == 422, created.text
    assert _paths(created) == ["greetings[1]"]
    body["definition"]["greetings"] = ["Hello."]
    fine = await api.client.post("/v1/personas", json=body, headers=api.as_("alice"))
    assert fine.status_code == 201, fine.text
    too_long = {"system_prompt": "s" * (MAX_TEXT_CHARS + 1)}
    patched = await api.client.patch("/v1/personas/alice/ada", json={"definition": too_long},
                                     headers={**api.as_("alice"), "If-Match": '"1"'})
    assert patched.status_code == 422, patched.text
    assert _paths(patched) == ["system_prompt"]
