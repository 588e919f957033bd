"""Rich rendering for ``personae panel``: score tables, summaries, lists, progress bars.

Everything here reads the same dictionaries the API and ``--json`` return
(``PanelService.results``), so what a person sees is what a script gets.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich import progress as rich_progress

from personae.cli import output
from personae.panels.records import EvaluationRecord, PanelRecord, Progress

EXCERPT_CHARS = 60
FULL_SCALE_SPAN = 10  # scales up to this wide list every value, even unused ones
CARD_LABELS = {"failed": "failed", "cancelled": "cancelled", "pending": "…", "running": "…"}
Update = Callable[[Progress], None]


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[:limit - 1].rstrip() + "…"


def clock(ms: int) -> str:
    """Milliseconds as ``m:ss.s`` (``h:mm:ss.s`` from an hour on)."""
    minutes, seconds = divmod(ms / 1000, 60)
    hours, minutes = divmod(int(minutes), 60)
    if hours:
        return f"{hours}:{minutes:02d}:{seconds:04.1f}"
    return f"{minutes}:{seconds:04.1f}"


def time_range(segment: dict[str, Any]) -> str:
    start, end = segment.get("start_ms"), segment.get("end_ms")
    if start is None and end is None:
        return ""
    return f"{clock(start) if start is not None else '?'}–{clock(end) if end is not None else '?'}"


def label(segment: dict[str, Any]) -> str:
    """Topic / tone, or why the segment has none."""
    found = segment.get("classification") or {}
    if found.get("status") == "done":
        return f"{found.get('topic') or '?'} / {found.get('tone') or '?'}"
    return {"failed": "(not classified)", "pending": "…"}.get(found.get("status") or "", "")


def card_text(card: dict[str, Any]) -> str:
    if card["status"] == "done" and card.get("score") is not None:
        return str(card["score"])
    status = str(card["status"])
    return CARD_LABELS.get(status, status)


def segment_rows(results: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Columns and rows of the score table: one row per segment, one column per persona."""
    segments = results["segments"]
    persona_ids = [p["id"] for p in results["personas"]]
    timed = any(s.get("start_ms") is not None or s.get("end_ms") is not None for s in segments)
    columns = ["#", *(["time"] if timed else []),
               *(["topic / tone"] if results["classify"] else []), "text", *persona_ids]
    rows = []
    for segment in segments:
        cards = {c["persona_id"]: card_text(c) for c in segment["cards"]}
        rows.append([str(segment["index"]), *([time_range(segment)] if timed else []),
                     *([label(segment)] if results["classify"] else []),
                     excerpt(segment["text"]), *(cards.get(p, "") for p in persona_ids)])
    return columns, rows


def distribution(counts: dict[str, int], rubric: dict[str, Any]) -> str:
    """``score:count`` pairs; every value of a small scale, the used ones of a wide one."""
    low, high = rubric.get("scale_min", 1), rubric.get("scale_max", 5)
    values = (range(low, high + 1) if high - low <= FULL_SCALE_SPAN
              else sorted(int(v) for v in counts))
    return " ".join(f"{v}:{counts.get(str(v), 0)}" for v in values)


def summary_rows(results: dict[str, Any]) -> list[list[Any]]:
    per_persona = results["aggregates"]["personas"]
    rows = []
    for persona in results["personas"]:
        found = per_persona.get(persona["id"], {})
        mean = found.get("mean")
        rows.append([persona["id"], found.get("name", persona["name"]),
                     f"v{persona['version']}", "-" if mean is None else f"{mean:.2f}",
                     found.get("scored", 0),
                     distribution(found.get("distribution", {}), results["rubric"]),
                     found.get("failed", 0), found.get("pending", 0)])
    return rows


def headline(results: dict[str, Any]) -> str:
    progress = results.get("progress") or {}
    cells = progress.get("cells", {})
    return (f"Evaluation {results['id']} · {results['title']} · {results['status']} · "
            f"{progress.get('finished', 0)}/{progress.get('total', 0)} cells finished "
            f"({cells.get('done', 0)} scored, {cells.get('failed', 0)} failed, "
            f"{cells.get('cancelled', 0)} cancelled)")


def failures(results: dict[str, Any], limit: int = 3) -> list[str]:
    """The distinct reasons cells failed, most common first."""
    counts: dict[str, int] = {}
    for segment in results["segments"]:
        for card in segment["cards"]:
            if card["status"] == "failed":
                reason = card.get("error") or "no reason recorded"
                counts[reason] = counts.get(reason, 0) + 1
    ranked = sorted(counts.items(), key=lambda kv: -kv[1])
    return [f"{n}× {excerpt(reason, 160)}" for reason, n in ranked[:limit]]


def print_results(results: dict[str, Any]) -> None:
    """The score table, the per-persona summary, and what failed."""
    output.say(headline(results), style="bold")
    columns, rows = segment_rows(results)
    output.show(output.table(columns, rows, wrap=("text", "topic / tone")))
    output.say("")
    output.show(output.table(("persona", "name", "version", "mean", "scored", "distribution",
                              "failed", "pending"), summary_rows(results),
                             wrap=("name",)))
    failed = (results.get("progress") or {}).get("cells", {}).get("failed", 0)
    if failed:
        output.say(f"\n{failed} cell{'s' if failed != 1 else ''} failed:", style="yellow")
        for line in failures(results):
            output.say(f"  {line}", style="yellow")
        output.say(f"Run them again: personae panel rerun {results['id']}")


def print_evaluations(found: list[tuple[EvaluationRecord, Progress | None]]) -> None:
    if not found:
        output.say("No evaluations yet. Start one: personae panel run FILE --personas a,b")
        return
    rows = [(e.id, e.title, e.status,
             f"{p.finished}/{p.total}" if p else "-", output.when(e.created_at))
            for e, p in found]
    output.show(output.table(("id", "title", "status", "finished", "created"), rows,
                             wrap=("title",)))


def print_panels(found: list[PanelRecord]) -> None:
    if not found:
        output.say("No saved panels. Save one: personae panel create NAME --personas a,b")
        return
    rows = [(p.spec.name, p.id, ", ".join(p.spec.personas),
             "yes" if p.spec.classify else "no", "yes" if p.spec.adherence else "no",
             p.spec.description) for p in found]
    output.show(output.table(("name", "id", "personas", "classify", "adherence",
                              "description"), rows, wrap=("personas", "description")))


@contextmanager
def progress_bar(evaluation_id: str, total: int) -> Iterator[Update]:
    """A bar of finished cells on stderr while the body runs; silent when not a terminal."""
    console = output.err_console
    if not console.is_terminal:
        yield lambda progress: None
        return
    columns = (rich_progress.TextColumn("{task.description}"), rich_progress.BarColumn(),
               rich_progress.MofNCompleteColumn(),
               rich_progress.TextColumn("{task.fields[failed]} failed"),
               rich_progress.TimeElapsedColumn())
    with rich_progress.Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task(f"evaluation {evaluation_id}", total=total, failed=0)

        def update(progress: Progress) -> None:
            bar.update(task, total=progress.total, completed=progress.finished,
                       failed=progress.cells.get("failed", 0))

        yield update
