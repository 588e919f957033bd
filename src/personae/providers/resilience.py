"""Retries, deadlines, circuit breakers and fallback around any :class:`LLM`.

Providers fail in ways worth treating differently: a 503 is worth another try, a
400 is not, and a provider that keeps failing should be skipped quickly instead of
making every user wait for its timeout. Retrying is only safe before the first
delta: once text has reached the user, restarting would duplicate or contradict
it, so a later failure propagates and the caller marks the reply interrupted. A
prompt too long for the model (:class:`~personae.errors.ContextTooLong`) is the
caller's to fix: neither retried nor sent down the fallback chain, and the breaker
counts the provider healthy.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Any, Literal, Protocol, TypeVar

from personae.errors import ContextTooLong, ProviderError, ProviderTimeout, ProviderUnavailable
from personae.providers.base import LLM, ChatMessage, Finished, GenerationSettings, StreamEvent
from personae.providers.metering import report_usage

BreakerState = Literal["closed", "open", "half_open"]


class BreakerListener(Protocol):
    """Told of one provider's breaker transitions and retries (metrics)."""

    def state_changed(self, state: BreakerState) -> None: ...
    def retried(self) -> None: ...
T = TypeVar("T")
log = logging.getLogger(__name__)
CLOSE_BOUND_SECONDS = 5.0  # closing an abandoned stream must not hang the caller


class CircuitBreaker:
    """Stops calling a provider after ``failures`` consecutive failures.

    Open: calls are rejected at once. After ``reset_seconds`` one probe call is let
    through (half-open); its success closes the circuit, its failure re-opens it.
    """

    def __init__(self, failures: int, reset_seconds: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.failures = failures
        self.reset_seconds = reset_seconds
        self._clock = clock
        self._state: BreakerState = "closed"
        self._consecutive = 0
        self._opened_at = 0.0
        self._probing = False
        # What /health/detailed shows: the last failure's reason, and wall-clock times.
        self.last_error: str | None = None
        self.last_failure_at: float | None = None
        self.last_success_at: float | None = None
        self.listener: BreakerListener | None = None

    def _set_state(self, state: BreakerState) -> None:
        if state != self._state:
            self._state = state
            if self.listener is not None:
                self.listener.state_changed(state)

    @property
    def state(self) -> BreakerState:
        return self._state

    def retry_after(self) -> float:
        """Seconds until a probe will be let through (0 when calls pass now)."""
        if self._state != "open":
            return 0.0
        return max(0.0, self._opened_at + self.reset_seconds - self._clock())

    def acquire(self, provider: str) -> None:
        """Admit one call or raise ProviderUnavailable; admitted calls must report back."""
        if self._state == "open" and self.retry_after() <= 0:
            self._set_state("half_open")
            self._probing = False
        if self._state == "closed":
            return
        if self._state == "half_open" and not self._probing:
            self._probing = True
            return
        wait = self.retry_after() if self._state == "open" else self.reset_seconds
        reason = "a probe is in progress" if self._state == "half_open" else (
            f"after {self._consecutive} consecutive failures")
        raise ProviderUnavailable(
            provider, f"circuit open {reason}; retry after {wait:.1f}s",
            details={"retry_after": round(wait, 3)})

    def record_success(self) -> None:
        self.last_success_at = time.time()
        if self._state == "open":
            return
        self._set_state("closed")
        self._consecutive, self._probing = 0, False

    def record_failure(self, reason: str | None = None) -> None:
        self.last_error, self.last_failure_at = reason or "failed", time.time()
        if self._state == "open":
            return
        self._consecutive += 1
        if self._state == "half_open" or self._consecutive >= self.failures:
            self._set_state("open")
            self._opened_at, self._probing = self._clock(), False

    def release(self) -> None:
        """An admitted call ended without a verdict (cancelled): free the probe slot."""
        self._probing = False


class _NoBreaker(CircuitBreaker):
    """Stands in for providers that were given no breaker."""

    def __init__(self) -> None:
        super().__init__(failures=1, reset_seconds=1.0)

    def acquire(self, provider: str) -> None:
        return None

    def record_failure(self, reason: str | None = None) -> None:
        return None


class DeadlineMissed(ProviderTimeout):
    """A provider missed one of our deadlines: it is not asked again in the same call
    (it would most likely make the caller wait as long again); the next one is."""


class Retrying:
    """Attempts of one provider: backoff between them, the breaker asked before each.

    ``attempt(bound)`` runs until it succeeds or fails for good, each bounded by what
    is left until ``deadline``; the attempt gives the breaker its verdict. A
    non-retryable failure, or a missed deadline (the provider would most likely make
    the caller wait as long again), is not retried.
    """

    def __init__(self, retries: int, backoff_base: float = 0.2,
                 backoff_max: float = 5.0) -> None:
        self.retries = retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max

    async def run(self, provider: str, breaker: CircuitBreaker, deadline: float,
                  attempt: Callable[[float], Awaitable[T]]) -> T:
        error: ProviderError | None = None
        for number in range(1 + self.retries):
            left = deadline - _now()
            if number:
                pause = self._backoff(number)
                if left <= pause:
                    break  # no time for another try: report the cause so far
                await asyncio.sleep(pause)
                left -= pause
                log.warning("provider.retried", extra={"provider": provider,
                                                       "attempt": number + 1})
                if breaker.listener is not None:
                    breaker.listener.retried()
            if left <= 0:
                raise DeadlineMissed(provider, "not tried: the deadline had passed",
                                     retryable=True)
            try:
                breaker.acquire(provider)
            except ProviderUnavailable:
                if error is None:
                    raise
                raise error from None  # the circuit opened because of this cause
            try:
                return await attempt(left)
            except ProviderError as exc:
                error = exc
                log.warning("provider.attempt_failed", extra={
                    "provider": provider, "attempt": number + 1, "code": exc.code,
                    "retryable": exc.retryable})
                if not exc.retryable or isinstance(exc, DeadlineMissed):
                    raise
        assert error is not None
        raise error

    def _backoff(self, attempt: int) -> float:
        """Exponential, with full jitter so retrying callers do not stampede together."""
        ceiling = min(self.backoff_max, self.backoff_base * 2.0 ** (attempt - 1))
        return ceiling * (0.5 + random.random() / 2)


class ResilientLLM:
    """An :class:`LLM` that tries a chain of providers, primary first.

    Getting a reply started has two deadlines. Each attempt must yield its first event
    within ``first_token_timeout`` seconds, or it fails as a timeout and the next
    provider in the chain is tried at once (a provider that did not answer in time is
    not asked again in the same call); all attempts, with ``retries`` more per provider
    on retryable errors (backoff with jitter), fit within ``timeout`` seconds, which
    also bounds every later gap between events. Once a reply has started there is no
    failover: its text has reached the caller. Fallbacks get ``settings.model``
    cleared: a model name belongs to the primary provider, and each fallback uses its
    own. The providers belong to whoever built them, so :meth:`aclose` leaves them open.
    """

    def __init__(self, chain: Sequence[LLM], breakers: dict[str, CircuitBreaker],
                 retries: int, timeout: float, backoff_base: float = 0.2,
                 backoff_max: float = 5.0, first_token_timeout: float | None = None) -> None:
        if not chain:
            raise ValueError("ResilientLLM needs at least one provider")
        self.chain = list(chain)
        self.breakers = breakers
        self.retries = retries
        self.timeout = timeout
        self.first_token_timeout = min(first_token_timeout or timeout, timeout)
        self._retrying = Retrying(retries, backoff_base, backoff_max)
        self.name = self.chain[0].name
        self.context_window = self.chain[0].context_window

    def count_tokens(self, text: str) -> int:
        return self.chain[0].count_tokens(text)

    async def aclose(self) -> None:
        return None

    async def stream(self, messages: Sequence[ChatMessage],
                     settings: GenerationSettings) -> AsyncIterator[StreamEvent]:
        failures: list[ProviderError] = []
        deadline = _now() + self.timeout
        for index, llm in enumerate(self.chain):
            wanted = settings if index == 0 else replace(settings, model=None)
            breaker = self.breakers.get(llm.name) or _NoBreaker()
            try:
                events, first = await self._start(llm, breaker, messages, wanted, deadline)
            except ContextTooLong:
                raise  # the caller's to shorten: no fallback is asked the same prompt
            except ProviderError as exc:
                failures.append(exc)
                continue
            # Relayed here rather than by a nested generator: this runs once per delta.
            relay = _Relay(llm, breaker, events, self.timeout)
            try:
                event = first
                while not isinstance(event, Finished):
                    yield event
                    event = await relay.next()
                relay.verdict(None)
                report_usage(event.usage.prompt_tokens, event.usage.completion_tokens)
                yield event if event.provider else replace(event, provider=llm.name)
            except ProviderError as exc:
                relay.verdict(exc)
                raise
            finally:
                await relay.close()
            return
        raise all_failed(failures)

    async def _start(self, llm: LLM, breaker: CircuitBreaker, messages: Sequence[ChatMessage],
                     settings: GenerationSettings, deadline: float,
                     ) -> tuple[AsyncIterator[StreamEvent], StreamEvent]:
        """Retry until one attempt yields its first event, within the deadlines."""
        return await self._retrying.run(
            llm.name, breaker, deadline,
            lambda _left: self._attempt(llm, breaker, messages, settings, deadline))

    async def _attempt(self, llm: LLM, breaker: CircuitBreaker,
                       messages: Sequence[ChatMessage], settings: GenerationSettings,
                       deadline: float) -> tuple[AsyncIterator[StreamEvent], StreamEvent]:
        """One attempt, bounded by the first-token deadline and what is left overall."""
        remaining = deadline - _now()
        bound, limit = ((self.first_token_timeout, self.first_token_timeout)
                        if self.first_token_timeout < remaining else (remaining, self.timeout))
        try:
            async with asyncio.timeout(bound):
                return await _first_event(llm, breaker, messages, settings)
        except TimeoutError:
            breaker.record_failure(f"no response within {limit:g}s")
            raise DeadlineMissed(llm.name, f"no response within {limit:g}s",
                                 retryable=True) from None

class _Relay:
    """One started reply after its first event: the next events, each within
    ``timeout`` seconds of asking, and the breaker's verdict once it ends.

    The stall deadline costs no timer per event: one timer, armed when a wait begins
    and none is pending, checks on firing whether a wait is still running and since
    when, and re-arms for the rest or cancels that wait (turned into ProviderTimeout).
    It never fires on the caller's own time, between events.
    """

    def __init__(self, llm: LLM, breaker: CircuitBreaker, events: AsyncIterator[StreamEvent],
                 timeout: float) -> None:
        self.llm, self.breaker, self.events, self.timeout = llm, breaker, events, timeout
        self._loop = asyncio.get_running_loop()
        self._waiting_since: float | None = None
        self._waiter: asyncio.Task[Any] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._cancelling = -1  # the waiter's cancel count before the stall cancelled it
        self._judged = False

    async def next(self) -> StreamEvent:
        """The next event; a stall, an early end or a bug raises a ProviderError."""
        self._waiting_since = self._loop.time()
        self._waiter = asyncio.current_task()
        if self._timer is None:
            self._timer = self._loop.call_at(self._waiting_since + self.timeout, self._check)
        try:
            return await anext(self.events)
        except asyncio.CancelledError:
            if self._cancelling < 0 or self._waiter is None or \
                    self._waiter.uncancel() > self._cancelling:
                raise  # the caller was cancelled, not the stall
            raise ProviderTimeout(self.llm.name, f"stalled: no output for {self.timeout:g}s",
                                  retryable=True) from None
        except StopAsyncIteration:
            raise ProviderError(self.llm.name, "stream ended before the reply finished",
                                retryable=True) from None
        except ProviderError:
            raise
        except Exception as exc:
            raise unexpected(self.llm.name, exc) from exc
        finally:
            self._waiting_since = None

    def _check(self) -> None:
        self._timer = None
        since, waiter = self._waiting_since, self._waiter
        if since is None or waiter is None:
            return  # between waits: the next one arms again
        due = since + self.timeout
        if self._loop.time() < due:
            self._timer = self._loop.call_at(due, self._check)
            return
        self._cancelling = waiter.cancelling()
        waiter.cancel()

    def verdict(self, error: ProviderError | None) -> None:
        """The reply finished (None) or failed: tell the breaker."""
        if error is None:
            self.breaker.record_success()
        else:
            _record(self.breaker, error)
        self._judged = True

    async def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._judged:  # the caller stopped early: the provider was working
            self.breaker.record_success()
        await _close(self.events)


async def _first_event(llm: LLM, breaker: CircuitBreaker, messages: Sequence[ChatMessage],
                       settings: GenerationSettings,
                       ) -> tuple[AsyncIterator[StreamEvent], StreamEvent]:
    """One attempt: open the stream and wait for its first event, reporting the outcome."""
    events = aiter(llm.stream(messages, settings))
    try:
        first = await anext(events)
    except ProviderError as exc:
        _record(breaker, exc)
        raise
    except StopAsyncIteration:
        breaker.record_failure("stream ended without a reply")
        raise ProviderError(llm.name, "stream ended without a reply", retryable=True) from None
    except Exception as exc:
        error = unexpected(llm.name, exc)
        breaker.record_failure(error.message)
        raise error from exc
    except BaseException:  # cancelled (deadline or caller): no verdict on the provider
        breaker.release()
        await _close(events)
        raise
    return events, first


def _now() -> float:
    """The deadlines' clock (monotonic; asking the running loop costs a system call on
    Python 3.11, and these deadlines are only compared with each other)."""
    return time.monotonic()


def _record(breaker: CircuitBreaker, exc: ProviderError) -> None:
    """Only failures that say something about the provider's health count."""
    if exc.retryable:
        was = breaker.state
        breaker.record_failure(exc.message)
        if breaker.state == "open" and was != "open":
            log.warning("provider.circuit_opened", extra={
                "provider": exc.provider, "code": exc.code,
                "retry_after_seconds": round(breaker.retry_after(), 3)})
    else:
        breaker.record_success()  # it answered; the request was at fault


def unexpected(provider: str, exc: Exception) -> ProviderError:
    """A provider bug must not escape as a bare exception: fallback still applies."""
    if isinstance(exc, TimeoutError):
        return ProviderTimeout(provider, "timed out", retryable=True)
    return ProviderError(provider, f"unexpected {type(exc).__name__}: {exc}")


async def _close(events: AsyncIterator[StreamEvent]) -> None:
    closer = getattr(events, "aclose", None)
    if closer is None:
        return
    try:
        async with asyncio.timeout(CLOSE_BOUND_SECONDS):
            await closer()
    except (TimeoutError, ProviderError):
        pass


def all_failed(failures: Sequence[ProviderError]) -> ProviderError:
    """The last error's class (so its status), with a message naming every provider."""
    if not failures:
        return ProviderUnavailable("none", "no provider to try")
    last = failures[-1]
    if len(failures) == 1:
        return last
    summary = "; ".join(failure.message for failure in failures)
    details: dict[str, Any] = {
        "providers": [failure.provider for failure in failures],
        "failures": [{"provider": f.provider, "code": f.code, "message": f.message}
                      for f in failures],
    }
    waits = [f.details["retry_after"] for f in failures if "retry_after" in f.details]
    if waits:  # the soonest any of them may be tried again
        details["retry_after"] = min(waits)
    error = type(last)(last.provider, "", retryable=last.retryable, details=details)
    error.message = f"all providers failed: {summary}"
    error.args = (error.message,)
    return error
