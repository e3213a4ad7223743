"""Keyring v1: the root-signed manifest of keys, and root rotations (docs/format.md section 4).

``manifest`` is the list of keys (section 4.1), ``rotation`` the chain of root rotations
(section 4.3) and ``signed`` the signed keyring file that carries both (section 4.2). The
names below are what the rest of Postern imports.
"""

from crypto._encoding import format_time
from crypto.keyring.manifest import (
    MAX_MANIFEST,
    MAX_SERIAL,
    MAX_SIGNED_KEYRING,
    KeyEntry,
    Manifest,
    TransferClient,
    parse_manifest,
)
from crypto.keyring.rotation import (
    ROTATION_LABEL,
    RootRotation,
    parse_rotation,
    rotate_root,
    verify_rotation_chain,
)
from crypto.keyring.signed import (
    KEYRING_LABEL,
    MAX_ROTATIONS,
    SignedKeyring,
    check_install,
    sign_keyring,
    verify_keyring,
)
from crypto.keys import verify_signature

__all__ = [
    "KEYRING_LABEL",
    "MAX_MANIFEST",
    "MAX_ROTATIONS",
    "MAX_SERIAL",
    "MAX_SIGNED_KEYRING",
    "ROTATION_LABEL",
    "KeyEntry",
    "Manifest",
    "RootRotation",
    "SignedKeyring",
    "TransferClient",
    "check_install",
    "format_time",
    "parse_manifest",
    "parse_rotation",
    "rotate_root",
    "sign_keyring",
    "verify_keyring",
    "verify_rotation_chain",
    "verify_signature",
]
