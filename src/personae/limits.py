"""Bounds on structured input: how deeply JSON or YAML may nest, no YAML aliases, and
no text that is not Unicode (a JSON escape of half a surrogate pair).

Parsers and serialisers recurse, so a document nested thousands of levels deep ends
in a RecursionError far from where it came in; and a few hundred bytes of YAML with
nested aliases ("billion laughs") expand to gigabytes. Every document that enters
(request bodies, persona files, Character Cards, sync folders, CLI values) is read
through here instead, with a 400 that says what the bound is. A lone surrogate
(``"\\ud800"``) is valid JSON but no character: databases, encoders and models refuse
it far from the request, so it is refused here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any, TypeVar

import yaml
from yaml.composer import Composer, ComposerError
from yaml.constructor import SafeConstructor
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, SequenceNode
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import Resolver
from yaml.scanner import Scanner

from personae.errors import InvalidInput

MAX_DEPTH = 64  # deepest nesting of objects/arrays a document or value may have
_CONTAINERS = (dict, list, tuple)
# A JSON escape of a surrogate code point: the only way JSON text can hold a lone one.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_N = TypeVar("_N", bound=Node)


class NestedTooDeep(InvalidInput):
    """A document or value nests objects/arrays deeper than allowed."""

    def __init__(self, what: str, limit: int = MAX_DEPTH) -> None:
        super().__init__(f"{what} is nested deeper than {limit} levels",
                         {"max_depth": limit})


def nesting_depth(value: Any, limit: int = MAX_DEPTH) -> int:
    """How many levels of objects/arrays ``value`` nests (a scalar is 0), counted up
    to ``limit + 1``: level by level, without recursion, so any depth is safe."""
    level = [value] if isinstance(value, _CONTAINERS) else []
    depth = 0
    while level and depth <= limit:
        depth += 1
        inner: list[Any] = []
        for container in level:
            items = container.values() if isinstance(container, dict) else container
            inner.extend([item for item in items if isinstance(item, _CONTAINERS)])
        level = inner
    return depth


def check_depth(value: Any, what: str, limit: int = MAX_DEPTH) -> Any:
    """``value`` itself, or :class:`NestedTooDeep` naming ``what``."""
    if nesting_depth(value, limit) > limit:
        raise NestedTooDeep(what, limit)
    return value


def load_json(data: str | bytes, what: str, limit: int = MAX_DEPTH) -> Any:
    """``json.loads`` with the depth bound and no lone surrogates; malformed JSON still
    raises ValueError."""
    try:
        value = json.loads(data)
    except RecursionError:
        raise NestedTooDeep(what, limit) from None
    check_depth(value, what, limit)
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if _SURROGATE_ESCAPE.search(raw):
        check_unicode(value, what)
    return value


class NotUnicode(InvalidInput):
    """A string holds a lone surrogate: an escape of half a surrogate pair."""

    def __init__(self, what: str) -> None:
        super().__init__(f"{what} holds a lone surrogate escape (such as \\ud800), "
                         "which is not a character; send text as valid UTF-8",
                         {"reason": "lone_surrogate"})


def check_unicode(value: Any, what: str) -> Any:
    """``value`` itself, or :class:`NotUnicode` if any string (key or value) in it
    cannot be encoded as UTF-8; iterative, like :func:`nesting_depth`."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise NotUnicode(what) from None
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list | tuple):
            pending.extend(item)
    return value


class _BoundedComposer(Composer):
    """Builds YAML nodes, refusing aliases and nesting deeper than MAX_DEPTH."""

    check_event: Callable[..., bool]  # from the parser it is mixed with
    peek_event: Callable[[], Any]
    _depth = 0

    def _refuse(self, problem: str) -> None:
        raise ComposerError(None, None, problem, self.peek_event().start_mark)

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        if self.check_event(AliasEvent):
            self._refuse(f"YAML aliases (*{self.peek_event().anchor}) are not accepted")
        return super().compose_node(parent, index)

    def compose_sequence_node(self, anchor: Any) -> SequenceNode:
        return self._nested(super().compose_sequence_node, anchor)

    def compose_mapping_node(self, anchor: Any) -> MappingNode:
        return self._nested(super().compose_mapping_node, anchor)

    def _nested(self, compose: Callable[[Any], _N], anchor: Any) -> _N:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                self._refuse(f"nested deeper than {MAX_DEPTH} levels")
            return compose(anchor)
        finally:
            self._depth -= 1


class _PyBoundedLoader(Reader, Scanner, Parser, _BoundedComposer, SafeConstructor, Resolver):
    def __init__(self, stream: str) -> None:
        Reader.__init__(self, stream)
        Scanner.__init__(self)
        Parser.__init__(self)
        _BoundedComposer.__init__(self)
        SafeConstructor.__init__(self)
        Resolver.__init__(self)


_Loader: Callable[[str], Any] = _PyBoundedLoader
try:  # libyaml's parser where PyYAML has it, for speed; the composer stays ours
    from yaml._yaml import CParser

    class _CBoundedLoader(_BoundedComposer, CParser, SafeConstructor, Resolver):
        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            _BoundedComposer.__init__(self)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)

    _Loader = _CBoundedLoader
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    pass


def load_yaml(text: str) -> Any:
    """``yaml.safe_load`` without aliases and nested at most MAX_DEPTH levels; errors
    are ``yaml.YAMLError`` with the line (``problem_mark``) as usual."""
    loader = _Loader(text)
    try:
        return loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        if exc.problem == "exceeded maximum nesting depth":  # libyaml's own, far deeper, bound
            raise ComposerError(None, None, f"nested deeper than {MAX_DEPTH} levels",
                                exc.problem_mark) from None
        raise
    finally:
        loader.dispose()
