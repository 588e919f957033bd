"""Who may see a writing persona and its samples: another user's private one is 404 on
every route, another user's listing is refused (403), and admins see everything."""

from __future__ import annotations

from personae.personas.schema import Visibility
from personae.providers.fake.scripted import ScriptedLLM
from tests.support.api import Api
from tests.support.writing_samples import SAMPLES, synthesis_answer


async def alices_persona(api: Api) -> str:
    llm = api.runtime.providers.get("model")
    assert isinstance(llm, ScriptedLLM)
    llm.queue(synthesis_answer())
    response = await api.client.post("/v1/writing/personas", headers=api.as_("alice"), json={
        "name": "Sam Lee", "samples": [{"text": t} for t in SAMPLES]})
    assert response.status_code == 201, response.text
    persona_id: str = response.json()["id"]
    return persona_id


async def test_another_users_private_writing_persona_is_404_everywhere(wapi: Api) -> None:
    persona = await alices_persona(wapi)
    bob = wapi.as_("bob")
    samples = {"samples": [{"text": t} for t in SAMPLES]}
    calls = [
        wapi.client.get(f"/v1/writing/personas/{persona}", headers=bob),
        wapi.client.get(f"/v1/writing/personas/{persona}/samples", headers=bob),
        wapi.client.put(f"/v1/writing/personas/{persona}/samples", json=samples, headers=bob),
        wapi.client.post(f"/v1/writing/personas/{persona}/regenerate", headers=bob),
        wapi.client.get(f"/v1/writing/personas/{persona}/platform/x", headers=bob),
        wapi.client.post("/v1/writing/x/validate", json={"persona": persona, "text": "Hi."},
                         headers=bob),
        wapi.client.post("/v1/writing/x/optimize", json={"persona": persona, "text": "Hi."},
                         headers=bob),
        wapi.client.post("/v1/writing/x/draft", json={"persona": persona, "topic": "t"},
                         headers=bob),
    ]
    for call in calls:
        response = await call
        assert response.status_code == 404, (response.request.url, response.text)
        assert response.json()["error"]["code"] == "not_found"


async def test_a_public_writing_persona_shows_its_voice_but_not_its_samples(wapi: Api) -> None:
    persona = await alices_persona(wapi)
    made_public = await wapi.runtime.personas.get(
        await wapi.runtime.auth.local_admin(), persona)
    await wapi.runtime.personas.patch(await wapi.runtime.auth.local_admin(), persona, {},
                                      base_version=made_public.record.version,
                                      visibility=Visibility.public)
    bob = wapi.as_("bob")
    shown = await wapi.client.get(f"/v1/writing/personas/{persona}", headers=bob)
    assert shown.status_code == 200
    hidden = await wapi.client.get(f"/v1/writing/personas/{persona}/samples", headers=bob)
    assert hidden.status_code == 404


async def test_listing_another_user_is_refused_and_admins_may(wapi: Api) -> None:
    persona = await alices_persona(wapi)
    alice = await wapi.runtime.users.require_user("alice")
    for url in ("/v1/writing/personas?user=alice", f"/v1/writing/personas?user={alice.id}",
                f"/v1/writing/personas/user/{alice.id}"):
        refused = await wapi.client.get(url, headers=wapi.as_("bob"))
        assert refused.status_code == 403, url
        allowed = await wapi.client.get(url, headers=wapi.as_("admin"))
        assert [p["id"] for p in allowed.json()["data"]] == [persona], url
    own = await wapi.client.get(f"/v1/writing/personas/user/{alice.id}", headers=wapi.as_("alice"))
    assert own.json()["count"] == 1


async def test_samples_are_the_owners_and_admins(wapi: Api) -> None:
    persona = await alices_persona(wapi)
    url = f"/v1/writing/personas/{persona}/samples"
    for who in ("alice", "admin"):
        response = await wapi.client.get(url, headers=wapi.as_(who))
        assert response.status_code == 200 and response.json()["count"] == len(SAMPLES)
