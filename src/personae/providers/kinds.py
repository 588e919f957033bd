"""Provider kinds: what ``ProviderConfig.kind`` names, and the factory that builds it.

Kinds are entry points in the ``personae.providers`` group, ``kind = "module:factory"``.
Personae declares its own kinds there too, so a package adds one just by declaring
an entry point, exactly as the built-ins do::

    [project.entry-points."personae.providers"]
    mylocal = "mypackage.provider:build"

Discovery reads installed metadata once; a kind's module is imported only when a
provider of that kind is first built, so an unused kind costs nothing (and needs
none of its dependencies).

One class serves every contract: ``ProviderKinds()`` holds language models; speech
has its own groups (``ProviderKinds(SPEECH_TO_TEXT, contract=SpeechRecogniser)``),
and what a factory returns is checked against the group's contract.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Generic, TypeVar, cast, overload

from personae.config import ProviderConfig, Settings
from personae.errors import PersonaeError, ProviderUnavailable
from personae.providers.base import LLM

ENTRY_POINT_GROUP = "personae.providers"
SPEECH_TO_TEXT = "personae.speech_to_text"
TEXT_TO_SPEECH = "personae.text_to_speech"
VOICE_ACTIVITY = "personae.voice_activity"

T = TypeVar("T")
Factory = Callable[[str, ProviderConfig, Settings], T]
"""Builds the provider called ``name`` from its configuration and the process settings."""
ProviderFactory = Factory[LLM]


@dataclass(frozen=True, slots=True)
class SharedFactory(Generic[T]):
    """A factory whose one instance serves every provider name of its kind.

    For providers that hold something costly and exclusive, such as a loaded model:
    its slots and fair scheduling only work if every name shares them. A registry
    calls it once (with the first name asked for) and reuses the result until it
    is closed.
    """

    factory: Factory[T]

    def __call__(self, name: str, config: ProviderConfig, settings: Settings) -> T:
        return self.factory(name, config, settings)


def shared(factory: Factory[T]) -> SharedFactory[T]:
    """Mark ``factory`` as building one instance per registry (see SharedFactory)."""
    return SharedFactory(factory)


class ProviderKinds(Generic[T]):
    """The kinds of one entry-point group: discovered once, each loaded on first use.

    Kinds registered here win over entry points of the same name; among entry points
    of one name, the first installed distribution on ``sys.path`` wins. ``contract``
    is the runtime-checkable protocol every provider of the group satisfies (LLM by
    default); the type parameter follows from the annotation at the call site.
    """

    @overload
    def __init__(self: ProviderKinds[LLM], group: str = ENTRY_POINT_GROUP) -> None: ...

    @overload
    def __init__(self, group: str = ENTRY_POINT_GROUP, *, contract: object) -> None: ...

    def __init__(self, group: str = ENTRY_POINT_GROUP, *, contract: Any = LLM) -> None:
        self.group = group
        self.contract: Any = contract
        self._entry_points: dict[str, EntryPoint] | None = None
        self._factories: dict[str, Factory[T]] = {}

    @property
    def contract_name(self) -> str:
        return str(getattr(self.contract, "__name__", self.contract))

    def register(self, kind: str, factory: Factory[T]) -> None:
        """Add or replace a kind without packaging it (tests, embedding applications)."""
        self._factories[kind] = factory

    def names(self) -> list[str]:
        return sorted({*self._discovered(), *self._factories})

    def factory(self, kind: str, provider: str) -> Factory[T]:
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
              settings: Settings) -> T:
        """Run the kind's factory; any failure becomes a ProviderUnavailable naming why."""
        factory = self.factory(kind, name)
        try:
            built = factory(name, config, settings)
        except PersonaeError:
            raise
        except ImportError as exc:
            raise ProviderUnavailable(name, f"provider kind {kind!r} cannot be loaded "
                                      f"({exc}){self._install_hint(kind)}") from exc
        except Exception as exc:
            raise ProviderUnavailable(name, f"cannot build a provider of kind {kind!r}: "
                                      f"{type(exc).__name__}: {exc}") from exc
        if not isinstance(built, self.contract):
            raise ProviderUnavailable(name, f"the factory of kind {kind!r} returned "
                                      f"{type(built).__name__}, not "
                                      f"{_article(self.contract_name)}")
        return built

    def _discovered(self) -> dict[str, EntryPoint]:
        if self._entry_points is None:
            found: dict[str, EntryPoint] = {}
            for entry in entry_points(group=self.group):
                found.setdefault(entry.name, entry)
            self._entry_points = found
        return self._entry_points

    def _load(self, entry: EntryPoint, provider: str) -> Factory[T]:
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
        return cast(Factory[T], loaded)

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


def _article(noun: str) -> str:
    """"an LLM", "a SpeechRecogniser": an initialism is read letter by letter."""
    spoken_vowel = "AEIOU" if not noun.isupper() else "AEFHILMNORSX"
    return f"{'an' if noun[:1] in spoken_vowel else 'a'} {noun}"
