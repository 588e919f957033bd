"""A card's files both ways: asset entries resolved on import, their URIs planned on export.

A V3 card lists its files in ``data.assets`` (``{type, uri, name, ext}``). On import
each URI is resolved where the container keeps it: ``embeded://path`` in a CHARX
archive, ``__asset:N`` in a RisuAI PNG's ``chara-ext-asset_:N`` chunk, ``data:`` in
the URI itself, and ``ccdefault:`` in a PNG is the PNG's own image (the avatar, unless
it is the placeholder drawn for a persona without one). An
http(s) URI is kept as a reference and never fetched. On export every file the
persona has is written into the container and its URI rewritten to match, so an
exported card never points at a file it does not contain.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from personae.errors import InvalidInput, TooLarge
from personae.personas import card_files
from personae.personas.assets import (
    AssetLimits,
    Blobs,
    data_uri,
    decode_data_uri,
    describe,
)
from personae.personas.schema import PersonaAsset, PersonaDefinition

DEFAULT_URI = "ccdefault:"
EMBEDDED = "embeded://"  # sic: the V3 spec's spelling
PNG_ASSET = "__asset:"
DEFAULT_ICON = {"type": "icon", "uri": DEFAULT_URI, "name": "main", "ext": "png"}
# Files read from a card are bounded by the container's caps; the persona service then
# applies PERSONAE_MAX_ASSET_BYTES.
_IMPORT_LIMITS = AssetLimits(max_bytes=card_files.MAX_CHARX_MEMBER_BYTES)
_UNSAFE = re.compile(r"[^A-Za-z0-9._ -]+")


@dataclass
class CardFiles:
    """The persona assets read from a card, and their bytes."""

    assets: list[PersonaAsset] = field(default_factory=list)
    blobs: Blobs = field(default_factory=dict)

    def add(self, asset: PersonaAsset, data: bytes) -> None:
        self.assets.append(asset)
        self.blobs[asset.sha256] = data


def _entries(card: Any, warnings: list[str]) -> Iterator[tuple[int, dict[str, Any], str]]:
    """The asset entries of a V3 card with a text URI, as (index, entry, uri)."""
    data = card.get("data") if isinstance(card, dict) else None
    listed = data.get("assets") if isinstance(data, dict) else None
    if not isinstance(listed, list):
        return
    for index, entry in enumerate(listed):
        uri = entry.get("uri") if isinstance(entry, dict) else None
        if not isinstance(uri, str):
            warnings.append(f"data.assets[{index}] has no uri; left out")
            continue
        yield index, entry, uri.strip()


def _text(entry: dict[str, Any], key: str, fallback: str) -> str:
    value = entry.get(key)
    return value.strip() if isinstance(value, str) and value.strip() else fallback


def _add(files: CardFiles, index: int, entry: dict[str, Any], uri: str, data: bytes,
         warnings: list[str]) -> None:
    """Describe one card file; one that cannot be read is left out with a warning."""
    name = _text(entry, "name", f"asset-{index}")
    try:
        asset = describe(data, name=name, type_=_text(entry, "type", "other"),
                         ext=_text(entry, "ext", ""), uri=uri, what=f"asset '{name}'",
                         limits=_IMPORT_LIMITS)
    except TooLarge:
        raise
    except InvalidInput as exc:
        warnings.append(f"data.assets[{index}]: {exc.message}; left out")
        return
    files.add(asset, data)


def _elsewhere(files: CardFiles, index: int, entry: dict[str, Any], uri: str, where: str,
               warnings: list[str]) -> None:
    """A URI the container does not resolve itself: data:, a link, or a dangling path."""
    if uri.lower().startswith("data:"):
        try:
            data = decode_data_uri(uri, what=f"data.assets[{index}]", limits=_IMPORT_LIMITS)
        except TooLarge:
            raise
        except InvalidInput as exc:
            warnings.append(f"{exc.message}; left out")
            return
        _add(files, index, entry, uri, data, warnings)
    elif uri.lower().startswith(("http://", "https://")):
        warnings.append(f"data.assets[{index}] is a link ({uri[:80]}); kept as a reference, "
                        "not fetched")
    elif uri != DEFAULT_URI:
        warnings.append(f"data.assets[{index}] names {uri[:80]!r}, which {where} does not "
                        "contain; left out")


def from_json(card: Any, warnings: list[str]) -> CardFiles:
    files = CardFiles()
    for index, entry, uri in _entries(card, warnings):
        _elsewhere(files, index, entry, uri, "a JSON card", warnings)
    return files


def from_png(content: bytes, texts: dict[str, str], card: Any,
             warnings: list[str]) -> CardFiles:
    """The PNG's own image (card chunks taken out) as icon "main", and RisuAI's assets."""
    image = card_files.strip_card_chunks(content)
    files = CardFiles()
    if card_files.PLACEHOLDER_CHUNK not in texts:
        files.add(describe(image, name="main", ext="png", uri=DEFAULT_URI,
                           what="the card image", limits=_IMPORT_LIMITS), image)
    chunks = {key.removeprefix(card_files.ASSET_CHUNK_PREFIX).lstrip(":"): value
              for key, value in texts.items() if key.startswith(card_files.ASSET_CHUNK_PREFIX)}
    used: set[str] = set()
    for index, entry, uri in _entries(card, warnings):
        number = uri.removeprefix(PNG_ASSET)
        if uri.startswith(PNG_ASSET) and number in chunks:
            used.add(number)
            data = card_files.decode_base64(chunks[number], f"PNG asset chunk {number}")
            _add(files, index, entry, uri, data, warnings)
        elif not (entry.get("type") == "icon" and entry.get("name") == "main"):
            _elsewhere(files, index, entry, uri, "the PNG", warnings)
    if unused := sorted(set(chunks) - used):
        warnings.append(f"PNG asset chunk(s) {', '.join(unused[:5])} are not listed in the "
                        "card's assets; left out")
    return files


def from_charx(content: bytes, names: list[str], card: Any,
               warnings: list[str]) -> CardFiles:
    """The archive's files the card's assets point at; the others are reported."""
    members = set(names)
    entries = list(_entries(card, warnings))
    paths = {uri: uri.removeprefix(EMBEDDED).lstrip("/") for _, _, uri in entries
             if uri.startswith(EMBEDDED)}
    read = card_files.read_charx_files(
        content, [path for path in paths.values() if path in members])
    files = CardFiles()
    for index, entry, uri in entries:
        if uri in paths and paths[uri] in read:
            _add(files, index, entry, uri, read[paths[uri]], warnings)
        else:
            _elsewhere(files, index, entry, uri, "the archive", warnings)
    if unreferenced := sorted(members - set(read)):
        shown = ", ".join(unreferenced[:5]) + (", ..." if len(unreferenced) > 5 else "")
        warnings.append(f"{len(unreferenced)} file(s) in the CHARX archive are not in the "
                        f"card's assets and were not kept: {shown}")
    return files


# -- export ---------------------------------------------------------------------------


@dataclass
class ExportedAssets:
    """What a container holds: the card's ``assets`` entries and the files they name
    (CHARX: path -> bytes; PNG: chunk keyword -> bytes)."""

    entries: list[dict[str, Any]]
    files: dict[str, bytes] = field(default_factory=dict)


Placer = Callable[[int, PersonaAsset, bytes], dict[str, str]]


def plan(definition: PersonaDefinition, stored: Any, container: str,
         blobs: Mapping[str, bytes] | None) -> ExportedAssets:
    """The asset entries of the exported card for ``container`` (json, png or charx).

    The stored card's entries keep their order and their other keys; a persona file is
    matched to an entry by its URI (the avatar also to the entry of icon "main").
    Entries naming a file the persona no longer has are left out, links and
    ``ccdefault:`` are kept. Files added since import are appended."""
    result = ExportedAssets([])
    place = _placer(definition, container, result)
    avatar = definition.avatar_asset
    given = blobs or {}
    placed: dict[int, dict[str, str]] = {}
    for index, asset in enumerate(definition.assets):
        if asset.sha256 in given:
            placed[index] = place(index, asset, given[asset.sha256])
        elif asset is avatar and container == "png":
            placed[index] = {"uri": DEFAULT_URI, "ext": "png"}
    unused = dict(placed)
    for entry in stored if isinstance(stored, list) else []:
        found = _match(definition, entry, unused, avatar)
        if found is not None:
            result.entries.append({**entry, **unused.pop(found)})
        elif isinstance(entry, dict) and _kept_reference(entry.get("uri")):
            result.entries.append(entry)
    for index, where in unused.items():
        asset = definition.assets[index]
        result.entries.append({"type": asset.type, "name": asset.name, "ext": asset.ext,
                               **where})
    if not isinstance(stored, list) and not any(e.get("type") == "icon" for e in result.entries):
        result.entries.insert(0, dict(DEFAULT_ICON))
    return result


def _match(definition: PersonaDefinition, entry: Any, unused: dict[int, dict[str, str]],
           avatar: PersonaAsset | None) -> int | None:
    if not isinstance(entry, dict):
        return None
    main = entry.get("type") == "icon" and entry.get("name") == "main"
    return next((i for i in unused if main and definition.assets[i] is avatar),
                next((i for i in unused if definition.assets[i].uri == entry.get("uri")), None))


def _kept_reference(uri: Any) -> bool:
    return isinstance(uri, str) and (uri == DEFAULT_URI
                                     or uri.lower().startswith(("http://", "https://")))


def _placer(definition: PersonaDefinition, container: str, result: ExportedAssets) -> Placer:
    """How one file goes into the container: its URI (and extension) in the card."""
    avatar = definition.avatar_asset

    def in_json(_: int, asset: PersonaAsset, data: bytes) -> dict[str, str]:
        return {"uri": data_uri(asset.media_type, data)}

    def in_png(_: int, asset: PersonaAsset, data: bytes) -> dict[str, str]:
        if asset is avatar:
            return {"uri": DEFAULT_URI, "ext": "png"}  # the PNG's own image
        number = str(len(result.files))
        result.files[f"{card_files.ASSET_CHUNK_PREFIX}:{number}"] = data
        return {"uri": PNG_ASSET + number}

    def in_charx(_: int, asset: PersonaAsset, data: bytes) -> dict[str, str]:
        path = _charx_path(asset, result.files)
        result.files[path] = data
        return {"uri": EMBEDDED + path}

    placers = {"json": in_json, "png": in_png, "charx": in_charx}
    return placers[container]


def _charx_path(asset: PersonaAsset, taken: Mapping[str, bytes]) -> str:
    """``assets/{type}/{images|audio|other}/{name}.{ext}``, made safe and unique."""
    kind = "images" if asset.media_type.startswith("image/") else \
        "audio" if asset.media_type.startswith("audio/") else "other"
    folder = _safe(asset.type) or "other"
    name = _safe(asset.name) or "asset"
    suffix = f".{_safe(asset.ext)}" if _safe(asset.ext) else ""
    path = f"assets/{folder}/{kind}/{name}{suffix}"
    number = 2
    while path in taken:
        path = f"assets/{folder}/{kind}/{name}-{number}{suffix}"
        number += 1
    return path


def _safe(text: str) -> str:
    return _UNSAFE.sub("_", text).strip(" .")
