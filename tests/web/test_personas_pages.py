"""The persona gallery and editor pages: what they show, to whom, and that the API
calls their scripts make work with the browser's cookie and CSRF token."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.support.api import Api
from tests.support.cards import v3_png
from tests.support.web import WebUser

XSS = "<script>alert(1)</script>"
CARD = re.compile(r'data-persona="([^"]+)"')


def cards(html: str) -> list[str]:
    return CARD.findall(html)


def card_html(html: str, pid: str) -> str:
    """The markup of one persona's card in the gallery."""
    found = [part for part in html.split('<li class="card persona-card"')
             if part.startswith(f' data-persona="{pid}"')]
    assert found, pid
    return found[0]


async def create(user: WebUser, definition: dict[str, Any], **extra: Any) -> dict[str, Any]:
    response = await user.api("POST", "/v1/personas", json={"definition": definition, **extra})
    assert response.status_code == 201, response.text
    return dict(response.json())


async def patch(user: WebUser, pid: str, version: int, note: str,
                **changes: Any) -> dict[str, Any]:
    response = await user.api("PATCH", f"/v1/personas/{pid}", json={
        "definition": changes, "base_version": version, "note": note})
    assert response.status_code == 200, response.text
    return dict(response.json())


async def api_ids(web: Api, who: str, **params: Any) -> list[str]:
    response = await web.client.get("/v1/personas", params={"limit": 48, **params},
                                    headers=web.as_(who))
    assert response.status_code == 200, response.text
    return [p["id"] for p in response.json()["data"]]


# -- the gallery ---------------------------------------------------------------------


async def test_gallery_shows_cards_with_their_fields(alice: WebUser) -> None:
    html = (await alice.page("/")).text
    assert "<h1>Personas</h1>" in html and 'href="/personas/new"' in html
    assert "tina-kulkarni" in cards(html) and "advertiser" in cards(html)
    tina = card_html(html, "tina-kulkarni")
    for shown in ("Tina Kulkarni", "astrologer", ">hi<", ">active<", ">global<", ">vedic<"):
        assert shown in tina, shown
    assert 'href="/personas/tina-kulkarni"' in html
    assert 'class="avatar" aria-hidden="true">TK<' in tina


@pytest.mark.parametrize(("query", "expected", "absent"), [
    ("q=astrolog", {"tina-kulkarni", "mohit", "priyanka"}, "advertiser"),
    ("tag=hindi", {"tina-kulkarni"}, "mohit"),
    ("language=Hindi", {"tina-kulkarni"}, "priyanka"),
    ("q=podcast&tag=gen-z", {"genz-listener"}, "advertiser"),
])
async def test_gallery_filters_by_query_string(alice: WebUser, query: str,
                                               expected: set[str], absent: str) -> None:
    shown = cards((await alice.page(f"/?{query}")).text)
    assert expected <= set(shown) and absent not in shown


@pytest.mark.parametrize("params", [
    {"sort": "name"}, {"sort": "newest"}, {"sort": "updated"}, {"sort": "most_used"},
    {"q": "astro", "sort": "newest"}, {"tag": "voice"}, {"status": "archived"},
])
async def test_gallery_lists_exactly_what_the_api_lists(web: Api, alice: WebUser,
                                                        params: dict[str, str]) -> None:
    await create(alice, {"id": "zed", "name": "Zed Astro", "tags": ["voice"]})
    archived = await create(alice, {"id": "old", "name": "Old One"})
    assert (await alice.api("POST", f"/v1/personas/{archived['id']}/archive",
                            json={})).status_code == 200
    query = "&".join(f"{k}={v}" for k, v in params.items())
    shown = cards((await alice.page(f"/?{query}")).text)
    assert shown and shown == await api_ids(web, "alice", **params)


async def test_gallery_sorts_newest_first(alice: WebUser) -> None:
    await create(alice, {"id": "first", "name": "Zulu First"})
    await create(alice, {"id": "second", "name": "Alpha Second"})
    by_name = cards((await alice.page("/")).text)
    assert by_name.index("alice/second") < by_name.index("tina-kulkarni") < by_name.index(
        "alice/first")
    newest = cards((await alice.page("/?sort=newest")).text)
    assert newest[:2] == ["alice/second", "alice/first"]
    assert 'value="newest" selected' in (await alice.page("/?sort=newest")).text


async def test_gallery_hides_archived_unless_asked(alice: WebUser) -> None:
    created = await create(alice, {"id": "gone", "name": "Gone Persona"})
    await alice.api("POST", f"/v1/personas/{created['id']}/archive", json={})
    assert "alice/gone" not in cards((await alice.page("/")).text)
    assert cards((await alice.page("/?status=archived")).text) == ["alice/gone"]
    everything = cards((await alice.page("/?status=all")).text)
    assert "alice/gone" in everything and "tina-kulkarni" in everything


async def test_an_unknown_language_is_an_error_next_to_its_field(alice: WebUser) -> None:
    html = (await alice.page("/?language=notalanguage123")).text
    assert 'id="filter-language-error"' in html and 'aria-invalid="true"' in html
    assert cards(html) == []


async def test_a_card_with_an_avatar_shows_the_image(alice: WebUser) -> None:
    imported = await alice.api("POST", "/v1/personas/import",
                               files={"file": ("ione.png", v3_png(), "image/png")})
    assert imported.status_code == 201, imported.text
    html = (await alice.page("/?q=ione")).text
    assert cards(html) == ["alice/ione-vale"]
    src = re.search(r'<img class="avatar" src="([^"]+)"', html)
    assert src and src.group(1) == "/v1/personas/alice/ione-vale/avatar?version=1"
    image = await alice.client.get(src.group(1))
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"


async def test_gallery_escapes_a_script_name(alice: WebUser) -> None:
    await create(alice, {"id": "xss", "name": XSS, "description": XSS, "tags": [XSS]})
    html = (await alice.page("/?q=alert")).text
    assert XSS not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert cards(html) == ["alice/xss"]


async def test_gallery_needs_a_sign_in(visitor: WebUser) -> None:
    response = await visitor.page("/?tag=voice", expect=303)
    assert response.headers["location"] == "/sign-in?next=%2F%3Ftag%3Dvoice"


async def test_bob_does_not_see_alices_private_personas(alice: WebUser, bob: WebUser) -> None:
    await create(alice, {"id": "secret", "name": "Secret Sally"})
    await create(alice, {"id": "open", "name": "Open Olly"}, visibility="public")
    shown = cards((await bob.page("/?q=o")).text)
    assert "alice/open" in shown and "alice/secret" not in shown


# -- import ---------------------------------------------------------------------------


async def test_import_a_card_with_the_cookie_shows_warnings(alice: WebUser) -> None:
    response = await alice.api("POST", "/v1/personas/import",
                               files={"file": ("ione.png", v3_png(), "image/png")},
                               data={"visibility": "public"})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["source_format"] == "png" and body["data"][0]["id"] == "alice/ione-vale"
    assert any("group_only_greetings" in w for w in body["warnings"])
    assert body["data"][0]["visibility"] == "public"


async def test_import_without_the_csrf_token_is_refused(alice: WebUser) -> None:
    response = await alice.client.post("/v1/personas/import",
                                       files={"file": ("ione.png", v3_png(), "image/png")})
    assert response.status_code == 403
    assert "ione-vale" not in str(cards((await alice.page("/?q=ione")).text))


async def test_gallery_has_the_import_form(alice: WebUser) -> None:
    html = (await alice.page("/")).text
    assert 'id="dropzone"' in html and '<label for="import-file">' in html
    assert 'src="/static/personas.js?v=' in html and 'aria-live="polite"' in html


# -- new persona and the editor --------------------------------------------------------


async def test_new_persona_page_has_a_labelled_form(alice: WebUser) -> None:
    html = (await alice.page("/personas/new")).text
    assert "<h1>New persona</h1>" in html and "Create persona" in html
    for field in ("f-name", "f-role", "f-language", "f-tags", "f-greetings", "f-system-prompt"):
        assert f'<label for="{field}">' in html and f'id="{field}"' in html, field
    assert 'data-add-trait' in html and 'id="persona-data"' in html


async def test_editor_shows_the_definition(alice: WebUser) -> None:
    await create(alice, {"id": "tutor", "name": "Tutor", "role": "maths tutor", "language": "hi",
                         "tags": ["maths", "school"], "greetings": ["Hi.", "Hello."],
                         "pricing_model": {"per_minute": "INR 30"}, "style": "gentle"})
    html = (await alice.page("/personas/alice/tutor")).text
    assert "<h1>Tutor</h1>" in html and "version 1" in html
    assert 'value="maths tutor"' in html and 'value="maths, school"' in html
    assert ">Hi.\nHello.</textarea>" in html and 'value="hi"' in html
    assert 'value="pricing_model"' in html and '"per_minute": "INR 30"' in html
    assert 'value="style"' in html and ">gentle</textarea>" in html
    assert "Save as new version" in html and "Save YAML as new version" in html


async def test_editor_shows_the_prompt_and_its_tokens_from_the_api(alice: WebUser) -> None:
    await create(alice, {"id": "tutor", "name": "Tutor", "system_prompt": "Teach kindly."})
    html = (await alice.page("/personas/alice/tutor")).text
    prompt = (await alice.api("GET", "/v1/personas/alice/tutor/prompt")).json()
    assert f'<strong id="prompt-tokens">{prompt["tokens"]}</strong>' in html
    assert "Teach kindly." in prompt["system_prompt"] and "Teach kindly." in html


async def test_editor_yaml_is_the_export(alice: WebUser) -> None:
    await create(alice, {"id": "tutor", "name": "Tutor & Co", "description": "a <b> tag"})
    html = (await alice.page("/personas/alice/tutor")).text
    export = (await alice.api("GET", "/v1/personas/alice/tutor/export?format=yaml")).text
    assert "name: Tutor &amp; Co" in html and "description: a &lt;b&gt; tag" in html
    assert "name: Tutor & Co" in export
    for fmt in ("json", "yaml", "card-png", "charx"):
        assert f'href="/v1/personas/alice/tutor/export?format={fmt}"' in html


async def test_editor_escapes_a_script_everywhere(alice: WebUser) -> None:
    await create(alice, {"id": "xss", "name": XSS, "description": XSS, "system_prompt": XSS,
                         "tags": [XSS], "greetings": [XSS], "notes": XSS,
                         "facts": {"tag": XSS}})
    html = (await alice.page("/personas/alice/xss")).text
    assert XSS not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    data = html[html.index('id="persona-data">'):]
    assert "<script>alert" not in data[:data.index("</script>")]


async def test_another_users_private_persona_is_a_404_page(alice: WebUser, bob: WebUser) -> None:
    await create(alice, {"id": "secret", "name": "Secret"})
    response = await bob.page("/personas/alice/secret", expect=404)
    assert "text/html" in response.headers["content-type"] and "Not found" in response.text
    assert "Secret" not in response.text.replace("alice/secret", "")
    await bob.page("/personas/alice/secret?from=1&to=1", expect=404)
    await bob.page("/personas/nobody-here", expect=404)


async def test_a_readable_persona_of_another_user_is_read_only(alice: WebUser,
                                                               bob: WebUser) -> None:
    await create(alice, {"id": "open", "name": "Open Olly"}, visibility="public")
    html = (await bob.page("/personas/alice/open")).text
    assert 'id="read-only-note"' in html and "only its owner and admins" in html
    assert "Save as new version" not in html and "data-rollback" not in html
    assert 'data-status-action' not in html and "disabled" in html
    assert '"can_edit": false' in html


async def test_a_global_persona_is_read_only_for_members(alice: WebUser, admin: WebUser) -> None:
    html = (await alice.page("/personas/tina-kulkarni")).text
    assert "only admins change global personas" in html and "Save as new version" not in html
    owner_view = (await admin.page("/personas/tina-kulkarni")).text
    assert "Save as new version" in owner_view and 'id="read-only-note"' not in owner_view


async def test_save_as_new_version_with_a_note_then_history(alice: WebUser) -> None:
    created = await create(alice, {"id": "tutor", "name": "Tutor"}, note="first draft")
    response = await alice.api("PUT", "/v1/personas/alice/tutor", json={
        "definition": {**created["definition"], "role": "tutor"}, "base_version": 1,
        "note": "gave it a role"})
    assert response.status_code == 200 and response.json()["version"] == 2
    html = (await alice.page("/personas/alice/tutor?saved=2")).text
    assert "Saved as version 2." in html
    rows = re.findall(r'<tr data-version="(\d+)">', html)
    assert rows == ["2", "1"] and "gave it a role" in html and "first draft" in html
    assert 'data-rollback="1"' in html and 'data-rollback="2"' not in html


async def test_a_write_without_the_csrf_token_is_refused(alice: WebUser) -> None:
    created = await create(alice, {"id": "tutor", "name": "Tutor"})
    refused = await alice.client.put("/v1/personas/alice/tutor", json={
        "definition": created["definition"] | {"role": "x"}, "base_version": 1})
    assert refused.status_code == 403
    assert (await alice.api("GET", "/v1/personas/alice/tutor")).json()["version"] == 1


async def test_saving_from_yaml_with_the_cookie(alice: WebUser) -> None:
    await create(alice, {"id": "tutor", "name": "Tutor"})
    html = (await alice.page("/personas/alice/tutor")).text
    text = html[html.index('id="yaml-text"'):].split(">", 1)[1].split("</textarea>")[0]
    saved = await alice.api("PUT", "/v1/personas/alice/tutor", json={
        "definition_yaml": text.replace("&amp;", "&") + "role: from yaml\n",
        "base_version": 1, "note": "yaml"})
    assert saved.status_code == 200, saved.text
    assert 'value="from yaml"' in (await alice.page("/personas/alice/tutor")).text


async def test_validation_errors_name_the_fields_the_form_has(alice: WebUser) -> None:
    await create(alice, {"id": "tutor", "name": "Tutor"})
    bad = await alice.api("PUT", "/v1/personas/alice/tutor", json={
        "definition": {"name": "Tutor", "greetings": [" "], "model": {"temperature": 9}},
        "base_version": 1})
    assert bad.status_code == 422
    paths = {e["path"] for e in bad.json()["error"]["details"]["errors"]}
    html = (await alice.page("/personas/alice/tutor")).text
    for path in paths:
        root = path.split("[")[0]
        assert f'data-field="{path}"' in html or f'data-field="{root}"' in html, path


async def test_diff_between_two_versions(alice: WebUser) -> None:
    await create(alice, {"id": "tutor", "name": "Tutor", "description": "old words"})
    await patch(alice, "alice/tutor", 1, "v2", description="new words")
    await patch(alice, "alice/tutor", 2, "v3", role="coach")
    html = (await alice.page("/personas/alice/tutor?from=1&to=3")).text
    assert 'data-diff-asked="yes"' in html and "changed description, role" in html
    assert '<span class="diff-add">+description: new words</span>' in html
    assert '<span class="diff-del">-description: old words</span>' in html
    assert '<span class="diff-add">+role: coach</span>' in html
    latest = (await alice.page("/personas/alice/tutor")).text
    assert "Version 2 → 3" in latest and "description: old words" not in latest


async def test_diff_of_a_missing_version_is_a_404_page(alice: WebUser) -> None:
    await create(alice, {"id": "tutor", "name": "Tutor"})
    response = await alice.page("/personas/alice/tutor?from=1&to=7", expect=404)
    assert "no version 7" in response.text


async def test_rollback_then_archive_and_restore(alice: WebUser) -> None:
    await create(alice, {"id": "tutor", "name": "Tutor", "description": "one"})
    await patch(alice, "alice/tutor", 1, "v2", description="two")
    rolled = await alice.api("POST", "/v1/personas/alice/tutor/rollback",
                             json={"version": 1, "base_version": 2})
    assert rolled.status_code == 200 and rolled.json()["version"] == 3
    html = (await alice.page("/personas/alice/tutor")).text
    assert "rollback to version 1" in html and ">one</textarea>" in html
    archived = await alice.api("POST", "/v1/personas/alice/tutor/archive",
                               json={"base_version": 3})
    assert archived.status_code == 200
    html = (await alice.page("/personas/alice/tutor")).text
    assert 'data-status-action="restore"' in html and "This persona is archived" in html
    assert 'href="/chat?persona=' not in html
    restored = await alice.api("POST", "/v1/personas/alice/tutor/restore",
                               json={"base_version": 4})
    assert restored.status_code == 200
    assert 'data-status-action="archive"' in (await alice.page("/personas/alice/tutor")).text


async def test_an_avatar_shows_in_the_editor(alice: WebUser) -> None:
    await alice.api("POST", "/v1/personas/import",
                    files={"file": ("ione.png", v3_png(), "image/png")})
    html = (await alice.page("/personas/alice/ione-vale")).text
    assert '<img class="avatar" src="/v1/personas/alice/ione-vale/avatar?version=1"' in html
