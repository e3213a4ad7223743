"""``instance.json``: the instance salt, the codename Argon2id parameters and the pinned root.

Written by ``dropbox init`` and rewritten when an installed keyring moves the team root;
read strictly: a document with anything this server did not write is refused.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any, Final

from crypto import FormatError, parse_json
from dropbox.errors import DropboxError

INSTANCE_TYPE: Final = "postern-instance"
INSTANCE_VERSION: Final = 1
SALT_LEN: Final = 16
MIN_OPSLIMIT: Final = 3
MIN_MEMLIMIT: Final = 64 * 1024 * 1024
#: instance.json is a few hundred bytes; anything far larger is not ours.
_MAX_INSTANCE_JSON: Final = 64 * 1024


@dataclass(frozen=True)
class CodenameParams:
    """Argon2id parameters of the codename derivation (docs/format.md section 5.2)."""

    opslimit: int
    memlimit: int


# crypto has a strict base64 codec, but in a private module (crypto._encoding) that is not
# part of its public API; these two keep the messages this file has always given.
def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: object, length: int, what: str) -> bytes:
    if not isinstance(text, str):
        raise DropboxError(f"{what} must be a base64 string")
    try:
        data = base64.b64decode(text.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error):
        raise DropboxError(f"{what} is not valid base64") from None
    if _b64(data) != text or len(data) != length:
        raise DropboxError(f"{what} must be the base64 of {length} bytes")
    return data


def instance_json(salt: bytes, params: CodenameParams, root: bytes) -> bytes:
    """The bytes of ``instance.json``."""
    document = {
        "type": INSTANCE_TYPE,
        "version": INSTANCE_VERSION,
        "instance_salt": _b64(salt),
        "codename_argon2": {"opslimit": params.opslimit, "memlimit": params.memlimit},
        "root": _b64(root),
    }
    return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode("ascii")


def _int_member(obj: dict[str, Any], name: str, minimum: int) -> int:
    value = obj.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise DropboxError(f"{name} must be an integer of at least {minimum}")
    return value


def parse_instance_json(data: bytes) -> tuple[bytes, CodenameParams, bytes]:
    """The salt, the codename parameters and the root of ``instance.json`` (else DropboxError)."""
    try:
        document = parse_json(data, max_bytes=_MAX_INSTANCE_JSON, what="instance.json")
    except FormatError as exc:
        raise DropboxError(f"not valid JSON ({exc})") from None
    members = {"type", "version", "instance_salt", "codename_argon2", "root"}
    if not isinstance(document, dict) or set(document) != members:
        raise DropboxError(f"must be an object with exactly the members {sorted(members)}")
    if document["type"] != INSTANCE_TYPE:
        raise DropboxError(f"type must be {INSTANCE_TYPE!r}")
    if document["version"] != INSTANCE_VERSION:
        raise DropboxError(f"version {document['version']!r} is not one this server can read")
    params = document["codename_argon2"]
    if not isinstance(params, dict) or set(params) != {"opslimit", "memlimit"}:
        raise DropboxError("codename_argon2 must hold exactly opslimit and memlimit")
    return (
        _unb64(document["instance_salt"], SALT_LEN, "instance_salt"),
        CodenameParams(
            _int_member(params, "opslimit", MIN_OPSLIMIT),
            _int_member(params, "memlimit", MIN_MEMLIMIT),
        ),
        _unb64(document["root"], 32, "root"),
    )
