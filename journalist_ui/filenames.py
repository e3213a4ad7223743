"""Names for decrypted files, made safe from hostile metadata.

The filename inside an envelope comes from the source's system, or from whoever crafted the
envelope; the station never uses it as given. On top of :func:`crypto.clean_filename` (which
keeps the last path component and removes control characters), it removes every invisible or
direction-changing character, leading dots (hidden files, ``..``) and a leading dash (taken
for an option by shell commands), and keeps names short enough for a numbered variant.
"""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Iterator

from crypto import Kind, clean_filename

#: Longest name (UTF-8 bytes) kept from the metadata; leaves room for " (NNN)" within the
#: 255 bytes most file systems allow.
MAX_NAME_BYTES = 200
#: Longest extension kept apart from the stem when a name is shortened or numbered.
MAX_EXTENSION_BYTES = 16
#: How many numbered variants of a name are tried before giving up.
MAX_VARIANTS = 9999

_FALLBACK_NAMES = {
    Kind.MESSAGE: "message-{}.txt",
    Kind.REPLY: "reply-{}.txt",
    Kind.FILE: "file-{}",
}


def _hidden(char: str) -> bool:
    """Control, format (bidi overrides, zero-width), private-use, unassigned, line breaks."""
    category = unicodedata.category(char)
    return category[0] == "C" or category in ("Zl", "Zp")


def safe_filename(raw: str) -> str:
    """The name as it may appear on disk; empty when nothing usable is left."""
    name = "".join(
        " " if unicodedata.category(c) == "Zs" else c for c in clean_filename(raw) if not _hidden(c)
    )
    name = name.strip(" ").lstrip(".").strip(" .")
    if name.startswith("-"):
        name = "_" + name[1:]
    if len(name.encode("utf-8")) > MAX_NAME_BYTES:
        stem, extension = _split(name)
        room = MAX_NAME_BYTES - len(extension.encode("utf-8"))
        stem = stem.encode("utf-8")[:room].decode("utf-8", "ignore").rstrip(" .")
        name = stem + extension
    return name


def output_name(kind: Kind, filename: str, sha256_hex: str) -> str:
    """The preferred name for decrypted content: the cleaned filename, or a fallback."""
    name = safe_filename(filename) if kind is Kind.FILE else ""
    return name or _FALLBACK_NAMES[kind].format(sha256_hex[:8])


def candidates(name: str) -> Iterator[str]:
    """``name``, then ``stem (1).ext``, ``stem (2).ext``, ... (never an existing file)."""
    yield name
    stem, extension = _split(name)
    for number in range(1, MAX_VARIANTS + 1):
        yield f"{stem} ({number}){extension}"


def _split(name: str) -> tuple[str, str]:
    stem, extension = os.path.splitext(name)
    if not stem or len(extension.encode("utf-8")) > MAX_EXTENSION_BYTES:
        return name, ""
    return stem, extension


def printable(text: str) -> str:
    """Text safe to show on a terminal: invisible characters shown as escapes."""
    return "".join(f"\\u{ord(c):04x}" if _hidden(c) or c == "\\" else c for c in text)
