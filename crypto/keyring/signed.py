"""The signed keyring file (docs/format.md section 4.2): signing, verifying, installing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from crypto._encoding import (
    b64decode,
    b64encode,
    canonical_json,
    check_version,
    get_list,
    get_str,
    parse_json,
    require_members,
)
from crypto.errors import FormatError, KeyringError
from crypto.keyring.manifest import MAX_MANIFEST, MAX_SIGNED_KEYRING, Manifest, parse_manifest
from crypto.keyring.rotation import RootRotation, parse_rotation, verify_rotation_chain
from crypto.keys import KeyKind, PrivateKey, verify_signature

KEYRING_LABEL = b"postern/v1 keyring\n"
MAX_ROTATIONS = 16


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
    check_version(obj.get("version"), what, require_integer=True)
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
