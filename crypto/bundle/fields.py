"""Checks of the manifest fields that inbound and outbound manifests share (sections 10.2, 11.2)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from crypto._encoding import check_version, get_str, parse_canonical_object
from crypto.bundle.container import MAX_MANIFEST
from crypto.envelope import MAX_RECIPIENTS, header_length, split_payload_length
from crypto.errors import FormatError

MAX_ENVELOPE = 1 << 40

_ITEM_ID_RE = re.compile(r"\A(?:0|[1-9][0-9]{0,19})\Z")
HEX_RE = re.compile(r"\A[0-9a-f]*\Z")
_DAY_RE = re.compile(r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}\Z")


def valid_envelope_size(size: int) -> bool:
    """Whether ``size`` is a v1 envelope length for some number of recipients (1 to 32).

    Section 10.2: at least the header of one recipient plus a valid payload length (section
    3.4), and at most 2^40.
    """
    if isinstance(size, bool) or not isinstance(size, int) or not 0 < size <= MAX_ENVELOPE:
        return False
    return any(
        split_payload_length(size - header_length(n)) is not None
        for n in range(1, MAX_RECIPIENTS + 1)
        if size > header_length(n)
    )


def check_item_id(value: object, what: str) -> str:
    if not isinstance(value, str) or not _ITEM_ID_RE.match(value):
        raise FormatError(f"{what}: an item id is 1 to 20 decimal digits without leading zeros")
    return value


def hex_field(obj: Mapping[str, Any], name: str, length: int, what: str) -> bytes:
    text = get_str(obj, name, what)
    if len(text) != 2 * length or not HEX_RE.match(text):
        raise FormatError(f"{what}: {name} must be {2 * length} lowercase hex digits")
    return bytes.fromhex(text)


def day_field(obj: Mapping[str, Any], name: str, what: str) -> date:
    text = get_str(obj, name, what)
    if not _DAY_RE.match(text):
        raise FormatError(f"{what}: {name} must be a date YYYY-MM-DD")
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise FormatError(f"{what}: {name} is not a valid date") from None
    return day


def check_day(value: object, what: str) -> None:
    # A datetime is a date too, but its isoformat() would carry a time.
    if not isinstance(value, date) or isinstance(value, datetime):
        raise FormatError(f"{what} must be a date")


def check_bytes(value: object, length: int, what: str) -> None:
    if not isinstance(value, bytes) or len(value) != length:
        raise FormatError(f"{what} must be {length} bytes")


def parse_manifest_object(text: bytes, type_name: str, what: str) -> dict[str, Any]:
    """Canonical JSON text of an object, then its type, then its version."""
    try:
        decoded = text.decode("utf-8")
    except UnicodeDecodeError:
        raise FormatError(f"{what}: not UTF-8") from None
    obj = parse_canonical_object(decoded, max_bytes=MAX_MANIFEST, what=what)
    if obj.get("type") != type_name:
        raise FormatError(f"{what}: type must be {type_name!r}")
    check_version(obj.get("version"), what, require_integer=False)
    return obj
