"""Opening an envelope as a stream (crypto/envelope/stream_opening.py): the same content and
metadata as open_envelope, whatever the pieces it is fed in, and the same refusals."""

from __future__ import annotations

import hashlib
import io
import os

import pytest

from crypto import (
    DecryptionError,
    FormatError,
    KeyKind,
    Kind,
    Metadata,
    PrivateKey,
    RecipientKeys,
    StreamOpener,
    open_envelope,
    seal_bytes,
)
from crypto.envelope import CHUNK


@pytest.fixture(scope="module")
def key() -> PrivateKey:
    return PrivateKey.generate(KeyKind.ENCRYPTION, "stream test")


class Collect:
    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, data: bytes | memoryview) -> int:
        self.data += data
        return len(data)


def stream_open(envelope: bytes, keys: object, piece: int) -> tuple[object, bytes, StreamOpener]:
    out = Collect()
    opener = StreamOpener(len(envelope), keys, out)  # type: ignore[arg-type]
    for at in range(0, len(envelope), piece):
        opener.write(envelope[at : at + piece])
    return opener.finish(), bytes(out.data), opener


CONTENTS = {
    "empty": b"",
    "short": b"a short message",
    "ends in zeros": b"text" + bytes(3000),
    "zeros only": bytes(5000),
    "one chunk exactly": os.urandom(CHUNK),
    "a chunk of zeros then content": bytes(CHUNK + 17) + b"x",
    "content then whole chunks of zeros": os.urandom(1000) + bytes(3 * CHUNK),
    "several chunks": os.urandom(5 * CHUNK + 123),
    "large, padded over chunks": os.urandom(1_300_000) + bytes(70_000),
    # Padmé pads this one by more than two chunks: padding before the last chunk.
    "padding over several chunks": os.urandom((1 << 22) + 1),
}


@pytest.mark.parametrize("name", sorted(CONTENTS))
@pytest.mark.parametrize("piece", [333, CHUNK + 16, 1 << 20])
def test_same_content_and_metadata_as_open_envelope(key, name, piece):
    content = CONTENTS[name]
    envelope = seal_bytes(content, [key.public.key], Kind.FILE, "a.bin", "application/x-test")
    expected = open_envelope(io.BytesIO(envelope), [key.secret])
    metadata, data, opener = stream_open(envelope, RecipientKeys([key.secret]), piece)
    assert metadata == expected.metadata
    assert data == content == expected.read_all()
    assert opener.header is not None
    assert opener.header.raw == expected.header.raw


def test_fed_byte_by_byte(key):
    envelope = seal_bytes(b"one byte at a time", [key.public.key], Kind.MESSAGE)
    metadata, data, _ = stream_open(envelope, [key.secret], 1)
    assert (metadata, data) == (open_envelope(io.BytesIO(envelope), [key.secret]).metadata,
                                b"one byte at a time")  # fmt: skip


def test_another_key_names_the_recipients_and_opens_nothing(key):
    other = PrivateKey.generate(KeyKind.ENCRYPTION, "other")
    envelope = seal_bytes(b"for someone else", [other.public.key], Kind.MESSAGE)
    out = Collect()
    opener = StreamOpener(len(envelope), [key.secret], out)
    with pytest.raises(DecryptionError):
        opener.write(envelope)
    assert opener.header is not None
    assert opener.header.key_ids == {other.public.key_id}
    assert out.data == b""


def flip(envelope: bytes, at: int) -> bytes:
    changed = bytearray(envelope)
    changed[at] ^= 1
    return bytes(changed)


def refusals(envelope: bytes) -> dict[str, bytes]:
    return {
        "first chunk": flip(envelope, 200),
        "last chunk": flip(envelope, len(envelope) - 5),
        "header mac": flip(envelope, 150),
        "magic": flip(envelope, 0),
        "truncated": envelope[:-1],
        "truncated header": envelope[:50],
    }


@pytest.mark.parametrize(
    "case", ["first chunk", "last chunk", "header mac", "magic", "truncated", "truncated header"]
)
def test_what_open_envelope_refuses_the_stream_refuses(key, case):
    envelope = seal_bytes(os.urandom(3 * CHUNK), [key.public.key], Kind.FILE, "f")
    bad = refusals(envelope)[case]
    with pytest.raises((DecryptionError, FormatError)) as expected:
        open_envelope(io.BytesIO(bad), [key.secret]).read_all()
    with pytest.raises(expected.type):
        stream_open(bad, [key.secret], 4096)


def test_a_non_zero_byte_in_the_padding_is_refused(key):
    """An envelope sealed with a non-zero padding byte (made by hand, as an attacker
    holding the file key could) fails both ways."""
    from crypto.envelope.format import padded_size
    from crypto.envelope.header import build_header
    from crypto.envelope.stream import PayloadCipher, payload_key

    file_key, salt = os.urandom(32), os.urandom(16)
    for position in ("before the last chunk", "in the last chunk"):
        content = os.urandom(100)
        record = Metadata(Kind.FILE, len(content), "p", "").record()
        length = 3 * CHUNK if position == "before the last chunk" else len(content)
        padded = padded_size(length, len(record))
        plain = bytearray(padded)
        plain[: len(content)] = content
        plain[padded - len(record) - 4 :] = record + len(record).to_bytes(4, "big")
        plain[len(content) + (CHUNK if position == "before the last chunk" else 10)] = 7
        cipher = PayloadCipher(payload_key(file_key, salt))
        chunks = -(-padded // CHUNK)
        body = b"".join(
            cipher.seal_chunk(i, i == chunks - 1, bytes(plain[i * CHUNK : (i + 1) * CHUNK]))
            for i in range(chunks)
        )
        envelope = build_header([key.public.key], file_key, salt) + body
        with pytest.raises(DecryptionError):
            open_envelope(io.BytesIO(envelope), [key.secret]).read_all()
        with pytest.raises(DecryptionError):
            stream_open(envelope, [key.secret], 10_000)


def test_the_content_hash_matches(key):
    content = os.urandom(200_000) + bytes(1000)
    envelope = seal_bytes(content, [key.public.key], Kind.FILE, "h")
    digest = hashlib.sha256()

    class Hashing:
        def write(self, data: bytes | memoryview) -> None:
            digest.update(data)

    opener = StreamOpener(len(envelope), [key.secret], Hashing())
    opener.write(envelope)
    assert opener.finish().length == len(content)
    assert digest.hexdigest() == hashlib.sha256(content).hexdigest()
