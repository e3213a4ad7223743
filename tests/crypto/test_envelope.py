"""Tests for crypto.envelope: round trips, sealing paths, resumption, parallel opening, sizes."""

from __future__ import annotations

import hashlib
import io
import itertools
import math
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import crypto
from crypto.envelope import (
    CHUNK,
    MAX_CONTENT,
    Header,
    Kind,
    Metadata,
    PaddedPlaintext,
    PayloadCipher,
    Sealer,
    build_header,
    clean_filename,
    envelope_length,
    open_bytes,
    open_envelope,
    open_file_parallel,
    padme,
    parse_header,
    payload_key,
    read_header,
    seal_bytes,
    seal_piece,
    sealed_to,
    split_payload_length,
)
from crypto.errors import CryptoError, DecryptionError, FormatError, UnsupportedVersion
from crypto.keys import Algorithm, key_id, x25519_public

CT_CHUNK = CHUNK + 16
MIB = 1024 * 1024
SIZES = [0, 1, 65535, 65536, 65537, 10 * MIB]


def _keypair(seed: int) -> tuple[bytes, bytes]:
    secret = hashlib.sha256(b"test_envelope key %d" % seed).digest()
    return secret, x25519_public(secret)


KEYS = [_keypair(i) for i in range(4)]
SECRETS = [k[0] for k in KEYS]
PUBLICS = [k[1] for k in KEYS]
OUTSIDER_SECRET, _ = _keypair(99)

FILE_KEY = bytes(range(32))
SALT = bytes(range(100, 116))


def _ephemerals(count: int) -> list[bytes]:
    return [hashlib.sha256(b"ephemeral %d" % i).digest() for i in range(count)]


def _content(size: int) -> bytes:
    block = hashlib.sha256(b"content %d" % size).digest() * 2048  # 64 KiB
    return (block * (size // len(block) + 1))[:size]


def _seal_fixed(content: bytes, kind: Kind = Kind.FILE, **names: str) -> bytes:
    return seal_bytes(
        content,
        PUBLICS[:2],
        kind,
        names.get("filename", "f.bin" if kind is Kind.FILE else ""),
        names.get("media_type", "application/octet-stream"),
        file_key=FILE_KEY,
        payload_salt=SALT,
        ephemeral_keys=_ephemerals(2),
    )


def _sealer(**kwargs: int) -> Sealer:
    return Sealer(
        PUBLICS[:2],
        Kind.FILE,
        "f.bin",
        "application/octet-stream",
        file_key=FILE_KEY,
        payload_salt=SALT,
        ephemeral_keys=_ephemerals(2),
        **kwargs,
    )


# -- round trips -------------------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
def test_round_trip(size):
    content = os.urandom(size)
    data = seal_bytes(content, [PUBLICS[0]], Kind.FILE, "report.pdf", "application/pdf")
    metadata, opened = open_bytes(data, [SECRETS[0]])
    assert opened == content
    assert metadata == Metadata(Kind.FILE, size, "report.pdf", "application/pdf")
    assert len(data) == envelope_length(1, metadata)
    with pytest.raises(DecryptionError):
        open_bytes(data, [OUTSIDER_SECRET])


@pytest.mark.parametrize("kind", list(Kind))
def test_round_trip_kinds(kind):
    data = seal_bytes(b"hello", [PUBLICS[0]], kind, media_type="text/plain")
    metadata, opened = open_bytes(data, [SECRETS[0]])
    assert opened == b"hello"
    assert metadata == Metadata(kind, 5, "", "text/plain")


def test_fresh_randomness_per_envelope():
    one = seal_bytes(b"same", [PUBLICS[0]], Kind.MESSAGE)
    two = seal_bytes(b"same", [PUBLICS[0]], Kind.MESSAGE)
    assert one != two
    assert parse_header(one).payload_salt != parse_header(two).payload_salt
    assert parse_header(one).stanzas[0].enc != parse_header(two).stanzas[0].enc


def test_multi_recipient():
    content = os.urandom(70000)
    data = seal_bytes(content, PUBLICS[:3], Kind.MESSAGE)
    for secret in SECRETS[:3]:
        assert open_bytes(data, [secret]) == (Metadata(Kind.MESSAGE, 70000), content)
    for keys in ([SECRETS[3]], [OUTSIDER_SECRET], [], [SECRETS[3], OUTSIDER_SECRET]):
        with pytest.raises(DecryptionError):
            open_bytes(data, keys)
    # A reader holding a non-recipient key as well still opens.
    assert open_bytes(data, [OUTSIDER_SECRET, SECRETS[2]])[1] == content


def test_recipient_limits():
    with pytest.raises(FormatError):
        seal_bytes(b"x", [], Kind.MESSAGE)
    with pytest.raises(FormatError):
        seal_bytes(b"x", [PUBLICS[0], PUBLICS[0]], Kind.MESSAGE)
    many = [x25519_public(hashlib.sha256(b"%d" % i).digest()) for i in range(33)]
    with pytest.raises(FormatError):
        seal_bytes(b"x", many, Kind.MESSAGE)
    data = seal_bytes(b"x", many[:32], Kind.MESSAGE)
    assert len(parse_header(data).stanzas) == 32
    assert open_bytes(data, [hashlib.sha256(b"31").digest()])[1] == b"x"


# -- the sealing paths agree -------------------------------------------------------------------

PATH_SIZES = [0, 1, 65535, 65536, 65537, 16 * CHUNK, 16 * CHUNK + 1, 10 * MIB]


@pytest.mark.parametrize("size", PATH_SIZES)
def test_sealing_paths_agree(size, tmp_path):
    content = _content(size)
    expected = _seal_fixed(content)

    sealer = _sealer()
    parts = [sealer.header]
    steps = [1, 4095, 65537, 7, 131071, 3, 200003]
    at = step = 0
    while at < size:
        piece = content[at : at + steps[step % len(steps)]]
        parts.append(sealer.update(piece))
        at += len(piece)
        step += 1
    parts.extend(sealer.finish())
    assert sealer.length == size
    assert b"".join(parts) == expected

    source = tmp_path / "content"
    source.write_bytes(content)
    out = io.BytesIO()
    with source.open("rb") as src:
        assert _sealer().seal_stream(src, out) == size
    assert out.getvalue() == expected

    assert open_bytes(expected, [SECRETS[1]])[1] == content


def test_update_accepts_bytearray_and_memoryview():
    content = _content(200000)
    sealer = _sealer()
    parts = [sealer.header, sealer.update(bytearray(content[:70000]))]
    parts.append(sealer.update(memoryview(content)[70000:]))
    parts.extend(sealer.finish())
    assert b"".join(parts) == _seal_fixed(content)


def test_module_seal_stream_opens(tmp_path):
    content = _content(300000)
    out = io.BytesIO()
    assert crypto.seal_stream(io.BytesIO(content), out, PUBLICS[:1], Kind.FILE, "x") == 300000
    assert open_bytes(out.getvalue(), SECRETS[:1]) == (Metadata(Kind.FILE, 300000, "x"), content)


def test_sealer_is_finished_once():
    sealer = _sealer()
    list(sealer.finish())
    with pytest.raises(CryptoError):
        sealer.update(b"more")
    with pytest.raises(CryptoError):
        list(sealer.finish())


# -- resumption: chunks k..n sealed separately -------------------------------------------------

RESUME_CASES = [
    (1000, 0),
    (65537, 0),
    (65537, 1),
    (340000, 0),
    (340000, 3),
    (340000, -1),
    (10 * MIB, 0),
    (10 * MIB, 81),
    (10 * MIB, -1),
]


@pytest.mark.parametrize(("size", "first"), RESUME_CASES)
def test_chunks_sealed_separately_are_identical(size, first):
    content = _content(size)
    one_pass = _seal_fixed(content)
    header = build_header(PUBLICS[:2], FILE_KEY, SALT, _ephemerals(2))
    assert one_pass.startswith(header)

    plan = PaddedPlaintext(Metadata(Kind.FILE, size, "f.bin", "application/octet-stream"))
    first = first % plan.chunks
    cipher = PayloadCipher(payload_key(FILE_KEY, SALT))

    def read(offset: int, size: int) -> bytes:
        return content[offset : offset + size]

    chunks = [seal_piece(cipher, plan, i, plan.piece(i, read)) for i in range(first, plan.chunks)]
    start = len(header) + first * CT_CHUNK
    assert one_pass[: len(header)] == header
    assert one_pass[start:] == b"".join(chunks)
    for offset, chunk in enumerate(chunks):
        at = start + offset * CT_CHUNK
        assert one_pass[at : at + len(chunk)] == chunk
    assert len(one_pass) == len(header) + plan.size + 16 * plan.chunks


def test_piece_refuses_short_content():
    plan = PaddedPlaintext(Metadata(Kind.FILE, 100000))
    with pytest.raises(FormatError):
        plan.piece(0, lambda offset, size: b"\x00" * (size - 1))
    with pytest.raises(FormatError):
        plan.piece(plan.chunks, lambda offset, size: bytes(size))


# -- parallel opening --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def big_envelope(tmp_path_factory) -> tuple[Path, bytes]:
    content = _content(10 * MIB + 12345)
    path = tmp_path_factory.mktemp("parallel") / "envelope"
    path.write_bytes(seal_bytes(content, PUBLICS[:2], Kind.FILE, "big.bin"))
    return path, content


@pytest.mark.parametrize("workers", [1, 2])
def test_open_file_parallel(big_envelope, tmp_path, workers):
    src, content = big_envelope
    dst = tmp_path / "out"
    metadata = open_file_parallel(str(src), str(dst), [SECRETS[1]], workers=workers)
    assert metadata == Metadata(Kind.FILE, len(content), "big.bin")
    assert dst.read_bytes() == content
    assert dst.stat().st_mode & 0o777 == 0o600


def test_open_file_parallel_workers_agree(big_envelope, tmp_path):
    src, _ = big_envelope
    outputs = []
    for workers in (1, 2):
        dst = tmp_path / f"out{workers}"
        open_file_parallel(str(src), str(dst), [SECRETS[0]], workers=workers)
        outputs.append(dst.read_bytes())
    assert outputs[0] == outputs[1]


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("chunk", [5, 100, 161, -1])
def test_open_file_parallel_tampered(big_envelope, tmp_path, workers, chunk):
    src, _ = big_envelope
    data = bytearray(src.read_bytes())
    header_len = parse_header(bytes(data[:1000])).length
    chunks = -(-(len(data) - header_len) // CT_CHUNK)
    offset = header_len + (chunk % chunks) * CT_CHUNK + 10
    data[offset] ^= 0x20
    tampered = tmp_path / "tampered"
    tampered.write_bytes(bytes(data))
    dst = tmp_path / "out"
    with pytest.raises(DecryptionError):
        open_file_parallel(str(tampered), str(dst), [SECRETS[0]], workers=workers)
    assert not dst.exists()


def test_open_file_parallel_wrong_key_and_existing_output(big_envelope, tmp_path):
    src, _ = big_envelope
    dst = tmp_path / "out"
    with pytest.raises(DecryptionError):
        open_file_parallel(str(src), str(dst), [OUTSIDER_SECRET])
    assert not dst.exists()
    dst.write_bytes(b"keep me")
    with pytest.raises(FileExistsError):
        open_file_parallel(str(src), str(dst), [SECRETS[0]])
    assert dst.read_bytes() == b"keep me"


# -- header --------------------------------------------------------------------------------------


def test_parse_header_without_keys():
    data = seal_bytes(b"x" * 5000, PUBLICS[:3], Kind.MESSAGE)
    header = parse_header(data)
    assert header.key_ids == {key_id(Algorithm.X25519, pk) for pk in PUBLICS[:3]}
    assert [s.key_id for s in header.stanzas] == [
        key_id(Algorithm.X25519, pk) for pk in PUBLICS[:3]
    ]
    assert header.length == 58 + 96 * 3
    assert parse_header(data[: header.length]) == header
    assert read_header(io.BytesIO(data)) == header
    assert sealed_to(header, PUBLICS[:3])
    assert sealed_to(header, list(reversed(PUBLICS[:3])))
    assert not sealed_to(header, PUBLICS[:2])
    assert not sealed_to(header, PUBLICS[:4])
    assert not sealed_to(header, [*PUBLICS[:2], PUBLICS[3]])


def test_check_total_length():
    for size in (0, 1, 5000, 65536, 200000):
        data = seal_bytes(bytes(size), PUBLICS[:1], Kind.MESSAGE)
        header = parse_header(data)
        header.check_total_length(len(data))
        for wrong in (header.length, header.length + 16, len(data) - 1, len(data) + 1):
            with pytest.raises(FormatError) as info:
                header.check_total_length(wrong)
            assert not isinstance(info.value, UnsupportedVersion)


def _any_header(recipients: int) -> Header:
    ids = [hashlib.sha256(b"%d" % i).digest()[:16] for i in range(recipients)]
    raw = b"PSTRNENV\x01" + bytes([recipients])
    raw += b"".join(kid + bytes(80) for kid in ids) + bytes(48)
    return parse_header(raw)


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(
    length=st.one_of(st.integers(0, 3 * CHUNK), st.integers(0, MAX_CONTENT)),
    record_extra=st.integers(0, 382),
    recipients=st.integers(1, 32),
)
def test_envelope_length_is_a_valid_length(length, record_extra, recipients):
    """The writer's size (section 3.4/3.5) always passes the reader's length rule."""
    media = "m" * min(record_extra, 127)
    name = "n" * (record_extra - len(media))
    metadata = Metadata(Kind.FILE, length, name, media)
    header = _any_header(recipients)
    total = envelope_length(recipients, metadata)
    header.check_total_length(total)
    split = split_payload_length(total - header.length)
    assert split is not None
    chunks, padded = split
    assert padded == padme(max(length + len(metadata.record()) + 4, 1024))
    assert chunks == math.ceil(padded / CHUNK)


# -- padme ---------------------------------------------------------------------------------------


def _padme_spec(x: int) -> int:
    """Section 3.5, written with logarithms."""
    e = math.floor(math.log2(x))
    s = math.floor(math.log2(e)) + 1
    mask = (1 << (e - s)) - 1
    return (x + mask) & ~mask


def test_padme_small_values():
    assert [padme(x) for x in (1024, 1025, 1088, 1089, 65536, 65537)] == [
        1024,
        1088,
        1088,
        1152,
        65536,
        67584,
    ]
    values = [padme(x) for x in range(2, 300_000)]
    assert all(a <= b for a, b in itertools.pairwise(values))
    for x in range(2, 300_000, 7):
        assert padme(x) == _padme_spec(x)
    for x in range(1024, 300_000):
        assert padme(padme(x)) == padme(x)
        assert padme(x) - x <= 0.12 * x


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(x=st.integers(1024, 1 << 41), y=st.integers(1024, 1 << 41))
def test_padme_properties(x, y):
    px = padme(x)
    assert px >= x
    assert padme(px) == px
    assert (px - x) * 100 <= 12 * x
    if x <= y:
        assert px <= padme(y)
    if x < 1 << 40:
        assert px == _padme_spec(x)


# -- filenames and metadata ----------------------------------------------------------------------

HOSTILE_NAMES = [
    "../../etc/passwd",
    "..\\..\\Windows\\System32\\config",
    "/absolute/path.txt",
    "C:\\Users\\me\\secret.docx",
    "a\x00b.txt",
    "\x1b[31mred\x1b[0m.txt",
    "line\nbreak\r.txt",
    "tab\there.txt",
    "del\x7f.txt",
    "c1\x85\x9f.txt",
    "x" * 1000,
    "\u00e9" * 1000,
    "\U0001f4c4" * 300,
    "\u202egpj.exe",
    "invoice\u202efdp.exe",
    "\u2028\u2029",
    "   ",
    "",
    "/",
    "..",
    "trailing/",
    "e\u0301\u0301\u0301" * 200,
    "\ufeffbom.txt",
    "lone\udcffsurrogate.txt",
    "\ud800",
]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_clean_filename_hostile(name):
    cleaned = clean_filename(name)
    Metadata(Kind.FILE, 0, cleaned)  # accepted
    assert "/" not in cleaned
    assert "\\" not in cleaned
    assert len(cleaned.encode("utf-8")) <= 255
    assert clean_filename(cleaned) == cleaned


# Any code point, lone surrogates (as os.fsdecode makes from undecodable bytes) and the
# characters section 3.5 forbids or that fool people.
_NAME_CHARS = st.one_of(
    st.characters(),
    st.integers(0xD800, 0xDFFF).map(chr),
    st.sampled_from("/\\\x00\x1f\x7f\x85\x9f\u202e\u2028. "),
)


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(name=st.lists(_NAME_CHARS, max_size=400).map("".join))
def test_clean_filename_always_valid(name):
    cleaned = clean_filename(name)
    Metadata(Kind.FILE, 0, cleaned)
    data = seal_bytes(b"", PUBLICS[:1], Kind.FILE, cleaned)
    assert open_bytes(data, SECRETS[:1])[0].filename == cleaned


def test_clean_filename_keeps_ordinary_names():
    assert clean_filename("Report 2026 (final).pdf") == "Report 2026 (final).pdf"
    assert clean_filename("C:\\fakepath\\scan.png") == "scan.png"
    assert clean_filename("dir/sub/Pr\u00fcfung.txt") == "Pr\u00fcfung.txt"


@pytest.mark.parametrize(
    ("kind", "filename", "media_type"),
    [
        (Kind.FILE, "a/b", ""),
        (Kind.FILE, "a\\b", ""),
        (Kind.FILE, "a\x00b", ""),
        (Kind.FILE, "a\x1fb", ""),
        (Kind.FILE, "a\x7fb", ""),
        (Kind.FILE, "a\x9fb", ""),
        (Kind.FILE, "x" * 256, ""),
        (Kind.FILE, "\u00e9" * 128, ""),
        (Kind.FILE, "bad\udcffname", ""),
        (Kind.MESSAGE, "x.txt", ""),
        (Kind.REPLY, "x.txt", ""),
        (Kind.FILE, "", "text/\u00e9"),
        (Kind.FILE, "", "text/\x7f"),
        (Kind.FILE, "", "text/\tplain"),
        (Kind.FILE, "", "m" * 128),
    ],
)
def test_metadata_rejects(kind, filename, media_type):
    with pytest.raises(FormatError):
        Metadata(kind, 0, filename, media_type)


def test_metadata_limits():
    Metadata(Kind.FILE, MAX_CONTENT, "x" * 255, "m" * 127)
    assert MAX_CONTENT == (1 << 40) - 398
    assert len(Metadata(Kind.FILE, 0, "\u00e9" * 127 + "x", "m" * 127).record()) == 394
    for length in (-1, MAX_CONTENT + 1):
        with pytest.raises(FormatError):
            Metadata(Kind.MESSAGE, length)


# -- length limits -------------------------------------------------------------------------------


def test_sealer_refuses_content_over_max_length(tmp_path):
    sealer = _sealer(max_length=100)
    sealer.update(bytes(60))
    sealer.update(bytes(40))
    with pytest.raises(FormatError):
        sealer.update(b"x")
    with pytest.raises(FormatError):
        _sealer(max_length=100).update(bytes(101))
    with pytest.raises(FormatError):
        _sealer(max_length=CHUNK).update(bytes(CHUNK + 1))

    exact = tmp_path / "exact"
    exact.write_bytes(bytes(100))
    with exact.open("rb") as src:
        assert _sealer(max_length=100).seal_stream(src, io.BytesIO()) == 100
    over = tmp_path / "over"
    over.write_bytes(bytes(101))
    with over.open("rb") as src, pytest.raises(FormatError):
        _sealer(max_length=100).seal_stream(src, io.BytesIO())
    big = tmp_path / "big"
    big.write_bytes(bytes(16 * CHUNK))  # one full read batch of seal_stream
    with big.open("rb") as src, pytest.raises(FormatError):
        _sealer(max_length=16 * CHUNK - 1).seal_stream(src, io.BytesIO())


# -- opening from a file ------------------------------------------------------------------------


def test_open_envelope_streams_from_a_file(tmp_path):
    content = _content(3 * CHUNK + 99)
    path = tmp_path / "env"
    path.write_bytes(_seal_fixed(content))
    with path.open("rb") as src:
        opened = open_envelope(src, [SECRETS[0]])
        assert opened.metadata.length == len(content)
        out = io.BytesIO()
        assert opened.write_to(out) == len(content)
        assert out.getvalue() == content
        assert b"".join(opened.iter_content()) == content


# -- writer-side guards ------------------------------------------------------------------------


def test_metadata_rejects_unknown_kind():
    with pytest.raises(FormatError, match="kind"):
        Metadata(4, 0)  # type: ignore[arg-type]
    assert Metadata(2, 5, "a.txt").kind is Kind.FILE  # type: ignore[arg-type]


def test_seal_chunk_refuses_empty_piece():
    cipher = PayloadCipher(payload_key(FILE_KEY, SALT))
    with pytest.raises(FormatError):
        cipher.seal_chunk(0, True, b"")
    with pytest.raises(FormatError):
        cipher.seal_chunk(0, False, bytes(CHUNK + 1))


def test_seal_stream_refuses_a_used_sealer():
    sealer = Sealer(PUBLICS[:1], Kind.FILE, "a.bin")
    sealer.update(b"already here")
    with pytest.raises(CryptoError, match="fresh"):
        sealer.seal_stream(io.BytesIO(b"more"), io.BytesIO())
