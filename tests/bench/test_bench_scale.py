"""bench/scale.py: a smoke run at a tiny size; the shape of its output, never its timings."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import require_tool

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "scale.py"
NUMBER = r"\d+\.\d"

ROW = (
    r"      (?P<clients>{clients}) +1 +(?P<completed>\d+)/{clients} +\d+ \(\d+ cl\) "
    r"+(?P<errors>\d+) +(?P<unfinished>\d+) +(>=| ) +\d+\.\d ms +\d+\.\d\dx +1\.00x "
    r"+\d+\.\ds"
)
#: What the table prints under a row that met errors, one line per kind.
ERROR_LINE = re.compile(r" {14}error: .+ x\d+")

EXPECTED = [
    r"Postern scale benchmark: Tor-slow tus uploads through the front, 8 KiB each at 100 KB/s",
    (
        r"  front +HAProxy /usr/sbin/haproxy, at most \d+ connections; per node \d+ uploads "
        r"and \d+ other requests at once"
    ),
    r"  nodes +dropbox serve --front none \(gunicorn, \d+ workers of \d+ threads each\)",
    r"  database +sqlite \(the data directory's file\)",
    r"  clients +2 3 at once, 1 source accounts, phases of at most 20 s",
    r"  probe +GET / every 0\.1 s during each phase; idle: \d+ probes first",
    rf"  idle p99 +1 node\(s\) {NUMBER} ms",
    (
        r"clients +nodes +completed +refused +errors +unfinished +landing p99 +vs idle "
        r"+vs 1 node +wall"
    ),
    ROW.format(clients=2),
    ROW.format(clients=3),
    rf"summary: 2 phases measured in {NUMBER} s",
]


@pytest.mark.timeout(120)
def test_smoke_run_completes_every_upload_and_prints_the_table():
    require_tool("haproxy")
    result = subprocess.run(
        [sys.executable, "-W", "error", str(SCRIPT), "--clients", "2", "3", "--size-kib", "8",
         "--rate-kbps", "100", "--phase-seconds", "20", "--sources", "1"],
        capture_output=True, text=True, timeout=110, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr == ""
    lines = [line for line in result.stdout.splitlines() if not ERROR_LINE.fullmatch(line)]
    assert len(lines) == len(EXPECTED), result.stdout
    for pattern, line in zip(EXPECTED, lines, strict=True):
        assert re.fullmatch(pattern, line), (pattern, line)
    # Every client is accounted for, and a run this small completes nearly everything (the
    # file-based upload store's creation can race with its own expiry scan: a 500, counted
    # as an error; the database-backed upload state has no such race).
    for line, clients in zip(lines[8:10], (2, 3), strict=True):
        row = re.fullmatch(ROW.format(clients=clients), line)
        assert row is not None, line
        done = int(row["completed"]) + int(row["errors"]) + int(row["unfinished"])
        assert done == clients, line
        assert int(row["completed"]) >= clients - 1, result.stdout


@pytest.mark.parametrize(
    "args", [["--clients", "0"], ["--nodes", "2"], ["--phase-seconds", "1"], ["--rate-kbps", "0"]]
)
def test_bad_arguments_are_refused(args):
    result = subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=30,
        check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "error:" in result.stderr
