"""Assemble what the model sees for one turn, within the model's context window.

System prompt (with the knowledge items retrieved for this message) first; then as
much history as fits, newest kept, oldest dropped first, but the greeting kept when
it fits; then the user's message.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from personae.conversations.store import MessageRecord
from personae.personas.knowledge import RankedItem
from personae.providers.base import ChatMessage

CountTokens = Callable[[str], int]
PER_MESSAGE_OVERHEAD = 4  # role markers and separators most chat templates add


def system_with_knowledge(system_prompt: str, items: Sequence[RankedItem]) -> str:
    if not items:
        return system_prompt
    blocks = [f"- {r.item.title + ': ' if r.item.title else ''}{r.item.content}" for r in items]
    return (f"{system_prompt}\n\n## Relevant knowledge\n"
            "Use these facts from your own material when they help:\n" + "\n".join(blocks))


def history_message(record: MessageRecord, persona_id: str,
                    names: dict[str, str]) -> ChatMessage | None:
    """A stored message as the model should see it (another persona's words are marked;
    a reply still being written is not part of the conversation yet)."""
    if record.role == "user":
        return ChatMessage("user", record.content)
    if record.role != "assistant" or not record.content or record.status == "streaming":
        return None
    if record.persona_id != persona_id:
        speaker = names.get(record.persona_id, record.persona_id)
        return ChatMessage("assistant", f"[{speaker}, earlier in this conversation] "
                                        f"{record.content}")
    return ChatMessage("assistant", record.content)


def fit_history(history: list[ChatMessage], budget: int, count: CountTokens,
                greeting: ChatMessage | None) -> list[ChatMessage]:
    """Newest messages that fit ``budget`` tokens, with the greeting first if it fits."""
    cost = [count(m.content) + PER_MESSAGE_OVERHEAD for m in history]
    kept: list[int] = []
    reserve = 0
    if greeting is not None and history and history[0] is greeting:
        reserve = cost[0] if cost[0] <= budget else 0
    spent = reserve
    for index in range(len(history) - 1, -1, -1):
        if greeting is not None and history[index] is greeting:
            continue
        if spent + cost[index] > budget:
            break
        spent += cost[index]
        kept.append(index)
    if reserve:
        kept.append(0)
    return [history[i] for i in sorted(kept)]


def build_messages(*, system_prompt: str, knowledge: Sequence[RankedItem],
                   history: Sequence[MessageRecord], user_text: str, persona_id: str,
                   names: dict[str, str], context_window: int, reply_tokens: int,
                   count: CountTokens) -> list[ChatMessage]:
    system = ChatMessage("system", system_with_knowledge(system_prompt, knowledge))
    user = ChatMessage("user", user_text)
    converted = [m for m in (history_message(r, persona_id, names) for r in history) if m]
    greeting = converted[0] if converted and converted[0].role == "assistant" else None
    budget = (context_window - reply_tokens - count(system.content) - count(user.content)
              - 2 * PER_MESSAGE_OVERHEAD)
    kept = fit_history(converted, max(budget, 0), count, greeting)
    return [system, *kept, user]
