"""Rate limits: route classes, settings and overrides, windows, token budgets."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from pydantic import ValidationError

from personae.api.app import create_app
from personae.auth.principal import Principal, Role
from personae.config import RateLimits, Settings
from personae.errors import InvalidInput, RateLimited
from personae.ops.ratelimit import (
    Caller,
    RateLimiter,
    RouteClass,
    caller_for,
    classify,
    seconds_to_utc_midnight,
    validate_overrides,
)
from personae.providers import metering
from tests.support.servers import free_port

CHAT, AUDIO, JOBS, WRITES, OTHER = (RouteClass.chat, RouteClass.audio, RouteClass.jobs,
                                    RouteClass.writes, RouteClass.other)
# Every route that is not a read, and the budget it deliberately spends. A new route
# fails the walk below until it is added here (and to ``classify`` if it is not "other").
EXPECTED: dict[tuple[str, str], RouteClass] = {
    ("POST", "/v1/chat/completions"): CHAT,
    ("POST", "/v1/audio/transcriptions"): AUDIO,
    ("POST", "/v1/audio/speech"): AUDIO,
    ("POST", "/v1/personas"): WRITES,
    ("POST", "/v1/personas/import"): WRITES,
    ("PUT", "/v1/personas/{persona_id}"): WRITES,
    ("PATCH", "/v1/personas/{persona_id}"): WRITES,
    ("DELETE", "/v1/personas/{persona_id}"): WRITES,
    ("POST", "/v1/personas/{persona_id}/archive"): WRITES,
    ("POST", "/v1/personas/{persona_id}/restore"): WRITES,
    ("POST", "/v1/personas/{persona_id}/rollback"): WRITES,
    ("PUT", "/v1/personas/{persona_id}/avatar"): WRITES,
    ("DELETE", "/v1/personas/{persona_id}/avatar"): WRITES,
    ("POST", "/v1/personas/{persona_id}/lorebook"): WRITES,
    ("POST", "/v1/users"): WRITES,
    ("PATCH", "/v1/users/{name}"): WRITES,
    ("POST", "/v1/users/{name}/keys"): WRITES,
    ("DELETE", "/v1/keys/{key_id}"): WRITES,
    ("PUT", "/v1/keys/{key_id}/limits"): WRITES,
    ("POST", "/v1/sessions"): OTHER,
    # The dashboard's sign-in forms: an API key is checked, never guessed (random keys).
    ("POST", "/sign-in"): OTHER,
    ("POST", "/sign-out"): OTHER,
    ("DELETE", "/v1/sessions/{session_id}"): OTHER,
    ("POST", "/v1/sessions/{session_id}/switch"): OTHER,
    ("POST", "/v1/sessions/{session_id}/messages"): CHAT,
    ("POST", "/v1/sessions/{session_id}/audio"): AUDIO,
    ("POST", "/v1/sessions/{session_id}/messages/{message_id}/rating"): OTHER,
    ("DELETE", "/v1/sessions/{session_id}/messages/{message_id}/rating"): OTHER,
    ("POST", "/v1/panels"): OTHER,
    ("PUT", "/v1/panels/{panel}"): OTHER,
    ("DELETE", "/v1/panels/{panel}"): OTHER,
    ("POST", "/v1/evaluations"): JOBS,
    ("POST", "/v1/evaluations/{evaluation_id}/cancel"): OTHER,
    ("POST", "/v1/evaluations/{evaluation_id}/rerun"): JOBS,
    ("POST", "/v1/evaluations/{evaluation_id}/resume"): JOBS,
    ("DELETE", "/v1/evaluations/{evaluation_id}"): OTHER,
    ("POST", "/v1/personas/{persona_id}/tests/run"): JOBS,
    ("POST", "/v1/test-runs/{run_id}/cancel"): OTHER,
    ("POST", "/v1/writing/personas"): JOBS,
    ("PUT", "/v1/writing/personas/{persona_id}/samples"): JOBS,
    ("POST", "/v1/writing/personas/{persona_id}/regenerate"): JOBS,
    ("POST", "/v1/writing/{platform}/validate"): OTHER,
    ("POST", "/v1/writing/{platform}/optimize"): JOBS,
    ("POST", "/v1/writing/{platform}/draft"): JOBS,
}


def _routes() -> list[tuple[str, str]]:
    """(method, full template) of every HTTP route of the app."""
    found = []
    for route in create_app(Settings()).routes:
        contexts = getattr(route, "effective_route_contexts", None)
        for context in contexts() if contexts else [route]:
            template = getattr(context, "path_format", "") or getattr(context, "path", "")
            found += [(method, template) for method in getattr(context, "methods", None) or ()]
    return found


def test_every_write_route_has_its_deliberate_class() -> None:
    writes = {(m, t): classify(m, t) for m, t in _routes() if m not in {"GET", "HEAD"}}
    missing = sorted(set(writes) - set(EXPECTED))
    assert not missing, f"classify these routes deliberately and add them here: {missing}"
    assert writes == {key: EXPECTED[key] for key in writes}


def test_reads_are_other_and_operations_routes_are_never_limited() -> None:
    reads = {t for m, t in _routes() if m == "GET"}
    assert "/v1/personas/{persona_id}" in reads
    for template in reads:
        operations = template.startswith(("/health", "/metrics", "/docs", "/openapi"))
        expected = RouteClass.exempt if operations else RouteClass.other
        assert classify("GET", template) is expected, template
    assert classify("GET", "/metrics") is RouteClass.exempt
    assert classify("GET", "/health/detailed") is RouteClass.exempt
    assert classify("POST", "/v1/users/{user_id}/keys") is RouteClass.writes
    assert classify("POST", "/v1/personasx") is RouteClass.other  # a prefix, not a word


def test_callers_by_key_by_address_or_not_at_all() -> None:
    keyed = Principal("u1", "alice", Role.member, key_id="k1",
                      limit_overrides=(("chat", "1/minute"),))
    assert caller_for(keyed, "10.0.0.1") == Caller("key:k1", "member", (("chat", "1/minute"),))
    local = Principal("local", "local", Role.admin)
    assert caller_for(local, "127.0.0.1") == Caller("addr:127.0.0.1", "anonymous")
    assert caller_for(local, None) is None  # the CLI and workers are never limited


def test_settings_merge_partial_roles_and_refuse_bad_limits() -> None:
    settings = Settings(rate_limits={"admin": {"chat": "5/minute"},
                                     "member": {"writes": "unlimited"}})
    defaults = Settings().rate_limits
    assert settings.rate_limits["admin"].chat == "5/minute"
    assert settings.rate_limits["admin"].other == defaults["admin"].other  # kept, not member's
    assert settings.rate_limits["member"].writes is None
    assert settings.rate_limits["anonymous"] == defaults["anonymous"]
    with pytest.raises(ValidationError, match=r"rate_limits\.member\.chat: 'sixty/minute'"):
        Settings(rate_limits={"member": {"chat": "sixty/minute"}})
    with pytest.raises(ValidationError, match="unknown role 'root'"):
        Settings(rate_limits={"root": {}})
    with pytest.raises(ValidationError):
        Settings(rate_limits={"member": {"chats": "1/minute"}})


def test_key_overrides_are_checked_where_they_are_set() -> None:
    assert validate_overrides({"chat": "120/minute", "tokens_per_day": 50000,
                               "audio": "unlimited", "other": "10/second;300/hour"}) == {
        "chat": "120/minute", "tokens_per_day": "50000", "audio": "unlimited",
        "other": "10/second;300/hour"}
    for bad in ({"chatty": "1/minute"}, {"chat": "often"}, {"chat": 5},
                {"tokens_per_day": -1}, {"tokens_per_day": True}, {"tokens_per_day": "1e3"},
                {"writes": "1/minute" * 40}):
        with pytest.raises(InvalidInput):
            validate_overrides(bad)


def _settings(**limits: Any) -> Settings:
    return Settings(rate_limits={"member": RateLimits(**limits)})


@pytest.fixture
async def opened() -> AsyncIterator[list[RateLimiter]]:
    made: list[RateLimiter] = []
    yield made
    for limiter in made:
        await limiter.close()


async def _limiter(opened: list[RateLimiter], settings: Settings,
                   **kwargs: Any) -> RateLimiter:
    limiter = RateLimiter(settings, **kwargs)
    await limiter.open()
    opened.append(limiter)
    return limiter


ALICE = Caller("key:alice", "member")


async def test_a_full_window_refuses_with_which_budget_and_when(opened: list[RateLimiter]
                                                                ) -> None:
    refused: list[tuple[str, str]] = []
    limiter = await _limiter(opened, _settings(chat="3/minute"),
                             on_refused=lambda *args: refused.append(args))
    states = [await limiter.hit(ALICE, RouteClass.chat) for _ in range(3)]
    assert [s[:2] for s in states if s] == [(3, 2), (3, 1), (3, 0)]
    assert all(0 < s[2] <= 60 for s in states if s)
    with pytest.raises(RateLimited) as caught:
        await limiter.hit(ALICE, RouteClass.chat)
    details = caught.value.details
    assert details["scope"] == "requests" and details["route_class"] == "chat"
    assert details["limit"] == "3/minute" and details["remaining"] == 0
    assert 1 <= details["retry_after"] <= 60
    assert caught.value.message.startswith("rate limit of 3/minute for chat requests reached")
    assert refused == [("chat", "requests")]
    assert await limiter.hit(Caller("key:bob", "member"), RouteClass.chat) is not None
    assert await limiter.hit(ALICE, RouteClass.other) is not None  # another class's budget


async def test_every_window_of_a_limit_applies(opened: list[RateLimiter]) -> None:
    limiter = await _limiter(opened, _settings(chat="100/minute;2/hour"))
    first = await limiter.hit(ALICE, RouteClass.chat)
    assert first is not None and first[:2] == (2, 1)  # the tightest window is reported
    await limiter.hit(ALICE, RouteClass.chat)
    with pytest.raises(RateLimited, match="2/hour"):
        await limiter.hit(ALICE, RouteClass.chat)


async def test_overrides_unlimited_classes_and_disabled_limits(opened: list[RateLimiter]
                                                               ) -> None:
    limiter = await _limiter(opened, _settings(chat="1/minute", jobs=None))
    vip = Caller("key:vip", "member", (("chat", "unlimited"), ("other", "1/minute")))
    for _ in range(5):
        assert await limiter.hit(vip, RouteClass.chat) is None
        assert await limiter.hit(ALICE, RouteClass.jobs) is None
        assert await limiter.hit(ALICE, RouteClass.exempt) is None
    await limiter.hit(vip, RouteClass.other)
    with pytest.raises(RateLimited):
        await limiter.hit(vip, RouteClass.other)
    off = await _limiter(opened, Settings(rate_limits_enabled=False,
                                          rate_limits={"member": {"chat": "1/minute"}}))
    assert [await off.hit(ALICE, RouteClass.chat) for _ in range(3)] == [None] * 3
    assert off.meter_for(ALICE) is None


async def test_token_budget_per_day(opened: list[RateLimiter]) -> None:
    refused: list[tuple[str, str]] = []
    limiter = await _limiter(opened, _settings(tokens_per_day=100),
                             on_refused=lambda *args: refused.append(args))
    await limiter.check_tokens(ALICE)
    await limiter.charge_tokens(ALICE, 60)
    await limiter.check_tokens(ALICE)
    meter = limiter.meter_for(ALICE)
    assert meter is not None
    token = metering.meter.set(meter)
    try:
        metering.report_usage(30, 20)  # as a model reply reports it when it finishes
    finally:
        metering.meter.reset(token)
    await limiter.close()  # waits for the charge under way
    with pytest.raises(RateLimited) as caught:
        await limiter.check_tokens(ALICE, RouteClass.jobs)
    details = caught.value.details
    assert details["scope"] == "tokens" and details["limit"] == 100
    assert details["route_class"] == "jobs"
    assert abs(details["retry_after"] - seconds_to_utc_midnight()) <= 2
    assert refused == [("jobs", "tokens")]
    await limiter.check_tokens(Caller("key:vip", "member", (("tokens_per_day", "unlimited"),)))
    assert limiter.meter_for(Caller("key:vip", "member",
                                    (("tokens_per_day", "unlimited"),))) is None


async def test_unreachable_redis_fails_open(opened: list[RateLimiter],
                                            caplog: pytest.LogCaptureFixture) -> None:
    settings = Settings(redis_url=f"redis://127.0.0.1:{free_port()}/0",
                        rate_limits={"member": {"chat": "1/minute", "tokens_per_day": 1}})
    limiter = await _limiter(opened, settings)
    assert limiter.backend == "redis"
    for _ in range(3):
        assert await limiter.hit(ALICE, RouteClass.chat) is None
    await limiter.check_tokens(ALICE)
    assert limiter.failed_open == 4
    assert len([r for r in caplog.records if "unreachable" in r.getMessage()]) == 1
    with pytest.raises(ConnectionError):
        await limiter.ping()


def test_a_window_of_zero_requests_is_refused() -> None:
    """"0/minute" would refuse every request with a 1 s Retry-After, for ever."""
    with pytest.raises(InvalidInput, match="at least 1 request"):
        validate_overrides({"chat": "0/minute"})
    with pytest.raises(InvalidInput):
        validate_overrides({"other": "10/second;0/hour"})


def test_a_setting_of_zero_requests_is_refused() -> None:
    with pytest.raises(ValidationError, match="at least 1 request"):
        Settings(rate_limits={"member": {"chat": "0/minute"}})
