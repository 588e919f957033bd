"""``personae write``: writing personas from samples, and drafts checked per platform.

Commands act as the local admin through :class:`WritingService`, in process, like the
API does for a user. Progress goes to stderr; results to stdout (``--json``: the API's
representation).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar

import typer

from personae.auth.principal import Principal
from personae.cli import output
from personae.cli.panel_runtime import call, note
from personae.cli.session import read_input
from personae.errors import InvalidInput, PersonaeError
from personae.personas.records import PersonaRecord
from personae.personas.writing_block import Fingerprint, Onboarding, Synthesis
from personae.runtime import Runtime
from personae.writing import drafting, platforms
from personae.writing.building import WritingProgress, WritingRequest
from personae.writing.reports import Meter, StyleReport, ValidationReport
from personae.writing.samples import read_folder
from personae.writing.style_report import HABITS

app = typer.Typer(help="Writing personas: a person's own voice, per platform, measured.",
                  no_args_is_help=True)
persona_app = typer.Typer(help="Create, show and list writing personas.", no_args_is_help=True)
app.add_typer(persona_app, name="persona")

JSON_OPTION = typer.Option(False, "--json", help="Print JSON (the API's representation).")
PLATFORM_OPTION = typer.Option(..., "--platform", metavar="PLATFORM",
                               help="x, linkedin, instagram, ... (see `personae write "
                               "platforms`).")
ATTEMPTS_OPTION = typer.Option(3, "--attempts", min=1, max=5, metavar="N",
                               help="Model attempts (1-5; the API's max_attempts).")
MODEL_OPTION = typer.Option(None, "--model", metavar="PROVIDER/MODEL",
                            help="The model to write with (default: the persona's).")
CREATE_MODEL_OPTION = typer.Option(None, "--model", metavar="PROVIDER/MODEL",
                                   help="The model for the synthesis (default: the default "
                                   "provider's).")
PERSONA_ARGUMENT = typer.Argument(..., metavar="PERSONA", help="The writing persona's id.")
FILE_ARGUMENT = typer.Argument(..., metavar="FILE", help="The draft; '-' reads stdin.")
MAX_HABITS_SHOWN = 6
T = TypeVar("T")
USAGE_ERROR = 2  # bad input, or the work could not run (as `personae test` does)


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
    name: str = typer.Option(..., "--name", metavar="NAME", help="Whose voice this is."),
    persona_id: str | None = typer.Option(None, "--id", metavar="ID",
                                          help="Persona id (default: the name)."),
    audience: str = typer.Option("", "--audience", metavar="TEXT", help="Who reads them."),
    goal: list[str] = typer.Option([], "--goal", metavar="TEXT", help="Repeat for several."),
    topic: list[str] = typer.Option([], "--topic", metavar="TEXT",
                                    help="Repeat for several."),
    banned: list[str] = typer.Option([], "--banned", metavar="WORD", help="Never use it."),
    model: str | None = CREATE_MODEL_OPTION,
    attempts: int = ATTEMPTS_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Measure the samples, synthesise the voice, store version 1 (exit status 2: bad
    input, or the work could not run)."""
    def run() -> PersonaRecord:
        request = WritingRequest(
            name=name, samples=read_folder(samples), id=persona_id, model=model,
            max_attempts=attempts, onboarding=Onboarding(name=name, audience=audience,
                                                         goals=goal, topics=topic,
                                                         banned_words=banned))

        async def work(runtime: Runtime, principal: Principal) -> PersonaRecord:
            return await runtime.writing.create(principal, request, _progress)

        return call(ctx, work, "samples")

    _show_persona(_checked(run), as_json)


@persona_app.command("regenerate")
def regenerate(ctx: typer.Context, persona_id: str = PERSONA_ARGUMENT,
               model: str | None = CREATE_MODEL_OPTION, attempts: int = ATTEMPTS_OPTION,
               as_json: bool = JSON_OPTION) -> None:
    """Re-synthesise the voice from the stored samples: a new version, or "unchanged"."""
    async def work(runtime: Runtime, principal: Principal) -> PersonaRecord:
        return await runtime.writing.regenerate(principal, persona_id, model=model,
                                                max_attempts=attempts, progress=_progress)

    _show_persona(_checked(lambda: call(ctx, work)), as_json)


@persona_app.command("show")
def show(ctx: typer.Context, persona_id: str = PERSONA_ARGUMENT,
         as_json: bool = JSON_OPTION) -> None:
    """A writing persona: its voice, tones, measured habits and confidence."""
    async def work(runtime: Runtime, principal: Principal) -> PersonaRecord:
        return await runtime.writing.get(principal, persona_id)

    _show_persona(call(ctx, work), as_json)


@persona_app.command("list")
def list_personas(ctx: typer.Context,
                  user: str = typer.Option("me", "--user", metavar="USER",
                                           help="me, or a user name or id."),
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
    """The platforms: hard limits, hashtags, the "see more" fold and how links count."""
    specs = platforms.all_platforms()
    if as_json:
        output.emit_json([spec.model_dump(mode="json") for spec in specs])
        return
    output.show(output.table(("id", "name", "limits", "hashtags", "see more", "links"), [
        (spec.id, spec.name, ", ".join(f"{limit.field} {limit.max:,} {limit.counting}"
                                       for limit in spec.limits),
         _hashtag_rule(spec), _fold(spec), _links(spec)) for spec in specs],
        wrap=("limits",)))


def _hashtag_rule(spec: platforms.PlatformSpec) -> str:
    if spec.hashtags.max is not None:
        return f"at most {spec.hashtags.max}"
    if spec.hashtags.recommended is not None:
        return f"{spec.hashtags.recommended} recommended"
    return "no cap"


def _fold(spec: platforms.PlatformSpec) -> str:
    fold = spec.text_limit.shown_before_more
    return f"after {fold:,}" if fold is not None else "-"


def _links(spec: platforms.PlatformSpec) -> str:
    length = spec.text_limit.url_length or spec.links.counted_as
    return f"{length} each" if length is not None else "as written"


# -- drafts -------------------------------------------------------------------------------

@app.command("validate")
def validate(ctx: typer.Context, persona_id: str = PERSONA_ARGUMENT,
             file: str = FILE_ARGUMENT, platform: str = PLATFORM_OPTION,
             title: str | None = typer.Option(None, "--title", metavar="TITLE",
                                              help="A title to check too (YouTube)."),
             as_json: bool = JSON_OPTION) -> None:
    """Limit meters (271/280), hard violations and the style report of a draft.

    Exit status: 0 within the platform's hard limits, 1 a hard limit broken, 2 an
    error (bad input, unknown persona or platform)."""
    text = _checked(lambda: _draft_text(file))

    async def work(runtime: Runtime, principal: Principal) -> ValidationReport:
        return await runtime.writing.validate(principal, platform, persona_id, text, title)

    report = _checked(lambda: call(ctx, work, "draft"))
    if as_json:
        output.emit_json(report.model_dump(mode="json"))
    else:
        _show_report(report)
    if not report.meets_limits:
        raise typer.Exit(1)


@app.command("optimize")
def optimize(ctx: typer.Context, persona_id: str = PERSONA_ARGUMENT,
             file: str = FILE_ARGUMENT, platform: str = PLATFORM_OPTION,
             attempts: int = ATTEMPTS_OPTION, model: str | None = MODEL_OPTION,
             as_json: bool = JSON_OPTION) -> None:
    """Rewrite a draft in the persona's voice within the platform's limits.

    Exit status: 0 the result is within the hard limits, 1 it still breaks one, 2 an
    error."""
    text = _checked(lambda: _draft_text(file))

    async def work(runtime: Runtime, principal: Principal) -> drafting.WritingDone:
        return await _follow(await runtime.writing.optimise(
            principal, platform, persona_id, text, model=model, max_attempts=attempts))

    _show_done(_checked(lambda: call(ctx, work, "draft")), as_json)


@app.command("draft")
def draft(ctx: typer.Context, persona_id: str = PERSONA_ARGUMENT,
          platform: str = PLATFORM_OPTION,
          topic: str = typer.Option(..., "--topic", metavar="TEXT", help="What to write about."),
          notes: str = typer.Option("", "--notes", metavar="TEXT",
                                    help="Facts the post may use."),
          attempts: int = ATTEMPTS_OPTION,
          model: str | None = MODEL_OPTION, as_json: bool = JSON_OPTION) -> None:
    """Write a new post on a topic in the persona's voice.

    Exit status: 0 the post is within the hard limits, 1 it still breaks one, 2 an
    error."""
    async def work(runtime: Runtime, principal: Principal) -> drafting.WritingDone:
        return await _follow(await runtime.writing.draft(
            principal, platform, persona_id, topic, notes=notes, model=model,
            max_attempts=attempts))

    _show_done(_checked(lambda: call(ctx, work, "request")), as_json)


def _checked(run: Callable[[], T]) -> T:
    """``run``, with an error reported and the command ended with status 2 (1 is kept
    for a draft that breaks a hard limit)."""
    try:
        return run()
    except typer.Exit as exc:
        if exc.exit_code == 0:
            raise
        raise typer.Exit(USAGE_ERROR) from None
    except PersonaeError as exc:
        output.report_error(exc)
        raise typer.Exit(USAGE_ERROR) from None


# -- output -------------------------------------------------------------------------------

async def _follow(events: AsyncIterator[drafting.WritingEvent]) -> drafting.WritingDone:
    """The loop's result, with each attempt's score on stderr as it comes."""
    done: drafting.WritingDone | None = None
    async for event in events:
        if isinstance(event, drafting.AttemptStarted):
            note(f"attempt {event.number}")
        elif isinstance(event, drafting.AttemptScored):
            same = (f", the same text as attempt {event.same_as}"
                    if event.same_as is not None else "")
            note(f"attempt {event.number}: {_meters(event.report)}"
                 + (f", style {_score(event.report.style)}" if event.report.style else "")
                 + same)
        elif isinstance(event, drafting.WritingDone):
            done = event
    if done is None:
        raise InvalidInput("the writing loop ended without a result")
    return done


def _score(style: StyleReport) -> str:
    return "not scored" if style.score is None else f"{style.score:.0f}/100"


def meter_text(meter: Meter) -> str:
    """A hard limit as ``3,500/3,000``; a soft guide as a recommendation."""
    if meter.name == "see_more":
        return f"see more after {meter.limit:,} (text {meter.used:,})"
    if not meter.hard:
        return f"{meter.name} {meter.used:,} ({meter.limit:,} recommended)"
    return f"{meter.name} {meter.used:,}/{meter.limit:,}"


def _meters(report: ValidationReport) -> str:
    return ", ".join(meter_text(m) for m in report.meters)


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
    output.say(f"Style: {_score(style)}. {style.explanation}")
    if style.score is None:
        return
    output.say(f"  distance: {style.distance.explanation}")
    for deviation in [style.sentence_length, *style.punctuation]:
        if deviation.notable:
            output.say(f"  {deviation.name}: {deviation.explanation}")
    if style.go_to_used:
        output.say(f"  their words used: {', '.join(style.go_to_used)}")
    if style.avoided_used:
        output.say(f"  words they never use: {', '.join(style.avoided_used)}")


def _show_done(done: drafting.WritingDone, as_json: bool) -> None:
    """The result; exit status 1 when it still breaks a hard limit."""
    if as_json:
        output.emit_json(_done_data(done))
    else:
        output.emit_text(done.text)
        output.err_console.print(f"best: attempt {done.best}; {done.reason}", soft_wrap=True)
        _show_report(done.report)
    if not done.meets_limits:
        raise typer.Exit(1)


def _done_data(done: drafting.WritingDone) -> dict[str, Any]:
    return {"best": done.best, "text": done.text, "meets_limits": done.meets_limits,
            "reason": done.reason, "report": done.report.model_dump(mode="json"),
            "attempts": [{"number": a.number, "text": a.text, "same_as": a.same_as,
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
    _show_habits(block.fingerprint)
    _show_synthesis(block.synthesis)


def _show_habits(fp: Fingerprint) -> None:
    """The measured habits, one readable line each."""
    s = fp.sentences
    output.say(f"Measured: {fp.sample_count} samples, {fp.word_count:,} words, "
               f"{fp.language}", style="bold")
    output.say(f"  confidence: {fp.confidence.level}: {fp.confidence.note}")
    output.say(f"  sentences: median {s.median_words:.0f} words (most {s.p10_words:.0f}-"
               f"{s.p90_words:.0f}); questions {s.question:.0%}, exclamations "
               f"{s.exclamation:.0%}")
    lines = [("go-to words", ", ".join(m.text for m in fp.go_to_words[:10])),
             ("go-to phrases", ", ".join(m.text for m in fp.go_to_phrases[:8])),
             ("never uses", ", ".join(fp.avoided_words[:12])),
             ("punctuation", ", ".join(f"{HABITS.get(name, name)} {rate:.1f}"
                                       for name, rate in _notable_punctuation(fp))
              + (" per 1,000 words" if _notable_punctuation(fp) else "")),
             ("per post", f"hashtags {fp.hashtags_per_sample:.1f}, emoji "
                          f"{fp.emoji_per_sample:.1f}"),
             ("readability", ", ".join(f"{name.replace('_', ' ')} {value:.1f}"
                                       for name, value in fp.readability.items()))]
    for label, text in lines:
        if text:
            output.say(f"  {label}: {text}")


def _notable_punctuation(fp: Fingerprint) -> list[tuple[str, float]]:
    """The person's habits by rate, most frequent first (those they have at all)."""
    used = [(name, rate) for name, rate in fp.punctuation.items() if rate > 0]
    return sorted(used, key=lambda item: -item[1])[:MAX_HABITS_SHOWN]


def _show_synthesis(synthesis: Synthesis) -> None:
    output.say(f"Synthesis: {synthesis.status} after {synthesis.attempts} attempt(s)",
               style="bold")
    for problem in synthesis.errors:
        output.say(f"  {problem}", style="yellow")
    if synthesis.identity is not None:
        output.say(f"  identity: {synthesis.identity.text}")
        _show_evidence(synthesis.identity.evidence)
    if synthesis.tones is not None:
        tones = synthesis.tones
        output.say(f"  tones: {tones.default} by default; also "
                   f"{', '.join(tones.permitted) or 'no other'}; forbidden: "
                   f"{', '.join(tones.forbidden) or 'none named'}")
        _show_evidence(tones.evidence)
    for claim in synthesis.constraints:
        output.say(f"  constraint: {claim.text}")
        _show_evidence(claim.evidence)


def _show_evidence(quotes: list[str]) -> None:
    for quote in quotes:
        output.say(f'      "{quote}"', style="dim")
