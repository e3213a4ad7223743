"""RecipientKeys: the X25519 key objects are built once for many envelopes, not per envelope."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric import x25519

from crypto import Kind, RecipientKeys, open_bytes, seal_bytes
from crypto.errors import DecryptionError, FormatError
from crypto.keys import x25519_public

SECRETS = [hashlib.sha256(b"recipient keys %d" % i).digest() for i in range(3)]


def _envelope(n: int, recipient: int = 1) -> bytes:
    public = x25519_public(SECRETS[recipient])
    return seal_bytes(b"message %d" % n, [public], Kind.MESSAGE, "", "text/plain")


def _count_key_objects(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    built = [0]
    original = x25519.X25519PrivateKey.from_private_bytes

    def counting(data: bytes) -> x25519.X25519PrivateKey:
        built[0] += 1
        return original(data)

    monkeypatch.setattr(x25519.X25519PrivateKey, "from_private_bytes", counting)
    return built


def test_prepared_keys_open_many_envelopes_without_new_key_objects(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    envelopes = [_envelope(n) for n in range(20)]
    built = _count_key_objects(monkeypatch)
    keys = RecipientKeys(SECRETS)
    assert built[0] == len(SECRETS)
    for n, envelope in enumerate(envelopes):
        assert open_bytes(envelope, keys)[1] == b"message %d" % n
    assert built[0] == len(SECRETS)


def test_raw_secrets_still_open_and_outsiders_still_fail() -> None:
    envelope = _envelope(0, recipient=2)
    assert open_bytes(envelope, SECRETS)[1] == b"message 0"
    with pytest.raises(DecryptionError):
        open_bytes(envelope, RecipientKeys(SECRETS[:2]))
    with pytest.raises(FormatError):
        RecipientKeys([b"short"])
