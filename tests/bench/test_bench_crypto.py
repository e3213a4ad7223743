"""bench/crypto.py: a smoke run on a tiny size, plus the pieces that need no clock.

Timings are never asserted: the benchmark's numbers are its output, not conditions of the
test suite.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bench.crypto import BLOCK_SIZE, ChildMemory, DiscardSink, RepeatingSource, report
from tests.conftest import require_tool

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "crypto.py"
NUMBER = r"\d+(\.\d+)?"

# One pattern per line the run must print (each matched against a whole line).
EXPECTED_LINES = [
    r"  cpu +\S.*",
    r"  cores +\d+ online, \d+ usable by this process",
    r"  python +3\.\d+\.\d+ .*",
    r"  cryptography +\d+\.\d+.*\(OpenSSL .*\)",
    r"  gnupg +gpg \(GnuPG\) .*",
    r"  content +8 MiB per operation, best of 1",
    rf"  envelope +{NUMBER} MiB payload \(Padmé padding \+{NUMBER}%\), header 154 B, .*",
    rf"  gpg key +RSA-2048, generated in {NUMBER} s",
    rf"  seal +core +Sealer\.seal_stream, 1 recipient, FILE +{NUMBER} +\d+ +\d+",
    rf"  seal +a1 +raw AESGCM\.encrypt, in memory +{NUMBER} +\d+ +\d+",
    rf"  seal +a1 +raw AESGCM\.encrypt_into, in memory +{NUMBER} +\d+ +\d+",
    rf"  seal +a2 +raw AESGCM\.encrypt_into, same I/O +{NUMBER} +\d+ +\d+",
    rf"  seal +b +gpg --encrypt, defaults +{NUMBER} +\d+ +\d+",
    rf"  seal +info +gpg --encrypt -z 0 \(no compression\) +{NUMBER} +\d+ +\d+",
    rf"  open +core +open_envelope\(\)\.write_to +{NUMBER} +\d+ +\d+",
    rf"  open +a1 +raw AESGCM\.decrypt, in memory +{NUMBER} +\d+ +\d+",
    rf"  open +a1 +raw AESGCM\.decrypt_into, in memory +{NUMBER} +\d+ +\d+",
    rf"  open +a2 +raw AESGCM\.decrypt_into, same I/O and file +{NUMBER} +\d+ +\d+",
    rf"  open +b +gpg --decrypt, defaults +{NUMBER} +\d+ +\d+",
    rf"  open +core +open_file_parallel, workers=1 +{NUMBER} +\d+ +\d+",
    rf"  open +core +open_file_parallel, workers=2 +{NUMBER} +\d+ +\d+",
    rf"  open +info +raw AESGCM\.decrypt_into, in memory, 1 process +{NUMBER} +\d+ +\d+",
    rf"  open +info +raw AESGCM\.decrypt_into, in memory, 2 processes +{NUMBER} +\d+ +\d+",
    rf"  idle \(interpreter and imports only\) +{NUMBER} +- +{NUMBER} +{NUMBER} +\d+",
    rf"  seal 8 MiB +{NUMBER} +- +{NUMBER} +{NUMBER} +\d+",
    rf"  open 8 MiB +{NUMBER} +- +{NUMBER} +{NUMBER} +\d+",
    rf"  open 8 MiB, 2 workers +{NUMBER} +{NUMBER} +{NUMBER} +{NUMBER} +\d+",
    rf"  seal vs raw AES-GCM in memory \(a1, faster API\): {NUMBER}%",
    rf"  seal vs raw AES-GCM same I/O \(a2\): {NUMBER}%",
    rf"  seal vs gpg --encrypt \(b\): {NUMBER}x",
    rf"  seal vs gpg --encrypt -z 0 \(info\): {NUMBER}x",
    rf"  open vs raw AES-GCM in memory \(a1, faster API\): {NUMBER}%",
    rf"  open vs raw AES-GCM same I/O \(a2\): {NUMBER}%",
    rf"  open vs gpg --decrypt \(b\): {NUMBER}x",
    rf"  open 2 workers vs 1 worker: {NUMBER}x",
    rf"  raw AES-GCM 2 processes vs 1 \(info, what the machine allows\): {NUMBER}x",
    rf"  (PASS|FAIL) seal >= 70% of raw AES-GCM single-core \(a2\): {NUMBER}%",
    rf"  (PASS|FAIL) open >= 70% of raw AES-GCM single-core \(a2\): {NUMBER}%",
    rf"  (PASS|FAIL) open on 2 cores faster than on 1: {NUMBER}x",
    rf"  (PASS|FAIL) seal >= 5x gpg --encrypt: {NUMBER}x",
    rf"  (PASS|FAIL) open >= 5x gpg --decrypt: {NUMBER}x",
    rf"  (PASS|FAIL) peak RSS < 64 MiB, seal 8 MiB: {NUMBER} MiB",
    rf"  (PASS|FAIL) peak RSS < 64 MiB, open 8 MiB: {NUMBER} MiB",
    rf"  (PASS|FAIL) peak RSS < 64 MiB, open 8 MiB, 2 workers: {NUMBER} MiB",
    r"summary: \d of 8 targets pass",
]


@pytest.mark.timeout(90)
def test_smoke_run_prints_every_figure():
    require_tool("gpg")
    result = subprocess.run(
        [sys.executable, "-W", "error", str(SCRIPT), "--size-mib", "8", "--repeat", "1",
         "--gpg-bits", "2048"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    missing = [p for p in EXPECTED_LINES if not any(re.fullmatch(p, line) for line in lines)]
    assert not missing, f"lines not printed: {missing}\n{result.stdout}"


def test_source_repeats_the_block_up_to_the_size():
    block = bytes(range(256)) * (BLOCK_SIZE // 256)
    size = 2 * BLOCK_SIZE + 12345
    source = RepeatingSource(block, size)
    out = bytearray()
    buffer = bytearray(3 * 1000 * 1000)  # not a divisor of the block: reads straddle it
    while got := source.readinto(buffer):
        out += buffer[:got]
    assert len(out) == size
    assert out == (block * 3)[:size]
    assert source.readinto(buffer) == 0


def test_sink_counts_and_drops():
    sink = DiscardSink()
    assert sink.write(b"abc") == 3
    assert sink.write(memoryview(bytearray(10)).cast("B")) == 10
    assert sink.count == 13


def _best(core: float, w2: float, gpg: float) -> dict[str, float]:
    """Best times: every baseline takes 1 s (gpg: gpg s), the core core s, 1 worker 2 s."""
    best = dict.fromkeys(("seal_a1_alloc", "seal_a1_into", "open_a1_alloc", "open_a1_into"), 1.0)
    best.update(seal_a2=1.0, open_a2=1.0, seal_gpg=gpg, seal_gpg_z0=gpg, open_gpg=gpg)
    best.update(open_p1=2.0, open_p2=1.0)
    return {**best, "seal": core, "open": core, "open_w1": 2.0, "open_w2": w2}


def _memory(mib: float) -> dict[str, ChildMemory]:
    return {mode: ChildMemory(mib, mib / 2, mib) for mode in ("idle", "seal", "open", "open2")}


ARGS = argparse.Namespace(size_mib=8, repeat=1)


def test_report_all_targets_pass(capsys):
    assert report(ARGS, 8 << 20, _best(1.25, 1.0, 10.0), _memory(40.0)) == 0
    out = capsys.readouterr().out
    assert "FAIL" not in out
    assert "  PASS seal >= 70% of raw AES-GCM single-core (a2): 80.0%" in out
    assert "  PASS seal >= 5x gpg --encrypt: 8.00x" in out
    assert "summary: 8 of 8 targets pass" in out


def test_report_counts_failed_targets(capsys):
    assert report(ARGS, 8 << 20, _best(2.0, 3.0, 9.0), _memory(70.0)) == 8
    out = capsys.readouterr().out
    assert "PASS" not in out
    assert "  FAIL open >= 70% of raw AES-GCM single-core (a2): 50.0%" in out
    assert "  FAIL open on 2 cores faster than on 1: 0.67x" in out
    assert "  FAIL open >= 5x gpg --decrypt: 4.50x" in out
    assert "  FAIL peak RSS < 64 MiB, open 8 MiB, 2 workers: 70.0 MiB" in out
    assert "summary: 0 of 8 targets pass" in out
