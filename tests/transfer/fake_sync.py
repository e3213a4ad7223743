"""A fake sync API (docs/format.md section 9) and a tiny SOCKS5 proxy, both on loopback.

The fake server is written from the format document, independently of the transfer client in
transfer/ (it checks request signatures with its own code) and of the real server in
dropbox/sync/:
an in-memory list of items, signed manifests, envelopes with ``Range: bytes=N-``, and
outbound bundles. It can be told to misbehave (drop a connection once, sign with another
key, serve wrong bytes) and it logs every request it answered.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import hashlib
import io
import ipaddress
import re
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.x509.oid import NameOID
from flask import Flask, Response, jsonify, request
from werkzeug.serving import BaseWSGIServer, make_server

from crypto.bundle import (
    InboundItem,
    InboundManifest,
    OutboundReply,
    read_outbound_bundle,
    sign_inbound_manifest,
)
from crypto.errors import CryptoError
from crypto.keys import PrivateKey

LABEL = b"postern/v1 sync request\n"
KEYRING_SERIAL = 3
MADE = date(2026, 11, 24)


@dataclass
class FakeItem:
    id: str
    envelope: bytes
    kind: str = "message"
    source_id: bytes = b"\x5a" * 16
    reply_public_key: bytes = b"\x11" * 32
    day: date = date(2026, 11, 20)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "source_id": self.source_id.hex(),
            "reply_public_key": base64.b64encode(self.reply_public_key).decode(),
            "kind": self.kind,
            "size": len(self.envelope),
            "sha256": hashlib.sha256(self.envelope).hexdigest(),
            "day": self.day.isoformat(),
        }

    def inbound(self) -> InboundItem:
        return InboundItem(
            id=self.id,
            source_id=self.source_id,
            reply_public_key=self.reply_public_key,
            kind=self.kind,
            size=len(self.envelope),
            sha256=hashlib.sha256(self.envelope).digest(),
            day=self.day,
        )


@dataclass
class Logged:
    method: str
    target: str
    range: str | None
    status: int = 0


class _Sink:
    def __init__(self) -> None:
        self.buffer = io.BytesIO()
        self.committed = False

    def write(self, data: bytes, /) -> int:
        return self.buffer.write(data)

    def commit(self) -> None:
        self.committed = True

    def abort(self) -> None:
        self.buffer = io.BytesIO()


@dataclass
class FakeSync:
    """The state and behaviour of the fake server."""

    server_key: PrivateKey
    clients: dict[bytes, bytes]
    signing_keys: dict[bytes, bytes] = field(default_factory=dict)
    items: list[FakeItem] = field(default_factory=list)
    acknowledged: set[str] = field(default_factory=set)
    #: The key that signs manifests (and that they name); another one to test refusals.
    manifest_key: PrivateKey | None = None
    #: Item id -> bytes to send before dropping the connection, once.
    drop_after: dict[str, int] = field(default_factory=dict)
    #: Item id -> bytes served instead of the envelope.
    wrong_bytes: dict[str, bytes] = field(default_factory=dict)
    #: The most items per page of GET /v1/items, whatever the client asks for.
    page_size: int = 2
    log: list[Logged] = field(default_factory=list)
    nonces: set[tuple[bytes, str]] = field(default_factory=set)
    applied: dict[bytes, dict[str, Any]] = field(default_factory=dict)
    replies: list[tuple[bytes, bytes]] = field(default_factory=list)

    def pending(self) -> list[FakeItem]:
        return [item for item in self.items if item.id not in self.acknowledged]

    def find(self, item_id: str) -> FakeItem | None:
        for item in self.pending():
            if item.id == item_id:
                return item
        return None

    def add(self, envelope: bytes, kind: str = "message") -> FakeItem:
        item = FakeItem(str(len(self.items) + 1), envelope, kind)
        self.items.append(item)
        return item

    # -- the WSGI app --

    def app(self) -> Flask:
        app = Flask("fake_sync")

        @app.before_request
        def authenticate() -> Response | None:
            target = request.environ["RAW_URI"]
            self.log.append(Logged(request.method, target, request.headers.get("Range")))
            refusal = self._check_signature(target)
            if refusal is not None:
                return _error(401, refusal, "refused by the fake server")
            return None

        @app.after_request
        def remember_status(response: Response) -> Response:
            self.log[-1].status = response.status_code
            return response

        @app.get("/v1/status")
        def status() -> Response:
            pending = self.pending()
            return jsonify(
                keyring_serial=KEYRING_SERIAL,
                server_key=base64.b64encode(self.server_key.public.key).decode(),
                pending_items=len(pending),
                pending_bytes=sum(len(item.envelope) for item in pending),
            )

        @app.get("/v1/items")
        def items() -> Response:
            limit = request.args.get("limit", "")
            if not re.fullmatch(r"[1-9][0-9]{0,3}", limit) or int(limit) > 1000:
                return _error(400, "bad_request", "limit must be 1 to 1000")
            after = request.args.get("after")
            start = 0
            if after is not None:
                # A cursor with characters that must be percent-encoded in a query.
                match = re.fullmatch(r"after item ([0-9]+)/\+=", after)
                if match is None:
                    return _error(400, "bad_cursor", "unknown cursor")
                start = int(match[1])
            pending = self.pending()
            page = pending[start : start + min(int(limit), self.page_size)]
            end = start + len(page)
            cursor = f"after item {end}/+=" if end < len(pending) else None
            return jsonify(items=[item.to_json() for item in page], next=cursor)

        @app.post("/v1/manifests")
        def manifests() -> Response:
            body = request.get_json(silent=True)
            ids = body.get("items") if isinstance(body, dict) else None
            if not isinstance(ids, list) or not 1 <= len(ids) <= 10_000:
                return _error(400, "bad_request", "items must be a list of 1 to 10000 ids")
            found = [self.find(i) if isinstance(i, str) else None for i in ids]
            if any(item is None for item in found) or len(set(ids)) != len(ids):
                return _error(404, "unknown_item", "an item is not pending")
            key = self.manifest_key or self.server_key
            manifest = InboundManifest(
                server_key=key.public.key,
                keyring_serial=KEYRING_SERIAL,
                made=MADE,
                items=tuple(item.inbound() for item in found if item is not None),
            )
            block = sign_inbound_manifest(manifest, key)
            return Response(block, mimetype="application/octet-stream")

        @app.get("/v1/items/<item_id>/envelope")
        def envelope(item_id: str) -> Response:
            item = self.find(item_id)
            if item is None:
                return _error(404, "unknown_item", "no such item")
            data = self.wrong_bytes.get(item_id, item.envelope)
            start, status = 0, 200
            wanted = request.headers.get("Range")
            if wanted is not None:
                match = re.fullmatch(r"bytes=([0-9]+)-", wanted)
                if match is None or int(match[1]) >= len(data):
                    return _error(416, "bad_range", "only bytes=N- is supported")
                start, status = int(match[1]), 206
            rest = data[start:]
            headers = {"Content-Length": str(len(rest)), "Accept-Ranges": "bytes"}
            if status == 206:
                headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
            drop = self.drop_after.pop(item_id, None)
            return Response(
                _pieces(rest, drop),
                status=status,
                headers=headers,
                mimetype="application/octet-stream",
                direct_passthrough=True,
            )

        @app.post("/v1/outbound")
        def outbound() -> Response:
            sinks: list[tuple[OutboundReply, _Sink]] = []

            def open_sink(reply: OutboundReply) -> _Sink:
                sink = _Sink()
                sinks.append((reply, sink))
                return sink

            try:
                manifest = read_outbound_bundle(
                    io.BytesIO(request.get_data()), self.signing_keys, open_sink
                )
            except CryptoError as exc:
                return _error(422, "bad_bundle", f"the bundle does not verify: {exc}")
            summary = {
                "applied": manifest.bundle_id not in self.applied,
                "replies": len(manifest.replies),
                "deletions": len(manifest.deletions),
                "acknowledged": len(manifest.acknowledged),
                "purged": 0,
            }
            if summary["applied"]:
                self.applied[manifest.bundle_id] = summary
                self.acknowledged.update(manifest.acknowledged)
                self.replies += [(r.source_id, s.buffer.getvalue()) for r, s in sinks]
            return jsonify(summary)

        @app.errorhandler(404)
        def not_found(_: Exception) -> Response:
            return _error(404, "not_found", "no such endpoint")

        return app

    def _check_signature(self, target: str) -> str | None:
        headers = request.headers
        client = headers.get("X-Postern-Client", "")
        timestamp = headers.get("X-Postern-Timestamp", "")
        nonce = headers.get("X-Postern-Nonce", "")
        signature = headers.get("X-Postern-Signature", "")
        if not (
            re.fullmatch(r"[0-9a-f]{32}", client)
            and re.fullmatch(r"0|[1-9][0-9]*", timestamp)
            and re.fullmatch(r"[0-9a-f]{32}", nonce)
            and re.fullmatch(r"[A-Za-z0-9+/]{86}==", signature)
        ):
            return "bad_signature_headers"
        public = self.clients.get(bytes.fromhex(client))
        if public is None:
            return "unknown_client"
        digest = hashlib.sha256(request.get_data()).hexdigest()
        signed = LABEL + "\n".join([request.method, target, digest, timestamp, nonce]).encode(
            "latin-1"
        )
        try:
            Ed25519PublicKey.from_public_bytes(public).verify(base64.b64decode(signature), signed)
        except InvalidSignature:
            return "bad_signature"
        if abs(time.time() - int(timestamp)) > 300:
            return "stale_request"
        if (public, nonce) in self.nonces:
            return "replayed_request"
        self.nonces.add((public, nonce))
        return None


def _error(status: int, code: str, message: str) -> Response:
    response = jsonify(error=code, message=message)
    response.status_code = status
    return response


def _pieces(data: bytes, drop: int | None) -> Iterator[bytes]:
    """The body in pieces; with ``drop``, only that many bytes, then the connection closes."""
    end = len(data) if drop is None else drop
    for at in range(0, end, 65536):
        yield data[at : min(at + 65536, end)]


class ServerThread:
    """A WSGI app served by werkzeug on 127.0.0.1 in a thread (in TLS with ``tls``: a
    certificate and its key, as from :func:`self_signed_certificate`)."""

    def __init__(self, app: Flask, tls: tuple[Path, Path] | None = None) -> None:
        context = None
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
        self.server: BaseWSGIServer = make_server(
            "127.0.0.1", 0, app, threaded=True, ssl_context=context
        )
        self.port = self.server.server_port
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


def self_signed_certificate(where: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key, as PEM files in ``where``."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "postern test server")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    (where / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (where / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return where / "cert.pem", where / "key.pem"


# -- a tiny SOCKS5 proxy (RFC 1928: no authentication, CONNECT to a name only) ---------------


def _recv_exact(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        more = conn.recv(size - len(data))
        if not more:
            raise ConnectionError("closed")
        data += more
    return data


class Socks5Proxy:
    """Forwards CONNECTs for the host names it knows to loopback ports; refuses the rest.

    It accepts only domain-name requests (address type 3), so a client that resolved the
    name itself (``socks5://`` rather than ``socks5h://``) is refused.
    """

    def __init__(self, routes: dict[str, int]) -> None:
        self.routes = routes
        self.requested: list[str] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.threads: list[threading.Thread] = []
        self._start(self._accept)

    def _start(self, target: Any, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self.threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self._start(self._serve, conn)

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            try:
                version, count = _recv_exact(conn, 2)
                methods = _recv_exact(conn, count)
                if version != 5 or 0 not in methods:
                    conn.sendall(b"\x05\xff")
                    return
                conn.sendall(b"\x05\x00")
                version, command, _, kind = _recv_exact(conn, 4)
                if kind != 3:
                    conn.sendall(b"\x05\x08\x00\x01" + bytes(6))  # address type not supported
                    return
                name = _recv_exact(conn, _recv_exact(conn, 1)[0]).decode("ascii")
                _recv_exact(conn, 2)  # the port: the route decides
                self.requested.append(name)
                if command != 1 or name not in self.routes:
                    conn.sendall(b"\x05\x04\x00\x01" + bytes(6))  # host unreachable
                    return
                upstream = socket.create_connection(("127.0.0.1", self.routes[name]))
            except (OSError, ValueError):
                return
            with upstream:
                conn.sendall(b"\x05\x00\x00\x01" + bytes(6))
                self._start(_relay, upstream, conn)
                _relay(conn, upstream)

    def close(self) -> None:
        self.listener.close()


def _relay(source: socket.socket, sink: socket.socket) -> None:
    try:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
    finally:
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)
