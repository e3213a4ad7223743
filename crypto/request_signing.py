"""Signed requests of the sync API (docs/format.md section 9.1), for both of its ends.

A transfer client signs, with its Ed25519 key, the method, the request target, the SHA-256
of the body, a timestamp and a nonce, and sends the signature and its inputs in four headers.
The bytes signed, the header names and the checks of the signing side are defined here once;
the server (dropbox/sync/auth.py) verifies with :func:`verify_request_signature`, the
transfer client (transfer/client.py) signs with :func:`sign_request_digest`.
"""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Final

from crypto import CryptoError, KeyKind, PrivateKey, SignatureError
from crypto.keyring import verify_signature

CLIENT_HEADER: Final = "X-Postern-Client"
TIMESTAMP_HEADER: Final = "X-Postern-Timestamp"
NONCE_HEADER: Final = "X-Postern-Nonce"
SIGNATURE_HEADER: Final = "X-Postern-Signature"
#: The domain label in front of every signed request, so that a request signature can never
#: be taken for a signature of anything else.
REQUEST_LABEL: Final = b"postern/v1 sync request\n"
NONCE_LEN: Final = 16

_METHOD_RE = re.compile(r"\A[A-Z]+\Z")
_TARGET_RE = re.compile(r"\A/[\x21-\x7e]*\Z")


def signed_message(
    method: str, target: str, body_sha256: bytes, timestamp: str, nonce: str
) -> bytes:
    """The bytes a transfer client signs: label, then method, target, body hash (hex),
    timestamp and nonce (hex), joined by newlines.

    Raises UnicodeEncodeError for a target that is not latin-1: WSGI hands the target that
    arrived on the wire over as latin-1 text, so that is how it is turned back into bytes.
    """
    fields = (method, target, body_sha256.hex(), timestamp, nonce)
    return REQUEST_LABEL + b"\n".join(field.encode("latin-1") for field in fields)


def sign_request_digest(
    key: PrivateKey, method: str, target: str, body_sha256: bytes, now: int, nonce: bytes
) -> dict[str, str]:
    """:func:`sign_request` for a body given by its SHA-256 (a body streamed from a file)."""
    if key.kind is not KeyKind.TRANSFER:
        raise CryptoError(f"requests are signed with a transfer key, not a {key.kind} key")
    if not _METHOD_RE.match(method):
        raise CryptoError(f"not an upper-case HTTP method: {method!r}")
    if not _TARGET_RE.match(target):
        raise CryptoError(f"not an ASCII request target: {target!r}")
    if len(body_sha256) != 32:
        raise CryptoError("a body digest is 32 bytes")
    if isinstance(now, bool) or not isinstance(now, int) or now < 0:
        raise CryptoError("the timestamp is a non-negative integer number of seconds")
    if len(nonce) != NONCE_LEN:
        raise CryptoError(f"a nonce is {NONCE_LEN} bytes")
    timestamp, nonce_hex = str(now), nonce.hex()
    signature = key.sign(signed_message(method, target, body_sha256, timestamp, nonce_hex))
    return {
        CLIENT_HEADER: key.key_id.hex(),
        TIMESTAMP_HEADER: timestamp,
        NONCE_HEADER: nonce_hex,
        SIGNATURE_HEADER: base64.b64encode(signature).decode("ascii"),
    }


def sign_request(
    key: PrivateKey, method: str, target: str, body: bytes, now: int, nonce: bytes
) -> dict[str, str]:
    """The four signature headers of a request.

    ``target`` is the request target exactly as sent (path and query), ``body`` the body as
    sent (empty for GET), ``now`` seconds since the epoch and ``nonce`` 16 fresh random bytes.
    Raises CryptoError for a key that is not a transfer key or malformed inputs.
    """
    return sign_request_digest(key, method, target, hashlib.sha256(body).digest(), now, nonce)


def verify_request_signature(
    public_key: bytes,
    signature: bytes,
    *,
    method: str,
    target: str,
    body_sha256: bytes,
    timestamp: str,
    nonce: str,
) -> None:
    """Check a request's Ed25519 signature under the client's public key.

    ``timestamp`` and ``nonce`` are the header values as sent. Raises SignatureError, also
    for a target that cannot have been signed (not latin-1).
    """
    try:
        message = signed_message(method, target, body_sha256, timestamp, nonce)
    except UnicodeEncodeError:
        raise SignatureError("the request target cannot have been signed") from None
    verify_signature(public_key, signature, message)
