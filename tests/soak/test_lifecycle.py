"""The lifecycle soak: Postern lived for many cycles, with crashes, and checked after each.

Each cycle: sources (new and returning) submit through both paths; the server is SIGKILLed
at a random point of some submissions and started again; a pull is cut at a random moment
and run again; the station imports, replies and acknowledges; the push applies it and the
server purges what was acknowledged. Part way, a second journalist joins (a new keyring).

After every cycle the invariants must hold:
- every submission the server acknowledged is in the station exactly once and decrypts to
  the bytes sent; nothing the station holds was never sent;
- the server has no blob without a row and no row without a blob, no temporary file once it
  has restarted, no upload left that nobody can resume, and SQLite's integrity check is ok.

The seed is printed; POSTERN_SOAK_SEED repeats a run, POSTERN_SOAK_CYCLES sets its length
(`make soak` runs hundreds of cycles).
"""

from __future__ import annotations

import collections
import os
import random
import secrets
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from journalist_ui import station
from tests.soak.world import (
    Sent,
    World,
    digest,
    new_station,
    server_files,
    server_rows,
)
from tests.support.server import init_data_dir, running_server

pytestmark = [pytest.mark.slow, pytest.mark.soak]

SEED = int(os.environ.get("POSTERN_SOAK_SEED") or secrets.randbits(32))
CYCLES = int(os.environ.get("POSTERN_SOAK_CYCLES", "3"))
SUBMISSIONS_PER_CYCLE = 6
#: Chance that a submission has the server killed under it.
KILL_CHANCE = 0.25


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    home, transfer_key = new_station(tmp_path)
    layout = station.Layout(home)
    data_dir = init_data_dir(tmp_path / "data", layout.outbox_root, layout.outbox_keyring)
    with running_server(data_dir, tmp_path) as server:
        # Seeded on purpose: a run is repeated from its printed seed.
        world = World(random.Random(SEED), home, server, transfer_key, tmp_path)  # noqa: S311
        world.journalist("server", "pin", server.data_dir / "server.pub", unlock=False)
        yield world


def submit_with_faults(world: World) -> None:
    source = world.a_source()
    contents, pending = world.prepare(source)
    world.counts.submissions += 1
    if world.rng.random() >= KILL_CHANCE:
        world.send(source, contents, pending)
        world.sent.append(Sent(source, contents, acknowledged=True))
        world.counts.acknowledged += 1
        return
    # The server dies at a random moment of this submission: the request fails, and whatever
    # the server committed must be whole.
    failed: list[BaseException] = []

    def send() -> None:
        try:
            world.send(source, contents, pending)
        except (AssertionError, requests.RequestException) as exc:
            failed.append(exc)

    sender = threading.Thread(target=send)
    sender.start()
    time.sleep(world.rng.uniform(0.0, 0.15))
    world.kill_server()
    sender.join(timeout=120)
    world.restart_server()
    if failed and pending is not None:
        # The page tries again, as postern.js does: resumes from HEAD, completes with the
        # same key; the server must neither lose nor double the submission.
        pending.send()
        world.counts.retried += 1
    if not failed or pending is not None:
        world.sent.append(Sent(source, contents, acknowledged=True))
        world.counts.acknowledged += 1
    else:
        # A plain form cut by the crash: nobody was told it arrived; it may or may not have.
        world.sent.append(Sent(source, contents, acknowledged=False))


def check_server(world: World) -> None:
    files = server_files(world.server.data_dir)
    named, integrity = server_rows(world.server.data_dir)
    assert integrity == "ok", integrity
    world.counts.checked("integrity_check")
    orphans = set(files["blobs"]) - named
    assert not orphans, f"{len(orphans)} blob(s) without a row (seed {SEED})"
    world.counts.checked("no blob without a row")
    missing = named - set(files["blobs"])
    assert not missing, f"{len(missing)} row(s) without a blob (seed {SEED})"
    world.counts.checked("no row without a blob")
    assert files["temporary"] == [], files["temporary"]
    world.counts.checked("no temporary file")
    # Every source has finished or given up on its uploads by now.
    assert files["uploads"] == [], files["uploads"]
    world.counts.checked("no upload left behind")


def check_station(world: World) -> None:
    held = collections.Counter(world.station_contents())
    acknowledged = collections.Counter(
        digest(part) for sent in world.sent if sent.acknowledged for part in sent.contents
    )
    ever_sent = {digest(part) for sent in world.sent for part in sent.contents}
    lost = acknowledged - held
    assert not lost, f"{sum(lost.values())} acknowledged item(s) not in the station (seed {SEED})"
    world.counts.checked("nothing acknowledged lost")
    doubled = {h: n for h, n in held.items() if n > max(acknowledged[h], 1)}
    assert not doubled, f"{len(doubled)} item(s) imported more than once (seed {SEED})"
    world.counts.checked("nothing doubled")
    strange = set(held) - ever_sent
    assert not strange, f"{len(strange)} item(s) in the station that nobody sent (seed {SEED})"
    world.counts.checked("nothing unsent visible")


@pytest.mark.timeout(3600)
def test_the_system_lives_many_cycles(world: World):
    print(f"\nsoak: seed {SEED}, {CYCLES} cycles (POSTERN_SOAK_SEED={SEED} repeats it)")
    for cycle in range(CYCLES):
        if cycle == CYCLES // 2:
            world.add_journalist()
        for _ in range(SUBMISSIONS_PER_CYCLE):
            submit_with_faults(world)
        bundles = world.pull(interrupt=world.rng.random() < 0.5)
        world.import_and_answer(bundles)
        # A restart at the end of the cycle: what is left must be reclaimed, nothing lost.
        world.kill_server()
        world.restart_server()
        check_server(world)
        check_station(world)
        world.counts.cycles += 1
    counts = world.counts
    print(
        f"soak: {counts.cycles} cycles, {counts.submissions} submissions "
        f"({counts.acknowledged} acknowledged), {counts.kills} kills, "
        f"{counts.retried} script-path retries, {counts.interrupted_pulls} interrupted pulls, "
        f"{counts.replies} replies"
    )
    for name, times in sorted(counts.checks.items()):
        print(f"soak: invariant held {times} times: {name}")
    assert counts.cycles == CYCLES
