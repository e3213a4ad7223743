"""bench/source.py: a smoke run with tiny sizes, plus the pieces that need no clock.

Timings are never asserted: the benchmark's numbers are its output, not conditions of the
test suite.
"""

from __future__ import annotations

import hashlib
import io
import re
import subprocess
import sys
from pathlib import Path

import pytest
from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder, NeedData

from bench.source import Content, make_form, percentile
from bench.source_server import discard_app

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "source.py"
NUMBER = r"\d+(\.\d+)?"
VERDICT = "(PASS|FAIL)"

# One pattern per line the run must print (each matched against a whole line).
EXPECTED_LINES = [
    r"Postern source interface benchmark: .*",
    r"  cpu +\S.*",
    r"  cores +\d+ online, \d+ usable by this process",
    r"  python +3\.\d+\.\d+ .*",
    r"  gunicorn +\S+, gthread, 1 worker, \d+ threads",
    r"  cryptography +\d+\.\d+.*\(OpenSSL .*\)",
    r"  work dir +/\S+ \(\S+\)",
    r"  postern +dropbox serve on 127\.0\.0\.1:\d+ \(worker pid \d+\)",
    r"  +POSTERN_LOGIN_DERIVATIONS_PER_MINUTE=\d+",
    r"  +POSTERN_MAX_NOJS_REQUEST_BYTES=\d+",
    r"  baseline +python -m bench\.source_server on 127\.0\.0\.1:\d+ \(worker pid \d+\)",
    r"  upload +8 MiB file in a multipart body .*, best of 1",
    r"  slow clients +5 x 64 KiB at 200 KB/s, GET / every 50 ms, bound 60 s",
    r"no-JS upload of a 8 MiB file \(best wall time of 1\)",
    rf"  baseline: discard app, same gunicorn( +{NUMBER}){{7}}",
    rf"  info: discard app, 1 MiB reads( +{NUMBER}){{7}}",
    rf"  POST /submit \(seal and store\)( +{NUMBER}){{7}}",
    r"  stored envelope opened with the station key: 1 of 1 had the right",
    rf"  idle +\d+( +{NUMBER}){{4}} +0",
    rf"  during 5 slow uploads +\d+( +{NUMBER}){{4}} +\d+",
    rf"slow uploads: 5 clients, 64 KiB each at 200 KB/s \(ideal {NUMBER} s\)",
    rf"  accounts +5 made over HTTP in {NUMBER} s",
    r"  completed +5 of 5 were accepted \(303 to the confirmation page\)",
    rf"  duration +min {NUMBER} s, p50 {NUMBER} s, max {NUMBER} s; phase {NUMBER} s .*",
    r"  verified +5 of 5 envelopes open with the station key",
    r"  errors +0",
    r"  landing HTML / +\d+",
    r"  CSS /static/css/\S+\.css +\d+",
    r"  landing HTML \+ CSS +\d+",
    r"  JS dropbox/static/js/\S+ +\d+",
    r"  all JS under dropbox/static/js +\d+",
    rf"  /submit throughput vs discard baseline: {NUMBER}%",
    rf"  /submit worker CPU vs discard baseline: ({NUMBER}|inf)x",
    rf"  /submit throughput vs discard baseline with 1 MiB reads \(info\): {NUMBER}%",
    rf"  discard with 1 MiB reads vs discard baseline \(info\): {NUMBER}x",
    rf"  landing p99 during slow uploads vs idle: ({NUMBER}|inf)x",
    rf"  {VERDICT} no-JS upload >= 60% of the discard baseline: {NUMBER}%",
    rf"  {VERDICT} worker RSS growth during the upload < 64 MiB: -?{NUMBER} MiB",
    r"  PASS the uploaded envelope decrypts to the right size and SHA-256: 1 of 1",
    rf"  {VERDICT} landing p99 < 250 ms during 5 slow uploads: {NUMBER} ms",
    r"  PASS no errors during the slow uploads: 0",
    r"  PASS every slow upload completed and decrypts: 5 of 5",
    r"  PASS landing HTML \+ CSS < 20 KB: \d+ B",
    r"  (PASS|FAIL) all JavaScript < 40 KB: \d+ B",
    r"summary: \d of 8 targets pass",
]


@pytest.mark.timeout(90)
def test_smoke_run_prints_every_figure():
    result = subprocess.run(
        [sys.executable, "-W", "error", str(SCRIPT), "--size-mib", "8", "--clients", "5",
         "--upload-kib", "64", "--rate-kbps", "200"],
        capture_output=True, text=True, timeout=80, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    missing = [p for p in EXPECTED_LINES if not any(re.fullmatch(p, line) for line in lines)]
    assert not missing, f"lines not printed: {missing}\n{result.stdout}"


def _joined(content: Content, piece: int, start: int = 0, stop: int | None = None) -> bytes:
    return b"".join(bytes(view) for view in content.pieces(piece, start, stop))


def test_content_repeats_the_block_from_its_offset():
    block = bytes(range(256)) * 4  # 1024 bytes
    content = Content(block, 3000, offset=1000)
    expected = (block * 5)[1000:4000]
    assert _joined(content, 333) == expected
    assert _joined(content, 4096, 10, 2500) == expected[10:2500]
    assert _joined(content, 64, 2990, 9999) == expected[2990:]
    assert all(len(view) <= 333 for view in content.pieces(333))
    assert content.sha256() == hashlib.sha256(expected).hexdigest()


def test_the_form_is_the_multipart_body_a_browser_sends():
    content = Content(b"\x00\r\n--abc" * 100, 1234)
    form = make_form("token-123", "bench.bin", content)
    body = form.head + _joined(content, 100) + form.tail
    assert len(body) == form.length
    decoder = MultipartDecoder(form.boundary.encode("ascii"))
    decoder.receive_data(body)
    decoder.receive_data(None)
    parts: list[tuple[str, bool, bytes]] = []
    while not isinstance(event := decoder.next_event(), Epilogue):
        assert not isinstance(event, NeedData)
        if isinstance(event, Field | File):
            parts.append((event.name, isinstance(event, File), b""))
        elif isinstance(event, Data):
            name, is_file, data = parts[-1]
            parts[-1] = (name, is_file, data + event.data)
    assert parts == [
        ("csrf_token", False, b"token-123"),
        ("message", False, b""),
        ("files", True, _joined(content, 4096)),
    ]


def test_percentile_is_the_nearest_rank():
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.50) == 50.0
    assert percentile(values, 0.99) == 99.0
    assert percentile(values[::-1], 0.95) == 95.0
    assert percentile([7.0], 0.99) == 7.0
    assert percentile([], 0.5) == 0.0


def test_the_baseline_app_reads_the_body_and_keeps_nothing():
    answers: list[str] = []

    def start_response(status, headers, exc_info=None):
        answers.append(status)
        return lambda data: None

    body = b"x" * 200_000
    environ = {"wsgi.input": io.BytesIO(body + b"never read"), "CONTENT_LENGTH": str(len(body))}
    assert b"".join(discard_app(environ, start_response)) == b"discarded 200000 bytes\n"
    assert answers == ["200 OK"]
    environ["wsgi.input"] = io.BytesIO(body)
    environ["QUERY_STRING"] = "read=1048576"
    assert b"".join(discard_app(environ, start_response)) == b"discarded 200000 bytes\n"
    environ = {"wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": ""}
    assert b"".join(discard_app(environ, start_response)) == b"discarded 200000 bytes\n"
