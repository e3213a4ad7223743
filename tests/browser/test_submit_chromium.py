"""The submit page's script (dropbox/static/js/postern.js) in Chromium, against a real server.

Each test starts ``dropbox serve`` (gunicorn) on a fresh data directory with a keyring made
here, and puts a :class:`Relay` between the browser and the server: it reads every byte the
browser sends, records each request, and can cut one off half-way or hold it back. What was
stored is opened with the journalist's private key and compared with what was chosen in the
page, byte for byte.

:class:`LiveServer`, :class:`Relay` and the helpers below are shared with
test_submit_firefox.py.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Page, Request, Route

from crypto import KeyEntry, KeyKind, Kind, Manifest, PrivateKey, open_envelope, sign_keyring
from crypto.envelope import CT_CHUNK, header_length
from dropbox import db
from dropbox.instance import install_keyring, load_instance
from tests.browser.browsers import ChromiumPage
from tests.clitools import DROPBOX
from tests.dropbox.sitetools import ISSUED, Team, make_data_dir, make_team
from tests.dropbox.test_serve import free_port, wait_for_port

pytestmark = pytest.mark.timeout(90)

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


class LiveServer:
    """``dropbox serve`` on 127.0.0.1 for a fresh data directory under ``base``.

    ``settings`` become ``POSTERN_*`` variables (``max_nojs_request_bytes=...``).
    """

    def __init__(self, base: Path, team: Team, **settings: int) -> None:
        self.team = team
        self.data_dir = make_data_dir(base / "data", team)
        self.port = free_port()
        self.log = base / "server.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("POSTERN_")}
        env.update({f"POSTERN_{name.upper()}": str(value) for name, value in settings.items()})
        command = [
            str(DROPBOX),
            "serve",
            "--data-dir",
            str(self.data_dir),
            "--port",
            str(self.port),
            "--api-port",
            str(free_port()),
        ]
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                start_new_session=True,
            )  # fmt: skip
        try:
            wait_for_port(self.port, self.process, timeout=30)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=20)

    def output(self) -> str:
        return self.log.read_text("utf-8", "replace")

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
        engine = db.make_engine(db.sqlite_url(self.data_dir))
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
    manifest = Manifest(
        serial=serial,
        issued=ISSUED,
        root=team.root.public.key,
        recipients=(KeyEntry(stranger.public.key, "Bob", "bob"),),
    )
    return sign_keyring(manifest, team.root), stranger


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
#: browser's connection); or "hold" its body back until the browser gives up.
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
            if self._forward(client, upstream, raw):
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

    def _forward(self, client: socket.socket, upstream: socket.socket, raw: bytearray) -> bool:
        """Pass the browser's requests on until its connection ends; True when one was cut."""
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


# -- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def team() -> Team:
    return make_team()


@pytest.fixture
def server(team: Team) -> Iterator[LiveServer]:
    with tempfile.TemporaryDirectory(prefix="postern-live-") as base:
        live = LiveServer(Path(base), team)
        try:
            yield live
        finally:
            live.stop()
        output = live.output()
        assert "Traceback" not in output
        assert "unhandled" not in output


@pytest.fixture
def relay(server: LiveServer) -> Iterator[Relay]:
    relay = Relay(server.port)
    try:
        yield relay
    finally:
        relay.close()


@dataclass
class Browser:
    """A Chromium page that records every request it makes, with its body."""

    page: Page
    base: str
    seen: list[tuple[str, str, bytes]] = field(default_factory=list)

    def record(self, request: Request) -> None:
        self.seen.append((request.method, request.url, request.post_data_buffer or b""))

    def strings(self) -> dict[str, str]:
        found: dict[str, str] = self.page.evaluate(
            "() => ({ ...document.getElementById('postern-strings').dataset })"
        )
        return found

    def log_in(self) -> None:
        """Get a codename, acknowledge it and wait on the submit page until the script decided."""
        page = self.page
        page.goto(self.base + "/generate")
        page.click("main form button")
        page.wait_for_selector("#codename")
        page.click("main form button")
        page.wait_for_url("**/submit")
        page.wait_for_selector("#submit-form[data-postern]")

    def path(self) -> str | None:
        value: str | None = self.page.get_attribute("#submit-form", "data-postern")
        return value

    def fill(self, message: str, files: list[tuple[str, str, bytes]]) -> None:
        self.page.fill("#message", message)
        payloads = [{"name": n, "mimeType": t, "buffer": data} for n, t, data in files]
        self.page.set_input_files("#files", payloads)  # type: ignore[arg-type]

    def send(self) -> None:
        self.page.click("#submit-form button[type=submit]")

    def status(self) -> str:
        return self.page.inner_text("#postern-status")


@pytest.fixture
def browser(chromium_page: ChromiumPage, relay: Relay) -> Browser:
    page = chromium_page.page
    page.set_default_timeout(30_000)
    browser = Browser(page, relay.base_url)
    page.on("request", browser.record)
    return browser


def assert_no_marker(browser: Browser, relay: Relay, marker: bytes) -> None:
    forms = marker_forms(marker)
    for method, url, body in browser.seen:
        assert not found_in(forms, url.encode()), f"marker in the URL of {method} {url}"
        assert not found_in(forms, body), f"marker in the body of {method} {url}"
    for connection in relay.raw:
        assert not found_in(forms, connection), "marker in what the browser sent"


# -- tests ----------------------------------------------------------------------------------------


def test_message_and_files_are_encrypted_in_the_browser(browser, relay, server):
    marker = new_marker()
    message = "Meet me at the usual place. " + marker.decode() + " Привет, ünïcödé ✓"
    notes = content_with(marker, 200_000)
    video = content_with(marker, 3 * MiB + 12_345)
    browser.log_in()
    assert browser.path() == ENCRYPTING
    strings = browser.strings()
    assert browser.page.inner_text("#postern-notice") == strings["ready"]
    browser.fill(
        message, [("notes.txt", "text/plain", notes), ("body cam.mp4", "video/mp4", video)]
    )
    browser.send()
    browser.page.wait_for_url("**/submit/done", timeout=60_000)

    items = server.items()
    assert [(i.kind, i.envelope_kind, i.filename, i.media_type) for i in items] == [
        ("message", Kind.MESSAGE, "", "text/plain; charset=utf-8"),
        ("file", Kind.FILE, "notes.txt", "text/plain"),
        ("file", Kind.FILE, "body cam.mp4", "video/mp4"),
    ]
    assert items[0].content == message.encode()
    assert items[1].content == notes
    assert items[2].content == video
    assert len({i.submission for i in items}) == 1
    assert server.upload_files() == []

    # Only ciphertext left the browser, all of it through tus; the plain form was not used.
    assert_no_marker(browser, relay, marker)
    assert relay.matching("POST", "/submit") == []
    assert len(relay.matching("POST", "/api/uploads")) == 3
    patched = sum(len(r.body) for r in relay.matching("PATCH", "/api/uploads/"))
    assert patched > len(video) + len(notes)
    # Several chunks per PATCH: the 3 MiB file took a few requests, not one per chunk.
    assert 4 <= len(relay.matching("PATCH", "/api/uploads/")) <= 8
    # The browser's own record agrees with the relay's (bodies included).
    seen_patch = [body for method, _, body in browser.seen if method == "PATCH"]
    assert sum(map(len, seen_patch)) == patched


def _send_one_file(browser: Browser, data: bytes) -> None:
    browser.log_in()
    assert browser.path() == ENCRYPTING
    browser.fill("", [("dump.bin", "application/octet-stream", data)])
    browser.send()


def test_an_upload_cut_off_half_way_resumes_where_the_server_stopped(browser, relay, server):
    data = os.urandom(3 * MiB + 777)
    relay.rule = nth("PATCH", "/api/uploads/", 2, "cut")
    _send_one_file(browser, data)
    browser.page.wait_for_url("**/submit/done", timeout=60_000)

    [item] = server.items()
    assert (item.kind, item.filename, item.content) == ("file", "dump.bin", data)
    [(cut, arrived)] = relay.cut
    # The script asked the server how much had arrived and went on from there, in the middle
    # of a chunk: it re-sealed that one chunk (chunks are deterministic) instead of starting
    # the envelope again. (Chromium may first resend the cut request on its own; the server
    # refuses that with 409, which the script also recovers from.)
    assert relay.matching("HEAD", "/api/uploads/")
    resumed = cut.offset + arrived
    assert (resumed - header_length(1)) % CT_CHUNK != 0
    following = [p for p in relay.matching("PATCH", "/api/uploads/") if p.offset == resumed]
    assert len(following) == 1
    assert following[0].complete


def test_an_aborted_patch_is_sent_again(browser, relay, server):
    data = os.urandom(2 * MiB + 5)
    count = 0

    def abort_second_patch(route: Route) -> None:
        nonlocal count
        if route.request.method == "PATCH":
            count += 1
            if count == 2:
                route.abort("connectionreset")
                return
        route.continue_()

    browser.page.route("**/api/uploads/*", abort_second_patch)
    _send_one_file(browser, data)
    browser.page.wait_for_url("**/submit/done", timeout=60_000)
    [item] = server.items()
    assert item.content == data
    assert count >= 3
    assert relay.matching("HEAD", "/api/uploads/")


def test_cancel_deletes_the_upload(browser, relay, server):
    relay.rule = nth("PATCH", "/api/uploads/", 2, "hold")
    _send_one_file(browser, os.urandom(3 * MiB))
    assert relay.held.wait(30), "the second PATCH never came"
    assert len(server.upload_files()) == 2  # the upload's bytes and its sidecar
    strings = browser.strings()
    browser.page.click(f"#postern-status button:text-is('{strings['cancel']}')")
    browser.page.wait_for_function(
        "(text) => document.getElementById('postern-status').textContent === text",
        arg=strings["cancelled"],
    )
    assert relay.matching("DELETE", "/api/uploads/")
    deadline = time.monotonic() + 10
    while server.upload_files() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert server.upload_files() == []
    assert server.blob_files() == []
    assert server.items() == []
    # The form is usable again.
    assert browser.page.is_enabled("#submit-form button[type=submit]")


def test_a_keyring_replaced_while_the_page_is_open_stops_the_upload(browser, relay, server, team):
    browser.log_in()
    assert browser.path() == ENCRYPTING
    server.install(other_keyring(team, 2)[0])  # the page still announces serial 1
    browser.fill("a message for the old keys", [("a.txt", "text/plain", b"x" * 5000)])
    browser.send()
    strings = browser.strings()
    browser.page.wait_for_selector("#postern-status .error")
    assert browser.status() == strings["stale"]
    assert server.items() == []
    assert server.upload_files() == []
    assert server.blob_files() == []


#: Every text postern.js shows, as the page gives it (data-* of #postern-strings).
STRINGS = {
    "ready", "noCrypto", "whySupport", "whyKeyring", "whySerial", "serverSeals",
    "messageName", "sending", "progress", "retrying", "cancel", "cancelled", "empty",
    "tooMany", "tooLarge", "stale", "expired", "network", "failed",
}  # fmt: skip


def test_nothing_to_send_is_said_and_nothing_is_sent(browser, relay, server):
    browser.log_in()
    strings = browser.strings()
    assert set(strings) == STRINGS
    assert all(strings.values())
    before = len(relay.requests)
    browser.send()
    browser.page.wait_for_selector("#postern-status .error")
    assert browser.status() == strings["empty"]
    assert [r.path for r in relay.requests[before:]] == []
    assert browser.path() == ENCRYPTING


def _tampered(keyring: bytes) -> bytes:
    """The keyring with one bit of its signature flipped."""
    outer = json.loads(keyring)
    signature = bytearray(base64.b64decode(outer["signature"]))
    signature[0] ^= 1
    outer["signature"] = base64.b64encode(signature).decode()
    return json.dumps(outer).encode()


@pytest.mark.parametrize("served", ["newer serial", "bad signature"])
def test_a_keyring_that_does_not_match_the_page_fails_closed(browser, relay, server, team, served):
    """The script encrypts nothing; the notice says why; the plain form (sealed on the
    server, to the installed keyring) still works."""
    newer, _ = other_keyring(team, 2)
    body = newer if served == "newer serial" else _tampered(team.keyring(1))
    browser.page.route(
        "**/keyring.json",
        lambda route: route.fulfill(status=200, body=body, content_type="application/json"),
    )
    browser.log_in()
    assert browser.path() == PLAIN
    strings = browser.strings()
    reason = strings["whySerial"] if served == "newer serial" else strings["whyKeyring"]
    notice = browser.page.inner_text("#postern-notice")
    assert notice == f"{strings['noCrypto']} {reason} {strings['serverSeals']}"

    data = os.urandom(100_000)
    browser.fill("sent through the plain form", [("plain.bin", "application/x-test", data)])
    browser.send()
    browser.page.wait_for_selector("text=Thank you")
    assert relay.matching("POST", "/api/uploads") == []
    assert len(relay.matching("POST", "/submit")) == 1
    items = server.items()  # opened with the installed keyring's key, not the stranger's
    assert [(i.kind, i.filename, i.content) for i in items] == [
        ("message", "", b"sent through the plain form"),
        ("file", "plain.bin", data),
    ]


def test_the_script_is_small():
    """All the page's JavaScript together stays under 40 KB."""
    js = Path(__file__).resolve().parents[2] / "dropbox" / "static" / "js"
    assert sum(p.stat().st_size for p in js.glob("*.js")) < 40_000
