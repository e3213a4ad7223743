"""`make demo`: deploy/demo.py runs the real tools end to end and says what it did."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

from crypto import load_public_key
from tests.clitools import REPO_ROOT


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def snapshot(directory: Path) -> list[tuple[str, int]]:
    if not directory.exists():
        return []
    return sorted((str(p), p.stat().st_mtime_ns) for p in directory.rglob("*"))


def test_demo_runs_in_a_given_data_dir(tmp_path):
    data_dir = tmp_path / "demo"
    before = snapshot(REPO_ROOT / "demo-data")
    done = subprocess.run(
        [
            sys.executable,
            "deploy/demo.py",
            "--data-dir",
            str(data_dir),
            "--port",
            str(free_port()),
            "--api-port",
            str(free_port()),
            "--serve-seconds",
            "1",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    root = load_public_key((data_dir / "station" / "outbox" / "root.pub").read_bytes())
    assert f"Team root fingerprint: {root.fingerprint}" in out
    assert "Demo passphrase:       demo passphrase only" in out
    for name in ("station", "source", "server", "decrypted"):
        assert f"{data_dir / name}/" in out
    assert str(data_dir / "station" / "outbox" / "keyring.json") in out
    assert "journalist decrypt" in out
    assert "dropbox seal" in out
    assert "The source interface is running: open http://127.0.0.1:" in out
    assert "The source interface has stopped." in out
    assert "later versions" in out
    assert (data_dir / "dropbox-data" / "keyring.json").read_bytes() == (
        data_dir / "station" / "outbox" / "keyring.json"
    ).read_bytes()
    decrypted = sorted(p.name for p in (data_dir / "decrypted").iterdir())
    assert decrypted[0] == "expenses.csv"
    assert decrypted[1].startswith("message-")
    assert snapshot(REPO_ROOT / "demo-data") == before, "the default demo-data was touched"


def test_demo_runs_again_over_its_own_data(tmp_path):
    data_dir = tmp_path / "demo"
    argv = [sys.executable, "deploy/demo.py", "--data-dir", str(data_dir), "--no-serve"]
    for _ in range(2):
        done = subprocess.run(argv, cwd=REPO_ROOT, capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stdout + done.stderr


def test_demo_refuses_to_delete_a_directory_it_did_not_make(tmp_path):
    data_dir = tmp_path / "precious"
    data_dir.mkdir()
    (data_dir / "thesis.tex").write_text("years of work")
    done = subprocess.run(
        [
            sys.executable,
            "deploy/demo.py",
            "--data-dir",
            str(data_dir),
            "--port",
            str(free_port()),
            "--api-port",
            str(free_port()),
            "--serve-seconds",
            "1",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert "was not made by the demo" in done.stderr
    assert (data_dir / "thesis.tex").read_text() == "years of work"
