"""The system prompt builder: default sections, generic traits, sandboxed templates."""

from __future__ import annotations

from typing import Any

import pytest

from personae.errors import ValidationFailed
from personae.personas.prompt import build_system_prompt, render_trait
from personae.personas.schema import PersonaDefinition
from personae.personas.template import compile_template
from personae.personas.validation import parse_persona


def make(**fields: Any) -> PersonaDefinition:
    data: dict[str, Any] = {
        "id": "tina",
        "name": "Tina Kulkarni",
        "role": "astrologer",
        "speciality": "Vedic Marriage",
        "description": "A warm astrologer from Pune.",
        "system_prompt": "Ask for birth details first.\n\nNever frighten anyone.",
    }
    data.update(fields)
    return parse_persona(data)


def stored(**fields: Any) -> PersonaDefinition:
    """A definition that passed the schema only, as versions stored before templates were
    rendered at create time did: its template may still fail when the prompt is built."""
    return PersonaDefinition.model_validate({"id": "tina", "name": "Tina", **fields})


def test_identity_description_and_instructions_come_first() -> None:
    prompt = build_system_prompt(make())
    assert prompt.startswith(
        "You are Tina Kulkarni, a Vedic Marriage astrologer.\n\n"
        "A warm astrologer from Pune.\n\n"
        "Ask for birth details first.\n\nNever frighten anyone."
    )


@pytest.mark.parametrize(
    ("role", "speciality", "expected"),
    [
        ("astrologer", None, "You are Tina Kulkarni, an astrologer."),
        (None, "Vedic Marriage", "You are Tina Kulkarni, a specialist in Vedic Marriage."),
        (None, None, "You are Tina Kulkarni."),
        ("the host of a podcast", None, "You are Tina Kulkarni, the host of a podcast."),
    ],
)
def test_identity_handles_missing_role_or_speciality(
    role: str | None, speciality: str | None, expected: str
) -> None:
    prompt = build_system_prompt(make(role=role, speciality=speciality))
    assert prompt.splitlines()[0] == expected


def test_display_name_is_used_when_set() -> None:
    prompt = build_system_prompt(make(display_name="Tina Ji"))
    assert prompt.startswith("You are Tina Ji, a Vedic Marriage astrologer.")


def test_expertise_keywords_are_joined() -> None:
    prompt = build_system_prompt(make(expertise_keywords=["marriage", "kundli matching"]))
    assert "## Expertise\nmarriage, kundli matching" in prompt


def test_new_top_level_traits_render_with_no_code_change() -> None:
    definition = make(
        pricing_model={"per_minute": "INR 30", "first_session_free": True},
        availability=["Mon-Fri 9-5", "Sat 10-2"],
    )
    assert list(definition.traits) == ["pricing_model", "availability"]
    prompt = build_system_prompt(definition)
    assert "## Pricing model\n- Per minute: INR 30\n- First session free: yes" in prompt
    assert "## Availability\n- Mon-Fri 9-5\n- Sat 10-2" in prompt


def test_nested_trait_renders_exactly() -> None:
    value = {
        "pace": "slow",
        "steps": ["ask", "listen"],
        "packages": [{"name": "Basic", "price": 500, "extras": ["chat"]}, {"name": "Gold"}],
        "limits": {"daily": 3, "weekly": None},
        "empty": [],
    }
    assert render_trait("consultation_style", value) == (
        "## Consultation style\n"
        "- Pace: slow\n"
        "- Steps:\n"
        "  - ask\n"
        "  - listen\n"
        "- Packages:\n"
        "  - Name: Basic\n"
        "    Price: 500\n"
        "    Extras:\n"
        "      - chat\n"
        "  - Name: Gold\n"
        "- Limits:\n"
        "  - Daily: 3"
    )


def test_scalar_and_text_traits() -> None:
    assert render_trait("personality_traits", {"warmth": 9, "humor": 2.5}) == (
        "## Personality traits\n- Warmth: 9\n- Humor: 2.5"
    )
    assert render_trait("motto", "  Be kind.  ") == "## Motto\nBe kind."
    assert render_trait("max_sessions", 3) == "## Max sessions\n3"
    assert render_trait("notes", {}) == ""
    assert render_trait("notes", None) == ""


def test_traits_keep_insertion_order() -> None:
    prompt = build_system_prompt(make(traits={"zeta": "last?", "alpha": "first?", "mid": "m"}))
    assert prompt.index("## Zeta") < prompt.index("## Alpha") < prompt.index("## Mid")


def test_empty_traits_are_left_out() -> None:
    prompt = build_system_prompt(make(traits={"notes": {}, "style": "calm"}))
    assert "## Notes" not in prompt
    assert "## Style\ncalm" in prompt


@pytest.mark.parametrize(
    ("language", "policy", "expected"),
    [
        ("hi", "strict", "Always answer in Hindi, whatever language the user writes in."),
        ("hi", "prefer", "Answer in Hindi unless the user asks for another language."),
        ("en", "strict", "Always answer in English, whatever language the user writes in."),
        ("hi", "mirror", "Answer in the language the user writes in."),
    ],
)
def test_language_policy(language: str, policy: str, expected: str) -> None:
    prompt = build_system_prompt(make(language=language, language_policy=policy))
    assert f"## Language\n{expected}" in prompt


def test_example_dialogues_use_the_shown_name() -> None:
    definition = make(
        example_dialogues=[
            {"user": "When will I marry?", "reply": "Tell me your birth date."},
            {"user": "Is 16 gunas bad?", "reply": "Not necessarily."},
        ]
    )
    assert build_system_prompt(definition).endswith(
        "## Example exchanges\n"
        "User: When will I marry?\nTina Kulkarni: Tell me your birth date.\n\n"
        "User: Is 16 gunas bad?\nTina Kulkarni: Not necessarily."
    )


def test_knowledge_is_not_rendered() -> None:
    definition = make(knowledge=[{"title": "Fees", "content": "SECRET-KNOWLEDGE-TEXT"}])
    prompt = build_system_prompt(definition)
    assert "SECRET-KNOWLEDGE-TEXT" not in prompt
    assert "Fees" not in prompt


def test_section_order_and_whitespace() -> None:
    definition = make(
        system_prompt="Line with trailing spaces   \nnext",
        expertise_keywords=["marriage"],
        traits={"style": "calm"},
        example_dialogues=[{"user": "hi", "reply": "hello"}],
    )
    prompt = build_system_prompt(definition)
    order = ["You are", "A warm", "Line with", "## Expertise", "## Style", "## Language",
             "## Example exchanges"]
    positions = [prompt.index(marker) for marker in order]
    assert positions == sorted(positions)
    assert all(line == line.rstrip() for line in prompt.splitlines())
    assert "\n\n\n" not in prompt
    assert not prompt.endswith("\n")


def test_build_is_deterministic() -> None:
    fields = {"traits": {"b": {"x": 1, "y": [1, 2]}, "a": "text"}, "expertise": ["k1", "k2"]}
    assert build_system_prompt(make(**fields)) == build_system_prompt(make(**fields))


# ------------------------------------------------------------------------ templates


def test_template_override_sees_sections_traits_and_persona() -> None:
    template = (
        "{{ sections.identity }}\n"
        "Speaking as {{ persona.shown_name }} ({{ persona.language }}).\n"
        "{{ traits.pricing_model }}\n"
        "{{ sections.language }}   \n"
    )
    definition = make(prompt_template=template, display_name="Tina Ji",
                      pricing_model={"per_minute": "INR 30"})
    assert build_system_prompt(definition) == (
        "You are Tina Ji, a Vedic Marriage astrologer.\n"
        "Speaking as Tina Ji (en).\n"
        "## Pricing model\n- Per minute: INR 30\n"
        "## Language\nAlways answer in English, whatever language the user writes in."
    )


def test_template_can_wrap_the_default_prompt() -> None:
    plain = build_system_prompt(make())
    wrapped = build_system_prompt(make(prompt_template="{{ default }}\n\nKeep answers short."))
    assert wrapped == plain + "\n\nKeep answers short."


def test_template_sees_every_section_key_even_when_empty() -> None:
    template = "{% for key in sections %}{{ key }}={{ sections[key] | length > 0 }};{% endfor %}"
    prompt = build_system_prompt(make(prompt_template=template, description=""))
    assert prompt == (
        "identity=True;description=False;instructions=True;expertise=False;"
        "traits=False;language=True;examples=False;"
    )


def test_template_undefined_variable_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"line 2: .*no attribute 'nickname'"):
        build_system_prompt(stored(prompt_template="ok\n{{ persona.nickname }}"))


@pytest.mark.parametrize(
    "template",
    [
        "{{ persona.__class__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ sections.__class__.__base__.__subclasses__() }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ sections.update({'identity': 'x'}) }}",
    ],
)
def test_sandbox_blocks_unsafe_access(template: str) -> None:
    with pytest.raises(ValueError, match="unsafe"):
        build_system_prompt(stored(prompt_template=template))


@pytest.mark.parametrize(
    "template", ["{{ 'a' * 100000000 }}", "{{ 9 ** (9 ** 9) }}", "{{ range(10 ** 8) | list }}"]
)
def test_sandbox_refuses_huge_results(template: str) -> None:
    with pytest.raises(ValueError, match="prompt template failed"):
        build_system_prompt(stored(prompt_template=template))


def test_bad_template_syntax_names_the_line() -> None:
    with pytest.raises(ValueError, match=r"^line 3: "):
        compile_template("first\nsecond\n{% if %}")
    with pytest.raises(ValidationFailed, match=r"^prompt_template: line 1: "):
        make(prompt_template="{{ persona.name ")


def test_compiled_templates_are_cached() -> None:
    assert compile_template("Hello {{ persona.name }}") is compile_template(
        "Hello {{ persona.name }}"
    )
