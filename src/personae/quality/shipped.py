"""The test suites shipped with the sample personas (``quality/suites/*.yaml``).

Each sample persona has one, so its tests can be run from the API or the dashboard
without a suite file at hand; a suite belongs to the persona its ``persona`` key names
(or, without one, the persona its file is named after).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources

from personae.quality.suite import parse_suite


@dataclass(frozen=True, slots=True)
class ShippedSuite:
    persona_id: str
    name: str
    cases: int
    text: str  # the YAML as shipped, comments and all


@functools.cache
def shipped_suites() -> dict[str, ShippedSuite]:
    """Every shipped suite by persona id (read and checked once)."""
    found: dict[str, ShippedSuite] = {}
    folder = resources.files("personae.quality") / "suites"
    for entry in sorted(folder.iterdir(), key=lambda item: item.name):
        if not entry.name.endswith(".yaml"):
            continue
        text = entry.read_text(encoding="utf-8")
        suite = parse_suite(text, entry.name)
        persona_id = suite.persona or entry.name.removesuffix(".yaml")
        found[persona_id] = ShippedSuite(persona_id, suite.name, len(suite.cases), text)
    return found


def shipped_suite(persona_id: str) -> ShippedSuite | None:
    return shipped_suites().get(persona_id)
