"""`make demo`: deploy/demo/ runs the whole system with the real tools and says what it did.

The demo is run with ``--tor none``: its default launches a tor that connects to the Tor
network, and no test may leave loopback (``--tor launch`` itself is tested on a private Tor
network in tests/integration/test_tor_network.py).
"""

from __future__ import annotations

import http.client
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
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


def _summary_commands(out: str) -> dict[str, str]:
    """The commands the demo's summary suggests, by what they do (continuations joined)."""
    joined = out.replace("\\\n", " ")
    found = {}
    for name, pattern in (
        ("export", r"\(or: (\S+ export-outbound .+?)\)\.\n"),
        ("push", r"\n +(\S+ push .+?)\n"),
        ("pull", r"\n +(\S+ pull .+?)\n"),
    ):
        match = re.search(pattern, joined)
        assert match is not None, f"no {name} command in the summary"
        found[name] = " ".join(match.group(1).split())
    return found


@pytest.mark.slow
def test_demo_runs_from_anywhere_prints_working_commands_and_stops_at_once_on_ctrl_c(tmp_path):
    """Started by its path from another directory; every path it prints is absolute and its
    suggested commands work pasted in /tmp; Ctrl-C (SIGINT to the whole process group, as a
    terminal sends it) with a browser's connections open stops everything in seconds."""
    data_dir = tmp_path / "demo"
    port = free_port()
    # Run in tmp_path, the data directory given relative to it: what the demo prints must
    # still work in any other directory.
    argv = [
        sys.executable, str(REPO_ROOT / "deploy" / "demo"), "--data-dir", "demo",
        "--tor", "none", "--port", str(port), "--api-port", str(free_port()),
        "--ui-port", str(free_port()),
    ]  # fmt: skip
    demo_process = subprocess.Popen(
        argv,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # a process group of its own, like a terminal's foreground job
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(demo_process.stdout or []), daemon=True)
    reader.start()
    connections: list[socket.socket | http.client.HTTPConnection] = []
    try:
        deadline = time.monotonic() + 240
        while not any("Stop everything with Ctrl-C." in line for line in lines):
            assert demo_process.poll() is None, "".join(lines)
            assert time.monotonic() < deadline, "".join(lines)
            time.sleep(0.2)
        out = "".join(lines)
        assert f"In {data_dir}/: station/" in out
        commands = _summary_commands(out)
        for command in commands.values():
            for word in shlex.split(command):
                if "/" in word and not word.startswith("http"):
                    assert word.startswith("/"), f"a relative path in {command!r}"

        # The suggested commands, pasted in another directory (the shell expands the glob).
        pasted_in = "/tmp"  # noqa: S108 - only the working directory: nothing is written there
        export = subprocess.run(
            ["bash", "-c", f"{commands['export']} --passphrase-fd 3 3<<<{shlex.quote(PASSPHRASE)}"],
            cwd=pasted_in, capture_output=True, text=True, check=False, timeout=120,
        )  # fmt: skip
        assert export.returncode == 0, export.stderr
        assert f"Wrote {data_dir}/usb/outbound-" in export.stdout
        for name in ("push", "pull"):
            done = subprocess.run(
                ["bash", "-c", commands[name]],
                cwd=pasted_in, capture_output=True, text=True, check=False, timeout=120,
            )  # fmt: skip
            assert done.returncode == 0, (name, done.stdout, done.stderr)

        # A browser's connections: one kept alive after a page, one opened but not used yet.
        kept = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        kept.request("GET", "/")
        response = kept.getresponse()
        response.read()
        assert response.status == 200
        assert not response.will_close
        connections += [kept, socket.create_connection(("127.0.0.1", port))]

        stopped_at = time.monotonic()
        os.killpg(demo_process.pid, signal.SIGINT)
        demo_process.wait(timeout=20)
        took = time.monotonic() - stopped_at
    finally:
        if demo_process.poll() is None:
            os.killpg(demo_process.pid, signal.SIGKILL)
            demo_process.wait()
        for connection in connections:
            connection.close()
    reader.join(timeout=10)
    if demo_process.stdout is not None:
        demo_process.stdout.close()
    out = "".join(lines)
    print(f"the demo stopped {took:.1f} s after SIGINT")
    assert demo_process.returncode == 0, out[-3000:]
    assert "Everything has stopped" in out
    assert "Perhaps out of memory" not in out
    assert "SIGKILL" not in out
    assert "error:" not in out.split("Stop everything with Ctrl-C.")[1]
    # Seconds, not gunicorn's 30 s graceful timeout (generous: the test machine is shared).
    assert took < 10, f"the demo took {took:.1f} s to stop"
