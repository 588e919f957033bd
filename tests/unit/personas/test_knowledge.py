"""Knowledge ranking: relevant items first, unrelated ones left out."""

from personae.personas.knowledge import KnowledgeIndex
from personae.personas.schema import KnowledgeItem

ITEMS = [
    KnowledgeItem(id="manglik", title="Manglik dosha",
                  content="Mars in the seventh house; remedy: kumbh vivah"),
    KnowledgeItem(title="Muhurat", content="Auspicious wedding dates fall in winter months"),
    KnowledgeItem(content="Emerald is worn for Mercury", tags=["gemstones"]),
]


def test_best_match_first_and_unrelated_items_left_out() -> None:
    index = KnowledgeIndex(ITEMS)
    assert [r.label for r in index.top("remedy for manglik dosha?")] == ["manglik"]
    assert [r.label for r in index.top("which gemstones suit me")] == ["item-2"]
    assert index.top("quantum chromodynamics") == []
    assert index.top("") == []


def test_an_empty_knowledge_base_ranks_nothing() -> None:
    assert KnowledgeIndex([]).top("anything") == []
