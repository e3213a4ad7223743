"""Strict encodings shared by the formats: base64, labels, UTC times, canonical JSON (and its
version member), key-value text.

Every reader here rejects anything docs/format.md section 1 does not allow, so that one
value has exactly one encoding.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from crypto.errors import FormatError, UnsupportedVersion

_B64_RE = re.compile(r"\A[A-Za-z0-9+/]*={0,2}\Z")
_LABEL_FORBIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
_TIME_RE = re.compile(r"\A\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z\Z", re.ASCII)
MAX_LABEL = 128


def b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def b64decode(text: str, *, length: int | None = None, what: str = "value") -> bytes:
    """Decode canonical standard base64, optionally of an exact decoded length."""
    if not isinstance(text, str) or not _B64_RE.match(text) or len(text) % 4:
        raise FormatError(f"{what}: not canonical base64")
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise FormatError(f"{what}: not canonical base64") from exc
    if base64.b64encode(raw).decode("ascii") != text:
        raise FormatError(f"{what}: not canonical base64")
    if length is not None and len(raw) != length:
        raise FormatError(f"{what}: expected {length} bytes, got {len(raw)}")
    return raw


def check_label(label: object, what: str = "label") -> str:
    if not isinstance(label, str):
        raise FormatError(f"{what}: must be a string")
    if not 1 <= len(label) <= MAX_LABEL:
        raise FormatError(f"{what}: must be 1 to {MAX_LABEL} characters")
    if _LABEL_FORBIDDEN.search(label):
        raise FormatError(f"{what}: contains a control character")
    if label != label.strip(" "):
        raise FormatError(f"{what}: must not start or end with a space")
    return label


def format_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str, what: str) -> datetime:
    """Read a UTC time written by :func:`format_time` (and only that form)."""
    if not _TIME_RE.match(value):
        raise FormatError(f"{what}: not a UTC time YYYY-MM-DDTHH:MM:SSZ")
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError as exc:
        raise FormatError(f"{what}: not a valid date and time") from exc


# -- canonical JSON -------------------------------------------------------------------------


def _check_canonical_value(value: object, depth: int = 0) -> None:
    if depth > 16:
        raise FormatError("JSON nested too deeply")
    if isinstance(value, bool) or value is None or isinstance(value, float):
        raise FormatError("canonical JSON allows only objects, arrays, strings and integers")
    if isinstance(value, int):
        if value < 0:
            raise FormatError("canonical JSON allows only non-negative integers")
    elif isinstance(value, str):
        return
    elif isinstance(value, list):
        for item in value:
            _check_canonical_value(item, depth + 1)
    elif isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise FormatError("JSON object keys must be strings")
            _check_canonical_value(item, depth + 1)
    else:
        raise FormatError(f"unsupported JSON value {type(value).__name__}")


def canonical_json(value: Mapping[str, Any]) -> str:
    """Encode per docs/format.md section 1 (sorted keys, no spaces, ASCII escapes)."""
    _check_canonical_value(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def _reject_duplicates(pairs: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, item in pairs:
        if key in result:
            raise FormatError(f"duplicate JSON member {key!r}")
        result[key] = item
    return result


def _reject_constant(name: str) -> object:
    raise FormatError(f"JSON constant {name} is not allowed")


def parse_json(text: str | bytes, *, max_bytes: int, what: str) -> object:
    """Parse JSON strictly: size-bounded, no duplicate members, no NaN or Infinity."""
    if len(text) > max_bytes:
        raise FormatError(f"{what}: larger than {max_bytes} bytes")
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise FormatError(f"{what}: not UTF-8") from exc
    try:
        return json.loads(
            text, object_pairs_hook=_reject_duplicates, parse_constant=_reject_constant
        )
    except RecursionError as exc:
        raise FormatError(f"{what}: nested too deeply") from exc
    except ValueError as exc:  # json.JSONDecodeError is a ValueError
        if isinstance(exc, FormatError):
            raise
        raise FormatError(f"{what}: not valid JSON ({exc.args[0] if exc.args else exc})") from exc


def parse_canonical_object(text: str, *, max_bytes: int, what: str) -> dict[str, Any]:
    """Parse signed canonical JSON text and check it is canonical and an object."""
    value = parse_json(text, max_bytes=max_bytes, what=what)
    if not isinstance(value, dict):
        raise FormatError(f"{what}: must be a JSON object")
    if canonical_json(value) != text:
        raise FormatError(f"{what}: not in canonical form")
    return value


def check_version(value: object, what: str, *, require_integer: bool) -> None:
    """A JSON ``version`` must be the integer 1; other values raise what docs/format.md says.

    With ``require_integer`` (the signed keyring and root rotation objects, section 4.2) a
    value that is not an integer is FormatError and another integer UnsupportedVersion.
    Without it (the manifests, sections 4.2 step 4, 10.2 and 11.2) anything but the integer
    1, a missing version included, is UnsupportedVersion.
    """
    is_integer = isinstance(value, int) and not isinstance(value, bool)
    if require_integer and not is_integer:
        raise FormatError(f"{what}: version must be an integer")
    if not is_integer or value != 1:
        raise UnsupportedVersion(f"{what}: unsupported version {value!r}")


def require_members(obj: Mapping[str, Any], members: Iterable[str], what: str) -> None:
    expected = set(members)
    actual = set(obj)
    if actual != expected:
        missing = sorted(expected - actual)
        extra = sorted(actual - expected)
        parts = []
        if missing:
            parts.append("missing " + ", ".join(missing))
        if extra:
            parts.append("unexpected " + ", ".join(extra))
        raise FormatError(f"{what}: " + "; ".join(parts))


def get_str(obj: Mapping[str, Any], name: str, what: str) -> str:
    value = obj[name]
    if not isinstance(value, str):
        raise FormatError(f"{what}: {name} must be a string")
    return value


def get_int(obj: Mapping[str, Any], name: str, what: str, low: int, high: int) -> int:
    value = obj[name]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise FormatError(f"{what}: {name} must be an integer from {low} to {high}")
    return value


def get_list(obj: Mapping[str, Any], name: str, what: str, low: int, high: int) -> list[Any]:
    value = obj[name]
    if not isinstance(value, list) or not low <= len(value) <= high:
        raise FormatError(f"{what}: {name} must be a list of {low} to {high} entries")
    return value


# -- "name: value" text files ----------------------------------------------------------------


def parse_text_lines(
    data: bytes, *, header: str, names: list[str], max_bytes: int, what: str
) -> dict[str, str]:
    """Parse a text file of a fixed header line and ``name: value`` lines in a fixed order."""
    if len(data) > max_bytes:
        raise FormatError(f"{what}: larger than {max_bytes} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FormatError(f"{what}: not UTF-8") from exc
    if "\r" in text or text.startswith("\ufeff"):
        raise FormatError(f"{what}: must use LF line endings and no byte-order mark")
    if not text.endswith("\n"):
        raise FormatError(f"{what}: the last line must end with a newline")
    lines = text[:-1].split("\n")
    if lines[0] != header:
        prefix = header.rsplit(" ", 1)[0] + " v"
        if lines[0].startswith(prefix):
            raise UnsupportedVersion(f"{what}: unsupported version {lines[0]!r}")
        raise FormatError(f"{what}: first line must be {header!r}")
    if len(lines) - 1 != len(names):
        raise FormatError(f"{what}: expected {len(names)} fields after the first line")
    values: dict[str, str] = {}
    for line, name in zip(lines[1:], names, strict=True):
        prefix = name + ": "
        if not line.startswith(prefix):
            raise FormatError(f"{what}: expected field {name!r}, found {line[:40]!r}")
        values[name] = line[len(prefix) :]
    return values


def format_text_lines(header: str, fields: list[tuple[str, str]]) -> bytes:
    lines = [header] + [f"{name}: {value}" for name, value in fields]
    for line in lines:
        if "\n" in line or "\r" in line:
            raise FormatError("a field contains a line break")
    return ("\n".join(lines) + "\n").encode("utf-8")
