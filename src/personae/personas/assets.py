"""A persona's files: avatars and Character Card assets, checked and described once.

An asset is stored by the SHA-256 of its bytes, scoped to its persona, and named by the
definition (:class:`~personae.personas.schema.PersonaAsset`). Its media type comes from
the bytes, never from what a client or a card says: an image is opened with Pillow
(within the card pixel bound, and only the formats in ``IMAGE_FORMATS``), a sound is
known by its card extension, and anything else is stored as
``application/octet-stream``, so no stored file is ever served as something a browser
would run.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from personae.errors import FieldIssue, InvalidInput, TooLarge, ValidationFailed
from personae.personas import card_files
from personae.personas.schema import PersonaAsset, PersonaDefinition

OCTET_STREAM = "application/octet-stream"
AVATAR_MEDIA_TYPES = ("image/png", "image/jpeg", "image/webp", "image/gif")
IMAGE_EXTENSIONS = frozenset({"png", "jpg", "jpeg", "webp", "gif", "bmp"})
AUDIO_MEDIA_TYPES = {"mp3": "audio/mpeg", "wav": "audio/wav", "ogg": "audio/ogg",
                     "oga": "audio/ogg", "opus": "audio/opus", "flac": "audio/flac",
                     "m4a": "audio/mp4", "aac": "audio/aac", "weba": "audio/webm"}
_EXTENSION_OF = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp",
                 "image/gif": "gif", "image/bmp": "bmp"}
_DATA_URI = re.compile(r"data:(?P<type>[\w.+-]+/[\w.+-]+)?(?P<params>(?:;[^;,]*)*?)"
                       r"(?P<b64>;base64)?,(?P<payload>.*)", re.DOTALL | re.IGNORECASE)

Blobs = dict[str, bytes]  # sha256 -> the bytes


@dataclass(frozen=True, slots=True)
class AssetLimits:
    """Bounds on a persona's files (``PERSONAE_MAX_ASSET_BYTES``, ``..._PERSONA_ASSETS``)."""

    max_bytes: int = 8 * 1024 * 1024
    max_count: int = 256


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def describe(data: bytes, *, name: str, type_: str = "icon", ext: str = "",
             uri: str | None = None, what: str = "asset",
             limits: AssetLimits = AssetLimits()) -> PersonaAsset:
    """The asset entry for ``data``; icons and image extensions must be readable images."""
    if len(data) > limits.max_bytes:
        raise TooLarge(f"{what} is {len(data):,} bytes; at most {limits.max_bytes:,} "
                            "bytes per file (PERSONAE_MAX_ASSET_BYTES)",
                            {"limit": limits.max_bytes})
    ext = ext.lower().lstrip(".")
    media_type = _media_type(data, ext, must_be_image=type_ == "icon", what=what)
    if not ext or (media_type in _EXTENSION_OF and ext not in IMAGE_EXTENSIONS):
        ext = _EXTENSION_OF.get(media_type, ext)
    return PersonaAsset(name=name, type=type_, ext=ext, media_type=media_type,
                        sha256=sha256_of(data), size=len(data), uri=uri)


def _media_type(data: bytes, ext: str, *, must_be_image: bool, what: str) -> str:
    if must_be_image or ext in IMAGE_EXTENSIONS or card_files.looks_like_image(data):
        image = card_files.open_image(data, what)
        return card_files.image_media_type(image)
    return AUDIO_MEDIA_TYPES.get(ext, OCTET_STREAM)


def decode_data_uri(uri: str, *, what: str, limits: AssetLimits = AssetLimits()) -> bytes:
    """The bytes of a ``data:`` URI (base64 or percent-encoded), bounded before decoding."""
    found = _DATA_URI.fullmatch(uri.strip())
    if found is None:
        raise InvalidInput(f"{what} is not a valid data: URI")
    payload = found["payload"]
    if len(payload) * 3 // 4 > limits.max_bytes:
        raise TooLarge(f"{what} is larger than {limits.max_bytes:,} bytes "
                            "(PERSONAE_MAX_ASSET_BYTES)", {"limit": limits.max_bytes})
    if not found["b64"]:
        return urllib.parse.unquote_to_bytes(payload)
    compact = "".join(payload.split())
    try:
        return base64.b64decode(compact + "=" * (-len(compact) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput(f"{what} is not valid base64") from None


def data_uri(media_type: str, data: bytes) -> str:
    return f"data:{media_type};base64,{base64.b64encode(data).decode('ascii')}"


def inline_avatar(raw: Any, *, folder: Path | None = None, root: Path | None = None,
                  limits: AssetLimits = AssetLimits()) -> tuple[Any, Blobs]:
    """Loose persona input with an inline ``avatar`` made its icon asset "main".

    ``avatar`` may be a ``data:image/...`` URI (request bodies) or, for a file read from
    disk (``folder``), a path relative to that file, inside ``root``. An http(s) URL
    stays as it is: it is a reference, never fetched. Problems name the ``avatar``
    field (422)."""
    if not isinstance(raw, Mapping) or not isinstance(raw.get("avatar"), str):
        return raw, {}
    value = raw["avatar"].strip()
    try:
        if value.lower().startswith("data:"):
            data = decode_data_uri(value, what="avatar", limits=limits)
        elif folder is not None and "://" not in value and value:
            data = _read_beside(value, folder, root or folder, limits)
        else:
            return raw, {}
        asset = describe(data, name="main", what="avatar", limits=limits)
    except TooLarge:
        raise
    except InvalidInput as exc:
        raise ValidationFailed([FieldIssue("avatar", exc.message.removeprefix("avatar "))]) \
            from None
    if asset.media_type not in AVATAR_MEDIA_TYPES:
        raise ValidationFailed([FieldIssue("avatar", "must be a PNG, JPEG, WebP or GIF image")])
    given = raw.get("assets")
    others = [item for item in given if not _is_main_icon(item)] \
        if isinstance(given, list) else []
    data_out = {key: value for key, value in raw.items() if key != "avatar"}
    data_out["assets"] = [asset.model_dump(mode="json", exclude_none=True), *others]
    return data_out, {asset.sha256: data}


def _is_main_icon(item: Any) -> bool:
    return isinstance(item, Mapping) and item.get("type", "icon") == "icon" \
        and item.get("name") == "main"


def _read_beside(relative: str, folder: Path, root: Path, limits: AssetLimits) -> bytes:
    path = (folder / relative).resolve()
    if not path.is_relative_to(root.resolve()):
        raise InvalidInput(f"avatar file '{relative}' is outside {root}")
    if not path.is_file():
        raise InvalidInput(f"avatar file '{relative}' does not exist")
    if path.stat().st_size > limits.max_bytes:
        raise TooLarge(f"avatar file '{relative}' is larger than {limits.max_bytes:,} "
                            "bytes (PERSONAE_MAX_ASSET_BYTES)", {"limit": limits.max_bytes})
    return path.read_bytes()


def check_write(definition: PersonaDefinition, blobs: Mapping[str, bytes],
                limits: AssetLimits) -> Blobs:
    """The blobs a version writes: within the bounds, each matching its hash; only
    those the definition names are kept."""
    if len(definition.assets) > limits.max_count:
        raise ValidationFailed([FieldIssue("assets", f"at most {limits.max_count} assets per "
                                                     "persona (PERSONAE_MAX_PERSONA_ASSETS)")])
    named: dict[str, str] = {}
    for index, asset in enumerate(definition.assets):
        if named.setdefault(asset.sha256, asset.media_type) != asset.media_type:
            raise ValidationFailed([FieldIssue(f"assets[{index}].media_type", "differs from "
                                               "another entry naming the same file")])
    kept: Blobs = {}
    for digest, data in blobs.items():
        if digest not in named:
            continue
        if len(data) > limits.max_bytes:
            raise TooLarge(f"an asset is {len(data):,} bytes; at most "
                                f"{limits.max_bytes:,} (PERSONAE_MAX_ASSET_BYTES)",
                                {"limit": limits.max_bytes})
        if sha256_of(data) != digest:
            raise InvalidInput(f"asset {digest} does not match its bytes")
        kept[digest] = data
    return kept


def with_avatar(definition: PersonaDefinition, asset: PersonaAsset | None) -> PersonaDefinition:
    """The definition with its avatar replaced by ``asset`` (None: removed), and no
    external avatar URL either way."""
    current = definition.avatar_asset
    others = [item for item in definition.assets if item is not current]
    assets = [asset, *others] if asset is not None else others
    return definition.model_copy(update={"assets": assets, "avatar": None})
