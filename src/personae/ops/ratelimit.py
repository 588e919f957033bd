"""Rate limits per API key (or keyless address) and route class, and daily token budgets.

One caller must not starve the others, nor spend the model's time without bound. Each
request is counted against its caller's budget for its route class (see
:func:`classify`) with the ``limits`` library's sliding window counter: one
check-and-count per window, no burst of twice the limit at a window's edge as a fixed
window allows, and a few microseconds in memory. Budgets come from the caller's role
(``Settings.rate_limits``) unless the key carries its own overrides.

Wrong API keys are counted too, per client address (``auth_failures_limit``): past
the limit, that address's key attempts are refused before the key is checked, so keys
cannot be guessed at the speed of the server.

Counts live in memory (one process) or in Redis (``redis_url``), where every API
process shares one budget. When Redis cannot be reached the limiter fails open:
requests pass uncounted (one warning per outage; ``failed_open`` counts them) rather
than every request being refused while the counter is away.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.errors import StorageError

from personae.auth.principal import Principal
from personae.config import RATE_LIMIT_CLASSES, Settings
from personae.errors import InvalidInput, RateLimited
from personae.ops.route_classes import MODEL_CLASSES, RouteClass, classify
from personae.providers.metering import TokenMeter

__all__ = ["MODEL_CLASSES", "Caller", "RateLimiter", "RateState", "RouteClass", "caller_for",
           "classify", "validate_overrides"]

log = logging.getLogger(__name__)

# (limit, remaining, seconds until a request is counted again): the RateLimit-* headers.
RateState = tuple[int, int, int]
# (route class or "auth", scope "requests" | "tokens" | "auth_failures")
RefusalListener = Callable[[str, str], None]
AUTH_FAILURES = "auth_failures"  # the scope (and counter namespace) of wrong keys

# -- callers and their budgets -----------------------------------------------------

@dataclass(frozen=True, slots=True)
class Caller:
    """Whose budget a request spends: ``key:<key_id>`` or ``addr:<client host>``."""

    identity: str
    role: str  # member, admin, or anonymous (keyless loopback callers)
    overrides: tuple[tuple[str, str], ...] = ()


def caller_for(principal: Principal, client_host: str | None) -> Caller | None:
    """The caller to count; None (never limited) for the CLI and workers, which have
    neither a key nor an address."""
    if principal.key_id is not None:
        return Caller(f"key:{principal.key_id}", principal.role.value,
                      principal.limit_overrides)
    if client_host:
        return Caller(f"addr:{client_host}", "anonymous")
    return None


UNLIMITED = "unlimited"
OVERRIDE_KEYS = (*RATE_LIMIT_CLASSES, "tokens_per_day")
MAX_LIMIT_TEXT = 200


def parse_limit(value: str) -> tuple[RateLimitItem, ...]:
    """``"10/second;300/hour"`` as the windows that all apply (ValueError if unreadable)."""
    if len(value) > MAX_LIMIT_TEXT:
        raise ValueError(f"longer than {MAX_LIMIT_TEXT} characters")
    items = tuple(parse_many(value))
    if any(item.amount < 1 for item in items):
        raise ValueError("a window allows at least 1 request (to block a class, disable "
                         "the user or revoke the key)")
    return items


def validate_overrides(mapping: Mapping[str, Any]) -> dict[str, str]:
    """A key's own limits, checked where they are set: route class -> ``limits`` string
    or ``"unlimited"``; ``tokens_per_day`` -> a whole number or ``"unlimited"``."""
    checked: dict[str, str] = {}
    for name, value in mapping.items():
        if name not in OVERRIDE_KEYS:
            raise InvalidInput(f"unknown limit {name!r}; accepted: {', '.join(OVERRIDE_KEYS)}",
                               {"param": name})
        checked[name] = _override_value(name, value)
    return checked


def _override_value(name: str, value: Any) -> str:
    if value == UNLIMITED:
        return UNLIMITED
    if name == "tokens_per_day":
        text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
        if isinstance(text, str) and text.isdigit() and len(text) <= 15:
            return str(int(text))
        raise InvalidInput(f"tokens_per_day: expected a whole number of tokens or "
                           f"'unlimited', not {value!r}", {"param": name})
    reason = ""
    try:
        if isinstance(value, str) and parse_limit(value):
            return value
    except ValueError as exc:
        reason = f" ({exc})"
    raise InvalidInput(f"{name}: expected a limit such as '60/minute' or "
                       f"'10/second;300/hour', or 'unlimited', not {str(value)[:80]!r}"
                       f"{reason}", {"param": name})


def _describe(item: RateLimitItem) -> str:
    unit = item.GRANULARITY.name
    per = unit if item.multiples == 1 else f"{item.multiples} {unit}s"
    return f"{item.amount}/{per}"


def _seconds_until(moment: float) -> int:
    return max(1, math.ceil(moment - time.time()))


def seconds_to_utc_midnight(now: datetime | None = None) -> int:
    now = now or datetime.now(UTC)
    midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return max(1, math.ceil((midnight - now).total_seconds()))


# -- the limiter ---------------------------------------------------------------------

# Storage errors (wrapped by ``limits``) and the socket failures a client may raise.
_STORAGE_ERRORS = (StorageError, OSError, asyncio.TimeoutError)
RETRY_STORAGE_SECONDS = 1.0  # while the storage is away, try it again this often
REDIS_TIMEOUT_SECONDS = 0.5


class RateLimiter:
    """Counts requests and tokens per caller; built once per process by the runtime."""

    def __init__(self, settings: Settings, *, on_refused: RefusalListener | None = None
                 ) -> None:
        self.settings = settings
        self.enabled = settings.rate_limits_enabled
        self.on_refused = on_refused
        self.backend = "redis" if settings.redis_url else "memory"
        self.failed_open = 0  # checks let through uncounted because storage was away
        self._storage: Storage = MemoryStorage(wrap_exceptions=True)
        self._windows = SlidingWindowCounterRateLimiter(self._storage)
        self._budgets: dict[tuple[str, tuple[tuple[str, str], ...], str],
                            tuple[RateLimitItem, ...]] = {}
        self._token_budgets: dict[tuple[str, tuple[tuple[str, str], ...]], int | None] = {}
        limit = settings.auth_failures_limit
        self._auth_windows = parse_limit(limit) if limit and self.enabled else ()
        self._charges: set[asyncio.Task[None]] = set()
        self._retry_at = 0.0  # monotonic time before which the storage is not tried
        self._outage = False

    async def open(self) -> None:
        if self.settings.redis_url:
            self._storage = RedisStorage(
                _async_uri(self.settings.redis_url), wrap_exceptions=True,
                implementation="redispy", key_prefix="personae:limits",
                socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
                socket_timeout=REDIS_TIMEOUT_SECONDS)
            self._windows = SlidingWindowCounterRateLimiter(self._storage)

    async def close(self) -> None:
        """Finish the charges under way, then let go of the storage."""
        if self._charges:
            await asyncio.gather(*self._charges, return_exceptions=True)
        if isinstance(self._storage, MemoryStorage):
            if self._storage.timer is not None:
                self._storage.timer.cancel()
        elif isinstance(self._storage, RedisStorage):
            client = getattr(self._storage.bridge, "storage", None)  # redis-py's client
            closing = getattr(client, "aclose", None)
            if closing is not None:
                await closing()

    async def ping(self) -> float | None:
        """Seconds Redis took to answer (None in memory); raises when it does not."""
        if self.backend == "memory":
            return None
        start = time.perf_counter()
        if not await self._storage.check():
            raise ConnectionError("the rate-limit storage (Redis) does not answer")
        return time.perf_counter() - start

    # -- requests ----------------------------------------------------------------

    async def hit(self, caller: Caller | None, route_class: RouteClass) -> RateState | None:
        """Count one request; the tightest window's state, or None when not limited.
        Raises :class:`RateLimited` when a window is full."""
        if caller is None or not self.enabled:
            return None
        windows = self.windows(caller, route_class)
        if not windows or self._storage_away():
            return None
        try:
            state = await self._count(windows, caller, route_class)
        except _STORAGE_ERRORS as exc:
            self._storage_failed(exc)
            return None
        if self._outage:
            self._storage_back()
        return state

    async def _count(self, windows: tuple[RateLimitItem, ...], caller: Caller,
                     route_class: RouteClass) -> RateState:
        tightest: RateState | None = None
        for item in windows:
            counted = await self._windows.hit(item, caller.identity, route_class)
            stats = await self._windows.get_window_stats(item, caller.identity, route_class)
            if not counted:
                self._refuse_request(item, route_class, stats.reset_time)
            state = (item.amount, stats.remaining, _seconds_until(stats.reset_time))
            if tightest is None or state[1] < tightest[1]:
                tightest = state
        assert tightest is not None
        return tightest

    def _refuse_request(self, item: RateLimitItem, route_class: RouteClass,
                        reset_time: float) -> None:
        wait = _seconds_until(reset_time)
        limit = _describe(item)
        self._refused(route_class, "requests")
        raise RateLimited(
            f"rate limit of {limit} for {route_class} requests reached; retry in {wait} s",
            {"route_class": str(route_class), "limit": limit, "remaining": 0,
             "reset_after": wait, "retry_after": wait, "scope": "requests",
             "limit_count": item.amount})

    def windows(self, caller: Caller, route_class: RouteClass) -> tuple[RateLimitItem, ...]:
        """The windows that apply to the caller's requests of this class (none: unlimited)."""
        key = (caller.role, caller.overrides, route_class)
        found = self._budgets.get(key)
        if found is None:
            found = self._budgets[key] = self._resolve(caller, route_class)
        return found

    def _resolve(self, caller: Caller, route_class: RouteClass) -> tuple[RateLimitItem, ...]:
        if route_class is RouteClass.exempt:
            return ()
        own = dict(caller.overrides).get(route_class)
        if own is not None:
            try:
                return () if own == UNLIMITED else parse_limit(own)
            except ValueError:  # refused where it is set; a stale row keeps the default
                log.warning("ignoring unreadable %s limit %r of %s", route_class, own,
                            caller.identity)
        limits = self.settings.rate_limits.get(caller.role)
        value = getattr(limits, route_class, None) if limits is not None else None
        return parse_limit(value) if value else ()

    # -- wrong keys ------------------------------------------------------------------

    async def check_auth_failures(self, address: str | None) -> None:
        """Refuse (429, scope ``auth_failures``) a key attempt from an address whose
        wrong keys fill a window, before the key is looked at."""
        full = await self._auth_failures(address, count=False)
        if full is None:
            return
        item, wait = full[0], _seconds_until(full[1])
        self._refused("auth", AUTH_FAILURES)
        raise RateLimited(
            f"too many failed authentications from this address ({_describe(item)}); "
            f"retry in {wait} s", {"limit": _describe(item), "remaining": 0,
                                    "reset_after": wait, "retry_after": wait,
                                    "scope": AUTH_FAILURES, "limit_count": item.amount})

    async def count_auth_failure(self, address: str | None) -> None:
        """Count a wrong key from ``address`` (logged when it fills a window)."""
        full = await self._auth_failures(address, count=True)
        if full is not None:
            log.warning("%s sent %s wrong API keys: its key attempts are refused for now",
                        address, _describe(full[0]))

    async def _auth_failures(self, address: str | None, *, count: bool
                             ) -> tuple[RateLimitItem, float] | None:
        """The first window the address's wrong keys fill (and its reset time), after
        counting one more if ``count``; None when none is full or nothing is counted."""
        if not self._auth_windows or not address or self._storage_away():
            return None
        full: tuple[RateLimitItem, float] | None = None
        try:
            for item in self._auth_windows:
                if count:
                    await self._windows.hit(item, f"addr:{address}", AUTH_FAILURES)
                stats = await self._windows.get_window_stats(item, f"addr:{address}",
                                                             AUTH_FAILURES)
                if stats.remaining == 0 and full is None:
                    full = (item, stats.reset_time)
        except _STORAGE_ERRORS as exc:
            self._storage_failed(exc)
            return None
        return full

    # -- tokens --------------------------------------------------------------------

    def token_budget(self, caller: Caller | None) -> int | None:
        """Model tokens the caller may spend per UTC day (None: no budget)."""
        if caller is None or not self.enabled:
            return None
        key = (caller.role, caller.overrides)
        if key not in self._token_budgets:
            self._token_budgets[key] = self._resolve_tokens(caller)
        return self._token_budgets[key]

    def _resolve_tokens(self, caller: Caller) -> int | None:
        own = dict(caller.overrides).get("tokens_per_day")
        if own is not None and own != UNLIMITED and own.isdigit():
            return int(own)
        if own == UNLIMITED:
            return None
        limits = self.settings.rate_limits.get(caller.role)
        return limits.tokens_per_day if limits is not None else None

    async def check_tokens(self, caller: Caller | None,
                           route_class: RouteClass = RouteClass.chat) -> None:
        """Refuse (429, scope ``tokens``) a model call once the day's budget is spent."""
        budget = self.token_budget(caller)
        if budget is None or caller is None or self._storage_away():
            return
        try:
            spent = await self._storage.get(_token_key(caller))
        except _STORAGE_ERRORS as exc:
            self._storage_failed(exc)
            return
        if spent < budget:
            return
        wait = seconds_to_utc_midnight()
        self._refused(route_class, "tokens")
        raise RateLimited(
            f"daily token budget of {budget} tokens spent; retry in {wait} s "
            f"(at 00:00 UTC)",
            {"route_class": str(route_class), "limit": budget, "remaining": 0,
             "reset_after": wait, "retry_after": wait, "scope": "tokens",
             "limit_count": budget})

    async def charge_tokens(self, caller: Caller, tokens: int) -> None:
        """Add ``tokens`` to the caller's spend today (logged, never raised, on failure)."""
        try:
            await self._storage.incr(_token_key(caller), seconds_to_utc_midnight() + 3600,
                                     amount=tokens)
        except _STORAGE_ERRORS as exc:
            self._storage_failed(exc)
            log.error("could not charge %d tokens to %s: %s", tokens, caller.identity, exc)

    def meter_for(self, caller: Caller | None) -> TokenMeter | None:
        """What to set as ``providers.metering.meter`` for the caller's request."""
        if caller is None or self.token_budget(caller) is None:
            return None
        return _BudgetMeter(self, caller)

    def charge_soon(self, caller: Caller, tokens: int) -> None:
        """Charge without making the caller (a streaming reply) wait for the storage."""
        try:
            task = asyncio.get_running_loop().create_task(self.charge_tokens(caller, tokens))
        except RuntimeError:
            log.error("could not charge %d tokens to %s: no event loop", tokens,
                      caller.identity)
            return
        self._charges.add(task)
        task.add_done_callback(self._charged)

    def _charged(self, task: asyncio.Task[None]) -> None:
        self._charges.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("charging tokens failed", exc_info=task.exception())

    # -- refusals and outages ----------------------------------------------------------

    def _refused(self, route_class: str, scope: str) -> None:
        if self.on_refused is not None:
            try:
                self.on_refused(str(route_class), scope)
            except Exception:
                log.warning("counting a rate-limit refusal failed", exc_info=True)

    def _storage_away(self) -> bool:
        if self._retry_at and time.monotonic() < self._retry_at:
            self.failed_open += 1
            return True
        return False

    def _storage_failed(self, exc: BaseException) -> None:
        self.failed_open += 1
        self._retry_at = time.monotonic() + RETRY_STORAGE_SECONDS
        if not self._outage:
            self._outage = True
            log.warning("rate-limit storage (%s) unreachable, requests pass uncounted "
                        "until it answers again: %s", self.backend, exc)

    def _storage_back(self) -> None:
        self._outage, self._retry_at = False, 0.0
        log.warning("rate-limit storage (%s) answers again; %d checks passed uncounted "
                    "so far", self.backend, self.failed_open)


@dataclass(frozen=True, slots=True)
class _BudgetMeter:
    limiter: RateLimiter
    caller: Caller

    def add(self, tokens: int) -> None:
        self.limiter.charge_soon(self.caller, tokens)


def _token_key(caller: Caller) -> str:
    return f"tokens/{caller.identity}/{datetime.now(UTC):%Y%m%d}"


def _async_uri(url: str) -> str:
    """``redis://`` as the ``limits`` async Redis storage names it."""
    scheme, sep, rest = url.partition("://")
    if scheme == "unix":
        return f"async+redis+unix://{rest}"
    return f"async+{scheme}{sep}{rest}"
