"""Integers too large for a database column are refused at the edge, on both backends.

A number of 2**63 or more in an offset or a version number once reached the driver
(SQLite's OverflowError, PostgreSQL's out-of-range error) and came back as a 500.
Each such parameter is bounded in the schema, so the answer is a 422 naming the bound.
"""

from __future__ import annotations

from typing import Any

import pytest

from personae.api.schemas.common import MAX_DB_INT
from tests.support.api import Api

HUGE = [2**63, 2**64]
ALICE_PERSONA = {"id": "ada", "name": "Ada", "language": "en"}


@pytest.fixture
async def persona_url(api: Api) -> str:
    created = await api.client.post("/v1/personas", json={"definition": ALICE_PERSONA},
                                    headers=api.as_("alice"))
    assert created.status_code == 201, created.text
    return f"/v1/personas/{created.json()['id']}"


def _names_the_bound(response: Any, where: str) -> None:
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert f"{where}: " in error["message"]
    assert str(MAX_DB_INT) in error["message"]


@pytest.mark.parametrize("number", HUGE)
@pytest.mark.parametrize("listing", ["/v1/personas", "/v1/sessions", "/v1/evaluations"])
async def test_huge_offset_is_a_422(api: Api, listing: str, number: int) -> None:
    response = await api.client.get(listing, params={"offset": number},
                                    headers=api.as_("alice"))
    _names_the_bound(response, "offset")


@pytest.mark.parametrize("number", HUGE)
async def test_huge_version_number_is_a_422(api: Api, persona_url: str, number: int) -> None:
    response = await api.client.get(f"{persona_url}/versions/{number}",
                                    headers=api.as_("alice"))
    _names_the_bound(response, "number")


@pytest.mark.parametrize("number", HUGE)
@pytest.mark.parametrize("bound", ["from", "to"])
async def test_huge_diff_bound_is_a_422(api: Api, persona_url: str, bound: str,
                                        number: int) -> None:
    response = await api.client.get(f"{persona_url}/diff", params={bound: number},
                                    headers=api.as_("alice"))
    _names_the_bound(response, bound)


@pytest.mark.parametrize("number", HUGE)
@pytest.mark.parametrize("field", ["version", "base_version"])
async def test_huge_rollback_version_is_a_422(api: Api, persona_url: str, field: str,
                                              number: int) -> None:
    body = {"version": 1, field: number}
    response = await api.client.post(f"{persona_url}/rollback", json=body,
                                     headers=api.as_("alice"))
    _names_the_bound(response, field)


@pytest.mark.parametrize("number", HUGE)
@pytest.mark.parametrize(("method", "suffix"), [("PUT", ""), ("PATCH", ""),
                                                 ("POST", "/archive"), ("POST", "/restore")])
async def test_huge_base_version_is_a_422(api: Api, persona_url: str, method: str,
                                          suffix: str, number: int) -> None:
    body: dict[str, Any] = {"base_version": number}
    if not suffix:
        body["definition"] = ALICE_PERSONA
    response = await api.client.request(method, persona_url + suffix, json=body,
                                        headers=api.as_("alice"))
    _names_the_bound(response, "base_version")


@pytest.mark.parametrize("number", HUGE)
async def test_huge_if_match_is_refused(api: Api, persona_url: str, number: int) -> None:
    response = await api.client.patch(persona_url, json={"definition": {"description": "x"}},
                                      headers={**api.as_("alice"), "If-Match": f'"{number}"'})
    assert response.status_code == 400, response.text
    assert "If-Match" in response.json()["error"]["message"]


async def test_the_largest_allowed_values_still_answer(api: Api, persona_url: str) -> None:
    """At the bound itself the request is valid: an empty page, a missing version."""
    alice = api.as_("alice")
    page = await api.client.get("/v1/personas", params={"offset": MAX_DB_INT}, headers=alice)
    assert page.status_code == 200 and page.json()["data"] == []
    missing = await api.client.get(f"{persona_url}/versions/{MAX_DB_INT}", headers=alice)
    assert missing.status_code == 404
    assert "version" in missing.json()["error"]["message"]
    first = await api.client.get(f"{persona_url}/versions/1", headers=alice)
    assert first.status_code == 200
