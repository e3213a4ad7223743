"""Tests for crypto/request_signing.py: the signature of a sync API request (section 9.1).

The expected bytes are written out here from docs/format.md, and the signature is checked
with the cryptography package directly, so that the wire format cannot drift unnoticed.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from crypto.errors import CryptoError, SignatureError
from crypto.keys import KeyKind, PrivateKey
from crypto.request_signing import sign_request, verify_request_signature
from crypto.request_signing import signed_message as request_message


def _seed(name: str) -> bytes:
    return hashlib.sha256(b"postern test_transfer_client\n" + name.encode()).digest()


SERVER_KEY = PrivateKey(KeyKind.SERVER, _seed("server"), "server signing key")
CLIENT_KEY = PrivateKey(KeyKind.TRANSFER, _seed("transfer"), "transfer machine")


def test_sign_request_matches_an_independent_computation() -> None:
    body = b'{"items":["1","2"]}'
    nonce = bytes(range(16))
    headers = sign_request(CLIENT_KEY, "POST", "/v1/manifests", body, 1_790_000_000, nonce)
    assert set(headers) == {
        "X-Postern-Client",
        "X-Postern-Timestamp",
        "X-Postern-Nonce",
        "X-Postern-Signature",
    }
    public = Ed25519PrivateKey.from_private_bytes(_seed("transfer")).public_key()
    raw_public = public.public_bytes_raw()
    key_id = hashlib.sha256(b"postern/v1 key\ned25519\n" + raw_public).digest()[:16]
    assert headers["X-Postern-Client"] == key_id.hex()
    assert headers["X-Postern-Timestamp"] == "1790000000"
    assert headers["X-Postern-Nonce"] == "000102030405060708090a0b0c0d0e0f"
    expected_message = (
        b"postern/v1 sync request\nPOST\n/v1/manifests\n"
        + hashlib.sha256(body).hexdigest().encode()
        + b"\n1790000000\n000102030405060708090a0b0c0d0e0f"
    )
    signature = base64.b64decode(headers["X-Postern-Signature"], validate=True)
    assert len(signature) == 64
    public.verify(signature, expected_message)  # raises if it does not verify
    # Ed25519 is deterministic: the same inputs give the same signature.
    expected = Ed25519PrivateKey.from_private_bytes(_seed("transfer")).sign(expected_message)
    assert signature == expected
    assert (
        request_message(
            "POST", "/v1/manifests", hashlib.sha256(body).digest(), "1790000000", nonce.hex()
        )
        == expected_message
    )


def test_sign_request_of_a_get_signs_the_empty_body() -> None:
    headers = sign_request(CLIENT_KEY, "GET", "/v1/items?limit=1000", b"", 5, b"\xff" * 16)
    message = (
        b"postern/v1 sync request\nGET\n/v1/items?limit=1000\n"
        + hashlib.sha256(b"").hexdigest().encode()
        + b"\n5\n"
        + b"ff" * 16
    )
    public = Ed25519PrivateKey.from_private_bytes(_seed("transfer")).public_key()
    public.verify(base64.b64decode(headers["X-Postern-Signature"]), message)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"key": SERVER_KEY}, "transfer key"),
        ({"method": "get"}, "method"),
        ({"target": "v1/status"}, "target"),
        ({"target": "/v1/st atus"}, "target"),
        ({"target": "/v1/\u00e9"}, "target"),
        ({"now": -1}, "timestamp"),
        ({"now": 1.5}, "timestamp"),
        ({"nonce": b"short"}, "nonce"),
    ],
)
def test_sign_request_refuses_bad_input(change: dict[str, Any], match: str) -> None:
    arguments: dict[str, Any] = {
        "key": CLIENT_KEY,
        "method": "GET",
        "target": "/v1/status",
        "body": b"",
        "now": 1,
        "nonce": bytes(16),
    }
    arguments.update(change)
    with pytest.raises(CryptoError, match=match):
        sign_request(**arguments)


def test_a_signature_verifies_for_exactly_what_was_signed() -> None:
    body_sha256 = hashlib.sha256(b"{}").digest()
    headers = sign_request(CLIENT_KEY, "POST", "/v1/manifests", b"{}", 7, bytes(16))
    signature = base64.b64decode(headers["X-Postern-Signature"])
    signed = {
        "method": "POST",
        "target": "/v1/manifests",
        "body_sha256": body_sha256,
        "timestamp": "7",
        "nonce": "00" * 16,
    }
    verify_request_signature(CLIENT_KEY.public.key, signature, **signed)  # type: ignore[arg-type]
    for name, other in [
        ("method", "PUT"),
        ("target", "/v1/manifest"),
        ("target", "/v1/\u00e9t\u00e9\u2603"),  # not latin-1: cannot have been signed
        ("body_sha256", hashlib.sha256(b"[]").digest()),
        ("timestamp", "8"),
        ("nonce", "01" * 16),
    ]:
        with pytest.raises(SignatureError):
            verify_request_signature(
                CLIENT_KEY.public.key,
                signature,
                **{**signed, name: other},  # type: ignore[arg-type]
            )
