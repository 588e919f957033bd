"""Card macros, and a card's system_prompt composing with the default prompt."""

from __future__ import annotations

from personae.personas.macros import substitute, user_name_or_default
from personae.personas.prepared import _build
from personae.personas.prompt import build_system_prompt
from personae.personas.validation import parse_persona


def test_char_and_user_in_every_spelling_and_case() -> None:
    text = "{{char}} {{Char}} {{ CHAR }} <BOT> <char> | {{user}} {{USER}} <USER> <user>"
    assert substitute(text, char="Wren", user="Ana") == \
        "Wren Wren Wren Wren Wren | Ana Ana Ana Ana"


def test_a_macro_not_given_is_left_for_later_and_comments_go() -> None:
    text = "{{char}} meets {{user}}.{{// a note for card authors }}"
    assert substitute(text, char="Wren") == "Wren meets {{user}}."
    assert substitute(substitute(text, char="Wren"), user="Ana") == "Wren meets Ana."


def test_names_are_inserted_literally() -> None:
    assert substitute("hi {{user}}", user=r"\1 \g<0>") == r"hi \1 \g<0>"


def test_user_name_defaults_to_user() -> None:
    assert user_name_or_default(None) == "User"
    assert user_name_or_default("   ") == "User"
    assert user_name_or_default(" Ana ") == "Ana"
    assert len(user_name_or_default("x" * 100)) == 64


def test_system_prompt_with_original_wraps_the_default_prompt() -> None:
    persona = parse_persona({"id": "wren", "name": "Wren", "description": "Keeps the light.",
                             "system_prompt": "Speak briefly.\n{{original}}\nNo lists."})
    prompt = build_system_prompt(persona)
    assert prompt.startswith("Speak briefly.\nYou are Wren.\n\nKeeps the light.")
    assert prompt.endswith("No lists.")
    assert prompt.count("Speak briefly.") == 1
    plain = parse_persona({"id": "wren", "name": "Wren", "system_prompt": "Speak briefly."})
    assert build_system_prompt(plain).split("\n\n")[1] == "Speak briefly."


def test_the_prepared_prompt_has_char_and_keeps_user_for_each_turn() -> None:
    persona = parse_persona({"id": "wren", "name": "Wren", "display_name": "Keeper Wren",
                             "description": "{{char}} helps {{user}}.",
                             "post_history_instructions": "Be {{char}}."})
    prepared = _build("wren", 1, persona)
    assert "Keeper Wren helps {{user}}." in prepared.system_prompt
    assert prepared.post_history == "Be Keeper Wren."
