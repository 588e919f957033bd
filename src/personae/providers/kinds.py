"""Provider kinds: what ``ProviderConfig.kind`` names, and the factory that builds it.

Kinds are entry points in the ``personae.providers`` group, ``kind = "module:factory"``.
Personae declares its own kinds there too, so a package adds one just by declaring
an entry point, exactly as the built-ins do::

    [project.entry-points."personae.providers"]
    mylocal = "mypackage.provider:build"

Discovery reads installed metadata once; a kind's module is imported only when a
provider of that kind is first built, so an unused kind costs nothing (and needs
none of its dependencies).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import cast

from personae.config import ProviderConfig, Settings
from personae.errors import PersonaeError, ProviderUnavailable
from personae.providers.base import LLM

ENTRY_POINT_GROUP = "personae.providers"

ProviderFactory = Callable[[str, ProviderConfig, Settings], LLM]
"""Builds the provider called ``name`` from its configuration and the process settings."""


@dataclass(frozen=True, slots=True)
class SharedFactory:
    """A factory whose one instance serves every provider name of its kind.

    For providers that hold something costly and exclusive, such as a loaded model:
    its slots and fair scheduling only work if every name shares them. A registry
    calls it once (with the first name asked for) and reuses the result until it
    is closed.
    """

    factory: ProviderFactory

    def __call__(self, name: str, config: ProviderConfig, settings: Settings) -> LLM:
        return self.factory(name, config, settings)


def shared(factory: ProviderFactory) -> SharedFactory:
    """Mark ``factory`` as building one instance per registry (see SharedFactory)."""
    return SharedFactory(factory)


class ProviderKinds:
    """The kinds one registry knows: discovered once, each loaded on first use.

    Kinds registered here win over entry points of the same name; among entry points
    of one name, the first installed distribution on ``sys.path`` wins.
    """

    def __init__(self, group: str = ENTRY_POINT_GROUP) -> None:
        self.group = group
        self._entry_points: dict[str, EntryPoint] | None = None
        self._factories: dict[str, ProviderFactory] = {}

    def register(self, kind: str, factory: ProviderFactory) -> None:
        """Add or replace a kind without packaging it (tests, embedding applications)."""
        self._factories[kind] = factory

    def names(self) -> list[str]:
        return sorted({*self._discovered(), *self._factories})

    def factory(self, kind: str, provider: str) -> ProviderFactory:
        """The factory for ``kind``, loading its entry point the first time."""
        found = self._factories.get(kind)
        if found is None:
            entry = self._discovered().get(kind)
            if entry is None:
                raise ProviderUnavailable(provider, f"unknown provider kind {kind!r}; "
                                          f"known kinds: {', '.join(self.names()) or 'none'}")
            found = self._factories[kind] = self._load(entry, provider)
        return found

    def build(self, kind: str, name: str, config: ProviderConfig,
              settings: Settings) -> LLM:
        """Run the kind's factory; any failure becomes a ProviderUnavailable naming why."""
        factory = self.factory(kind, name)
        try:
            llm = factory(name, config, settings)
        except PersonaeError:
            raise
        except ImportError as exc:
            raise ProviderUnavailable(name, f"provider kind {kind!r} cannot be loaded "
                                      f"({exc}){self._install_hint(kind)}") from exc
        except Exception as exc:
            raise ProviderUnavailable(name, f"cannot build a provider of kind {kind!r}: "
                                      f"{type(exc).__name__}: {exc}") from exc
        if not isinstance(llm, LLM):
            raise ProviderUnavailable(name, f"the factory of kind {kind!r} returned "
                                      f"{type(llm).__name__}, not an LLM")
        return llm

    def _discovered(self) -> dict[str, EntryPoint]:
        if self._entry_points is None:
            found: dict[str, EntryPoint] = {}
            for entry in entry_points(group=self.group):
                found.setdefault(entry.name, entry)
            self._entry_points = found
        return self._entry_points

    def _load(self, entry: EntryPoint, provider: str) -> ProviderFactory:
        try:
            loaded: object = entry.load()
        except ImportError as exc:
            raise ProviderUnavailable(provider, f"provider kind {entry.name!r} cannot be "
                                      f"loaded ({exc}){self._install_hint(entry.name)}",
                                      ) from exc
        except AttributeError as exc:
            raise ProviderUnavailable(provider, f"provider kind {entry.name!r}: "
                                      f"{entry.value} not found ({exc})") from exc
        if not callable(loaded):
            raise ProviderUnavailable(provider, f"provider kind {entry.name!r}: "
                                      f"{entry.value} is not callable")
        return cast(ProviderFactory, loaded)

    def _install_hint(self, kind: str) -> str:
        """``pip install 'dist[kind]'`` when the declaring package has an extra named
        after the kind (as ``personae[embedded]``), else the package's name."""
        entry = self._discovered().get(kind)
        dist = entry.dist if entry is not None else None
        if dist is None:
            return ""
        extras = dist.metadata.get_all("Provides-Extra") or []
        if kind in extras:
            return f"; install it with: pip install '{dist.name}[{kind}]'"
        return f"; it is declared by {dist.name} {dist.version}"
