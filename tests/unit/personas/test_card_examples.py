"""A card's mes_example in the formats cards are written in."""

from __future__ import annotations

from personae.personas.card_examples import parse_examples, read_examples


def test_start_blocks_of_macro_prefixed_turns() -> None:
    text = "<START>\n{{user}}: Hi\n{{char}}: Hello.\n<start>\n<USER>: And you?\n<BOT>: Fine."
    assert parse_examples(text) == [{"user": "Hi", "reply": "Hello."},
                                    {"user": "And you?", "reply": "Fine."}]


def test_you_user_and_the_card_name_as_prefixes_in_any_case() -> None:
    text = "<START>\nYou: Cold?\nWREN: Always.\n<START>\nuser: Who?\n<char>: The keeper."
    assert parse_examples(text, "Wren") == [{"user": "Cold?", "reply": "Always."},
                                            {"user": "Who?", "reply": "The keeper."}]


def test_multi_line_turns_and_consecutive_turns_of_one_speaker() -> None:
    text = ("<START>\n{{user}}: First line\nsecond line\n{{user}}: another thought\n"
            "{{char}}: Reply one.\n\nReply two.\n{{char}}: And three.")
    assert parse_examples(text) == [{
        "user": "First line\nsecond line\nanother thought",
        "reply": "Reply one.\n\nReply two.\nAnd three."}]


def test_what_cannot_be_an_exchange_is_left_out_with_warnings() -> None:
    text = ("Some prose before anything.\n<START>\n{{char}}: I speak first.\n"
            "{{user}}: Fine.\n{{char}}: Good.\n<START>\n{{user}}: Hello?")
    exchanges, warnings = read_examples(text)
    assert exchanges == [{"user": "Fine.", "reply": "Good."}]
    assert warnings == [
        "mes_example: 1 line(s) of text outside any turn; left out of the example dialogues",
        "mes_example: 1 character turn(s) with no user turn before; left out of the "
        "example dialogues",
        "mes_example: 1 user turn(s) with no reply; left out of the example dialogues"]


def test_turns_without_start_and_empty_text() -> None:
    assert parse_examples("{{user}}: a\n{{char}}: b") == [{"user": "a", "reply": "b"}]
    assert read_examples("") == ([], [])
