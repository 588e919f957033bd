"""``personae chat PERSONA``: talk to a persona in the terminal (offline by default).

Runs the conversation engine in this process against the configured database and
model, as the local admin. Commands: ``/switch ID``, ``/history``, ``/quit``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import typer
from rich.console import Console
from rich.text import Text

from personae.auth.principal import Principal
from personae.cli.session import as_admin
from personae.conversations.events import (
    Delta,
    Done,
    MessageSaved,
    PersonaSwitched,
    TurnEvent,
    TurnFailed,
)
from personae.errors import PersonaeError
from personae.runtime import Runtime

HELP = "Commands: /switch PERSONA, /history, /quit (or Ctrl-D)."


class _Chat:
    def __init__(self, runtime: Runtime, principal: Principal, console: Console,
                 read: Callable[[str], str], user_name: str | None = None) -> None:
        self.runtime, self.principal, self.console, self.read = runtime, principal, console, read
        self.meta = {"channel": "cli", **({"user_name": user_name} if user_name else {})}
        self.session_id = ""
        self.speaker = ""

    async def start(self, persona_id: str) -> None:
        session, events = await self.runtime.conversations.open(self.principal, persona_id,
                                                               self.meta)
        self.session_id = session.id
        self.speaker = await self._name(persona_id)
        self.console.print(f"[dim]Session {session.id} with {self.speaker}. {HELP}[/dim]")
        self._show(events)

    async def loop(self) -> None:
        while True:
            try:
                line = (await asyncio.to_thread(self.read, "you> ")).strip()
            except (EOFError, KeyboardInterrupt):
                return
            if not line:
                continue
            if line in {"/quit", "/exit"}:
                return
            try:
                await self._command(line)
            except PersonaeError as exc:
                self.console.print(f"[red]error:[/red] {exc.message}")

    async def _command(self, line: str) -> None:
        if line.startswith("/switch"):
            target = line.removeprefix("/switch").strip()
            if not target:
                raise typer.BadParameter("usage: /switch PERSONA")
            self._show(await self.runtime.conversations.switch(self.principal, self.session_id,
                                                              target))
        elif line == "/history":
            for m in await self.runtime.conversations.history(self.principal, self.session_id):
                self.console.print(f"[dim]{m.role} ({m.persona_id}, {m.status}):[/dim] "
                                   f"{m.content}")
        elif line.startswith("/"):
            self.console.print(f"[yellow]unknown command[/yellow]. {HELP}")
        else:
            await self._turn(line)

    async def _turn(self, text: str) -> None:
        events = await self.runtime.conversations.send(self.principal, self.session_id, text)
        self.console.print(Text(f"{self.speaker}> ", style="bold"), end="")
        async for event in events:
            if isinstance(event, Delta):
                self.console.print(event.text, end="", markup=False, highlight=False)
            elif isinstance(event, Done):
                self.console.print()
                for warning in event.message.meta.get("warnings", []):
                    self.console.print(Text(f"warning: {warning}", style="dim"))
            elif isinstance(event, TurnFailed):
                self.console.print(f"\n[red]error:[/red] {event.message}")

    def _show(self, events: list[TurnEvent]) -> None:
        for event in events:
            if isinstance(event, PersonaSwitched):
                self.speaker = event.name
                self.console.print(f"[dim]Now talking to {event.name} ({event.language}).[/dim]")
            elif isinstance(event, MessageSaved) and event.message.role == "assistant":
                # The persona's words are printed as text: brackets in them are not markup.
                self.console.print(Text.assemble((f"{self.speaker}> ", "bold"),
                                                 event.message.content))

    async def _name(self, persona_id: str) -> str:
        record = (await self.runtime.personas.get(self.principal, persona_id)).record
        return record.definition.shown_name


def chat(ctx: typer.Context,
         persona: str = typer.Argument(..., help="persona id, e.g. tina-kulkarni"),
         user_name: str | None = typer.Option(
             None, "--user-name", help="The name the persona calls you ({{user}} in card "
                                       "text; \"User\" otherwise).")) -> None:
    """Talk to a persona in the terminal; replies stream as they are written."""
    console = Console()
    if user_name is not None and not (user_name.strip() and len(user_name) <= 64):
        raise typer.BadParameter("--user-name must be 1 to 64 characters, not blank")

    async def work(runtime: Runtime, principal: Principal) -> None:
        session = _Chat(runtime, principal, console, console.input,
                        user_name.strip() if user_name else None)
        await session.start(persona)
        await session.loop()

    as_admin(ctx, work)
