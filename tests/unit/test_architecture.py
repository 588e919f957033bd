"""The house rules, checked on the source: which rooms may import which.

Every import counts, including those inside functions and under ``TYPE_CHECKING``:
a lazy import still ties two modules together.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = "personae"
CORE = ("personas", "conversations", "panels", "providers", "auth", "voice", "writing",
        "quality", "ops")
ADAPTERS = ("api", "web", "cli")
WEB_FRAMEWORKS = ("fastapi", "typer", "click")
EDGES = ("personae.runtime", "personae.api", "personae.web", "personae.cli")
SQL_ALLOWED = ("personae.db", "personae.errors", "personae.runtime")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def modules() -> dict[str, Path]:
    return {_module_name(p): p for p in (SRC / PACKAGE).rglob("*.py")}


def _resolve(module: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = module.split(".")
    is_package = modules()[module].name == "__init__.py"
    base = package if is_package else package[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def imports_of(module: str) -> Iterator[str]:
    """Every module name ``module`` imports, at any depth in its code."""
    tree = ast.parse(modules()[module].read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(module, node)
            yield target
            for alias in node.names:  # ``from personae.panels import report`` is a module
                if f"{target}.{alias.name}" in modules():
                    yield f"{target}.{alias.name}"


def _internal(name: str) -> str | None:
    """The project module an import lands on (a package means its __init__)."""
    while name and name not in modules():
        name = name.rpartition(".")[0]
    return name or None


@cache
def graph() -> dict[str, frozenset[str]]:
    edges = {}
    for module in modules():
        targets = {_internal(name) for name in imports_of(module)
                   if name == PACKAGE or name.startswith(PACKAGE + ".")}
        edges[module] = frozenset(t for t in targets if t and t != module and
                                  not module.startswith(t + "."))  # a package's own __init__
    return edges


def _cycles() -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph()[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph()):
        if node not in index:
            visit(node)
    return found


def _in(module: str, packages: tuple[str, ...]) -> bool:
    return any(module == f"{PACKAGE}.{p}" or module.startswith(f"{PACKAGE}.{p}.")
               for p in packages)


def _violations(owners: tuple[str, ...], forbidden: tuple[str, ...]) -> list[str]:
    return sorted(f"{module} imports {name}" for module in modules() if _in(module, owners)
                  for name in imports_of(module)
                  if any(name == f or name.startswith(f + ".") for f in forbidden))


def test_the_rules_see_every_module() -> None:
    assert "personae.runtime" in modules()
    assert "personae.personas.prepared" in graph()["personae.conversations.engine"]


def test_no_import_cycles() -> None:
    assert _cycles() == []


def test_core_never_imports_edges_or_web_frameworks() -> None:
    assert _violations(CORE, (*EDGES, *WEB_FRAMEWORKS)) == []


def test_providers_never_import_personas_or_capabilities() -> None:
    capabilities = tuple(f"{PACKAGE}.{p}" for p in CORE if p != "providers")
    assert _violations(("providers",), capabilities) == []


def test_panels_never_import_conversations() -> None:
    assert _violations(("panels",), (f"{PACKAGE}.conversations",)) == []


def test_adapters_never_import_stores() -> None:
    stores = tuple(m for m in modules() if _is_store(m))
    assert _violations(ADAPTERS, stores) == []


def _is_store(module: str) -> bool:
    """``x.store`` or ``x.<thing>_store``: the modules that hold a package's SQL."""
    return module.rsplit(".", 1)[-1].endswith("store")


def test_only_stores_and_db_touch_sql() -> None:
    offenders = sorted(f"{module} imports {name}" for module in modules()
                       if not _is_store(module) and not _in(module, ("db",))
                       and module not in SQL_ALLOWED
                       for name in imports_of(module)
                       if name == "sqlalchemy" or name.startswith("sqlalchemy."))
    assert offenders == []


@pytest.mark.parametrize("package", ["personas", "conversations", "panels", "providers"])
def test_modules_stay_small(package: str) -> None:
    long = sorted(f"{m}: {len(p.read_text().splitlines())} lines" for m, p in modules().items()
                  if _in(m, (package,)) and len(p.read_text().splitlines()) > 450)
    assert long == []
