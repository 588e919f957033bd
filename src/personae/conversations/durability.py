"""What keeps a turn safe while it streams: its claim is a lease, its reply is flushed.

**Leases.** A turn claims its session with a lease: the claim names its holder (a
per-process instance id and, for a server, a stable node name) and expires ``lease``
after it was last renewed. The process streaming the turn renews it every lease/3, so
the claim of a process that died is free within one lease; a server restarted under
the same node name frees its predecessor's claims at start-up, at once.

**Flushing.** The assistant reply is a row from the moment the user's message is
saved (status ``streaming``). A keeper per turn (a timer) writes the reply's new text
at most every ``flush_seconds`` (never once per delta) and renews the lease; the turn's
last update sets ``complete``, ``failed`` or ``interrupted``. A ``streaming`` row whose
holder is gone becomes ``interrupted`` with the text flushed so far: when its session
is next claimed, when a server starts, and in a server's periodic sweep.

**Opening and ending.** A turn's first write (its claim, the user's message, the
reply's row) is one transaction, and so is its last (the reply, the release, the
metrics); turns that open or end while such a transaction is being committed go
together into the next (a group commit, see ``batches``): alone a turn waits for
nobody, under load a thousand turns cost a few transactions instead of a thousand.

**Draining.** On shutdown, :meth:`TurnRegistry.drain` refuses new turns (503
``shutting_down``), lets running ones finish for a grace period, then stops the rest
and waits until their saves are written. Stopping never cancels a transport: a turn
waiting for the model is cancelled inside that wait only, one handing a delta to its
client stops before it next waits; either way its reply is saved ``interrupted`` and
its client gets a 503 ``shutting_down`` error event carrying it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from personae.conversations.records import OpenedTurn, Recovered, TurnHolder, TurnOpening
from personae.conversations.store import ConversationStore
from personae.errors import Conflict, PersonaeError, ShuttingDown

log = logging.getLogger(__name__)

T = TypeVar("T")
E = TypeVar("E")
STOP_BOUND_SECONDS = 5.0  # how long a stopped turn may take to save before the drain ends


@dataclass(frozen=True, slots=True)
class TurnTiming:
    lease: timedelta = timedelta(seconds=30)
    flush_seconds: float = 1.0

    @property
    def renew_seconds(self) -> float:
        return self.lease.total_seconds() / 3


class ActiveTurn:
    """One running turn: the claim it holds, its keeper, and how to stop it early."""

    def __init__(self, session_id: str, turn_id: str) -> None:
        self.session_id = session_id
        self.turn_id = turn_id
        self.stop_error: PersonaeError | None = None
        self.keeper: Keeper | None = None
        self._task: asyncio.Task[Any] | None = None
        self._waiting = False  # suspended inside the model stream, where a cancel is safe
        self._cancel_sent = False

    def stop(self, error: PersonaeError) -> None:
        """End the reply as ``interrupted`` with ``error``: at once if it is waiting for
        the model, else before it next waits."""
        if self.stop_error is not None:
            return
        self.stop_error = error
        if self._waiting and self._task is not None:
            self._cancel_sent = True
            self._task.cancel("turn stopped")

    async def next_event(self, stream: AsyncIterator[E]) -> E | None:
        """The model's next event; None at the end of the stream or once stopped."""
        if self.stop_error is not None:
            return None
        self._task = asyncio.current_task()
        self._waiting = True
        try:
            return await anext(stream)
        except StopAsyncIteration:
            return None
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if not self._cancel_sent or task is None or task.uncancel() > 0:
                raise  # cancelled by someone else too
            return None
        finally:
            self._waiting = False

    def keep(self, timing: TurnTiming, flush: Callable[[], Awaitable[None]],
             renew: Callable[[], Awaitable[bool]]) -> None:
        """Flush the reply every ``flush_seconds`` and renew the lease every lease/3,
        until :meth:`close_keeper`."""
        self.keeper = Keeper(timing, flush, renew,
                             lambda: self.stop(lease_lost(self.session_id)), self.session_id)

    async def close_keeper(self) -> None:
        if self.keeper is not None:
            await self.keeper.close()


class Keeper:
    """A turn's flushes and lease renewals: a timer, and a task only while one of them
    runs, so a turn shorter than the flush interval costs one timer. A database hiccup
    is logged and tried again at the next round."""

    def __init__(self, timing: TurnTiming, flush: Callable[[], Awaitable[None]],
                 renew: Callable[[], Awaitable[bool]], lost: Callable[[], None],
                 session_id: str) -> None:
        self._loop = asyncio.get_running_loop()
        self._timing, self._flush, self._renew, self._lost = timing, flush, renew, lost
        self._session_id = session_id
        now = self._loop.time()
        self._next_flush = now + timing.flush_seconds
        self._next_renewal = now + timing.renew_seconds
        self._closing = False
        self._round: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._arm()

    async def close(self) -> None:
        """No more rounds; wait for one under way (its write lands before the last)."""
        self._closing = True
        if self._timer is not None:
            self._timer.cancel()
        if self._round is not None:
            await asyncio.wait({self._round})

    def _arm(self) -> None:
        if not self._closing:
            due = min(self._next_flush, self._next_renewal)
            self._timer = self._loop.call_at(due, self._start_round, due)

    def _start_round(self, due: float) -> None:
        self._timer = None
        self._round = self._loop.create_task(self._keep(due))

    async def _keep(self, due: float) -> None:
        """The work that was due at ``due`` (timers may fire a hair early by the clock)."""
        try:
            if self._next_flush <= due:
                self._next_flush = self._loop.time() + self._timing.flush_seconds
                await self._flush()
            if self._next_renewal <= due:
                self._next_renewal = self._loop.time() + self._timing.renew_seconds
                if not await self._renew():
                    self._lost()
        except Exception:
            log.warning("session %s: keeping the turn failed", self._session_id,
                        exc_info=True)
        finally:
            self._arm()


class TurnRegistry:
    """This process's turns: their claims, the recovery of dead holders' turns, and the
    drain that refuses new turns and stops the rest."""

    def __init__(self, store: ConversationStore, holder: TurnHolder,
                 timing: TurnTiming) -> None:
        self.store = store
        self.holder = holder
        self.timing = timing
        self.accepting = True
        self._serving = False
        self._active: dict[tuple[str, str], ActiveTurn] = {}  # by session and turn id
        self._pending: set[asyncio.Future[Any]] = set()
        self._idle = asyncio.Event()
        self._idle.set()
        self._drain: asyncio.Task[None] | None = None
        self._sweeper: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return len(self._active)

    def active(self) -> list[ActiveTurn]:
        return list(self._active.values())

    async def claim(self, session_id: str) -> str | None:
        """A turn id holding the session (None while another turn does); refused with
        503 while draining."""
        self.refuse_if_draining()
        return await self.store.claim_turn(session_id, self._claimant(), self.timing.lease)

    async def open(self, session_id: str, text: str, persona_id: str, version: int,
                   history_limit: int, user_meta: dict[str, Any] | None = None
                   ) -> tuple[ActiveTurn, OpenedTurn] | None:
        """Claim the session and save the user's message and the reply's row, in one
        transaction (see ``ConversationStore.open_turn``); None while another turn holds
        it; refused with 503 while draining."""
        self.refuse_if_draining()
        opened = await self.store.open_turn(TurnOpening(
            session_id, self._claimant(), self.timing.lease, text, persona_id, version,
            history_limit, user_meta or {}))
        return None if opened is None else (self.track(session_id, opened.turn_id), opened)

    def track(self, session_id: str, turn_id: str) -> ActiveTurn:
        active = self._active[session_id, turn_id] = ActiveTurn(session_id, turn_id)
        self._idle.clear()
        return active

    async def renew(self, active: ActiveTurn) -> bool:
        return await self.store.renew_turn(active.session_id, active.turn_id,
                                           self.timing.lease)

    async def serve(self) -> None:
        """Recover what earlier processes left (at once for this node's predecessor),
        then sweep for turns whose holder is gone, every lease/3."""
        self._serving = True
        await self.recover()
        self._sweeper = asyncio.create_task(self._sweep(), name="turn-recovery")

    async def recover(self) -> Recovered:
        found = await self.store.recover_turns(self._claimant())
        if found.claims or found.replies:
            log.info("recovered %d turn claims and %d interrupted replies",
                     found.claims, found.replies)
        return found

    async def close(self) -> None:
        await self.drain(0)
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(self.timing.renew_seconds)
            try:
                await self.recover()
            except Exception:  # the database may be briefly away; try again next round
                log.warning("recovering abandoned turns failed", exc_info=True)

    def _claimant(self) -> TurnHolder:
        """Claims name this process's node only while it serves: only a server's restart
        can vouch that the process before it is gone."""
        return self.holder if self._serving else TurnHolder(self.holder.instance)

    def remove(self, active: ActiveTurn) -> None:
        self._active.pop((active.session_id, active.turn_id), None)
        if not self._active:
            self._idle.set()

    def refuse_if_draining(self) -> None:
        if not self.accepting:
            raise shutting_down()

    async def shielded(self, work: Coroutine[Any, Any, T]) -> T:
        """Run ``work`` to its end even if the caller is cancelled (a drain waits for it)."""
        task = asyncio.ensure_future(work)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
        return await asyncio.shield(task)

    async def drain(self, grace_seconds: float) -> None:
        """Refuse new turns; let running ones finish for ``grace_seconds``; then stop them
        and wait (bounded) for their saves. Calling it again waits for the same drain."""
        self.accepting = False
        if self._drain is None:
            self._drain = asyncio.create_task(self._drained(grace_seconds), name="drain")
        await asyncio.shield(self._drain)

    async def _drained(self, grace_seconds: float) -> None:
        if not await self._wait_idle(grace_seconds):
            log.warning("stopping %d turns still running after %.1f s", len(self),
                        grace_seconds)
            for active in self.active():
                active.stop(shutting_down())
            if not await self._wait_idle(STOP_BOUND_SECONDS):
                log.warning("%d turns did not save in time; the next start recovers them",
                            len(self))
        if self._pending:
            await asyncio.wait(set(self._pending), timeout=STOP_BOUND_SECONDS)

    async def _wait_idle(self, seconds: float) -> bool:
        try:
            async with asyncio.timeout(seconds):
                await self._idle.wait()
        except TimeoutError:
            return False
        return True


def shutting_down() -> ShuttingDown:
    return ShuttingDown("the server is shutting down and takes no new turns; "
                        "send again in a moment", {"retry_after": 5})


def lease_lost(session_id: str) -> Conflict:
    return Conflict(f"session '{session_id}': this turn lost its claim on the session "
                         "(it could not be renewed in time); the reply so far is saved")
