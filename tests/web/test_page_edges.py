"""The dashboard's edges: ``HEAD`` on its pages, the error pages a browser gets (an
oversized form, a missing file, an unknown path, a wrong method) and what of the
request those pages may echo."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator

import pytest
from fastapi.routing import APIRoute

from personae.web.app import PAGE_MODULES
from tests.support.web import HTML, WebUser

PARAM = re.compile(r"\{(\w+)(?::\w+)?\}")
MESSAGE = re.compile(r'<section class="error-page".*?<p>(.*?)</p>', re.S)
# Headers that differ between any two answers, whatever their method (and the rate
# limit's budget, which each request spends). The length too: /admin/health shows live
# figures; a steady page's length is compared below.
VOLATILE = {"date", "x-request-id", "server-timing", "content-length"}
JSON = {"Accept": "application/json"}


def page_paths(persona_id: str) -> list[str]:
    """A concrete path for every dashboard page that answers GET."""
    fill = {"persona_id": persona_id, "name": "alice"}
    paths = []
    for module in PAGE_MODULES:
        for route in module.router.routes:
            if isinstance(route, APIRoute) and "GET" in route.methods:
                paths.append(PARAM.sub(lambda m: fill.get(m.group(1), "missing"), route.path))
    return paths


def message_of(page: str) -> str:
    """The error page's message, as the browser shows it (entities decoded)."""
    found = MESSAGE.search(page)
    assert found, page[:2000]
    return html.unescape(found.group(1))


def steady(headers: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in headers.items()
            if k not in VOLATILE and not k.startswith("ratelimit-")}


async def first_persona(user: WebUser) -> str:
    listing = await user.api("GET", "/v1/personas")
    assert listing.status_code == 200, listing.text
    return str(listing.json()["data"][0]["id"])


async def test_every_page_answers_head_as_it_answers_get(admin: WebUser) -> None:
    paths = page_paths(await first_persona(admin))
    assert {"/", "/personas/new", "/chat", "/admin", "/sign-in"} <= set(paths)
    for path in paths:
        got = await admin.client.get(path, headers=HTML)
        head = await admin.client.head(path, headers=HTML)
        assert head.status_code == got.status_code, (path, head.status_code, got.status_code)
        assert steady(dict(head.headers)) == steady(dict(got.headers)), path
        assert ("content-length" in head.headers) == ("content-length" in got.headers), path
        assert head.content == b"", path


@pytest.mark.parametrize(("path", "status"), [("/", 303), ("/sign-in", 200)])
async def test_head_works_before_signing_in(visitor: WebUser, path: str, status: int) -> None:
    got = await visitor.client.get(path, headers=HTML)
    head = await visitor.client.head(path, headers=HTML)
    assert head.status_code == got.status_code == status and head.content == b""
    assert head.headers.get("location") == got.headers.get("location")
    for name in ("content-type", "content-length", "cache-control"):
        assert head.headers.get(name) == got.headers.get(name), name


async def test_api_routes_keep_their_methods(alice: WebUser) -> None:
    head = await alice.api("HEAD", "/v1/personas")
    assert head.status_code == 405


async def _chunks(size: int) -> AsyncIterator[bytes]:
    for _ in range(size // 65536):
        yield b" " * 65536


@pytest.mark.parametrize("kind", ["form", "streamed json"])
async def test_an_oversized_form_on_a_page_is_an_html_413(visitor: WebUser, kind: str) -> None:
    await visitor.page("/sign-in")
    if kind == "form":
        response = await visitor.client.post("/sign-in", content=b"api_key=" + b"x" * 2_000_000,
                                             headers={**HTML, "Content-Type":
                                                      "application/x-www-form-urlencoded"})
    else:  # no Content-Length: refused once the bytes pass the limit
        response = await visitor.client.post("/sign-in", content=_chunks(2_000_000),
                                             headers={**HTML,
                                                      "Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["connection"] == "close"
    assert "Too large" in response.text
    assert "request body is larger than 1,048,576 bytes" in message_of(response.text)
    assert "script-src 'self'" in response.headers["content-security-policy"]


@pytest.mark.parametrize(("path", "accept"), [("/sign-in", JSON), ("/v1/personas", JSON),
                                             ("/v1/personas", HTML)])
async def test_an_oversized_body_stays_json_for_the_api_and_its_clients(
        visitor: WebUser, path: str, accept: dict[str, str]) -> None:
    response = await visitor.client.post(path, content=b"{" + b" " * 2_000_000 + b"}",
                                         headers={**accept, "Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"]["code"] == "too_large"


async def test_a_missing_static_file_is_a_page_for_a_browser(visitor: WebUser) -> None:
    page = await visitor.client.get("/static/no-such-file.css", headers=HTML)
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert "Not found" in page.text and 'href="/static/' in page.text
    fetched = await visitor.client.get("/static/no-such-file.css", headers={"Accept": "*/*"})
    assert fetched.status_code == 404 and "text/html" not in fetched.headers["content-type"]
    present = await visitor.client.get("/static/app.css", headers=HTML)
    assert present.status_code == 200 and "text/css" in present.headers["content-type"]


@pytest.mark.parametrize("path", ["/nonexistent", "/personas/x/y/z", "/admin/nope/deeper"])
async def test_an_unknown_path_is_a_page_for_a_browser_and_json_for_a_client(
        alice: WebUser, path: str) -> None:
    page = await alice.client.get(path, headers=HTML)
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert "Not found" in page.text
    client = await alice.client.get(path, headers=JSON)
    assert client.status_code == 404 and client.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("path", ["/", "/chat", "/sign-in"])
async def test_a_wrong_method_on_a_page_is_a_page_naming_the_allowed_ones(
        alice: WebUser, path: str) -> None:
    page = await alice.client.request("DELETE", path, headers=HTML)
    assert page.status_code == 405 and page.headers["content-type"].startswith("text/html")
    assert "Not allowed here" in page.text
    allowed = {m.strip() for m in page.headers["allow"].split(",")}
    assert {"GET", "HEAD"} <= allowed and "DELETE" not in allowed
    client = await alice.client.request("DELETE", path, headers=JSON)
    assert client.status_code == 405 and client.headers["allow"] == page.headers["allow"]


@pytest.mark.parametrize("raw", ["%00abc", "a%01b%1Bc%7Fd%C2%85e", "x%0Dy"])
async def test_an_error_page_shows_no_control_characters(alice: WebUser, raw: str) -> None:
    page = await alice.client.get(f"/personas/{raw}", headers=HTML)
    assert page.status_code == 404
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]", page.text)
    assert "\ufffd" in message_of(page.text)


async def test_an_error_page_escapes_markup_from_the_path(alice: WebUser) -> None:
    page = await alice.client.get("/personas/%3Cscript%3Ealert(1)%3C%2Fscript%3E",
                                  headers=HTML)
    assert page.status_code == 404
    assert "<script>alert(1)" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "<script>alert(1)</script>" in message_of(page.text)


async def test_an_error_page_caps_the_message(alice: WebUser) -> None:
    page = await alice.client.get("/personas/" + "a" * 3000, headers=HTML)
    assert page.status_code == 404
    message = message_of(page.text)
    assert len(message) <= 500 and message.endswith("…")
    assert message.startswith("persona 'aaaa")


async def test_the_message_is_whole_for_an_api_client(alice: WebUser) -> None:
    response = await alice.client.get("/personas/" + "a" * 3000, headers=JSON)
    assert response.status_code == 404
    assert "a" * 3000 in response.json()["error"]["message"]

