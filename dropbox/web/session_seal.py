"""The session cookie's secret and the two keys derived from it (docs/format.md section 8.1).

The browser holds ``postern_session``: 32 random bytes, base64url without padding. The server
keeps no copy. From those bytes come, by keyed BLAKE2b with a distinct personalization each:

- the **lookup key**, the session row's primary key: it finds the row, and neither gives the
  cookie back nor opens anything;
- the **seal key**, a SecretBox (XSalsa20-Poly1305) key that seals the session's content.

So a seized database holds sessions it cannot open, and cannot tell which source one belongs
to: that takes the cookie, which only the source's browser has.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from dataclasses import dataclass
from typing import Final

import nacl.encoding
import nacl.exceptions
import nacl.hash
import nacl.secret
import nacl.utils

COOKIE_BYTES: Final = 32
_COOKIE_CHARS: Final = 43  # base64url of 32 bytes, without padding
#: BLAKE2b personalizations (16 bytes each): one purpose, one key.
_LOOKUP_PURPOSE: Final = b"postern-sess-row"
_SEAL_PURPOSE: Final = b"postern-sess-box"


@dataclass(frozen=True)
class CookieKeys:
    """What the server derives from a cookie while a request that carries it runs."""

    lookup: bytes
    seal: bytes

    def __repr__(self) -> str:
        return "CookieKeys(...)"


def new_cookie() -> str:
    """A fresh cookie value: 32 bytes from the CSPRNG."""
    return _encode(secrets.token_bytes(COOKIE_BYTES))


def cookie_keys(cookie: str) -> CookieKeys | None:
    """The keys of a cookie, or None if it is not a cookie this server could have made."""
    if len(cookie) != _COOKIE_CHARS or not cookie.isascii():
        return None
    try:
        raw = base64.urlsafe_b64decode(cookie + "=")
    except (binascii.Error, ValueError):
        return None
    if len(raw) != COOKIE_BYTES or _encode(raw) != cookie:
        return None
    return CookieKeys(lookup=_derive(raw, _LOOKUP_PURPOSE), seal=_derive(raw, _SEAL_PURPOSE))


def seal(keys: CookieKeys, content: bytes) -> bytes:
    """``content`` sealed under the cookie's seal key (a random 24-byte nonce first)."""
    box = nacl.secret.SecretBox(keys.seal)
    return bytes(box.encrypt(content, nacl.utils.random(nacl.secret.SecretBox.NONCE_SIZE)))


def unseal(keys: CookieKeys, sealed: bytes) -> bytes | None:
    """The content sealed by :func:`seal` under these keys, or None if it does not open."""
    try:
        return bytes(nacl.secret.SecretBox(keys.seal).decrypt(sealed))
    except (nacl.exceptions.CryptoError, ValueError, TypeError):
        return None


def _derive(secret: bytes, purpose: bytes) -> bytes:
    return bytes(
        nacl.hash.blake2b(
            b"", digest_size=32, key=secret, person=purpose, encoder=nacl.encoding.RawEncoder
        )
    )


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")
