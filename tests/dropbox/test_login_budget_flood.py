"""A flood of requests for new codenames does not lock returning sources out.

Real ``dropbox serve`` under gunicorn (tests/support/server.py). Several threads post
``/generate`` as fast as the server answers, for the whole test, while 20 sources log in
with the plain form (no JavaScript), one arriving every quarter of a second (each on its own:
a source does not wait for the one before). The codename budget per minute is set out
of reach here, so the flood holds every derivation slot new codenames may take: what keeps
the logins fast is the slots left to logins alone and their priority
(dropbox/web/throttle.py), not the flood running out of budget. Every login must succeed:
a login left without a slot gives up after a few seconds and is refused, so success is the
contract. The latencies are printed (``pytest -s``), not asserted: on a shared machine they
measure the neighbours too.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from crypto import dump_public_key
from tests.support.server import DropboxServer, init_data_dir, running_server
from tests.support.source import Source
from tests.support.team import Team

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

SOURCES = 20
FLOOD_THREADS = 6
ARRIVAL_SECONDS = 0.25
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def server(tmp_path: Path) -> Iterator[DropboxServer]:
    team = Team()
    root_pub = tmp_path / "root.pub"
    root_pub.write_bytes(dump_public_key(team.root.public))
    keyring = tmp_path / "keyring.json"
    keyring.write_bytes(team.keyring())
    data_dir = init_data_dir(tmp_path / "data", root_pub, keyring)
    # Everything at its default but the codename rate: the flood is never refused for it.
    with running_server(data_dir, tmp_path, codename_derivations_per_minute=100_000) as running:
        yield running


def _token(page: str) -> str:
    match = _CSRF.search(page)
    assert match is not None, page[:300]
    return match.group(1)


class Flood:
    """Threads posting /generate back to back until stopped; counts the answers."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.stop = threading.Event()
        self.answers: Counter[int] = Counter()
        self.errors: list[BaseException] = []
        self._lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run) for _ in range(FLOOD_THREADS)]

    def __enter__(self) -> Flood:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(60)

    def _run(self) -> None:
        browser = requests.Session()
        try:
            token = _token(browser.get(self.url + "/generate", timeout=60).text)
            while not self.stop.is_set():
                answer = browser.post(
                    self.url + "/generate", data={"csrf_token": token}, timeout=60
                )
                with self._lock:
                    self.answers[answer.status_code] += 1
                if answer.status_code == 403:  # a token gone stale: take a fresh one
                    token = _token(browser.get(self.url + "/generate", timeout=60).text)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.errors.append(exc)


def _log_in(url: str, codename: str) -> tuple[float, int, str]:
    """Log in as a person without JavaScript would; (seconds, status, where it went)."""
    browser = requests.Session()
    started = time.monotonic()
    page = browser.get(url + "/login", timeout=60).text
    answer = browser.post(
        url + "/login",
        data={"csrf_token": _token(page), "codename": codename},
        timeout=60,
        allow_redirects=False,
    )
    return time.monotonic() - started, answer.status_code, answer.headers.get("Location", "")


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]  # nearest rank


def test_logins_succeed_quickly_during_a_flood_of_new_codenames(server: DropboxServer) -> None:
    codenames = [Source(server).codename for _ in range(SOURCES)]
    results: list[tuple[float, int, str]] = []
    lock = threading.Lock()

    def log_in(codename: str) -> None:
        result = _log_in(server.url, codename)
        with lock:
            results.append(result)

    with Flood(server.url) as flood:
        time.sleep(2.0)  # the flood holds its slots before the first source arrives
        during_flood = sum(flood.answers.values())
        logins = [threading.Thread(target=log_in, args=(c,)) for c in codenames]
        started = time.monotonic()
        for thread in logins:
            thread.start()
            time.sleep(ARRIVAL_SECONDS)
        for thread in logins:
            thread.join(120)
        wall = time.monotonic() - started
    assert not flood.errors, flood.errors
    seconds = [result[0] for result in results]
    p50, p90, p99 = (_percentile(seconds, share) for share in (0.5, 0.9, 0.99))
    print(
        f"\n{SOURCES} logins (one every {ARRIVAL_SECONDS} s) during a flood of POST /generate "
        f"from {FLOOD_THREADS} threads: "
        f"all done in {wall:.2f} s; p50 {p50:.2f} s, p90 {p90:.2f} s, p99 {p99:.2f} s, "
        f"max {max(seconds):.2f} s\n"
        f"flood answers: {dict(sorted(flood.answers.items()))} "
        f"({during_flood} before the first login)"
    )
    assert len(results) == SOURCES
    assert [(status, where) for _, status, where in results] == [(303, "/replies")] * SOURCES
    assert flood.answers[200] > 0  # the flood was real: it got codenames all along
