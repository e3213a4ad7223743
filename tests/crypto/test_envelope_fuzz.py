"""Property tests: mutated envelopes fail with a documented error class, and only then.

Every property also compares the implementation with the literal reading of
docs/format.md section 3 in tests/vectors/generate_envelope.py (``spec_open``): both
must report the same class for every input.
"""

from __future__ import annotations

import importlib.util
import io
import struct
import sys
from pathlib import Path
from types import ModuleType

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from crypto.envelope import (
    CHUNK,
    Kind,
    PayloadCipher,
    build_header,
    open_envelope,
    padme,
    parse_header,
    payload_key,
    seal_bytes,
)
from crypto.errors import DecryptionError, FormatError, UnsupportedVersion
from crypto.keys import x25519_public

GENERATOR_FILE = Path(__file__).resolve().parents[1] / "vectors" / "generate_envelope.py"


def _load_generator() -> ModuleType:
    """Import tests/vectors/generate_envelope.py (registered, as its dataclasses require)."""
    name = "postern_generate_envelope"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, GENERATOR_FILE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


SPEC = _load_generator()

FUZZ = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

SECRETS = [bytes([i]) * 32 for i in (1, 2, 3)]
PUBLICS = [x25519_public(s) for s in SECRETS]
FILE_KEY = bytes(range(32, 64))
SALT = bytes(range(64, 80))
EPHEMERALS = [bytes([0x40 + i]) * 32 for i in range(2)]


def _content(size: int) -> bytes:
    return bytes(i * 7 % 256 for i in range(256)) * (size // 256) + bytes(size % 256)


# Small envelopes of 1, 2 and 3 chunks, made once: (data, content, recipients).
ENVELOPES = [
    seal_bytes(_content(100), PUBLICS[:1], Kind.MESSAGE, file_key=FILE_KEY, payload_salt=SALT,
               ephemeral_keys=EPHEMERALS[:1]),
    seal_bytes(_content(CHUNK + 1), PUBLICS[:2], Kind.FILE, "a.bin", "x/y", file_key=FILE_KEY,
               payload_salt=SALT, ephemeral_keys=EPHEMERALS),
    seal_bytes(_content(2 * CHUNK + 500), PUBLICS[:2], Kind.REPLY, file_key=FILE_KEY,
               payload_salt=SALT, ephemeral_keys=EPHEMERALS),
]  # fmt: skip
KEY_SETS = [SECRETS[:1], SECRETS[1:2], SECRETS[:2], SECRETS[2:], []]
ALLOWED = (FormatError, UnsupportedVersion, DecryptionError)


def _header_of(index: int) -> bytes:
    return ENVELOPES[index][: parse_header(ENVELOPES[index]).length]


def _implementation(data: bytes, keys: list[bytes]) -> str | None:
    """The class crypto.open_envelope reports; any other exception fails the test."""
    try:
        open_envelope(io.BytesIO(data), keys).read_all()
    except UnsupportedVersion:
        return "unsupported_version"
    except FormatError:
        return "format"
    except DecryptionError:
        return "decryption"
    return None


def _without_key(data: bytes) -> str | None:
    try:
        parse_header(data).check_total_length(len(data))
    except UnsupportedVersion:
        return "unsupported_version"
    except FormatError:
        return "format"
    return None


def _check(data: bytes, original: bytes | None, keys: list[bytes]) -> None:
    got = _implementation(data, keys)
    event(f"class {got}")
    assert got == SPEC.spec_class(data, keys)
    assert _without_key(data) == SPEC.spec_check_without_key(data)
    if got is None:
        assert data == original, "a mutated envelope opened"


# -- mutations ---------------------------------------------------------------------------------


@st.composite
def _offset(draw: st.DrawFn, size: int) -> int:
    """Any offset, with the header (and the first bytes of the payload) favoured."""
    return draw(st.one_of(st.integers(0, min(size - 1, 400)), st.integers(0, size - 1)))


@st.composite
def _mutated(draw: st.DrawFn) -> tuple[bytes, bytes, list[bytes]]:
    original = draw(st.sampled_from(ENVELOPES))
    keys = draw(st.sampled_from(KEY_SETS))
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 3))):
        if not data:
            break
        size = len(data)
        action = draw(
            st.sampled_from(
                ["flip", "truncate", "insert", "delete", "overwrite", "append", "append_many"]
            )
        )
        if action == "flip":
            data[draw(_offset(size))] ^= 1 << draw(st.integers(0, 7))
        elif action == "truncate":
            del data[draw(st.integers(0, size - 1)) :]
        elif action == "insert":
            at = draw(_offset(size))
            data[at:at] = draw(st.binary(min_size=1, max_size=64))
        elif action == "delete":
            at = draw(_offset(size))
            del data[at : at + draw(st.integers(1, CHUNK + 16))]
        elif action == "overwrite":
            at = draw(_offset(size))
            new = draw(st.binary(min_size=1, max_size=40))
            data[at : at + len(new)] = new
        elif action == "append":
            data += draw(st.binary(min_size=1, max_size=64))
        else:
            data += bytes([draw(st.integers(0, 255))]) * draw(st.integers(1, 2 * CHUNK))
    return original, bytes(data), keys


@FUZZ
@given(case=_mutated())
def test_mutated_envelopes_fail_with_a_documented_class(case):
    original, data, keys = case
    _check(data, original, keys)


@FUZZ
@given(
    index=st.integers(0, len(ENVELOPES) - 1),
    offset=st.integers(0, 10**6),
    bit=st.integers(0, 7),
    keys=st.sampled_from(KEY_SETS[:3]),
)
def test_single_bit_flips_never_open(index, offset, bit, keys):
    original = ENVELOPES[index]
    data = bytearray(original)
    data[offset % len(data)] ^= 1 << bit
    assert _implementation(bytes(data), keys) in ("format", "unsupported_version", "decryption")
    _check(bytes(data), original, keys)


@FUZZ
@given(index=st.integers(0, len(ENVELOPES) - 1), cut=st.integers(0, 10**6))
def test_truncations_never_open(index, cut):
    original = ENVELOPES[index]
    data = original[: cut % len(original)]
    _check(data, original, SECRETS[:2])


@FUZZ
@given(
    data=st.one_of(
        st.binary(max_size=2000),
        st.builds(
            lambda version, count, rest: b"PSTRNENV" + bytes([version, count]) + rest,
            st.sampled_from([0, 1, 1, 1, 2, 255]),
            st.integers(0, 40),
            st.binary(max_size=4000),
        ),
        # A real header followed by random bytes, of any length or of a valid one.
        st.builds(
            lambda index, tail, size: _header_of(index) + (tail * (size // len(tail) + 1))[:size],
            st.integers(0, len(ENVELOPES) - 1),
            st.binary(min_size=1, max_size=64),
            st.one_of(st.integers(0, 3000), st.sampled_from([1040, 1104, 67616, 69664])),
        ),
    ),
    keys=st.sampled_from(KEY_SETS),
)
def test_random_bytes(data, keys):
    try:
        header = parse_header(data)
    except ALLOWED:
        pass
    else:
        assert header.length <= len(data)
    _check(data, None, keys)


@FUZZ
@given(
    index=st.integers(0, len(ENVELOPES) - 1),
    extra=st.one_of(
        st.binary(min_size=1, max_size=100),
        st.integers(1, 3 * (CHUNK + 16)).map(lambda n: bytes(n)),
    ),
)
def test_appended_data_never_opens(index, extra):
    original = ENVELOPES[index]
    _check(original + extra, original, SECRETS[:2])


def test_originals_open():
    for data in ENVELOPES:
        assert _implementation(data, SECRETS[:1]) is None
        assert SPEC.spec_class(data, SECRETS[:1]) is None


# -- tampered under the file key: random records and trailers ----------------------------------

_HEADER = build_header(PUBLICS[:2], FILE_KEY, SALT, EPHEMERALS)
_CIPHER = PayloadCipher(payload_key(FILE_KEY, SALT))


def _seal_padded(padded: bytes) -> bytes:
    pieces = [padded[i : i + CHUNK] for i in range(0, len(padded), CHUNK)]
    return _HEADER + b"".join(
        _CIPHER.seal_chunk(i, i == len(pieces) - 1, p) for i, p in enumerate(pieces)
    )


_PERTURBATIONS = [
    "none", "none", "none", "version", "kind", "length", "name_length", "media_length",
    "name", "media", "trailer", "size", "padding", "record",
]  # fmt: skip
_VALID_NAME_CHARS = st.characters(
    exclude_characters="/\\", exclude_categories=["Cc", "Cs"], max_codepoint=0x10FFFF
)


@st.composite
def _plaintexts(draw: st.DrawFn) -> bytes:
    """A valid padded plaintext (section 3.5) with at most one rule broken."""
    perturb = draw(st.sampled_from(_PERTURBATIONS))
    event(f"perturbation {perturb}")
    kind = draw(st.sampled_from([1, 2, 3]))
    name = b""
    if kind == 2:
        name = draw(st.text(_VALID_NAME_CHARS, max_size=30)).encode("utf-8")
    media = draw(st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=30))
    media_bytes = media.encode("ascii")
    content_length = draw(st.integers(0, 1200))
    length, version, f, t = content_length, 1, len(name), len(media_bytes)
    if perturb == "version":
        version = draw(st.sampled_from([0, 2, 255]))
    elif perturb == "kind":
        kind = draw(st.sampled_from([0, 4, 255]))
    elif perturb == "length":
        length = draw(
            st.one_of(
                st.sampled_from([content_length + 1, max(0, content_length - 1)]),
                st.sampled_from([(1 << 40) - 397, (1 << 64) - 1]),
                st.integers(0, 2**64 - 1),
            )
        )
    elif perturb == "name_length":
        f = draw(st.integers(0, 255))
    elif perturb == "media_length":
        t = draw(st.integers(0, 255))
    elif perturb == "name":
        name = draw(st.one_of(st.binary(min_size=1, max_size=30), st.text(max_size=30).map(
            lambda text: text.encode("utf-8"))))  # fmt: skip
        f = len(name)
    elif perturb == "media":
        media_bytes = draw(st.binary(min_size=1, max_size=30))
        t = len(media_bytes)
    record = struct.pack(">BBQB", version, kind, length, f) + name + bytes([t]) + media_bytes
    if perturb == "record":
        record = draw(st.binary(max_size=420))
    m = len(record)
    trailer = m
    if perturb == "trailer":
        trailer = draw(st.one_of(st.integers(0, 500), st.integers(0, 2**32 - 1)))
    size = padme(max(content_length + m + 4, 1024))
    if perturb == "size":
        size = draw(st.sampled_from([1024, 1088, 2048, CHUNK, CHUNK + 2048]))
    zeros = size - content_length - m - 4
    if zeros < 0:
        content_length = 0
        zeros = size - m - 4
    if zeros < 0:
        size = padme(m + 4 + 1024)
        zeros = size - m - 4
    padding = bytearray(zeros)
    if perturb == "padding" and zeros:
        padding[draw(st.integers(0, zeros - 1))] = draw(st.integers(1, 255))
    return _content(content_length) + bytes(padding) + record + struct.pack(">I", trailer)


@FUZZ
@given(padded=_plaintexts(), keys=st.sampled_from(KEY_SETS[:3]))
def test_records_under_the_key(padded, keys):
    """Whatever the padded plaintext, the implementation and the spec reader agree."""
    data = _seal_padded(padded)
    got = _implementation(data, keys)
    event(f"class {got}")
    assert got in (None, "decryption")
    assert got == SPEC.spec_class(data, keys)
    if got is None:
        opened = open_envelope(io.BytesIO(data), keys)
        fields, body = SPEC.spec_open(data, keys)
        assert opened.read_all() == body
        assert opened.metadata.filename == fields["filename"]
        assert opened.metadata.media_type == fields["media_type"]
        assert int(opened.metadata.kind) == fields["kind"]
        assert opened.metadata.length == fields["length"]
