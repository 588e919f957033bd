"""Rate limits in Redis: several API processes share one budget per caller."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from personae.config import Settings
from personae.errors import RateLimited
from personae.ops.ratelimit import Caller, RateLimiter, RouteClass
from personae.runtime import Runtime
from tests.support.runtime import member_keys
from tests.support.servers import api_server

LIMITS = {"member": {"other": "4/minute"}, "anonymous": {"other": "3/minute"}}


@pytest.mark.slow
async def test_two_api_processes_share_one_budget(sqlite_url: str, tmp_path: Path,
                                                  redis_url: str) -> None:
    settings = Settings(data_dir=tmp_path, database_url=sqlite_url)
    alice, bob = await member_keys(settings, [])
    runtime = await Runtime.open(settings, watch=False)
    await runtime.close()  # migrated once, before two servers race to do it
    env = {"PERSONAE_REDIS_URL": redis_url, "PERSONAE_RATE_LIMITS": json.dumps(LIMITS)}
    with api_server(sqlite_url, tmp_path, **env) as first, \
            api_server(sqlite_url, tmp_path, **env) as second:
        async with httpx.AsyncClient(timeout=10) as client:
            as_alice = {"Authorization": f"Bearer {alice}"}
            statuses = [(await client.get(f"{url}/v1/me", headers=as_alice)).status_code
                        for url in (first, second, first, second, first, second)]
            assert statuses == [200, 200, 200, 200, 429, 429]
            refused = await client.get(f"{second}/v1/me", headers=as_alice)
            assert refused.json()["error"]["details"]["limit"] == "4/minute"
            assert int(refused.headers["Retry-After"]) >= 1
            as_bob = {"Authorization": f"Bearer {bob}"}
            assert (await client.get(f"{second}/v1/me", headers=as_bob)).status_code == 200
            keyless = [(await client.get(f"{url}/v1/me")).status_code  # one loopback address
                       for url in (first, second, first, second)]
            assert keyless == [200, 200, 200, 429]


async def test_limiters_on_one_redis_share_windows_and_token_budgets(redis_url: str) -> None:
    settings = Settings(redis_url=redis_url, rate_limits={
        "member": {"chat": "3/minute", "tokens_per_day": 100}})
    one, two = RateLimiter(settings), RateLimiter(settings)
    alice = Caller("key:alice", "member")
    for limiter in (one, two):
        await limiter.open()
    try:
        assert one.backend == "redis"
        ping = await one.ping()
        assert ping is not None and ping >= 0
        states = [await limiter.hit(alice, RouteClass.chat) for limiter in (one, two, one)]
        assert [s[1] for s in states if s] == [2, 1, 0]
        with pytest.raises(RateLimited, match="rate limit of 3/minute"):
            await two.hit(alice, RouteClass.chat)
        await one.charge_tokens(alice, 60)
        await two.check_tokens(alice)
        await two.charge_tokens(alice, 40)
        with pytest.raises(RateLimited, match="daily token budget of 100 tokens spent"):
            await one.check_tokens(alice)
        assert one.failed_open == 0
    finally:
        for limiter in (one, two):
            await limiter.close()
