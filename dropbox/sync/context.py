"""What a sync API request can reach: the app's services, its authenticated body.

Everything hangs off the app object (``app.extensions["postern_sync"]``, a
:class:`SyncServices` made by :func:`dropbox.sync.app.create_sync_app`); nothing here is a
module-level singleton.

Authentication (docs/format.md section 9.1) is the ``before_request`` hook
:func:`authenticate`, built on the pure checks of :mod:`dropbox.sync.auth`. A small body (at
most :data:`MAX_BODY` bytes: a manifest request) is read whole by the hook, which checks the
signature over it before the view runs; the view gets it from :func:`request_body`.
``POST /v1/outbound`` streams its body (a bundle of any size) into the view instead: the hook
checks what needs no body (the headers, the client), and the view reads the body through
:func:`streamed_body`, whose :meth:`StreamedBody.verify` checks the signature once the body
was read whole. The outbound use case calls it before it changes anything, and the view calls
it before it says why a bundle was refused; :func:`refuse_unverified` turns a streamed request
answered without that check into a 500.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any, Final, cast
from urllib.parse import quote

from flask import current_app, g, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wrappers import Response

from crypto import SignedKeyring, TransferClient
from dropbox.services import ServerServices
from dropbox.sync.auth import AuthError, NonceStore, check_client, claim_nonce, verify_request

SYNC_EXTENSION_KEY: Final = "postern_sync"
#: The largest body read whole before the view runs (a request for a manifest of 10,000 ids
#: is about 230 KiB).
MAX_BODY: Final = 1024 * 1024
#: Endpoints whose view streams the body; the signature is checked when it was read.
STREAMED_ENDPOINTS: Final = frozenset({"sync.outbound"})
_READ_PIECE: Final = 1024 * 1024


@dataclass(frozen=True)
class SyncServices(ServerServices):
    """The sync app's dependencies, made once in :func:`create_sync_app`."""

    nonces: NonceStore
    #: One outbound bundle is applied at a time.
    outbound_lock: threading.Lock = field(default_factory=threading.Lock)

    def keyring(self) -> SignedKeyring:
        """The installed keyring (there is one: requests are signed by its transfer clients)."""
        keyring = self.instance().keyring
        if keyring is None:  # pragma: no cover - no keyring, no client, no request gets here
            raise AuthError("unknown_client", "no keyring is installed")
        return keyring


def sync_services() -> SyncServices:
    return cast(SyncServices, current_app.extensions[SYNC_EXTENSION_KEY])


def json_error(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> Response:
    response = jsonify({"error": code, "message": message})
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


# -- authentication ----------------------------------------------------------------------------


def request_target(environ: Mapping[str, Any]) -> str:
    """The request target as the client sent it: path and query, percent-encoding untouched.

    gunicorn and werkzeug keep it as ``RAW_URI``; without it, it is rebuilt from the parts.
    """
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    query = environ.get("QUERY_STRING", "")
    if not isinstance(raw, str) or not raw:
        path = quote(environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", ""), safe="/")
        raw = path + (f"?{query}" if query else "")
    elif "?" not in raw and query:
        # werkzeug's test client keeps a query passed on its own out of RAW_URI.
        raw = f"{raw}?{query}"
    return raw


def _clients(svc: SyncServices) -> Sequence[TransferClient]:
    keyring = svc.instance().keyring
    return () if keyring is None else keyring.manifest.transfer_clients


class StreamedBody:
    """A request body that the view reads; its signature is checked once it was read whole."""

    def __init__(
        self,
        svc: SyncServices,
        clients: Sequence[TransferClient],
        arrived: datetime,
    ) -> None:
        self._svc = svc
        self._clients = clients
        self._arrived = arrived
        self._method = request.method
        self._target = request_target(request.environ)
        self._headers = request.headers
        self._stream = request.stream
        self._hash = hashlib.sha256()
        self._error: AuthError | None = None
        self.verified = False

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        self._hash.update(data)
        return data

    def verify(self) -> None:
        """Read what is left of the body, then check the signature and the nonce (idempotent)."""
        if self.verified:
            return
        if self._error is not None:
            raise self._error
        while self.read(_READ_PIECE):
            pass
        try:
            verified = verify_request(
                method=self._method,
                target=self._target,
                headers=self._headers,
                body_sha256=self._hash.digest(),
                clients=self._clients,
                now=self._arrived,
            )
            claim_nonce(self._svc.nonces, verified)
        except AuthError as exc:
            self._error = exc
            raise
        self.verified = True


def _read_at_most(stream: IO[bytes], limit: int) -> bytes:
    """The whole body, or 413 if it is longer than ``limit`` (reads may come in pieces)."""
    parts: list[bytes] = []
    size = 0
    while data := stream.read(limit + 1 - size):
        parts.append(data)
        size += len(data)
        if size > limit:
            raise RequestEntityTooLarge(f"a request body is at most {limit} bytes here")
    return b"".join(parts)


def authenticate() -> None:
    """``before_request``: refuse (401) a request that is not signed by a transfer client.

    Every request is checked, unknown URLs too: the API tells nothing to anyone else.
    """
    svc = sync_services()
    arrived = svc.clock()
    clients = _clients(svc)
    check_client(request.headers, clients)  # the checks that need no body, before reading it
    if request.endpoint in STREAMED_ENDPOINTS:
        g.sync_streamed_body = StreamedBody(svc, clients, arrived)
        return
    body = _read_at_most(request.stream, MAX_BODY)
    verified = verify_request(
        method=request.method,
        target=request_target(request.environ),
        headers=request.headers,
        body_sha256=hashlib.sha256(body).digest(),
        clients=clients,
        now=arrived,
    )
    claim_nonce(svc.nonces, verified)
    g.sync_body = body


def request_body() -> bytes:
    """The body of this request, read and authenticated by :func:`authenticate`."""
    return cast(bytes, g.sync_body)


def streamed_body() -> StreamedBody:
    """The body of a streamed endpoint: call :meth:`StreamedBody.verify` before acting on it."""
    return cast(StreamedBody, g.sync_streamed_body)


def refuse_unverified(response: Response) -> Response:
    """``after_request``: a streamed request whose signature was never checked fails (500)."""
    body = g.get("sync_streamed_body")
    if isinstance(body, StreamedBody) and not body.verified and response.status_code < 400:
        current_app.logger.error("a streamed request was answered without checking its signature")
        return json_error(500, "server_error", "the server failed to handle the request")
    return response
