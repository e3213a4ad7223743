"""The sidecar of an upload, ``<id>.json``: owner, key hash, announced length, creation, expiry.

``key`` is the SHA-256 (hex) of the upload's capability, the secret that alone authorizes
``HEAD``, ``PATCH`` and ``DELETE`` (docs/format.md section 8.3); the secret itself is never
stored.

Times are UTC to the second. Nothing else is kept: no metadata of the content, no client
information. A sidecar is read strictly: anything that is not exactly what
:func:`encode_sidecar` writes reads as missing.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

_TIME_FORMAT: Final = "%Y-%m-%dT%H:%M:%SZ"
_SIDECAR_KEYS: Final = frozenset({"owner", "key", "length", "created", "expires"})
_KEY_HASH: Final = re.compile(r"\A[0-9a-f]{64}\Z")
#: Largest sidecar read.
MAX_SIDECAR: Final = 4096
#: Longest owner id kept.
MAX_OWNER: Final = 256


@dataclass(frozen=True)
class Sidecar:
    owner: str
    key: str
    length: int
    created: datetime
    expires: datetime


def utc(now: datetime) -> datetime:
    """An aware time in UTC, to the second (as the sidecar keeps it)."""
    if now.tzinfo is None:
        raise ValueError("times must be timezone-aware")
    return now.astimezone(UTC).replace(microsecond=0)


def _format_time(value: datetime) -> str:
    return value.strftime(_TIME_FORMAT)


def _parse_time(value: object) -> datetime:
    if not isinstance(value, str):
        raise ValueError("a time is a string")
    return datetime.strptime(value, _TIME_FORMAT).replace(tzinfo=UTC)


def encode_sidecar(sidecar: Sidecar) -> bytes:
    return json.dumps(
        {
            "owner": sidecar.owner,
            "key": sidecar.key,
            "length": sidecar.length,
            "created": _format_time(sidecar.created),
            "expires": _format_time(sidecar.expires),
        },
        sort_keys=True,
        separators=(",", ":"),
    ).encode("utf-8")


def decode_sidecar(data: bytes) -> Sidecar | None:
    """Parse a sidecar strictly; None for anything that is not exactly what we write."""
    try:
        value = json.loads(data)
        if not isinstance(value, dict) or set(value) != _SIDECAR_KEYS:
            return None
        owner, key, length = value["owner"], value["key"], value["length"]
        if not isinstance(owner, str) or not 0 < len(owner) <= MAX_OWNER:
            return None
        if not isinstance(key, str) or not _KEY_HASH.match(key):
            return None
        if type(length) is not int or length < 0:
            return None
        created, expires = _parse_time(value["created"]), _parse_time(value["expires"])
        return Sidecar(owner, key, length, created, expires)
    except ValueError:  # json.JSONDecodeError and bad times are ValueErrors
        return None


def key_hash(secret: str) -> str:
    """What the sidecar keeps of an upload's capability: its SHA-256, in hex."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()
