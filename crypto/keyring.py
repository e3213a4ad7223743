"""Keyring v1: the root-signed manifest of keys, and root rotations (docs/format.md section 4)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from crypto._encoding import (
    b64decode,
    b64encode,
    canonical_json,
    check_label,
    get_int,
    get_list,
    get_str,
    parse_canonical_object,
    parse_json,
    require_members,
)
from crypto.errors import FormatError, KeyringError, SignatureError, UnsupportedVersion
from crypto.keys import Algorithm, KeyKind, PrivateKey, key_id

KEYRING_LABEL = b"postern/v1 keyring\n"
ROTATION_LABEL = b"postern/v1 root rotation\n"
MAX_SIGNED_KEYRING = 256 * 1024
# The manifest is a string inside the signed file, so the file limit bounds it.
MAX_MANIFEST = MAX_SIGNED_KEYRING
MAX_SERIAL = 2**53 - 1
MAX_ROTATIONS = 16
_JOURNALIST_RE = re.compile(r"\A[a-z0-9_-]{1,32}\Z")
_TIME_RE = re.compile(r"\A\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z\Z", re.ASCII)


def format_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(value: str, what: str) -> datetime:
    if not _TIME_RE.match(value):
        raise FormatError(f"{what}: not a UTC time YYYY-MM-DDTHH:MM:SSZ")
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError as exc:
        raise FormatError(f"{what}: not a valid date and time") from exc


def _check_version(value: object, what: str) -> None:
    """A version is the JSON integer 1: another integer is unsupported, anything else format."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise FormatError(f"{what}: version must be an integer")
    if value != 1:
        raise UnsupportedVersion(f"{what}: unsupported version {value}")


def verify_signature(public_key: bytes, signature: bytes, message: bytes) -> None:
    """Ed25519 verification raising SignatureError."""
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        raise SignatureError("signature does not verify") from None


# -- manifest --------------------------------------------------------------------------------


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
    if obj.get("version") != 1:
        raise UnsupportedVersion(f"{what}: unsupported version {obj.get('version')!r}")
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
        issued=_parse_time(get_str(obj, "issued", what), f"{what} issued"),
        root=b64decode(get_str(obj, "root", what), length=32, what=f"{what} root"),
        recipients=_parse_entries(obj, "recipients", Algorithm.X25519, 1, 32),
        retired=_parse_entries(obj, "retired", Algorithm.X25519, 0, 256),
        signing_keys=_parse_entries(obj, "signing_keys", Algorithm.ED25519, 0, 64),
        transfer_clients=tuple(clients),
    )
    if manifest.canonical() != text:
        raise FormatError(f"{what}: not in canonical form")
    return manifest


# -- root rotation ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RootRotation:
    statement: str
    old_root: bytes
    new_root: bytes
    old_signature: bytes = field(repr=False)
    new_signature: bytes = field(repr=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "postern-root-rotation",
            "version": 1,
            "statement": self.statement,
            "old_signature": b64encode(self.old_signature),
            "new_signature": b64encode(self.new_signature),
        }


def rotate_root(old_root: PrivateKey, new_root: PrivateKey, issued: datetime) -> RootRotation:
    """Make the statement by which old_root hands over to new_root."""
    for key in (old_root, new_root):
        if key.kind is not KeyKind.ROOT:
            raise FormatError("root rotation needs two root keys")
    old_public, new_public = old_root.public.key, new_root.public.key
    if old_public == new_public:
        raise FormatError("a root cannot rotate to itself")
    statement = canonical_json(
        {
            "type": "postern-root-rotation-statement",
            "version": 1,
            "old_root": b64encode(old_public),
            "new_root": b64encode(new_public),
            "issued": format_time(issued),
        }
    )
    message = ROTATION_LABEL + statement.encode("utf-8")
    return RootRotation(
        statement, old_public, new_public, old_root.sign(message), new_root.sign(message)
    )


def parse_rotation(raw: object) -> RootRotation:
    what = "root rotation"
    if not isinstance(raw, dict):
        raise FormatError(f"{what}: must be an object")
    require_members(raw, ["type", "version", "statement", "old_signature", "new_signature"], what)
    if raw["type"] != "postern-root-rotation":
        raise FormatError(f"{what}: wrong type")
    _check_version(raw["version"], what)
    text = get_str(raw, "statement", what)
    statement = parse_canonical_object(text, max_bytes=4096, what=f"{what} statement")
    require_members(statement, ["type", "version", "old_root", "new_root", "issued"], what)
    if statement["type"] != "postern-root-rotation-statement" or statement["version"] != 1:
        raise FormatError(f"{what}: wrong statement type or version")
    _parse_time(get_str(statement, "issued", what), f"{what} issued")
    old_root = b64decode(get_str(statement, "old_root", what), length=32, what=what)
    new_root = b64decode(get_str(statement, "new_root", what), length=32, what=what)
    if old_root == new_root:
        raise FormatError(f"{what}: old and new root are the same")
    return RootRotation(
        text,
        old_root,
        new_root,
        b64decode(get_str(raw, "old_signature", what), length=64, what=what),
        b64decode(get_str(raw, "new_signature", what), length=64, what=what),
    )


def verify_rotation_chain(rotations: Sequence[RootRotation]) -> list[bytes]:
    """Check every link; return the roots the chain names, oldest first."""
    roots: list[bytes] = []
    for rotation in rotations:
        message = ROTATION_LABEL + rotation.statement.encode("utf-8")
        verify_signature(rotation.old_root, rotation.old_signature, message)
        verify_signature(rotation.new_root, rotation.new_signature, message)
        if roots and rotation.old_root != roots[-1]:
            raise KeyringError("root rotation chain is broken: a link does not follow the last")
        if not roots:
            roots.append(rotation.old_root)
        if rotation.new_root in roots:
            raise KeyringError("root rotation chain returns to an earlier root")
        roots.append(rotation.new_root)
    return roots


# -- signed keyring --------------------------------------------------------------------------


@dataclass(frozen=True)
class SignedKeyring:
    """A verified keyring: the manifest, the exact signed file, and the root chain."""

    manifest: Manifest
    rotations: tuple[RootRotation, ...]
    raw: bytes = field(repr=False)

    @property
    def root(self) -> bytes:
        return self.manifest.root

    @property
    def serial(self) -> int:
        return self.manifest.serial


def sign_keyring(
    manifest: Manifest, root: PrivateKey, rotations: Sequence[RootRotation] = ()
) -> bytes:
    """Sign a manifest with the current root; return the signed keyring file."""
    if root.kind is not KeyKind.ROOT or root.public.key != manifest.root:
        raise KeyringError("the manifest must be signed by the root it names")
    roots = verify_rotation_chain(rotations)
    if roots and roots[-1] != manifest.root:
        raise KeyringError("the rotation chain must end at the manifest's root")
    text = manifest.canonical()
    signed = {
        "type": "postern-signed-keyring",
        "version": 1,
        "manifest": text,
        "signature": b64encode(root.sign(KEYRING_LABEL + text.encode("utf-8"))),
        "rotations": [r.to_json() for r in rotations],
    }
    return (canonical_json(signed) + "\n").encode("utf-8")


def verify_keyring(data: bytes, pinned_root: bytes) -> SignedKeyring:
    """Verify a signed keyring file against a pinned root (section 4.2, steps 1-4)."""
    what = "signed keyring"
    obj = parse_json(data, max_bytes=MAX_SIGNED_KEYRING, what=what)
    if not isinstance(obj, dict):
        raise FormatError(f"{what}: must be a JSON object")
    if obj.get("type") != "postern-signed-keyring":
        raise FormatError(f"{what}: type must be 'postern-signed-keyring'")
    _check_version(obj.get("version"), what)
    require_members(obj, ["type", "version", "manifest", "signature", "rotations"], what)
    text = get_str(obj, "manifest", what)
    try:
        message = KEYRING_LABEL + text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate, written as a \uD8xx escape in the file
        raise FormatError(f"{what}: the manifest is not valid Unicode text") from None
    signature = b64decode(get_str(obj, "signature", what), length=64, what=f"{what} signature")
    rotations = tuple(parse_rotation(r) for r in get_list(obj, "rotations", what, 0, MAX_ROTATIONS))
    roots = verify_rotation_chain(rotations)
    if not roots:
        # Without rotations the chain names only the manifest's root (section 4.2, step 2).
        # It is read before the signature is checked; if it cannot be read, the signature
        # check (step 3) or the manifest check (step 4) reports the problem.
        roots = [_named_root(text) or pinned_root]
    if pinned_root not in roots:
        raise KeyringError("the keyring's root chain does not include the pinned root")
    current = roots[-1]
    verify_signature(current, signature, message)
    manifest = parse_manifest(text)
    if manifest.root != current:
        raise KeyringError("the manifest names a root other than the one that signed it")
    return SignedKeyring(manifest, rotations, bytes(data))


def _named_root(text: str) -> bytes | None:
    """The root an unverified manifest names, or None if it cannot be read."""
    try:
        obj = parse_json(text, max_bytes=MAX_MANIFEST, what="keyring manifest")
        if isinstance(obj, dict) and isinstance(obj.get("root"), str):
            return b64decode(obj["root"], length=32, what="keyring manifest root")
    except FormatError:
        return None
    return None


def check_install(new: SignedKeyring, installed_serial: int | None) -> None:
    """The server's extra rule: serials strictly increase (no rollback, no replay)."""
    if installed_serial is not None and new.serial <= installed_serial:
        raise KeyringError(
            f"keyring serial {new.serial} is not newer than the installed serial "
            f"{installed_serial}: refusing a rollback"
        )
