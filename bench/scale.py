"""Benchmark: many Tor-slow uploads at once through the real front, on one app node or several.

    .venv/bin/python bench/scale.py [--clients 100 1000 2000] [--nodes 1] [--size-kib 256]
        [--rate-kbps 50] [--phase-seconds 90] [--sources 8]

A temporary data directory with a keyring of one recipient; --nodes app nodes, each a real
``dropbox serve --front none`` (gunicorn) on its own port; one HAProxy before them with the
configuration :func:`dropbox.front.haproxy_config` writes for that many nodes, as in the
deployment. With ``--nodes 1 2`` both layouts are measured in the same run, and every figure
of two nodes is printed against the one-node figure. Several nodes need what several machines
need (docs/operations.md, "Many machines"): the nodes share the data directory's database
(SQLite here, or PostgreSQL when POSTERN_DATABASE_URL is set: it is migrated first) and blobs
(POSTERN_BLOB_STORE=database keeps them in PostgreSQL), and a session made on one node must
be found by another, which the database-backed sessions provide.

For each N in --clients, N clients start at once. Each does what postern.js does after sealing
a file: ``POST /api/uploads`` (tus creation, docs/format.md 8.3, with the cookie and CSRF
header of one of --sources source accounts made beforehand), one ``PATCH`` with the whole
envelope (a --size-kib KiB file sealed once to the team's key) paced at --rate-kbps KB/s
(1000 bytes per second) in steps of 0.25 s, as a Tor circuit would carry it, then ``POST
/api/submissions``. A 503 with ``Retry-After`` is a clean refusal: the client waits as told
(while the phase lasts) and goes on as a tus client does (``HEAD`` for the offset, then the
rest). Anything else unexpected (another status, a broken connection, no answer) is an error
and ends that client. Meanwhile a probe in another process loads the landing page (``GET /``,
a new connection each time, as a new circuit) every 0.1 s; its p99 is printed, and beside it
the p99 of the same probe with the server idle, measured first.

Bounded in time: each phase ends after --phase-seconds (default 90) whatever is unfinished;
what did not complete by then counts as unfinished. The clients run in asyncio loops with
aiohttp in child processes, one per core (the clients and the accounts shared out), the probe
in this one, so that no one's work delays another's clock. Exit status 0 whatever the
numbers are; 2 when the benchmark itself cannot run.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __name__ in ("__main__", "__mp_main__"):
    # Run as a script, Python puts bench/ first on sys.path, where bench/crypto.py would
    # shadow the `crypto` package: look for packages in the repository root first.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import asyncio
import base64
import contextlib
import http.client
import multiprocessing
import os
import re
import resource
import secrets
import signal
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any, Final

import aiohttp

from bench.runs import BenchError, Probes, raise_file_limit, run_main
from bench.source import make_data_dir
from crypto import Kind, seal_bytes
from dropbox.front import (
    DEFAULT_LIMITS,
    HAPROXY,
    Address,
    fit_to_file_limit,
    haproxy_config,
)
from dropbox.gunicorn_settings import LOOPBACK, THREADS, UPLOAD_SLOTS, default_workers
from dropbox.serve import source_front
from tests.support.ports import free_port, is_listening
from tests.support.postgres import Cluster
from tests.support.server import clean_environment

DROPBOX_EXE: Final = Path(sys.executable).parent / "dropbox"
START_TIMEOUT: Final = 60.0
STOP_TIMEOUT: Final = 45.0
#: Processes the clients run in: one per core this process may use.
CLIENT_PROCESSES: Final = len(os.sched_getaffinity(0))
#: Seconds between two sends of a paced client.
PACE_TICK: Final = 0.25
PROBE_INTERVAL: Final = 0.1
PROBE_TIMEOUT: Final = 10.0
IDLE_PROBES: Final = 30
#: Longest a refused client waits before it tries again, whatever Retry-After says.
MAX_RETRY_WAIT: Final = 30.0
#: The server's settings for the run: accounts are made without being throttled.
SERVER_ENV: Final = {
    "POSTERN_CODENAME_DERIVATIONS_PER_MINUTE": "1000000",
    "POSTERN_LOGIN_DERIVATIONS_PER_MINUTE": "1000000",
}
#: Settings of the run's environment the nodes get: the shared database and blob store.
PASSED_ON: Final = ("POSTERN_DATABASE_URL", "POSTERN_BLOB_STORE")
#: Connections the --database postgresql cluster takes: at the start of a phase every tus
#: PATCH reads its upload's row at once, on a connection of its own.
PG_CONNECTIONS: Final = 2_500
_CSRF: Final = re.compile(r'name="csrf_token" value="([^"]+)"')
_CODENAME: Final = re.compile(r'<p class="codename" id="codename">[a-z -]+</p>')
TUS: Final = {"Tus-Resumable": "1.0.0"}


# -- the clients (in a child process) ----------------------------------------------------------


@dataclass
class Tally:
    """What the clients of one phase met."""

    completed: int = 0
    #: 503 answers with Retry-After (from the app or the front), each one counted.
    refusals: int = 0
    #: Clients that met at least one refusal.
    refused_clients: int = 0
    errors: int = 0
    unfinished: int = 0
    error_kinds: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    def error(self, kind: str) -> None:
        self.errors += 1
        self.error_kinds[kind] += 1


@dataclass(frozen=True)
class Account:
    cookies: dict[str, str]
    csrf: str


class ClientError(Exception):
    """An unexpected answer: the client stops and counts an error."""


class Refused(Exception):
    def __init__(self, wait: float) -> None:
        super().__init__(f"refused for {wait} s")
        self.wait = wait


def _retry_after(response: aiohttp.ClientResponse) -> float:
    value = response.headers.get("Retry-After", "")
    if not value.isdigit():
        raise ClientError(f"{response.method} 503 without Retry-After")
    return min(float(value), MAX_RETRY_WAIT)


def _check(response: aiohttp.ClientResponse, expected: int) -> None:
    if response.status == 503:
        raise Refused(_retry_after(response))
    if response.status != expected:
        raise ClientError(f"{response.method} {response.status}")


async def _paced(body: bytes, start: int, rate: int) -> AsyncIterator[bytes]:
    """``body[start:]`` at ``rate`` bytes per second, on a fixed schedule."""
    step = max(1, int(rate * PACE_TICK))
    began = time.monotonic()
    for number, at in enumerate(range(start, len(body), step)):
        delay = began + number * PACE_TICK - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        yield body[at : at + step]


async def _make_account(base: str) -> Account:
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(base, cookie_jar=jar) as own:

        async def page(method: str, path: str, form: dict[str, str] | None = None) -> str:
            async with own.request(method, path, data=form) as response:
                text = await response.text()
                if response.status != 200:
                    # With several nodes, a session made on one must be found on another.
                    raise BenchError(
                        f"{method} {path} answered {response.status} (several nodes need "
                        "the sessions in the database)"
                    )
                return text

        def token(text: str) -> str:
            match = _CSRF.search(text)
            if match is None:
                raise BenchError("no CSRF token in a page")
            return match.group(1)

        first = await page("GET", "/generate")
        text = await page("POST", "/generate", {"csrf_token": token(first)})
        if not _CODENAME.search(text):
            raise BenchError("no codename on the generate page")
        await page("POST", "/acknowledge", {"csrf_token": token(text)})
        csrf = token(await page("GET", "/submit"))
        cookies = {cookie.key: cookie.value for cookie in jar}
    return Account(cookies, csrf)


async def _one_client(
    http: aiohttp.ClientSession,
    account: Account,
    envelope: bytes,
    rate: int,
    deadline: float,
    tally: Tally,
) -> None:
    headers = {**TUS, "X-Postern-CSRF": account.csrf}
    capability = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
    key = base64.urlsafe_b64encode(secrets.token_bytes(16)).rstrip(b"=").decode()
    refused = False
    step = "create"
    location = ""
    offset = 0
    while True:
        try:
            if step == "create":
                async with http.post(
                    "/api/uploads",
                    headers={**headers, "Upload-Length": str(len(envelope)),
                             "Upload-Capability": capability},
                    cookies=account.cookies,
                ) as response:  # fmt: skip
                    _check(response, 201)
                    location = response.headers["Location"]
                step = "patch"
            if step == "patch":
                async with http.patch(
                    location,
                    data=_paced(envelope, offset, rate),
                    headers={**TUS, "Upload-Offset": str(offset),
                             "Content-Type": "application/offset+octet-stream",
                             "Content-Length": str(len(envelope) - offset)},
                ) as response:  # fmt: skip
                    _check(response, 204)
                    offset = int(response.headers["Upload-Offset"])
                if offset != len(envelope):
                    raise ClientError("PATCH left the upload incomplete")
                step = "complete"
            if step == "complete":
                upload = location.rsplit("/", 1)[1].split(".")[0]
                async with http.post(
                    "/api/submissions",
                    json={"key": key, "items": [{"upload": upload, "kind": "file"}]},
                    headers={"X-Postern-CSRF": account.csrf},
                    cookies=account.cookies,
                ) as response:
                    _check(response, 201)
                tally.completed += 1
                return
        except Refused as refusal:
            tally.refusals += 1
            if not refused:
                refused, tally.refused_clients = True, tally.refused_clients + 1
            if time.monotonic() + refusal.wait >= deadline:
                tally.unfinished += 1
                return
            await asyncio.sleep(refusal.wait)
            if step == "patch":
                async with http.head(location, headers=TUS) as response:
                    if response.status != 200:
                        tally.error(f"HEAD {response.status}")
                        return
                    offset = int(response.headers["Upload-Offset"])
        except ClientError as error:
            tally.error(f"{step}: {error}")
            return
        except (aiohttp.ClientError, OSError) as error:
            tally.error(f"{step}: {type(error).__name__}")
            return


async def _phase(
    base: str, accounts: list[Account], clients: int, envelope: bytes, rate: int, seconds: float
) -> Tally:
    tally = Tally()
    # One connection per request and none kept: every client is a circuit of its own.
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=60)
    started = time.monotonic()
    deadline = started + seconds
    async with aiohttp.ClientSession(base, connector=connector, timeout=timeout) as http:
        tasks = [
            asyncio.ensure_future(
                _one_client(http, accounts[n % len(accounts)], envelope, rate, deadline, tally)
            )
            for n in range(clients)
        ]
        done, pending = await asyncio.wait(tasks, timeout=seconds)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        for task in done:
            if task.exception() is not None:
                tally.error(type(task.exception()).__name__)
    tally.unfinished += len(pending)
    tally.seconds = time.monotonic() - started
    return tally


async def _accounts(base: str, count: int) -> list[Account]:
    return [await _make_account(base) for _ in range(count)]


def run_load(
    base: str, sources: int, clients: int, envelope: bytes, rate: int, seconds: float
) -> dict[str, Any]:
    """In the child process: make the accounts, run one phase, return its tally as a dict."""
    resource.setrlimit(resource.RLIMIT_NOFILE, resource.getrlimit(resource.RLIMIT_NOFILE))

    async def both() -> Tally:
        accounts = await _accounts(base, sources)
        return await _phase(base, accounts, clients, envelope, rate, seconds)

    tally = asyncio.run(both())
    return tally.__dict__


def _load_child(
    conn: Connection,
    base: str,
    sources: int,
    clients: int,
    envelope: bytes,
    rate: int,
    seconds: float,
) -> None:
    try:
        conn.send(("ok", run_load(base, sources, clients, envelope, rate, seconds)))
    except BaseException as error:  # noqa: BLE001 - reported to the parent, which stops
        conn.send(("error", f"{type(error).__name__}: {error}"))
    finally:
        conn.close()


# -- the probe ---------------------------------------------------------------------------------


def probe(port: int, *, until: Callable[[], bool], count: int | None = None) -> Probes:
    """GET / on a new connection every PROBE_INTERVAL, until ``until()`` or ``count`` probes."""
    times: list[float] = []
    failed = 0
    while not until() and (count is None or len(times) < count):
        started = time.monotonic()
        connection = http.client.HTTPConnection(LOOPBACK, port, timeout=PROBE_TIMEOUT)
        try:
            connection.request("GET", "/")
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                failed += 1
        except (OSError, http.client.HTTPException):
            failed += 1
        finally:
            connection.close()
        times.append(time.monotonic() - started)
        time.sleep(PROBE_INTERVAL)
    return Probes(times, failed)


# -- the servers -------------------------------------------------------------------------------


@dataclass
class Layout:
    """The front's port and its HAProxy and node processes."""

    port: int
    processes: list[subprocess.Popen[bytes]]


def _stop(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _wait_listening(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while not is_listening(port):
        if process.poll() is not None or time.monotonic() > deadline:
            raise BenchError(f"{log.name} did not start: {log.read_text()[-2000:]}")
        time.sleep(0.1)


@contextlib.contextmanager
def running_layout(
    work: Path, data_dir: Path, nodes: int, database_url: str | None = None
) -> Iterator[Layout]:
    """``nodes`` app nodes on ``data_dir`` (and ``database_url``, if given) and one HAProxy
    before them."""
    env = clean_environment()
    env.update({name: os.environ[name] for name in PASSED_ON if name in os.environ})
    env.update(SERVER_ENV)
    if database_url is not None:
        env["POSTERN_DATABASE_URL"] = database_url
    if "POSTERN_DATABASE_URL" in env:
        # The data directory was made on SQLite; the shared database gets its schema here
        # (the nodes never migrate).
        migrate = subprocess.run(  # noqa: S603 - our own tool, fixed arguments
            [str(DROPBOX_EXE), "migrate", "--data-dir", str(data_dir)], env=env,
            capture_output=True, text=True, timeout=START_TIMEOUT, check=False,
        )  # fmt: skip
        if migrate.returncode != 0:
            raise BenchError(f"dropbox migrate failed: {migrate.stderr.strip()}")
    layout = Layout(free_port(), [])
    try:
        node_ports = []
        # One after the other: each migrates the database before it serves.
        for number in range(1, nodes + 1):
            port, api_port = free_port(), free_port()
            log = work / f"node{nodes}-{number}.log"
            with log.open("wb") as out:
                process = subprocess.Popen(  # noqa: S603 - our own tool, fixed arguments
                    [str(DROPBOX_EXE), "serve", "--data-dir", str(data_dir), "--port", str(port),
                     "--api-port", str(api_port), "--front", "none"],
                    stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env,
                    start_new_session=True,
                )  # fmt: skip
            layout.processes.append(process)
            _wait_listening(port, process, log)
            node_ports.append(port)
        config = work / f"haproxy-{nodes}.cfg"
        config.write_text(
            haproxy_config(
                [source_front(layout.port)],
                [[Address(LOOPBACK, port)] for port in node_ports],
                fit_to_file_limit(DEFAULT_LIMITS),
            )
        )
        log = work / f"haproxy-{nodes}.log"
        with log.open("wb") as out:
            front = subprocess.Popen(  # noqa: S603 - fixed binary
                [HAPROXY, "-db", "-f", str(config)],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        layout.processes.append(front)
        _wait_listening(layout.port, front, log)
        yield layout
    finally:
        for process in reversed(layout.processes):
            _stop(process)


# -- the run -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    clients: int
    nodes: int
    tally: Tally
    probes: Probes


def _shares(total: int, parts: int) -> list[int]:
    """``total`` split into ``parts`` nearly equal shares."""
    return [total // parts + (index < total % parts) for index in range(parts)]


def merged(tallies: Sequence[Tally]) -> Tally:
    """The tally of a phase whose clients ran in several processes."""
    whole = Tally()
    for tally in tallies:
        whole.completed += tally.completed
        whole.refusals += tally.refusals
        whole.refused_clients += tally.refused_clients
        whole.errors += tally.errors
        whole.unfinished += tally.unfinished
        whole.error_kinds.update(tally.error_kinds)
        whole.seconds = max(whole.seconds, tally.seconds)
    return whole


def measure(
    port: int, clients: int, args: argparse.Namespace, envelope: bytes
) -> tuple[Tally, Probes]:
    """One phase: the clients in one process per core (one event loop could not keep 1,000
    paced streams on time while the machine was loaded), the probe in this one."""
    context = multiprocessing.get_context("spawn")
    processes = max(1, min(clients, args.sources, CLIENT_PROCESSES))
    children, receivers = [], []
    for sources, share in zip(
        _shares(args.sources, processes), _shares(clients, processes), strict=True
    ):
        receiver, sender = context.Pipe(duplex=False)
        child = context.Process(
            target=_load_child,
            args=(sender, f"http://{LOOPBACK}:{port}", sources, share, envelope,
                  args.rate_kbps * 1000, args.phase_seconds),
            daemon=True,
        )  # fmt: skip
        child.start()
        sender.close()
        children.append(child)
        receivers.append(receiver)
    try:
        probes = probe(port, until=lambda: all(receiver.poll() for receiver in receivers))
        answers = [receiver.recv() for receiver in receivers]
    except EOFError:
        raise BenchError("a clients' process died") from None
    finally:
        for child in children:
            child.join(timeout=STOP_TIMEOUT)
            if child.is_alive():
                child.kill()
    for status, payload in answers:
        if status != "ok":
            raise BenchError(f"the clients failed: {payload}")
    return merged([Tally(**payload) for _, payload in answers]), probes


def _seal_envelope(size: int, recipient: bytes) -> bytes:
    return seal_bytes(os.urandom(size), [recipient], Kind.FILE, "scale.bin", "")


def _ratio(value: float, base: float) -> str:
    if base != base or value != value or base <= 0:  # NaN: no probe in one of them
        return "     -"
    return f"{value / base:5.2f}x"


def print_table(rows: list[Row], idle: dict[int, Probes]) -> None:
    print(f"{'clients':>7} {'nodes':>5} {'completed':>11} {'refused':>13} {'errors':>6} "
          f"{'unfinished':>10} {'landing p99':>14} {'vs idle':>7} {'vs 1 node':>9} "
          f"{'wall':>7}")  # fmt: skip
    one = {row.clients: row for row in rows if row.nodes == 1}
    for row in rows:
        tally = row.tally
        base = one.get(row.clients)
        versus = _ratio(row.probes.p99, base.probes.p99) if base else "     -"
        refused = f"{tally.refusals} ({tally.refused_clients} cl)"
        vs_idle = _ratio(row.probes.p99, idle[row.nodes].p99)
        print(
            f"{row.clients:>7} {row.nodes:>5} {f'{tally.completed}/{row.clients}':>11} "
            f"{refused:>13} {tally.errors:>6} {tally.unfinished:>10} "
            f"{row.probes.bound}{row.probes.p99 * 1000:9.1f} ms {vs_idle:>7} "
            f"{versus:>9} {tally.seconds:6.1f}s"
        )  # fmt: skip
        for kind, count in sorted(tally.error_kinds.items()):
            print(f"{'':>14}error: {kind} x{count}")


def run(args: argparse.Namespace) -> None:
    started = time.monotonic()
    # Each client holds a socket here, and HAProxy two descriptors per connection.
    raise_file_limit(2 * max(args.clients) + 256)
    print(f"Postern scale benchmark: Tor-slow tus uploads through the front, "
          f"{args.size_kib} KiB each at {args.rate_kbps} KB/s")  # fmt: skip
    most = fit_to_file_limit(DEFAULT_LIMITS).max_connections
    pages = THREADS - UPLOAD_SLOTS
    print(f"  front        HAProxy {HAPROXY}, at most {most} connections; per node "
          f"{UPLOAD_SLOTS} uploads and {pages} other requests at once")  # fmt: skip
    print(f"  nodes        dropbox serve --front none (gunicorn, {default_workers()} workers of "
          f"{THREADS} threads each)")  # fmt: skip
    print(f"  database     {args.database}" + (
        " (a cluster of its own on this disk, every commit synced)"
        if args.database == "postgresql" else " (the data directory's file)"))  # fmt: skip
    print(f"  clients      {' '.join(map(str, args.clients))} at once, {args.sources} source "
          f"accounts, phases of at most {args.phase_seconds:g} s")  # fmt: skip
    print(f"  probe        GET / every {PROBE_INTERVAL:g} s during each phase; idle: "
          f"{IDLE_PROBES} probes first")  # fmt: skip
    rows: list[Row] = []
    idle: dict[int, Probes] = {}
    with contextlib.ExitStack() as stack:
        if args.work_dir is None:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="postern-scale-")))
        else:
            work = Path(tempfile.mkdtemp(prefix="postern-scale-", dir=args.work_dir))
            print(f"  work dir     {work} (kept: the nodes' and HAProxy's output)")
        database_url = None
        if args.database == "postgresql":
            # On this disk (not in memory) and syncing every commit, as SQLite does.
            cluster = Cluster(parent=Path(tempfile.gettempdir()), durable=True,
                              max_connections=PG_CONNECTIONS)  # fmt: skip
            stack.callback(cluster.stop)
            cluster.start()
            database_url = cluster.create_database("scale")
        data_dir = work / "data"
        data_dir.mkdir()
        team = make_data_dir(data_dir)
        envelope = _seal_envelope(args.size_kib * 1024, team.station.public.key)
        for nodes in args.nodes:
            with running_layout(work, data_dir, nodes, database_url) as layout:
                idle[nodes] = probe(layout.port, until=lambda: False, count=IDLE_PROBES)
                for clients in args.clients:
                    tally, probes = measure(layout.port, clients, args, envelope)
                    rows.append(Row(clients, nodes, tally, probes))
    idle_text = ", ".join(f"{n} node(s) {p.p99 * 1000:.1f} ms" for n, p in idle.items())
    print(f"  idle p99     {idle_text}")
    print_table(sorted(rows, key=lambda row: (row.clients, row.nodes)), idle)
    print(f"summary: {len(rows)} phases measured in {time.monotonic() - started:.1f} s")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--clients", type=int, nargs="+", default=[100, 1000, 2000],
                        metavar="N", help="uploads at once, one phase each "
                        "(default: 100 1000 2000)")  # fmt: skip
    parser.add_argument("--nodes", type=int, nargs="+", default=[1], metavar="N",
                        help="app nodes behind the front, one layout each (default: 1; "
                        "1 2 measures two nodes against one)")  # fmt: skip
    parser.add_argument("--size-kib", type=int, default=256, help="file size (default: 256)")
    parser.add_argument("--rate-kbps", type=int, default=50,
                        help="each client's upload rate, KB/s (default: 50)")  # fmt: skip
    parser.add_argument("--phase-seconds", type=float, default=90.0,
                        help="longest a phase lasts (default: 90)")  # fmt: skip
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite",
                        help="the nodes' database: the data directory's SQLite file, or a "
                        "PostgreSQL cluster the run starts (default: sqlite)")  # fmt: skip
    parser.add_argument("--sources", type=int, default=8,
                        help="source accounts the clients share (default: 8)")  # fmt: skip
    parser.add_argument("--work-dir", type=Path, default=None,
                        help="keep the data and the servers' output under DIR")  # fmt: skip
    args = parser.parse_args(argv)
    if (
        not args.clients or min(args.clients) < 1 or not args.nodes or min(args.nodes) < 1
        or args.size_kib < 1 or args.rate_kbps < 1 or args.phase_seconds < 5 or args.sources < 1
    ):  # fmt: skip
        parser.error("counts, sizes and rates must be at least 1, --phase-seconds at least 5")
    if 1 not in args.nodes:
        parser.error("--nodes must include 1: the other layouts are measured against it")
    args.nodes = sorted(set(args.nodes))
    return args


def main(argv: Sequence[str] | None = None) -> int:
    return run_main("bench/scale.py", argv, parse_args, run)


if __name__ == "__main__":
    sys.exit(main())
