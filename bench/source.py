"""Benchmark of the source interface under gunicorn: plain-form uploads, slow clients, weight.

Run from the repository root:

    .venv/bin/python bench/source.py [--size-mib 1024] [--clients 100] [--upload-kib 512]
        [--rate-kbps 50] [--repeat 1] [--phase-seconds 60] [--work-dir DIR] [--strict]

It makes a temporary data directory with a team keyring (one journalist: the "station key"),
starts the real source interface with ``dropbox serve`` on a free port of 127.0.0.1 and, beside
it, the baseline: ``python -m bench.source_server``, a WSGI app that reads a body and drops it,
under the same gunicorn configuration. Every request goes to 127.0.0.1; every loop is bounded
in count and time. Then:

1. **No-JS upload.** A source account is made over HTTP (GET and POST ``/generate``,
   ``/acknowledge``, GET ``/submit`` for the CSRF token; the cookie is kept by hand). One
   multipart body holding a file of --size-mib MiB (a random 4 MiB block repeated, sent in
   256 KiB pieces with ``http.client`` and a Content-Length; the file is never held in
   memory) is posted to ``POST /submit`` and, byte for byte the same, to the baseline. The
   throughputs are compared (best of --repeat, interleaved). The baseline reads in pieces of
   the plain-form handler's size (``dropbox.nojs.READ_SIZE``); for information the same body
   also goes to the baseline reading 1 MiB at a time, which shows what the transport alone
   can do. The gunicorn worker's VmRSS is sampled every 50 ms during each upload. The stored
   envelope is found through the database and opened with the station key: its length and
   SHA-256 must be the file's.
2. **Slow clients.** --clients accounts are made first (four at a time, as many as the server
   derives at once). Then each uploads --upload-kib KiB through the plain form over a raw
   socket, paced to --rate-kbps KB/s (1000 bytes per second) in 50 ms steps, while another
   client loads ``/`` every --probe-ms ms on a new connection each time and times it. The same
   probe runs for a while before, with the server idle: that is the latency baseline. The
   phase is bounded by --phase-seconds; anything unfinished then counts as an error. Every
   envelope is then opened with the station key and checked against its client's content.
3. **Page weight.** The landing page's HTML and the stylesheets it links, as served, and all
   files under ``dropbox/static/js/`` together, in bytes, uncompressed (KB = 1000 bytes).

Settings of the benchmark's server (environment, printed with the results):
``POSTERN_LOGIN_DERIVATIONS_PER_MINUTE`` and ``POSTERN_CODENAME_DERIVATIONS_PER_MINUTE`` are
raised so that making the accounts is never throttled (the concurrent-derivation limit keeps
its default), and
``POSTERN_MAX_NOJS_REQUEST_BYTES`` is raised above the upload's size when the default
(500 MiB) would refuse it.

The data directory goes to a private directory under /dev/shm when it has room (or under
--work-dir), so that the disk's speed does not blur the comparison; the file system is printed.
Targets are printed as PASS/FAIL lines. The exit status is 0 whatever the numbers are, unless
--strict is given and a target fails (status 1); 2 when the benchmark itself cannot run.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__":
    # Run as a script, Python puts bench/ first on sys.path, where bench/crypto.py would
    # shadow the `crypto` package: look for packages in the repository root first.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import hashlib
import http.client
import os
import platform
import re
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html.parser import HTMLParser
from importlib import metadata as package_metadata
from typing import BinaryIO, Final, cast
from urllib.parse import urlencode

from cryptography.hazmat.backends.openssl import backend as openssl_backend
from sqlalchemy import select
from sqlalchemy.orm import Session

from crypto import (
    KeyEntry,
    KeyKind,
    Kind,
    Manifest,
    PrivateKey,
    open_envelope,
    sign_keyring,
)
from dropbox.db import Item, make_engine, sqlite_url
from dropbox.gunicorn_settings import THREADS
from dropbox.instance import install_keyring, load_instance
from dropbox.instance.create import init_instance
from dropbox.nojs import READ_SIZE
from tests.support.ports import free_port, is_listening

REPO_ROOT: Final = Path(__file__).resolve().parents[1]
JS_DIR: Final = REPO_ROOT / "dropbox" / "static" / "js"
DROPBOX_EXE: Final = Path(sys.executable).parent / "dropbox"
#: The bench measures one worker process against the baseline's one (``--workers 1``).
WORKERS: Final = 1

KIB: Final = 1 << 10
MIB: Final = 1 << 20
BLOCK_SIZE: Final = 4 * MIB  # the random block that every uploaded file repeats
SEND_PIECE: Final = 256 * KIB  # what the fast upload hands to the socket at once
RSS_INTERVAL: Final = 0.05  # seconds between two VmRSS samples of the worker
PACE_TICK: Final = 0.05  # seconds between two sends of a slow client
STAGGER: Final = 1.0  # the slow clients start spread over this many seconds
IDLE_PROBE_SECONDS: Final = 2.0  # landing-page probes with the server idle, before phase 2
ACCOUNT_THREADS: Final = 4  # accounts made at once (the server's default derivation slots)
WARMUP_BYTES: Final = MIB  # one untimed upload of this size to each server first
#: The read size of the second, informative baseline: gunicorn 27's largest recv() for a body.
BIG_READ: Final = MIB
DEFAULT_NOJS_LIMIT: Final = 500 * MIB
DERIVATIONS_PER_MINUTE: Final = 1_000_000
START_TIMEOUT: Final = 60.0  # seconds for a server to listen and show its worker
STOP_TIMEOUT: Final = 45.0  # seconds for a server to stop after SIGTERM
HTTP_TIMEOUT: Final = 60.0  # seconds for one ordinary page request
FILENAME: Final = "bench.bin"
MEDIA_TYPE: Final = "application/octet-stream"
SESSION_COOKIE: Final = "postern_session"

RATIO_TARGET: Final = 0.60  # /submit throughput / discard baseline throughput
RSS_TARGET_MIB: Final = 64.0  # worker VmRSS growth during the fast upload
P99_TARGET_MS: Final = 250.0  # landing page p99 during the slow uploads
PAGE_TARGET: Final = 20_000  # landing HTML + CSS, bytes
JS_TARGET: Final = 40_000  # all JavaScript, bytes

_CSRF: Final = re.compile(r'name="csrf_token" value="([^"]+)"')
_CODENAME: Final = re.compile(r'<p class="codename" id="codename">[a-z -]+</p>')


class BenchError(Exception):
    """A measurement could not be made or produced a wrong result."""


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise BenchError(message)


# -- content ---------------------------------------------------------------------------------


class Content:
    """``size`` bytes: ``block`` over and over from ``offset`` in it; never held whole."""

    def __init__(self, block: bytes, size: int, offset: int = 0) -> None:
        _check(len(block) > 0, "the content block is empty")
        self._view = memoryview(block)
        self.size = size
        self._offset = offset % len(block)

    def pieces(self, piece: int, start: int = 0, stop: int | None = None) -> Iterator[memoryview]:
        """Views of the bytes from ``start`` to ``stop``, each at most ``piece`` long."""
        period = len(self._view)
        end = self.size if stop is None else min(stop, self.size)
        pos = start
        while pos < end:
            at = (self._offset + pos) % period
            step = min(piece, end - pos, period - at)
            yield self._view[at : at + step]
            pos += step

    def sha256(self) -> str:
        digest = hashlib.sha256()
        for piece in self.pieces(BLOCK_SIZE):
            digest.update(piece)
        return digest.hexdigest()


@dataclass(frozen=True)
class Form:
    """A plain-form multipart body around one file: csrf_token, an empty message, files."""

    boundary: str
    head: bytes
    content: Content
    tail: bytes

    @property
    def length(self) -> int:
        return len(self.head) + self.content.size + len(self.tail)

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"


def make_form(csrf: str, filename: str, content: Content) -> Form:
    """The body a browser sends for the submit form with no message and one file."""
    boundary = "----PosternBench" + secrets.token_hex(16)
    delimiter = f"--{boundary}\r\n"
    head = (
        f'{delimiter}Content-Disposition: form-data; name="csrf_token"\r\n\r\n{csrf}\r\n'
        f'{delimiter}Content-Disposition: form-data; name="message"\r\n\r\n\r\n'
        f'{delimiter}Content-Disposition: form-data; name="files"; filename="{filename}"\r\n'
        f"Content-Type: {MEDIA_TYPE}\r\n\r\n"
    )
    tail = f"\r\n--{boundary}--\r\n"
    return Form(boundary, head.encode("ascii"), content, tail.encode("ascii"))


class HashSink:
    """A writable stream that hashes and counts what it is given."""

    def __init__(self) -> None:
        self.digest = hashlib.sha256()
        self.count = 0

    def write(self, data: bytes | memoryview) -> int:
        self.digest.update(data)
        self.count += len(data)
        return len(data)


# -- the team and the data directory ---------------------------------------------------------


@dataclass(frozen=True)
class Team:
    root: PrivateKey
    station: PrivateKey  # the journalist's encryption key: the one recipient


def make_data_dir(directory: Path) -> Team:
    """An initialized data directory with a keyring of one recipient; the team's keys."""
    team = Team(
        root=PrivateKey.generate(KeyKind.ROOT, "bench team root"),
        station=PrivateKey.generate(KeyKind.ENCRYPTION, "bench station"),
    )
    manifest = Manifest(
        serial=1,
        issued=datetime.now(UTC).replace(microsecond=0),
        root=team.root.public.key,
        recipients=(KeyEntry(team.station.public.key, "Bench", "bench"),),
    )
    init_instance(directory, team.root.public.key)
    install_keyring(directory, sign_keyring(manifest, team.root))
    return team


@dataclass(frozen=True)
class StoredItem:
    id: int
    kind: str
    blob_id: str
    size: int


class Store:
    """Read access to the server's database and blobs, to find and open what was stored."""

    def __init__(self, data_dir: Path, station: PrivateKey) -> None:
        self._engine = make_engine(sqlite_url(data_dir))
        self._blobs = load_instance(data_dir).blobs_dir
        self._secret = station.secret

    def close(self) -> None:
        self._engine.dispose()

    def items_after(self, last_id: int) -> list[StoredItem]:
        query = select(Item.id, Item.kind, Item.blob_id, Item.size).where(Item.id > last_id)
        with Session(self._engine) as session:
            rows = session.execute(query.order_by(Item.id)).all()
        return [StoredItem(row.id, row.kind, row.blob_id, row.size) for row in rows]

    def last_id(self) -> int:
        items = self.items_after(0)
        return items[-1].id if items else 0

    def open_item(self, item: StoredItem) -> tuple[str, int, str]:
        """Decrypt a stored envelope: its filename, content length and content SHA-256."""
        path = self._blobs / item.blob_id
        _check(path.stat().st_size == item.size, "a blob's size differs from the database's")
        sink = HashSink()
        with path.open("rb") as src:
            opened = open_envelope(src, [self._secret])
            written = opened.write_to(cast(BinaryIO, sink))
        meta = opened.metadata
        _check(meta.kind == Kind.FILE and item.kind == "file", "an item is not a file")
        _check(written == meta.length == sink.count, "an envelope opened to a wrong length")
        return meta.filename, written, sink.digest.hexdigest()

    def remove_blob(self, item: StoredItem) -> None:
        """Free the space of a checked blob (the work directory is removed at the end anyway)."""
        (self._blobs / item.blob_id).unlink(missing_ok=True)


# -- processes -------------------------------------------------------------------------------


def _status_kib(path: str, name: str) -> int:
    """A "Name:   123 kB" field of a /proc status-like file, in KiB (0 when absent)."""
    with open(path) as status:
        for line in status:
            if line.startswith(name + ":"):
                return int(line.split()[1])
    return 0


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return kids
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children") as children:
                kids += [int(kid) for kid in children.read().split()]
        except OSError:
            continue
    return kids


_CLOCK_TICKS: Final = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far."""
    with open(f"/proc/{pid}/stat") as stat:
        text = stat.read()
    fields = text[text.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


@dataclass
class Server:
    """A gunicorn arbiter that this script started, with its one worker."""

    name: str
    process: subprocess.Popen[bytes]
    port: int
    log: Path
    worker: int = 0
    #: ``dropbox serve`` runs two gunicorn arbiters (source interface first, then the sync
    #: API) in child processes; the worker measured is the source interface arbiter's.
    nested: bool = False

    def _workers(self) -> list[int] | None:
        kids = _children(self.process.pid)
        if not self.nested:
            return kids
        if len(kids) != 2:
            return None
        return _children(min(kids))

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log.read_text("utf-8", "replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError(
                    f"the {self.name} server exited with status {self.process.returncode}:\n"
                    + self.log_tail()
                )
            kids = self._workers()
            if kids is not None and len(kids) == WORKERS and is_listening(self.port, timeout=1):
                self.worker = kids[0]
                return
            time.sleep(0.1)
        raise BenchError(f"the {self.name} server did not start:\n{self.log_tail()}")

    def check_worker(self) -> None:
        """The worker that was measured is still the one serving (none was restarted)."""
        kids = self._workers()
        _check(
            kids == [self.worker],
            f"the {self.name} server's worker was replaced (was {self.worker}, now {kids}):\n"
            + self.log_tail(),
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                # The process group this script made for it (start_new_session): the arbiter
                # and its worker, nothing else.
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def start_server(
    name: str, command: Sequence[str], env: dict[str, str], log: Path, *, nested: bool = False
) -> Server:
    port = free_port()
    with log.open("wb") as out:
        process = subprocess.Popen(  # noqa: S603 - fixed argument lists, no shell
            [*command, "--port", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=REPO_ROOT,
            start_new_session=True,
        )
    server = Server(name, process, port, log, nested=nested)
    try:
        server.wait_ready()
    except BaseException:
        server.stop()
        raise
    return server


class RssSampler:
    """VmRSS of a process every 50 ms in a thread, plus its CPU time, while in the block."""

    def __init__(self, pid: int) -> None:
        self._pid = pid
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self.before_kib = 0
        self.max_kib = 0
        self.samples = 0
        self.cpu = 0.0

    def _sample(self) -> None:
        rss = _status_kib(f"/proc/{self._pid}/status", "VmRSS")
        self.max_kib = max(self.max_kib, rss)
        self.samples += 1

    def _run(self) -> None:
        while not self._stop.wait(RSS_INTERVAL):
            self._sample()

    def __enter__(self) -> RssSampler:
        self.before_kib = _status_kib(f"/proc/{self._pid}/status", "VmRSS")
        self.max_kib = self.before_kib
        self.cpu = cpu_seconds(self._pid)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()
        self.cpu = cpu_seconds(self._pid) - self.cpu

    @property
    def growth_mib(self) -> float:
        return (self.max_kib - self.before_kib) / KIB


# -- HTTP ------------------------------------------------------------------------------------


@dataclass
class Browser:
    """A source's browser: one cookie, kept by hand; a new connection for every request."""

    port: int
    cookie: str | None = None

    def request(
        self, method: str, path: str, form: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=HTTP_TIMEOUT)
        try:
            headers: dict[str, str] = {}
            if self.cookie is not None:
                headers["Cookie"] = f"{SESSION_COOKIE}={self.cookie}"
            body = None
            if form is not None:
                body = urlencode(form).encode("ascii")
                headers["Content-Type"] = "application/x-www-form-urlencoded"
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            data = response.read()
            for value in response.msg.get_all("Set-Cookie") or []:
                name, _, rest = value.partition("=")
                if name.strip() == SESSION_COOKIE:
                    cookie = rest.split(";", 1)[0].strip()
                    self.cookie = cookie or None
            return response.status, data
        finally:
            connection.close()

    def page(self, method: str, path: str, form: dict[str, str] | None = None) -> str:
        status, data = self.request(method, path, form)
        _check(status == 200, f"{method} {path} answered {status}, not 200")
        return data.decode("utf-8")


def _csrf_in(page: str, where: str) -> str:
    match = _CSRF.search(page)
    _check(match is not None, f"no CSRF token in the page of {where}")
    assert match is not None
    return match.group(1)


@dataclass(frozen=True)
class Account:
    """A logged-in source who has acknowledged the codename: the cookie and the CSRF token."""

    cookie: str
    csrf: str


def make_account(port: int) -> Account:
    """A new source, made over HTTP as a browser without scripts would."""
    browser = Browser(port)
    token = _csrf_in(browser.page("GET", "/generate"), "GET /generate")
    page = browser.page("POST", "/generate", {"csrf_token": token})
    _check(_CODENAME.search(page) is not None, "POST /generate showed no codename")
    token = _csrf_in(page, "POST /generate")
    status, _ = browser.request("POST", "/acknowledge", {"csrf_token": token})
    _check(status == 303, f"POST /acknowledge answered {status}, not 303")
    token = _csrf_in(browser.page("GET", "/submit"), "GET /submit")
    _check(browser.cookie is not None, "the server sent no session cookie")
    assert browser.cookie is not None
    return Account(browser.cookie, token)


def make_accounts(port: int, count: int) -> list[Account]:
    with ThreadPoolExecutor(max_workers=min(ACCOUNT_THREADS, count)) as pool:
        return list(pool.map(lambda _: make_account(port), range(count)))


@dataclass(frozen=True)
class Upload:
    seconds: float
    worker_cpu: float
    client_cpu: float
    rss_before_mib: float
    rss_max_mib: float
    rss_samples: int

    @property
    def rss_growth_mib(self) -> float:
        return self.rss_max_mib - self.rss_before_mib


def _client_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def post_form(server: Server, path: str, cookie: str | None, form: Form) -> Upload:
    """Send the form with a Content-Length in 256 KiB pieces; time it to the response."""
    # At least 1 MiB/s, or the upload is given up: bounded in time like every loop here.
    timeout = 120.0 + form.length / MIB
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=timeout)
    try:
        with RssSampler(server.worker) as rss:
            client = _client_cpu()
            start = time.perf_counter()
            connection.putrequest("POST", path)
            if cookie is not None:
                connection.putheader("Cookie", f"{SESSION_COOKIE}={cookie}")
            connection.putheader("Content-Type", form.content_type)
            connection.putheader("Content-Length", str(form.length))
            connection.endheaders()
            connection.send(form.head)
            for piece in form.content.pieces(SEND_PIECE):
                connection.send(piece)
                _check(time.perf_counter() - start < timeout, f"the upload to {path} took too long")
            connection.send(form.tail)
            response = connection.getresponse()
            body = response.read()
            seconds = time.perf_counter() - start
            client = _client_cpu() - client
    except (OSError, http.client.HTTPException) as error:
        raise BenchError(f"the upload to the {server.name} server failed: {error!r}") from None
    finally:
        connection.close()
    _check(
        # The discard app answers 200; POST /submit answers 303 to the confirmation page.
        response.status in (200, 303),
        f"the upload to the {server.name} server answered {response.status}: {body[:200]!r}",
    )
    return Upload(seconds, rss.cpu, client, rss.before_kib / KIB, rss.max_kib / KIB, rss.samples)


# -- phase 1: one large upload ---------------------------------------------------------------


@dataclass
class FastResult:
    baseline: list[Upload] = field(default_factory=list)
    big_reads: list[Upload] = field(default_factory=list)  # the baseline with 1 MiB reads
    submit: list[Upload] = field(default_factory=list)
    verified: bool = False
    verify_note: str = ""
    body_length: int = 0

    @staticmethod
    def best(runs: list[Upload]) -> Upload:
        return min(runs, key=lambda run: run.seconds)


def fast_phase(
    postern: Server, baseline: Server, store: Store, block: bytes, size: int, repeat: int
) -> FastResult:
    account = make_account(postern.port)
    content = Content(block, size)
    expected = content.sha256()
    result = FastResult()
    # Warm-up, untimed: the first request of a worker loads templates and imports.
    warm = make_form(account.csrf, "warmup.bin", Content(block, WARMUP_BYTES))
    post_form(baseline, "/discard", None, warm)
    post_form(postern, "/submit", account.cookie, warm)
    for item in store.items_after(0):
        store.remove_blob(item)
    notes = []
    # Interleaved, every other round in the opposite order, so that drift hits all alike.
    kinds = ("baseline", "submit", "big_reads")
    for round_ in range(repeat):
        for which in kinds[:: -1 if round_ % 2 else 1]:
            form = make_form(account.csrf, FILENAME, content)
            result.body_length = form.length
            if which == "baseline":
                result.baseline.append(post_form(baseline, "/discard", None, form))
            elif which == "big_reads":
                path = f"/discard?read={BIG_READ}"
                result.big_reads.append(post_form(baseline, path, None, form))
            else:
                last = store.last_id()
                result.submit.append(post_form(postern, "/submit", account.cookie, form))
                items = store.items_after(last)
                _check(len(items) == 1, f"POST /submit stored {len(items)} items, not 1")
                name, length, digest = store.open_item(items[0])
                notes.append(name == FILENAME and length == size and digest == expected)
                store.remove_blob(items[0])
    postern.check_worker()
    baseline.check_worker()
    result.verified = bool(notes) and all(notes)
    result.verify_note = f"{sum(notes)} of {len(notes)}"
    return result


# -- phase 2: slow clients and the landing page ----------------------------------------------


@dataclass
class Probe:
    """Landing-page loads: latencies of the answered ones (ms), and the failures."""

    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    notes: list[str] = field(default_factory=list)


def probe_landing(port: int, interval: float, stop: threading.Event, deadline: float) -> Probe:
    """Load / every ``interval`` s (start to start) on a new connection until ``stop``."""
    probe = Probe()
    while not stop.is_set() and time.monotonic() < deadline:
        began = time.monotonic()
        try:
            connection = http.client.HTTPConnection(
                "127.0.0.1", port, timeout=max(1.0, deadline - began)
            )
            try:
                connection.request("GET", "/")
                response = connection.getresponse()
                response.read()
            finally:
                connection.close()
            if response.status == 200:
                probe.latencies.append((time.monotonic() - began) * 1000)
            else:
                probe.errors += 1
                probe.notes.append(f"GET / answered {response.status}")
        except (OSError, http.client.HTTPException) as error:
            probe.errors += 1
            probe.notes.append(f"GET / failed: {error!r}")
        stop.wait(max(0.0, began + interval - time.monotonic()))
    return probe


@dataclass
class SlowUpload:
    ok: bool = False
    status: int = 0
    seconds: float = 0.0
    error: str = ""


def slow_upload(
    port: int, account: Account, form: Form, rate: float, delay: float, deadline: float
) -> SlowUpload:
    """Post the form over a raw socket, the file paced to ``rate`` bytes/s in 50 ms steps."""
    result = SlowUpload()
    time.sleep(delay)
    head = (
        f"POST /submit HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Cookie: {SESSION_COOKIE}={account.cookie}\r\n"
        f"Content-Type: {form.content_type}\r\nContent-Length: {form.length}\r\n"
        "Connection: close\r\n\r\n"
    ).encode("ascii")

    def remaining() -> float:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the phase's time bound passed")
        return left

    start = time.monotonic()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=remaining()) as sock:
            sock.settimeout(remaining())
            sock.sendall(head + form.head)
            sent = 0
            while sent < form.content.size:
                allowed = min(form.content.size, int(rate * (time.monotonic() - start)))
                for piece in form.content.pieces(64 * KIB, sent, allowed):
                    sock.settimeout(remaining())
                    sock.sendall(piece)
                sent = max(sent, allowed)
                if sent < form.content.size:
                    time.sleep(min(PACE_TICK, remaining()))
            sock.settimeout(remaining())
            sock.sendall(form.tail)
            reply = bytearray()
            while len(reply) < 1 << 20:  # the answer is a page of a few KiB; Connection: close
                sock.settimeout(remaining())
                data = sock.recv(64 * KIB)
                if not data:
                    break
                reply += data
        status_line = bytes(reply).split(b"\r\n", 1)[0].split()
        result.status = int(status_line[1]) if len(status_line) > 1 else 0
        result.ok = result.status == 303  # redirected to the confirmation page
        if not result.ok:
            result.error = f"POST /submit answered {result.status or 'nothing'}"
    except (OSError, ValueError) as error:
        result.error = f"POST /submit failed: {error!r}"
    result.seconds = time.monotonic() - start
    return result


@dataclass
class SlowResult:
    clients: int
    upload_bytes: int
    rate: float
    accounts_seconds: float
    idle: Probe
    loaded: Probe
    uploads: list[SlowUpload]
    phase_seconds: float
    verified: int
    verify_errors: list[str]

    @property
    def completed(self) -> int:
        return sum(1 for upload in self.uploads if upload.ok)

    @property
    def errors(self) -> int:
        return (
            sum(1 for upload in self.uploads if not upload.ok)
            + self.loaded.errors
            + len(self.verify_errors)
        )


def slow_phase(postern: Server, store: Store, block: bytes, args: argparse.Namespace) -> SlowResult:
    clients, size = args.clients, args.upload_kib * KIB
    rate = args.rate_kbps * 1000.0
    interval = args.probe_ms / 1000
    began = time.monotonic()
    accounts = make_accounts(postern.port, clients)
    accounts_seconds = time.monotonic() - began

    # The latency baseline: the same probe with the server idle.
    stop = threading.Event()
    timer = threading.Timer(IDLE_PROBE_SECONDS, stop.set)
    timer.start()
    try:
        idle = probe_landing(postern.port, interval, stop, time.monotonic() + 30)
    finally:
        timer.cancel()

    contents = [Content(block, size, offset=i * 7919 * 64) for i in range(clients)]
    names = [f"slow-{i:04d}.bin" for i in range(clients)]
    forms = [make_form(a.csrf, n, c) for a, n, c in zip(accounts, names, contents, strict=True)]
    last = store.last_id()
    start = time.monotonic()
    deadline = start + args.phase_seconds
    stop = threading.Event()
    with ThreadPoolExecutor(max_workers=1) as prober:
        loaded_future = prober.submit(probe_landing, postern.port, interval, stop, deadline)
        with ThreadPoolExecutor(max_workers=clients, thread_name_prefix="slow") as pool:
            futures = [
                pool.submit(
                    slow_upload, postern.port, account, form, rate, i * STAGGER / clients, deadline
                )
                for i, (account, form) in enumerate(zip(accounts, forms, strict=True))
            ]
            uploads = [future.result() for future in futures]
        stop.set()
        loaded = loaded_future.result()
    phase_seconds = time.monotonic() - start
    postern.check_worker()

    expected = {name: content.sha256() for name, content in zip(names, contents, strict=True)}
    verify_errors: list[str] = []
    verified = 0
    seen: set[str] = set()
    for item in store.items_after(last):
        name, length, digest = store.open_item(item)
        if name not in expected or name in seen:
            verify_errors.append(f"an envelope holds an unexpected file {name!r}")
        elif length != size or digest != expected[name]:
            verify_errors.append(f"the envelope of {name} holds the wrong content")
        else:
            verified += 1
        seen.add(name)
        store.remove_blob(item)
    return SlowResult(
        clients, size, rate, accounts_seconds, idle, loaded, uploads, phase_seconds, verified,
        verify_errors,
    )  # fmt: skip


# -- phase 3: page weight --------------------------------------------------------------------


class _Assets(HTMLParser):
    """The stylesheets and scripts a page links to."""

    def __init__(self) -> None:
        super().__init__()
        self.stylesheets: list[str] = []
        self.scripts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "link" and (values.get("rel") or "").lower() == "stylesheet":
            self.stylesheets.append(values.get("href") or "")
        elif tag == "script" and values.get("src"):
            self.scripts.append(values.get("src") or "")


@dataclass(frozen=True)
class Weight:
    html: int
    stylesheets: list[tuple[str, int]]
    landing_scripts: list[tuple[str, int]]
    js_files: list[tuple[str, int]]

    @property
    def page(self) -> int:
        return self.html + sum(size for _, size in self.stylesheets)

    @property
    def js(self) -> int:
        return sum(size for _, size in self.js_files)


def page_weight(port: int) -> Weight:
    browser = Browser(port)
    status, html = browser.request("GET", "/")
    _check(status == 200, f"GET / answered {status}")
    assets = _Assets()
    assets.feed(html.decode("utf-8"))
    assets.close()

    def fetch(paths: list[str]) -> list[tuple[str, int]]:
        sizes = []
        for path in paths:
            _check(path.startswith("/") and not path.startswith("//"), f"odd link {path!r}")
            got, data = browser.request("GET", path)
            _check(got == 200, f"GET {path} answered {got}")
            sizes.append((path, len(data)))
        return sizes

    js_files = sorted(
        (str(path.relative_to(REPO_ROOT)), path.stat().st_size)
        for path in JS_DIR.rglob("*")
        if path.is_file()
    )
    return Weight(len(html), fetch(assets.stylesheets), fetch(assets.scripts), js_files)


# -- machine facts ---------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown"
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name.strip() == "model name":
            return value.strip()
    return "unknown"


def _fs_type(path: Path) -> str:
    best, kind = "", "unknown"
    try:
        mounts = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return kind
    resolved = str(path.resolve())
    for line in mounts:
        parts = line.split()
        if len(parts) < 3:
            continue
        point = parts[1]
        inside = resolved == point or resolved.startswith(point.rstrip("/") + "/")
        if inside and len(point) > len(best):
            best, kind = point, parts[2]
    return kind


def _version(package: str) -> str:
    try:
        return package_metadata.version(package)
    except package_metadata.PackageNotFoundError:
        return "not installed"


def machine_facts(work: Path) -> list[tuple[str, str]]:
    usable = len(os.sched_getaffinity(0))
    return [
        ("cpu", _cpu_model()),
        ("cores", f"{os.cpu_count()} online, {usable} usable by this process"),
        ("memory", f"{_status_kib('/proc/meminfo', 'MemTotal') / MIB:.1f} GiB"),
        ("system", f"{platform.system()} {platform.release()} {platform.machine()}"),
        ("python", f"{platform.python_version()} ({platform.python_implementation()})"),
        ("gunicorn", f"{_version('gunicorn')}, gthread, {WORKERS} worker, {THREADS} threads"),
        ("flask", f"{_version('flask')}, werkzeug {_version('werkzeug')}"),
        (
            "cryptography",
            f"{_version('cryptography')} ({openssl_backend.openssl_version_text()})",
        ),
        ("work dir", f"{work} ({_fs_type(work)})"),
    ]


# -- the run ---------------------------------------------------------------------------------


def _mem_available() -> int:
    try:
        return _status_kib("/proc/meminfo", "MemAvailable") * KIB
    except OSError:
        return 0


@contextmanager
def work_dir(need: int, parent: Path | None) -> Iterator[Path]:
    """A private temporary directory with room for ``need`` bytes (tmpfs when it fits)."""
    root: str | None = None if parent is None else str(parent)
    if parent is None:
        shm = Path("/dev/shm")  # noqa: S108 - mkdtemp makes a private directory in it
        if (
            shm.is_dir()
            and os.access(shm, os.W_OK)
            and shutil.disk_usage(shm).free > need
            and _mem_available() > need + 1024 * MIB
        ):
            root = str(shm)
    path = Path(tempfile.mkdtemp(prefix="postern-bench-source-", dir=root))
    try:
        _check(shutil.disk_usage(path).free > need, f"{path} has no room for {need // MIB} MiB")
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def server_env(data_dir: Path, size: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSTERN_")}
    env["POSTERN_LOGIN_DERIVATIONS_PER_MINUTE"] = str(DERIVATIONS_PER_MINUTE)
    env["POSTERN_CODENAME_DERIVATIONS_PER_MINUTE"] = str(DERIVATIONS_PER_MINUTE)
    # The upload's body is the file plus a few hundred bytes of form.
    env["POSTERN_MAX_NOJS_REQUEST_BYTES"] = str(max(DEFAULT_NOJS_LIMIT, size + 16 * MIB))
    env["POSTERN_DATA_DIR"] = str(data_dir)
    return env


def percentile(values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * fraction // 1))
    return ordered[int(rank) - 1]


def _mib_s(size: int, seconds: float) -> float:
    return size / MIB / seconds


def report(
    args: argparse.Namespace,
    fast: FastResult,
    slow: SlowResult,
    weight: Weight,
) -> int:
    """Print the tables, ratios and targets; return the number of failed targets."""
    base, post = FastResult.best(fast.baseline), FastResult.best(fast.submit)
    big = FastResult.best(fast.big_reads)
    body_length = fast.body_length
    print()
    print(f"no-JS upload of a {args.size_mib} MiB file (best wall time of {args.repeat})")
    columns = f"{'best s':>8} {'MiB/s':>7} {'worker CPU s':>12} {'client CPU s':>12}"
    print(f"  {'endpoint':<36} {columns} {'RSS before':>10} {'RSS max':>8} {'growth':>7}")
    for label, run in (
        ("baseline: discard app, same gunicorn", base),
        ("info: discard app, 1 MiB reads", big),
        ("POST /submit (seal and store)", post),
    ):
        print(
            f"  {label:<36} {run.seconds:8.3f} {_mib_s(body_length, run.seconds):7.1f} "
            f"{run.worker_cpu:12.2f} {run.client_cpu:12.2f} {run.rss_before_mib:10.1f} "
            f"{run.rss_max_mib:8.1f} {run.rss_growth_mib:7.1f}"
        )
    print("  (MiB/s: the whole body; both baselines read wsgi.input and drop it, the first in")
    print(
        f"  pieces of {READ_SIZE // KIB} KiB like the plain-form handler (dropbox.nojs.READ_SIZE);"
    )
    print("  worker CPU: user + system time of the gunicorn worker;")
    print("  RSS: the worker's VmRSS in MiB, sampled every 50 ms during the upload; growth: max")
    print(f"  minus before; samples during the /submit upload: {post.rss_samples})")
    print(f"  stored envelope opened with the station key: {fast.verify_note} had the right")
    print("  filename, length and SHA-256")

    print()
    print(f"landing page latency, GET / every {args.probe_ms} ms on a new connection (ms)")
    print(
        f"  {'server':<30} {'loads':>6} {'p50':>8} {'p95':>8} {'p99':>8} {'max':>8} {'errors':>6}"
    )
    for label, probe in (
        ("idle", slow.idle),
        (f"during {slow.clients} slow uploads", slow.loaded),
    ):
        lat = probe.latencies
        print(
            f"  {label:<30} {len(lat):6d} {percentile(lat, 0.50):8.1f} "
            f"{percentile(lat, 0.95):8.1f} {percentile(lat, 0.99):8.1f} "
            f"{max(lat, default=0.0):8.1f} {probe.errors:6d}"
        )
    ideal = slow.upload_bytes / slow.rate
    durations = [upload.seconds for upload in slow.uploads if upload.ok]
    print()
    print(
        f"slow uploads: {slow.clients} clients, {slow.upload_bytes // KIB} KiB each at "
        f"{slow.rate / 1000:g} KB/s (ideal {ideal:.1f} s)"
    )
    print(f"  accounts     {slow.clients} made over HTTP in {slow.accounts_seconds:.1f} s")
    print(
        f"  completed    {slow.completed} of {slow.clients} were accepted "
        "(303 to the confirmation page)"
    )
    print(
        f"  duration     min {min(durations, default=0.0):.1f} s, "
        f"p50 {percentile(durations, 0.5):.1f} s, max {max(durations, default=0.0):.1f} s; "
        f"phase {slow.phase_seconds:.1f} s (bound {args.phase_seconds} s)"
    )
    print(f"  verified     {slow.verified} of {slow.clients} envelopes open with the station key")
    print(f"  errors       {slow.errors}")
    shown = [u.error for u in slow.uploads if not u.ok] + slow.loaded.notes + slow.verify_errors
    for note in sorted(set(shown))[:5]:
        print(f"    {note}")

    print()
    print("page weight (bytes, uncompressed)")
    print(f"  {'landing HTML /':<44} {weight.html:8d}")
    for path, length in weight.stylesheets:
        print(f"  {'CSS ' + path:<44} {length:8d}")
    print(f"  {'landing HTML + CSS':<44} {weight.page:8d}")
    for path, length in weight.landing_scripts:
        print(f"  {'script on the landing page ' + path:<44} {length:8d}")
    for path, length in weight.js_files:
        print(f"  {'JS ' + path:<44} {length:8d}")
    print(f"  {'all JS under dropbox/static/js':<44} {weight.js:8d}")

    ratio = base.seconds / post.seconds
    cpu_ratio = post.worker_cpu / base.worker_cpu if base.worker_cpu > 0 else float("inf")
    idle_p99 = percentile(slow.idle.latencies, 0.99)
    loaded_p99 = percentile(slow.loaded.latencies, 0.99)
    print()
    print("ratios")
    print(f"  /submit throughput vs discard baseline: {ratio:.1%}")
    print(f"  /submit worker CPU vs discard baseline: {cpu_ratio:.2f}x")
    big_ratio = big.seconds / post.seconds
    print(f"  /submit throughput vs discard baseline with 1 MiB reads (info): {big_ratio:.1%}")
    print(
        f"  discard with 1 MiB reads vs discard baseline (info): {base.seconds / big.seconds:.2f}x"
    )
    slowdown = loaded_p99 / idle_p99 if idle_p99 > 0 else float("inf")
    print(f"  landing p99 during slow uploads vs idle: {slowdown:.2f}x")

    upload_ok = slow.completed == slow.verified == slow.clients
    done = min(slow.completed, slow.verified)
    growth = post.rss_growth_mib
    targets = [
        (ratio >= RATIO_TARGET, f"no-JS upload >= 60% of the discard baseline: {ratio:.1%}"),
        (
            growth < RSS_TARGET_MIB,
            f"worker RSS growth during the upload < 64 MiB: {growth:.1f} MiB",
        ),
        (
            fast.verified,
            f"the uploaded envelope decrypts to the right size and SHA-256: {fast.verify_note}",
        ),
        (
            loaded_p99 < P99_TARGET_MS and bool(slow.loaded.latencies),
            f"landing p99 < 250 ms during {slow.clients} slow uploads: {loaded_p99:.1f} ms",
        ),
        (slow.errors == 0, f"no errors during the slow uploads: {slow.errors}"),
        (upload_ok, f"every slow upload completed and decrypts: {done} of {slow.clients}"),
        (weight.page < PAGE_TARGET, f"landing HTML + CSS < 20 KB: {weight.page} B"),
        (weight.js < JS_TARGET, f"all JavaScript < 40 KB: {weight.js} B"),
    ]
    print()
    print("targets")
    for ok, text in targets:
        print(f"  {'PASS' if ok else 'FAIL'} {text}")
    failed = sum(1 for ok, _ in targets if not ok)
    print(f"summary: {len(targets) - failed} of {len(targets)} targets pass")
    return failed


def run(args: argparse.Namespace) -> int:
    size = args.size_mib * MIB
    _check(DROPBOX_EXE.is_file(), f"{DROPBOX_EXE} is not installed: run `make bootstrap`")
    slow_total = args.clients * args.upload_kib * KIB
    need = size + 2 * slow_total + 512 * MIB
    block = os.urandom(BLOCK_SIZE)
    with work_dir(need, args.work_dir) as work:
        print("Postern source interface benchmark: plain-form uploads, slow clients, page weight")
        print("machine")
        for name, value in machine_facts(work):
            print(f"  {name:<13} {value}")
        data_dir = work / "data"
        team = make_data_dir(data_dir)
        env = server_env(data_dir, size)
        servers: list[Server] = []
        store = Store(data_dir, team.station)
        try:
            postern = start_server(
                "postern",
                [str(DROPBOX_EXE), "serve", "--data-dir", str(data_dir),
                 "--api-port", str(free_port()), "--workers", str(WORKERS)],
                env,
                work / "postern.log",
                nested=True,
            )  # fmt: skip
            servers.append(postern)
            baseline = start_server(
                "baseline",
                [sys.executable, "-m", "bench.source_server"],
                env,
                work / "baseline.log",
            )
            servers.append(baseline)
            print("servers")
            print(
                f"  {'postern':<13} dropbox serve on 127.0.0.1:{postern.port} "
                f"(worker pid {postern.worker})"
            )
            print(f"  {'':<13} settings changed for the benchmark, through the environment:")
            for name in (
                "POSTERN_LOGIN_DERIVATIONS_PER_MINUTE",
                "POSTERN_CODENAME_DERIVATIONS_PER_MINUTE",
                "POSTERN_MAX_NOJS_REQUEST_BYTES",
            ):
                print(f"  {'':<13}   {name}={env[name]}")
            print(f"  {'':<13} (login throttle out of the way while accounts are made; room for")
            print(
                f"  {'':<13} the upload; POSTERN_LOGIN_CONCURRENT_DERIVATIONS stays at its default)"
            )
            print(
                f"  {'baseline':<13} python -m bench.source_server on 127.0.0.1:{baseline.port} "
                f"(worker pid {baseline.worker})"
            )
            print(
                f"  {'':<13} a WSGI app that reads wsgi.input and drops it; same gunicorn options"
            )
            print("run")
            print(
                f"  {'upload':<13} {args.size_mib} MiB file in a multipart body with "
                f"Content-Length, sent in {SEND_PIECE // KIB} KiB pieces, best of {args.repeat}"
            )
            print(
                f"  {'slow clients':<13} {args.clients} x {args.upload_kib} KiB at "
                f"{args.rate_kbps} KB/s, GET / every {args.probe_ms} ms, bound "
                f"{args.phase_seconds} s"
            )
            sys.stdout.flush()
            fast = fast_phase(postern, baseline, store, block, size, args.repeat)
            slow = slow_phase(postern, store, block, args)
            weight = page_weight(postern.port)
        finally:
            store.close()
            for server in reversed(servers):
                server.stop()
    failed = report(args, fast, slow, weight)
    return 1 if failed and args.strict else 0


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/source.py",
        description="Benchmark the source interface under gunicorn: no-JS uploads against a "
        "body-discarding baseline, slow clients against the landing page, page weight.",
    )
    add: Callable[..., object] = parser.add_argument
    add("--size-mib", type=_positive, default=1024, help="size of the large upload (1024)")
    add("--repeat", type=_positive, default=1, help="large uploads to each server (1)")
    add("--clients", type=_positive, default=100, help="slow clients (100)")
    add("--upload-kib", type=_positive, default=512, help="each slow client's file (512)")
    add("--rate-kbps", type=_positive, default=50, help="each slow client's KB/s (50)")
    add("--probe-ms", type=_positive, default=50, help="landing page every N ms (50)")
    add("--phase-seconds", type=_positive, default=60, help="bound of the slow phase (60)")
    add("--work-dir", type=Path, help="parent of the temporary data directory (/dev/shm)")
    add("--strict", action="store_true", help="exit 1 when a target fails")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return run(args)
    except BenchError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
