"""A smoke run of bench/station.py at a tiny size: it runs end to end and prints every figure.

No timing is asserted: the benchmark's output is its result (see the script's docstring).
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.clitools import REPO_ROOT

NUMBER = r"\d+\.\d+"
EXPECTED = [
    r"Postern station benchmark",
    r"  content +40 messages and 3 files, 4 MiB in all",
    rf"  bundle +{NUMBER} MiB, built in {NUMBER} s",
    rf"  baseline: bare crypto core decrypts every envelope +{NUMBER} +{NUMBER}",
    rf"  import: verify, store, decrypt once, record +{NUMBER} +{NUMBER}",
    rf"  info: copy of the bundle file on the same disk, synced +{NUMBER}",
    rf"  source list GET / \(200 sources\) +{NUMBER}",
    rf"  search GET /search\?q=\w+ +{NUMBER}",
    rf"ratio: import time / bare decryption time = {NUMBER}x",
    rf"(PASS|FAIL) import <= 2x the bare decryption of the same envelopes: {NUMBER}x",
    r"(PASS|FAIL) source list < 300 ms: \d+ ms",
    r"(PASS|FAIL) search < 100 ms: \d+ ms",
]


@pytest.mark.timeout(240)
def test_smoke_run_prints_every_figure():
    done = subprocess.run(
        [sys.executable, "-W", "error", "bench/station.py", "--messages", "40", "--files", "3",
         "--size-mib", "4", "--sources", "200", "--repeat", "1"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=230, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    for pattern in EXPECTED:
        assert any(re.fullmatch(pattern, line) for line in lines), (pattern, done.stdout)
