"""Request authentication of the sync API (docs/format.md section 9.1).

Every request names a transfer client of the installed keyring and carries its Ed25519
signature over the method, the request target, the SHA-256 of the body, a timestamp and a
nonce; the signed bytes and the header names are defined once, in crypto/request_signing.py.
:func:`verify_request` is pure: it checks everything but replays, in the order of the
format (headers, client, signature, timestamp). Replays are caught by a :class:`NonceStore`:
a table of the nonces used, whose primary key refuses a second use in any process.

Nothing here knows Flask: the app's ``before_request`` hook (dropbox/sync/app.py) gathers
the inputs and turns an :class:`AuthError` into a 401 answer.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final, Protocol

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from crypto import Algorithm, SignatureError, TransferClient, key_id
from crypto.request_signing import (
    CLIENT_HEADER,
    NONCE_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    verify_request_signature,
)
from dropbox.db import SyncNonce
from dropbox.errors import DropboxError
from dropbox.storage import is_out_of_space

#: A request whose timestamp is further than this from the server's clock is stale.
MAX_CLOCK_SKEW: Final = 300
#: How long a nonce is remembered, in seconds.
NONCE_LIFETIME: Final = 600

# Error codes of the 401 answers (docs/format.md section 9.1).
BAD_HEADERS: Final = "bad_signature_headers"
UNKNOWN_CLIENT: Final = "unknown_client"
BAD_SIGNATURE: Final = "bad_signature"
STALE_REQUEST: Final = "stale_request"
REPLAYED_REQUEST: Final = "replayed_request"

_log = logging.getLogger(__name__)

_KEY_ID = re.compile(r"\A[0-9a-f]{32}\Z")
_NONCE = re.compile(r"\A[0-9a-f]{32}\Z")
# No sign, no leading zero; 20 digits are far beyond any clock this server will read.
_TIMESTAMP = re.compile(r"\A(?:0|[1-9][0-9]{0,19})\Z")
_BASE64_64_BYTES = re.compile(r"\A[A-Za-z0-9+/]{86}==\Z")


class Headers(Protocol):
    """Request headers, looked up by name without regard to case (werkzeug's ``Headers``)."""

    def get(self, key: str, /) -> str | None: ...


class AuthError(DropboxError):
    """A request is refused; ``code`` is the error code of its 401 answer."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class SignatureHeaders:
    """The four signature headers of a request, checked for syntax only."""

    client_id: bytes
    timestamp: int
    timestamp_text: str
    nonce: str
    signature: bytes


@dataclass(frozen=True)
class VerifiedRequest:
    """A request whose signature verified: who sent it and its nonce (for the replay check)."""

    client: TransferClient
    client_id: bytes
    nonce: str


def _header(headers: Headers, name: str) -> str:
    value = headers.get(name)
    if value is None:
        raise AuthError(BAD_HEADERS, f"the request has no {name} header")
    return value


def parse_signature_headers(headers: Headers) -> SignatureHeaders:
    """The signature headers, each present and well formed (else ``bad_signature_headers``)."""
    client = _header(headers, CLIENT_HEADER)
    timestamp = _header(headers, TIMESTAMP_HEADER)
    nonce = _header(headers, NONCE_HEADER)
    signature = _header(headers, SIGNATURE_HEADER)
    if not _KEY_ID.match(client):
        raise AuthError(BAD_HEADERS, f"{CLIENT_HEADER} must be 32 lowercase hex digits")
    if not _TIMESTAMP.match(timestamp):
        raise AuthError(
            BAD_HEADERS, f"{TIMESTAMP_HEADER} must be decimal seconds without sign or leading zero"
        )
    if not _NONCE.match(nonce):
        raise AuthError(BAD_HEADERS, f"{NONCE_HEADER} must be 32 lowercase hex digits")
    if not _BASE64_64_BYTES.match(signature):
        raise AuthError(BAD_HEADERS, f"{SIGNATURE_HEADER} must be the base64 of 64 bytes")
    try:
        raw_signature = base64.b64decode(signature, validate=True)
    except binascii.Error:  # pragma: no cover - the pattern admits only valid base64
        raise AuthError(BAD_HEADERS, f"{SIGNATURE_HEADER} is not valid base64") from None
    if base64.b64encode(raw_signature).decode("ascii") != signature:
        raise AuthError(BAD_HEADERS, f"{SIGNATURE_HEADER} is not canonical base64")
    return SignatureHeaders(
        client_id=bytes.fromhex(client),
        timestamp=int(timestamp),
        timestamp_text=timestamp,
        nonce=nonce,
        signature=raw_signature,
    )


def find_client(clients: Iterable[TransferClient], client_id: bytes) -> TransferClient:
    """The transfer client with this key id (else ``unknown_client``)."""
    for client in clients:
        if key_id(Algorithm.ED25519, client.public_key) == client_id:
            return client
    raise AuthError(UNKNOWN_CLIENT, "the client is not a transfer client of the installed keyring")


def check_client(
    headers: Headers, clients: Iterable[TransferClient]
) -> tuple[SignatureHeaders, TransferClient]:
    """The first two checks, which need no body: headers, then the client."""
    parsed = parse_signature_headers(headers)
    return parsed, find_client(clients, parsed.client_id)


def verify_request(
    *,
    method: str,
    target: str,
    headers: Headers,
    body_sha256: bytes,
    clients: Iterable[TransferClient],
    now: datetime,
) -> VerifiedRequest:
    """Check a request's signature headers, client, signature and timestamp, in that order.

    ``clients`` are the installed keyring's transfer clients, ``now`` the moment the request
    arrived. Raises :class:`AuthError`. Replays are the caller's to catch, with
    :meth:`NonceStore.claim` on the returned nonce.
    """
    parsed, client = check_client(headers, clients)
    try:
        verify_request_signature(
            client.public_key,
            parsed.signature,
            method=method,
            target=target,
            body_sha256=body_sha256,
            timestamp=parsed.timestamp_text,
            nonce=parsed.nonce,
        )
    except SignatureError:
        raise AuthError(BAD_SIGNATURE, "the request signature does not verify") from None
    if abs(now.timestamp() - parsed.timestamp) > MAX_CLOCK_SKEW:
        raise AuthError(
            STALE_REQUEST,
            f"the request's timestamp is more than {MAX_CLOCK_SKEW} seconds away from the "
            "server's clock",
        )
    return VerifiedRequest(client=client, client_id=parsed.client_id, nonce=parsed.nonce)


def body_digest(body: bytes) -> bytes:
    return hashlib.sha256(body).digest()


class NonceStore:
    """The nonces each client used, in the table ``sync_nonces``, shared by every process.

    A claim is one INSERT: the primary key (client id, nonce hash) makes the second claim of
    a nonce fail, whichever process makes it. A nonce must be remembered only while its
    request's timestamp is accepted (:data:`NONCE_LIFETIME`); the table keeps no time finer
    than a day, so a row names the day its lifetime ends on and is deleted once that day is
    over: every nonce is remembered at least as long as it must be, at most a day longer.
    """

    def __init__(
        self,
        db: sessionmaker[Session],
        clock: Callable[[], datetime],
        *,
        lifetime: float = NONCE_LIFETIME,
    ) -> None:
        self._db = db
        self._clock = clock
        self._lifetime = timedelta(seconds=lifetime)
        # Only while the disk is full (see _claim_while_full): nonces this process saw then.
        self._full: dict[tuple[bytes, bytes], datetime] = {}
        self._full_lock = threading.Lock()

    def __len__(self) -> int:
        with self._db() as db:
            return int(db.scalar(select(func.count()).select_from(SyncNonce)) or 0)

    def claim(self, client_id: bytes, nonce: str) -> bool:
        """Record the nonce; False if this client used it before (a replay)."""
        now = self._clock().astimezone(UTC)
        today = now.date()
        row = SyncNonce(
            client_id=client_id,
            nonce_hash=hashlib.sha256(nonce.encode("ascii")).digest(),
            expires_day=(now + self._lifetime).date(),
        )
        try:
            with self._db() as db:
                db.execute(delete(SyncNonce).where(SyncNonce.expires_day < today))
                db.add(row)
                try:
                    db.commit()
                except IntegrityError:
                    db.rollback()
                    return False
        except Exception as error:
            if not is_out_of_space(error):
                raise
            return self._claim_while_full(row, now)
        return True

    def _claim_while_full(self, row: SyncNonce, now: datetime) -> bool:
        """A full disk: the transfer machine must still pull (what it takes away is what frees
        space), so the nonce is claimed in this process's memory until space is freed. A
        replay is then refused by the process that saw the nonce, and by the table if it
        holds it; another process may accept it once (a stated limit, docs/threat-model.md)."""
        _log.warning("the disk is full: sync API nonces are kept in memory until space is freed")
        with self._db() as db:  # reading needs no space
            if db.get(SyncNonce, (row.client_id, row.nonce_hash)) is not None:
                return False
        with self._full_lock:
            for key in [k for k, expires in self._full.items() if expires <= now]:
                del self._full[key]
            key = (row.client_id, row.nonce_hash)
            if key in self._full:
                return False
            self._full[key] = now + self._lifetime
        return True


def claim_nonce(nonces: NonceStore, verified: VerifiedRequest) -> None:
    """The last check of section 9.1: the nonce was not used by this client recently."""
    if not nonces.claim(verified.client_id, verified.nonce):
        raise AuthError(REPLAYED_REQUEST, "the request's nonce was already used")
