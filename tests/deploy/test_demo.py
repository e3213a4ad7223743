"""`make demo`: deploy/demo/ runs the whole system with the real tools and says what it did.

The demo is run with ``--tor none``: its default launches a tor that connects to the Tor
network, and no test may leave loopback (``--tor launch`` itself is tested on a private Tor
network in tests/integration/test_tor_network.py).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from crypto import load_public_key
from journalist_ui.store.models import Item, Source
from journalist_ui.unlock import unlock
from tests.support.cli import REPO_ROOT
from tests.support.ports import free_port

PASSPHRASE = "demo passphrase only"  # noqa: S105 - the demo's published passphrase


def snapshot(directory: Path) -> list[tuple[str, int]]:
    if not directory.exists():
        return []
    return sorted((str(p), p.stat().st_mtime_ns) for p in directory.rglob("*"))


def demo(data_dir: Path, *extra: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    argv = [
        sys.executable, "-m", "deploy.demo", "--data-dir", str(data_dir), "--tor", "none",
        "--port", str(free_port()), "--api-port", str(free_port()),
        "--ui-port", str(free_port()), *extra,
    ]  # fmt: skip
    return subprocess.run(
        argv, cwd=REPO_ROOT, capture_output=True, text=True, check=False, timeout=timeout
    )


@pytest.mark.slow
def test_demo_runs_the_whole_system_and_stops_cleanly(tmp_path):
    data_dir = tmp_path / "demo"
    before = snapshot(REPO_ROOT / "demo-data")
    done = demo(data_dir, "--serve-seconds", "1")
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    station = data_dir / "station"
    root = load_public_key((station / "outbox" / "root.pub").read_bytes())
    assert f"Team root fingerprint: {root.fingerprint}" in out
    assert "Demo passphrase:   demo passphrase only" in out
    assert re.search(r"Source interface:  http://127\.0\.0\.1:\d+/", out)
    # The demo runs the front, as deployed: HAProxy on the source port, gunicorn behind it.
    assert re.search(r"front: +HAProxy on 127\.0\.0\.1:\d+ and :\d+ before the apps on", out)
    assert (data_dir / "server" / "haproxy.cfg").is_file()
    assert re.search(r"Station UI:        http://127\.0\.0\.1:\d+/", out)
    assert "Source onion:      not published" in out
    codename = re.search(r"The demo source's codename: ([a-z -]+)\n", out)
    assert codename is not None
    assert len(codename.group(1).split()) == 7
    assert "new items:        2" in out  # the message and the file, imported
    assert "Everything has stopped" in out
    # The server runs the station's keyring (with the transfer machine added: serial 2).
    assert (data_dir / "server" / "keyring.json").read_bytes() == (
        station / "outbox" / "keyring.json"
    ).read_bytes()
    # The station's encrypted store holds what the demo source sent.
    unlocked = unlock(station, "demo", PASSPHRASE)
    try:
        with unlocked.store.session() as db:
            assert db.scalar(select(func.count()).select_from(Source)) == 1
            kinds = sorted(db.scalars(select(Item.kind)))
            assert kinds == ["file", "message"]
            assert db.scalar(select(Item.filename).where(Item.kind == "file")) == "expenses.csv"
    finally:
        unlocked.lock()
    assert snapshot(REPO_ROOT / "demo-data") == before, "the default demo-data was touched"


@pytest.mark.slow
def test_demo_runs_again_over_its_own_data(tmp_path):
    data_dir = tmp_path / "demo"
    for _ in range(2):
        done = demo(data_dir, "--serve-seconds", "0")
        assert done.returncode == 0, done.stdout + done.stderr


def test_demo_refuses_to_delete_a_directory_it_did_not_make(tmp_path):
    data_dir = tmp_path / "precious"
    data_dir.mkdir()
    (data_dir / "thesis.tex").write_text("years of work")
    done = demo(data_dir, "--serve-seconds", "1")
    assert done.returncode == 1
    assert "was not made by the demo" in done.stderr
    assert (data_dir / "thesis.tex").read_text() == "years of work"
