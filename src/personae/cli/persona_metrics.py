"""``personae personas metrics ID``: a persona's figures per version and UTC day."""

from __future__ import annotations

from typing import Any

import typer

from personae.auth.principal import Principal
from personae.cli import output
from personae.cli.session import as_admin
from personae.conversations.metrics import MAX_DAYS
from personae.runtime import Runtime

COLUMNS = ("version", "day", "turns", "tokens in", "tokens out", "ttft p50", "ttft p95",
           "resp mean", "resp p50", "resp p95", "errors", "interrupted", "up", "down")


def metrics(
    ctx: typer.Context,
    persona_id: str = typer.Argument(..., metavar="ID"),
    days: int = typer.Option(30, "--days", min=1, max=MAX_DAYS, help="UTC days up to today."),
    version: int | None = typer.Option(None, "--version", min=1, help="One version only."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (as the API answers)."),
) -> None:
    """Show a persona's turns, tokens, latency, errors and ratings per version and day."""

    async def work(runtime: Runtime, principal: Principal) -> dict[str, Any]:
        return await runtime.persona_metrics.report(principal, persona_id, days, version)

    report = as_admin(ctx, work)
    if as_json:
        output.emit_json(report)
        return
    if not report["versions"]:
        output.say(f"No figures for {persona_id} since {report['since']}.", style="dim")
        return
    output.show(output.table(COLUMNS, rows(report)))


def rows(report: dict[str, Any]) -> list[tuple[Any, ...]]:
    """One row per version and day, then the version's total row."""
    found: list[tuple[Any, ...]] = []
    for version in report["versions"]:
        for day in version["days"]:
            found.append(_row(version["version"], day["day"], day))
        found.append(_row(version["version"], "total", version["totals"]))
    return found


def _row(version: int, label: str, figures: dict[str, Any]) -> tuple[Any, ...]:
    first, response = figures["time_to_first_token_ms"], figures["response_ms"]
    return (version, label, figures["turns"], figures["prompt_tokens"],
            figures["completion_tokens"], _ms(first["p50"]), _ms(first["p95"]),
            _ms(response["mean"]), _ms(response["p50"]), _ms(response["p95"]),
            figures["errors"], figures["interruptions"], figures["ratings"]["up"],
            figures["ratings"]["down"])


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} ms"
