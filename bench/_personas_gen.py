"""Deterministic, varied persona files for the sync benchmark (~1-2 KB each).

Most files are YAML in the current shape; about a tenth are JSON, some use ``.yml``,
some leave ``id`` to the file name, and some use the flat legacy shape (a single
``greeting``, a top-level ``voice_id``, trait blocks as top-level keys).
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import yaml

_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

LANGUAGES = ["en", "en", "en", "hi", "hi", "fr", "es", "de", "pt", "ta", "bn", "ja", "it",
             "Hindi", "French", "Spanish"]
FIRST = ["Aarav", "Priya", "Mohit", "Tina", "Lucas", "Camille", "Sofia", "Mateo", "Hana",
         "Kenji", "Ananya", "Rohan", "Elena", "Jonas", "Amara", "Diego", "Meera", "Noah",
         "Isabela", "Farid", "Leila", "Chen", "Olga", "Kwame", "Ines", "Arjun", "Lea"]
LAST = ["Sharma", "Kulkarni", "Dubois", "Garcia", "Tanaka", "Iyer", "Rossi", "Silva", "Moreau",
        "Fischer", "Mehta", "Okafor", "Novak", "Haddad", "Suzuki", "Lopez", "Banerjee", "Weber"]
ROLES = {
    "astrologer": ("Love & Relationships", ["astrology", "love", "horoscope", "tarot"]),
    "career coach": ("First jobs and promotions", ["career", "coaching", "interviews"]),
    "python tutor": ("Beginner programming", ["python", "programming", "education"]),
    "fitness trainer": ("Strength at home", ["fitness", "health", "workout"]),
    "chef": ("Regional home cooking", ["cooking", "recipes", "food"]),
    "copywriter": ("Ads that convert", ["marketing", "writing", "ads"]),
    "therapist": ("Stress and sleep", ["wellbeing", "stress", "sleep"]),
    "travel guide": ("Budget travel", ["travel", "budget", "culture"]),
    "finance advisor": ("Personal budgeting", ["finance", "budgeting", "savings"]),
    "history teacher": ("World history for teens", ["history", "education", "stories"]),
}
EXTRA_TAGS = ["voice", "chat", "beginner", "expert", "friendly", "formal", "premium", "free",
              "india", "europe", "latam", "night-owl", "weekend", "quick-answers", "deep-dives"]
GENERAL_KEYWORDS = ["advice", "planning", "habits", "motivation", "feedback", "mistakes",
                    "goals", "confidence"]
SENTENCES = [
    "Listen first and reflect back what the person is feeling before giving advice.",
    "Keep answers short, concrete and kind; offer one clear next step.",
    "Ask one question at a time and wait for the answer.",
    "Never promise outcomes you cannot guarantee, and say so plainly.",
    "Use simple words; explain any term of art the first time you use it.",
    "If someone seems at risk, respond with care and point them to a trusted person.",
    "Prefer examples from everyday life over abstract explanations.",
    "Admit uncertainty and suggest how the person could find out more.",
    "Celebrate small wins and keep the tone warm but honest.",
]


def _traits(rng: random.Random) -> dict[str, Any]:
    blocks: dict[str, Any] = {
        "consultation_style": {"pace": rng.choice(["relaxed", "steady", "brisk"]),
                               "question_style": rng.choice(["open", "one at a time", "socratic"]),
                               "empathy_level": rng.choice(["high", "very high", "moderate"])},
        "personality_traits": {name: rng.randint(1, 10)
                               for name in ("warmth", "optimism", "directness", "humor")},
        "response_patterns": {"greeting_style": rng.choice(["friendly", "formal", "playful"]),
                              "answer_length": rng.choice(["short", "medium", "detailed"]),
                              "advice_format": "one reflection, one insight, one next step"},
        "pricing_model": {"free_minutes": rng.choice([3, 5, 10]),
                          "per_minute_inr": rng.choice([10, 20, 35, 50])},
        "boundaries": {"topics_to_avoid": rng.sample(["medical", "legal", "politics",
                                                      "gambling", "religion"], 2)},
    }
    names = rng.sample(sorted(blocks), rng.randint(2, 3))
    return {name: blocks[name] for name in names}


def persona(index: int, rng: random.Random) -> dict[str, Any]:
    """One persona mapping; ``index`` makes the id (and file name) unique."""
    name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
    role = rng.choice(sorted(ROLES))
    speciality, role_tags = ROLES[role]
    keywords = rng.sample([*role_tags, *GENERAL_KEYWORDS], 6)
    return {
        "id": f"p{index:05d}-{name.lower().replace(' ', '-')}",
        "name": name,
        "description": f"A {rng.choice(['gentle', 'practical', 'witty', 'patient'])} {role} "
                       f"focused on {speciality.lower()}. Persona number {index}.",
        "tags": role_tags[:2] + rng.sample(EXTRA_TAGS, rng.randint(1, 4)),
        "role": role, "speciality": speciality,
        "language": rng.choice(LANGUAGES),
        "system_prompt": " ".join([f"You are {name}, a {role}.",
                                   *rng.sample(SENTENCES, rng.randint(3, 5))]),
        "greetings": [f"Hi, I'm {name.split()[0]}. What would you like help with today?",
                      f"Welcome back! Shall we continue with {speciality.lower()}?"]
                     [:rng.randint(1, 2)],
        "example_dialogues": [{"user": f"Can you help me with {keyword}?",
                               "reply": f"Of course. {rng.choice(SENTENCES)} "
                                        f"Tell me a bit more about your {keyword} so far."}
                              for keyword in keywords[:rng.randint(1, 2)]],
        "expertise_keywords": keywords,
        "traits": _traits(rng),
    }


def legacy_shape(data: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """The flat shape older systems wrote: ``greeting``, ``voice_id``, top-level traits."""
    flat = {k: v for k, v in data.items() if k not in ("greetings", "traits")}
    flat["greeting"] = data["greetings"][0]
    flat["voice_id"] = rng.choice(["shimmer", "alloy", "nova"])
    flat.update(data["traits"])
    return flat


def write_file(folder: Path, index: int, rng: random.Random) -> Path:
    data = persona(index, rng)
    sub = folder / f"group-{index % 20:02d}"
    sub.mkdir(exist_ok=True)
    if index % 10 == 3:
        path = sub / f"{data['id']}.json"
        path.write_text(json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8")
        return path
    if index % 7 == 0:
        data = legacy_shape(data, rng)
    if index % 5 == 1:
        data.pop("id")  # the file name gives the id
    path = sub / f"p{index:05d}-{data['name'].lower().replace(' ', '-')}" \
                 f"{'.yml' if index % 9 == 0 else '.yaml'}"
    path.write_text(yaml.dump(data, Dumper=_Dumper, allow_unicode=True, sort_keys=False,
                              width=100), encoding="utf-8")
    return path


def generate(folder: Path, count: int, seed: int = 20240601) -> int:
    """Write ``count`` persona files under ``folder``; returns their total size in bytes."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    return sum(write_file(folder, index, rng).stat().st_size for index in range(count))
