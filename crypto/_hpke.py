"""RFC 9180 HPKE, base mode, for DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256 / AES-GCM.

Only the pieces Postern needs are implemented:

* KEM ``0x0020`` DHKEM(X25519, HKDF-SHA256), including ``DeriveKeyPair`` (§7.1.3);
* KDF ``0x0001`` HKDF-SHA256, with Extract and Expand written out over HMAC so that
  ``LabeledExtract`` / ``LabeledExpand`` follow §4 byte for byte;
* AEAD ``0x0001`` AES-128-GCM and ``0x0002`` AES-256-GCM;
* mode ``0x00`` (base) only: no PSK, no sender authentication.

Unlike ``cryptography.hazmat.primitives.hpke.Suite`` this module exposes the
multi-message contexts, the secret exporter, and lets a caller fix the ephemeral
private key, so that the RFC test vectors can be reproduced exactly. The steps are
deliberately spelled out one by one: a browser implementation over WebCrypto
mirrors them.

All keys are raw 32-byte strings. Every failure on the receiving side (wrong
lengths, a low-order ``enc``, a bad tag, a wrong key, info or aad) is the single
opaque :class:`~crypto.errors.DecryptionError`. Invalid arguments on the sending
side raise :class:`~crypto.errors.FormatError` with a message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import constant_time, hashes, hmac
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from crypto.errors import CryptoError, DecryptionError, FormatError

__all__ = [
    "AES_128_GCM",
    "AES_256_GCM",
    "Context",
    "derive_key_pair",
    "open_base",
    "seal_base",
    "setup_base_recipient",
    "setup_base_sender",
]

# AEAD identifiers (RFC 9180 §7.3).
AES_128_GCM: Final = 0x0001
AES_256_GCM: Final = 0x0002

# KEM and KDF identifiers (RFC 9180 §7.1, §7.2).
_KEM_ID: Final = 0x0020  # DHKEM(X25519, HKDF-SHA256)
_KDF_ID: Final = 0x0001  # HKDF-SHA256

_MODE_BASE: Final = 0x00

# Sizes (RFC 9180 §7.1, §7.2, §7.3).
_N_SECRET: Final = 32  # KEM shared secret
_N_ENC: Final = 32  # encapsulated key
_N_PK: Final = 32  # serialized public key
_N_SK: Final = 32  # serialized private key
_N_H: Final = 32  # SHA-256 output
_N_N: Final = 12  # AES-GCM nonce
_N_T: Final = 16  # AES-GCM tag
_AEAD_KEY_SIZES: Final[dict[int, int]] = {AES_128_GCM: 16, AES_256_GCM: 32}

_VERSION_LABEL: Final = b"HPKE-v1"
_KEM_SUITE_ID: Final = b"KEM" + _KEM_ID.to_bytes(2, "big")

# The largest sequence number; once reached the context is exhausted (§5.2).
_SEQ_MAX: Final = (1 << (8 * _N_N)) - 1


# --------------------------------------------------------------------------- #
# HKDF-SHA256 (RFC 5869) and the labeled variants of RFC 9180 §4.
# --------------------------------------------------------------------------- #


def _hmac_sha256(key: bytes, data: bytes) -> bytes:
    mac = hmac.HMAC(key, hashes.SHA256())
    mac.update(data)
    return mac.finalize()


def _extract(salt: bytes, ikm: bytes) -> bytes:
    # An empty salt is the same HMAC key as Nh zero bytes (HMAC zero-pads its key).
    return _hmac_sha256(salt, ikm)


def _expand(prk: bytes, info: bytes, length: int) -> bytes:
    if not 0 <= length <= 255 * _N_H:
        raise FormatError(f"HKDF-Expand length must be between 0 and {255 * _N_H}")
    okm = b""
    block = b""
    counter = 1
    while len(okm) < length:
        block = _hmac_sha256(prk, block + info + bytes([counter]))
        okm += block
        counter += 1
    return okm[:length]


def _labeled_extract(suite_id: bytes, salt: bytes, label: bytes, ikm: bytes) -> bytes:
    return _extract(salt, _VERSION_LABEL + suite_id + label + ikm)


def _labeled_expand(suite_id: bytes, prk: bytes, label: bytes, info: bytes, length: int) -> bytes:
    if not 0 <= length < 1 << 16:
        raise FormatError("LabeledExpand length must fit in two bytes")
    labeled_info = length.to_bytes(2, "big") + _VERSION_LABEL + suite_id + label + info
    return _expand(prk, labeled_info, length)


# --------------------------------------------------------------------------- #
# DHKEM(X25519, HKDF-SHA256), RFC 9180 §4.1 and §7.1.
# --------------------------------------------------------------------------- #


def _exchange(sk: X25519PrivateKey, pk: X25519PublicKey) -> bytes:
    """Raw X25519; OpenSSL already refuses an all-zero result with ValueError."""
    return sk.exchange(pk)


def _dh(sk: X25519PrivateKey, pk: X25519PublicKey) -> bytes | None:
    """X25519 output, or ``None`` for a low-order peer key (all-zero output, §7.1.4)."""
    try:
        dh = _exchange(sk, pk)
    except ValueError:
        return None
    if constant_time.bytes_eq(dh, bytes(_N_SECRET)):
        return None
    return dh


def _extract_and_expand(dh: bytes, kem_context: bytes) -> bytes:
    eae_prk = _labeled_extract(_KEM_SUITE_ID, b"", b"eae_prk", dh)
    return _labeled_expand(_KEM_SUITE_ID, eae_prk, b"shared_secret", kem_context, _N_SECRET)


def _public_bytes(sk: X25519PrivateKey) -> bytes:
    return sk.public_key().public_bytes_raw()


def derive_key_pair(ikm: bytes) -> tuple[bytes, bytes]:
    """``DeriveKeyPair(ikm)`` for X25519 (RFC 9180 §7.1.3): returns raw ``(sk, pk)``.

    ``ikm`` must be at least 32 bytes long (the RFC asks for at least Nsk bytes of
    entropy; the length is the part that can be checked).
    """
    if len(ikm) < _N_SK:
        raise FormatError(f"DeriveKeyPair needs at least {_N_SK} bytes of ikm")
    dkp_prk = _labeled_extract(_KEM_SUITE_ID, b"", b"dkp_prk", ikm)
    sk = _labeled_expand(_KEM_SUITE_ID, dkp_prk, b"sk", b"", _N_SK)
    return sk, _public_bytes(X25519PrivateKey.from_private_bytes(sk))


def _encap(pk_r: bytes, sk_e: X25519PrivateKey) -> tuple[bytes, bytes]:
    """``Encap(pkR)`` with a given ephemeral key: returns ``(shared_secret, enc)``."""
    if len(pk_r) != _N_PK:
        raise FormatError(f"recipient public key must be {_N_PK} bytes, got {len(pk_r)}")
    dh = _dh(sk_e, X25519PublicKey.from_public_bytes(pk_r))
    if dh is None:
        raise FormatError("recipient public key is a low-order X25519 point")
    enc = _public_bytes(sk_e)
    kem_context = enc + pk_r
    return _extract_and_expand(dh, kem_context), enc


@dataclass(frozen=True)
class RecipientKey:
    """An X25519 key object and its public key, built once for many envelopes (deriving the
    public key is a scalar multiplication, as the DH itself is)."""

    sk: X25519PrivateKey = field(repr=False)
    pk: bytes


def prepare_key(sk_r: bytes) -> RecipientKey:
    if len(sk_r) != _N_SK:
        raise FormatError("an X25519 private key is 32 bytes")
    sk = X25519PrivateKey.from_private_bytes(sk_r)
    return RecipientKey(sk, _public_bytes(sk))


def _decap(enc: bytes, sk_r: bytes | RecipientKey) -> bytes:
    """``Decap(enc, skR)``: returns the shared secret or raises DecryptionError."""
    if len(enc) != _N_ENC or (isinstance(sk_r, bytes) and len(sk_r) != _N_SK):
        raise DecryptionError()
    key = sk_r if isinstance(sk_r, RecipientKey) else prepare_key(sk_r)
    dh = _dh(key.sk, X25519PublicKey.from_public_bytes(enc))
    if dh is None:
        raise DecryptionError()
    kem_context = enc + key.pk
    return _extract_and_expand(dh, kem_context)


# --------------------------------------------------------------------------- #
# Key schedule and encryption context, RFC 9180 §5.1 and §5.2.
# --------------------------------------------------------------------------- #


def _check_aead(aead_id: int) -> int:
    """Return Nk for a supported AEAD id, else raise FormatError."""
    try:
        return _AEAD_KEY_SIZES[aead_id]
    except KeyError:
        raise FormatError(
            f"unsupported HPKE AEAD id {aead_id:#06x}; "
            f"use AES_128_GCM ({AES_128_GCM:#06x}) or AES_256_GCM ({AES_256_GCM:#06x})"
        ) from None


def _hpke_suite_id(aead_id: int) -> bytes:
    return (
        b"HPKE"
        + _KEM_ID.to_bytes(2, "big")
        + _KDF_ID.to_bytes(2, "big")
        + aead_id.to_bytes(2, "big")
    )


def _key_schedule_context(suite_id: bytes, info: bytes) -> bytes:
    psk_id_hash = _labeled_extract(suite_id, b"", b"psk_id_hash", b"")
    info_hash = _labeled_extract(suite_id, b"", b"info_hash", info)
    return bytes([_MODE_BASE]) + psk_id_hash + info_hash


def _key_schedule(shared_secret: bytes, info: bytes, aead_id: int) -> Context:
    """``KeyScheduleS`` / ``KeyScheduleR`` for base mode (empty psk and psk_id)."""
    n_k = _check_aead(aead_id)
    suite_id = _hpke_suite_id(aead_id)
    context = _key_schedule_context(suite_id, info)
    secret = _labeled_extract(suite_id, shared_secret, b"secret", b"")
    key = _labeled_expand(suite_id, secret, b"key", context, n_k)
    base_nonce = _labeled_expand(suite_id, secret, b"base_nonce", context, _N_N)
    exporter_secret = _labeled_expand(suite_id, secret, b"exp", context, _N_H)
    return Context(aead_id=aead_id, key=key, base_nonce=base_nonce, exporter_secret=exporter_secret)


class Context:
    """An HPKE encryption context (RFC 9180 §5.2), usable by sender or recipient.

    A sender only calls :meth:`seal` and a recipient only :meth:`open`; both share
    the sequence number, which advances after every successful operation. A failed
    :meth:`open` leaves it unchanged.

    Contexts come from :func:`setup_base_sender` / :func:`setup_base_recipient`.
    Building one directly (in particular with a non-zero ``seq``) is for tests only:
    two contexts with the same key and sequence number reuse AES-GCM nonces.
    """

    __slots__ = (
        "_aead",
        "_aead_id",
        "_base_nonce",
        "_exporter_secret",
        "_key",
        "_seq",
        "_suite_id",
    )

    def __init__(
        self,
        *,
        aead_id: int,
        key: bytes,
        base_nonce: bytes,
        exporter_secret: bytes,
        seq: int = 0,
    ) -> None:
        n_k = _check_aead(aead_id)
        if len(key) != n_k or len(base_nonce) != _N_N or len(exporter_secret) != _N_H:
            raise FormatError("HPKE context key, base_nonce or exporter_secret has a bad length")
        if not 0 <= seq <= _SEQ_MAX:
            raise FormatError("HPKE sequence number out of range")
        self._aead_id = aead_id
        self._suite_id = _hpke_suite_id(aead_id)
        self._key = key
        self._aead = AESGCM(key)
        self._base_nonce = base_nonce
        self._exporter_secret = exporter_secret
        self._seq = seq

    @property
    def aead_id(self) -> int:
        return self._aead_id

    @property
    def key(self) -> bytes:
        return self._key

    @property
    def base_nonce(self) -> bytes:
        return self._base_nonce

    @property
    def exporter_secret(self) -> bytes:
        return self._exporter_secret

    @property
    def seq(self) -> int:
        return self._seq

    def _next_nonce(self) -> bytes:
        # Checked before use, so a nonce is never computed for an exhausted context;
        # the observable behaviour matches §5.2 (IncrementSeq raises at _SEQ_MAX).
        if self._seq >= _SEQ_MAX:
            raise CryptoError("HPKE context exhausted: sequence number limit reached")
        seq_bytes = self._seq.to_bytes(_N_N, "big")
        return bytes(a ^ b for a, b in zip(self._base_nonce, seq_bytes, strict=True))

    def seal(self, aad: bytes, pt: bytes) -> bytes:
        """``ContextS.Seal``: encrypt ``pt`` with the next nonce; returns ``ct || tag``."""
        ct = self._aead.encrypt(self._next_nonce(), pt, aad)
        self._seq += 1
        return ct

    def open(self, aad: bytes, ct: bytes) -> bytes:
        """``ContextR.Open``: decrypt ``ct || tag`` under the next nonce."""
        nonce = self._next_nonce()
        if len(ct) < _N_T:
            raise DecryptionError()
        try:
            pt = self._aead.decrypt(nonce, ct, aad)
        except InvalidTag:
            raise DecryptionError() from None
        self._seq += 1
        return pt

    def export(self, exporter_context: bytes, length: int) -> bytes:
        """``Context.Export`` (§5.3): ``length`` bytes bound to ``exporter_context``."""
        if not 0 <= length <= 255 * _N_H:
            raise FormatError(f"export length must be between 0 and {255 * _N_H}")
        return _labeled_expand(
            self._suite_id, self._exporter_secret, b"sec", exporter_context, length
        )


# --------------------------------------------------------------------------- #
# Public API: base mode setup and single-shot helpers, RFC 9180 §5.1.1 and §6.1.
# --------------------------------------------------------------------------- #


def setup_base_sender(
    pk_r: bytes,
    info: bytes,
    *,
    aead_id: int = AES_256_GCM,
    ephemeral_private: bytes | None = None,
) -> tuple[bytes, Context]:
    """``SetupBaseS(pkR, info)``: returns ``(enc, context)``.

    ``ephemeral_private`` fixes the raw 32-byte ephemeral X25519 private key; it is
    meant for reproducing test vectors only. Leave it ``None`` in production so a
    fresh key is drawn from the OS.
    """
    _check_aead(aead_id)
    if ephemeral_private is None:
        sk_e = X25519PrivateKey.generate()
    elif len(ephemeral_private) != _N_SK:
        raise FormatError(f"ephemeral private key must be {_N_SK} bytes")
    else:
        sk_e = X25519PrivateKey.from_private_bytes(ephemeral_private)
    shared_secret, enc = _encap(pk_r, sk_e)
    return enc, _key_schedule(shared_secret, info, aead_id)


def setup_base_recipient(
    enc: bytes, sk_r: bytes | RecipientKey, info: bytes, *, aead_id: int = AES_256_GCM
) -> Context:
    """``SetupBaseR(enc, skR, info)``; any problem with ``enc`` or ``skR`` is DecryptionError."""
    _check_aead(aead_id)
    return _key_schedule(_decap(enc, sk_r), info, aead_id)


def seal_base(
    pk_r: bytes,
    info: bytes,
    aad: bytes,
    plaintext: bytes,
    *,
    aead_id: int = AES_256_GCM,
    ephemeral_private: bytes | None = None,
) -> tuple[bytes, bytes]:
    """Single-shot ``SealBase``: returns ``(enc, ciphertext)``."""
    enc, ctx = setup_base_sender(pk_r, info, aead_id=aead_id, ephemeral_private=ephemeral_private)
    return enc, ctx.seal(aad, plaintext)


def open_base(
    enc: bytes,
    sk_r: bytes | RecipientKey,
    info: bytes,
    aad: bytes,
    ciphertext: bytes,
    *,
    aead_id: int = AES_256_GCM,
) -> bytes:
    """Single-shot ``OpenBase``: returns the plaintext or raises DecryptionError."""
    return setup_base_recipient(enc, sk_r, info, aead_id=aead_id).open(aad, ciphertext)
