"""`dropbox-transfer pull` SIGKILLed at random offsets of its bundle, then run to the end.

Against real gunicorn, with envelopes of mixed sizes (large, small, large, ...: the order in
which the spool's hashing threads finish differs from the order of the bundle). Each kill
lands at a seeded random offset of the partial bundle; the pull run again afterwards must
finish the same bundle, byte for byte, as a pull that was never interrupted, holding every
item once.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

from crypto import Kind, dump_private_key, dump_public_key, seal_bytes
from tests.support.cli import BIN
from tests.support.server import DropboxServer, init_data_dir, running_server
from tests.support.source import Source
from tests.support.team import Team
from tests.support.transfer import partial_bundle_size, pull, read_bundle, server_public_key

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

SEED = int(os.environ.get("POSTERN_PULL_KILL_SEED") or random.SystemRandom().getrandbits(32))
KILLS = 6
MiB = 1024 * 1024


def start_pull(server: DropboxServer, key: Path, medium: Path) -> subprocess.Popen[bytes]:
    argv: list[str | Path] = [BIN / "dropbox-transfer", "pull", "--server", server.api_url,
            "--key", key,
            "--to", medium]  # fmt: skip
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def kill_at(process: subprocess.Popen[bytes], medium: Path, offset: int) -> bool:
    """SIGKILL the pull once its partial bundle holds ``offset`` bytes; whether it was cut."""
    deadline = time.monotonic() + 60
    while process.poll() is None and time.monotonic() < deadline:
        if partial_bundle_size(medium) >= offset:
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)
            return True
        time.sleep(0.001)
    process.wait(timeout=30)
    return False


def test_a_pull_killed_at_random_offsets_finishes_the_same_bundle(tmp_path: Path) -> None:
    print(f"\npull kill test seed: {SEED} (POSTERN_PULL_KILL_SEED={SEED} replays it)")
    rng = random.Random(SEED)  # noqa: S311 - a test's seeded choices, replayable
    team = Team()
    root_pub, keyring = tmp_path / "root.pub", tmp_path / "keyring.json"
    root_pub.write_bytes(dump_public_key(team.root.public))
    keyring.write_bytes(team.keyring())
    key = tmp_path / "transfer.key"
    key.write_bytes(dump_private_key(team.transfer, None))
    key.chmod(0o600)
    recipients = [team.journalist.public.key]
    data_dir = init_data_dir(tmp_path / "data", root_pub, keyring)
    with running_server(data_dir, tmp_path) as server:
        source = Source(server)
        sizes = [4 * MiB if i % 2 == 0 else 200 for i in range(12)]
        source.script_path(
            [("file", seal_bytes(rng.randbytes(size), recipients, Kind.FILE)) for size in sizes]
        )
        total = sum(sizes)

        medium = tmp_path / "usb"
        medium.mkdir()
        cuts = 0
        for _ in range(KILLS):
            offset = rng.randrange(1, total)
            cuts += kill_at(start_pull(server, key, medium), medium, offset)
        (resumed,) = pull(server, key, medium)
        (whole,) = pull(server, key, tmp_path / "untouched")
        server_key = server_public_key(server)

    print(f"pull kill test: {cuts} of {KILLS} kills cut the pull")
    assert cuts >= 1, "no kill landed inside the pull"
    assert resumed.read_bytes() == whole.read_bytes()
    items, envelopes = read_bundle(resumed, server_key)
    assert len(items) == len(sizes) == len({item.id for item in items})
    assert sorted(len(envelopes[item.id]) for item in items) == sorted(item.size for item in items)
    assert not [p for p in medium.iterdir() if p.name.startswith(".postern-pull-")]
