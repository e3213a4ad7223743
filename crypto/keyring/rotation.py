"""Root rotation (docs/format.md section 4.3): the old root vouches for the new one."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from crypto._encoding import (
    b64decode,
    b64encode,
    canonical_json,
    check_version,
    format_time,
    get_str,
    parse_canonical_object,
    parse_time,
    require_members,
)
from crypto.errors import FormatError, KeyringError
from crypto.keys import KeyKind, PrivateKey, verify_signature

ROTATION_LABEL = b"postern/v1 root rotation\n"


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
    check_version(raw["version"], what, require_integer=True)
    text = get_str(raw, "statement", what)
    statement = parse_canonical_object(text, max_bytes=4096, what=f"{what} statement")
    require_members(statement, ["type", "version", "old_root", "new_root", "issued"], what)
    if statement["type"] != "postern-root-rotation-statement" or statement["version"] != 1:
        raise FormatError(f"{what}: wrong statement type or version")
    parse_time(get_str(statement, "issued", what), f"{what} issued")
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
