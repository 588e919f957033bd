"""``personae panel``: score content with a panel of personas, one card per persona x segment.

Commands act as the local admin through :class:`PanelService`, like the API does for
a user. With the default local queue (``PERSONAE_QUEUE=local``) the jobs of an
evaluation run inside the process that waits for it (``run``, ``rerun``, ``wait``);
with ``PERSONAE_QUEUE=arq`` they go to Redis and ``personae worker`` processes run
them, while these commands only follow the progress. State lives in the database,
so an interrupted evaluation is continued later with ``personae panel wait ID``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, NoReturn

import typer

from personae.auth.principal import Principal
from personae.cli import output, panel_output
from personae.cli.panel_runtime import (
    Work,
    call,
    finish,
    load_rubric,
    note,
    persona_ids,
    read_content,
    requeue,
)
from personae.cli.session import settings_for
from personae.panels.content import split_rule
from personae.panels.records import EvaluationRecord, PanelRecord, Progress
from personae.panels.service import EvaluationRequest
from personae.runtime import Runtime

app = typer.Typer(
    help="Score content with a panel of personas: every persona scores every segment.\n\n"
         "Evaluations: run, wait, show, list, rerun, cancel, export, delete. "
         "Saved panels (named persona sets with a rubric): create, saved, delete-panel.",
    no_args_is_help=True)

JSON_OPTION = typer.Option(False, "--json", help="Print JSON (the API's representation).")
NO_WAIT_OPTION = typer.Option(
    False, "--no-wait", help="Return once the jobs are queued; follow later with "
    "`personae panel wait ID` (with the local queue, that is also what runs them).")
ID_ARGUMENT = typer.Argument(..., metavar="ID", help="Evaluation id (see `personae panel list`).")


class ContentChoice(StrEnum):
    text = "text"
    srt = "srt"
    vtt = "vtt"
    json = "json"


class ExportFormat(StrEnum):
    csv = "csv"
    json = "json"


@dataclass
class _Watch:
    """The evaluation being followed, so Ctrl-C can name it."""

    evaluation_id: str | None = None


# -- evaluations -------------------------------------------------------------------------


@app.command()
def run(
    ctx: typer.Context,
    file: str = typer.Argument(..., metavar="FILE",
                               help="Plain text, .srt, .vtt or .json; '-' reads stdin."),
    panel: str | None = typer.Option(None, "--panel", help="A saved panel (name or id)."),
    personas: str | None = typer.Option(None, "--personas", metavar="ID,ID",
                                        help="Persona ids, e.g. genz-listener,advertiser."),
    content_format: ContentChoice | None = typer.Option(
        None, "--format", help="Default: from the file name, else detected."),
    title: str | None = typer.Option(None, "--title", help="Default: the file name."),
    sentences: int | None = typer.Option(None, "--sentences", min=1, max=50,
                                         help="Plain text: sentences per segment (3)."),
    target_chars: int | None = typer.Option(
        None, "--target-chars", min=50, max=20_000,
        help="Plain text: pack sentences into segments of about this many characters."),
    language: str = typer.Option("en", "--language", help="Sentence rules, e.g. hi."),
    rubric: Path | None = typer.Option(None, "--rubric", metavar="FILE",
                                       help="Rubric as JSON or YAML (default: the panel's)."),
    classify: bool | None = typer.Option(None, "--classify/--no-classify",
                                         help="Label each segment's topic and tone."),
    adherence: bool | None = typer.Option(None, "--adherence/--no-adherence",
                                          help="Also check each opinion is in character."),
    as_json: bool = JSON_OPTION,
    no_wait: bool = NO_WAIT_OPTION,
) -> None:
    """Evaluate FILE with a saved panel or a list of personas, and show the scores.

    Exit status 0 once the evaluation completes, even if some cells failed (they are
    counted; run them again with `personae panel rerun ID`), 130 on Ctrl-C (the
    evaluation is kept and continues with `personae panel wait ID`).
    """
    if bool(panel) == bool(personas):
        raise typer.BadParameter("give --panel NAME or --personas ID,ID (one of them)",
                                 param_hint="--panel / --personas")
    request = EvaluationRequest(
        content=read_content(file), filename=None if file == "-" else Path(file).name,
        content_format=content_format.value if content_format else None, title=title,
        panel=panel, personas=persona_ids(personas, "--personas") if personas else (),
        rubric=load_rubric(rubric), classify=classify, adherence=adherence,
        split=split_rule(sentences, target_chars) if sentences or target_chars else None,
        language=language)
    watch = _Watch()

    async def work(runtime: Runtime, principal: Principal) -> dict[str, Any]:
        evaluation = await runtime.panels.evaluate(principal, request)
        watch.evaluation_id = evaluation.id
        return await finish(runtime, principal, evaluation.id, wait=not no_wait)

    _follow(ctx, watch, work, as_json=as_json, waited=not no_wait, subject="rubric")


@app.command()
def wait(ctx: typer.Context, evaluation_id: str = ID_ARGUMENT,
         as_json: bool = JSON_OPTION) -> None:
    """Follow a running evaluation until it finishes, then show the scores.

    With the local queue its unfinished jobs run in this process: this is how an
    evaluation left by Ctrl-C or --no-wait is continued.
    """
    watch = _Watch(evaluation_id)

    async def work(runtime: Runtime, principal: Principal) -> dict[str, Any]:
        await requeue(runtime, principal, evaluation_id)
        return await finish(runtime, principal, evaluation_id, wait=True)

    _follow(ctx, watch, work, as_json=as_json, waited=True)


@app.command()
def rerun(
    ctx: typer.Context,
    evaluation_id: str = ID_ARGUMENT,
    include_cancelled: bool = typer.Option(False, "--include-cancelled",
                                           help="Also run the cells a cancel skipped."),
    as_json: bool = JSON_OPTION,
    no_wait: bool = NO_WAIT_OPTION,
) -> None:
    """Run the failed cells of a finished evaluation again, then show the scores."""
    watch = _Watch(evaluation_id)

    async def work(runtime: Runtime, principal: Principal) -> dict[str, Any]:
        progress = await runtime.panels.rerun(principal, evaluation_id,
                                              include_cancelled=include_cancelled)
        if progress.status != "running":
            note(f"Nothing to run again in {evaluation_id}: no failed cells"
                 f"{'' if include_cancelled else ' (cancelled ones need --include-cancelled)'}.")
        return await finish(runtime, principal, evaluation_id,
                            wait=not no_wait and progress.status == "running")

    _follow(ctx, watch, work, as_json=as_json, waited=not no_wait)


def _follow(ctx: typer.Context, watch: _Watch, work: Work[dict[str, Any]], *, as_json: bool,
            waited: bool, subject: str = "input") -> None:
    """Run ``work`` (which ends with the results), print them, and choose the exit status."""
    try:
        results = call(ctx, work, subject)
    except KeyboardInterrupt:
        _interrupted(ctx, watch)
    if as_json:
        output.emit_json(results)
    else:
        panel_output.print_results(results)
    if results["status"] == "running":
        _still_running(ctx, results["id"], waited)
    elif results["status"] == "cancelled" and waited:
        cancelled = results["progress"]["cells"]["cancelled"]
        output.error(f"evaluation {results['id']} was cancelled; {cancelled} cells were not "
                     f"run (run them: personae panel rerun {results['id']} --include-cancelled)")
        raise typer.Exit(1)
    elif as_json and results["progress"]["cells"]["failed"]:
        output.warn(f"{results['progress']['cells']['failed']} cells failed; run them again: "
                    f"personae panel rerun {results['id']}")


def _still_running(ctx: typer.Context, evaluation_id: str, waited: bool) -> None:
    if settings_for(ctx).queue == "arq":
        note(f"Evaluation {evaluation_id} is queued for `personae worker` processes; "
             f"follow it: personae panel wait {evaluation_id}")
    elif not waited:
        note(f"Evaluation {evaluation_id} is saved. With the local queue its jobs run only "
             f"inside a personae process: run them with `personae panel wait "
             f"{evaluation_id}` (or they resume when `personae serve` starts).")


def _interrupted(ctx: typer.Context, watch: _Watch) -> NoReturn:
    evaluation_id = watch.evaluation_id
    if evaluation_id is None:
        output.error("interrupted")
        raise typer.Exit(130)
    how = ("`personae worker` processes keep running it" if settings_for(ctx).queue == "arq"
           else "its jobs stopped with this process; nothing done is lost")
    output.warn(f"interrupted: evaluation {evaluation_id} is still running ({how}).")
    note(f"Continue: personae panel wait {evaluation_id}    "
         f"Stop: personae panel cancel {evaluation_id}")
    raise typer.Exit(130)


@app.command()
def show(ctx: typer.Context, evaluation_id: str = ID_ARGUMENT,
         as_json: bool = JSON_OPTION) -> None:
    """Show an evaluation's scores in any state (running ones show what is done so far)."""

    async def work(runtime: Runtime, principal: Principal) -> dict[str, Any]:
        return await runtime.panels.results(principal, evaluation_id)

    results = call(ctx, work)
    if as_json:
        output.emit_json(results)
        return
    panel_output.print_results(results)
    if results["status"] == "running":
        note(f"Still running; follow it: personae panel wait {evaluation_id}")


@app.command("list")
def list_evaluations(
    ctx: typer.Context,
    status: str | None = typer.Option(None, "--status", help="running, completed or cancelled."),
    limit: int = typer.Option(50, "--limit", min=1, max=1000),
    as_json: bool = JSON_OPTION,
) -> None:
    """List your evaluations, newest first."""

    async def work(runtime: Runtime,
                   principal: Principal) -> list[tuple[EvaluationRecord, Progress | None]]:
        found, _ = await runtime.panels.evaluations(principal, limit=limit, status=status)
        return [(e, await runtime.panels.progress(principal, e.id)) for e in found]

    found = call(ctx, work)
    if as_json:
        output.emit_json([{**e.public(), "progress": p.public() if p else None}
                          for e, p in found])
        return
    panel_output.print_evaluations(found)


@app.command()
def cancel(ctx: typer.Context, evaluation_id: str = ID_ARGUMENT) -> None:
    """Stop an evaluation: cells not started are cancelled; finished ones are kept."""

    async def work(runtime: Runtime, principal: Principal) -> tuple[str, Progress]:
        before = (await runtime.panels.evaluation(principal, evaluation_id)).status
        return before, await runtime.panels.cancel(principal, evaluation_id)

    before, progress = call(ctx, work)
    if before != "running":
        output.say(f"Evaluation {evaluation_id} is already {before}; nothing to cancel.")
        return
    cells = progress.cells
    output.say(f"Cancelled {evaluation_id}: {cells.get('done', 0)} scored, "
               f"{cells.get('failed', 0)} failed, {cells.get('cancelled', 0)} cancelled.",
               style="green")
    output.say(f"Run the rest later: personae panel rerun {evaluation_id} --include-cancelled")


@app.command()
def export(
    ctx: typer.Context,
    evaluation_id: str = ID_ARGUMENT,
    fmt: ExportFormat = typer.Option(ExportFormat.csv, "--format",
                                     help="csv: one row per cell; json: as `show --json`."),
    out: Path | None = typer.Option(None, "-o", "--output", metavar="FILE",
                                    help="Write here instead of stdout."),
) -> None:
    """Export an evaluation's results as CSV or JSON."""

    async def work(runtime: Runtime, principal: Principal) -> str:
        if fmt is ExportFormat.csv:
            return await runtime.panels.export_csv(principal, evaluation_id)
        results = await runtime.panels.results(principal, evaluation_id)
        return json.dumps(results, ensure_ascii=False, indent=2, default=str) + "\n"

    text = call(ctx, work)
    if out is None:
        output.emit_text(text)
        return
    out.write_text(text, encoding="utf-8", newline="")
    output.say(f"Wrote {out}.", style="green")


@app.command()
def delete(ctx: typer.Context, evaluation_id: str = ID_ARGUMENT,
           yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation.")
           ) -> None:
    """Delete an evaluation and all its scores for good (a running one is cancelled)."""
    if not yes:
        typer.confirm(f"Delete evaluation {evaluation_id} and its scores?", abort=True)

    async def work(runtime: Runtime, principal: Principal) -> None:
        await runtime.panels.delete(principal, evaluation_id)

    call(ctx, work)
    output.say(f"Deleted evaluation {evaluation_id}.", style="green")


# -- saved panels ------------------------------------------------------------------------


@app.command()
def create(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Panel name: letters, digits, space, _ . -"),
    personas: str = typer.Option(..., "--personas", metavar="ID,ID", help="Persona ids."),
    description: str = typer.Option("", "--description", help="What the panel is for."),
    rubric: Path | None = typer.Option(None, "--rubric", metavar="FILE",
                                       help="Rubric as JSON or YAML (default 1-5 scale)."),
    classify: bool = typer.Option(True, "--classify/--no-classify",
                                  help="Label each segment's topic and tone."),
    adherence: bool = typer.Option(False, "--adherence/--no-adherence",
                                   help="Also check each opinion is in character."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Save a panel (personas plus rubric) to use with `personae panel run --panel NAME`."""
    raw: dict[str, Any] = {"name": name, "description": description,
                           "personas": persona_ids(personas, "--personas"), "classify": classify,
                           "adherence": adherence}
    found = load_rubric(rubric)
    if found is not None:
        raw["rubric"] = found

    async def work(runtime: Runtime, principal: Principal) -> PanelRecord:
        return await runtime.panels.create_panel(principal, raw)

    record = call(ctx, work, "panel")
    if as_json:
        output.emit_json(record.public())
        return
    output.say(f"Saved panel '{record.spec.name}' (id {record.id}): "
               f"{', '.join(record.spec.personas)}.", style="green")
    output.say(f"Use it: personae panel run FILE --panel '{record.spec.name}'")


@app.command()
def saved(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
    """List your saved panels."""

    async def work(runtime: Runtime, principal: Principal) -> list[PanelRecord]:
        return await runtime.panels.panels(principal)

    found = call(ctx, work)
    if as_json:
        output.emit_json([p.public() for p in found])
        return
    panel_output.print_panels(found)


@app.command("delete-panel")
def delete_panel(ctx: typer.Context,
                 name: str = typer.Argument(..., metavar="NAME", help="Panel name or id.")
                 ) -> None:
    """Delete a saved panel (evaluations made with it are kept)."""

    async def work(runtime: Runtime, principal: Principal) -> None:
        await runtime.panels.delete_panel(principal, name)

    call(ctx, work)
    output.say(f"Deleted panel {name}.", style="green")
