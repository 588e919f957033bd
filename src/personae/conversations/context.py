"""Assemble what the model sees for one turn, within the model's context window.

The system message first: the persona's prompt, then the lore entries that fired
(before_char ones first, then after_char; their text as it is, as SillyTavern inserts
World Info), then the knowledge items retrieved for this message. Then as much
history as fits, newest kept, oldest dropped first, but the greeting kept when it
fits; then the user's message; then, when the persona has
``post_history_instructions``, one more system message after it. ``{{user}}`` (and
``{{char}}``) are substituted in everything the persona contributes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from personae.conversations.records import MessageRecord
from personae.personas.knowledge import RankedItem
from personae.personas.lore import FiredEntry, lore_block
from personae.personas.macros import DEFAULT_USER_NAME, substitute
from personae.providers.base import ChatMessage

CountTokens = Callable[[str], int]
PER_MESSAGE_OVERHEAD = 4  # role markers and separators most chat templates add


def system_with_knowledge(system_prompt: str, items: Sequence[RankedItem]) -> str:
    if not items:
        return system_prompt
    blocks = [f"- {r.item.title + ': ' if r.item.title else ''}{r.item.content}" for r in items]
    return (f"{system_prompt}\n\n## Relevant knowledge\n"
            "Use these facts from your own material when they help:\n" + "\n".join(blocks))


def persona_system(system_prompt: str, *, lore: Sequence[FiredEntry] = (),
                   knowledge: Sequence[RankedItem] = (), char: str | None = None,
                   user: str = DEFAULT_USER_NAME) -> str:
    """The system message's text: prompt, fired lore, retrieved knowledge, macros
    substituted (the prepared prompt already has ``{{char}}``; lore and knowledge
    contents may still hold either)."""
    text = system_prompt
    block = lore_block(lore)
    if block:
        text = f"{text}\n\n{block}" if text else block
    return substitute(system_with_knowledge(text, knowledge), char=char, user=user)


def post_history_message(instructions: str, user: str) -> ChatMessage | None:
    """``post_history_instructions`` as the system message after the history."""
    text = substitute(instructions, user=user).strip()
    return ChatMessage("system", text) if text else None


def recent_texts(history: Sequence[MessageRecord], user_text: str) -> list[str]:
    """What lore scans: the conversation's messages, oldest first, the new one last."""
    said = [r.content for r in history
            if r.role in ("user", "assistant") and r.content and r.status != "streaming"]
    return [*said, user_text]


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
                   count: CountTokens, lore: Sequence[FiredEntry] = (),
                   post_history: str = "", char: str | None = None,
                   user_name: str = DEFAULT_USER_NAME) -> list[ChatMessage]:
    system = ChatMessage("system", persona_system(system_prompt, lore=lore,
                                                  knowledge=knowledge, char=char,
                                                  user=user_name))
    user = ChatMessage("user", user_text)
    after = post_history_message(post_history, user_name)
    tail = [user, after] if after else [user]
    converted = [m for m in (history_message(r, persona_id, names) for r in history) if m]
    greeting = converted[0] if converted and converted[0].role == "assistant" else None
    budget = (context_window - reply_tokens - count(system.content)
              - sum(count(m.content) + PER_MESSAGE_OVERHEAD for m in tail)
              - PER_MESSAGE_OVERHEAD)
    kept = fit_history(converted, max(budget, 0), count, greeting)
    return [system, *kept, *tail]
