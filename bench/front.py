"""Benchmark: the landing page's p99 while N clients trickle request heads, straight to
gunicorn and through the front (HAProxy), measured in the same run against the same server.

    .venv/bin/python bench/front.py [--clients 200 1000] [--every 2] [--budget 100]

One ``dropbox serve --front haproxy`` runs on a temporary data directory: HAProxy on a public
port before the source interface's gunicorn on an app port. For each N in --clients, and for
each way in (first gunicorn's app port, then HAProxy's port), N clients open a connection and
send a request head one header line every --every seconds, never finishing it, while a probe
asks for the landing page (GET /) again and again; the p99 of the probe's times is printed for
both ways, with their ratio. A probe that gets no page within --probe-timeout seconds counts
as that many seconds and as timed out, and its p99 is printed as a lower bound (">=").

Bounded in time: every phase gets an equal share of --budget seconds (default 100, so that
the run ends within about two minutes), and a probe never waits past its phase's end.
Exit status 0 whatever the numbers are; 2 when the benchmark itself cannot run.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__":
    # Run as a script, Python puts bench/ first on sys.path, where bench/crypto.py would
    # shadow the `crypto` package: look for packages in the repository root first.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import contextlib
import http.client
import os
import re
import selectors
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Final

from bench.runs import BenchError, Probes, raise_file_limit, run_main
from bench.source import make_data_dir
from dropbox.front import HAPROXY
from dropbox.gunicorn_settings import THREADS
from tests.support.ports import free_port, is_listening

DROPBOX_EXE: Final = Path(sys.executable).parent / "dropbox"
START_TIMEOUT: Final = 60.0
#: Seconds the trickling clients get to connect and send their first line before probing.
SETTLE: Final = 1.0


class Tricklers:
    """``count`` clients that send a request head one line every ``every`` seconds and never
    finish it; each is closed once the server closes it or the tricklers stop."""

    def __init__(self, port: int, count: int, every: float) -> None:
        self.port, self.count, self.every = port, count, every
        self.connected = 0
        self.closed_by_server = 0
        #: What the server sent before closing a connection (a 408, through the front).
        self.answers: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tricklers", daemon=True)

    def __enter__(self) -> Tricklers:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        selector = selectors.DefaultSelector()
        try:
            for _ in range(self.count):
                if self._stop.is_set():
                    break
                sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
                sock.sendall(b"GET / HTTP/1.1\r\nHost: front\r\n")
                sock.setblocking(False)
                selector.register(sock, selectors.EVENT_READ, sock)
                self.connected += 1
            line, next_line = 0, time.monotonic() + self.every
            while not self._stop.is_set():
                for key, _events in selector.select(timeout=0.1):
                    with contextlib.suppress(OSError):
                        if answer := key.data.recv(4096):
                            self.answers.append(answer)
                    selector.unregister(key.data)
                    key.data.close()
                    self.closed_by_server += 1
                if time.monotonic() >= next_line:
                    line, next_line = line + 1, next_line + self.every
                    for key in list(selector.get_map().values()):
                        with contextlib.suppress(OSError):
                            key.data.send(f"X-Trickle-{line}: {line}\r\n".encode())
        finally:
            for key in list(selector.get_map().values()):
                key.data.close()
            selector.close()


def probe(port: int, count: int, interval: float, timeout: float, deadline: float) -> Probes:
    """GET / up to ``count`` times (a new connection each, as a new Tor circuit would be),
    ``interval`` apart, none waiting past ``deadline``."""
    times: list[float] = []
    failed = 0
    for _ in range(count):
        left = deadline - time.monotonic()
        if left <= 0.5 and times:
            break
        wait = max(0.5, min(timeout, left))
        started = time.monotonic()
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=wait)
        try:
            connection.request("GET", "/")
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                raise BenchError(f"GET / answered {response.status} on port {port}")
            times.append(time.monotonic() - started)
        except (TimeoutError, ConnectionError, http.client.HTTPException, OSError):
            times.append(time.monotonic() - started)
            failed += 1
        finally:
            connection.close()
        time.sleep(interval)
    return Probes(times, failed)


@contextlib.contextmanager
def running_server(work: Path) -> Iterator[tuple[int, int, subprocess.Popen[bytes]]]:
    """``dropbox serve --front haproxy``; yields (front port, gunicorn app port, process)."""
    data_dir = work / "data"
    data_dir.mkdir()
    make_data_dir(data_dir)
    port, api_port, app_port, api_app_port = (free_port() for _ in range(4))
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSTERN_")}
    log = work / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(  # noqa: S603 - our own tool, fixed arguments
            [str(DROPBOX_EXE), "serve", "--data-dir", str(data_dir), "--port", str(port),
             "--api-port", str(api_port), "--front", "haproxy", "--app-port", str(app_port),
             "--api-app-port", str(api_app_port)],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env,
            start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not (is_listening(port) and is_listening(app_port)):
            if process.poll() is not None or time.monotonic() > deadline:
                raise BenchError(f"dropbox serve did not start: {log.read_text()[-2000:]}")
            time.sleep(0.1)
        yield port, app_port, process
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def haproxy_version() -> str:
    done = subprocess.run(  # noqa: S603 - fixed binary
        [HAPROXY, "-v"], capture_output=True, text=True, check=False, timeout=30
    )
    match = re.search(r"version (\S+)", done.stdout)
    return match.group(1) if match else "unknown"


def run(args: argparse.Namespace) -> None:
    started = time.monotonic()
    clients: list[int] = args.clients
    raise_file_limit(max(clients) + 256)
    phase = args.budget / (2 * len(clients))
    print(
        f"Postern front benchmark: landing page p99 while clients trickle request heads "
        f"(one header line every {args.every:g} s)"
    )
    print(f"  haproxy      {HAPROXY} {haproxy_version()}")
    print(f"  probes       GET / up to {args.probes} times, {args.interval:g} s apart, "
          f"timeout {args.probe_timeout:g} s, phases of {phase:.1f} s")  # fmt: skip
    with (
        tempfile.TemporaryDirectory(prefix="postern-bench-front-") as work,
        running_server(Path(work)) as (front_port, app_port, _process),
    ):
        print(f"  server       dropbox serve --front haproxy: HAProxy on 127.0.0.1:{front_port}, "
              f"gunicorn on 127.0.0.1:{app_port} ({THREADS} threads)")  # fmt: skip
        results: dict[int, dict[str, Probes]] = {}
        for count in clients:
            results[count] = {}
            for way, port in (("direct", app_port), ("front", front_port)):
                end = time.monotonic() + phase
                with Tricklers(port, count, args.every) as tricklers:
                    while tricklers.connected < count and time.monotonic() < end - phase / 2:
                        time.sleep(0.05)
                    time.sleep(min(SETTLE, max(0.0, end - time.monotonic() - 1)))
                    results[count][way] = probe(
                        port, args.probes, args.interval, args.probe_timeout, end
                    )
                # Let the server notice the closed connections before the next phase.
                time.sleep(0.5)
            direct, front = results[count]["direct"], results[count]["front"]
            print(f"{count} trickling clients")
            for name, probes in (("direct to gunicorn", direct), ("through the front", front)):
                print(f"  {name:<20} p99 {probes.bound}{probes.p99 * 1000:9.1f} ms  "
                      f"({len(probes.times)} probes, {probes.failed} timed out)")  # fmt: skip
            print(f"  ratio direct/front   {direct.bound}{direct.p99 / front.p99:9.1f}x")
    print(f"summary: {len(clients)} client counts measured in {time.monotonic() - started:.1f} s")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--clients",
        type=int,
        nargs="+",
        default=[200, 1000],
        metavar="N",
        help="trickling clients, one phase pair each (default: 200 1000)",
    )
    parser.add_argument(
        "--every",
        type=float,
        default=2.0,
        metavar="SECONDS",
        help="seconds between two header lines of a client (default: 2)",
    )
    parser.add_argument(
        "--probes",
        type=int,
        default=60,
        help="landing-page requests per phase at most (default: 60)",
    )
    parser.add_argument(
        "--interval",
        type=float,
        default=0.1,
        metavar="SECONDS",
        help="pause between two probes (default: 0.1)",
    )
    parser.add_argument(
        "--probe-timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="longest wait for one landing page (default: 10)",
    )
    parser.add_argument("--budget", type=float, default=100.0, metavar="SECONDS",
                        help="seconds for all phases together (default: 100)")  # fmt: skip
    args = parser.parse_args(argv)
    if not args.clients or min(args.clients) < 1 or args.probes < 1 or args.budget < 4:
        parser.error("--clients must be at least 1, --probes at least 1, --budget at least 4")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    return run_main("bench/front.py", argv, parse_args, run)


if __name__ == "__main__":
    sys.exit(main())
