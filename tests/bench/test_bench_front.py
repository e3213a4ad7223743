"""bench/front.py: a smoke run with tiny numbers; the shape of its output, never its timings."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import require_tool

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "front.py"
NUMBER = r"\d+\.\d"

EXPECTED = [
    (
        r"Postern front benchmark: landing page p99 while clients trickle request heads "
        r"\(one header line every 0\.5 s\)"
    ),
    r"  haproxy +/usr/sbin/haproxy \S+",
    r"  probes +GET / up to 4 times, 0\.05 s apart, timeout 5 s, phases of 2\.5 s",
    (
        r"  server +dropbox serve --front haproxy: HAProxy on 127\.0\.0\.1:\d+, gunicorn on "
        r"127\.0\.0\.1:\d+ \(\d+ threads\)"
    ),
    r"2 trickling clients",
    rf"  direct to gunicorn +p99 (>=| ) +{NUMBER} ms  \(\d+ probes, \d+ timed out\)",
    rf"  through the front +p99 (>=| ) +{NUMBER} ms  \(\d+ probes, \d+ timed out\)",
    rf"  ratio direct/front +(>=| ) +{NUMBER}x",
    r"3 trickling clients",
    rf"  direct to gunicorn +p99 (>=| ) +{NUMBER} ms  \(\d+ probes, \d+ timed out\)",
    rf"  through the front +p99 (>=| ) +{NUMBER} ms  \(\d+ probes, \d+ timed out\)",
    rf"  ratio direct/front +(>=| ) +{NUMBER}x",
    rf"summary: 2 client counts measured in {NUMBER} s",
]


@pytest.mark.timeout(90)
def test_smoke_run_prints_both_ways_and_their_ratio_per_client_count():
    require_tool("haproxy")
    result = subprocess.run(
        [sys.executable, "-W", "error", str(SCRIPT), "--clients", "2", "3", "--every", "0.5",
         "--probes", "4", "--interval", "0.05", "--probe-timeout", "5", "--budget", "10"],
        capture_output=True, text=True, timeout=80, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert len(lines) == len(EXPECTED), result.stdout
    for pattern, line in zip(EXPECTED, lines, strict=True):
        assert re.fullmatch(pattern, line), (pattern, line)


def test_bad_arguments_are_refused():
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--clients", "0"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "--clients must be at least 1" in result.stderr
