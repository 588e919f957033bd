"""Concurrent calls of one kind, answered together (a group commit).

A call made while a batch is being answered waits for the next one, which takes every
call waiting by then: alone a call waits for nobody, under load a thousand calls cost a
few round trips to the database instead of a thousand. A batch that fails because of
one of its calls (``retry_alone`` says which failures can be) is answered again call by
call, so one bad call fails alone; any other failure is every call's. A caller that
stops waiting (it was cancelled) before its batch starts is dropped; once its batch has
started, what was done for it is handed to ``abandoned`` (a claim to let go of, say).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

Q = TypeVar("Q")
R = TypeVar("R")
MOST_PER_BATCH = 200


class Batches(Generic[Q, R]):
    """``await batches(request)``: ``answer`` gets every request waiting, in order, and
    returns one result per request."""

    def __init__(self, answer: Callable[[list[Q]], Awaitable[list[R]]], name: str, *,
                 abandoned: Callable[[R], Awaitable[None]] | None = None,
                 retry_alone: Callable[[Exception], bool] = lambda _exc: True,
                 most: int = MOST_PER_BATCH) -> None:
        self._answer = answer
        self._name = name
        self._retry_alone = retry_alone
        self._abandoned = abandoned
        self._most = most
        self._waiting: list[tuple[Q, asyncio.Future[R]]] = []
        self._writer: asyncio.Task[None] | None = None
        self._letting_go: set[asyncio.Task[None]] = set()

    @property
    def waiting(self) -> int:
        """Calls waiting for a batch to take them."""
        return len(self._waiting)

    async def __call__(self, request: Q) -> R:
        loop = asyncio.get_running_loop()
        if self._writer is not None and self._writer.get_loop() is not loop:
            self._waiting, self._writer = [], None  # left by a loop that is gone
        done: asyncio.Future[R] = loop.create_future()
        self._waiting.append((request, done))
        if self._writer is None or self._writer.done():
            self._writer = loop.create_task(self._answer_all(), name=self._name)
        try:
            return await done
        except asyncio.CancelledError:
            if done.done() and not done.cancelled() and done.exception() is None:
                self._hand_over(done.result())  # answered just as our caller left
            raise

    def _hand_over(self, result: R) -> None:
        if self._abandoned is not None:
            task = asyncio.get_running_loop().create_task(self._let_go(result))
            self._letting_go.add(task)
            task.add_done_callback(self._letting_go.discard)

    async def _answer_all(self) -> None:
        while self._waiting:
            batch = [item for item in self._waiting[:self._most] if not item[1].done()]
            del self._waiting[:self._most]  # a caller that left before its batch is dropped
            if not batch:
                continue
            try:
                await self._answer_batch(batch)
            except BaseException:  # the loop is closing: nobody is left to answer
                for _, done in batch:
                    done.cancel()
                raise

    async def _answer_batch(self, batch: list[tuple[Q, asyncio.Future[R]]]) -> None:
        try:
            results = await self._answer([request for request, _ in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"{self._name}: {len(results)} results for "
                                   f"{len(batch)} calls")
        except Exception as exc:
            if len(batch) == 1 or not self._retry_alone(exc):
                for _, done in batch:
                    if not done.done():
                        done.set_exception(exc)
                return
            log.warning("%s: a batch of %d failed; answering each alone", self._name,
                        len(batch), exc_info=True)
            for item in batch:
                await self._answer_batch([item])
            return
        for (_, done), result in zip(batch, results, strict=True):
            if not done.done():
                done.set_result(result)
            elif self._abandoned is not None:
                await self._let_go(result)

    async def _let_go(self, result: R) -> None:
        assert self._abandoned is not None
        try:
            await self._abandoned(result)
        except Exception:
            log.warning("%s: letting go of an abandoned result failed", self._name,
                        exc_info=True)
