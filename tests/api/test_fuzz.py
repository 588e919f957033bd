"""A bounded schema fuzz of the whole HTTP API: what the OpenAPI document promises is
what the app does.

Schemathesis generates requests from the document, valid ones and broken ones, for
every operation (its examples, coverage and fuzzing phases) and runs all its checks
on each answer: no server error, every status, header, media type and body as
documented, schema-valid requests accepted, invalid ones refused, 405s naming the
methods a path takes. One more check is stricter than its status check: a status
must be listed by the operation, not merely covered by ``default`` (which documents
an unexpected failure). The app runs in process on SQLite, called with a member's API
key; personas, a session, a panel and an evaluation are seeded first, so that paths
naming them reach real rows. The seed is fixed: a run is repeatable.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from schemathesis.engine import events
from schemathesis.python import asgi

from personae.api.app import create_app
from personae.auth.principal import Principal, Role
from personae.config import ProviderConfig, Settings
from personae.panels.service import EvaluationRequest
from personae.runtime import Runtime
from tests.conftest import sqlite_url_for
from tests.support.personas import MOHIT, TINA

pytestmark = pytest.mark.slow

SEED = 20240601
EXAMPLES_PER_OPERATION = 40  # fuzzing phase; the coverage phase adds its own cases
ENOUGH_CASES = 2000  # a run that generated fewer tested too little to count
TEXT = "Coffee is the best start to any morning. Tea is kinder to teeth."
# What a request schema cannot say: the content of a persona definition or an uploaded
# file (a known language, a template that renders, a card that parses), and whether
# named records exist (a panel's personas). The service checks those and names the
# field, with the 400 or 422 the operation documents; for these operations a
# schema-valid request may be refused so. Everywhere else it must be accepted.
SEMANTIC_REFUSALS = {
    "GET /v1/personas": [400],  # language: a known language name or tag
    "POST /v1/personas": [400, 422],
    "PUT /v1/personas/{persona_id}": [400, 422],
    "PATCH /v1/personas/{persona_id}": [400, 422],
    "POST /v1/personas/import": [400, 422],
    "POST /v1/personas/{persona_id}/lorebook": [400, 422],  # the file must be a lorebook
    "PUT /v1/personas/{persona_id}/avatar": [400, 413],  # the bytes must be an image
    "POST /v1/panels": [400, 422],
    "PUT /v1/panels/{panel}": [400, 422],
    "POST /v1/evaluations": [400, 422],
    "POST /v1/personas/{persona_id}/tests/run": [400, 422],  # a suite that parses, in bounds
    "POST /v1/chat/completions": [400],  # all messages' content together is bounded
    # The file must be audio (told by its bytes), within the duration bound, with speech.
    "POST /v1/sessions/{session_id}/audio": [400, 415, 422],
    "POST /v1/audio/transcriptions": [400, 415, 422],
    "POST /v1/audio/speech": [400, 422],  # the text must hold something to say
    # Samples must hold enough words, within the size bounds; drafts must not be blank.
    "POST /v1/writing/personas": [400, 413, 422],
    "PUT /v1/writing/personas/{persona_id}/samples": [400, 413, 422],
    "POST /v1/writing/{platform}/validate": [400, 413, 422],
    "POST /v1/writing/{platform}/optimize": [400, 413, 422],
    "POST /v1/writing/{platform}/draft": [400, 422],
}
# The in-process client bounds the WHOLE response, not the gap between its bytes (which
# a streamed speech response keeps short): a 4096-character input is minutes of audio.
SLOW_OPERATIONS = {"POST /v1/audio/speech": {"request-timeout": 180}}
ACCEPTED = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx"]
# Schemathesis's own list, plus 413: a body past the size bound is refused as too large.
REFUSED = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429",
           "5xx"]

# Schemathesis's own list, plus 428: a write without If-Match is told to send it (RFC 6585).
MISSING_HEADER = ["400", "401", "403", "406", "415", "422", "428"]


@dataclass(frozen=True)
class Seeded:
    key: str
    persona_id: str
    session_id: str
    panel_id: str
    evaluation_id: str


# Thousands of cases from one key in seconds: budgets the fuzzer cannot spend (the
# limiter still counts every request), and no limit on its deliberately wrong keys.
FUZZ_LIMITS = {"member": dict.fromkeys(("chat", "audio", "jobs", "writes", "other"),
                                       "1000000/minute")}


def fuzz_settings(data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir, database_url=sqlite_url_for(data_dir),
                    anonymous_loopback=False, default_provider="scripted",
                    providers={"scripted": ProviderConfig(kind="scripted")},
                    rate_limits=FUZZ_LIMITS, auth_failures_limit=None)


async def seed(app_settings: Settings) -> Seeded:
    """A member with a key, her own persona and a global one, a session, a panel and a
    finished evaluation, written before the app starts."""
    runtime = await Runtime.open(app_settings, watch=False)
    try:
        user = await runtime.users.create_user("alice", Role.member)
        key, _ = await runtime.users.create_key("alice")
        alice = Principal(user.id, user.name, user.role)
        admin = await runtime.auth.local_admin()
        await runtime.personas.create(admin, TINA, global_scope=True)
        mohit = await runtime.personas.create(alice, MOHIT)
        session, _ = await runtime.conversations.open(alice, mohit.id)
        panel = await runtime.panels.create_panel(
            alice, {"name": "listeners", "personas": [TINA["id"], mohit.id]})
        evaluation = await runtime.panels.evaluate(alice, EvaluationRequest(
            content=TEXT, panel=panel.id))
        await runtime.panels.queue.drain()
    finally:
        await runtime.close()
    return Seeded(key, mohit.id, session.id, panel.id, evaluation.id)


@schemathesis.check
def status_code_listed(ctx: schemathesis.CheckContext, response: schemathesis.Response,
                       case: schemathesis.Case) -> bool | None:
    """The status is one the operation lists (``default`` covers only the unexpected)."""
    if response.request.method != case.operation.method.upper():
        return None  # a probe with another method: 405 is not this operation's answer
    listed = set(case.operation.definition.raw.get("responses", {}))
    if response.status_code < 500 and str(response.status_code) not in listed:
        raise AssertionError(f"{response.status_code} is not listed by {case.operation.label}"
                             f" (it lists {', '.join(sorted(listed))})")
    return None


def fuzz_config(seeded: Seeded) -> schemathesis.Config:
    return schemathesis.Config.from_dict({
        "seed": SEED,
        "continue-on-failure": True,
        "headers": {"Authorization": f"Bearer {seeded.key}"},
        "generation": {"mode": "all", "max-examples": EXAMPLES_PER_OPERATION,
                       "deterministic": True},
        "parameters": {"persona_id": seeded.persona_id, "model_id": seeded.persona_id,
                       "session_id": seeded.session_id, "panel": seeded.panel_id,
                       "evaluation_id": seeded.evaluation_id},
        "phases": {"stateful": {"enabled": False}},
        "checks": {"negative_data_rejection": {"expected-statuses": REFUSED},
                   "missing_required_header": {"expected-statuses": MISSING_HEADER}},
        "operations": [
            {"include-name": name, **SLOW_OPERATIONS.get(name, {}),
             "checks": {"positive_data_acceptance": {
                 "expected-statuses": [*ACCEPTED, *map(str, statuses)]}}}
            for name, statuses in SEMANTIC_REFUSALS.items()],
    })


@dataclass
class Outcome:
    cases: int
    problems: list[str]


def run(schema: Any) -> Outcome:
    """Every case of every phase; each failed check or escaped exception, described."""
    outcome = Outcome(0, [])
    for event in schemathesis.engine.from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            outcome.cases += len(event.recorder.cases)
            outcome.problems.extend(_failures(event.recorder))
        elif isinstance(event, events.NonFatalError):
            outcome.problems.append(f"{event.label}: raised {event.value!r}")
        elif isinstance(event, events.FatalError):
            outcome.problems.append(f"fatal: {event.exception!r}")
    return outcome


def _failures(recorder: Any) -> Iterator[str]:
    for case_id, checks in recorder.checks.items():
        for check in checks:
            if check.failure_info is None:
                continue
            case = recorder.cases[case_id].value
            interaction = recorder.interactions.get(case_id)
            status = interaction.response.status_code if interaction and \
                interaction.response else None
            yield (f"{recorder.label} [{check.name}] {check.failure_info.failure.title}: "
                   f"{case.method} {case.formatted_path} -> {status}")


@pytest.fixture(scope="module")
def schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The document of the running app (schemathesis runs its lifespan: the runtime is
    opened on its event loop, and closed again when the test is done)."""
    app_settings = fuzz_settings(tmp_path_factory.mktemp("fuzz"))
    seeded = asyncio.run(seed(app_settings))
    yield schemathesis.openapi.from_asgi("/openapi.json", create_app(app_settings),
                                         config=fuzz_config(seeded))
    asgi.shutdown_lifespans()


def test_the_api_keeps_its_documented_contract(schema: Any) -> None:
    outcome = run(schema)
    assert outcome.cases >= ENOUGH_CASES
    assert sorted(set(outcome.problems)) == []
