"""``personae audit``: who changed personas, users and keys, when and from where."""

from __future__ import annotations

import json

import typer

from personae.cli import output
from personae.cli.session import in_runtime
from personae.errors import InvalidInput
from personae.ops.audit import DEFAULT_LIMIT, AuditEntry, AuditQuery, parse_moment
from personae.runtime import Runtime

SUMMARY_WIDTH = 80


def _target(text: str | None) -> tuple[str | None, str | None]:
    """``persona:alice/tutor`` is a type and an id; ``persona`` a type alone."""
    if text is None:
        return None, None
    kind, _, target_id = text.partition(":")
    if not kind:
        raise InvalidInput("--target: TYPE or TYPE:ID, e.g. persona:alice/tutor or key")
    return kind, target_id or None


def _summary(entry: AuditEntry) -> str:
    text = json.dumps(entry.summary, separators=(",", ":"), ensure_ascii=False)
    return text if len(text) <= SUMMARY_WIDTH else text[:SUMMARY_WIDTH - 1] + "…"


def audit(
    ctx: typer.Context,
    actor: str | None = typer.Option(None, "--actor", help="A user's name or id."),
    action: str | None = typer.Option(
        None, "--action", help="Exact (user.role) or a prefix ending in '.' (persona.)."),
    target: str | None = typer.Option(
        None, "--target", metavar="TYPE[:ID]", help="persona, user or key, with an id."),
    since: str | None = typer.Option(
        None, "--since", help="A date (2026-12-01), a date-time, or a span (1h, 7d)."),
    limit: int = typer.Option(DEFAULT_LIMIT, "--limit", help="At most this many (500)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show the audit log, newest first."""
    target_type, target_id = _target(target)
    query = AuditQuery(actor=actor, action=action, target_type=target_type,
                       target_id=target_id, limit=limit,
                       since=parse_moment(since, "--since") if since else None)

    async def work(runtime: Runtime) -> list[AuditEntry]:
        return (await runtime.audit.list(query))[0]

    entries = in_runtime(ctx, work)
    if as_json:
        output.emit_json([entry.to_dict() for entry in entries])
        return
    if not entries:
        output.say("No audit entries match.")
        return
    rows = [(output.when(e.at), e.actor_name or "-", e.action,
             f"{e.target_type}:{e.target_id}" if e.target_id else e.target_type,
             e.client or "-", _summary(e)) for e in entries]
    output.show(output.table(("when", "actor", "action", "target", "client", "summary"),
                             rows, wrap=("summary",)))
