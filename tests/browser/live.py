"""A real source interface for browser tests: ``dropbox serve`` on a fresh data directory,
and a :class:`Relay` between the browser and the server that reads every byte the browser
sends, records each request, and can cut one off half-way or hold it back. Used by
test_submit_chromium.py and test_submit_firefox.py (fixtures in conftest.py).
"""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from crypto import KeyKind, Kind, PrivateKey, open_envelope
from dropbox import db
from dropbox.instance import install_keyring, load_instance
from tests.support.database import server_url
from tests.support.server import DropboxServer, make_data_dir
from tests.support.team import Team

MiB = 1 << 20
#: What postern.js sets on the form once it has decided which path the form takes.
ENCRYPTING, PLAIN = "encrypt", "plain"


# -- the server ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredItem:
    """One envelope of a stored submission, opened with the journalist's key."""

    submission: int
    kind: str
    envelope_kind: Kind
    filename: str
    media_type: str
    content: bytes


class LiveServer(DropboxServer):
    """``dropbox serve`` on 127.0.0.1 for a fresh data directory under ``base``, running.

    ``settings`` become ``POSTERN_*`` variables (``max_nojs_request_bytes=...``).
    """

    def __init__(self, base: Path, team: Team, **settings: int) -> None:
        super().__init__(make_data_dir(base / "data", team), base, settings=settings)
        self.team = team
        self.start(timeout=30)

    @property
    def uploads_dir(self) -> Path:
        return load_instance(self.data_dir).uploads_dir

    @property
    def blobs_dir(self) -> Path:
        return load_instance(self.data_dir).blobs_dir

    def upload_files(self) -> list[str]:
        return sorted(os.listdir(self.uploads_dir))

    def blob_files(self) -> list[str]:
        return sorted(os.listdir(self.blobs_dir))

    def install(self, keyring: bytes) -> None:
        install_keyring(self.data_dir, keyring)

    def items(self) -> list[StoredItem]:
        """Every stored item, in submission and position order, opened with the team's key."""
        engine = db.make_engine(server_url(self.data_dir))
        try:
            with db.make_sessionmaker(engine)() as session:
                rows = [
                    (item.submission_id, item.kind, item.blob_id)
                    for item in session.query(db.Item).order_by(
                        db.Item.submission_id, db.Item.position
                    )
                ]
        finally:
            engine.dispose()
        items = []
        for submission, kind, blob_id in rows:
            with (self.blobs_dir / blob_id).open("rb") as handle:
                opened = open_envelope(handle, [self.team.journalist.secret])
                meta = opened.metadata
                content = opened.read_all()
            items.append(
                StoredItem(submission, kind, meta.kind, meta.filename, meta.media_type, content)
            )
        return items


def other_keyring(team: Team, serial: int) -> tuple[bytes, PrivateKey]:
    """A keyring signed by the team's root whose recipient is a new key (not the journalist)."""
    stranger = PrivateKey.generate(KeyKind.ENCRYPTION, "Bob")
    return team.keyring(serial, recipients=(stranger,)), stranger


# -- a relay that sees every request ------------------------------------------------------------


@dataclass
class Recorded:
    """One HTTP request as the browser sent it (``body`` so far, if it was cut or held)."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytearray = field(default_factory=bytearray)
    complete: bool = False

    @property
    def offset(self) -> int:
        return int(self.headers["upload-offset"])


#: What the relay does with a request: pass it on (None); "cut" it half-way through its body
#: (the server gets that half and the end of the stream, its answer is dropped, and so is the
#: browser's connection); "hold" its body back until the browser gives up; or "mute": pass it
#: on whole, then drop the server's answer and the browser's connection (an answer lost on
#: its way back, as over a broken circuit).
Rule = Callable[[Recorded], str | None]


class Relay:
    """A TCP relay on 127.0.0.1 in front of ``upstream_port`` that reads the requests passing.

    Every byte the browser sends is kept in ``raw`` (one buffer per connection) and every
    request in ``requests``; ``rule`` decides, when a request's head has arrived, whether it is
    passed on, cut or held (``held`` is set once a body is being held).
    """

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.port = int(self.listener.getsockname()[1])
        self.requests: list[Recorded] = []
        self.raw: list[bytearray] = []
        self.rule: Rule = lambda request: None
        self.held = threading.Event()
        #: The requests cut, each with how many bytes of its body reached the server.
        self.cut: list[tuple[Recorded, int]] = []
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._closed = threading.Event()
        self._accepting = threading.Thread(target=self._accept, name="relay", daemon=True)
        self._accepting.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def matching(self, method: str, prefix: str) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.method == method and r.path.startswith(prefix)]

    def close(self) -> None:
        self._closed.set()
        self._accepting.join(timeout=5)
        self.listener.close()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            _shut(sock)
        for thread in self._threads:
            thread.join(timeout=5)

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            thread = threading.Thread(target=self._connection, args=(client,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _connection(self, client: socket.socket) -> None:
        raw = bytearray()
        try:
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=10)
        except OSError:
            client.close()
            return
        upstream.settimeout(None)
        with self._lock:
            self.raw.append(raw)
            self._sockets.update((client, upstream))
        muted = threading.Event()
        back = threading.Thread(target=self._pump, args=(upstream, client, muted), daemon=True)
        back.start()
        try:
            if self._forward(client, upstream, raw, muted):
                # Cut: the server got part of a body and the end of the stream. Once it has
                # answered (to nobody: the browser never sees the answer), drop the browser's
                # connection as a broken circuit would.
                muted.set()
                upstream.shutdown(socket.SHUT_WR)
                back.join(timeout=30)
        except OSError:
            pass
        finally:
            _shut(client)
            _shut(upstream)
            back.join(timeout=10)
            client.close()
            upstream.close()

    def _pump(self, source: socket.socket, target: socket.socket, muted: threading.Event) -> None:
        try:
            while data := source.recv(65536):
                if not muted.is_set():
                    target.sendall(data)
        except OSError:
            pass
        if not muted.is_set():
            _shut(source)
            _shut(target)

    def _forward(
        self,
        client: socket.socket,
        upstream: socket.socket,
        raw: bytearray,
        muted: threading.Event,
    ) -> bool:
        """Pass the browser's requests on until its connection ends; True when one was cut
        or muted."""
        pending = bytearray()
        current: Recorded | None = None
        remaining = passed = cut_at = 0
        action: str | None = None
        while data := client.recv(65536):
            raw += data
            pending += data
            while pending:
                if current is None:
                    end = pending.find(b"\r\n\r\n")
                    if end < 0:
                        break
                    head = bytes(pending[: end + 4])
                    del pending[: end + 4]
                    current = _parse_head(head)
                    with self._lock:
                        self.requests.append(current)
                    assert "transfer-encoding" not in current.headers, "a chunked request"
                    remaining = int(current.headers.get("content-length", "0"))
                    action = self.rule(current)
                    if action == "mute":
                        muted.set()  # before the server can answer
                    passed, cut_at = 0, remaining // 2 + 4099 if remaining > 8200 else 1
                    upstream.sendall(head)
                else:
                    piece = bytes(pending[:remaining])
                    del pending[: len(piece)]
                    current.body += piece
                    remaining -= len(piece)
                    if action == "hold":
                        self.held.set()
                        continue
                    if action == "cut" and passed + len(piece) >= cut_at:
                        upstream.sendall(piece[: cut_at - passed])
                        self.cut.append((current, cut_at))
                        return True
                    upstream.sendall(piece)
                    passed += len(piece)
                if current is not None and remaining == 0 and action != "hold":
                    current.complete = True
                    current = None
                    if action == "mute":
                        return True
        return False


def _parse_head(head: bytes) -> Recorded:
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    return Recorded(method, path, headers)


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


def nth(method: str, prefix: str, n: int, action: str) -> Rule:
    """A rule that applies ``action`` to the n-th request (from 1) of ``method`` to ``prefix``."""
    seen = 0
    lock = threading.Lock()

    def rule(request: Recorded) -> str | None:
        nonlocal seen
        if request.method != method or not request.path.startswith(prefix):
            return None
        with lock:
            seen += 1
            return action if seen == n else None

    return rule


# -- markers --------------------------------------------------------------------------------------


def new_marker() -> bytes:
    return b"POSTERN-MARKER-" + secrets.token_hex(16).encode()


def marker_forms(marker: bytes) -> list[bytes]:
    """The marker as it would appear if it were sent as text, UTF-16, hex or base64."""
    forms = [
        marker,
        marker.decode().encode("utf-16-le"),
        marker.decode().encode("utf-16-be"),
        marker.hex().encode(),
        marker.hex().upper().encode(),
    ]
    for shift in range(3):  # base64 of the marker at each position in a 3-byte group
        padded = b"\0" * shift + marker
        encoded = base64.b64encode(padded)
        start, end = -(-shift * 4 // 3), len(padded) * 4 // 3
        inner = encoded[start:end]
        forms += [inner, inner.replace(b"+", b"-").replace(b"/", b"_")]
    return forms


def found_in(forms: list[bytes], data: bytes | bytearray) -> bool:
    return any(form in data for form in forms)


def content_with(marker: bytes, size: int) -> bytes:
    """``size`` random bytes with the marker written in every 64 KiB (and at both ends)."""
    data = bytearray(os.urandom(size))
    for at in [*range(0, size - len(marker), 65536 - 7), size - len(marker)]:
        data[at : at + len(marker)] = marker
    return bytes(data)
