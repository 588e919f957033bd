"""The OpenAPI document: every operation says what it answers, and every error it
documents has the one error schema (the shape ``api/errors.py`` sends), or OpenAI's
for the OpenAI-compatible routes. What the routes really send is checked against the
documented models, too: the OpenAI ones are never applied at run time."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter

from personae.api.errors import error_body
from personae.api.routes import openai_compat
from personae.api.schemas import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ErrorResponse,
    ModelList,
    ModelObject,
    OpenAIError,
    SessionEvent,
)
from personae.providers.fake import FakeOpenAIServer
from tests.support.api import Api, serve_app
from tests.support.chat import chat_settings
from tests.support.personas import TINA

COMPONENTS = "#/components/schemas/"
ERROR_REF = f"{COMPONENTS}ErrorResponse"
OPENAI_ERROR_REF = f"{COMPONENTS}OpenAIError"
OPENAI_PREFIXES = ("/v1/chat/completions", "/v1/models", "/v1/audio/transcriptions",
                   "/v1/audio/speech")
JSON = "application/json"
NO_CONTENT = {"204", "304"}
DOWNLOAD = {"type": "string", "format": "binary"}  # a file, whatever its media type
Operation = tuple[str, str, dict[str, Any]]


async def _document(api: Api) -> dict[str, Any]:
    response = await api.client.get("/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def _operations(document: dict[str, Any]) -> list[Operation]:
    found = [(method.upper(), path, operation)
             for path, operations in document["paths"].items()
             for method, operation in operations.items()]
    covered = {path for _, path, _ in found}
    for expected in ("/health", "/v1/me", "/v1/personas/{persona_id}", "/v1/panels",
                     "/v1/evaluations/{evaluation_id}/events",
                     "/v1/sessions/{session_id}/messages", "/v1/chat/completions",
                     "/v1/models/{model_id}"):
        assert expected in covered, expected
    return found


def _is_error(status: str) -> bool:
    return status == "default" or status[0] in "45"


def _named_model(document: dict[str, Any], schema: dict[str, Any]) -> bool:
    """A reference to a component with properties (not an anonymous ``object``)."""
    ref = schema.get("$ref", "")
    if not ref.startswith(COMPONENTS):
        return False
    return bool(document["components"]["schemas"][ref.rsplit("/", 1)[1]].get("properties"))


def _download(path: str, schema: dict[str, Any]) -> bool:
    """A file, whatever its media type; an exported JSON file is an object."""
    return schema == DOWNLOAD or (path.endswith("/export") and schema.get("type") == "object")


def _success_problems(document: dict[str, Any], method: str, path: str,
                      operation: dict[str, Any]) -> list[str]:
    where = f"{method} {path}"
    successes = {status: response for status, response in operation["responses"].items()
                 if status.startswith("2")}
    if not successes:
        return [f"{where}: no 2xx response"]
    problems = []
    for status, response in successes.items():
        content = response.get("content", {})
        if status in NO_CONTENT:
            if content:
                problems.append(f"{where} {status}: no-content status with a body")
            continue
        if not content:
            problems.append(f"{where} {status}: no content documented")
        for media_type, body in content.items():
            schema = body.get("schema")
            if not schema:
                problems.append(f"{where} {status} {media_type}: no schema")
            elif media_type == JSON and not (_named_model(document, schema)
                                             or _download(path, schema)):
                problems.append(f"{where} {status}: JSON is not a named model: {schema}")
    return problems


def _error_problems(operation: dict[str, Any], method: str, path: str) -> list[str]:
    where = f"{method} {path}"
    errors = {status: response for status, response in operation["responses"].items()
              if _is_error(status)}
    ref = OPENAI_ERROR_REF if path.startswith(OPENAI_PREFIXES) else ERROR_REF
    problems = [f"{where} {status}: not the {ref.rsplit('/', 1)[1]} schema"
                for status, response in errors.items()
                if response.get("content") != {JSON: {"schema": {"$ref": ref}}}]
    if path.startswith("/v1/") and "401" not in errors:
        problems.append(f"{where}: every /v1 route needs an API key, but 401 is undocumented")
    if "{" in path and "404" not in errors:
        problems.append(f"{where}: has a path id, but 404 is undocumented")
    return problems


async def test_every_operation_documents_its_success(api: Api) -> None:
    document = await _document(api)
    problems = [problem for method, path, operation in _operations(document)
                for problem in _success_problems(document, method, path, operation)]
    assert problems == []


async def test_every_documented_error_is_the_error_response(api: Api) -> None:
    document = await _document(api)
    problems = [problem for method, path, operation in _operations(document)
                for problem in _error_problems(operation, method, path)]
    assert problems == []


async def test_error_response_is_what_the_handlers_send(api: Api) -> None:
    document = await _document(api)
    schemas = document["components"]["schemas"]
    assert schemas["ErrorResponse"]["required"] == ["error"]
    assert set(schemas["ErrorBody"]["required"]) == {"code", "message", "details"}
    assert set(schemas["ErrorBody"]["properties"]) == {"code", "message", "details"}
    ErrorResponse.model_validate(error_body("conflict", "taken", {"name": "x"}))
    for response in (await api.client.get("/v1/personas"),  # no key: 401
                     await api.client.get("/v1/personas/none", headers=api.as_("alice")),
                     await api.client.get("/v1/personas?limit=0", headers=api.as_("alice"))):
        assert response.status_code in (401, 404, 422)
        assert ErrorResponse.model_validate(response.json()).model_dump() == response.json()


def _references(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from _references(value)
    elif isinstance(node, list):
        for value in node:
            yield from _references(value)


async def test_every_reference_resolves(api: Api) -> None:
    """Schemas given by hand (``openapi_extra``, stream content) point at components."""
    document = await _document(api)
    names = set(document["components"]["schemas"])
    assert {ref for ref in _references(document)
            if ref.removeprefix(COMPONENTS) not in names} == set()


# -- what the routes send is what their models say ---------------------------------------

def _exactly(model: Any, body: Any) -> None:
    """``body`` is valid for ``model`` (no undocumented key) and loses nothing."""
    adapter = TypeAdapter(model)
    assert adapter.dump_python(adapter.validate_python(body), mode="json",
                               exclude_unset=True) == body


def _data_lines(text: str) -> list[Any]:
    return [json.loads(line.removeprefix("data: ")) for line in text.splitlines()
            if line.startswith("data: ") and line != "data: [DONE]"]


@pytest.fixture
async def chat_api(database_url: str, tmp_path: Path) -> AsyncIterator[Api]:
    async with FakeOpenAIServer() as server:
        async for api in serve_app(chat_settings(tmp_path, database_url, server.base_url)):
            created = await api.client.post("/v1/personas", json={
                "definition": TINA, "global": True}, headers=api.as_("admin"))
            assert created.status_code == 201
            yield api


async def test_streamed_session_events_are_documented(chat_api: Api) -> None:
    opened = await chat_api.client.post("/v1/sessions", json={"persona_id": "tina"},
                                        headers=chat_api.as_("alice"))
    sid = opened.json()["session"]["id"]
    streamed = await chat_api.client.post(f"/v1/sessions/{sid}/messages",
                                          json={"content": "a b", "stream": True},
                                          headers=chat_api.as_("alice"))
    events = _data_lines(streamed.text)
    assert (events[0]["type"], events[-1]["type"]) == ("message", "done")
    for event in events:
        _exactly(SessionEvent, event)


async def test_openai_answers_are_their_models(chat_api: Api) -> None:
    client, alice = chat_api.client, chat_api.as_("alice")
    body: dict[str, Any] = {"model": "tina", "messages": [{"role": "user", "content": "a b"}]}
    ChatCompletionRequest.model_validate(body)
    completion = await client.post("/v1/chat/completions", json=body, headers=alice)
    _exactly(ChatCompletion, completion.json())
    streamed = await client.post("/v1/chat/completions", headers=alice, json={
        **body, "stream": True, "stream_options": {"include_usage": True}})
    chunks = _data_lines(streamed.text)
    assert chunks[-1]["usage"] and streamed.text.endswith("data: [DONE]\n\n")
    for chunk in chunks:
        _exactly(ChatCompletionChunk, chunk)
    _exactly(ModelList, (await client.get("/v1/models", headers=alice)).json())
    _exactly(ModelObject, (await client.get("/v1/models/tina", headers=alice)).json())


async def test_openai_errors_are_the_openai_error(chat_api: Api) -> None:
    client, alice = chat_api.client, chat_api.as_("alice")
    _exactly(OpenAIError, openai_compat.openai_error(503, "provider_unavailable", "down",
                                                     {"retry_after": 2}))
    for response in (await client.get("/v1/models"),  # no key: 401
                     await client.get("/v1/models/nobody", headers=alice),
                     await client.post("/v1/chat/completions", json={"model": "tina"},
                                       headers=alice)):
        assert response.status_code in (400, 401, 404)
        _exactly(OpenAIError, response.json())


def test_documentation_models_are_not_applied_at_run_time() -> None:
    """The OpenAI routes read and write raw bytes: no model on the way in or out."""
    for route in openai_compat.router.routes:
        assert getattr(route, "response_model", None) is None
        assert getattr(route, "body_field", None) is None


# -- what a request needs, and what a 405 or a 503 says ---------------------------------

def _integers(node: Any, where: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every integer schema in ``node`` (a parameter's or a request body's), by path."""
    if isinstance(node, dict):
        if node.get("type") == "integer":
            yield where, node
        for key, value in node.items():
            yield from _integers(value, f"{where}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _integers(value, f"{where}[{index}]")


def _resolved(document: dict[str, Any], node: Any) -> Any:
    """``node`` with every component reference written in place."""
    if isinstance(node, list):
        return [_resolved(document, item) for item in node]
    if not isinstance(node, dict):
        return node
    if isinstance(node.get("$ref"), str) and node["$ref"].startswith(COMPONENTS):
        return _resolved(document, document["components"]["schemas"][
            node["$ref"].removeprefix(COMPONENTS)])
    return {key: _resolved(document, value) for key, value in node.items()}


async def test_every_integer_a_request_carries_is_bounded(api: Api) -> None:
    """A number past what a database column holds is a 422 naming the bound, not a 500.
    (The OpenAI body is read by its own parser and never reaches the database.)"""
    document = await _document(api)
    unbounded = [
        f"{method} {path} {where}"
        for method, path, operation in _operations(document)
        if not path.startswith(OPENAI_PREFIXES)
        for where, schema in _integers(_resolved(document, {
            "parameters": operation.get("parameters", []),
            "body": operation.get("requestBody", {})}), "")
        if "maximum" not in schema]
    assert unbounded == []


async def test_request_schemas_say_what_the_routes_require(api: Api) -> None:
    document = await _document(api)
    schemas = document["components"]["schemas"]
    for name in ("PersonaReplace", "PersonaUpdate"):  # or If-Match: else 428
        assert "base_version" in schemas[name]["required"], name
    for name in ("PersonaCreate", "PersonaReplace"):
        assert schemas[name]["properties"]["definition"]["required"] == ["name"], name
    content = schemas["MessageCreate"]["properties"]["content"]
    assert content["minLength"] == 1 and content["pattern"]
    for path in ("/v1/personas/{persona_id}/export", "/v1/evaluations/{evaluation_id}/export"):
        parameters = document["paths"][path]["get"]["parameters"]
        formats = next(p for p in parameters if p["name"] == "format")["schema"]
        assert formats["enum"], path


async def test_a_405_names_every_method_the_path_takes(api: Api) -> None:
    """The router alone names only the first matching route's methods."""
    document = await _document(api)
    wrong = {}
    for path, operations in document["paths"].items():
        url = path.replace("{", "").replace("}", "")  # any id will do: no route takes OPTIONS
        response = await api.client.options(url, headers=api.as_("alice"))
        assert response.status_code == 405, url
        documented = sorted(method.upper() for method in operations)
        if response.headers["allow"] != ", ".join(documented):
            wrong[path] = (response.headers["allow"], documented)
        ErrorResponse.model_validate(response.json())
    assert wrong == {}


async def test_every_503_documents_retry_after(api: Api) -> None:
    document = await _document(api)
    missing = [f"{method} {path}" for method, path, operation in _operations(document)
               if "503" in operation["responses"]
               and "Retry-After" not in operation["responses"]["503"].get("headers", {})]
    assert missing == []
