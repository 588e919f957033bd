"""``--set key=value`` values are YAML scalars, read with the same bounds as files."""

from __future__ import annotations

import pytest

from personae.cli.persona_edit import parse_assignments
from personae.errors import InvalidInput


def test_values_are_yaml_scalars() -> None:
    assert parse_assignments(["voice.speed=1.1", "tags=[a, b]", "note="]) == {
        "voice": {"speed": 1.1}, "tags": ["a", "b"], "note": ""}


@pytest.mark.parametrize(("item", "problem"), [
    ("tags=[&a [x, x, x], *a, *a]", r"YAML aliases \(\*a\) are not accepted"),
    ("traits=" + "[" * 100 + "]" * 100, "nested deeper than 64 levels"),
])
def test_aliases_and_deep_values_are_refused(item: str, problem: str) -> None:
    with pytest.raises(InvalidInput, match=problem):
        parse_assignments([item])
