"""dropbox.nojs: the plain form is sealed as it streams in, and refused requests leave nothing."""

from __future__ import annotations

import io
import os
import random
import secrets
import sqlite3
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from crypto import KeyKind, Kind, Metadata, PrivateKey, open_envelope
from dropbox.filetimes import DISCARDED_PREFIX
from dropbox.nojs import (
    MAX_HEADER_BYTES,
    READ_SIZE,
    NoJsError,
    NoJsLimits,
    NoJsResult,
    seal_form,
)
from dropbox.storage import LocalBlobStore, OutOfSpace
from tests.support.disk_scan import files_containing, scan_start

BOUNDARY = "----PosternTestBoundary7MA4YWxkTrZu0gW"
CONTENT_TYPE = f"multipart/form-data; boundary={BOUNDARY}"
CSRF_VALUE = "c3JmLXRva2VuLWZvci10ZXN0cw"
MiB = 1024 * 1024
LIMITS = NoJsLimits(
    max_request_bytes=16 * MiB, max_message_chars=100_000, max_files=5, max_drain_bytes=32 * MiB
)


# -- building bodies -------------------------------------------------------------------------


def field_part(name: str, value: bytes | str) -> bytes:
    data = value.encode("utf-8") if isinstance(value, str) else value
    return f'Content-Disposition: form-data; name="{name}"\r\n\r\n'.encode() + data


def file_part(
    filename: str | bytes,
    data: bytes,
    content_type: str | None = "application/octet-stream",
    name: str = "files",
) -> bytes:
    raw_name = filename if isinstance(filename, bytes) else filename.encode("utf-8")
    headers = f'Content-Disposition: form-data; name="{name}"; filename="'.encode()
    headers += raw_name + b'"\r\n'
    if content_type is not None:
        headers += f"Content-Type: {content_type}\r\n".encode()
    return headers + b"\r\n" + data


def multipart(*parts: bytes, boundary: str = BOUNDARY) -> bytes:
    delimiter = b"--" + boundary.encode()
    out = b"".join(delimiter + b"\r\n" + part + b"\r\n" for part in parts)
    return out + delimiter + b"--\r\n"


def csrf(token: str = CSRF_VALUE) -> bytes:
    return field_part("csrf_token", token)


def content(size: int, seed: int = 0) -> bytes:
    """Bytes that look like a real file and hold CR, LF and boundary-like runs."""
    rng = random.Random(seed)  # noqa: S311 - reproducible test data, not a secret
    pattern = bytes(rng.randrange(256) for _ in range(4093)) + b"\r\n--\r\n--" + b"\r" * 3
    return (pattern * (size // len(pattern) + 1))[:size]


# -- streams and stores ----------------------------------------------------------------------


class TinyReads(io.BytesIO):
    """A stream that returns 1 to 7 bytes per read, like a slow network."""

    def __init__(self, data: bytes, seed: int = 1) -> None:
        super().__init__(data)
        self._rng = random.Random(seed)  # noqa: S311 - reproducible read sizes

    def read(self, size: int | None = -1, /) -> bytes:
        want = self._rng.randint(1, 7)
        if size is not None and size >= 0:
            want = min(want, size)
        return super().read(want)


class SplitReads(io.BytesIO):
    """A stream whose first read ends exactly at ``cut``."""

    def __init__(self, data: bytes, cut: int) -> None:
        super().__init__(data)
        self._cut = cut

    def read(self, size: int | None = -1, /) -> bytes:
        at = self.tell()
        if at < self._cut and size is not None and size >= 0:
            size = min(size, self._cut - at)
        return super().read(size)


@dataclass
class CsrfCheck:
    token: str = CSRF_VALUE
    calls: list[str] = field(default_factory=list)
    on_call: Callable[[], None] | None = None

    def __call__(self, value: str) -> bool:
        self.calls.append(value)
        if self.on_call is not None:
            self.on_call()
        return secrets.compare_digest(value.encode(), self.token.encode())


@pytest.fixture(scope="module")
def keys() -> list[PrivateKey]:
    return [PrivateKey.generate(KeyKind.ENCRYPTION, f"journalist {i}") for i in range(2)]


@pytest.fixture
def store(tmp_path: Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "store")


def store_files(store: LocalBlobStore) -> list[str]:
    """Every file in the store's directory, blobs and temporaries alike (but the discarded:
    emptied, they wait for the daily blur to be unlinked)."""
    return sorted(n for n in os.listdir(store.root) if not n.startswith(DISCARDED_PREFIX))


def submit(
    body: bytes,
    store: LocalBlobStore,
    keys: list[PrivateKey],
    *,
    stream: io.BytesIO | None = None,
    content_length: int | str | None = "auto",
    content_type: str = CONTENT_TYPE,
    limits: NoJsLimits = LIMITS,
    check: CsrfCheck | None = None,
    record: Callable[[NoJsResult], None] = lambda result: None,
) -> NoJsResult:
    length = len(body) if content_length == "auto" else content_length
    assert not isinstance(length, str)
    return seal_form(
        io.BytesIO(body) if stream is None else stream,
        content_type,
        length,
        check_csrf=CsrfCheck() if check is None else check,
        recipients=[key.public.key for key in keys],
        store=store,
        limits=limits,
        record=record,
    )


def refused(
    code: str,
    body: bytes,
    store: LocalBlobStore,
    keys: list[PrivateKey],
    **kwargs: object,
) -> NoJsError:
    """Submit, expect NoJsError(code), and check that nothing remains and nothing leaks."""
    with pytest.raises(NoJsError) as info:
        submit(body, store, keys, **kwargs)  # type: ignore[arg-type]
    error = info.value
    assert error.code == code
    assert store_files(store) == []
    # No chained exception could carry body bytes into a traceback.
    assert error.__cause__ is None
    assert error.__context__ is None
    return error


def opened(store: LocalBlobStore, blob_id: str, keys: list[PrivateKey]) -> tuple[Metadata, bytes]:
    with store.open(blob_id) as handle:
        envelope = open_envelope(handle, [key.secret for key in keys])
        return envelope.metadata, envelope.read_all()


# -- success ---------------------------------------------------------------------------------


def test_message_only(store, keys):
    text = "Der Bericht liegt bei. Привіт.\r\nSecond line."
    result = submit(multipart(csrf(), field_part("message", text)), store, keys)
    assert [item.kind for item in result.items] == ["message"]
    item = result.items[0]
    metadata, data = opened(store, item.blob_id, keys[1:])
    assert data == text.encode("utf-8")
    assert metadata == Metadata(Kind.MESSAGE, len(data), "", "text/plain; charset=utf-8")
    assert item.size == store.size(item.blob_id)
    assert store_files(store) == [item.blob_id]


def test_message_and_two_files(store, keys):
    one, two = content(70_000, seed=1), content(5, seed=2)
    body = multipart(
        csrf(),
        field_part("message", "see the files"),
        file_part("report.pdf", one, "application/pdf"),
        file_part("Übersicht 2026.xlsx", two, None),
    )
    result = submit(body, store, keys)
    assert [item.kind for item in result.items] == ["message", "file", "file"]
    expected = [
        (Metadata(Kind.MESSAGE, 13, "", "text/plain; charset=utf-8"), b"see the files"),
        (Metadata(Kind.FILE, len(one), "report.pdf", "application/pdf"), one),
        (Metadata(Kind.FILE, len(two), "Übersicht 2026.xlsx", "application/octet-stream"), two),
    ]
    assert [opened(store, item.blob_id, keys) for item in result.items] == expected
    assert sorted(store_files(store)) == sorted(item.blob_id for item in result.items)


def test_message_after_files_still_comes_first(store, keys):
    body = multipart(csrf(), file_part("a.txt", b"a"), field_part("message", "hello"))
    result = submit(body, store, keys)
    assert [item.kind for item in result.items] == ["message", "file"]
    assert opened(store, result.items[0].blob_id, keys)[1] == b"hello"


@pytest.mark.parametrize("size", [0, 1, 65535, 65536, 65537, 3 * MiB])
def test_file_sizes(store, keys, size):
    data = content(size, seed=size)
    result = submit(multipart(csrf(), file_part("evidence.bin", data, "video/mp4")), store, keys)
    [item] = result.items
    metadata, opened_data = opened(store, item.blob_id, keys)
    assert opened_data == data
    assert metadata == Metadata(Kind.FILE, size, "evidence.bin", "video/mp4")
    assert item.kind == "file"
    assert item.size == store.size(item.blob_id)


def test_content_length_unknown_reads_to_the_end(store, keys):
    data = content(200_000)
    result = submit(multipart(csrf(), file_part("x", data)), store, keys, content_length=None)
    assert opened(store, result.items[0].blob_id, keys)[1] == data


def test_reads_no_further_than_content_length(store, keys):
    body = multipart(csrf(), field_part("message", "hi"))
    stream = io.BytesIO(body + b"NEXT REQUEST ON THE SAME CONNECTION")
    submit(body, store, keys, stream=stream)
    assert stream.tell() == len(body)


def test_empty_file_parts_are_skipped(store, keys):
    """A browser sends one part with an empty name and no content per unused file input."""
    body = multipart(
        csrf(),
        field_part("message", "only text"),
        file_part("", b""),
        file_part("", b""),
    )
    result = submit(body, store, keys)
    assert [item.kind for item in result.items] == ["message"]
    assert len(store_files(store)) == 1


def test_unnamed_file_with_content_is_kept(store, keys):
    result = submit(multipart(csrf(), file_part("", b"data", None)), store, keys)
    metadata, data = opened(store, result.items[0].blob_id, keys)
    assert (metadata.filename, metadata.media_type, data) == (
        "",
        "application/octet-stream",
        b"data",
    )


def test_empty_message_is_skipped(store, keys):
    body = multipart(csrf(), field_part("message", ""), file_part("a", b"1"))
    assert [item.kind for item in submit(body, store, keys).items] == ["file"]


def tiny_body() -> bytes:
    return multipart(
        csrf(),
        field_part("message", "Grüße\r\nline two ends with CR\r\r\n-- €"),
        file_part("one.bin", content(70_000, seed=3), "image/png"),
        file_part("", b""),
        file_part("two.txt", b"\r\n--\r\n" + BOUNDARY.encode()[:-1] + b"\r", "text/plain"),
        file_part("zero.txt", b""),
    )


def contents(store: LocalBlobStore, keys: list[PrivateKey], result: NoJsResult) -> list[object]:
    return [(item.kind, *opened(store, item.blob_id, keys)) for item in result.items]


def test_tiny_reads_give_the_same_result(tmp_path, keys):
    body = tiny_body()
    normal, tiny = LocalBlobStore(tmp_path / "a"), LocalBlobStore(tmp_path / "b")
    expected = contents(normal, keys, submit(body, normal, keys))
    assert len(expected) == 4
    for seed in range(3):
        stream = TinyReads(body, seed)
        result = submit(body, tiny, keys, stream=stream, content_length=None)
        assert contents(tiny, keys, result) == expected
        assert stream.tell() == len(body)


@pytest.mark.slow
def test_every_split_point_gives_the_same_result(tmp_path, keys):
    """A read may end anywhere: inside a CR LF, a boundary, a header or a UTF-8 sequence."""
    body = multipart(
        csrf(),
        field_part("message", "é\r\n€\r"),
        file_part("f.txt", b"a\r\n--" + BOUNDARY.encode()[:5] + b"\r\n\r", "text/plain"),
        file_part("", b""),
    )
    reference = LocalBlobStore(tmp_path / "reference")
    expected = contents(reference, keys, submit(body, reference, keys))
    for cut in range(1, len(body)):
        store = LocalBlobStore(tmp_path / f"cut{cut}")
        result = submit(body, store, keys, stream=SplitReads(body, cut))
        assert contents(store, keys, result) == expected, cut


def test_message_limit_counts_characters(store, keys):
    limits = NoJsLimits(
        max_request_bytes=MiB, max_message_chars=10, max_files=1, max_drain_bytes=MiB
    )
    texts = ["a" * 10, "é" * 10, "€" * 10, "😀" * 10, "a\r\n" * 3 + "bcde", "\r\n" * 10]
    for text in texts:
        body = multipart(csrf(), field_part("message", text))
        for stream in [
            io.BytesIO(body),
            TinyReads(body),
            SplitReads(body, body.index(text.encode()) + 1),
        ]:
            result = submit(body, store, keys, limits=limits, stream=stream)
            assert opened(store, result.items[0].blob_id, keys)[1] == text.encode()


# -- plaintext never touches disk -------------------------------------------------------------


class ScanHalfway(io.BytesIO):
    """Once half the body has been read, scan the disk for the marker (while sealing)."""

    def __init__(self, data: bytes, scan: Callable[[], None]) -> None:
        super().__init__(data)
        self._half = len(data) // 2
        self._scan: Callable[[], None] | None = scan

    def read(self, size: int | None = -1, /) -> bytes:
        if self._scan is not None and self.tell() >= self._half:
            scan, self._scan = self._scan, None
            scan()
        return super().read(size)


@pytest.mark.slow
def test_plaintext_never_touches_disk(tmp_path, store, keys):
    marker = f"PLAINTEXT-MARKER-{secrets.token_hex(12)}|".encode()
    roots = [tmp_path, Path(tempfile.gettempdir())]
    since = scan_start()
    body = multipart(
        csrf(),
        field_part("message", marker * 2000),
        file_part("first.bin", marker * (MiB // len(marker))),
        file_part(marker.decode() + ".txt", marker * (3 * MiB // len(marker)), "text/plain"),
    )
    assert body.count(marker) > 100_000

    # The scanner finds the marker when it is there.
    control = tmp_path / "control"
    control.write_bytes(b"x" * 5 + marker)
    assert files_containing(roots, marker, since) == [control]
    control.unlink()

    halfway: dict[str, object] = {}

    def scan() -> None:
        halfway["found"] = files_containing(roots, marker, since)
        halfway["store"] = {name: (store.root / name).stat().st_size for name in store_files(store)}

    result = submit(body, store, keys, stream=ScanHalfway(body, scan), content_length=None)
    assert halfway["found"] == []
    # Halfway through the second file, its ciphertext is already being written.
    in_store = halfway["store"]
    assert isinstance(in_store, dict)
    incoming = [size for name, size in in_store.items() if name.startswith(".incoming-")]
    assert len(incoming) == 1
    assert incoming[0] > MiB // 2
    assert len(in_store) == 3  # the message and the first file are committed already
    assert files_containing(roots, marker, since) == []
    assert len(result.items) == 3
    assert all(marker in opened(store, item.blob_id, keys)[1] for item in result.items)


# -- refusals --------------------------------------------------------------------------------


def test_csrf_must_be_the_first_part(store, keys):
    check = CsrfCheck()
    body = multipart(field_part("message", "hello"), csrf())
    refused("csrf", body, store, keys, check=check)
    assert check.calls == []


def test_csrf_wrong_token(store, keys):
    check = CsrfCheck()
    refused("csrf", multipart(csrf("wrong"), field_part("message", "x")), store, keys, check=check)
    assert check.calls == ["wrong"]


@pytest.mark.parametrize(
    "body",
    [
        multipart(),  # no parts at all
        multipart(field_part("csrf", CSRF_VALUE), field_part("message", "x")),
        multipart(file_part(CSRF_VALUE, b"", name="csrf_token"), field_part("message", "x")),
        multipart(csrf("A" * 5000), field_part("message", "x")),
    ],
    ids=["no-parts", "other-name", "as-file", "overlong"],
)
def test_csrf_missing(store, keys, body):
    check = CsrfCheck()
    refused("csrf", body, store, keys, check=check)
    assert check.calls == []


def test_csrf_checked_before_anything_else(store, keys):
    def nothing_stored_yet() -> None:
        assert store_files(store) == []

    check = CsrfCheck(on_call=nothing_stored_yet)
    body = multipart(csrf(), file_part("a", content(3 * MiB)), field_part("message", "m"))
    assert len(submit(body, store, keys, check=check).items) == 2
    assert check.calls == [CSRF_VALUE]


def test_too_large_mid_file(store, keys):
    """Message stored, file half sealed: all of it goes, and the body is read to its end."""
    limits = NoJsLimits(
        max_request_bytes=MiB, max_message_chars=100, max_files=5, max_drain_bytes=32 * MiB
    )
    body = multipart(
        csrf(),
        field_part("message", "hello"),
        file_part("small", b"s" * 1000),
        file_part("big", content(5 * MiB)),
    )
    stream = io.BytesIO(body)
    check = CsrfCheck()
    refused(
        "too_large",
        body,
        store,
        keys,
        stream=stream,
        limits=limits,
        content_length=None,
        check=check,
    )
    assert check.calls == [CSRF_VALUE]  # it was processing when the limit struck
    assert stream.tell() == len(body)


def test_too_large_drain_is_capped(store, keys):
    limits = NoJsLimits(
        max_request_bytes=MiB, max_message_chars=100, max_files=5, max_drain_bytes=300_000
    )
    body = multipart(csrf(), file_part("big", content(5 * MiB)))
    stream = io.BytesIO(body)
    refused("too_large", body, store, keys, stream=stream, limits=limits, content_length=None)
    # At most one piece beyond the limit was read while processing, then the drain cap.
    assert MiB + 300_000 < stream.tell() <= MiB + READ_SIZE + 300_000


def test_too_large_content_length_refused_before_reading(store, keys):
    limits = NoJsLimits(
        max_request_bytes=MiB, max_message_chars=100, max_files=5, max_drain_bytes=32 * MiB
    )
    body = multipart(csrf(), file_part("big", content(2 * MiB)))
    stream, check = io.BytesIO(body), CsrfCheck()
    refused("too_large", body, store, keys, stream=stream, limits=limits, check=check)
    assert check.calls == []
    assert stream.tell() == len(body)

    capped = NoJsLimits(max_request_bytes=MiB, max_message_chars=1, max_files=1, max_drain_bytes=10)
    stream = io.BytesIO(body)
    refused("too_large", body, store, keys, stream=stream, limits=capped)
    assert stream.tell() == 10


def test_other_refusals_drain_too(store, keys):
    """A wrong token on a big upload still lets the server answer with a page."""
    body = multipart(csrf("wrong"), file_part("big", content(2 * MiB)))
    stream = io.BytesIO(body)
    refused("csrf", body, store, keys, stream=stream)
    assert stream.tell() == len(body)


@pytest.mark.parametrize("text", ["a" * 11, "é" * 11, "😀" * 11, "a\r\n" * 5 + "b", "\r" * 11])
def test_message_too_long(store, keys, text):
    limits = NoJsLimits(
        max_request_bytes=MiB, max_message_chars=10, max_files=5, max_drain_bytes=MiB
    )
    body = multipart(csrf(), file_part("before.txt", b"kept?"), field_part("message", text))
    refused("message_too_long", body, store, keys, limits=limits)


def test_message_limit_enforced_as_it_arrives(store, keys):
    limits = NoJsLimits(
        max_request_bytes=8 * MiB, max_message_chars=1000, max_files=5, max_drain_bytes=0
    )
    body = multipart(csrf(), field_part("message", "x" * (4 * MiB)))
    stream = io.BytesIO(body)
    refused("message_too_long", body, store, keys, stream=stream, limits=limits)
    assert stream.tell() <= 2 * READ_SIZE  # refused long before the field ended


def test_too_many_files(tmp_path, store, keys):
    limits = NoJsLimits(
        max_request_bytes=MiB, max_message_chars=10, max_files=2, max_drain_bytes=MiB
    )
    # Empty file parts do not count.
    ok = multipart(csrf(), file_part("a", b"1"), file_part("", b""), file_part("b", b"2"))
    assert len(submit(ok, LocalBlobStore(tmp_path / "ok"), keys, limits=limits).items) == 2
    files = [file_part(name, b"1") for name in "abc"]
    body = multipart(csrf(), field_part("message", "m"), *files)
    refused("too_many_files", body, store, keys, limits=limits)


@pytest.mark.parametrize(
    "body",
    [
        multipart(csrf()),
        multipart(csrf(), field_part("message", ""), file_part("", b"")),
    ],
    ids=["token-only", "empty-fields"],
)
def test_empty(store, keys, body):
    refused("empty", body, store, keys)


@pytest.mark.parametrize(
    "content_type",
    [
        "",
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data",
        "multipart/form-data; boundary=",
        "multipart/form-data; boundary=" + "b" * 71,
        'multipart/form-data; boundary="abc "',
        'multipart/form-data; boundary="ab<c>"',
        "multipart/mixed; boundary=" + BOUNDARY,
    ],
)
def test_malformed_content_type(store, keys, content_type):
    body = multipart(csrf(), field_part("message", "x"))
    refused("malformed", body, store, keys, content_type=content_type)


def test_boundary_that_is_not_in_the_body(store, keys):
    body = multipart(csrf(), field_part("message", "x"))
    refused("malformed", body, store, keys, content_type="multipart/form-data; boundary=other")


@pytest.mark.parametrize("content_length", [None, "auto"])
@pytest.mark.parametrize("keep", [0.3, 0.6, 0.99])
def test_truncated_body(store, keys, keep, content_length):
    full = multipart(
        csrf(), field_part("message", "hello"), file_part("a", b"1"), file_part("b", content(MiB))
    )
    cut = full[: int(len(full) * keep)]
    length = len(full) if content_length == "auto" else None
    refused("malformed", cut, store, keys, content_length=length)


@pytest.mark.parametrize(
    "raw",
    [b"\xff", b"caf\xc3", b"\xc0\xaf", b"\xed\xa0\x80", b"ok" * 40_000 + b"\xe2\x82"],
    ids=["ff", "truncated", "overlong", "surrogate", "truncated-late"],
)
def test_invalid_utf8_message(store, keys, raw):
    body = multipart(csrf(), file_part("a", b"1"), field_part("message", raw))
    refused("malformed", body, store, keys)
    refused("malformed", body, store, keys, stream=TinyReads(body), content_length=None)


@pytest.mark.parametrize(
    "part",
    [
        field_part("comment", "x"),
        field_part("files", "not a file"),
        file_part("m.txt", b"x", name="message"),
        field_part("message", "second message"),
        csrf(),
    ],
    ids=["unknown", "files-as-field", "message-as-file", "two-messages", "second-token"],
)
def test_unexpected_part(store, keys, part):
    body = multipart(csrf(), field_part("message", "first"), file_part("a", b"1"), part)
    refused("malformed", body, store, keys)


@pytest.mark.parametrize(
    "body",
    [
        b"--" + BOUNDARY.encode() + b"\r\nX-Nothing: here\r\n\r\nvalue\r\n--" + BOUNDARY.encode(),
        multipart(csrf(), b"X-Pad: " + b"p" * (READ_SIZE + MAX_HEADER_BYTES) + b"\r\n" + csrf()),
        b"-" * (READ_SIZE + MAX_HEADER_BYTES + 10),
        multipart(csrf(), field_part("message", "x")) + b"epilogue" * 20_000,
        b"",
    ],
    ids=["no-disposition", "huge-headers", "endless-preamble", "huge-epilogue", "empty-body"],
)
def test_malformed_bodies(store, keys, body):
    refused("malformed", body, store, keys)


def test_negative_content_length(store, keys):
    refused("malformed", multipart(csrf()), store, keys, content_length=-1)


def test_hostile_filenames_are_cleaned(store, keys):
    names: list[tuple[bytes, str]] = [
        (b"../../etc/passwd", "passwd"),
        (b"..\\..\\boot.ini", "boot.ini"),
        (b"C:\\Users\\alice\\report.doc", "report.doc"),
        (b"..", ".."),  # valid in the record: readers sanitize again (docs/format.md 3.5)
        (b"a\x01b\x1fc\x7fd\xc2\x85e.txt", "abcde.txt"),
        (b"\tspaced \t", "spaced"),
        (b"x" * 300 + b".txt", "x" * 255),
        ("é".encode() * 300, "é" * 127),
        (b"%22quoted%22.doc", '"quoted".doc'),
    ]
    body = multipart(csrf(), *(file_part(raw, b"data") for raw, _ in names))
    limits = NoJsLimits(max_request_bytes=MiB, max_message_chars=1, max_files=10, max_drain_bytes=0)
    result = submit(body, store, keys, limits=limits)
    got = [opened(store, item.blob_id, keys)[0].filename for item in result.items]
    assert got == [expected for _, expected in names]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("text/plain; charset=utf-8", "text/plain; charset=utf-8"),
        ("text/ht\x01ml\x7f", "text/html"),
        ("vidéo/mp4", "vido/mp4"),
        ("a" * 300, "a" * 127),
        ("  ", "application/octet-stream"),
        ("", "application/octet-stream"),
    ],
)
def test_media_type_is_sanitized(store, keys, header, expected):
    raw = file_part("f", b"x", None).replace(
        b"\r\n\r\n", f"\r\nContent-Type: {header}\r\n\r\n".encode(), 1
    )
    result = submit(multipart(csrf(), raw), store, keys)
    assert opened(store, result.items[0].blob_id, keys)[0].media_type == expected


def test_errors_carry_no_content(store, keys):
    private = "SECRET-CONTENT-\u00e9"
    bodies = [
        multipart(csrf(private), field_part("message", private)),
        multipart(csrf(), field_part(private, private)),
        multipart(csrf(), field_part("message", private.encode() + b"\xff")),
        multipart(csrf(), file_part(private.encode() + b"\xff", private.encode())),
        multipart(csrf(), field_part("message", private))[:-20],
    ]
    for body in bodies:
        with pytest.raises(NoJsError) as info:
            submit(body, store, keys)
        error = info.value
        for text in (str(error), repr(error), error.message, repr(error.args)):
            assert "SECRET" not in text
        assert error.__context__ is None
        assert error.__cause__ is None
        assert store_files(store) == []


def test_limits_are_checked():
    with pytest.raises(ValueError, match="max_files"):
        NoJsLimits(max_request_bytes=1, max_message_chars=1, max_files=0, max_drain_bytes=0)
    with pytest.raises(ValueError, match="max_drain_bytes"):
        NoJsLimits(max_request_bytes=1, max_message_chars=1, max_files=1, max_drain_bytes=-1)


# -- every exit leaves nothing ---------------------------------------------------------------


class BrokenInput(io.BytesIO):
    """A WSGI input whose framing breaks after ``good`` bytes, as gunicorn's chunked reader
    raises InvalidChunkSize or NoMoreData (with bytes of the body in its arguments)."""

    def __init__(self, body: bytes, good: int) -> None:
        super().__init__(body)
        self.good = good

    def read(self, size: int | None = -1) -> bytes:
        if self.tell() >= self.good:
            raise ValueError(b"Invalid chunk size: SECRET-BYTES")
        limit = self.good - self.tell()
        return super().read(limit if size is None or size < 0 else min(size, limit))


@pytest.mark.parametrize("good", [0, 100, 70_000, 200_000])
def test_an_unreadable_input_is_malformed_and_leaves_nothing(store, keys, good):
    body = multipart(csrf(), field_part("message", "hello"), file_part("f", content(300_000)))
    error = refused("malformed", body, store, keys, stream=BrokenInput(body, good))
    assert error.unreadable
    assert "SECRET" not in repr(error.args)


def test_recording_that_fails_removes_every_blob(store, keys):
    body = multipart(csrf(), field_part("message", "hello"), file_part("f", content(90_000)))
    seen: list[NoJsResult] = []

    def record(result: NoJsResult) -> None:
        seen.append(result)
        assert all(store.exists(item.blob_id) for item in result.items)
        raise RuntimeError("the database is gone")

    with pytest.raises(RuntimeError):
        submit(body, store, keys, record=record)
    assert len(seen[0].items) == 2
    assert store_files(store) == []


class FullAfter:
    """A blob store whose disk fills up after ``room`` bytes."""

    def __init__(self, store: LocalBlobStore, room: int) -> None:
        self.store, self.room = store, room

    def __getattr__(self, name: str) -> object:
        return getattr(self.store, name)

    def writer(self) -> object:
        writer = self.store.writer()
        real_write = writer.write

        def write(data: bytes | bytearray | memoryview) -> int:
            if len(data) > self.room:
                raise OutOfSpace()
            self.room -= len(data)
            return real_write(data)

        writer.write = write  # type: ignore[method-assign]
        return writer


@pytest.mark.parametrize("room", [0, 1000, 150_000])
def test_a_full_disk_removes_everything_and_drains(store, keys, room):
    body = multipart(
        csrf(), field_part("message", "hello"), file_part("f", content(100_000)),
        file_part("g", content(400_000)),
    )  # fmt: skip
    stream = io.BytesIO(body)
    with pytest.raises(OutOfSpace):
        submit(body, FullAfter(store, room), keys, stream=stream)  # type: ignore[arg-type]
    assert store_files(store) == []
    assert stream.tell() == len(body)


def test_a_full_database_removes_every_blob_and_drains(store, keys):
    body = multipart(csrf(), field_part("message", "hello"))
    stream = io.BytesIO(body)

    def record(result: NoJsResult) -> None:
        error = sqlite3.OperationalError("database or disk is full")
        error.sqlite_errorcode = 13
        raise error

    with pytest.raises(sqlite3.OperationalError):
        submit(body, store, keys, stream=stream, record=record)
    assert store_files(store) == []
    assert stream.tell() == len(body)
