"""The transfer client: moves ciphertext between the server's sync API and removable media.

It runs on the online transfer machine (for example Tails) and holds one secret only: its
Ed25519 request-signing key (a ``transfer`` key file). It never sees a decryption key.

``dropbox-transfer pull`` lists the items the server holds that no journalist acknowledged
yet, asks for a manifest of them signed by the server, and writes one inbound bundle
(docs/format.md section 10) per manifest. The bundle is written in place, once: its head and
then every envelope as it arrives go into a partial file in a work directory next to the
destination (envelope bodies by :mod:`dropbox.download`, from the socket into the file);
a background thread reads each envelope back and checks its SHA-256 against the signed
manifest while the next one arrives (:class:`_Spool`), and the complete file is synced and
moved into place.
An interrupted pull (server gone, network down, Ctrl-C) is finished by the next one, which
reuses the work directory and its signed manifest, checks the partial bundle envelope by
envelope and fetches only what is missing (with ``Range`` for a partial envelope).

``dropbox-transfer push`` uploads an outbound bundle (section 11) made on the station.

Every request is signed as docs/format.md section 9.1 says (:func:`sign_request`). With
``--socks HOST:PORT`` everything goes through that SOCKS5 proxy (Tor), names resolved by the
proxy; without it, straight to ``--server``.

Exit statuses: 0 success, 1 failure, 2 usage error; failures are one line on stderr.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import fcntl
import getpass
import hashlib
import json
import os
import re
import shutil
import ssl
import stat
import struct
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Final, NoReturn, TextIO

import certifi
import requests

from common.files import fsync_dir
from crypto import CryptoError, KeyKind, PassphraseError, PrivateKey, load_private_key
from crypto.bundle import (
    INBOUND_MAGIC,
    MAX_MANIFEST,
    OUTBOUND_MAGIC,
    SIGNATURE_LEN,
    VERSION,
    InboundItem,
    InboundManifest,
    open_bundle_file,
    parse_signed_inbound_manifest,
)
from crypto.request_signing import signed_message
from dropbox import download
from dropbox.errors import DropboxError, describe_os_error
from dropbox.fsutil import write_atomic

if TYPE_CHECKING:
    from hashlib import _Hash as Hasher

PROG: Final = "dropbox-transfer"
EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_USAGE: Final = 2

CLIENT_HEADER: Final = "X-Postern-Client"
TIMESTAMP_HEADER: Final = "X-Postern-Timestamp"
NONCE_HEADER: Final = "X-Postern-Nonce"
SIGNATURE_HEADER: Final = "X-Postern-Signature"

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
MAX_KEY_FILE: Final = 4096
MAX_PASSPHRASE: Final = 4096

WORK_PREFIX: Final = ".postern-pull-"
BLOCK_NAME: Final = "manifest.block"
#: The bundle being written, in the work directory (moved into place when complete).
PART_NAME: Final = "bundle.part"
#: Bytes the pull's hashing thread waits for before it reads them back and hashes them ...
HASH_STEP: Final = 4 * 1024 * 1024
#: ... in reads of this size, small enough for the processor's cache.
HASH_READ: Final = 256 * 1024
#: Threads that hash: one envelope at a time each, so more help when hashing falls behind.
HASH_THREADS: Final = max(2, min(4, os.cpu_count() or 2))
#: Bytes written between two background ``fdatasync`` calls.
SYNC_EVERY: Final = 64 * 1024 * 1024
PIN_NAME: Final = ".postern-server-key"

_METHOD_RE = re.compile(r"\A[A-Z]+\Z")
_TARGET_RE = re.compile(r"\A/[\x21-\x7e]*\Z")
_ITEM_ID_RE = re.compile(r"\A(?:0|[1-9][0-9]{0,19})\Z")
_WORK_RE = re.compile(r"\A\.postern-pull-[0-9a-f]{64}\Z")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_SOCKS_RE = re.compile(
    r"\A(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[A-Za-z0-9.\-]+)):(?P<port>[0-9]{1,5})\Z"
)


class TransferError(DropboxError):
    """An expected failure of a transfer; its message is one clear line."""


class UsageError(TransferError):
    """The command line cannot work as given (exit status 2)."""


class ServerRefused(TransferError):
    """The server answered with an error status."""

    def __init__(self, message: str, status: int, code: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


# -- request signatures (docs/format.md section 9.1) -----------------------------------------


#: The bytes a transfer client signs: the one definition, shared with the server's check.
request_message = signed_message


def sign_request_digest(
    key: PrivateKey, method: str, target: str, body_sha256: bytes, now: int, nonce: bytes
) -> dict[str, str]:
    """:func:`sign_request` for a body given by its SHA-256 (a body streamed from a file)."""
    if key.kind is not KeyKind.TRANSFER:
        raise TransferError(f"requests are signed with a transfer key, not a {key.kind} key")
    if not _METHOD_RE.match(method):
        raise TransferError(f"not an upper-case HTTP method: {method!r}")
    if not _TARGET_RE.match(target):
        raise TransferError(f"not an ASCII request target: {target!r}")
    if len(body_sha256) != 32:
        raise TransferError("a body digest is 32 bytes")
    if isinstance(now, bool) or not isinstance(now, int) or now < 0:
        raise TransferError("the timestamp is a non-negative integer number of seconds")
    if len(nonce) != 16:
        raise TransferError("a nonce is 16 bytes")
    timestamp, nonce_hex = str(now), nonce.hex()
    signature = key.sign(request_message(method, target, body_sha256, timestamp, nonce_hex))
    return {
        CLIENT_HEADER: key.key_id.hex(),
        TIMESTAMP_HEADER: timestamp,
        NONCE_HEADER: nonce_hex,
        SIGNATURE_HEADER: base64.b64encode(signature).decode("ascii"),
    }


def sign_request(
    key: PrivateKey, method: str, target: str, body: bytes, now: int, nonce: bytes
) -> dict[str, str]:
    """The four signature headers of a request (docs/format.md section 9.1).

    ``target`` is the request target exactly as sent (path and query), ``body`` the body as
    sent (empty for GET), ``now`` seconds since the epoch and ``nonce`` 16 fresh random bytes.
    """
    return sign_request_digest(key, method, target, hashlib.sha256(body).digest(), now, nonce)


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
    """Where :mod:`dropbox.download` connects for the server at ``base_url``."""
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
        # Envelopes come on a connection of their own (dropbox.download), straight into files.
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
            raw = _read_limited(response, MAX_JSON, f"the answer to {method} {path}")
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
            return _read_limited(response, 4 + MAX_MANIFEST + SIGNATURE_LEN, "the manifest")


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


def _clean(text: str, limit: int = 300) -> str:
    """Text made safe for one terminal line (no control characters, bounded)."""
    text = _CONTROL.sub(" ", text).strip()
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _refused(method: str, path: str, response: requests.Response) -> ServerRefused:
    try:
        raw = _read_limited(response, MAX_ERROR, "an error answer")
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
    detail = _clean(f"{code}: {message}" if code and message else code or message)
    detail = detail or _clean(reason) or "no reason given"
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


def _read_limited(response: requests.Response, limit: int, what: str) -> bytes:
    parts: list[bytes] = []
    size = 0
    for chunk in response.iter_content(PIECE):
        size += len(chunk)
        if size > limit:
            raise TransferError(f"{what} is larger than {limit} bytes")
        parts.append(chunk)
    return b"".join(parts)


# -- progress --------------------------------------------------------------------------------


def _size(count: float) -> str:
    """A byte count for people: 512 B, 1.5 KiB, 3.2 GiB."""
    if abs(count) < 1024:
        return f"{count:.0f} B"
    for unit in ("KiB", "MiB", "GiB"):
        count /= 1024
        if abs(count) < 1024:
            return f"{count:.1f} {unit}"
    return f"{count / 1024:.1f} TiB"


class Progress:
    """A plain-text progress line on stderr: bytes done / total, items, rate.

    On a terminal the line is rewritten in place; otherwise a line is written every
    ``interval`` seconds, so that logs stay readable.
    """

    def __init__(
        self,
        stream: TextIO,
        total_bytes: int,
        total_items: int,
        *,
        done_bytes: int = 0,
        done_items: int = 0,
        tty: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
        interval: float | None = None,
    ) -> None:
        self.stream = stream
        self.total_bytes = total_bytes
        self.total_items = total_items
        self.done_bytes = done_bytes
        self.done_items = done_items
        self.tty = stream.isatty() if tty is None else tty
        self.clock = clock
        self.interval = interval if interval is not None else (0.2 if self.tty else 10.0)
        self.started = clock()
        self.start_bytes = done_bytes
        self.last = self.started
        self.width = 0

    @property
    def fetched(self) -> int:
        """Bytes received in this run."""
        return self.done_bytes - self.start_bytes

    def rate(self) -> float:
        elapsed = self.clock() - self.started
        return self.fetched / elapsed if elapsed > 0 else 0.0

    def line(self) -> str:
        percent = 100 * self.done_bytes // self.total_bytes if self.total_bytes else 100
        return (
            f"{_size(self.done_bytes)} / {_size(self.total_bytes)} ({percent}%), "
            f"items {self.done_items}/{self.total_items}, {_size(self.rate())}/s"
        )

    def advance(self, count: int) -> None:
        self.done_bytes += count
        self._maybe_show()

    def item_done(self) -> None:
        self.done_items += 1
        self._maybe_show()

    def _maybe_show(self) -> None:
        now = self.clock()
        if now - self.last >= self.interval:
            self.last = now
            self.show()

    def show(self) -> None:
        text = "pulling: " + self.line()
        if self.tty:
            padding = " " * max(0, self.width - len(text))
            self.width = len(text)
            self.stream.write("\r" + text + padding)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def finish(self) -> None:
        """End the line in place on a terminal (so that what follows starts afresh)."""
        if self.tty and self.width:
            self.show()
            self.stream.write("\n")
            self.stream.flush()
            self.width = 0

    def interrupt(self) -> None:
        """Leave the in-place line before an error message."""
        if self.tty and self.width:
            self.stream.write("\n")
            self.stream.flush()
            self.width = 0


# -- pull ------------------------------------------------------------------------------------


@dataclass
class Batch:
    """One signed manifest being turned into one bundle, with its work directory."""

    work: Path
    block: bytes
    manifest: InboundManifest
    digest: str
    resumed: bool

    @property
    def bundle_name(self) -> str:
        return f"postern-inbound-{self.manifest.made.isoformat()}-{self.digest[:8]}.bundle"


@dataclass
class PullResult:
    bundles: list[Path] = field(default_factory=list)
    items: int = 0
    bytes: int = 0
    fetched: int = 0
    seconds: float = 0.0
    resumed: int = 0
    #: Bundles that were already complete (the same manifest was pulled before).
    existing: int = 0


def _manifest_digest(block: bytes) -> str:
    (length,) = struct.unpack(">I", block[:4])
    return hashlib.sha256(block[4 : 4 + length]).hexdigest()


class Puller:
    """``pull``: every unacknowledged item into inbound bundles in ``dest``."""

    def __init__(
        self,
        client: SyncClient,
        dest: Path,
        *,
        stderr: TextIO,
        tty: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
        verify: bool = True,
    ) -> None:
        """``verify``: check every envelope's SHA-256 against the signed manifest as it
        arrives. Without it only what an interrupted pull left is checked (before it is
        reused); the station checks every envelope at import either way."""
        self.client = client
        self.verify = verify
        self.dest = dest
        self.stderr = stderr
        self.tty = tty
        self.clock = clock
        self.progress = Progress(stderr, 0, 0, tty=tty, clock=clock)

    def run(self) -> PullResult:
        if not self.dest.is_dir():
            raise TransferError(f"{self.dest} is not a directory")
        with _locked(self.dest):
            return self._run()

    def _run(self) -> PullResult:
        started = self.clock()
        status = self.client.status()
        self._check_pin(status.server_key)
        batches = self._resumed(status.server_key)
        covered = {item.id for batch in batches for item in batch.manifest.items}
        fresh = [i for i in self.client.list_item_ids() if i not in covered]
        for start in range(0, len(fresh), MANIFEST_BATCH):
            batches.append(self._new_batch(fresh[start : start + MANIFEST_BATCH], status))
        result = PullResult(resumed=sum(batch.resumed for batch in batches))
        todo = [b for b in batches if not (self.dest / b.bundle_name).exists()]
        self.progress = Progress(
            self.stderr,
            sum(b.manifest.total_size for b in todo),
            sum(len(b.manifest.items) for b in todo),
            done_bytes=sum(self._on_disk(b) for b in todo),
            tty=self.tty,
            clock=self.clock,
        )
        for batch in batches:
            path = self.dest / batch.bundle_name
            if not path.exists():
                self._write_bundle(batch, path)
            else:
                result.existing += 1
            result.bundles.append(path)
            result.items += len(batch.manifest.items)
            result.bytes += batch.manifest.total_size
        self.progress.finish()
        for batch in batches:
            shutil.rmtree(batch.work)
        if batches:
            fsync_dir(self.dest)
        result.fetched = self.progress.fetched
        result.seconds = self.clock() - started
        return result

    def interrupted(self) -> None:
        self.progress.interrupt()

    # -- the server key --

    def _check_pin(self, server_key: bytes) -> None:
        pin = self.dest / PIN_NAME
        try:
            pinned = pin.read_text("ascii").strip()
        except FileNotFoundError:
            return
        except (OSError, UnicodeDecodeError) as exc:
            raise TransferError(f"cannot read the pinned server key {pin}: {exc}") from None
        if pinned != base64.b64encode(server_key).decode("ascii"):
            raise TransferError(
                f"the server's signing key is not the one pinned in {pin} by an earlier pull; "
                "refusing to go on (if the server key really changed, remove that file)"
            )

    def _pin(self, server_key: bytes) -> None:
        pin = self.dest / PIN_NAME
        if not pin.exists():
            text = base64.b64encode(server_key).decode("ascii") + "\n"
            write_atomic(pin, text.encode("ascii"), mode=0o644, replace=False)

    def _verify(self, block: bytes, server_key: bytes, what: str) -> InboundManifest:
        try:
            manifest = parse_signed_inbound_manifest(block, server_key)
        except CryptoError as exc:
            raise TransferError(
                f"{what} does not verify under the server key the server announced: {exc}"
            ) from None
        self._pin(server_key)
        return manifest

    # -- batches --

    def _resumed(self, server_key: bytes) -> list[Batch]:
        batches = []
        for entry in sorted(self.dest.iterdir()):
            if not _WORK_RE.match(entry.name):
                continue
            if not stat.S_ISDIR(entry.lstat().st_mode):
                raise TransferError(f"{entry} is not a directory; remove it")
            block_path = entry / BLOCK_NAME
            if not block_path.exists():
                # Interrupted between creating the directory and saving the manifest.
                shutil.rmtree(entry)
                continue
            with block_path.open("rb") as handle:
                block = handle.read(4 + MAX_MANIFEST + SIGNATURE_LEN + 1)
            what = f"the saved manifest of the interrupted pull in {entry}"
            manifest = self._verify(block, server_key, what)
            digest = _manifest_digest(block)
            if entry.name != WORK_PREFIX + digest:
                raise TransferError(f"{what} does not match the directory's name; remove it")
            batches.append(Batch(entry, block, manifest, digest, resumed=True))
        return batches

    def _new_batch(self, ids: Sequence[str], status: ServerStatus) -> Batch:
        block = self.client.manifest_block(ids)
        manifest = self._verify(block, status.server_key, "the manifest the server sent")
        if [item.id for item in manifest.items] != list(ids):
            raise TransferError("the server's manifest does not list the items asked for")
        digest = _manifest_digest(block)
        work = self.dest / (WORK_PREFIX + digest)
        work.mkdir(mode=0o700, exist_ok=True)
        write_atomic(work / BLOCK_NAME, block, mode=0o600)
        fsync_dir(self.dest)
        return Batch(work, block, manifest, digest, resumed=False)

    @staticmethod
    def _on_disk(batch: Batch) -> int:
        """Bytes of the batch's envelopes already downloaded (by an interrupted pull).

        An estimate for the progress line only: what they hold is checked before use.
        """
        try:
            size = (batch.work / PART_NAME).stat().st_size
        except FileNotFoundError:
            return 0
        return max(0, min(batch.manifest.total_size, size - len(_bundle_head(batch))))

    # -- the bundle --

    def _write_bundle(self, batch: Batch, path: Path) -> None:
        """Download the batch's envelopes into its partial bundle, then move it to ``path``.

        The partial bundle (``PART_NAME`` in the work directory) is the bundle's own bytes:
        the header, then the envelopes in manifest order, so each byte is written once. An
        interrupted pull left a prefix of it; that prefix is checked envelope by envelope
        against the signed manifest and the download continues after what matches.
        """
        part = batch.work / PART_NAME
        fd = os.open(part, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            first, have, hasher = _verified_prefix(fd, batch)
            offset = len(_bundle_head(batch)) + sum(i.size for i in batch.manifest.items[:first])
            spool = _Spool(fd)
            try:
                for index in range(first, len(batch.manifest.items)):
                    item = batch.manifest.items[index]
                    if index != first:
                        have, hasher = 0, hashlib.sha256()
                    self._download(spool, fd, batch, item, offset, have, hasher)
                    offset += item.size
                    self.progress.item_done()
                if (bad := spool.settle()) is not None:
                    _mismatched(fd, bad)
            except BaseException:
                # Keep what arrived, on disk: the next run continues from there.
                with contextlib.suppress(Exception):
                    spool.close()
                    os.fsync(fd)
                raise
            spool.close()
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(part, path)
        fsync_dir(self.dest)

    def _download(
        self, spool: _Spool, fd: int, batch: Batch, item: InboundItem, base: int, have: int,
        hasher: Hasher,
    ) -> None:  # fmt: skip
        """Fetch the envelope that starts at ``base`` in the file, ``have`` bytes of which
        are there already (``hasher`` has hashed them).

        With :attr:`verify`, its hash is checked in the background while the next one
        arrives. One completed here from an earlier run's bytes is checked at once, verify or
        not, and fetched whole once more if it does not match (the bytes kept may be what is
        wrong).
        """
        self._receive(spool, fd, batch, item, base, have, hasher, check=self.verify or have > 0)
        if not have:
            bad = spool.mismatch()
        elif (bad := spool.settle()) is not None:
            self.progress.advance(-item.size)
            self._receive(spool, fd, batch, item, base, 0, hashlib.sha256(), check=True)
            bad = spool.settle()
        if bad is not None:
            _mismatched(fd, bad)

    def _receive(
        self, spool: _Spool, fd: int, batch: Batch, item: InboundItem, base: int, offset: int,
        hasher: Hasher, *, check: bool,
    ) -> None:  # fmt: skip
        """Fetch the envelope's bytes from ``offset`` on into the file at ``base + offset``
        (``hasher`` has hashed those before) and, with ``check``, hand it to the spool to be
        checked against the manifest."""
        path = f"/v1/items/{item.id}/envelope"
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        try:
            answer = self.client.fetch(path, headers=headers, ok=(200, 206))
        except ServerRefused as exc:
            if batch.resumed and exc.status == 404:
                raise TransferError(
                    f"item {item.id} of the interrupted pull is no longer on the server; "
                    f"remove {batch.work} to start a fresh pull"
                ) from None
            raise
        except download.WireError as exc:
            raise TransferError(f"{exc}; run the same command again to resume") from None
        wire = self.client.wire
        try:
            if offset and answer.status == 200:
                # The server sent the whole envelope instead of the rest: start over.
                self.progress.advance(-offset)
                offset, hasher = 0, hashlib.sha256()
            elif answer.status == 206:
                _check_range(answer, item, offset)
            expected = item.size - offset
            length = answer.length
            if length is None or length != expected:
                raise TransferError(
                    f"item {item.id}: the server sends {length} bytes where the signed "
                    f"manifest leaves {expected}"
                )
        except (TransferError, download.WireError) as exc:
            wire.close()
            raise TransferError(str(exc)) from None
        if check:
            spool.begin(item, base, hasher, base + offset)
        received = 0

        def wrote(count: int) -> None:
            nonlocal received
            received += count
            spool.wrote(base + offset + received)
            self.progress.advance(count)

        try:
            wire.copy_body(fd, base + offset, wrote)
        except download.WireError as exc:
            # What arrived is in the file and kept (see _write_bundle).
            raise TransferError(
                f"{exc} after {offset + received} of {item.size} bytes of item {item.id}; "
                "run the same command again to resume"
            ) from None
        if check:
            spool.end()


def _mismatched(fd: int, segment: _Segment) -> NoReturn:
    """Cut the partial bundle before an envelope that does not match the manifest (the next
    run fetches it afresh) and say so."""
    os.ftruncate(fd, segment.base)
    raise TransferError(
        f"the envelope of item {segment.item.id} does not match the server's signed manifest"
    )


def _check_range(answer: download.Head, item: InboundItem, offset: int) -> None:
    """A partial answer must hold the envelope from ``offset`` to its end."""
    want = f"bytes {offset}-{item.size - 1}/{item.size}"
    got = answer.headers.get("content-range")
    if got != want:
        raise TransferError(
            f"item {item.id}: the server sent the range {_clean(str(got), 80)} "
            f"where {want} was asked for"
        )


def _bundle_head(batch: Batch) -> bytes:
    """The bundle's bytes before the first envelope: magic, version, the signed block."""
    return INBOUND_MAGIC + bytes([VERSION]) + batch.block


def _verified_prefix(fd: int, batch: Batch) -> tuple[int, int, Hasher]:
    """Check what an interrupted pull left in the partial bundle ``fd``.

    Returns the index of the first envelope to fetch, how many of its bytes are there
    already and a hasher that has hashed them. Whatever does not match the signed manifest
    is cut off, so the file holds exactly the head and the envelopes before that one (and
    the part of that one) afterwards.
    """
    head = _bundle_head(batch)
    size = os.fstat(fd).st_size
    if size < len(head) or os.pread(fd, len(head), 0) != head:
        os.ftruncate(fd, 0)
        download.pwrite_all(fd, head, 0)
        return 0, 0, hashlib.sha256()
    offset = len(head)
    for index, item in enumerate(batch.manifest.items):
        present = min(item.size, size - offset)
        if present <= 0:
            break
        hasher = hashlib.sha256()
        stop = _hash_range(fd, hasher, offset, offset + present, bytearray(PIECE))
        if stop - offset < item.size:
            os.ftruncate(fd, stop)
            return index, stop - offset, hasher
        if hasher.digest() != item.sha256:
            break
        offset += item.size
    else:
        index = len(batch.manifest.items)
    os.ftruncate(fd, offset)
    return index, 0, hashlib.sha256()


def _hash_range(fd: int, hasher: Hasher, start: int, end: int, buffer: bytearray) -> int:
    """Add the file's bytes from ``start`` to ``end`` to ``hasher``, read through ``buffer``;
    return where the reading stopped (``end``, or the end of a shorter file)."""
    view = memoryview(buffer)
    while start < end:
        count = os.preadv(fd, [view[: min(len(view), end - start)]], start)
        if not count:
            break
        hasher.update(view[:count])
        start += count
    return start


class _Spool:
    """Hashes and syncs what the receiving thread wrote into the bundle file, off that thread.

    The receiving thread writes each envelope into the file itself (with
    :mod:`dropbox.download`, most often without the bytes passing through Python), marks
    where it starts and ends (:meth:`begin`, :meth:`end`) and reports progress
    (:meth:`wrote`). Background threads read the new bytes back while they are still in the
    page cache, hash them and compare each envelope's digest with the manifest's; the
    receiving thread goes on with the next envelope meanwhile and learns of a mismatch from
    :meth:`mismatch` or :meth:`settle`. An envelope is hashed by one thread at a time, in
    order, but when hashing falls behind, other threads take the envelopes after it, so that
    every processor helps. Every ``SYNC_EVERY`` bytes another thread calls ``fdatasync``, so
    that the final ``fsync`` does not have the whole bundle to flush at once. A failure in a
    background thread is raised in the caller at its next call.
    """

    def __init__(self, fd: int, hashers: int = HASH_THREADS) -> None:
        self._fd = fd
        self._lock = threading.Condition()
        self._segments: list[_Segment] = []  # not yet checked, in file order
        self._written = 0  # file offset up to which the last segment is written
        self._mismatch: _Segment | None = None
        self._closing = False
        self._unsynced = 0
        self._error: BaseException | None = None
        self._sync_wanted = threading.Event()
        self._threads = [
            threading.Thread(target=self._hash_loop, name=f"pull-hasher-{n}", daemon=True)
            for n in range(max(1, hashers))
        ]
        self._threads.append(threading.Thread(target=self._sync_loop, name="pull-syncer"))
        for thread in self._threads:
            thread.daemon = True
            thread.start()

    # -- the caller's side --

    def begin(self, item: InboundItem, base: int, hasher: Hasher, position: int) -> None:
        """The envelope of ``item``, which starts at ``base`` in the file, is written from
        ``position`` on; ``hasher`` has hashed its bytes before ``position``. The envelope
        before it (if any is still being hashed) must end at ``position``."""
        with self._lock:
            self._check()
            if not self._segments:
                self._written = position
            elif self._segments[-1].end != position or self._written != position:
                raise AssertionError("an envelope must start where the one before it ended")
            self._segments.append(_Segment(item, base, hasher, position))

    def wrote(self, position: int) -> None:
        """The current envelope is written up to ``position`` (a file offset)."""
        with self._lock:
            self._check()
            self._unsynced += position - self._written
            self._written = position
            if self._segments and position - self._segments[-1].hashed >= HASH_STEP:
                self._lock.notify_all()
        if self._unsynced >= SYNC_EVERY:
            self._unsynced = 0
            self._sync_wanted.set()

    def end(self) -> None:
        """The current envelope is written whole (up to the last :meth:`wrote` position)."""
        with self._lock:
            self._segments[-1].end = self._written
            self._lock.notify_all()

    def mismatch(self) -> _Segment | None:
        """The first envelope found not to match the manifest so far, without waiting."""
        with self._lock:
            self._check()
            return self._mismatch

    def settle(self) -> _Segment | None:
        """Wait until every envelope written is hashed; return the first that did not match
        the manifest, and forget it (so that a fetch once more can be checked afresh)."""
        with self._lock:
            while self._segments and self._error is None:
                self._lock.wait()
            self._check()
            bad, self._mismatch = self._mismatch, None
            return bad

    def close(self) -> None:
        """Stop the threads; raise what failed in them."""
        with self._lock:
            if self._closing:
                return
            self._closing = True
            self._lock.notify_all()
        self._sync_wanted.set()
        for thread in self._threads:
            thread.join()
        self._check()

    def _check(self) -> None:
        if self._error is not None:
            raise self._error

    # -- the threads --

    def _next_piece(self) -> tuple[_Segment, int] | None:
        """Under the lock: wait for bytes to hash; return a segment, now busy, and where to
        hash it to, or None when the thread is to stop. Segments hashed whole are checked
        and dropped here."""
        while True:
            if self._closing or self._error is not None:
                return None
            for segment in list(self._segments):
                if segment.busy:
                    continue
                if segment.end is not None and segment.hashed >= segment.end:
                    self._segments.remove(segment)
                    bad = segment.hasher.digest() != segment.item.sha256
                    if bad and (self._mismatch is None or segment.base < self._mismatch.base):
                        self._mismatch = segment
                    self._lock.notify_all()
                    continue
                stop = self._written if segment.end is None else segment.end
                if stop - segment.hashed >= HASH_STEP or (
                    segment.end is not None and stop > segment.hashed
                ):
                    segment.busy = True
                    return segment, stop
            self._lock.wait()

    def _hash_loop(self) -> None:
        buffer = bytearray(HASH_READ)
        while True:
            with self._lock:
                piece = self._next_piece()
            if piece is None:
                return
            segment, stop = piece
            try:
                reached = _hash_range(self._fd, segment.hasher, segment.hashed, stop, buffer)
                if reached != stop:
                    raise TransferError("the partial bundle file became shorter while written")
            except (OSError, TransferError) as exc:
                with self._lock:
                    self._error = self._error or exc
                    self._lock.notify_all()
                return
            with self._lock:
                segment.hashed = stop
                segment.busy = False
                self._lock.notify_all()

    def _sync_loop(self) -> None:
        while True:
            self._sync_wanted.wait()
            self._sync_wanted.clear()
            if self._closing:
                return
            try:
                os.fdatasync(self._fd)
            except OSError as exc:
                with self._lock:
                    self._error = self._error or exc
                    self._lock.notify_all()


@dataclass(eq=False)
class _Segment:
    """In the spool: one envelope, hashed as it is written into the bundle file."""

    item: InboundItem
    base: int  # where the envelope starts in the file
    hasher: Hasher
    hashed: int  # the file offset up to which ``hasher`` has hashed it
    end: int | None = None  # where it ends, once it is written whole
    busy: bool = False  # a thread is hashing it


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """Hold an exclusive lock on the directory itself, so that two pulls never mix."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise TransferError(f"another pull is writing to {directory}") from None
        yield
    finally:
        os.close(fd)


# -- push ------------------------------------------------------------------------------------


def push(client: SyncClient, path: Path) -> dict[str, Any]:
    """Upload an outbound bundle, streamed; return the server's JSON summary."""
    with open_bundle_file(path) as bundle:
        head = bundle.read(len(OUTBOUND_MAGIC) + 1)
        if head[:8] == INBOUND_MAGIC:
            raise TransferError(
                f"{path} is an inbound bundle (server to station); push takes the outbound "
                "bundle the station made"
            )
        if head[:8] != OUTBOUND_MAGIC:
            raise TransferError(f"{path} is not an outbound bundle")
        if head[8:9] != bytes([VERSION]):
            raise TransferError(f"{path} is an outbound bundle of an unknown version")
        bundle.seek(0)
        hasher = hashlib.sha256()
        while data := bundle.read(PIECE):
            hasher.update(data)
        bundle.seek(0)
        with client.send(
            "POST",
            "/v1/outbound",
            body=bundle,
            body_sha256=hasher.digest(),
            headers={"Content-Type": "application/octet-stream"},
        ) as response:
            raw = _read_limited(response, MAX_JSON, "the answer to POST /v1/outbound")
    try:
        summary = json.loads(raw)
    except ValueError:
        raise TransferError("the answer to POST /v1/outbound is not JSON") from None
    if not isinstance(summary, dict):
        raise TransferError("the answer to POST /v1/outbound is not a JSON object")
    return summary


# -- command line ----------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=(
            "Move ciphertext between the Postern server's sync API and removable media. "
            "Holds only the transfer client's request-signing key."
        ),
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {metadata.version('postern')}"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    pull = commands.add_parser(
        "pull",
        help="fetch every unacknowledged item into inbound bundles",
        description=(
            "Fetch every item no journalist acknowledged yet into signed inbound bundles in "
            "DIR (one per 10,000 items). An interrupted pull is finished by running the same "
            "command again."
        ),
    )
    _common(pull)
    pull.add_argument(
        "--to", required=True, type=Path, metavar="DIR", help="where to write the bundles"
    )
    pull.add_argument(
        "--no-verify",
        dest="verify",
        action="store_false",
        help=(
            "do not check each envelope's SHA-256 against the signed manifest here (faster on "
            "a fast link; the station checks every envelope at import, and what an "
            "interrupted pull left is still checked before it is reused)"
        ),
    )
    pull.set_defaults(handler=_pull)
    push_cmd = commands.add_parser(
        "push",
        help="upload an outbound bundle made on the station",
        description="Upload an outbound bundle (replies, deletions, acknowledgements).",
    )
    push_cmd.add_argument("bundle", type=Path, metavar="BUNDLE", help="the outbound bundle")
    _common(push_cmd)
    push_cmd.set_defaults(handler=_push)
    return parser


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--server", required=True, metavar="URL", help="the sync API's URL")
    parser.add_argument(
        "--key", required=True, type=Path, metavar="FILE", help="the transfer key file"
    )
    parser.add_argument(
        "--passphrase-fd",
        type=_fd,
        metavar="N",
        help="read the key's passphrase from file descriptor N (one line) instead of asking",
    )
    parser.add_argument(
        "--socks",
        metavar="HOST:PORT",
        help="go through this SOCKS5 proxy (Tor: 127.0.0.1:9050), names resolved by it",
    )


def _fd(text: str) -> int:
    if not text.isascii() or not text.isdigit():
        raise argparse.ArgumentTypeError(f"not a file descriptor number: {text!r}")
    return int(text)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else list(argv))
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except UsageError as exc:
        return _error(str(exc), EXIT_USAGE)
    except (TransferError, CryptoError) as exc:
        return _error(str(exc), EXIT_FAILED)
    except requests.RequestException as exc:
        return _error(_describe_request_error(exc, args), EXIT_FAILED)
    except OSError as exc:
        return _error(describe_os_error(exc), EXIT_FAILED)
    except KeyboardInterrupt:
        again = "; run the same command again to resume" if args.command == "pull" else ""
        return _error("interrupted" + again, EXIT_FAILED)


def _client(args: argparse.Namespace) -> SyncClient:
    proxies = socks_proxies(args.socks) if args.socks is not None else None
    base = server_base(args.server, socks=proxies is not None)
    return SyncClient(base, _load_key(args.key, args.passphrase_fd), proxies=proxies)


def _pull(args: argparse.Namespace) -> int:
    client = _client(args)
    puller = Puller(client, args.to, stderr=sys.stderr, verify=args.verify)
    try:
        result = puller.run()
    except BaseException:
        puller.interrupted()
        raise
    finally:
        client.close()
    if not result.bundles:
        _say("Nothing to pull: the server holds no unacknowledged items.")
        return EXIT_OK
    rate = result.fetched / result.seconds if result.seconds > 0 else 0.0
    resumed = f", finishing {result.resumed} interrupted pull(s)" if result.resumed else ""
    if result.existing:
        resumed += f", {result.existing} of them already there"
    _say(
        f"Pulled {result.items} items ({_size(result.bytes)}) into {len(result.bundles)} "
        f"bundle(s){resumed}; fetched {_size(result.fetched)} in {result.seconds:.1f} s "
        f"({_size(rate)}/s)."
    )
    for path in result.bundles:
        _say(f"  {path}")
    if not args.verify:
        _say("Envelopes were not checked here (--no-verify): the station checks them at import.")
    return EXIT_OK


def _push(args: argparse.Namespace) -> int:
    client = _client(args)
    try:
        summary = push(client, args.bundle)
    finally:
        client.close()
    _say(json.dumps(summary, sort_keys=True))
    return EXIT_OK


def _load_key(path: Path, passphrase_fd: int | None) -> PrivateKey:
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_KEY_FILE + 1)
    except FileNotFoundError:
        raise TransferError(f"key file {path} does not exist") from None
    try:
        try:
            key = load_private_key(data, None)
        except PassphraseError:
            key = load_private_key(data, _passphrase(passphrase_fd, path))
    except CryptoError as exc:
        raise TransferError(f"{path}: {exc}") from None
    if key.kind is not KeyKind.TRANSFER:
        raise TransferError(f"{path} holds a {key.kind.value} key, not a transfer key")
    return key


def _passphrase(fd: int | None, path: Path) -> str:
    if fd is None:
        try:
            tty = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
        except OSError:
            raise UsageError(
                f"{path} is protected by a passphrase and there is no terminal to ask for it: "
                "pass it with --passphrase-fd N"
            ) from None
        os.close(tty)
        return getpass.getpass(f"Passphrase for {path}: ")
    data = bytearray()
    try:
        while b"\n" not in data and len(data) <= MAX_PASSPHRASE:
            block = os.read(fd, 512)
            if not block:
                break
            data += block
    except OSError as exc:
        raise TransferError(
            f"cannot read the passphrase from file descriptor {fd}: {exc}"
        ) from None
    line = bytes(data).split(b"\n", 1)[0]
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError:
        raise TransferError("the passphrase is not valid UTF-8") from None


def _describe_request_error(exc: requests.RequestException, args: argparse.Namespace) -> str:
    where = f"through the SOCKS proxy {args.socks}" if args.socks else args.server
    if isinstance(exc, requests.exceptions.InvalidSchema) and "SOCKS" in str(exc):
        return "SOCKS support is missing: install the pysocks package"
    if isinstance(exc, requests.Timeout):
        reason = "the server did not answer in time"
    elif isinstance(exc, requests.exceptions.ChunkedEncodingError):
        reason = "the connection broke during a transfer"
    elif isinstance(exc, requests.ConnectionError):
        reason = "cannot reach the server"
    else:
        reason = "the request failed"
    resume = "; run the same command again to resume" if args.command == "pull" else ""
    return f"{reason} ({where}): {_clean(str(exc), 160)}{resume}"


def _say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _error(message: str, status: int) -> int:
    sys.stdout.flush()
    sys.stderr.write(f"{PROG}: error: {_clean(message, 2000)}\n")
    sys.stderr.flush()
    return status


if __name__ == "__main__":
    sys.exit(main())
