"""Suite files: what is accepted, and errors that name the path."""

from __future__ import annotations

from pathlib import Path

import pytest

from personae.errors import InvalidInput, ValidationFailed
from personae.quality.suite import load_suite, parse_suite
from personae.runtime import samples_folder

SHIPPED = Path(__file__).parents[3] / "src" / "personae" / "quality" / "suites"
BASE = "name: s\ncases:\n  - name: c\n    turns: [hi]\n    expect:\n"


def issues(text: str) -> list[str]:
    with pytest.raises(ValidationFailed) as caught:
        parse_suite(text, "s.yaml")
    return [str(issue) for issue in caught.value.issues]


def test_defaults_and_overrides() -> None:
    suite = parse_suite(BASE + "      - {kind: regex, pattern: h}\n    repeat: 3\n")
    (case,) = suite.cases
    assert (suite.threshold, suite.repeat_for(case), suite.threshold_for(case)) == (1.0, 3, 1.0)
    assert suite.repeat_for(case, 5) == 5


def test_an_unknown_key_is_named_by_its_path() -> None:
    found = issues(BASE + "      - {kind: contains_any, wrods: [a]}\n")
    assert "cases[0].expect[0].wrods: Extra inputs are not permitted" in found


def test_an_unknown_kind_and_a_bad_regex_are_named() -> None:
    assert any(i.startswith("cases[0].expect[0]") for i in issues(BASE + "      - {kind: vibes}\n"))
    found = issues(BASE + "      - {kind: regex, pattern: '('}\n")
    assert any(i.startswith("cases[0].expect[0].pattern: not a valid regular expression")
               for i in found)


def test_platform_rules() -> None:
    found = issues(BASE + "      - {kind: max_platform_chars, platform: myspace}\n")
    assert any("unknown platform 'myspace'" in i for i in found)
    assert any("exactly one of platform or chars" in i
               for i in issues(BASE + "      - {kind: max_platform_chars}\n"))


def test_duplicate_cases_and_bad_yaml() -> None:
    text = (BASE + "      - {kind: greeting}\n"
            "  - name: c\n    turns: [x]\n    expect: [{kind: greeting}]\n")
    assert any("case names must be unique: c" in i for i in issues(text))
    with pytest.raises(InvalidInput, match=r"s\.yaml: not valid YAML"):
        parse_suite("a: [", "s.yaml")
    with pytest.raises(InvalidInput, match="a suite is a mapping"):
        parse_suite("- 1", "s.yaml")


def test_a_missing_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"absent\.yaml"):
        load_suite(tmp_path / "absent.yaml")


def test_every_sample_persona_has_a_valid_suite() -> None:
    personas = {p.stem for p in samples_folder().glob("*.yaml")}
    suites = {p.stem: load_suite(p) for p in SHIPPED.glob("*.yaml")}
    assert personas == set(suites)
    for persona_id, suite in suites.items():
        assert suite.persona == persona_id
        assert any(check.kind == "no_persona_break"
                   for case in suite.cases for check in case.expect)
