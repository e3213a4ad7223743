"""A smoke run of bench/transfer.py: it runs end to end and prints every figure.

No timing is asserted: the benchmark's output is its result (see the script's docstring).
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.support.cli import REPO_ROOT

EXPECTED = [
    r"Postern transfer benchmark: dropbox-transfer pull vs a plain HTTP download",
    r"  work dir +/\S+ \((tmpfs|ext4|xfs|btrfs|overlay|\w+)\)",
    r"  content +4 envelopes, 8 MiB of content in all",
    r"  envelopes +\d+\.\d MiB on the server",
    r"  plain HTTP download of the same blobs +\d+\.\d{3} +\d+\.\d",
    r"  transfer client pull \(signed, verified\) +\d+\.\d{3} +\d+\.\d",
    r"  pull --no-verify \(the station verifies\) +\d+\.\d{3} +\d+\.\d",
    r"  the same, as the dropbox-transfer command +\d+\.\d{3} +\d+\.\d   \(.*\)",
    r"ratio: pull throughput / plain download throughput = \d+\.\d%",
    r"ratio \(information\): pull --no-verify / plain download = \d+\.\d%",
    r"(PASS|FAIL) pull >= 70% of a plain HTTP download of the same bytes: \d+\.\d%",
]


@pytest.mark.timeout(180)
@pytest.mark.parametrize("media", [False, True])
def test_smoke_run_prints_every_figure(tmp_path, media):
    extra = ["--media", str(tmp_path)] if media else []
    done = subprocess.run(
        [sys.executable, "-W", "error", "bench/transfer.py", "--size-mib", "8", "--items", "4",
         "--repeat", "1", *extra],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=170, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    for pattern in EXPECTED:
        assert any(re.fullmatch(pattern, line) for line in lines), (pattern, done.stdout)
    [written] = [line for line in lines if line.startswith("  written to ")]
    if media:
        assert written.startswith(f"  written to    {tmp_path}/postern-bench-media-")
    assert list(tmp_path.iterdir()) == []  # nothing left behind
