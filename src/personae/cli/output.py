"""Shared rendering: Rich for people, plain JSON for scripts, one error format.

Data goes to stdout and diagnostics to stderr, so ``--json`` output can be piped
straight into ``jq`` while warnings and errors still reach the terminal.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import typer
from rich.console import Console
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

from personae.errors import PersonaeError, ValidationFailed

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)
PIPE_WIDTH = 200


def emit_json(data: Any) -> None:
    """Plain JSON on stdout: no Rich markup, colour or wrapping, for scripts."""
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def emit_text(text: str) -> None:
    """Raw text on stdout (YAML, prompts) exactly as given."""
    typer.echo(text, nl=not text.endswith("\n"))


def emit_code(text: str, lexer: str) -> None:
    """Highlighted on a terminal, untouched when piped."""
    if console.is_terminal:
        console.print(Syntax(text.rstrip("\n"), lexer, word_wrap=True))
    else:
        emit_text(text)


def say(message: str, style: str | None = None) -> None:
    console.print(Text(message, style=style or ""), soft_wrap=True)


def warn(message: str) -> None:
    err_console.print(Text(f"warning: {message}", style="yellow"), soft_wrap=True)


def error(message: str) -> None:
    err_console.print(Text(f"error: {message}", style="red"), soft_wrap=True)


def detail(message: str) -> None:
    err_console.print(Text(f"  {message}", style="red"), soft_wrap=True)


def report_error(exc: PersonaeError) -> None:
    """Print a core error the way every command shows errors (see ``personae --help``)."""
    if isinstance(exc, ValidationFailed) and exc.issues:
        error(f"{_validation_source(exc)}invalid {exc.subject}")
        for issue in exc.issues:
            detail(str(issue))
        return
    error(exc.message)


def _validation_source(exc: ValidationFailed) -> str:
    """The ``file: `` prefix ValidationFailed folds into its message, if any."""
    first = str(exc.issues[0])
    index = exc.message.find(first)
    return exc.message[:index] if index > 0 else ""


def when(moment: datetime) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M")


def table(columns: Iterable[str], rows: Iterable[Iterable[Any]], *,
          wrap: Iterable[str] = ()) -> Table:
    """A Rich table where only the ``wrap`` columns give up width; the rest stay whole."""
    cells = [[("" if cell is None else str(cell)) for cell in row] for row in rows]
    names = list(columns)
    grid = Table(show_edge=False, header_style="bold")
    for index, name in enumerate(names):
        if name in wrap:
            grid.add_column(name, overflow="fold")
        else:
            widest = max([len(name), *(len(row[index]) for row in cells)])
            grid.add_column(name, min_width=widest, overflow="fold")
    for row in cells:
        grid.add_row(*(Text(cell) for cell in row))
    return grid


def show(renderable: Any) -> None:
    """Print a renderable; when piped, use a wide page rather than wrap at 80 columns."""
    if console.is_terminal or "COLUMNS" in os.environ:
        console.print(renderable)
    else:
        Console(file=console.file, width=PIPE_WIDTH, highlight=False).print(renderable)


def stdout_is_terminal() -> bool:
    return sys.stdout.isatty()
