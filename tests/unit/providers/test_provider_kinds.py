"""Provider kinds: built-ins and plugins found through one entry-point group, built lazily."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from personae.config import ProviderConfig, Settings
from personae.errors import ProviderError, ProviderUnavailable
from personae.providers import kinds
from personae.providers.base import LLM, ChatMessage, ModelChoice
from personae.providers.fake import ScriptedLLM
from personae.providers.kinds import ENTRY_POINT_GROUP, ProviderKinds, shared
from personae.providers.llama_cpp import EmbeddedLLM
from personae.providers.openai_compat import OpenAICompatLLM
from personae.providers.registry import ProviderRegistry
from personae.providers.streams import complete

BUILT_IN = {"embedded", "openai", "scripted"}
HELLO = [ChatMessage("user", "hi")]

PLUGIN_MODULE = '''
from personae.providers.base import Finished, TextDelta, Usage

GREETING = "not a factory"


class PluginLLM:
    context_window = 1024

    def __init__(self, name, text):
        self.name, self.text = name, text

    async def stream(self, messages, settings):
        yield TextDelta(self.text)
        yield Finished(Usage(1, 1), "stop", self.name, "plugin-model")

    def count_tokens(self, text):
        return len(text.split())

    async def aclose(self):
        return None


def build(name, config, settings):
    return PluginLLM(name, f"{name} on {config.model} says hello")


def needs_a_missing_package(name, config, settings):
    import thirdparty_plugin_missing_dependency  # noqa: F401
'''

PLUGIN_ENTRY_POINTS = f"""
[{ENTRY_POINT_GROUP}]
thirdparty = thirdparty_plugin:build
gpu = thirdparty_plugin:needs_a_missing_package
misnamed = thirdparty_plugin:no_such_factory
constant = thirdparty_plugin:GREETING
"""

PLUGIN_METADATA = """\
Metadata-Version: 2.1
Name: thirdparty-plugin
Version: 0.1
Provides-Extra: gpu
"""


def settings_with(tmp_path: Path, providers: dict[str, dict[str, Any]]) -> Settings:
    configs = {name: ProviderConfig(**config) for name, config in providers.items()}
    return Settings(data_dir=tmp_path, providers=configs, default_provider="embedded")


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A third-party distribution installed the way pip leaves one: module + dist-info."""
    site = tmp_path / "site"
    info = site / "thirdparty_plugin-0.1.dist-info"
    info.mkdir(parents=True)
    (site / "thirdparty_plugin.py").write_text(PLUGIN_MODULE)
    (info / "METADATA").write_text(PLUGIN_METADATA)
    (info / "entry_points.txt").write_text(PLUGIN_ENTRY_POINTS)
    monkeypatch.syspath_prepend(str(site))
    yield site
    sys.modules.pop("thirdparty_plugin", None)


def test_built_in_kinds_are_declared_as_entry_points() -> None:
    declared = {entry.name: entry for entry in entry_points(group=ENTRY_POINT_GROUP)}
    assert set(declared) >= BUILT_IN
    providers = [declared[kind].dist for kind in BUILT_IN]
    assert all(dist is not None and dist.name == "personae" for dist in providers)


async def test_built_in_kinds_build_through_their_entry_points(tmp_path: Path) -> None:
    registry = ProviderRegistry(settings_with(tmp_path, {
        "remote": {"kind": "openai", "base_url": "http://127.0.0.1:9/v1", "model": "m"},
        "fake": {"kind": "scripted", "context_window": 512}}))
    assert set(registry.known_kinds()) >= BUILT_IN
    assert isinstance(registry.get("remote"), OpenAICompatLLM)
    fake = registry.get("fake")
    assert isinstance(fake, ScriptedLLM) and fake.context_window == 512
    await registry.aclose()


def test_entry_points_are_read_once_per_registry(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    def counting(*, group: str) -> Any:
        calls.append(group)
        return entry_points(group=group)

    monkeypatch.setattr(kinds, "entry_points", counting)
    registry = ProviderRegistry(settings_with(tmp_path, {
        "a": {"kind": "scripted"}, "b": {"kind": "scripted"}}))
    registry.get("a")
    registry.get("b")
    registry.known_kinds()
    assert calls == [ENTRY_POINT_GROUP]


def test_an_openai_provider_never_imports_the_embedded_model(tmp_path: Path) -> None:
    script = textwrap.dedent(f"""
        import sys
        from personae.config import ProviderConfig, Settings
        from personae.providers.registry import ProviderRegistry

        config = ProviderConfig(kind="openai", base_url="http://127.0.0.1:9/v1", model="m")
        registry = ProviderRegistry(Settings(data_dir={str(tmp_path)!r},
                                             providers={{"remote": config}}))
        print(type(registry.get("remote")).__name__)
        heavy = ("llama_cpp", "personae.providers.llama_cpp", "personae.providers.fake")
        print(sorted(name for name in heavy if name in sys.modules))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            check=True, timeout=60)
    assert result.stdout.split("\n")[:2] == ["OpenAICompatLLM", "[]"]


def test_register_kind_builds_programmatic_providers(tmp_path: Path) -> None:
    registry = ProviderRegistry(settings_with(tmp_path, {
        "one": {"kind": "memory", "context_window": 256}}))
    built: list[str] = []

    def factory(name: str, config: ProviderConfig, settings: Settings) -> LLM:
        built.append(name)
        return ScriptedLLM(name, context_window=config.context_window)

    registry.register_kind("memory", factory)
    assert "memory" in registry.known_kinds()
    llm = registry.get("one")
    assert (llm.name, llm.context_window, built) == ("one", 256, ["one"])
    assert registry.get("one") is llm and built == ["one"]


def test_register_kind_overrides_an_entry_point(tmp_path: Path) -> None:
    registry = ProviderRegistry(settings_with(tmp_path, {"remote": {"kind": "openai"}}))
    registry.register_kind("openai", lambda name, config, settings: ScriptedLLM(name))
    assert isinstance(registry.get("remote"), ScriptedLLM)


async def test_third_party_entry_point_is_discovered(tmp_path: Path, plugin: Path) -> None:
    registry = ProviderRegistry(settings_with(tmp_path, {
        "plugin": {"kind": "thirdparty", "model": "m1"}}))
    assert {"thirdparty", *BUILT_IN} <= set(registry.known_kinds())
    llm, settings = registry.resolve(ModelChoice(provider="plugin"))
    completion = await complete(llm, HELLO, settings)
    assert (completion.text, completion.provider) == ("plugin on m1 says hello", "plugin")
    assert type(registry.get("plugin")).__module__ == "thirdparty_plugin"


@pytest.mark.parametrize(("kind", "message"), [
    ("gpu", r"No module named 'thirdparty_plugin_missing_dependency'.*"
            r"pip install 'thirdparty-plugin\[gpu\]'"),
    ("misnamed", r"thirdparty_plugin:no_such_factory not found"),
    ("constant", r"thirdparty_plugin:GREETING is not callable"),
])
def test_broken_plugins_are_unavailable_with_the_reason(
        tmp_path: Path, plugin: Path, kind: str, message: str) -> None:
    registry = ProviderRegistry(settings_with(tmp_path, {"p": {"kind": kind}}))
    with pytest.raises(ProviderUnavailable, match=message) as caught:
        registry.get("p")
    assert (caught.value.provider, caught.value.status) == ("p", 503)


def test_unknown_kind_fails_at_build_time_naming_the_known_ones(tmp_path: Path) -> None:
    registry = ProviderRegistry(settings_with(tmp_path, {"x": {"kind": "nope"}}))
    with pytest.raises(ProviderUnavailable, match="unknown provider kind 'nope'") as caught:
        registry.resolve(ModelChoice(provider="x"))
    known = caught.value.message.split("known kinds: ", 1)[1].split(", ")
    assert set(known) >= BUILT_IN and caught.value.provider == "x"


def test_kind_must_not_be_empty() -> None:
    with pytest.raises(ValidationError):
        ProviderConfig(kind="")


def test_a_factory_that_fails_or_returns_no_llm_is_unavailable(tmp_path: Path) -> None:
    def broken(name: str, config: ProviderConfig, settings: Settings) -> LLM:
        raise ValueError("bad option")

    def wrong(name: str, config: ProviderConfig, settings: Settings) -> LLM:
        return "not a provider"  # type: ignore[return-value]

    registry = ProviderRegistry(settings_with(tmp_path, {
        "b": {"kind": "broken"}, "w": {"kind": "wrong"}}))
    registry.register_kind("broken", broken)
    registry.register_kind("wrong", wrong)
    with pytest.raises(ProviderUnavailable, match="kind 'broken': ValueError: bad option"):
        registry.get("b")
    with pytest.raises(ProviderUnavailable, match="returned str, not an LLM"):
        registry.get("w")


def test_provider_errors_from_a_factory_pass_through(tmp_path: Path) -> None:
    def refusing(name: str, config: ProviderConfig, settings: Settings) -> LLM:
        raise ProviderError(name, "no key configured")

    kinds_here = ProviderKinds()
    kinds_here.register("refusing", refusing)
    registry = ProviderRegistry(settings_with(tmp_path, {"r": {"kind": "refusing"}}),
                                kinds_here)
    with pytest.raises(ProviderError, match="r: no key configured") as caught:
        registry.get("r")
    assert type(caught.value) is ProviderError


async def test_a_shared_kind_is_built_once_per_registry(tmp_path: Path) -> None:
    built: list[ScriptedLLM] = []

    def factory(name: str, config: ProviderConfig, settings: Settings) -> LLM:
        built.append(ScriptedLLM("pool"))
        return built[-1]

    settings = settings_with(tmp_path, {"a": {"kind": "pool"}, "b": {"kind": "pool"}})
    registry = ProviderRegistry(settings)
    registry.register_kind("pool", shared(factory))
    assert registry.get("a") is registry.get("b") is built[0]
    await registry.aclose()
    assert built[0].closed
    assert registry.get("b") is built[1]  # closed, then built afresh
    other = ProviderRegistry(settings)
    other.register_kind("pool", shared(factory))
    assert other.get("a") is built[2]


def test_embedded_is_one_model_for_every_name(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    loads: list[Settings] = []

    def load(settings: Settings) -> ScriptedLLM:
        loads.append(settings)
        return ScriptedLLM("embedded")

    monkeypatch.setattr(EmbeddedLLM, "from_settings", staticmethod(load))
    settings = settings_with(tmp_path, {"local": {"kind": "embedded"}})
    registry = ProviderRegistry(settings)
    assert registry.get("local") is registry.get("embedded")
    assert loads == [settings]


def test_embedded_without_llama_cpp_says_what_to_install(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # as if not installed
    registry = ProviderRegistry(settings_with(tmp_path, {}))
    with pytest.raises(ProviderUnavailable,
                       match=r"llama_cpp cannot be imported.*pip install") as caught:
        registry.get("embedded")
    assert caught.value.provider == "embedded"


def test_an_import_error_names_the_extra_to_install(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    def load(settings: Settings) -> EmbeddedLLM:
        raise ModuleNotFoundError("No module named 'llama_cpp'", name="llama_cpp")

    monkeypatch.setattr(EmbeddedLLM, "from_settings", staticmethod(load))
    registry = ProviderRegistry(settings_with(tmp_path, {}))
    with pytest.raises(ProviderUnavailable, match=r"pip install 'personae\[embedded\]'"):
        registry.get("embedded")
