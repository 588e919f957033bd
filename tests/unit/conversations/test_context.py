"""Context assembly: the history that fits, oldest dropped first, greeting kept."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from personae.conversations.context import build_messages
from personae.conversations.store import MessageRecord


def _msg(index: int, role: str, text: str, persona: str = "tina") -> MessageRecord:
    return MessageRecord(index, "s", role, text, persona, 1, "complete", datetime.now(UTC))


def count_words(text: str) -> int:
    return len(text.split())


def test_oldest_turns_are_dropped_first_and_the_greeting_is_kept() -> None:
    history = [_msg(0, "assistant", "greeting words here")]
    for i in range(1, 21):
        history.append(_msg(i, "user" if i % 2 else "assistant", f"turn {i} " + "w " * 8))
    messages = build_messages(system_prompt="sys " * 10, knowledge=[], history=history,
                              user_text="now", persona_id="tina", names={},
                              context_window=120, reply_tokens=20, count=count_words)
    contents = [m.content for m in messages]
    assert contents[0].startswith("sys")
    assert contents[1] == "greeting words here"
    assert contents[-1] == "now"
    kept_turns = [c.split()[1] for c in contents[2:-1]]
    assert kept_turns == sorted(kept_turns, key=int)
    assert kept_turns[-1] == "20"
    assert "1" not in kept_turns
    total = sum(count_words(c) + 4 for c in contents)
    assert total <= 120 - 20 + 4


def test_no_room_for_history_still_sends_system_and_user() -> None:
    history = [_msg(0, "assistant", "hello " * 50), _msg(1, "user", "x " * 50)]
    messages = build_messages(system_prompt="sys", knowledge=[], history=history,
                              user_text="now", persona_id="tina", names={},
                              context_window=30, reply_tokens=10, count=count_words)
    assert [m.role for m in messages] == ["system", "user"]


def test_a_reply_still_streaming_is_not_history_yet_but_an_interrupted_one_is() -> None:
    history = [_msg(0, "assistant", "greeting"), _msg(1, "user", "first question"),
               _msg(2, "assistant", "cut short"), _msg(3, "user", "second question"),
               _msg(4, "assistant", "half written")]
    history[2] = replace(history[2], status="interrupted")
    history[4] = replace(history[4], status="streaming")
    messages = build_messages(system_prompt="sys", knowledge=[], history=history,
                              user_text="now", persona_id="tina", names={},
                              context_window=1000, reply_tokens=20, count=count_words)
    assert [m.content for m in messages] == ["sys", "greeting", "first question", "cut short",
                                             "second question", "now"]


def test_post_history_instructions_come_last_and_take_their_share_of_the_window() -> None:
    history = [_msg(i, "user" if i % 2 else "assistant", f"turn {i} " + "w " * 8)
               for i in range(10)]
    common = {"system_prompt": "sys", "knowledge": [], "history": history, "user_text": "now",
              "persona_id": "tina", "names": {}, "context_window": 80, "reply_tokens": 10,
              "count": count_words}
    without = build_messages(**common)
    messages = build_messages(**common, post_history="Stay brief, {{user}}. " + "x " * 20,
                              user_name="Ana")
    assert messages[-2].content == "now"
    assert messages[-1].role == "system"
    assert messages[-1].content.startswith("Stay brief, Ana.")
    assert len(messages) < len(without) + 1  # history gave way to the instructions
    assert sum(count_words(m.content) + 4 for m in messages) <= 80 - 10 + 4
