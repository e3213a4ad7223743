"""The keyring manifest (docs/format.md section 4.1): which keys a deployment uses."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from crypto._encoding import (
    b64decode,
    b64encode,
    canonical_json,
    check_label,
    check_version,
    format_time,
    get_int,
    get_list,
    get_str,
    parse_canonical_object,
    parse_time,
    require_members,
)
from crypto.errors import FormatError
from crypto.keys import Algorithm, key_id

MAX_SIGNED_KEYRING = 256 * 1024
# The manifest is a string inside the signed file, so the file limit bounds it.
MAX_MANIFEST = MAX_SIGNED_KEYRING
MAX_SERIAL = 2**53 - 1
_JOURNALIST_RE = re.compile(r"\A[a-z0-9_-]{1,32}\Z")


@dataclass(frozen=True)
class KeyEntry:
    """A recipient, retired or signing key of a journalist."""

    public_key: bytes
    label: str
    journalist: str

    def __post_init__(self) -> None:
        if len(self.public_key) != 32:
            raise FormatError("a public key is 32 bytes")
        check_label(self.label)
        if not _JOURNALIST_RE.match(self.journalist):
            raise FormatError("journalist must be 1 to 32 characters from a-z0-9_-")


@dataclass(frozen=True)
class TransferClient:
    public_key: bytes
    onion_auth_key: bytes
    label: str

    def __post_init__(self) -> None:
        if len(self.public_key) != 32 or len(self.onion_auth_key) != 32:
            raise FormatError("a public key is 32 bytes")
        check_label(self.label)


def _entry_id(algorithm: Algorithm, public_key: bytes) -> str:
    return key_id(algorithm, public_key).hex()


@dataclass(frozen=True)
class Manifest:
    serial: int
    issued: datetime
    root: bytes
    recipients: tuple[KeyEntry, ...]
    retired: tuple[KeyEntry, ...] = ()
    signing_keys: tuple[KeyEntry, ...] = ()
    transfer_clients: tuple[TransferClient, ...] = ()

    def __post_init__(self) -> None:
        # Sort every list by key id, so equal manifests have equal encodings.
        for name, algorithm in (
            ("recipients", Algorithm.X25519),
            ("retired", Algorithm.X25519),
            ("signing_keys", Algorithm.ED25519),
            ("transfer_clients", Algorithm.ED25519),
        ):
            entries = getattr(self, name)
            ordered = tuple(sorted(entries, key=lambda e: _entry_id(algorithm, e.public_key)))
            object.__setattr__(self, name, ordered)
        self.validate()

    def validate(self) -> None:
        if not 1000 <= self.issued.astimezone(UTC).year <= 9999:
            raise FormatError("issued must be a time between the years 1000 and 9999")
        if not 1 <= self.serial <= MAX_SERIAL:
            raise FormatError(f"serial must be from 1 to {MAX_SERIAL}")
        if len(self.root) != 32:
            raise FormatError("root must be a 32-byte Ed25519 public key")
        limits = {"recipients": (1, 32), "retired": (0, 256), "signing_keys": (0, 64),
                  "transfer_clients": (0, 16)}  # fmt: skip
        for name, (low, high) in limits.items():
            if not low <= len(getattr(self, name)) <= high:
                raise FormatError(f"{name} must have {low} to {high} entries")
        ids = [e.public_key for e in self.recipients + self.retired] + [
            e.public_key for e in self.signing_keys
        ]
        ids += [c.public_key for c in self.transfer_clients]
        ids += [c.onion_auth_key for c in self.transfer_clients]
        if len(set(ids)) != len(ids):
            raise FormatError("a key appears twice in the manifest")

    @property
    def recipient_keys(self) -> list[bytes]:
        return [e.public_key for e in self.recipients]

    def to_json(self) -> dict[str, Any]:
        def entry(e: KeyEntry, algorithm: Algorithm) -> dict[str, Any]:
            return {
                "key_id": _entry_id(algorithm, e.public_key),
                "public_key": b64encode(e.public_key),
                "label": e.label,
                "journalist": e.journalist,
            }

        return {
            "type": "postern-keyring",
            "version": 1,
            "serial": self.serial,
            "issued": format_time(self.issued),
            "root": b64encode(self.root),
            "recipients": [entry(e, Algorithm.X25519) for e in self.recipients],
            "retired": [entry(e, Algorithm.X25519) for e in self.retired],
            "signing_keys": [entry(e, Algorithm.ED25519) for e in self.signing_keys],
            "transfer_clients": [
                {
                    "key_id": _entry_id(Algorithm.ED25519, c.public_key),
                    "public_key": b64encode(c.public_key),
                    "onion_auth_key": b64encode(c.onion_auth_key),
                    "label": c.label,
                }
                for c in self.transfer_clients
            ],
        }

    def canonical(self) -> str:
        return canonical_json(self.to_json())


def _parse_entries(
    obj: dict[str, Any], name: str, algorithm: Algorithm, low: int, high: int
) -> tuple[KeyEntry, ...]:
    what = f"keyring manifest {name}"
    entries = []
    for raw in get_list(obj, name, "keyring manifest", low, high):
        if not isinstance(raw, dict):
            raise FormatError(f"{what}: entries must be objects")
        require_members(raw, ["key_id", "public_key", "label", "journalist"], what)
        public = b64decode(get_str(raw, "public_key", what), length=32, what=f"{what} public_key")
        if get_str(raw, "key_id", what) != _entry_id(algorithm, public):
            raise FormatError(f"{what}: key_id does not match public_key")
        label, journalist = get_str(raw, "label", what), get_str(raw, "journalist", what)
        entries.append(KeyEntry(public, label, journalist))
    _check_sorted(entries, algorithm, what)
    return tuple(entries)


def _check_sorted(
    entries: Sequence[KeyEntry | TransferClient], algorithm: Algorithm, what: str
) -> None:
    ids = [_entry_id(algorithm, e.public_key) for e in entries]
    if ids != sorted(ids):
        raise FormatError(f"{what}: entries must be sorted by key_id")


def parse_manifest(text: str) -> Manifest:
    """Parse and check canonical manifest text (signature checked by the caller)."""
    what = "keyring manifest"
    obj = parse_canonical_object(text, max_bytes=MAX_MANIFEST, what=what)
    if obj.get("type") != "postern-keyring":
        raise FormatError(f"{what}: type must be 'postern-keyring'")
    check_version(obj.get("version"), what, require_integer=False)
    require_members(
        obj,
        ["type", "version", "serial", "issued", "root", "recipients", "retired",
         "signing_keys", "transfer_clients"],
        what,
    )  # fmt: skip
    clients = []
    for raw in get_list(obj, "transfer_clients", what, 0, 16):
        cwhat = f"{what} transfer_clients"
        if not isinstance(raw, dict):
            raise FormatError(f"{cwhat}: entries must be objects")
        require_members(raw, ["key_id", "public_key", "onion_auth_key", "label"], cwhat)
        public = b64decode(get_str(raw, "public_key", cwhat), length=32, what=cwhat)
        if get_str(raw, "key_id", cwhat) != _entry_id(Algorithm.ED25519, public):
            raise FormatError(f"{cwhat}: key_id does not match public_key")
        auth = b64decode(get_str(raw, "onion_auth_key", cwhat), length=32, what=cwhat)
        clients.append(TransferClient(public, auth, get_str(raw, "label", cwhat)))
    _check_sorted(clients, Algorithm.ED25519, f"{what} transfer_clients")
    manifest = Manifest(
        serial=get_int(obj, "serial", what, 1, MAX_SERIAL),
        issued=parse_time(get_str(obj, "issued", what), f"{what} issued"),
        root=b64decode(get_str(obj, "root", what), length=32, what=f"{what} root"),
        recipients=_parse_entries(obj, "recipients", Algorithm.X25519, 1, 32),
        retired=_parse_entries(obj, "retired", Algorithm.X25519, 0, 256),
        signing_keys=_parse_entries(obj, "signing_keys", Algorithm.ED25519, 0, 64),
        transfer_clients=tuple(clients),
    )
    if manifest.canonical() != text:
        raise FormatError(f"{what}: not in canonical form")
    return manifest
