"""A smoke run of bench/station.py at a tiny size: it runs end to end and prints every figure.

No timing is asserted: the benchmark's output is its result (see the script's docstring).
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.support.cli import REPO_ROOT

NUMBER = r"\d+\.\d+"
EXPECTED = [
    r"Postern station benchmark",
    r"  content +40 messages and 3 files, 4 MiB in all",
    rf"  bundle +{NUMBER} MiB, built in {NUMBER} s",
    r"  rounds +2, interleaved; best of each below",
    rf"  baseline: bare crypto core decrypts every envelope +{NUMBER} +{NUMBER} +{NUMBER}",
    rf"  import: verify, store, decrypt once, record +{NUMBER} +{NUMBER} +{NUMBER}",
    rf"  info: copy of the bundle file on the same disk, synced +{NUMBER}",
    r"  triage store  200 sources, 300 messages, filled in \d+\.\d s",
    rf"  source list GET / \(200 sources\) +{NUMBER} +{NUMBER}",
    rf"  search GET /search\?q=\w+ +{NUMBER} +{NUMBER}",
    (
        rf"  rounds \(s\) +bare {NUMBER} import {NUMBER} = {NUMBER}x; "
        rf"bare {NUMBER} import {NUMBER} = {NUMBER}x"
    ),
    (
        rf"  import phases \(best round, s\): receive {NUMBER}, spool {NUMBER}, decrypt {NUMBER}, "
        rf"record {NUMBER}, index {NUMBER}, publish {NUMBER}; bare decryption {NUMBER}"
    ),
    r"  one more import under cProfile \(not counted\), top functions:",
    rf"  load average  ({NUMBER}, ){{4}}{NUMBER} \(1 min, before and after each run; \d+ cores\)",
    (
        rf"ratio: import time / bare decryption time = {NUMBER}x \(best of 2; CPU time ratio "
        rf"{NUMBER}x, median paired ratio {NUMBER}x\)"
    ),
    rf"(PASS|FAIL) import <= 2x the bare decryption of the same envelopes: {NUMBER}x",
    r"(PASS|FAIL) source list < 100 ms: \d+ ms",
    r"(PASS|FAIL) search < 100 ms: \d+ ms",
]


@pytest.mark.timeout(240)
def test_smoke_run_prints_every_figure():
    done = subprocess.run(
        [sys.executable, "-W", "error", "bench/station.py", "--messages", "40", "--files", "3",
         "--size-mib", "4", "--sources", "200", "--triage-messages", "300", "--repeat", "2",
         "--profile"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=230, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    for pattern in EXPECTED:
        assert any(re.fullmatch(pattern, line) for line in lines), (pattern, done.stdout)
    # The cProfile listing names the import's own functions.
    assert any("journalist_ui/importer/" in line for line in lines), done.stdout
