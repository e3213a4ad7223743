"""Regenerate ``tests/vectors/keyring-v1.json`` and ``tests/vectors/codename-v1.json``.

Everything here is deterministic: the keys are derived from fixed names, Ed25519 signatures
are deterministic (RFC 8032), the issue time is fixed, and no randomness is used. The
expected outcome of every keyring case is written out by hand below, from the rules of
docs/format.md (sections 1, 2.2 and 4); the expected derived values of every codename case
are recomputed here from section 5 with primitives taken directly from PyNaCl and
cryptography. The generator then runs the reference implementation (``crypto``) on every
case and stops with an error if the implementation disagrees: a vector file is only ever
written when the two agree.

The keyring inputs are built without the implementation's encoders: this file has its own
canonical JSON writer (section 1) and key id function (section 2.2), and checks that the
implementation's ``Manifest.canonical`` and ``sign_keyring`` produce the same bytes.

Usage (from the repository root)::

    .venv/bin/python tests/vectors/generate_keyring.py

``tests/crypto/test_keyring_vectors.py`` replays both files through the implementation and
checks that they equal :func:`render_keyring` and :func:`render_codename`.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nacl.pwhash
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

import crypto
from crypto.errors import (
    CryptoError,
    DecryptionError,
    FormatError,
    KeyringError,
    PassphraseError,
    SignatureError,
    UnsupportedVersion,
)

VECTOR_DIR = Path(__file__).resolve().parent
KEYRING_FILE = VECTOR_DIR / "keyring-v1.json"
CODENAME_FILE = VECTOR_DIR / "codename-v1.json"

ISSUED = "2026-11-24T09:00:00Z"
ISSUED_DATETIME = datetime(2026, 11, 24, 9, 0, 0, tzinfo=UTC)
KEYRING_LABEL = b"postern/v1 keyring\n"
ROTATION_LABEL = b"postern/v1 root rotation\n"
MAX_SIGNED_KEYRING = 256 * 1024
MAX_SERIAL = 2**53 - 1
SEED_LABEL = b"postern/v1 test vector key\n"


# -- error classes ----------------------------------------------------------------------------


def error_class(exc: CryptoError) -> str:
    """The docs/format.md error class of an exception raised by the implementation."""
    # Most specific first: UnsupportedVersion is a FormatError.
    classes: list[tuple[type[CryptoError], str]] = [
        (UnsupportedVersion, "unsupported_version"),
        (FormatError, "format"),
        (DecryptionError, "decryption"),
        (SignatureError, "signature"),
        (KeyringError, "keyring"),
        (PassphraseError, "passphrase"),
    ]
    for cls, name in classes:
        if isinstance(exc, cls):
            return name
    raise TypeError(f"no error class for {type(exc).__name__}")


# -- independent encoders (docs/format.md sections 1 and 2.2) --------------------------------

_SHORT_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
}


def _json_string(text: str) -> str:
    out = ['"']
    for char in text:
        if char in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[char])
        elif " " <= char <= "~":
            out.append(char)
        else:
            units = char.encode("utf-16-be")
            for i in range(0, len(units), 2):
                out.append(f"\\u{units[i]:02x}{units[i + 1]:02x}")
    out.append('"')
    return "".join(out)


def canonical(value: object) -> str:
    """Canonical JSON as section 1 defines it, written from the rules."""
    if isinstance(value, bool) or value is None or isinstance(value, float):
        raise TypeError("canonical JSON has no booleans, null or fractions")
    if isinstance(value, int):
        if value < 0:
            raise TypeError("only non-negative integers are used here")
        return str(value)
    if isinstance(value, str):
        return _json_string(value)
    if isinstance(value, list):
        return "[" + ",".join(canonical(item) for item in value) + "]"
    if isinstance(value, dict):
        keys = sorted(value, key=lambda k: k.encode("utf-16-be"))
        return "{" + ",".join(_json_string(k) + ":" + canonical(value[k]) for k in keys) + "}"
    raise TypeError(f"not a JSON value: {type(value).__name__}")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def spec_key_id(algorithm: str, public_key: bytes) -> str:
    digest = hashlib.sha256(b"postern/v1 key\n" + algorithm.encode() + b"\n" + public_key)
    return digest.digest()[:16].hex()


# -- fixed keys --------------------------------------------------------------------------------


@dataclass(frozen=True)
class VectorKey:
    name: str
    kind: str  # a key kind of section 2.1

    @property
    def algorithm(self) -> str:
        return "x25519" if self.kind in ("encryption", "onion-auth") else "ed25519"

    @property
    def secret(self) -> bytes:
        """The X25519 scalar or Ed25519 seed: SHA-256 of a fixed label and the key's name."""
        return hashlib.sha256(SEED_LABEL + self.name.encode()).digest()

    @property
    def public(self) -> bytes:
        if self.algorithm == "x25519":
            x = X25519PrivateKey.from_private_bytes(self.secret).public_key()
            return x.public_bytes(Encoding.Raw, PublicFormat.Raw)
        ed = Ed25519PrivateKey.from_private_bytes(self.secret).public_key()
        return ed.public_bytes(Encoding.Raw, PublicFormat.Raw)

    @property
    def key_id(self) -> str:
        return spec_key_id(self.algorithm, self.public)

    def sign(self, message: bytes) -> bytes:
        if self.algorithm != "ed25519":
            raise TypeError(f"{self.name} cannot sign")
        return Ed25519PrivateKey.from_private_bytes(self.secret).sign(message)

    def describe(self) -> dict[str, str]:
        return {
            "name": self.name,
            "kind": self.kind,
            "algorithm": self.algorithm,
            "private_key": self.secret.hex(),
            "public_key": b64(self.public),
            "key_id": self.key_id,
        }


_KEY_LIST = [
    VectorKey("root-0", "root"),
    VectorKey("root-1", "root"),
    VectorKey("root-2", "root"),
    VectorKey("attacker-root-a", "root"),
    VectorKey("attacker-root-b", "root"),
    VectorKey("alice-encryption-2026", "encryption"),
    VectorKey("alice-encryption-2025", "encryption"),
    VectorKey("bob-encryption-2026", "encryption"),
    VectorKey("zoe-signing", "signing"),
    VectorKey("transfer-laptop", "transfer"),
    VectorKey("transfer-laptop-onion", "onion-auth"),
    VectorKey("transfer-spare", "transfer"),
    *[VectorKey(f"extra-encryption-{i:02d}", "encryption") for i in range(33)],
    *[VectorKey(f"chain-root-{i:02d}", "root") for i in range(18)],
]
KEYS = {key.name: key for key in _KEY_LIST}


def pub(name: str) -> str:
    return b64(KEYS[name].public)


# -- manifests, rotations and signed keyring files --------------------------------------------

Entry = dict[str, Any]


def entry(name: str, label: str, journalist: str) -> Entry:
    key = KEYS[name]
    return {
        "key_id": key.key_id,
        "public_key": b64(key.public),
        "label": label,
        "journalist": journalist,
    }


def client(name: str, onion: str, label: str) -> Entry:
    key = KEYS[name]
    return {
        "key_id": key.key_id,
        "public_key": b64(key.public),
        "onion_auth_key": b64(KEYS[onion].public),
        "label": label,
    }


def by_key_id(entries: Sequence[Entry]) -> list[Entry]:
    return sorted(entries, key=lambda e: str(e["key_id"]))


def manifest(
    *,
    serial: int = 7,
    root: str = "root-0",
    recipients: Sequence[Entry] | None = None,
    retired: Sequence[Entry] | None = None,
    signing_keys: Sequence[Entry] | None = None,
    transfer_clients: Sequence[Entry] | None = None,
) -> dict[str, Any]:
    """The base manifest of the vectors, sorted; any list may be replaced."""
    if recipients is None:
        recipients = [
            entry("alice-encryption-2026", "Alice / desk (station 1)", "alice"),
            entry("bob-encryption-2026", "Bob", "bob"),
        ]
    if retired is None:
        retired = [entry("alice-encryption-2025", "Alice (2025)", "alice")]
    if signing_keys is None:
        signing_keys = [entry("zoe-signing", "Zoë — 報道 \U0001f511", "zoe")]
    if transfer_clients is None:
        transfer_clients = [client("transfer-laptop", "transfer-laptop-onion", "transfer laptop")]
    return {
        "type": "postern-keyring",
        "version": 1,
        "serial": serial,
        "issued": ISSUED,
        "root": pub(root),
        "recipients": by_key_id(recipients),
        "retired": by_key_id(retired),
        "signing_keys": by_key_id(signing_keys),
        "transfer_clients": by_key_id(transfer_clients),
    }


def minimal_manifest(serial: int = 7, root: str = "root-0") -> dict[str, Any]:
    return manifest(
        serial=serial,
        root=root,
        recipients=[entry("alice-encryption-2026", "Alice", "alice")],
        retired=[],
        signing_keys=[],
        transfer_clients=[],
    )


def statement(old: str, new: str, *, issued: str = ISSUED) -> str:
    return canonical(
        {
            "type": "postern-root-rotation-statement",
            "version": 1,
            "old_root": pub(old),
            "new_root": pub(new),
            "issued": issued,
        }
    )


def rotation(
    old: str,
    new: str,
    *,
    text: str | None = None,
    old_signer: str | None = None,
    new_signer: str | None = None,
) -> dict[str, Any]:
    """A rotation object; by default the statement old -> new signed by old and by new."""
    if text is None:
        text = statement(old, new)
    message = ROTATION_LABEL + text.encode()
    return {
        "type": "postern-root-rotation",
        "version": 1,
        "statement": text,
        "old_signature": b64(KEYS[old_signer or old].sign(message)),
        "new_signature": b64(KEYS[new_signer or new].sign(message)),
    }


def signed_object(
    text: str, signer: str, rotations: Sequence[dict[str, Any]] = ()
) -> dict[str, Any]:
    return {
        "type": "postern-signed-keyring",
        "version": 1,
        "manifest": text,
        "signature": b64(KEYS[signer].sign(KEYRING_LABEL + text.encode())),
        "rotations": list(rotations),
    }


def keyring_file(obj: dict[str, Any]) -> str:
    """The outer object as the reference writer emits it: canonical JSON and a newline."""
    return canonical(obj) + "\n"


def signed(
    text: str | dict[str, Any], signer: str, rotations: Sequence[dict[str, Any]] = ()
) -> str:
    if isinstance(text, dict):
        text = canonical(text)
    return keyring_file(signed_object(text, signer, rotations))


def chain(*names: str) -> list[dict[str, Any]]:
    return [rotation(old, new) for old, new in itertools.pairwise(names)]


def replace_member(obj: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**obj, **changes}


def with_duplicate(text: str, member: str, value: str) -> str:
    """Insert a second ``"member":value`` right after the opening brace of a JSON object."""
    if not text.startswith("{"):
        raise ValueError("not an object")
    return '{"' + member + '":' + value + "," + text[1:]


# -- keyring cases -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Expect:
    """An expected outcome: "ok" with serial and recipients, or an error class."""

    result: str
    serial: int | None = None
    recipients: tuple[str, ...] = ()


def ok(serial: int, *recipients: str) -> Expect:
    return Expect("ok", serial, recipients)


FORMAT = Expect("format")
UNSUPPORTED = Expect("unsupported_version")
SIGNATURE = Expect("signature")
KEYRING = Expect("keyring")

BASE_RECIPIENTS = ("alice-encryption-2026", "bob-encryption-2026")


@dataclass(frozen=True)
class Case:
    name: str
    description: str
    keyring: str
    expect: Expect
    pinned: str = "root-0"
    installed_serial: int | None = None


def _keyring_cases() -> list[Case]:
    cases: list[Case] = []

    def add(name: str, description: str, keyring: str, expect: Expect, **kw: Any) -> None:
        cases.append(Case(name, description, keyring, expect, **kw))

    base = manifest()
    base_text = canonical(base)
    base_file = signed(base_text, "root-0")
    base_obj = signed_object(base_text, "root-0")

    # -- valid keyrings, pinning and installation (4.2) ---------------------------------------
    add(
        "valid",
        "A keyring with every list filled, signed by the pinned root.",
        base_file,
        ok(7, *BASE_RECIPIENTS),
    )
    add(
        "valid-minimal",
        "One recipient and empty other lists; serial 1.",
        signed(minimal_manifest(serial=1), "root-0"),
        ok(1, "alice-encryption-2026"),
    )
    add(
        "valid-max-serial",
        "serial = 2^53 - 1, the largest allowed.",
        signed(minimal_manifest(serial=MAX_SERIAL), "root-0"),
        ok(MAX_SERIAL, "alice-encryption-2026"),
    )
    add(
        "install-newer-serial",
        "Installed serial 6, keyring serial 7: installable.",
        base_file,
        ok(7, *BASE_RECIPIENTS),
        installed_serial=6,
    )
    add(
        "install-equal-serial",
        "Installed serial 7, keyring serial 7: replay refused.",
        base_file,
        KEYRING,
        installed_serial=7,
    )
    add(
        "install-lower-serial",
        "Installed serial 8, keyring serial 7: rollback refused.",
        base_file,
        KEYRING,
        installed_serial=8,
    )
    add(
        "wrong-pinned-root",
        "Signed by root-0 and naming root-0, but root-1 is pinned; no "
        "rotations, so the chain names only root-0 (4.2 step 2).",
        base_file,
        KEYRING,
        pinned="root-1",
    )
    add(
        "manifest-names-other-root",
        "Signed by the pinned root-0, but the manifest names "
        "root-1; without rotations the chain is [root-1], which lacks the pinned root.",
        signed(manifest(root="root-1"), "root-0"),
        KEYRING,
    )
    add(
        "outer-pretty-printed",
        "The outer object is ordinary JSON: indented, members "
        "reordered, '/' escaped; the signed manifest string is unchanged.",
        json.dumps(dict(reversed(list(base_obj.items()))), indent=2).replace("/", "\\/") + "\n",
        ok(7, *BASE_RECIPIENTS),
    )
    padded = base_file + " " * (MAX_SIGNED_KEYRING - len(base_file.encode()))
    add(
        "size-256-kib",
        "Padded with white space to exactly 256 KiB: allowed.",
        padded,
        ok(7, *BASE_RECIPIENTS),
    )
    add(
        "size-over-256-kib",
        "Padded with white space to 256 KiB + 1 byte: too large.",
        padded + " ",
        FORMAT,
    )

    # -- signature (4.2 step 3) ----------------------------------------------------------------
    add(
        "signed-by-other-key",
        "Names root-0 but is signed by attacker-root-a.",
        signed(base_text, "attacker-root-a"),
        SIGNATURE,
    )
    altered = canonical(replace_member(base, serial=8))
    add(
        "manifest-altered-after-signing",
        "Serial changed to 8 after signing.",
        keyring_file(replace_member(base_obj, manifest=altered)),
        SIGNATURE,
    )
    add(
        "signature-without-label",
        "Signature over the manifest without the label.",
        keyring_file(
            replace_member(base_obj, signature=b64(KEYS["root-0"].sign(base_text.encode())))
        ),
        SIGNATURE,
    )
    add(
        "signature-with-rotation-label",
        "Signature under the root rotation label.",
        keyring_file(
            replace_member(
                base_obj, signature=b64(KEYS["root-0"].sign(ROTATION_LABEL + base_text.encode()))
            )
        ),
        SIGNATURE,
    )

    # -- manifest rules (4.1), every manifest correctly signed by the pinned root -------------
    spaced = json.dumps(base, sort_keys=True, ensure_ascii=True)
    add(
        "manifest-with-spaces",
        "Sorted members and ASCII escapes but ', ' and ': ' separators: not canonical.",
        signed(spaced, "root-0"),
        FORMAT,
    )
    unsorted_members = json.dumps(dict(reversed(list(base.items()))), separators=(",", ":"))
    add(
        "manifest-unsorted-members",
        "No white space, members in reverse order.",
        signed(unsorted_members, "root-0"),
        FORMAT,
    )
    add(
        "manifest-uppercase-escape",
        "A label escape written with uppercase hex (\\u00EB).",
        signed(base_text.replace("\\u00eb", "\\u00EB"), "root-0"),
        FORMAT,
    )
    add(
        "manifest-escaped-slash",
        "A '/' in a label written as '\\/'.",
        signed(base_text.replace("Alice / desk", "Alice \\/ desk"), "root-0"),
        FORMAT,
    )
    if "\\u00eb" not in base_text or "Alice / desk" not in base_text:
        raise AssertionError("the base manifest lost the text the cases above edit")
    dup_serial = with_duplicate(base_text, "serial", "7")
    add(
        "manifest-duplicate-member",
        "The manifest repeats the member 'serial'.",
        signed(dup_serial, "root-0"),
        FORMAT,
    )
    wrong_id = entry("bob-encryption-2026", "Bob", "bob")
    wrong_id["key_id"] = KEYS["alice-encryption-2025"].key_id
    add(
        "manifest-key-id-mismatch",
        "A recipient's key_id is another key's id.",
        signed(
            manifest(recipients=[entry("alice-encryption-2026", "Alice", "alice"), wrong_id]),
            "root-0",
        ),
        FORMAT,
    )
    upper_id = entry("bob-encryption-2026", "Bob", "bob")
    upper_id["key_id"] = upper_id["key_id"].upper()
    add(
        "manifest-key-id-uppercase",
        "A key_id in uppercase hex.",
        signed(manifest(recipients=[upper_id]), "root-0"),
        FORMAT,
    )
    ed_id = entry("bob-encryption-2026", "Bob", "bob")
    ed_id["key_id"] = spec_key_id("ed25519", KEYS["bob-encryption-2026"].public)
    add(
        "manifest-key-id-wrong-algorithm",
        "A recipient's key_id computed as if it were an Ed25519 key.",
        signed(manifest(recipients=[ed_id]), "root-0"),
        FORMAT,
    )
    add(
        "manifest-recipient-also-retired",
        "The same X25519 key in recipients and retired.",
        signed(manifest(retired=[entry("alice-encryption-2026", "Alice", "alice")]), "root-0"),
        FORMAT,
    )
    alice = entry("alice-encryption-2026", "Alice", "alice")
    add(
        "manifest-recipient-twice",
        "The same recipient listed twice.",
        signed(manifest(recipients=[alice, alice]), "root-0"),
        FORMAT,
    )
    add(
        "manifest-onion-key-twice",
        "Two transfer clients with the same onion_auth_key.",
        signed(
            manifest(
                transfer_clients=[
                    client("transfer-laptop", "transfer-laptop-onion", "laptop"),
                    client("transfer-spare", "transfer-laptop-onion", "spare"),
                ]
            ),
            "root-0",
        ),
        FORMAT,
    )
    reversed_recipients = replace_member(base, recipients=base["recipients"][::-1])
    add(
        "manifest-recipients-unsorted",
        "The two recipients in decreasing key_id order.",
        signed(reversed_recipients, "root-0"),
        FORMAT,
    )
    add(
        "manifest-zero-recipients",
        "recipients is empty.",
        signed(replace_member(base, recipients=[]), "root-0"),
        FORMAT,
    )
    many = [entry(f"extra-encryption-{i:02d}", f"extra {i}", "extra") for i in range(33)]
    add(
        "manifest-33-recipients",
        "33 recipients; at most 32 are allowed.",
        signed(manifest(recipients=many), "root-0"),
        FORMAT,
    )
    missing = {k: v for k, v in base.items() if k != "transfer_clients"}
    add("manifest-missing-member", "No transfer_clients member.", signed(missing, "root-0"), FORMAT)
    add(
        "manifest-extra-member",
        "An unknown member 'comment'.",
        signed(replace_member(base, comment="hello"), "root-0"),
        FORMAT,
    )
    add(
        "manifest-wrong-type",
        "type is 'postern-keyring-manifest'.",
        signed(replace_member(base, type="postern-keyring-manifest"), "root-0"),
        FORMAT,
    )
    add(
        "manifest-version-2",
        "A manifest of version 2, correctly signed.",
        signed(replace_member(base, version=2), "root-0"),
        UNSUPPORTED,
    )
    add(
        "manifest-serial-zero",
        "serial 0.",
        signed(replace_member(base, serial=0), "root-0"),
        FORMAT,
    )
    add(
        "manifest-serial-too-large",
        "serial 2^53.",
        signed(replace_member(base, serial=MAX_SERIAL + 1), "root-0"),
        FORMAT,
    )
    add(
        "manifest-serial-fraction",
        "serial written as 7.0.",
        signed(base_text.replace('"serial":7', '"serial":7.0'), "root-0"),
        FORMAT,
    )
    add(
        "manifest-serial-string",
        'serial written as the string "7".',
        signed(replace_member(base, serial="7"), "root-0"),
        FORMAT,
    )
    add(
        "manifest-issued-invalid-date",
        "issued 2026-02-29 (not a leap year).",
        signed(replace_member(base, issued="2026-02-29T09:00:00Z"), "root-0"),
        FORMAT,
    )
    add(
        "manifest-issued-offset",
        "issued with '+00:00' instead of 'Z'.",
        signed(replace_member(base, issued="2026-11-24T09:00:00+00:00"), "root-0"),
        FORMAT,
    )
    add(
        "manifest-label-control-character",
        "A label containing U+0009 (tab).",
        signed(
            manifest(recipients=[entry("alice-encryption-2026", "Alice\tA", "alice")]), "root-0"
        ),
        FORMAT,
    )
    add(
        "manifest-label-leading-space",
        "A label starting with a space.",
        signed(manifest(recipients=[entry("alice-encryption-2026", " Alice", "alice")]), "root-0"),
        FORMAT,
    )
    add(
        "manifest-journalist-uppercase",
        "journalist 'Alice' (only a-z0-9_- allowed).",
        signed(manifest(recipients=[entry("alice-encryption-2026", "Alice", "Alice")]), "root-0"),
        FORMAT,
    )
    short_key = entry("alice-encryption-2026", "Alice", "alice")
    short_key["public_key"] = b64(KEYS["alice-encryption-2026"].public[:31])
    add(
        "manifest-public-key-31-bytes",
        "A recipient public_key of 31 bytes.",
        signed(manifest(recipients=[short_key]), "root-0"),
        FORMAT,
    )

    # -- outer object (4.2 step 1) -------------------------------------------------------------
    add(
        "outer-version-2",
        "The signed keyring object has version 2.",
        keyring_file(replace_member(base_obj, version=2)),
        UNSUPPORTED,
    )
    add(
        "outer-version-2-other-members",
        "Version 2 with members version 1 does not have: the version is reported, not the members.",
        keyring_file({"type": "postern-signed-keyring", "version": 2, "payload": "x"}),
        UNSUPPORTED,
    )
    add(
        "outer-version-true",
        "version is the JSON literal true, not the integer 1.",
        json.dumps(replace_member(base_obj, version=True)) + "\n",
        FORMAT,
    )
    add(
        "outer-version-fraction",
        "version is 1.0, not the integer 1.",
        base_file.replace('"version":1}', '"version":1.0}'),
        FORMAT,
    )
    if '"version":1.0' not in cases[-1].keyring:
        raise AssertionError("outer-version-fraction did not edit the outer version")
    add(
        "outer-wrong-type",
        "type 'postern-keyring' (the manifest's type).",
        keyring_file(replace_member(base_obj, type="postern-keyring")),
        FORMAT,
    )
    add(
        "outer-missing-rotations",
        "No rotations member.",
        keyring_file({k: v for k, v in base_obj.items() if k != "rotations"}),
        FORMAT,
    )
    add(
        "outer-extra-member",
        "An unknown member 'comment'.",
        keyring_file(replace_member(base_obj, comment="x")),
        FORMAT,
    )
    add(
        "outer-duplicate-member",
        "The member 'signature' twice (a forged one first).",
        with_duplicate(base_file, "signature", '"' + b64(KEYS["attacker-root-a"].sign(b"x")) + '"'),
        FORMAT,
    )
    add(
        "outer-not-an-object",
        "A JSON array holding the signed keyring object.",
        "[" + base_file.rstrip("\n") + "]\n",
        FORMAT,
    )
    add("outer-not-json", "The file cut in the middle.", base_file[: len(base_file) // 2], FORMAT)
    if base_text.count('"label":"Bob"') != 1:
        raise AssertionError("the base manifest lost Bob's label")
    surrogate = replace_member(
        base_obj, manifest=base_text.replace('"label":"Bob"', '"label":"Bob\ud800"')
    )
    add(
        "outer-manifest-lone-surrogate",
        "The manifest string holds a lone surrogate (written \\ud800 in the file), so it "
        "has no UTF-8 encoding: neither signed text nor canonical.",
        json.dumps(surrogate, sort_keys=True, separators=(",", ":")) + "\n",
        FORMAT,
    )
    add(
        "outer-manifest-not-a-string",
        "manifest is the manifest object, not its text.",
        keyring_file(replace_member(base_obj, manifest=base)),
        FORMAT,
    )
    add(
        "outer-signature-63-bytes",
        "signature decodes to 63 bytes.",
        keyring_file(
            replace_member(base_obj, signature=b64(base64.b64decode(base_obj["signature"])[:63]))
        ),
        FORMAT,
    )
    sig_text = base_obj["signature"]
    if not sig_text.endswith("=="):
        raise AssertionError("a 64-byte signature ends with '=='")
    last = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".index(sig_text[-3])
    bad_sig = (
        sig_text[:-3]
        + "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"[last ^ 1]
        + "=="
    )
    add(
        "outer-signature-noncanonical-base64",
        "signature base64 with non-zero trailing bits.",
        keyring_file(replace_member(base_obj, signature=bad_sig)),
        FORMAT,
    )
    add(
        "outer-rotations-not-a-list",
        "rotations is an object.",
        keyring_file(replace_member(base_obj, rotations={})),
        FORMAT,
    )

    # -- root rotation (4.3) -------------------------------------------------------------------
    m2 = manifest(root="root-2")
    two_step = chain("root-0", "root-1", "root-2")
    chained = signed(m2, "root-2", two_step)
    add(
        "rotation-two-steps-pinned-oldest",
        "root-0 -> root-1 -> root-2, keyring signed by root-2, root-0 pinned.",
        chained,
        ok(7, *BASE_RECIPIENTS),
    )
    add(
        "rotation-two-steps-pinned-middle",
        "The same keyring with root-1 pinned.",
        chained,
        ok(7, *BASE_RECIPIENTS),
        pinned="root-1",
    )
    add(
        "rotation-two-steps-pinned-current",
        "The same keyring with root-2 pinned.",
        chained,
        ok(7, *BASE_RECIPIENTS),
        pinned="root-2",
    )
    add(
        "rotation-two-steps-pinned-outsider",
        "The same keyring with attacker-root-a pinned.",
        chained,
        KEYRING,
        pinned="attacker-root-a",
    )
    add(
        "rotation-two-steps-install-equal-serial",
        "The same keyring, installed serial 7.",
        chained,
        KEYRING,
        installed_serial=7,
    )
    add(
        "rotation-signed-by-old-root",
        "root-0 -> root-1, but the manifest (naming root-1) is "
        "signed by root-0, no longer the current root.",
        signed(manifest(root="root-1"), "root-0", chain("root-0", "root-1")),
        SIGNATURE,
    )
    add(
        "rotation-forged-old-signature",
        "A statement root-0 -> attacker-root-a signed by attacker-root-a in place of root-0.",
        signed(
            manifest(root="attacker-root-a"),
            "attacker-root-a",
            [rotation("root-0", "attacker-root-a", old_signer="attacker-root-a")],
        ),
        SIGNATURE,
    )
    add(
        "rotation-forged-by-previous-root",
        "root-0 -> root-1, then root-1 -> attacker-root-a "
        "with the old signature made by root-0, which is no longer the current root.",
        signed(
            manifest(root="attacker-root-a"),
            "attacker-root-a",
            [
                rotation("root-0", "root-1"),
                rotation("root-1", "attacker-root-a", old_signer="root-0"),
            ],
        ),
        SIGNATURE,
    )
    add(
        "rotation-foreign-chain",
        "A valid chain attacker-root-a -> attacker-root-b that never names the pinned root-0.",
        signed(
            manifest(root="attacker-root-b"),
            "attacker-root-b",
            chain("attacker-root-a", "attacker-root-b"),
        ),
        KEYRING,
    )
    add(
        "rotation-foreign-link-appended",
        "root-0 -> root-1, then a valid but unrelated attacker-root-a -> attacker-root-b.",
        signed(
            manifest(root="attacker-root-b"),
            "attacker-root-b",
            [rotation("root-0", "root-1"), rotation("attacker-root-a", "attacker-root-b")],
        ),
        KEYRING,
    )
    missing_new = {k: v for k, v in rotation("root-0", "root-1").items() if k != "new_signature"}
    add(
        "rotation-new-signature-missing",
        "The rotation has no new_signature.",
        signed(manifest(root="root-1"), "root-1", [missing_new]),
        FORMAT,
    )
    missing_old = {k: v for k, v in rotation("root-0", "root-1").items() if k != "old_signature"}
    add(
        "rotation-old-signature-missing",
        "The rotation has no old_signature.",
        signed(manifest(root="root-1"), "root-1", [missing_old]),
        FORMAT,
    )
    add(
        "rotation-new-signature-wrong-key",
        "new_signature made by root-0 (the old root) "
        "instead of root-1: no proof that root-1's holder made the statement.",
        signed(
            manifest(root="root-1"), "root-1", [rotation("root-0", "root-1", new_signer="root-0")]
        ),
        SIGNATURE,
    )
    other_statement = statement("root-0", "root-1", issued="2026-11-25T09:00:00Z")
    foreign_new = b64(KEYS["root-1"].sign(ROTATION_LABEL + other_statement.encode()))
    add(
        "rotation-new-signature-other-statement",
        "new_signature is root-1's signature of another statement (issued a day later).",
        signed(
            manifest(root="root-1"),
            "root-1",
            [replace_member(rotation("root-0", "root-1"), new_signature=foreign_new)],
        ),
        SIGNATURE,
    )
    good = rotation("root-0", "root-1")
    add(
        "rotation-signatures-swapped",
        "old_signature and new_signature exchanged.",
        signed(
            manifest(root="root-1"),
            "root-1",
            [
                replace_member(
                    good, old_signature=good["new_signature"], new_signature=good["old_signature"]
                )
            ],
        ),
        SIGNATURE,
    )
    add(
        "rotation-broken-chain-gap",
        "root-0 -> root-1, then root-2 -> attacker-root-a: the "
        "second link does not start where the first ends.",
        signed(
            manifest(root="attacker-root-a"),
            "attacker-root-a",
            [rotation("root-0", "root-1"), rotation("root-2", "attacker-root-a")],
        ),
        KEYRING,
    )
    add(
        "rotation-broken-chain-reordered",
        "root-1 -> root-2 listed before root-0 -> root-1.",
        signed(m2, "root-2", two_step[::-1]),
        KEYRING,
    )
    add(
        "rotation-returns-to-first-root",
        "root-0 -> root-1 -> root-0.",
        signed(manifest(), "root-0", chain("root-0", "root-1", "root-0")),
        KEYRING,
    )
    add(
        "rotation-returns-to-middle-root",
        "root-0 -> root-1 -> root-2 -> root-1.",
        signed(manifest(root="root-1"), "root-1", chain("root-0", "root-1", "root-2", "root-1")),
        KEYRING,
        pinned="root-1",
    )
    add(
        "rotation-manifest-root-not-chain-end",
        "root-0 -> root-1, keyring signed by root-1 but the manifest still names root-0.",
        signed(manifest(root="root-0"), "root-1", chain("root-0", "root-1")),
        KEYRING,
    )
    add(
        "rotation-manifest-root-beyond-chain",
        "root-0 -> root-1, keyring signed by root-1, manifest names root-2.",
        signed(manifest(root="root-2"), "root-1", chain("root-0", "root-1")),
        KEYRING,
    )
    sixteen = [f"chain-root-{i:02d}" for i in range(17)]
    add(
        "rotation-16-links",
        "16 rotations (the most allowed), chain-root-00 pinned.",
        signed(minimal_manifest(root=sixteen[-1]), sixteen[-1], chain(*sixteen)),
        ok(7, "alice-encryption-2026"),
        pinned=sixteen[0],
    )
    seventeen = [f"chain-root-{i:02d}" for i in range(18)]
    add(
        "rotation-17-links",
        "17 rotations: one too many.",
        signed(minimal_manifest(root=seventeen[-1]), seventeen[-1], chain(*seventeen)),
        FORMAT,
        pinned=seventeen[0],
    )

    def rotated(text: str) -> str:
        """A keyring root-0 -> root-1 whose single statement is ``text``, signed by both."""
        return signed(manifest(root="root-1"), "root-1", [rotation("root-0", "root-1", text=text)])

    good_statement = statement("root-0", "root-1")
    statement_obj = json.loads(good_statement)
    add(
        "rotation-statement-with-spaces",
        "The statement is not canonical (', ' separators).",
        rotated(json.dumps(statement_obj, sort_keys=True)),
        FORMAT,
    )
    add(
        "rotation-statement-duplicate-member",
        "The statement repeats 'new_root'.",
        rotated(with_duplicate(good_statement, "new_root", '"' + pub("attacker-root-a") + '"')),
        FORMAT,
    )
    add(
        "rotation-statement-extra-member",
        "The statement has a member 'reason'.",
        rotated(canonical(replace_member(statement_obj, reason="x"))),
        FORMAT,
    )
    add(
        "rotation-statement-wrong-type",
        "The statement's type is 'postern-root-rotation'.",
        rotated(canonical(replace_member(statement_obj, type="postern-root-rotation"))),
        FORMAT,
    )
    add(
        "rotation-statement-invalid-date",
        "The statement was issued on 2026-13-01.",
        rotated(statement("root-0", "root-1", issued="2026-13-01T00:00:00Z")),
        FORMAT,
    )
    add(
        "rotation-statement-non-ascii-digits",
        "The statement's issued time is written with "
        "ARABIC-INDIC digits (U+0660-U+0669) for the year.",
        rotated(statement("root-0", "root-1", issued="\u0662\u0660\u0662\u0666-11-24T09:00:00Z")),
        FORMAT,
    )
    add(
        "rotation-version-2",
        "The rotation object has version 2.",
        signed(
            manifest(root="root-1"),
            "root-1",
            [replace_member(rotation("root-0", "root-1"), version=2)],
        ),
        UNSUPPORTED,
    )
    add(
        "rotation-version-true",
        "The rotation object's version is the JSON literal true.",
        json.dumps(
            signed_object(
                canonical(manifest(root="root-1")),
                "root-1",
                [replace_member(rotation("root-0", "root-1"), version=True)],
            )
        )
        + "\n",
        FORMAT,
    )
    add(
        "rotation-extra-member",
        "The rotation object has a member 'comment'.",
        signed(
            manifest(root="root-1"),
            "root-1",
            [replace_member(rotation("root-0", "root-1"), comment="x")],
        ),
        FORMAT,
    )
    return cases


# -- running the implementation ---------------------------------------------------------------


def run_keyring_case(keyring: str, pinned_root: str, installed_serial: int | None) -> Expect:
    """Verify (and, with an installed serial, check installation) with the implementation."""
    try:
        result = crypto.verify_keyring(keyring.encode("utf-8"), base64.b64decode(pinned_root))
        crypto.check_install(result, installed_serial)
    except CryptoError as exc:
        return Expect(error_class(exc))
    return Expect("ok", result.serial, tuple(e.hex() for e in _recipient_ids(result)))


def _recipient_ids(result: crypto.SignedKeyring) -> list[bytes]:
    return [crypto.key_id(crypto.Algorithm.X25519, key) for key in result.manifest.recipient_keys]


def _check_writer_agrees() -> None:
    """The implementation's Manifest and sign_keyring give the bytes built here."""

    def private(name: str) -> crypto.PrivateKey:
        return crypto.PrivateKey(crypto.KeyKind(KEYS[name].kind), KEYS[name].secret, name)

    def key_entry(e: Entry) -> crypto.KeyEntry:
        return crypto.KeyEntry(base64.b64decode(e["public_key"]), e["label"], e["journalist"])

    def build(obj: dict[str, Any]) -> crypto.Manifest:
        return crypto.Manifest(
            serial=obj["serial"],
            issued=ISSUED_DATETIME,
            root=base64.b64decode(obj["root"]),
            # Reversed, to check that Manifest sorts its lists.
            recipients=tuple(key_entry(e) for e in reversed(obj["recipients"])),
            retired=tuple(key_entry(e) for e in obj["retired"]),
            signing_keys=tuple(key_entry(e) for e in obj["signing_keys"]),
            transfer_clients=tuple(
                crypto.TransferClient(
                    base64.b64decode(c["public_key"]),
                    base64.b64decode(c["onion_auth_key"]),
                    c["label"],
                )
                for c in obj["transfer_clients"]
            ),
        )

    base = manifest()
    _agree("Manifest.canonical", build(base).canonical(), canonical(base))
    _agree(
        "sign_keyring",
        crypto.sign_keyring(build(base), private("root-0")).decode(),
        signed(base, "root-0"),
    )
    m2 = manifest(root="root-2")
    rotations = [
        crypto.rotate_root(private("root-0"), private("root-1"), ISSUED_DATETIME),
        crypto.rotate_root(private("root-1"), private("root-2"), ISSUED_DATETIME),
    ]
    _agree(
        "sign_keyring with rotations",
        crypto.sign_keyring(build(m2), private("root-2"), rotations).decode(),
        signed(m2, "root-2", chain("root-0", "root-1", "root-2")),
    )


def _agree(what: str, implementation: str, expected: str) -> None:
    if implementation != expected:
        raise AssertionError(
            f"{what}: the implementation writes\n{implementation!r}\nbut the spec gives\n"
            f"{expected!r}"
        )


def build_keyring() -> dict[str, Any]:
    _check_writer_agrees()
    cases = _keyring_cases()
    names = [case.name for case in cases]
    if len(set(names)) != len(names):
        raise AssertionError("duplicate case names")
    out = []
    disagreements = []
    for case in cases:
        pinned = pub(case.pinned)
        expect = case.expect
        if expect.result == "ok":
            expect = Expect(
                "ok", expect.serial, tuple(sorted(KEYS[n].key_id for n in expect.recipients))
            )
        actual = run_keyring_case(case.keyring, pinned, case.installed_serial)
        if actual != expect:
            disagreements.append(f"{case.name}: expected {expect}, implementation gives {actual}")
        record: dict[str, Any] = {
            "name": case.name,
            "description": case.description,
            "pinned_root": pinned,
            "installed_serial": case.installed_serial,
            "expected": expect.result,
        }
        if expect.result == "ok":
            record["serial"] = expect.serial
            record["recipient_key_ids"] = list(expect.recipients)
        record["keyring"] = case.keyring
        out.append(record)
    if disagreements:
        raise AssertionError(
            "the implementation disagrees with docs/format.md on these keyring cases:\n  "
            + "\n  ".join(disagreements)
        )
    return {
        "description": (
            "Postern keyring v1 vectors (docs/format.md sections 1, 2.2 and 4): signed "
            "keyring files, rotation chains and the outcome of verifying each against a "
            "pinned root and, when installed_serial is not null, of installing it."
        ),
        "generator": "tests/vectors/generate_keyring.py",
        "procedure": (
            "Verify the UTF-8 bytes of 'keyring' against the Ed25519 public key "
            "'pinned_root' (section 4.2, steps 1-4). If that succeeds and installed_serial "
            "is not null, the manifest's serial must also be greater than installed_serial "
            "(else 'keyring'). 'expected' is 'ok' or the error class of the first rule "
            "broken; for 'ok', 'serial' and 'recipient_key_ids' (hex key ids of the "
            "manifest's recipients, in manifest order) are the verified content."
        ),
        "error_classes": ["format", "unsupported_version", "signature", "keyring"],
        "encoding": (
            "keyring is the exact file as a string (its UTF-8 encoding is the file); "
            "keys are base64, private keys and key ids lower-case hex"
        ),
        "issued": ISSUED,
        "keys": [key.describe() for key in _KEY_LIST],
        "cases": out,
    }


# -- codenames (section 5) ----------------------------------------------------------------------

WORDLIST_SIZE = 7776
OPSLIMIT = 3
MEMLIMIT = 64 * 1024 * 1024
SALT_1 = bytes.fromhex("000102030405060708090a0b0c0d0e0f")
SALT_2 = bytes.fromhex("f0e1d2c3b4a5968778695a4b3c2d1e0f")

CODENAME_A = "waffle shuffle finale kettle cobalt harbor lantern"
CODENAME_B = "velvet walnut ember banjo cactus t-shirt yo-yo"
CODENAME_C = "dolphin glacier ivory jigsaw mango nectar pebble"


def fullwidth(text: str) -> str:
    """ASCII letters as FULLWIDTH LATIN letters (U+FF21-U+FF3A, U+FF41-U+FF5A)."""
    return "".join(chr(ord(c) + 0xFEE0) if c.isascii() and c.isalpha() else c for c in text)


# (typed codename, normalized codename), with the typed form exercising normalization.
DERIVATIONS: list[tuple[str, str, bytes]] = [
    (CODENAME_A, CODENAME_A, SALT_1),
    (CODENAME_B, CODENAME_B, SALT_1),
    (CODENAME_C, CODENAME_C, SALT_1),
    (CODENAME_A, CODENAME_A, SALT_2),
    (
        "  " + fullwidth("WAFFLE") + "\tShu\ufb04e\u3000\ufb01nale \u212aettle\n COBALT  "
        "harbor\u00a0lantern ",
        CODENAME_A,
        SALT_1,
    ),
]

MALFORMED = "malformed"
# (description, typed, expected normalized codename or MALFORMED), written from section 5.1.
NORMALIZATION: list[tuple[str, str, str]] = [
    ("already normalized", CODENAME_A, CODENAME_A),
    (
        "repeated, leading and trailing spaces",
        "  waffle   shuffle finale kettle cobalt harbor  lantern ",
        CODENAME_A,
    ),
    (
        "tab, newline and carriage return between words",
        "waffle\tshuffle\nfinale\r\nkettle cobalt harbor lantern",
        CODENAME_A,
    ),
    ("upper and mixed case", "WAFFLE Shuffle fINALE kettle COBALT harbor Lantern", CODENAME_A),
    (
        "full-width letters (NFKC)",
        fullwidth("waffle shuffle") + " finale kettle cobalt harbor lantern",
        CODENAME_A,
    ),
    (
        "full-width upper-case letters (NFKC, then lower case)",
        fullwidth("WAFFLE") + " shuffle finale kettle cobalt harbor lantern",
        CODENAME_A,
    ),
    (
        "ligatures U+FB01 and U+FB04 (NFKC)",
        "wa\ufb04e shu\ufb04e \ufb01nale kettle cobalt harbor lantern",
        CODENAME_A,
    ),
    (
        "KELVIN SIGN U+212A (NFKC gives K, then k)",
        "waffle shuffle finale \u212aettle cobalt harbor lantern",
        CODENAME_A,
    ),
    (
        "NO-BREAK SPACE and IDEOGRAPHIC SPACE between words (NFKC gives U+0020)",
        "waffle\u00a0shuffle\u3000finale kettle cobalt harbor lantern",
        CODENAME_A,
    ),
    ("hyphenated list words", "Velvet WALNUT ember banjo cactus T-Shirt Yo-Yo", CODENAME_B),
    ("six words", "waffle shuffle finale kettle cobalt harbor", MALFORMED),
    ("eight words", CODENAME_A + " pebble", MALFORMED),
    ("a word not in the list", "waffle shuffle finale kettle cobalt harbor postern", MALFORMED),
    ("a word with a diacritic", "waffle shuffle finale kettle cobalt harbor lanterñ", MALFORMED),
    ("words joined with hyphens", CODENAME_A.replace(" ", "-"), MALFORMED),
    (
        "ZERO WIDTH SPACE is not white space",
        "waffle\u200bshuffle finale kettle cobalt harbor lantern pebble",
        MALFORMED,
    ),
    ("empty", "", MALFORMED),
    ("white space only", " \t\n ", MALFORMED),
]


def _spec_derive(normalized: str, salt: bytes) -> dict[str, str]:
    """Section 5.2, from the primitives."""
    master = nacl.pwhash.argon2id.kdf(
        32, normalized.encode("utf-8"), salt, opslimit=OPSLIMIT, memlimit=MEMLIMIT
    )

    def hkdf(info: bytes, length: int) -> bytes:
        return HKDF(algorithm=hashes.SHA256(), length=length, salt=b"", info=info).derive(master)

    reply_private = hkdf(b"postern/v1 source reply-key", 32)
    reply_public = (
        X25519PrivateKey.from_private_bytes(reply_private)
        .public_key()
        .public_bytes(Encoding.Raw, PublicFormat.Raw)
    )
    return {
        "master": master.hex(),
        "lookup_id": hkdf(b"postern/v1 source lookup-id", 32).hex(),
        "reply_private": reply_private.hex(),
        "reply_public": reply_public.hex(),
        "source_id": hkdf(b"postern/v1 source journalist-id", 16).hex(),
    }


def _implementation_normalize(typed: str) -> str:
    try:
        return crypto.normalize_codename(typed)
    except FormatError:
        return MALFORMED


def build_codename() -> dict[str, Any]:
    words = crypto.wordlist()
    if len(words) != WORDLIST_SIZE or len(set(words)) != WORDLIST_SIZE:
        raise AssertionError("the word list is not 7,776 distinct words")
    wordset = set(words)
    problems = []
    derivations = []
    cache: dict[tuple[str, bytes], dict[str, str]] = {}
    for typed, normalized, salt in DERIVATIONS:
        if len(normalized.split(" ")) != 7 or not set(normalized.split(" ")) <= wordset:
            raise AssertionError(f"{normalized!r} is not 7 words of the list")
        if (normalized, salt) not in cache:
            cache[normalized, salt] = _spec_derive(normalized, salt)
        expected = cache[normalized, salt]
        got = crypto.derive_source_secrets(typed, salt, opslimit=OPSLIMIT, memlimit=MEMLIMIT)
        actual = {
            "master": expected["master"],  # not exposed by the implementation
            "lookup_id": got.lookup_id.hex(),
            "reply_private": got.reply_private.hex(),
            "reply_public": got.reply_public.hex(),
            "source_id": got.source_id.hex(),
        }
        if actual != expected or _implementation_normalize(typed) != normalized:
            problems.append(f"derivation of {typed!r} with salt {salt.hex()}")
        derivations.append(
            {
                "codename": typed,
                "normalized": normalized,
                "instance_salt": salt.hex(),
                "opslimit": OPSLIMIT,
                "memlimit": MEMLIMIT,
                **expected,
            }
        )
    normalization = []
    for description, typed, expected_normal in NORMALIZATION:
        if expected_normal != MALFORMED and not set(expected_normal.split(" ")) <= wordset:
            raise AssertionError(f"{expected_normal!r} is not made of list words")
        if _implementation_normalize(typed) != expected_normal:
            problems.append(f"normalization of {typed!r} ({description})")
        normalization.append(
            {"description": description, "input": typed, "normalized": expected_normal}
        )
    if problems:
        raise AssertionError(
            "the implementation disagrees with docs/format.md section 5 on:\n  "
            + "\n  ".join(problems)
        )
    return {
        "description": (
            "Postern codename vectors (docs/format.md section 5): derived source secrets "
            "for fixed codenames, instance salts and Argon2id parameters, and codename "
            "normalization."
        ),
        "generator": "tests/vectors/generate_keyring.py",
        "wordlist": "EFF large word list (xkcdpass static/eff-long), 7,776 distinct words",
        "encoding": (
            "byte strings are lower-case hex; 'master' is the Argon2id output, given to "
            "help debugging (implementations need not expose it); 'codename' is the text "
            "as typed and 'normalized' its normalized form; a normalization case whose "
            "'normalized' is 'malformed' must be rejected before any derivation"
        ),
        "derivations": derivations,
        "normalization": normalization,
    }


# -- output --------------------------------------------------------------------------------------


def _render(build: Callable[[], dict[str, Any]]) -> str:
    return json.dumps(build(), indent=2, ensure_ascii=True) + "\n"


def render_keyring() -> str:
    """The exact text of keyring-v1.json."""
    return _render(build_keyring)


def render_codename() -> str:
    """The exact text of codename-v1.json."""
    return _render(build_codename)


def main() -> None:
    keyring_text = render_keyring()
    codename_text = render_codename()
    KEYRING_FILE.write_text(keyring_text, encoding="utf-8")
    CODENAME_FILE.write_text(codename_text, encoding="utf-8")
    keyring = json.loads(keyring_text)
    codename = json.loads(codename_text)
    print(f"wrote {len(keyring['cases'])} keyring cases to {KEYRING_FILE}")
    print(
        f"wrote {len(codename['derivations'])} derivations and "
        f"{len(codename['normalization'])} normalization cases to {CODENAME_FILE}"
    )


if __name__ == "__main__":
    main()
