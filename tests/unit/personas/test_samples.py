"""The bundled sample personas are valid, and each one builds a prompt."""

from __future__ import annotations

import re
from importlib.resources import files
from importlib.resources.abc import Traversable

import pytest
import yaml

from personae.personas.prompt import build_system_prompt
from personae.personas.schema import PersonaDefinition
from personae.personas.validation import parse_persona

SAMPLES = files("personae.personas") / "samples"
SAMPLE_FILES = sorted(
    (entry for entry in SAMPLES.iterdir() if entry.name.endswith(".yaml")),
    key=lambda entry: entry.name,
)
DEVANAGARI = re.compile(r"[\u0900-\u097F]")


def stem(entry: Traversable) -> str:
    return entry.name.removesuffix(".yaml")


def load(entry: Traversable) -> PersonaDefinition:
    raw = yaml.safe_load(entry.read_text(encoding="utf-8"))
    return parse_persona(raw, default_id=stem(entry), source=entry.name)


def test_expected_samples_are_present() -> None:
    names = {stem(entry) for entry in SAMPLE_FILES}
    expected = {"tina-kulkarni", "mohit", "priyanka", "genz-listener", "advertiser",
                "linkedin-ghostwriter"}
    assert expected <= names
    assert len(names) >= 7


@pytest.mark.parametrize("entry", SAMPLE_FILES, ids=stem)
def test_sample_parses_and_builds_a_prompt(entry: Traversable) -> None:
    definition = load(entry)
    assert definition.id == stem(entry)
    assert definition.greetings
    assert definition.tags
    assert len(definition.traits) >= 2
    assert definition.example_dialogues
    assert definition.voice.voice_id
    assert definition.model.temperature is not None
    prompt = build_system_prompt(definition)
    assert prompt.startswith(f"You are {definition.shown_name}")
    assert definition.system_prompt in prompt


def test_tina_speaks_hindi() -> None:
    tina = load(SAMPLES / "tina-kulkarni.yaml")
    assert tina.language == "hi"
    assert tina.language_policy == "strict"
    assert tina.voice.voice_id == "nova"
    assert tina.greeting is not None
    assert DEVANAGARI.search(tina.greeting)
    assert list(tina.traits)[:4] == [
        "consultation_style", "personality_traits", "cultural_context", "response_patterns"
    ]
    assert all(isinstance(v, int) for v in tina.traits["personality_traits"].values())
    prompt = build_system_prompt(tina)
    assert prompt.startswith("You are Tina Kulkarni, a Vedic Marriage astrologer.")
    assert "Always answer in Hindi, whatever language the user writes in." in prompt


@pytest.mark.parametrize(
    ("persona_id", "voice_id"), [("mohit", "onyx"), ("priyanka", "shimmer")]
)
def test_english_astrologers(persona_id: str, voice_id: str) -> None:
    definition = load(SAMPLES / f"{persona_id}.yaml")
    assert definition.language == "en"
    assert definition.voice.voice_id == voice_id
    assert "astrology" in definition.tags


def test_tags_allow_filtering() -> None:
    by_tag: dict[str, set[str]] = {}
    for entry in SAMPLE_FILES:
        for tag in load(entry).tags:
            by_tag.setdefault(tag, set()).add(stem(entry))
    assert by_tag["astrology"] == {"tina-kulkarni", "mohit", "priyanka"}
    assert by_tag["panel"] == {"genz-listener", "advertiser"}
    assert "linkedin-ghostwriter" in by_tag["writing"]
