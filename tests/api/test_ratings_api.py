"""``/v1/sessions/{id}/messages/{mid}/rating``: thumbs up or down on replies, by the
session's owner, counted per persona version in the persona's metrics."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from personae.conversations.ratings import MAX_NOTE_CHARS
from tests.support.api import Api, serve_with_persona
from tests.support.writing_samples import scripted_settings

TUTOR = {"id": "tutor", "name": "Tutor", "language": "en"}
ID = "alice/tutor"


@pytest.fixture
async def rapi(database_url: str, tmp_path: Path) -> AsyncIterator[Api]:
    async for api in serve_with_persona(scripted_settings(database_url, tmp_path,
                                                          anonymous_loopback=False), TUTOR):
        yield api


async def _exchange(api: Api, who: str = "alice") -> tuple[str, int, int]:
    """A session with one turn: its id, the user's message id and the reply's."""
    opened = await api.client.post("/v1/sessions", json={"persona_id": ID},
                                   headers=api.as_(who))
    assert opened.status_code == 201, opened.text
    sid = opened.json()["session"]["id"]
    sent = await api.client.post(f"/v1/sessions/{sid}/messages", json={"content": "hello"},
                                 headers=api.as_(who))
    assert sent.status_code == 200, sent.text
    history = (await api.client.get(f"/v1/sessions/{sid}/messages",
                                    headers=api.as_(who))).json()["data"]
    user, reply = history[-2], history[-1]
    assert (user["role"], reply["role"]) == ("user", "assistant")
    return sid, user["id"], reply["id"]


def _path(sid: str, message: int) -> str:
    return f"/v1/sessions/{sid}/messages/{message}/rating"


async def _rate(api: Api, sid: str, message: int, who: str = "alice",
                **body: Any) -> Any:
    return await api.client.post(_path(sid, message), json=body, headers=api.as_(who))


async def _ratings(api: Api) -> dict[int, dict[str, int]]:
    body = (await api.client.get(f"/v1/personas/{ID}/metrics",
                                 headers=api.as_("alice"))).json()
    return {v["version"]: v["totals"]["ratings"] for v in body["versions"]}


async def test_rate_rerate_and_delete(rapi: Api) -> None:
    sid, _, reply = await _exchange(rapi)
    rated = await _rate(rapi, sid, reply, rating="up", note="clear answer")
    assert rated.status_code == 200, rated.text
    first = rated.json()
    assert first["rating"] == "up" and first["note"] == "clear answer"
    assert (first["persona_id"], first["persona_version"]) == (ID, 1)
    again = await _rate(rapi, sid, reply, rating="down")
    assert again.status_code == 200
    assert again.json()["rating"] == "down" and again.json()["note"] is None
    assert again.json()["created_at"] == first["created_at"]
    assert await _ratings(rapi) == {1: {"up": 0, "down": 1}}
    removed = await rapi.client.delete(_path(sid, reply), headers=rapi.as_("alice"))
    assert removed.status_code == 204
    assert await _ratings(rapi) == {1: {"up": 0, "down": 0}}
    gone = await rapi.client.delete(_path(sid, reply), headers=rapi.as_("alice"))
    assert gone.status_code == 404


async def test_ratings_count_per_version(rapi: Api) -> None:
    old_sid, _, old_reply = await _exchange(rapi)
    changed = await rapi.client.patch(f"/v1/personas/{ID}", json={
        "definition": {"description": "v2"}, "base_version": 1}, headers=rapi.as_("alice"))
    assert changed.status_code == 200, changed.text
    sid, _, reply = await _exchange(rapi)
    other_sid, _, other = await _exchange(rapi)
    assert (await _rate(rapi, old_sid, old_reply, rating="down")).status_code == 200
    assert (await _rate(rapi, sid, reply, rating="up")).status_code == 200
    assert (await _rate(rapi, other_sid, other, rating="up")).status_code == 200
    assert await _ratings(rapi) == {1: {"up": 0, "down": 1}, 2: {"up": 2, "down": 0}}


async def test_another_users_ids_are_not_found(rapi: Api) -> None:
    sid, _, reply = await _exchange(rapi)
    bob_sid, _, bob_reply = await _exchange(rapi, "bob")
    attempts = [await _rate(rapi, sid, reply, "bob", rating="up"),  # alice's session
                await _rate(rapi, bob_sid, reply, "bob", rating="up"),  # not in bob's session
                await _rate(rapi, "0" * 32, reply, "bob", rating="up"),  # no such session
                await _rate(rapi, bob_sid, 2**31 - 1, "bob", rating="up")]  # no such message
    assert [a.status_code for a in attempts] == [404] * 4
    assert attempts[0].json()["error"]["message"].replace(sid, "<id>") == \
        attempts[2].json()["error"]["message"].replace("0" * 32, "<id>")
    assert attempts[1].json()["error"]["message"] == \
        attempts[3].json()["error"]["message"].replace(str(2**31 - 1), str(reply))
    deleted = await rapi.client.delete(_path(sid, reply), headers=rapi.as_("bob"))
    assert deleted.status_code == 404
    assert (await _rate(rapi, bob_sid, bob_reply, "bob", rating="up")).status_code == 200


async def test_only_replies_can_be_rated(rapi: Api) -> None:
    sid, user, _ = await _exchange(rapi)
    refused = await _rate(rapi, sid, user, rating="up")
    assert refused.status_code == 422
    assert "only the persona's replies can be rated" in refused.json()["error"]["message"]


@pytest.mark.parametrize("body", [
    {"rating": "sideways"}, {"rating": "up", "note": "x" * (MAX_NOTE_CHARS + 1)},
    {"note": "no rating"}, {"rating": "up", "extra": 1}])
async def test_bad_bodies_are_refused(rapi: Api, body: dict[str, Any]) -> None:
    sid, _, reply = await _exchange(rapi)
    response = await _rate(rapi, sid, reply, **body)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "validation_error"


async def test_a_note_at_the_bound_is_kept(rapi: Api) -> None:
    sid, _, reply = await _exchange(rapi)
    note = "n" * MAX_NOTE_CHARS
    response = await _rate(rapi, sid, reply, rating="up", note=note)
    assert response.status_code == 200 and response.json()["note"] == note


async def test_a_sessions_ratings_are_listed_for_its_owner_only(rapi: Api) -> None:
    sid, _, reply = await _exchange(rapi)
    listed = await rapi.client.get(f"/v1/sessions/{sid}/ratings", headers=rapi.as_("alice"))
    assert listed.status_code == 200 and listed.json() == {"data": [], "count": 0}
    assert (await _rate(rapi, sid, reply, rating="down")).status_code == 200
    body = (await rapi.client.get(f"/v1/sessions/{sid}/ratings",
                                  headers=rapi.as_("alice"))).json()
    assert body["count"] == 1
    assert [(r["message_id"], r["rating"]) for r in body["data"]] == [(reply, "down")]
    other = await rapi.client.get(f"/v1/sessions/{sid}/ratings", headers=rapi.as_("bob"))
    assert other.status_code == 404
