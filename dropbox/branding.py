"""The newsroom's own face on the source pages: its name, a short introduction per language
and a logo, set by the operator (``dropbox brand``) and kept in the data directory.

``brand.json`` holds the name and the introductions; ``brand-logo`` holds the logo, already
checked and stripped of metadata by :func:`dropbox.logo.clean_logo`, with its media type in
``brand.json``. Both are written atomically; a running server reads them on each request, so
a change shows at once. Everything is plain text, rendered escaped: no markup, no links.

The files are read strictly and bounded: a damaged ``brand.json`` is a
:class:`dropbox.errors.DropboxError` for the CLI and, on the pages, the same as no branding
(the pages must still work).
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Final

from common.files import write_atomic
from dropbox.errors import DropboxError
from dropbox.instance.layout import INSTANCE_FILE
from dropbox.logo import LOGO_TYPES, MAX_LOGO_BYTES, Logo, clean_logo

BRAND_FILE: Final = "brand.json"
LOGO_FILE: Final = "brand-logo"
BRAND_TYPE: Final = "postern-brand"
BRAND_VERSION: Final = 1
#: Longest organisation name, in characters.
MAX_NAME_CHARS: Final = 80
#: Longest introduction, in characters (a short paragraph or two).
MAX_INTRO_CHARS: Final = 1000
_MAX_BRAND_JSON: Final = 64 * 1024


class BrandError(DropboxError):
    """Branding that cannot be set or read; the message is one line for the operator."""


@dataclass(frozen=True)
class Brand:
    """What the operator set; empty fields mean "not set" (the pages then say "Postern")."""

    name: str | None = None
    intros: Mapping[str, str] = field(default_factory=dict)
    logo_type: str | None = None
    logo_sha256: str | None = None

    @property
    def has_logo(self) -> bool:
        return self.logo_type is not None

    def intro(self, language: str, fallback: str) -> str | None:
        """The introduction in ``language``, else in ``fallback``, else None."""
        return self.intros.get(language) or self.intros.get(fallback)


def _check_text(text: str, what: str, limit: int, *, lines: bool) -> str:
    """Plain text without control characters (newlines kept where ``lines``), stripped."""
    text = text.replace("\r\n", "\n").strip()
    if not text:
        raise BrandError(f"the {what} is empty")
    if len(text) > limit:
        raise BrandError(f"the {what} is {len(text)} characters long; at most {limit} are allowed")
    for char in text:
        if char == "\n" and lines:
            continue
        # Cc: control characters; Cf: invisible format characters (bidirectional overrides
        # could make the name read differently from what the operator typed).
        if unicodedata.category(char) in ("Cc", "Cf", "Cs", "Co", "Cn"):
            raise BrandError(
                f"the {what} holds a control or invisible character (U+{ord(char):04X})"
            )
    return text


def check_name(name: str) -> str:
    return _check_text(name, "name", MAX_NAME_CHARS, lines=False)


def check_intro(text: str) -> str:
    return _check_text(text, "introduction", MAX_INTRO_CHARS, lines=True)


# -- reading -----------------------------------------------------------------------------------


def _parse(raw: bytes) -> Brand:
    try:
        document = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise BrandError(f"{BRAND_FILE} is not JSON") from None
    if (
        not isinstance(document, dict)
        or document.get("type") != BRAND_TYPE
        or document.get("version") != BRAND_VERSION
        or not set(document) <= {"type", "version", "name", "intro", "logo"}
    ):
        raise BrandError(f"{BRAND_FILE} is not a Postern brand document")
    name = document.get("name")
    intros = document.get("intro", {})
    logo = document.get("logo")
    if name is not None and (not isinstance(name, str) or check_name(name) != name):
        raise BrandError(f"{BRAND_FILE}: the name is not valid")
    if not isinstance(intros, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and check_intro(v) == v for k, v in intros.items()
    ):
        raise BrandError(f"{BRAND_FILE}: an introduction is not valid")
    logo_type = logo_sha256 = None
    if logo is not None:
        if (
            not isinstance(logo, dict)
            or set(logo) != {"type", "sha256"}
            or logo["type"] not in LOGO_TYPES
            or not isinstance(logo["sha256"], str)
        ):
            raise BrandError(f"{BRAND_FILE}: the logo entry is not valid")
        logo_type, logo_sha256 = logo["type"], logo["sha256"]
    return Brand(name, dict(intros), logo_type, logo_sha256)


def load_brand(data_dir: Path) -> Brand:
    """The branding of the data directory (an empty :class:`Brand` if none was set)."""
    try:
        with (data_dir / BRAND_FILE).open("rb") as handle:
            raw = handle.read(_MAX_BRAND_JSON + 1)
    except FileNotFoundError:
        return Brand()
    except OSError as exc:
        raise BrandError(f"cannot read {BRAND_FILE}: {exc.strerror}") from None
    if len(raw) > _MAX_BRAND_JSON:
        raise BrandError(f"{BRAND_FILE} is too large")
    return _parse(raw)


def load_logo(data_dir: Path, brand: Brand) -> Logo | None:
    """The logo's bytes, if one is set and its file is the one ``brand.json`` names."""
    if brand.logo_type is None:
        return None
    try:
        with (data_dir / LOGO_FILE).open("rb") as handle:
            data = handle.read(MAX_LOGO_BYTES + 1)
    except OSError:
        return None
    if len(data) > MAX_LOGO_BYTES or hashlib.sha256(data).hexdigest() != brand.logo_sha256:
        return None
    return Logo(brand.logo_type, data)


# -- writing -----------------------------------------------------------------------------------


def _save(data_dir: Path, brand: Brand) -> None:
    document: dict[str, object] = {"type": BRAND_TYPE, "version": BRAND_VERSION}
    if brand.name is not None:
        document["name"] = brand.name
    if brand.intros:
        document["intro"] = dict(sorted(brand.intros.items()))
    if brand.logo_type is not None:
        document["logo"] = {"type": brand.logo_type, "sha256": brand.logo_sha256}
    raw = json.dumps(document, ensure_ascii=False, indent=2).encode("utf-8") + b"\n"
    # Readable by the server's user only, like the rest of the data directory.
    write_atomic(data_dir / BRAND_FILE, raw, mode=0o600)


def _require_data_dir(data_dir: Path) -> None:
    if not (data_dir / INSTANCE_FILE).is_file():
        raise BrandError(f"{data_dir} is not a Postern data directory (no {INSTANCE_FILE})")


def set_name(data_dir: Path, name: str) -> Brand:
    _require_data_dir(data_dir)
    brand = replace(load_brand(data_dir), name=check_name(name))
    _save(data_dir, brand)
    return brand


def set_intro(data_dir: Path, language: str, text: str, languages: Collection[str]) -> Brand:
    _require_data_dir(data_dir)
    if language not in languages:
        raise BrandError(
            f"unknown language {language!r}: use one of {', '.join(sorted(languages))}"
        )
    brand = load_brand(data_dir)
    brand = replace(brand, intros={**brand.intros, language: check_intro(text)})
    _save(data_dir, brand)
    return brand


def set_logo(data_dir: Path, data: bytes) -> tuple[Brand, Logo]:
    """Check ``data`` as a PNG, JPEG or WebP image, strip its metadata and keep it."""
    _require_data_dir(data_dir)
    logo = clean_logo(data)
    # The logo file first: brand.json names its hash, so a crash between the two writes
    # leaves the old logo unserved (load_logo refuses it), never a wrong one served.
    write_atomic(data_dir / LOGO_FILE, logo.data, mode=0o600)
    brand = replace(
        load_brand(data_dir),
        logo_type=logo.media_type,
        logo_sha256=hashlib.sha256(logo.data).hexdigest(),
    )
    _save(data_dir, brand)
    return brand, logo


def clear(data_dir: Path, what: str, language: str | None = None) -> Brand:
    """Remove the name, one introduction (or all), the logo, or everything (``all``)."""
    _require_data_dir(data_dir)
    brand = load_brand(data_dir)
    if what == "name":
        brand = replace(brand, name=None)
    elif what == "intro":
        kept = {} if language is None else {k: v for k, v in brand.intros.items() if k != language}
        brand = replace(brand, intros=kept)
    elif what == "logo":
        brand = replace(brand, logo_type=None, logo_sha256=None)
    elif what == "all":
        brand = Brand()
    else:
        raise BrandError(f"nothing called {what!r} to clear")
    if brand == Brand():
        (data_dir / BRAND_FILE).unlink(missing_ok=True)
    else:
        _save(data_dir, brand)
    if brand.logo_type is None:
        (data_dir / LOGO_FILE).unlink(missing_ok=True)
    return brand
