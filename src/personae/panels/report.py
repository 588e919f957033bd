"""Results of an evaluation: one card per persona per segment, aggregates, CSV and JSON.

Aggregates count only cells that were scored: failed cells are counted as failed and
never enter a mean or a distribution.
"""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from statistics import fmean
from typing import Any

from personae.panels.records import CellRow, EvaluationRecord, SegmentRow

CSV_COLUMNS = ("segment_index", "start_ms", "end_ms", "text", "topic", "tone", "persona_id",
               "persona_version", "status", "score", "opinion", "fields", "adherence_score",
               "in_character", "error")


def results(evaluation: EvaluationRecord, segments: Sequence[SegmentRow],
            cells: Sequence[CellRow]) -> list[dict[str, Any]]:
    """Each segment with its cards, in the evaluation's persona order."""
    order = {p.id: n for n, p in enumerate(evaluation.spec.personas)}
    names = {p.id: p.name for p in evaluation.spec.personas}
    by_segment: dict[int, list[CellRow]] = defaultdict(list)
    for cell in cells:
        by_segment[cell.segment_index].append(cell)
    found = []
    for segment in segments:
        cards = sorted(by_segment.get(segment.index, []), key=lambda c: order.get(c.persona_id, 0))
        found.append({**segment.public(), "cards": [
            {**card.public(), "persona_name": names.get(card.persona_id, card.persona_id)}
            for card in cards]})
    return found


def _summary(scored: Iterable[int], counts: dict[str, int]) -> dict[str, Any]:
    values = list(scored)
    distribution: dict[str, int] = defaultdict(int)
    for value in values:
        distribution[str(value)] += 1
    return {"mean": round(fmean(values), 3) if values else None, "scored": len(values),
            "distribution": dict(sorted(distribution.items(), key=lambda kv: int(kv[0]))),
            **counts}


def aggregates(evaluation: EvaluationRecord, segments: Sequence[SegmentRow],
               cells: Sequence[CellRow]) -> dict[str, Any]:
    """Per persona (mean, distribution, failed), and per topic and per tone."""
    labels = {s.index: (s.topic, s.tone) for s in segments}
    per_persona = {}
    for persona in evaluation.spec.personas:
        own = [c for c in cells if c.persona_id == persona.id]
        per_persona[persona.id] = {
            "name": persona.name, "version": persona.version,
            **_summary((score for _, score in _scores(own)),
                       {"failed": sum(c.status == "failed" for c in own),
                        "pending": sum(c.status in ("pending", "running") for c in own)})}
    return {"personas": per_persona,
            "topics": _by_label(cells, {i: t for i, (t, _) in labels.items()}),
            "tones": _by_label(cells, {i: t for i, (_, t) in labels.items()})}


def _scores(cells: Iterable[CellRow]) -> list[tuple[str, int]]:
    """(persona, score) of the cells that were scored; failed cells have none."""
    return [(c.persona_id, c.score) for c in cells if c.status == "done" and c.score is not None]


def _by_label(cells: Sequence[CellRow], label_of: dict[int, str | None]) -> dict[str, Any]:
    groups: dict[str, list[CellRow]] = defaultdict(list)
    for cell in cells:
        label = label_of.get(cell.segment_index)
        if label:
            groups[label].append(cell)
    found = {}
    for label, members in sorted(groups.items()):
        scored = _scores(members)
        by_persona: dict[str, list[int]] = defaultdict(list)
        for persona_id, score in scored:
            by_persona[persona_id].append(score)
        found[label] = {
            "segments": len({c.segment_index for c in members}),
            **_summary((score for _, score in scored), {}),
            "by_persona": {pid: round(fmean(v), 3) for pid, v in sorted(by_persona.items())}}
    return found


def to_csv(segments: Sequence[SegmentRow], cells: Sequence[CellRow]) -> str:
    """One row per cell, with its segment's text, time and labels."""
    by_index = {s.index: s for s in segments}
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for cell in cells:
        segment = by_index[cell.segment_index]
        adherence = cell.adherence or {}
        writer.writerow([
            cell.segment_index, segment.start_ms, segment.end_ms, segment.text, segment.topic,
            segment.tone, cell.persona_id, cell.persona_version, cell.status, cell.score,
            cell.opinion, json.dumps(cell.fields, ensure_ascii=False) if cell.fields else "",
            adherence.get("score"), adherence.get("in_character"), cell.error])
    return out.getvalue()
