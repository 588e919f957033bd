"""Bounded input over HTTP: body sizes (413), nesting depth (400), chat content (400),
YAML aliases, prompt templates (422 at create, 4xx when rendered), never a 500.

Each limit once let an attacker in: a 100 MB persona and a 20 MB chat message were
accepted, 100k-deep JSON answered 500, a billion-laughs YAML import became a 389 MB
persona, and a template blocked the server for minutes.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from personae.conversations.engine import MAX_MESSAGE_CHARS
from personae.personas.schema import PersonaDefinition
from tests.support.api import Api, serve_app
from tests.support.servers import api_server

MiB = 1024 * 1024
DEEP = "[" * 100_000 + "]" * 100_000
STRING_DOUBLING = ("{% set ns = namespace(s='xxxxxxxxxx') %}{% for i in range(40) %}"
                   "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}")
BILLION_LAUGHS = "\n".join([
    'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
    *(f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]"
      for prev, name in zip("abcdefgh", "bcdefghi", strict=True)),
    "name: *i"])


@pytest.fixture
async def small(database_url: str, tmp_path: Path) -> AsyncIterator[Api]:
    """The app with small body limits: 64 KiB for JSON, 256 KiB for uploads."""
    from personae.config import Settings
    settings = Settings(data_dir=tmp_path, database_url=database_url, anonymous_loopback=False,
                        max_body_bytes=64 * 1024, max_upload_bytes=256 * 1024)
    async for harness in serve_app(settings):
        yield harness


def _deep(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = [value]
    return value


def _is_error(response: httpx.Response, status: int, code: str, message: str) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert message in error["message"]


def _is_openai_error(response: httpx.Response, status: int, message: str,
                     param: str | None = None) -> None:
    _is_error(response, status, response.json()["error"]["code"], message)
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param


async def _chunks(data: bytes, size: int = 16 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start:start + size]


# --------------------------------------------------------------------------- sizes


async def test_a_large_persona_body_gets_413_and_nothing_is_stored(api: Api) -> None:
    body = {"definition": {"id": "big", "name": "Big", "description": "x" * (2 * MiB)}}
    response = await api.client.post("/v1/personas", json=body, headers=api.as_("alice"))
    _is_error(response, 413, "too_large",
              "the request body is larger than 1,048,576 bytes (PERSONAE_MAX_BODY_BYTES)")
    assert response.json()["error"]["details"] == {"limit": MiB}
    listed = await api.client.get("/v1/personas", headers=api.as_("alice"))
    assert listed.json()["count"] == 0


async def test_a_large_chat_message_gets_413_in_openai_shape(api: Api) -> None:
    body = {"model": "tina", "messages": [{"role": "user", "content": "x" * (2 * MiB)}]}
    response = await api.client.post("/v1/chat/completions", json=body,
                                     headers=api.as_("alice"))
    _is_openai_error(response, 413, "larger than 1,048,576 bytes")
    assert response.json()["error"]["code"] == "too_large"


@pytest.mark.parametrize("path", ["/v1/personas", "/v1/chat/completions", "/v1/sessions"])
async def test_a_streamed_body_is_counted_as_it_comes(small: Api, path: str) -> None:
    data = json.dumps({"model": "tina", "definition": {"name": "x" * (100 * 1024)}}).encode()
    response = await small.client.post(path, content=_chunks(data), headers={
        **small.as_("alice"), "Content-Type": "application/json"})
    assert "content-length" not in {k.lower() for k in response.request.headers}
    assert response.status_code == 413, response.text
    assert "larger than 65,536 bytes" in response.json()["error"]["message"]


async def test_uploads_have_their_own_larger_limit(small: Api) -> None:
    persona = json.dumps({"id": "ada", "name": "Ada", "description": "x" * (100 * 1024)})
    accepted = await small.client.post("/v1/personas/import", headers=small.as_("alice"),
                                       files={"file": ("ada.json", persona.encode())})
    assert accepted.status_code == 201, accepted.text
    too_big = json.dumps({"id": "bea", "name": "Bea", "description": "x" * (300 * 1024)})
    refused = await small.client.post("/v1/personas/import", headers=small.as_("alice"),
                                      files={"file": ("bea.json", too_big.encode())})
    _is_error(refused, 413, "too_large",
              "the upload is larger than 262,144 bytes (PERSONAE_MAX_UPLOAD_BYTES)")
    streamed = await small.client.post(
        "/v1/personas/import", headers={**small.as_("alice"), "Content-Type":
                                        "multipart/form-data; boundary=b"},
        content=_chunks(b'--b\r\nContent-Disposition: form-data; name="file"; filename="a"'
                        b"\r\n\r\n" + b"x" * (300 * 1024) + b"\r\n--b--\r\n"))
    _is_error(streamed, 413, "too_large", "the upload is larger than 262,144 bytes")


@pytest.mark.slow
def test_a_server_answers_413_without_waiting_for_the_body(tmp_path: Path) -> None:
    """Only the headers are sent: the answer comes from Content-Length alone."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'personae.db'}"
    with api_server(url, tmp_path) as base:
        host, port = base.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as conn:
            conn.sendall(b"POST /v1/personas HTTP/1.1\r\nHost: x\r\nContent-Type: "
                         b"application/json\r\nContent-Length: 100000000\r\n\r\n")
            started = time.monotonic()
            reply = b""
            while chunk := conn.recv(65536):  # the server closes after answering
                reply += chunk
        assert reply.startswith(b"HTTP/1.1 413 ")
        assert b'"code":"too_large"' in reply.replace(b" ", b"")
        assert time.monotonic() - started < 5  # generous: it never waits for 100 MB


# --------------------------------------------------------------------------- depth


@pytest.mark.parametrize(("path", "body"), [
    ("/v1/personas", '{"definition": {"name": "A", "traits": {"x": %s}}}'),
    ("/v1/sessions", '{"persona_id": "tina", "meta": {"a": %s}}'),
    ("/v1/panels", '{"name": "p", "personas": ["a"], "rubric": {"extra_fields": %s}}'),
    ("/v1/evaluations", '{"content": "Hello.", "rubric": %s}'),
])
@pytest.mark.parametrize("depth", [100_000, 900, 70])
async def test_deep_json_gets_a_400_that_says_so(api: Api, path: str, body: str,
                                                 depth: int) -> None:
    nested = "[" * depth + "]" * depth
    response = await api.client.post(path, content=body % nested, headers={
        **api.as_("alice"), "Content-Type": "application/json"})
    _is_error(response, 400, "invalid_input",
              "the request body is nested deeper than 64 levels")


async def test_deep_json_on_the_chat_route_gets_a_400_in_openai_shape(api: Api) -> None:
    for depth in (100_000, 900, 70):
        content = '{"model": "tina", "messages": %s}' % ("[" * depth + "]" * depth)
        response = await api.client.post("/v1/chat/completions", content=content,
                                         headers={**api.as_("alice"),
                                                  "Content-Type": "application/json"})
        _is_openai_error(response, 400, "the request body is nested deeper than 64 levels")


LONE_SURROGATE = "the request body holds a lone surrogate escape (such as \\ud800), " \
    "which is not a character; send text as valid UTF-8"


@pytest.mark.parametrize(("path", "body"), [
    ("/v1/personas", '{"definition": {"id": "s", "name": "A \\ud800"}}'),
    ("/v1/sessions", '{"persona_id": "tina", "meta": {"\\udfff": 1}}'),
    ("/v1/writing/x/validate", '{"persona": "tina-kulkarni", "text": "Hi \\uDC00 there"}'),
    ("/v1/writing/personas", '{"name": "S", "samples": ["a \\ud83d b"]}'),
])
async def test_a_lone_surrogate_gets_a_400_that_says_so(api: Api, path: str,
                                                        body: str) -> None:
    """Valid JSON, but no character: it once crashed language detection with a 500."""
    response = await api.client.post(path, content=body, headers={
        **api.as_("alice"), "Content-Type": "application/json"})
    _is_error(response, 400, "invalid_input", LONE_SURROGATE)


async def test_a_lone_surrogate_on_the_chat_route_gets_an_openai_400(api: Api) -> None:
    content = '{"model": "tina", "messages": [{"role": "user", "content": "\\ud800"}]}'
    response = await api.client.post("/v1/chat/completions", content=content, headers={
        **api.as_("alice"), "Content-Type": "application/json"})
    _is_openai_error(response, 400, LONE_SURROGATE)


async def test_an_escaped_surrogate_pair_is_an_ordinary_character(api: Api) -> None:
    body = '{"definition": {"id": "pair", "name": "Smile \\ud83d\\ude00"}}'
    response = await api.client.post("/v1/personas", content=body, headers={
        **api.as_("alice"), "Content-Type": "application/json"})
    assert response.status_code == 201, response.text
    assert response.json()["definition"]["name"] == "Smile \U0001f600"


async def test_deep_uploads_and_form_fields_get_a_400(api: Api) -> None:
    imported = await api.client.post("/v1/personas/import", headers=api.as_("alice"),
                                     files={"file": ("deep.json", DEEP.encode())})
    _is_error(imported, 400, "invalid_input", "deep.json is nested deeper than 64 levels")
    rubric = json.dumps({"extra_fields": _deep(70)})
    evaluated = await api.client.post("/v1/evaluations", headers=api.as_("alice"),
                                      files={"file": ("a.txt", b"Hello.")},
                                      data={"personas": "tina", "rubric": rubric})
    _is_error(evaluated, 400, "invalid_input", "'rubric' is nested deeper than 64 levels")


async def test_a_trait_within_the_body_bound_but_too_deep_is_named(api: Api) -> None:
    """Bodies may nest 64 levels; a trait inside one, at most 64 of its own."""
    body = {"definition": {"name": "Ada", "traits": {"style": _deep(61)}}}
    created = await api.client.post("/v1/personas", json=body, headers=api.as_("alice"))
    assert created.status_code == 201, created.text
    reread = await api.client.get("/v1/personas/alice/ada", headers=api.as_("alice"))
    assert reread.status_code == 200


# ------------------------------------------------------------------ chat content


async def test_chat_content_is_bounded_like_a_session_message(api: Api) -> None:
    def ask(messages: list[dict[str, str]]) -> Any:
        return api.client.post("/v1/chat/completions", headers=api.as_("alice"),
                               json={"model": "tina", "messages": messages})

    long = [{"role": "user", "content": "x" * (MAX_MESSAGE_CHARS + 1)}]
    _is_openai_error(await ask(long), 400, "longer than 32,000 characters",
                     "messages[0].content")
    many = [{"role": "user", "content": "hi"}] * 1025
    _is_openai_error(await ask(many), 400, "at most 1024 messages", "messages")
    heavy = [{"role": "user", "content": "x" * MAX_MESSAGE_CHARS}] * 9
    _is_openai_error(await ask(heavy), 400, "at most 256,000 are accepted", "messages")


# -------------------------------------------------------------------------- YAML


async def test_a_billion_laughs_import_is_refused_naming_the_alias(api: Api) -> None:
    started = time.process_time()  # CPU of every thread: the parse runs in a worker thread
    response = await api.client.post("/v1/personas/import", headers=api.as_("alice"),
                                     files={"file": ("laughs.yaml", BILLION_LAUGHS.encode())})
    _is_error(response, 400, "invalid_input", "YAML aliases (*a) are not accepted")
    assert "line 2" in response.json()["error"]["message"]
    assert time.process_time() - started < 1  # generous: it once took 107 s


# --------------------------------------------------------------------- templates


@pytest.mark.parametrize("template", [STRING_DOUBLING, "{{ '%0999999999d'|format(1) }}"])
async def test_a_template_breaking_a_bound_is_a_422_on_every_write(api: Api,
                                                                   template: str) -> None:
    bomb = {"name": "Ada", "prompt_template": template}
    created = await api.client.post("/v1/personas", json={"definition": bomb},
                                    headers=api.as_("alice"))
    _is_error(created, 422, "validation_error", "prompt_template: prompt template failed")
    assert created.json()["error"]["details"]["errors"][0]["path"] == "prompt_template"
    fine = await api.client.post("/v1/personas", json={"definition": {"name": "Ada"}},
                                 headers=api.as_("alice"))
    assert fine.status_code == 201
    for method in ("PUT", "PATCH"):
        changed = await api.client.request(
            method, "/v1/personas/alice/ada", json={"definition": bomb, "base_version": 1},
            headers=api.as_("alice"))
        _is_error(changed, 422, "validation_error", "prompt_template")


async def test_a_stored_template_that_fails_is_a_409_on_its_prompt(api: Api) -> None:
    """A version stored before templates were rendered at create time."""
    admin = await api.runtime.auth.local_admin()
    stored = PersonaDefinition.model_validate({"id": "odd", "name": "Odd",
                                               "prompt_template": STRING_DOUBLING})
    await api.runtime.personas.create(admin, stored, global_scope=True)
    response = await api.client.get("/v1/personas/odd/prompt", headers=api.as_("alice"))
    _is_error(response, 409, "conflict", "would be longer than the output bound")
