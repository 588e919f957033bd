"""The editor's trait blocks: each one says whether it is text or a list / mapping
written as JSON, a new block starts as text, and an existing one as what it holds."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from html.parser import HTMLParser

from tests.support.web import WebUser

KINDS = [("text", "Text"), ("json", "List / mapping (JSON)")]
TRAITS = {"style": "gentle", "motto": '["looks", "like JSON"]',
          "topics": ["algebra", "geometry"], "pricing": {"per_minute": "INR 30"}}


@dataclass
class Element:
    tag: str
    attrs: dict[str, str | None]
    text: str = ""


@dataclass
class Block:
    """One ``[data-trait]`` block: its elements in document order."""

    in_template: bool
    elements: list[Element] = field(default_factory=list)

    def one(self, marker: str) -> Element:
        found = [e for e in self.elements if marker in e.attrs]
        assert len(found) == 1, (marker, found)
        return found[0]

    def by_id(self, element_id: str | None) -> Element:
        return next(e for e in self.elements if e.attrs.get("id") == element_id)

    def label_of(self, element: Element) -> str:
        return next(e.text.strip() for e in self.elements
                    if e.tag == "label" and e.attrs.get("for") == element.attrs["id"])

    def options(self) -> list[Element]:
        return [e for e in self.elements if e.tag == "option"]


class Blocks(HTMLParser):
    """Every trait block of a page, those in the new-block ``<template>`` marked so."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[Block] = []
        self._block: Block | None = None
        self._open: Element | None = None
        self._template = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "template":
            self._template = True
        elif tag == "li" and "data-trait" in found:
            self._block = Block(self._template)
            self.blocks.append(self._block)
        elif self._block is not None:
            self._open = Element(tag, found)
            self._block.elements.append(self._open)

    def handle_endtag(self, tag: str) -> None:
        if tag == "template":
            self._template = False
        elif tag == "li":
            self._block = None
        self._open = None

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self._open.text += data


def blocks_of(html: str) -> list[Block]:
    parser = Blocks()
    parser.feed(html)
    return parser.blocks


def kind_of(block: Block) -> str:
    """The kind the block's labelled choice offers and has selected."""
    choice = block.one("data-trait-kind")
    assert choice.tag == "select" and block.label_of(choice) == "Block kind"
    options = block.options()
    assert [(o.attrs["value"], o.text.strip()) for o in options] == KINDS
    selected = [o.attrs["value"] for o in options if "selected" in o.attrs]
    assert len(selected) == 1, selected
    return str(selected[0])


def hint_of(block: Block) -> str:
    """The hint the block's text area is described by."""
    area = block.one("data-trait-text")
    return block.by_id(area.attrs.get("aria-describedby")).text.strip()


async def test_each_block_shows_the_kind_of_what_it_holds(alice: WebUser) -> None:
    """By the value, not its look: a text that reads like JSON stays text."""
    created = await alice.api("POST", "/v1/personas", json={
        "definition": {"id": "tutor", "name": "Tutor", "traits": TRAITS}})
    assert created.status_code == 201, created.text
    html = (await alice.page("/personas/alice/tutor")).text
    blocks = {b.one("data-trait-name").attrs["value"]: b for b in blocks_of(html)
              if not b.in_template}
    assert list(blocks) == list(TRAITS)
    kinds = {name: kind_of(block) for name, block in blocks.items()}
    assert kinds == {"style": "text", "motto": "text", "topics": "json", "pricing": "json"}
    for name, block in blocks.items():
        text = block.one("data-trait-text").text
        shown = text if kinds[name] == "text" else json.loads(text)
        assert shown == TRAITS[name], name
        assert ("JSON" in hint_of(block)) is (kinds[name] == "json"), name


async def test_a_new_block_starts_as_text(alice: WebUser) -> None:
    created = await alice.api("POST", "/v1/personas", json={
        "definition": {"id": "tutor", "name": "Tutor", "traits": {"topics": ["algebra"]}}})
    assert created.status_code == 201, created.text
    for path in ("/personas/new", "/personas/alice/tutor"):
        html = (await alice.page(path)).text
        new = [b for b in blocks_of(html) if b.in_template]
        assert len(new) == 1, path
        assert kind_of(new[0]) == "text"
        assert new[0].one("data-trait-text").text == ""
        assert "JSON" not in hint_of(new[0])
        assert 'data-add-trait' in html
