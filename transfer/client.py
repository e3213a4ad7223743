"""The sync API's client: signed requests, and what the answers must look like.

Every request is signed as docs/format.md section 9.1 says (crypto/request_signing.py) with
the transfer machine's one secret, its Ed25519 request-signing key. With ``--socks
HOST:PORT`` everything goes through that SOCKS5 proxy (Tor), names resolved by the proxy;
without it, straight to ``--server``. Small answers (status, listings, the manifest) and
uploads go through ``requests``; envelope bodies through :mod:`transfer.download`, straight
into the bundle file.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import ssl
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Final

import certifi
import requests

from common.cli import clean_line
from crypto import PrivateKey
from crypto.bundle import MAX_MANIFEST, SIGNATURE_LEN
from crypto.request_signing import sign_request_digest
from transfer import download
from transfer.errors import ServerRefused, TransferError, UsageError

#: Items per page of ``GET /v1/items`` (the most the API allows).
PAGE_LIMIT: Final = 1000
#: Items per ``POST /v1/manifests`` (the most the API allows): one bundle each.
MANIFEST_BATCH: Final = 10_000
#: Connect and read timeouts, in seconds: Tor circuits are slow to build.
TIMEOUT: Final = (120.0, 300.0)
#: Bytes read from the network or a file at a time.
PIECE: Final = 1024 * 1024
#: The longest JSON answer accepted (a page of 1000 items is about 300 KB).
MAX_JSON: Final = 8 * 1024 * 1024
#: The longest error answer read for its message.
MAX_ERROR: Final = 64 * 1024
#: Headers of every request. Byte offsets (Range) must count the envelope's own bytes, so
#: no compression.
HEADERS: Final = {"User-Agent": "postern-transfer", "Accept-Encoding": "identity"}
EMPTY_SHA256: Final = hashlib.sha256(b"").digest()

_ITEM_ID_RE = re.compile(r"\A(?:0|[1-9][0-9]{0,19})\Z")
_SOCKS_RE = re.compile(
    r"\A(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[A-Za-z0-9.\-]+)):(?P<port>[0-9]{1,5})\Z"
)


# -- command-line values ---------------------------------------------------------------------


def socks_proxies(spec: str) -> dict[str, str]:
    """The ``requests`` proxies for ``--socks HOST:PORT``: SOCKS5, names resolved by the proxy.

    ``socks5h`` (not ``socks5``) makes the proxy resolve host names, as Tor must for .onion
    addresses, and keeps DNS lookups off the local network.
    """
    match = _SOCKS_RE.match(spec)
    if match is None:
        raise UsageError(f"--socks must be HOST:PORT (for example 127.0.0.1:9050), not {spec!r}")
    port = int(match["port"])
    if not 1 <= port <= 65535:
        raise UsageError(f"--socks: the port must be from 1 to 65535, not {port}")
    host = match["host"] or f"[{match['v6']}]"
    proxy = f"socks5h://{host}:{port}"
    return {"http": proxy, "https": proxy}


def server_base(url: str, *, socks: bool) -> str:
    """Check ``--server`` (http or https, a host, nothing else) and drop a trailing slash."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"--server must be an http:// or https:// URL, not {url!r}")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise UsageError("--server must not carry a query, a fragment or a user name")
    if parts.hostname.endswith(".onion") and not socks:
        raise UsageError(
            "a .onion server is reachable only through Tor: add --socks 127.0.0.1:9050 "
            "(or Tor Browser's 127.0.0.1:9150)"
        )
    return url.rstrip("/")


# -- HTTP ------------------------------------------------------------------------------------


def _endpoint(
    base_url: str, proxies: Mapping[str, str], timeout: tuple[float, float], ca_file: Path | None
) -> download.Endpoint:
    """Where :mod:`transfer.download` connects for the server at ``base_url``."""
    parts = urllib.parse.urlsplit(base_url)
    tls = None
    if parts.scheme == "https":
        tls = ssl.create_default_context(cafile=str(ca_file or certifi.where()))
    proxy = None
    spec = proxies.get(parts.scheme)
    if spec is not None:
        via = urllib.parse.urlsplit(spec)
        proxy = (via.hostname or "", via.port or 1080)
    return download.Endpoint(
        host=parts.hostname or "",
        port=parts.port or (443 if tls is not None else 80),
        tls=tls,
        proxy=proxy,
        connect_timeout=timeout[0],
        read_timeout=timeout[1],
    )


class SyncClient:
    """Signed requests to the sync API."""

    def __init__(
        self,
        base_url: str,
        key: PrivateKey,
        *,
        proxies: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.time,
        timeout: tuple[float, float] = TIMEOUT,
        ca_file: Path | None = None,
    ) -> None:
        """``ca_file``: the certificates an ``https://`` server's is checked against (the
        ``certifi`` bundle, as for ``requests``, when None)."""
        self.base_url = base_url.rstrip("/")
        self.key = key
        self.proxies = dict(proxies or {})
        self.clock = clock
        self.timeout = timeout
        self.session = requests.Session()
        # Never take a proxy, a .netrc or certificates from the environment: with --socks
        # everything goes through Tor, without it straight to the server.
        self.session.trust_env = False
        self.session.proxies = dict(self.proxies)
        self.session.headers.update(HEADERS)
        if ca_file is not None:
            self.session.verify = str(ca_file)
        # Envelopes come on a connection of their own (transfer.download), straight into files.
        self.wire = download.Connection(_endpoint(self.base_url, self.proxies, timeout, ca_file))
        self._prefix = urllib.parse.urlsplit(self.base_url).path.rstrip("/")

    def close(self) -> None:
        self.session.close()
        self.wire.close()

    def send(
        self,
        method: str,
        path: str,
        *,
        body: bytes | BinaryIO = b"",
        body_sha256: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        ok: Sequence[int] = (200,),
    ) -> requests.Response:
        """Send a signed request and return the streamed response, whose status is in ``ok``."""
        if body_sha256 is None:
            if not isinstance(body, bytes):
                raise TypeError("a streamed body needs its SHA-256")
            body_sha256 = hashlib.sha256(body).digest()
        request = requests.Request(
            method, self.base_url + path, headers=dict(headers or {}), data=body or None
        )
        prepared = self.session.prepare_request(request)
        # Sign the target exactly as requests will send it.
        prepared.headers.update(self._signature(method, prepared.path_url, body_sha256))
        response = self.session.send(
            prepared,
            stream=True,
            timeout=self.timeout,
            allow_redirects=False,
            proxies=self.proxies,
        )
        if response.status_code not in ok:
            try:
                raise _refused(method, path, response)
            finally:
                response.close()
        return response

    def fetch(
        self, path: str, *, headers: Mapping[str, str] | None = None, ok: Sequence[int] = (200,)
    ) -> download.Head:
        """Send a signed GET on :attr:`wire` and return the answer's head, its status in
        ``ok``; the caller then takes the body with ``self.wire.copy_body``."""
        target = self._prefix + path
        extra = dict(headers or {})

        def signed() -> dict[str, str]:
            return {**HEADERS, **extra, **self._signature("GET", target, EMPTY_SHA256)}

        head = self.wire.get(target, signed)
        if head.status not in ok:
            raw = self.wire.read_body(MAX_ERROR)
            raise _refusal("GET", path, head.status, head.reason, raw)
        return head

    def _signature(self, method: str, target: str, body_sha256: bytes) -> dict[str, str]:
        return sign_request_digest(
            self.key, method, target, body_sha256, int(self.clock()), os.urandom(16)
        )

    def json(self, method: str, path: str, body: object = None) -> object:
        data = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json"} if body is not None else {}
        with self.send(method, path, body=data, headers=headers) as response:
            raw = read_limited(response, MAX_JSON, f"the answer to {method} {path}")
        try:
            return json.loads(raw)
        except ValueError:
            raise TransferError(f"the answer to {method} {path} is not JSON") from None

    def status(self) -> ServerStatus:
        answer = self.json("GET", "/v1/status")
        if not isinstance(answer, dict):
            raise TransferError("GET /v1/status: the answer is not a JSON object")
        key = answer.get("server_key")
        try:
            server_key = base64.b64decode(key, validate=True) if isinstance(key, str) else b""
        except ValueError:
            server_key = b""
        if len(server_key) != 32:
            raise TransferError("GET /v1/status: server_key is not a base64 Ed25519 public key")
        return ServerStatus(
            server_key=server_key,
            keyring_serial=_count(answer, "keyring_serial"),
            pending_items=_count(answer, "pending_items"),
            pending_bytes=_count(answer, "pending_bytes"),
        )

    def list_item_ids(self) -> list[str]:
        """The ids of every unacknowledged item, oldest first, following the cursors."""
        ids: list[str] = []
        seen: set[str] = set()
        cursors: set[str] = set()
        after: str | None = None
        while True:
            query = {"limit": str(PAGE_LIMIT)}
            if after is not None:
                query = {"after": after, **query}
            path = "/v1/items?" + urllib.parse.urlencode(query, quote_via=urllib.parse.quote)
            page = self.json("GET", path)
            if not isinstance(page, dict) or not isinstance(page.get("items"), list):
                raise TransferError("GET /v1/items: the answer is not a list of items")
            for item in page["items"]:
                item_id = item.get("id") if isinstance(item, dict) else None
                if not isinstance(item_id, str) or not _ITEM_ID_RE.match(item_id):
                    raise TransferError("GET /v1/items: an item has no valid id")
                if item_id in seen:
                    raise TransferError(f"GET /v1/items: item {item_id} is listed twice")
                seen.add(item_id)
                ids.append(item_id)
            after = page.get("next")
            if after is None:
                return ids
            if not isinstance(after, str) or not after or after in cursors or not page["items"]:
                raise TransferError("GET /v1/items: the server's cursor does not move on")
            cursors.add(after)

    def manifest_block(self, ids: Sequence[str]) -> bytes:
        """``POST /v1/manifests``: the signed block for exactly these items."""
        body = json.dumps({"items": list(ids)}, separators=(",", ":")).encode()
        with self.send(
            "POST", "/v1/manifests", body=body, headers={"Content-Type": "application/json"}
        ) as response:
            return read_limited(response, 4 + MAX_MANIFEST + SIGNATURE_LEN, "the manifest")


@dataclass(frozen=True)
class ServerStatus:
    server_key: bytes
    keyring_serial: int
    pending_items: int
    pending_bytes: int


def _count(answer: Mapping[str, Any], name: str) -> int:
    value = answer.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise TransferError(f"GET /v1/status: {name} is not a count")
    return value


def _refused(method: str, path: str, response: requests.Response) -> ServerRefused:
    try:
        raw = read_limited(response, MAX_ERROR, "an error answer")
    except (TransferError, requests.RequestException):
        raw = b""
    return _refusal(method, path, response.status_code, response.reason or "", raw)


def _refusal(method: str, path: str, status: int, reason: str, raw: bytes) -> ServerRefused:
    """The error for a refusal: the server's JSON error answer ``raw`` made readable."""
    code, message = "", ""
    try:
        answer = json.loads(raw)
        if isinstance(answer, dict):
            code = str(answer.get("error", ""))
            message = str(answer.get("message", ""))
    except ValueError:
        pass
    what = f"{method} {path.split('?', 1)[0]}"
    detail = clean_line(f"{code}: {message}" if code and message else code or message, 300)
    detail = detail or clean_line(reason, 300) or "no reason given"
    hint = ""
    if code == "unknown_client":
        hint = " (is this transfer key in the keyring installed on the server?)"
    elif code == "stale_request":
        hint = " (check this machine's clock)"
    if status == 401:
        message = f"the server refused the request ({what}): {detail}{hint}"
    elif status == 422:
        message = f"the server refused the bundle: {detail}"
    else:
        message = f"the server answered {status} to {what}: {detail}{hint}"
    return ServerRefused(message, status, code)


def read_limited(response: requests.Response, limit: int, what: str) -> bytes:
    parts: list[bytes] = []
    size = 0
    for chunk in response.iter_content(PIECE):
        size += len(chunk)
        if size > limit:
            raise TransferError(f"{what} is larger than {limit} bytes")
        parts.append(chunk)
    return b"".join(parts)
