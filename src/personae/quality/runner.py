"""Run a suite against one persona version and model.

Replies are produced the way a conversation turn produces them, without storing the
exchange: the prepared persona (prompt, knowledge, lore, post-history instructions),
``context.build_messages`` over the case's own history, and the provider chain from
``ProviderRegistry.resolve``. That path, rather than stored sessions, is what lets a
run pin any persona version and swap the provider or model per run, and leaves no
test conversations behind. The greeting check is the exception: it opens a real
session (marked ``{"test_run": ...}``, deleted afterwards), so it checks the greeting
the engine really sends.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from personae.auth.principal import Principal
from personae.conversations.context import build_messages, recent_texts
from personae.conversations.engine import DEFAULT_REPLY_TOKENS, ConversationService
from personae.conversations.events import MessageSaved
from personae.conversations.store import MessageRecord
from personae.errors import PersonaeError
from personae.personas.macros import DEFAULT_USER_NAME, substitute
from personae.personas.prepared import PreparedPersona, PreparedPersonas
from personae.personas.service import PersonaService
from personae.providers.base import ModelChoice
from personae.providers.registry import ProviderRegistry
from personae.providers.streams import complete
from personae.quality.assertions import CHECKS, Outcome, ReplyContext
from personae.quality.judge import run_judge
from personae.quality.results import AssertionResult, CaseResult, RunResult, SuiteResult, Target
from personae.quality.suite import Case, Judge, Suite

Progress = Callable[[str], None]
KNOWLEDGE_ITEMS = 3


@dataclass
class PersonaTester:
    personas: PersonaService
    prepared: PreparedPersonas
    providers: ProviderRegistry
    conversations: ConversationService
    judge_provider: str | None = None

    async def run(self, principal: Principal, suite: Suite, target: Target, *,
                  repeat: int | None = None, progress: Progress | None = None) -> SuiteResult:
        """Every case, each repeated; ``progress`` hears of each repetition done."""
        persona, current = await self._persona(principal, target)
        result = SuiteResult(suite.name, target, persona.version)
        for case in suite.cases:
            outcome = CaseResult(case.name, suite.threshold_for(case))
            for _ in range(suite.repeat_for(case, repeat)):
                outcome.runs.append(await self._run_case(principal, persona, case, target,
                                                         current))
                if progress:
                    progress(case.name)
            result.cases.append(outcome)
        return result

    async def _persona(self, principal: Principal,
                       target: Target) -> tuple[PreparedPersona, bool]:
        """The version to test (the caller must be able to read the persona), and
        whether it is the current one."""
        latest = await self.prepared.usable(principal, target.persona_id)
        if target.version is None or target.version == latest.version:
            return latest, True
        await self.personas.version(principal, target.persona_id, target.version)
        return await self.prepared.get(target.persona_id, target.version), False

    async def _run_case(self, principal: Principal, persona: PreparedPersona, case: Case,
                        target: Target, current: bool) -> RunResult:
        run = RunResult()
        history: list[MessageRecord] = []
        try:
            if any(check.kind == "greeting" for check in case.expect):
                run.checks.extend(await self._greeting_checks(principal, persona, case,
                                                              current))
            for turn, text in enumerate(case.turns):
                reply = await self._reply(persona, target, history, text)
                run.replies.append(reply)
                run.checks.extend(await self._checks(persona, case, turn, text, reply,
                                                     run.replies[-2] if turn else None))
                history += [_record(len(history), "user", text, persona),
                            _record(len(history) + 1, "assistant", reply, persona)]
        except PersonaeError as exc:
            run.error = exc.message
        return run

    async def _reply(self, persona: PreparedPersona, target: Target,
                     history: list[MessageRecord], text: str) -> str:
        """One reply, built as ``ConversationService`` builds a turn's messages."""
        choice = _model_choice(persona.model, target)
        llm, settings = self.providers.resolve(choice)
        settings = replace(settings, fairness_key=f"test-{uuid.uuid4().hex}")
        fired = (await asyncio.to_thread(persona.lore.fire, recent_texts(history, text))
                 if persona.lore else [])
        messages = build_messages(
            system_prompt=persona.system_prompt,
            knowledge=persona.knowledge.top(text, KNOWLEDGE_ITEMS), history=history,
            user_text=text, persona_id=persona.persona_id, names={},
            context_window=llm.context_window,
            reply_tokens=settings.max_tokens or DEFAULT_REPLY_TOKENS,
            count=llm.count_tokens,
            lore=persona.lore.fit(fired, llm.count_tokens, DEFAULT_USER_NAME),
            post_history=persona.post_history, char=persona.definition.shown_name)
        return (await complete(llm, messages, settings)).text

    async def _checks(self, persona: PreparedPersona, case: Case, turn: int, text: str,
                      reply: str, previous: str | None) -> list[AssertionResult]:
        definition = persona.definition
        ctx = ReplyContext(reply, definition.shown_name, definition.expertise_keywords,
                           previous)
        found = []
        for check in case.expect:
            if isinstance(check, Judge):
                outcome = await run_judge(check, self.providers, self.judge_provider,
                                          definition.shown_name, text, reply)
            elif check.kind == "greeting":
                continue
            else:
                outcome = CHECKS[check.kind](check, ctx)
            found.append(AssertionResult(check.kind, turn, outcome.passed, outcome.detail))
        return found

    async def _greeting_checks(self, principal: Principal, persona: PreparedPersona,
                               case: Case, current: bool) -> list[AssertionResult]:
        if not current:
            outcome = Outcome(None, "the greeting is checked on the current version only")
            return [AssertionResult("greeting", -1, outcome.passed, outcome.detail)]
        sent = await self._session_greeting(principal, persona.persona_id)
        definition = persona.definition
        expected = (substitute(definition.greeting, char=definition.shown_name,
                               user=DEFAULT_USER_NAME).strip() or None
                    if definition.greeting else None)
        ctx = ReplyContext("", definition.shown_name, greeting=sent,
                           expected_greeting=expected)
        found = []
        for check in case.expect:
            if check.kind == "greeting":
                outcome = CHECKS["greeting"](check, ctx)
                found.append(AssertionResult("greeting", -1, outcome.passed, outcome.detail))
        return found

    async def _session_greeting(self, principal: Principal, persona_id: str) -> str | None:
        """The greeting a real session opens with; the session is deleted afterwards."""
        session, events = await self.conversations.open(
            principal, persona_id, {"test_run": uuid.uuid4().hex})
        try:
            return next((e.message.content for e in events if isinstance(e, MessageSaved)
                         and e.message.role == "assistant"), None)
        finally:
            await self.conversations.delete(principal, session.id)


def _model_choice(persona: ModelChoice, target: Target) -> ModelChoice:
    """The persona's settings with the run's provider and model on top (another
    provider does not inherit the persona's model name)."""
    if target.provider is not None:
        return replace(persona, provider=target.provider, model=target.model)
    if target.model is not None:
        return replace(persona, model=target.model)
    return persona


def _record(index: int, role: str, text: str, persona: PreparedPersona) -> MessageRecord:
    """A case's earlier exchange as history, shaped like stored messages."""
    return MessageRecord(index, "test", role, text, persona.persona_id, persona.version,
                         "complete", datetime.now(UTC))
