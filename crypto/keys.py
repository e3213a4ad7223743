"""Keys (docs/format.md section 2): kinds, key ids, fingerprints, signatures and key files."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from enum import StrEnum

import nacl.exceptions
import nacl.pwhash
import nacl.secret
import nacl.utils
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from crypto._encoding import b64decode, b64encode, check_label, format_text_lines, parse_text_lines
from crypto.errors import (
    FormatError,
    KeyFileError,
    KeyFileVersionError,
    PassphraseError,
    SignatureError,
    UnsupportedVersion,
)

KEY_ID_LEN = 16
FINGERPRINT_LEN = 20
DEFAULT_OPSLIMIT = 3
DEFAULT_MEMLIMIT = 256 * 1024 * 1024
MIN_MEMLIMIT = 64 * 1024 * 1024
#: The most memory a key file may ask Argon2id for, per open: four times the default, the
#: largest the station writes. A key file is hostile input (it arrives on a stick, or an
#: attacker edits it), and a bigger limit would let it take all of a machine's memory.
MAX_MEMLIMIT = 1024 * 1024 * 1024
MAX_OPSLIMIT = 16

PUBLIC_HEADER = "postern public key v1"
PRIVATE_HEADER = "postern private key v1"


class Algorithm(StrEnum):
    X25519 = "x25519"
    ED25519 = "ed25519"


class KeyKind(StrEnum):
    ROOT = "root"
    ENCRYPTION = "encryption"
    SIGNING = "signing"
    TRANSFER = "transfer"
    ONION_AUTH = "onion-auth"
    SERVER = "server"
    REPLY = "reply"

    @property
    def algorithm(self) -> Algorithm:
        if self in (KeyKind.ENCRYPTION, KeyKind.ONION_AUTH, KeyKind.REPLY):
            return Algorithm.X25519
        return Algorithm.ED25519


def _digest(algorithm: Algorithm, public_key: bytes) -> bytes:
    if len(public_key) != 32:
        raise FormatError("a public key is 32 bytes")
    return hashlib.sha256(
        b"postern/v1 key\n" + algorithm.value.encode("ascii") + b"\n" + public_key
    ).digest()


def key_id(algorithm: Algorithm, public_key: bytes) -> bytes:
    """The 16-byte key id of a public key."""
    return _digest(algorithm, public_key)[:KEY_ID_LEN]


def fingerprint(algorithm: Algorithm, public_key: bytes) -> str:
    """The human fingerprint: 40 uppercase hex digits in ten groups of four."""
    digits = _digest(algorithm, public_key)[:FINGERPRINT_LEN].hex().upper()
    return " ".join(digits[i : i + 4] for i in range(0, len(digits), 4))


def x25519_public(private_key: bytes) -> bytes:
    if len(private_key) != 32:
        raise FormatError("an X25519 private key is 32 bytes")
    return (
        X25519PrivateKey.from_private_bytes(private_key)
        .public_key()
        .public_bytes(Encoding.Raw, PublicFormat.Raw)
    )


def ed25519_public(seed: bytes) -> bytes:
    if len(seed) != 32:
        raise FormatError("an Ed25519 seed is 32 bytes")
    return (
        Ed25519PrivateKey.from_private_bytes(seed)
        .public_key()
        .public_bytes(Encoding.Raw, PublicFormat.Raw)
    )


def public_from_private(algorithm: Algorithm, private_key: bytes) -> bytes:
    if algorithm is Algorithm.X25519:
        return x25519_public(private_key)
    return ed25519_public(private_key)


def verify_signature(public_key: bytes, signature: bytes, message: bytes) -> None:
    """Ed25519 verification raising SignatureError."""
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        raise SignatureError("signature does not verify") from None


@dataclass(frozen=True)
class PublicKey:
    """A public key with its kind and a human label."""

    kind: KeyKind
    key: bytes
    label: str

    def __post_init__(self) -> None:
        if len(self.key) != 32:
            raise FormatError("a public key is 32 bytes")
        check_label(self.label)

    @property
    def algorithm(self) -> Algorithm:
        return self.kind.algorithm

    @property
    def key_id(self) -> bytes:
        return key_id(self.algorithm, self.key)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.algorithm, self.key)


@dataclass(frozen=True)
class PrivateKey:
    """A private key (X25519 scalar or Ed25519 seed) with its kind and label."""

    kind: KeyKind
    secret: bytes = field(repr=False)
    label: str

    def __post_init__(self) -> None:
        if len(self.secret) != 32:
            raise FormatError("a private key is 32 bytes")
        check_label(self.label)

    @classmethod
    def generate(cls, kind: KeyKind, label: str) -> PrivateKey:
        return cls(kind=kind, secret=os.urandom(32), label=label)

    @property
    def algorithm(self) -> Algorithm:
        return self.kind.algorithm

    @property
    def public(self) -> PublicKey:
        return PublicKey(self.kind, public_from_private(self.algorithm, self.secret), self.label)

    @property
    def key_id(self) -> bytes:
        return self.public.key_id

    def sign(self, message: bytes) -> bytes:
        if self.algorithm is not Algorithm.ED25519:
            raise FormatError(f"a {self.kind.value} key cannot sign")
        return Ed25519PrivateKey.from_private_bytes(self.secret).sign(message)


# -- key files ------------------------------------------------------------------------------


def _parse_kind(value: str, what: str) -> KeyKind:
    try:
        kind = KeyKind(value)
    except ValueError:
        raise KeyFileError(f"{what}: unknown key kind {value!r}") from None
    if kind is KeyKind.REPLY:
        raise KeyFileError(f"{what}: reply keys are never stored in key files")
    return kind


def _checked_label(value: str, what: str) -> str:
    try:
        return check_label(value)
    except FormatError as exc:
        raise KeyFileError(f"{what}: {exc}") from None


def dump_public_key(key: PublicKey) -> bytes:
    if key.kind is KeyKind.REPLY:
        raise FormatError("reply keys are never stored in key files")
    return format_text_lines(
        PUBLIC_HEADER,
        [
            ("kind", key.kind.value),
            ("label", key.label),
            ("public-key", b64encode(key.key)),
            ("fingerprint", key.fingerprint),
        ],
    )


def load_public_key(data: bytes) -> PublicKey:
    what = "public key file"
    try:
        fields = parse_text_lines(
            data,
            header=PUBLIC_HEADER,
            names=["kind", "label", "public-key", "fingerprint"],
            max_bytes=1024,
            what=what,
        )
        kind = _parse_kind(fields["kind"], what)
        key = PublicKey(
            kind,
            b64decode(fields["public-key"], length=32, what=f"{what}: public-key"),
            _checked_label(fields["label"], what),
        )
    except KeyFileError:
        raise
    except UnsupportedVersion as exc:
        raise KeyFileVersionError(str(exc)) from None
    except FormatError as exc:
        if type(exc) is not FormatError:
            raise
        raise KeyFileError(str(exc)) from None
    if fields["fingerprint"] != key.fingerprint:
        raise KeyFileError(f"{what}: the fingerprint line does not match the key")
    return key


def _argon2_key(passphrase: str, salt: bytes, opslimit: int, memlimit: int) -> bytes:
    # libsodium fails (PyNaCl raises RuntimeError, or MemoryError) when the machine cannot
    # give it ``memlimit`` bytes: our error, said in words, never PyNaCl's.
    try:
        return nacl.pwhash.argon2id.kdf(
            nacl.secret.SecretBox.KEY_SIZE,
            passphrase.encode("utf-8"),
            salt,
            opslimit=opslimit,
            memlimit=memlimit,
        )
    except (RuntimeError, MemoryError, nacl.exceptions.CryptoError):
        raise KeyFileError(
            f"Argon2id could not derive the key with {memlimit // (1024 * 1024)} MiB of memory "
            "on this machine"
        ) from None


def dump_private_key(
    key: PrivateKey,
    passphrase: str | None,
    *,
    opslimit: int = DEFAULT_OPSLIMIT,
    memlimit: int = DEFAULT_MEMLIMIT,
) -> bytes:
    """Serialize a private key, sealed under a passphrase (or unprotected if it is None)."""
    head = [
        ("kind", key.kind.value),
        ("label", key.label),
        ("public-key", b64encode(key.public.key)),
    ]
    if passphrase is None:
        return format_text_lines(
            PRIVATE_HEADER, [*head, ("protection", "none"), ("private-key", b64encode(key.secret))]
        )
    if not 1 <= opslimit <= MAX_OPSLIMIT or not MIN_MEMLIMIT <= memlimit <= MAX_MEMLIMIT:
        raise FormatError(
            f"argon2 parameters out of range (opslimit 1 to {MAX_OPSLIMIT}, "
            f"memlimit {MIN_MEMLIMIT} to {MAX_MEMLIMIT} bytes)"
        )
    if memlimit % 1024:
        raise FormatError("argon2 memlimit must be a multiple of 1024")
    if not passphrase:
        raise FormatError("the passphrase must not be empty")
    salt = os.urandom(16)
    box = nacl.secret.SecretBox(_argon2_key(passphrase, salt, opslimit, memlimit))
    sealed = bytes(box.encrypt(key.secret, nacl.utils.random(24)))
    return format_text_lines(
        PRIVATE_HEADER,
        [
            *head,
            ("protection", "argon2id"),
            ("argon2-opslimit", str(opslimit)),
            ("argon2-memlimit", str(memlimit)),
            ("salt", b64encode(salt)),
            ("sealed", b64encode(sealed)),
        ],
    )


def _decimal(value: str, low: int, high: int, what: str) -> int:
    if not value.isascii() or not value.isdigit() or (value.startswith("0") and value != "0"):
        raise KeyFileError(f"{what}: not a decimal integer")
    number = int(value)
    if not low <= number <= high:
        raise KeyFileError(f"{what}: must be from {low} to {high}")
    return number


def load_private_key(data: bytes, passphrase: str | None) -> PrivateKey:
    """Parse a private key file and open it with the passphrase (ignored if unprotected)."""
    what = "private key file"
    head = ["kind", "label", "public-key", "protection"]
    protection = _peek_protection(data)
    try:
        if protection == "none":
            fields = parse_text_lines(
                data, header=PRIVATE_HEADER, names=[*head, "private-key"], max_bytes=2048, what=what
            )
            secret = b64decode(fields["private-key"], length=32, what=f"{what}: private-key")
        elif protection == "argon2id":
            fields = parse_text_lines(
                data,
                header=PRIVATE_HEADER,
                names=[*head, "argon2-opslimit", "argon2-memlimit", "salt", "sealed"],
                max_bytes=2048,
                what=what,
            )
            opslimit = _decimal(
                fields["argon2-opslimit"], 1, MAX_OPSLIMIT, f"{what}: argon2-opslimit"
            )
            # Bounded before any key is derived: Argon2id takes what the file asks for.
            memlimit = _decimal(
                fields["argon2-memlimit"], MIN_MEMLIMIT, MAX_MEMLIMIT, f"{what}: argon2-memlimit"
            )
            if memlimit % 1024:
                raise KeyFileError(f"{what}: argon2-memlimit must be a multiple of 1024")
            salt = b64decode(fields["salt"], length=16, what=f"{what}: salt")
            sealed = b64decode(fields["sealed"], length=72, what=f"{what}: sealed")
            # Check the rest of the format before any key is derived: a malformed file is a
            # format error whatever the passphrase (docs/format.md section 1).
            _parse_kind(fields["kind"], what)
            _checked_label(fields["label"], what)
            b64decode(fields["public-key"], length=32, what=f"{what}: public-key")
            if passphrase is None:
                raise PassphraseError("this private key is protected by a passphrase")
            box = nacl.secret.SecretBox(_argon2_key(passphrase, salt, opslimit, memlimit))
            try:
                secret = bytes(box.decrypt(sealed[24:], sealed[:24]))
            except nacl.exceptions.CryptoError:
                raise PassphraseError("wrong passphrase for this private key") from None
        else:
            # Let the generic parser report header problems first.
            parse_text_lines(data, header=PRIVATE_HEADER, names=head, max_bytes=2048, what=what)
            raise KeyFileError(f"{what}: protection must be 'argon2id' or 'none'")
        kind = _parse_kind(fields["kind"], what)
        label = _checked_label(fields["label"], what)
        public = b64decode(fields["public-key"], length=32, what=f"{what}: public-key")
    except (KeyFileError, PassphraseError):
        raise
    except UnsupportedVersion as exc:
        raise KeyFileVersionError(str(exc)) from None
    except FormatError as exc:
        if type(exc) is not FormatError:
            raise
        raise KeyFileError(str(exc)) from None
    key = PrivateKey(kind, secret, label)
    if key.public.key != public:
        raise KeyFileError(f"{what}: the private key does not match its public-key line")
    return key


def _peek_protection(data: bytes) -> str | None:
    for line in data[:2048].split(b"\n")[4:5]:
        if line.startswith(b"protection: "):
            return line[len(b"protection: ") :].decode("ascii", "replace")
    return None
