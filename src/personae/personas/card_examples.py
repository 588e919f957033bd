"""A card's ``mes_example`` text: example dialogue as ``<START>`` blocks of turns.

Cards in the wild write turns as ``{{user}}:``/``{{char}}:``, ``<USER>:``/``<BOT>:``,
``You:``/``User:`` or the character's own name (any case), over one line or several;
``<START>`` separates conversations. Turns become user/reply pairs: consecutive turns
of one speaker are joined, a character turn with no user turn before it and a user
turn with no reply after it cannot be an :class:`ExampleExchange` and are left out
(with a warning), and so is prose outside any turn. What is left out stays in the
stored card, which is exported verbatim while the examples are not edited.
"""

from __future__ import annotations

import re

from personae.personas.schema import ExampleExchange

_START_LINE = re.compile(r"^\s*<start>\s*$", re.IGNORECASE)
_USER_PREFIXES = (r"\{\{user\}\}", "<user>", "you", "user")
_CHAR_PREFIXES = (r"\{\{char\}\}", "<bot>", "<char>")
Turn = tuple[str, str]  # ("user" | "char", what was said)


def _turn_pattern(char_name: str | None) -> re.Pattern[str]:
    chars = [*_CHAR_PREFIXES, *([re.escape(char_name.strip())] if char_name else [])]
    return re.compile(rf"^\s*(?:(?P<user>{'|'.join(_USER_PREFIXES)})|"
                      rf"(?P<char>{'|'.join(chars)}))[ \t]*:[ \t]?(?P<said>.*)$", re.IGNORECASE)


def parse_examples(text: str, char_name: str | None = None) -> list[dict[str, str]]:
    """The user/reply pairs in ``mes_example`` text (see :func:`read_examples`)."""
    return read_examples(text, char_name)[0]


def read_examples(text: str, char_name: str | None = None
                  ) -> tuple[list[dict[str, str]], list[str]]:
    """User/reply pairs, and a warning for each kind of text left out (with counts)."""
    blocks, prose = _turn_blocks(text, _turn_pattern(char_name))
    exchanges: list[dict[str, str]] = []
    unanswered = unprompted = 0
    for turns in blocks:
        pending: str | None = None
        for speaker, said in _joined(turns):
            if speaker == "user":
                unanswered += pending is not None
                pending = said
            elif pending is None:
                unprompted += 1
            else:
                exchanges.append({"user": pending, "reply": said})
                pending = None
        unanswered += pending is not None
    warnings = [f"mes_example: {count} {what}; left out of the example dialogues"
                for count, what in ((prose, "line(s) of text outside any turn"),
                                    (unprompted, "character turn(s) with no user turn before"),
                                    (unanswered, "user turn(s) with no reply"))
                if count]
    return exchanges, warnings


def _turn_blocks(text: str, turn_line: re.Pattern[str]) -> tuple[list[list[Turn]], int]:
    """Turns per ``<START>`` block (a turn runs on over the lines that follow it), and
    how many non-blank lines stood outside any turn."""
    blocks: list[list[Turn]] = [[]]
    prose = 0
    for line in text.splitlines():
        if _START_LINE.match(line):
            blocks.append([])
        elif turn := turn_line.match(line):
            blocks[-1].append(("user" if turn["user"] else "char", turn["said"]))
        elif blocks[-1]:
            speaker, said = blocks[-1][-1]
            blocks[-1][-1] = (speaker, f"{said}\n{line}")
        elif line.strip():
            prose += 1
    return [block for block in blocks if block], prose


def _joined(turns: list[Turn]) -> list[Turn]:
    """Consecutive turns of one speaker as one; turns with nothing said dropped."""
    joined: list[Turn] = []
    for speaker, said in turns:
        said = said.strip()
        if not said:
            continue
        if joined and joined[-1][0] == speaker:
            joined[-1] = (speaker, f"{joined[-1][1]}\n{said}")
        else:
            joined.append((speaker, said))
    return joined


def render_examples(exchanges: list[ExampleExchange]) -> str:
    """The ``mes_example`` text for exchanges, one ``<START>`` block each."""
    return "\n".join(
        f"<START>\n{{{{user}}}}: {item.user}\n{{{{char}}}}: {item.reply}" for item in exchanges
    )
