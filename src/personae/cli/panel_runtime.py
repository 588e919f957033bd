"""Plumbing for ``personae panel``: calling the service, reading inputs, waiting.

Waiting shows a progress bar refreshed by polling the database, so it works the same
whether the jobs run in this process (the local queue: they are tasks on this event
loop, which is why the wait is an ``asyncio.sleep``, never a blocking one) or on arq
workers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.text import Text

from personae.auth.principal import Principal
from personae.cli import output, panel_output
from personae.cli.session import as_admin, read_input
from personae.errors import InvalidInput, PersonaeError, ValidationFailed
from personae.panels.queue import LocalQueue
from personae.panels.records import Progress
from personae.personas.files import parse_document
from personae.runtime import Runtime

POLL_SECONDS = 0.25
T = TypeVar("T")
Work = Callable[[Runtime, Principal], Awaitable[T]]


def call(ctx: typer.Context, work: Work[T], subject: str = "input") -> T:
    """:func:`as_admin`, with queue and schema errors reported like other core errors."""
    try:
        return as_admin(ctx, work)
    except ValidationFailed as exc:  # a panel or rubric: not the persona wording output uses
        output.error(f"invalid {subject}")
        for issue in exc.issues:
            output.detail(str(issue))
        raise typer.Exit(1) from None
    except ModuleNotFoundError as exc:
        if exc.name != "arq":
            raise
        raise PersonaeError("PERSONAE_QUEUE=arq needs the redis extra: "
                            "pip install 'personae[redis]'") from None


def note(message: str) -> None:
    """Progress chatter on stderr, so stdout stays clean for --json and pipes."""
    output.err_console.print(Text(message, style="dim"), soft_wrap=True)


def persona_ids(value: str, option: str) -> list[str]:
    """``a, b,c`` as ``["a", "b", "c"]``; none at all is a usage error."""
    found = [part.strip() for part in value.split(",") if part.strip()]
    if not found:
        raise typer.BadParameter("give at least one persona id", param_hint=option)
    return found


def load_rubric(path: Path | None) -> dict[str, Any] | None:
    """A rubric file, JSON or YAML (by suffix); validated by the service."""
    if path is None:
        return None
    content, name = read_input(str(path))
    try:
        found = parse_document(content.decode("utf-8-sig"), name)
    except UnicodeDecodeError:
        raise InvalidInput(f"{name}: not UTF-8 text") from None
    if not isinstance(found, dict):
        raise InvalidInput(f"{name}: a rubric is a mapping (scale_min, scale_max, anchors, ...)")
    return found


def read_content(file: str) -> str:
    """The text of FILE (``-``: stdin), which must be UTF-8."""
    content, name = read_input(file)
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput(f"{name}: not UTF-8 text") from None


async def pause() -> None:
    """One polling interval (tests replace it to simulate Ctrl-C)."""
    await asyncio.sleep(POLL_SECONDS)


def _local(runtime: Runtime) -> LocalQueue | None:
    queue = runtime.panels.queue
    return queue if isinstance(queue, LocalQueue) else None


async def requeue(runtime: Runtime, principal: Principal, evaluation_id: str) -> int:
    """Queue a running evaluation's unfinished jobs again: with the local queue they run
    in this process; with arq, jobs still in Redis keep their ids and are not doubled.
    A cell left ``running`` by a process that stopped is run again; it holds one result
    either way."""
    return await runtime.panels.requeue(principal, evaluation_id)


async def finish(runtime: Runtime, principal: Principal, evaluation_id: str, *,
                 wait: bool) -> dict[str, Any]:
    """The evaluation's results; first, with ``wait``, follow it until it is not running."""
    if wait:
        await follow(runtime, principal, evaluation_id)
    return await runtime.panels.results(principal, evaluation_id)


def _start_note(runtime: Runtime, evaluation_id: str, progress: Progress) -> None:
    where = ("in this process" if _local(runtime) is not None else
             f"on `personae worker` processes (queue {runtime.settings.queue_name})")
    note(f"Evaluation {evaluation_id}: {progress.total - progress.finished} of "
         f"{progress.total} cells to score, {where}. Ctrl-C stops waiting.")


async def follow(runtime: Runtime, principal: Principal, evaluation_id: str) -> Progress:
    """Poll the evaluation's progress, showing a bar, until its status is not running."""
    progress = await runtime.panels.progress(principal, evaluation_id)
    if progress.status != "running":
        return progress
    _start_note(runtime, evaluation_id, progress)
    with panel_output.progress_bar(evaluation_id, progress.total) as update:
        while progress.status == "running":
            update(progress)
            await pause()
            progress = await runtime.panels.progress(principal, evaluation_id)
            queue = _local(runtime)
            if progress.status == "running" and queue is not None and not queue.busy:
                progress = await _stalled(runtime, principal, evaluation_id)
        update(progress)
    return progress


async def _stalled(runtime: Runtime, principal: Principal, evaluation_id: str) -> Progress:
    """No local job is left: the evaluation is done, or work was lost (a job died)."""
    await runtime.panels.settle(principal, evaluation_id)
    progress = await runtime.panels.progress(principal, evaluation_id)
    if progress.status == "running":
        open_cells = progress.total - progress.finished
        open_segments = progress.segments.get("pending", 0)
        unfinished = f"{open_cells} cells" + (
            f" and {open_segments} segment classifications" if open_segments else "")
        raise PersonaeError(
            f"evaluation {evaluation_id} stopped with {unfinished} unfinished and no job "
            f"left to run them; try again with `personae panel wait {evaluation_id}`")
    return progress
