"""``personae write``: writing personas from samples, and drafts checked per platform.

Commands act as the local admin through :class:`WritingService`, in process, like the
API does for a user. Progress goes to stderr; results to stdout (``--json``: the API's
representation).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import typer

from personae.auth.principal import Principal
from personae.cli import output
from personae.cli.panel_runtime import call, note
from personae.cli.session import read_input
from personae.errors import InvalidInput
from personae.personas.records import PersonaRecord
from personae.personas.writing_block import Onboarding
from personae.runtime import Runtime
from personae.writing import drafting, platforms
from personae.writing.building import WritingProgress, WritingRequest
from personae.writing.reports import ValidationReport
from personae.writing.samples import read_folder

app = typer.Typer(help="Writing personas: a person's own voice, per platform, measured.",
                  no_args_is_help=True)
persona_app = typer.Typer(help="Create, show and list writing personas.", no_args_is_help=True)
app.add_typer(persona_app, name="persona")

JSON_OPTION = typer.Option(False, "--json", help="Print JSON (the API's representation).")
PLATFORM_OPTION = typer.Option(..., "--platform", help="x, linkedin, instagram, ... "
                               "(see `personae write platforms`).")
ATTEMPTS_OPTION = typer.Option(3, "--attempts", min=1, max=5, help="Model attempts (1-5).")
MODEL_OPTION = typer.Option(None, "--model", help="provider/model (default: the persona's).")
FILE_ARGUMENT = typer.Argument(..., metavar="FILE", help="The draft; '-' reads stdin.")


def _progress(event: WritingProgress) -> None:
    note(event.message)


def _draft_text(path: str) -> str:
    data, name = read_input(path)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput(f"{name}: not UTF-8 text") from None


# -- personas -----------------------------------------------------------------------------

@persona_app.command("create")
def create(
    ctx: typer.Context,
    samples: Path = typer.Option(..., "--samples", metavar="DIR",
                                 help="A folder of *.txt / *.md files of your own writing."),
    name: str = typer.Option(..., "--name", help="Whose voice this is."),
    persona_id: str | None = typer.Option(None, "--id", help="Persona id (default: the name)."),
    audience: str = typer.Option("", "--audience"),
    goal: list[str] = typer.Option([], "--goal", help="Repeat for several."),
    topic: list[str] = typer.Option([], "--topic", help="Repeat for several."),
    banned: list[str] = typer.Option([], "--banned", metavar="WORD", help="Never use it."),
    model: str | None = MODEL_OPTION,
    attempts: int = ATTEMPTS_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Measure the samples, synthesise the voice, store version 1."""
    request = WritingRequest(
        name=name, samples=read_folder(samples), id=persona_id, model=model,
        max_attempts=attempts, onboarding=Onboarding(name=name, audience=audience, goals=goal,
                                                     topics=topic, banned_words=banned))

    async def work(runtime: Runtime, principal: Principal) -> PersonaRecord:
        return await runtime.writing.create(principal, request, _progress)

    _show_persona(call(ctx, work, "samples"), as_json)


@persona_app.command("show")
def show(ctx: typer.Context, persona_id: str = typer.Argument(..., metavar="ID"),
         as_json: bool = JSON_OPTION) -> None:
    """A writing persona: its voice, tones, measured habits and confidence."""
    async def work(runtime: Runtime, principal: Principal) -> PersonaRecord:
        return await runtime.writing.get(principal, persona_id)

    _show_persona(call(ctx, work), as_json)


@persona_app.command("list")
def list_personas(ctx: typer.Context,
                  user: str = typer.Option("me", "--user", help="me, or a user name or id."),
                  as_json: bool = JSON_OPTION) -> None:
    """Writing personas of a user."""
    async def work(runtime: Runtime, principal: Principal) -> list[PersonaRecord]:
        return await runtime.writing.list_for(principal, user)

    found = call(ctx, work)
    if as_json:
        output.emit_json({"data": [r.public() for r in found], "count": len(found)})
        return
    output.show(output.table(("id", "version", "language", "words", "synthesis"), [
        (r.id, r.version, r.definition.language,
         r.definition.writing.fingerprint.word_count if r.definition.writing else "",
         r.definition.writing.synthesis.status if r.definition.writing else "")
        for r in found]))


@app.command("platforms")
def list_platforms(as_json: bool = JSON_OPTION) -> None:
    """The platforms and their hard limits."""
    specs = platforms.all_platforms()
    if as_json:
        output.emit_json([spec.model_dump(mode="json") for spec in specs])
        return
    output.show(output.table(("id", "name", "limits"), [
        (spec.id, spec.name, ", ".join(f"{limit.field} {limit.max:,} {limit.counting}"
                                       for limit in spec.limits)) for spec in specs],
        wrap=("limits",)))


# -- drafts -------------------------------------------------------------------------------

@app.command("validate")
def validate(ctx: typer.Context, persona_id: str = typer.Argument(..., metavar="PERSONA"),
             file: str = FILE_ARGUMENT, platform: str = PLATFORM_OPTION,
             title: str | None = typer.Option(None, "--title"),
             as_json: bool = JSON_OPTION) -> None:
    """Limit meters (271/280), hard violations and the style report of a draft."""
    text = _draft_text(file)

    async def work(runtime: Runtime, principal: Principal) -> ValidationReport:
        return await runtime.writing.validate(principal, platform, persona_id, text, title)

    report = call(ctx, work)
    if as_json:
        output.emit_json(report.model_dump(mode="json"))
    else:
        _show_report(report)
    if not report.meets_limits:
        raise typer.Exit(1)


@app.command("optimize")
def optimize(ctx: typer.Context, persona_id: str = typer.Argument(..., metavar="PERSONA"),
             file: str = FILE_ARGUMENT, platform: str = PLATFORM_OPTION,
             attempts: int = ATTEMPTS_OPTION, model: str | None = MODEL_OPTION,
             as_json: bool = JSON_OPTION) -> None:
    """Rewrite a draft in the persona's voice within the platform's limits."""
    text = _draft_text(file)

    async def work(runtime: Runtime, principal: Principal) -> drafting.WritingDone:
        return await _follow(await runtime.writing.optimise(
            principal, platform, persona_id, text, model=model, max_attempts=attempts))

    _show_done(call(ctx, work), as_json)


@app.command("draft")
def draft(ctx: typer.Context, persona_id: str = typer.Argument(..., metavar="PERSONA"),
          platform: str = PLATFORM_OPTION, topic: str = typer.Option(..., "--topic"),
          notes: str = typer.Option("", "--notes"), attempts: int = ATTEMPTS_OPTION,
          model: str | None = MODEL_OPTION, as_json: bool = JSON_OPTION) -> None:
    """Write a new post on a topic in the persona's voice."""
    async def work(runtime: Runtime, principal: Principal) -> drafting.WritingDone:
        return await _follow(await runtime.writing.draft(
            principal, platform, persona_id, topic, notes=notes, model=model,
            max_attempts=attempts))

    _show_done(call(ctx, work), as_json)


# -- output -------------------------------------------------------------------------------

async def _follow(events: AsyncIterator[drafting.WritingEvent]) -> drafting.WritingDone:
    """The loop's result, with each attempt's score on stderr as it comes."""
    done: drafting.WritingDone | None = None
    async for event in events:
        if isinstance(event, drafting.AttemptStarted):
            note(f"attempt {event.number}")
        elif isinstance(event, drafting.AttemptScored):
            note(f"attempt {event.number}: {_meters(event.report)}"
                 + (f", style {event.report.style.score:.0f}/100" if event.report.style else ""))
        elif isinstance(event, drafting.WritingDone):
            done = event
    if done is None:
        raise InvalidInput("the writing loop ended without a result")
    return done


def _meters(report: ValidationReport) -> str:
    return ", ".join(f"{m.name} {m.shown}" for m in report.meters)


def _show_report(report: ValidationReport) -> None:
    verdict = "within limits" if report.meets_limits else "breaks a limit"
    output.say(f"{report.platform}: {verdict}; {_meters(report)}", style="bold")
    for violation in report.violations:
        output.say(f"  x {violation.message}", style="red")
    for warning in report.warnings:
        output.say(f"  ! {warning}", style="yellow")
    style = report.style
    if style is None:
        return
    output.say(f"Style: {style.score:.0f}/100. {style.explanation}")
    output.say(f"  distance: {style.distance.explanation}")
    for deviation in [style.sentence_length, *style.punctuation]:
        if deviation.notable:
            output.say(f"  {deviation.name}: {deviation.explanation}")
    if style.go_to_used:
        output.say(f"  their words used: {', '.join(style.go_to_used)}")
    if style.avoided_used:
        output.say(f"  words they never use: {', '.join(style.avoided_used)}")


def _show_done(done: drafting.WritingDone, as_json: bool) -> None:
    if as_json:
        output.emit_json(_done_data(done))
        return
    output.emit_text(done.text)
    output.err_console.print(f"best: attempt {done.best}; {done.reason}", soft_wrap=True)
    _show_report(done.report)


def _done_data(done: drafting.WritingDone) -> dict[str, Any]:
    return {"best": done.best, "text": done.text, "meets_limits": done.meets_limits,
            "reason": done.reason, "report": done.report.model_dump(mode="json"),
            "attempts": [{"number": a.number, "text": a.text,
                          "report": a.report.model_dump(mode="json")} for a in done.attempts]}


def _show_persona(record: PersonaRecord, as_json: bool) -> None:
    if as_json:
        output.emit_json(record.public())
        return
    block = record.definition.writing
    output.say(f"{record.id} (version {record.version})", style="bold")
    output.say(record.definition.description)
    if block is None:
        return
    fp, synthesis = block.fingerprint, block.synthesis
    output.say(f"Measured: {fp.sample_count} samples, {fp.word_count:,} words, "
               f"{fp.language}; confidence {fp.confidence.level}: {fp.confidence.note}")
    output.say(f"Synthesis: {synthesis.status} after {synthesis.attempts} attempt(s)")
    for problem in synthesis.errors:
        output.say(f"  {problem}", style="yellow")
    if synthesis.tones:
        output.say(f"Tones: {json.dumps(synthesis.tones.model_dump(exclude={'evidence'}))}")
