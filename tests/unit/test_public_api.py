"""The package's small public API is a promise: changing it must be deliberate."""

import personae


def test_public_api_is_pinned() -> None:
    assert sorted(personae.__all__) == [
        "PersonaDefinition", "PersonaeError", "__version__", "parse_persona"]
    for name in personae.__all__:
        assert hasattr(personae, name)
