"""Generate ``tests/vectors/envelope-v1.json``: envelope v1 vectors (docs/format.md section 3).

Everything is made from fixed inputs (recipient keys, file keys, payload salts, HPKE
ephemeral keys and content defined by a rule), so the output is byte-for-byte
reproducible. The file is language-neutral JSON meant to be replayed by every
implementation of the format, the browser's included.

Three kinds of vectors are written:

* ``positive``: envelopes that open, with the keys that open them, the expected record and
  the content's SHA-256. Envelopes up to ``HEX_LIMIT`` bytes are stored in full (hex);
  bigger ones by length and SHA-256 (a replayer seals them from the fixed inputs).
* ``negative``: mutations of one base envelope (three chunks, two recipients), each with
  the error class a reader must report when opening it, and the class a reader that only
  checks the header and the total length (no key) must report (``null``: those checks pass).
* ``tampered``: envelopes built with the base's file key, so that the header MAC verifies,
  but whose padded plaintext breaks a rule of section 3.4 or 3.5.

The expected error classes are written here by hand, one per vector, from the rules of
docs/format.md. While building, every vector is also checked against an independent,
literal reading of the spec (``spec_open``, below) and against the implementation in
``crypto.envelope``; any disagreement stops the generator with a list of them.

Usage (from the repository root)::

    .venv/bin/python tests/vectors/generate_envelope.py

``tests/crypto/test_envelope_vectors.py`` replays the file and checks that it equals
:func:`render`.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hpke import AEAD, KDF, KEM, Suite
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from crypto.envelope import (
    Kind,
    PayloadCipher,
    build_header,
    open_envelope,
    parse_header,
    payload_key,
    seal_bytes,
)
from crypto.errors import DecryptionError, FormatError, UnsupportedVersion
from crypto.keys import Algorithm, key_id, x25519_public

OUTPUT = Path(__file__).with_name("envelope-v1.json")

Json = dict[str, Any]

HEX_LIMIT = 70_000  # envelopes up to this size are stored in full
CONTENT_RULE = "content byte i (counting from 0) is i mod 251"
_PATTERN = bytes(range(251))

FORMAT = "format"
UNSUPPORTED = "unsupported_version"
DECRYPTION = "decryption"

# Sizes from docs/format.md section 3, restated rather than imported.
MAGIC = b"PSTRNENV"
PIECE = 65536
CT_CHUNK = PIECE + 16
STANZA = 96


def content(length: int) -> bytes:
    """The content of a vector: byte i is i mod 251."""
    return (_PATTERN * (length // len(_PATTERN) + 1))[:length]


def _fixed(label: str, size: int) -> bytes:
    """A fixed pseudo-random value (its hex is written to the JSON next to its use)."""
    return hashlib.sha256(b"postern envelope-v1 vector input\n" + label.encode()).digest()[:size]


# Recipient keys: simple byte patterns. "outsider" is never a recipient.
PRIVATE_KEYS: dict[str, bytes] = {
    "r1": bytes(range(0x01, 0x21)),
    "r2": bytes(range(0x21, 0x41)),
    "r3": bytes(range(0x41, 0x61)),
    "outsider": bytes(range(0x61, 0x81)),
}


def public_key(name: str) -> bytes:
    return x25519_public(PRIVATE_KEYS[name])


def recipient_key_id(name: str) -> bytes:
    return key_id(Algorithm.X25519, public_key(name))


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# =========================================================================================
# An independent, literal reading of docs/format.md section 3 (the "spec reader").
# It shares no code with crypto.envelope; it uses the HPKE of the `cryptography` package.
# =========================================================================================


class SpecFailure(Exception):
    """A rule of the spec is violated; ``error_class`` is the class the spec names."""

    def __init__(self, error_class: str, rule: str) -> None:
        super().__init__(f"{error_class}: {rule}")
        self.error_class = error_class
        self.rule = rule


def spec_padme(x: int) -> int:
    if x < 2:
        return x
    e = x.bit_length() - 1  # floor(log2(x))
    s = e.bit_length()  # floor(log2(E)) + 1
    mask = (1 << (e - s)) - 1
    return (x + mask) & ~mask


def spec_split_payload(t: int) -> tuple[int, int] | None:
    """(n, S) when T is a valid payload length (section 3.4), else None."""
    n = -(-t // CT_CHUNK)
    s = t - 16 * n
    if n < 1 or s <= PIECE * (n - 1) or s < 1024 or spec_padme(s) != s or s > 1 << 40:
        return None
    return n, s


def _spec_header(data: bytes) -> tuple[int, list[tuple[bytes, bytes, bytes]]]:
    """Header rules 1 to 5 of section 3.1; returns (header_len, stanzas)."""
    if len(data) < 10 or data[:8] != MAGIC:
        raise SpecFailure(FORMAT, "3.1 rule 1: at least 10 bytes and the magic")
    if data[8] != 0x01:
        raise SpecFailure(UNSUPPORTED, "3.1 rule 2: version")
    count = data[9]
    if not 1 <= count <= 32:
        raise SpecFailure(FORMAT, "3.1 rule 3: 1 <= N <= 32")
    header_len = 58 + STANZA * count
    if len(data) < header_len:
        raise SpecFailure(FORMAT, "3.1 rule 4: header_len bytes present")
    stanzas = []
    for i in range(count):
        at = 10 + STANZA * i
        stanzas.append((data[at : at + 16], data[at + 16 : at + 48], data[at + 48 : at + 96]))
    if len({s[0] for s in stanzas}) != count:
        raise SpecFailure(FORMAT, "3.1 rule 5: distinct key ids")
    return header_len, stanzas


def spec_check_without_key(data: bytes) -> str | None:
    """The class a key-less reader reports (rules 1 to 6 of section 3.1), or None."""
    try:
        header_len, _ = _spec_header(data)
        if spec_split_payload(len(data) - header_len) is None:
            raise SpecFailure(FORMAT, "3.1 rule 6: valid payload length")
    except SpecFailure as failure:
        return failure.error_class
    return None


def _hkdf(ikm: bytes, salt: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt or None, info=info).derive(ikm)


def _spec_record(record: bytes) -> Json:
    """Section 3.5 rules for the record; returns its fields."""
    fail = SpecFailure(DECRYPTION, "3.5: record")
    version, kind, length, f = struct.unpack_from(">BBQB", record, 0)
    if version != 1 or kind not in (1, 2, 3):
        raise fail
    if 11 + f >= len(record):
        raise fail
    name = record[11 : 11 + f]
    t = record[11 + f]
    media = record[12 + f :]
    if t > 127 or len(media) != t:
        raise fail
    try:
        filename = name.decode("utf-8")
    except UnicodeDecodeError:
        raise fail from None
    if any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F or c in "/\\" for c in filename):
        raise fail
    if kind != 2 and filename:
        raise fail
    if not all(0x20 <= b <= 0x7E for b in media):
        raise fail
    if length > (1 << 40) - 398:
        raise fail
    return {"kind": kind, "length": length, "filename": filename, "media_type": media.decode()}


def spec_open(data: bytes, private_keys: Sequence[bytes]) -> tuple[Json, bytes]:
    """Open an envelope following section 3 to the letter; raises SpecFailure."""
    header_len, stanzas = _spec_header(data)
    split = spec_split_payload(len(data) - header_len)
    if split is None:
        raise SpecFailure(DECRYPTION, "3.4: valid payload length (found while opening)")
    n, s = split
    held = {}
    for secret in private_keys:
        held[key_id(Algorithm.X25519, x25519_public(secret))] = secret
    suite = Suite(KEM.X25519, KDF.HKDF_SHA256, AEAD.AES_256_GCM)
    file_key = None
    for kid, enc, wrapped in stanzas:
        if kid not in held:
            continue
        info = b"postern/v1 envelope stanza" + b"\x00" + kid
        try:
            file_key = suite.decrypt(
                enc + wrapped, X25519PrivateKey.from_private_bytes(held[kid]), info=info
            )
        except (InvalidTag, ValueError):
            continue
        break
    if file_key is None:
        raise SpecFailure(DECRYPTION, "3.2: no stanza opens")
    mac_key = _hkdf(file_key, b"", b"postern/v1 envelope header")
    expected = hmac.new(mac_key, data[: header_len - 32], hashlib.sha256).digest()
    if not hmac.compare_digest(expected, data[header_len - 32 : header_len]):
        raise SpecFailure(DECRYPTION, "3.3: header MAC")
    salt = data[header_len - 48 : header_len - 32]
    aead = AESGCM(_hkdf(file_key, salt, b"postern/v1 envelope payload"))
    pieces = []
    for i in range(n):
        chunk = data[header_len + i * CT_CHUNK : header_len + (i + 1) * CT_CHUNK]
        nonce = i.to_bytes(11, "big") + (b"\x01" if i == n - 1 else b"\x00")
        try:
            pieces.append(aead.decrypt(nonce, chunk, None))
        except InvalidTag:
            raise SpecFailure(DECRYPTION, f"3.4: chunk {i}") from None
    padded = b"".join(pieces)
    assert len(padded) == s
    (m,) = struct.unpack(">I", padded[-4:])
    if not 12 <= m <= 394 or m + 4 > s:
        raise SpecFailure(DECRYPTION, "3.5: record length")
    record = _spec_record(padded[s - 4 - m : s - 4])
    length = record["length"]
    if s != spec_padme(max(length + m + 4, 1024)):
        raise SpecFailure(DECRYPTION, "3.5: padded size")
    if any(padded[length : s - 4 - m]):
        raise SpecFailure(DECRYPTION, "3.5: padding bytes are zero")
    return record, padded[:length]


def spec_class(data: bytes, private_keys: Sequence[bytes]) -> str | None:
    try:
        spec_open(data, private_keys)
    except SpecFailure as failure:
        return failure.error_class
    return None


# =========================================================================================
# The implementation under test, reduced to error classes.
# =========================================================================================


def implementation_class(data: bytes, private_keys: Sequence[bytes]) -> str | None:
    """Open with crypto.open_envelope and read everything; any other exception escapes."""
    try:
        open_envelope(io.BytesIO(data), private_keys).read_all()
    except UnsupportedVersion:
        return UNSUPPORTED
    except FormatError:
        return FORMAT
    except DecryptionError:
        return DECRYPTION
    return None


def implementation_class_without_key(data: bytes) -> str | None:
    """crypto.parse_header followed by Header.check_total_length (section 3.1, rules 1-6)."""
    try:
        parse_header(data).check_total_length(len(data))
    except UnsupportedVersion:
        return UNSUPPORTED
    except FormatError:
        return FORMAT
    return None


class VectorMismatch(AssertionError):
    """The hand-written expectation, the spec reader and the implementation disagree."""


# =========================================================================================
# Mutations (the JSON operations of negative vectors).
# =========================================================================================

MUTATION_OPS: dict[str, str] = {
    "none": "no change",
    "truncate": "keep the first `length` bytes",
    "flip": "XOR byte `offset` with 2^`bit` (bit 0 is the least significant)",
    "set_byte": "set byte `offset` to `value`",
    "write": "overwrite the bytes from `offset` with `hex`",
    "copy": "overwrite bytes `to` .. `to`+`length` with bytes `from` .. `from`+`length`",
    "swap": "exchange bytes `a` .. `a`+`length` with bytes `b` .. `b`+`length`",
    "insert": "insert `hex` before byte `offset`",
    "delete": "remove `length` bytes from `offset`",
    "append": "append `hex`",
    "append_copy": "append a copy of bytes `from` .. `from`+`length`",
    "drop_chunk": "remove chunk `index`",
    "duplicate_chunk": "insert a copy of chunk `index` right after it",
    "swap_chunks": "exchange chunks `a` and `b` (which may differ in length)",
}

CHUNK_LAYOUT = (
    "for the chunk operations, the envelope is cut into the base's header "
    "(`header_length` bytes) and chunks of 65552 bytes (the last one possibly shorter)"
)


def _split_chunks(data: bytes, header_length: int) -> tuple[bytes, list[bytes]]:
    body = data[header_length:]
    return data[:header_length], [body[i : i + CT_CHUNK] for i in range(0, len(body), CT_CHUNK)]


def _require(condition: bool) -> None:
    if not condition:
        raise ValueError("mutation out of range")


def apply_mutation(data: bytes, op: Json, header_length: int) -> bytes:
    """Apply one operation of MUTATION_OPS; offsets must lie inside the data."""
    name = op["op"]
    size = len(data)
    out = bytearray(data)
    if name == "none":
        pass
    elif name == "truncate":
        _require(0 <= op["length"] < size)
        del out[op["length"] :]
    elif name == "flip":
        _require(0 <= op["offset"] < size and 0 <= op["bit"] < 8)
        out[op["offset"]] ^= 1 << op["bit"]
    elif name == "set_byte":
        _require(0 <= op["offset"] < size and out[op["offset"]] != op["value"])
        out[op["offset"]] = op["value"]
    elif name == "write":
        new = bytes.fromhex(op["hex"])
        _require(op["offset"] + len(new) <= size)
        out[op["offset"] : op["offset"] + len(new)] = new
    elif name == "copy":
        _require(max(op["from"], op["to"]) + op["length"] <= size)
        out[op["to"] : op["to"] + op["length"]] = data[op["from"] : op["from"] + op["length"]]
    elif name == "swap":
        a, b, length = op["a"], op["b"], op["length"]
        _require(a + length <= b and b + length <= size)
        out[a : a + length], out[b : b + length] = data[b : b + length], data[a : a + length]
    elif name == "insert":
        _require(0 <= op["offset"] <= size)
        out[op["offset"] : op["offset"]] = bytes.fromhex(op["hex"])
    elif name == "delete":
        _require(op["offset"] + op["length"] <= size)
        del out[op["offset"] : op["offset"] + op["length"]]
    elif name == "append":
        out += bytes.fromhex(op["hex"])
    elif name == "append_copy":
        _require(op["from"] + op["length"] <= size)
        out += data[op["from"] : op["from"] + op["length"]]
    elif name in ("drop_chunk", "duplicate_chunk", "swap_chunks"):
        head, chunks = _split_chunks(data, header_length)
        if name == "drop_chunk":
            del chunks[op["index"]]
        elif name == "duplicate_chunk":
            chunks.insert(op["index"], chunks[op["index"]])
        else:
            chunks[op["a"]], chunks[op["b"]] = chunks[op["b"]], chunks[op["a"]]
        out = bytearray(head + b"".join(chunks))
    else:
        raise ValueError(f"unknown mutation {name!r}")
    return bytes(out)


def apply_mutations(data: bytes, ops: Sequence[Json], header_length: int) -> bytes:
    for op in ops:
        data = apply_mutation(data, op, header_length)
    return data


# =========================================================================================
# Positive vectors.
# =========================================================================================


@dataclass(frozen=True)
class Positive:
    id: str
    description: str
    kind: Kind
    length: int
    recipients: tuple[str, ...]
    filename: str = ""
    media_type: str = ""


_NON_ASCII_NAME = "Pr\u00fcfbericht \u2013 \u5be9\u8a08 \U0001f4c4 2026.pdf"
_LONGEST_NAME = "é" * 127 + "x"  # 255 bytes of UTF-8
_LONGEST_MEDIA = "".join(map(chr, range(0x20, 0x7F))) + "y" * 32  # 127 printable characters

POSITIVES: tuple[Positive, ...] = (
    Positive("message-empty", "empty message: 1024-byte padded plaintext, one chunk",
             Kind.MESSAGE, 0, ("r1",)),
    Positive("message-1", "one-byte message", Kind.MESSAGE, 1, ("r1",)),
    Positive("message-1008", "L + m + 4 = 1024 exactly: no padding at all",
             Kind.MESSAGE, 1008, ("r2",)),
    Positive("message-1009", "L + m + 4 = 1025: padded to padme(1025) = 1088",
             Kind.MESSAGE, 1009, ("r2",)),
    Positive("file-65535", "65535-byte file with a non-ASCII filename and a media type",
             Kind.FILE, 65535, ("r1",), _NON_ASCII_NAME, "application/pdf"),
    Positive("reply-65536", "65536-byte reply: content fills chunk 0, trailer in chunk 1",
             Kind.REPLY, 65536, ("r1",)),
    Positive("file-65537", "65537-byte file", Kind.FILE, 65537, ("r2",), "data.csv", "text/csv"),
    Positive("message-65520", "S = 65536 exactly: a single full chunk, flagged last",
             Kind.MESSAGE, 65520, ("r1",)),
    Positive("file-longest-record", "255-byte filename and 127-byte media type: m = 394",
             Kind.FILE, 300, ("r3",), _LONGEST_NAME, _LONGEST_MEDIA),
    Positive("message-3-recipients", "message sealed to three recipients",
             Kind.MESSAGE, 4000, ("r1", "r2", "r3")),
    Positive("file-10MiB", "10 MiB file sealed to two recipients (stored by SHA-256)",
             Kind.FILE, 10 * 1024 * 1024, ("r1", "r2"), "archive.zip", "application/zip"),
    Positive("negative-base", "the base of the negative vectors: 3 chunks, 2 recipients",
             Kind.FILE, 133_000, ("r1", "r2"), "leak.tar", "application/x-tar"),
)  # fmt: skip


def _inputs(vector_id: str, recipients: Sequence[str]) -> tuple[bytes, bytes, list[bytes]]:
    return (
        _fixed(f"{vector_id} file_key", 32),
        _fixed(f"{vector_id} payload_salt", 16),
        [_fixed(f"{vector_id} ephemeral {name}", 32) for name in recipients],
    )


def seal_positive(vector: Positive) -> bytes:
    file_key, salt, ephemerals = _inputs(vector.id, vector.recipients)
    return seal_bytes(
        content(vector.length),
        [public_key(name) for name in vector.recipients],
        vector.kind,
        vector.filename,
        vector.media_type,
        file_key=file_key,
        payload_salt=salt,
        ephemeral_keys=ephemerals,
    )


def _record(kind: int, length: int, filename: bytes, media_type: bytes) -> bytes:
    return (
        struct.pack(">BBQB", 1, kind, length, len(filename))
        + filename
        + bytes([len(media_type)])
        + media_type
    )


def _build_positive(vector: Positive, errors: list[str]) -> tuple[Json, bytes]:
    file_key, salt, ephemerals = _inputs(vector.id, vector.recipients)
    data = seal_positive(vector)
    body = content(vector.length)
    filename, media = vector.filename.encode(), vector.media_type.encode("ascii")
    record = _record(int(vector.kind), vector.length, filename, media)
    padded = spec_padme(max(vector.length + len(record) + 4, 1024))
    chunks = -(-padded // PIECE)
    header_len = 58 + STANZA * len(vector.recipients)
    if len(data) != header_len + padded + 16 * chunks:
        errors.append(f"{vector.id}: envelope length {len(data)} differs from the spec's")
    outsiders = [n for n in PRIVATE_KEYS if n not in vector.recipients]
    for name in vector.recipients:
        try:
            fields, opened = spec_open(data, [PRIVATE_KEYS[name]])
        except SpecFailure as failure:
            errors.append(f"{vector.id}: the spec reader rejects it with {name}: {failure}")
            continue
        if opened != body or fields != {
            "kind": int(vector.kind),
            "length": vector.length,
            "filename": vector.filename,
            "media_type": vector.media_type,
        }:
            errors.append(f"{vector.id}: the spec reader opens it to something else")
        if implementation_class(data, [PRIVATE_KEYS[name]]) is not None:
            errors.append(f"{vector.id}: the implementation does not open it with {name}")
    for name in outsiders:
        for check in (spec_class, implementation_class):
            if check(data, [PRIVATE_KEYS[name]]) != DECRYPTION:
                errors.append(f"{vector.id}: {check.__name__} with non-recipient {name}")
    entry: Json = {
        "id": vector.id,
        "description": vector.description,
        "recipients": list(vector.recipients),
        "file_key": file_key.hex(),
        "payload_salt": salt.hex(),
        "ephemeral_private_keys": [e.hex() for e in ephemerals],
        "content": {"length": vector.length, "sha256": _sha256(body)},
        "record": {
            "kind": vector.kind.name.lower(),
            "kind_value": int(vector.kind),
            "length": vector.length,
            "filename": vector.filename,
            "filename_hex": filename.hex(),
            "media_type": vector.media_type,
            "hex": record.hex(),
        },
        "padded_length": padded,
        "chunks": chunks,
        "header_length": header_len,
        "header_hex": data[:header_len].hex(),
        "envelope_length": len(data),
        "envelope_sha256": _sha256(data),
        "open_with": list(vector.recipients),
        "fail_with": outsiders,
    }
    if len(data) <= HEX_LIMIT:
        entry["envelope_hex"] = data.hex()
    return entry, data


# =========================================================================================
# Negative vectors: mutations of the base envelope, with hand-written expectations.
# =========================================================================================

# Layout of the base ("negative-base"): N = 2, header_len = 58 + 192 = 250; content
# 133000 bytes and a 37-byte record give S = padme(133041) = 135168 = 2 * 65536 + 4096,
# so n = 3 chunks of 65552, 65552 and 4112 bytes, T = 135216 and 135466 bytes in all.
H = 250
C0, C1, C2 = H, H + CT_CHUNK, H + 2 * CT_CHUNK
END = C2 + 4096 + 16
STANZA_AT = (10, 106)
SALT_AT = 202
MAC_AT = 218

# Key sets a reader holds while opening. The expected class holds for each of them.
RECIPIENTS = [["r1"], ["r2"], ["r1", "r2"]]
NON_RECIPIENTS = [["outsider"], [], ["outsider", "r3"]]


@dataclass(frozen=True)
class Negative:
    id: str
    description: str
    mutations: tuple[Json, ...]
    error: str  # opening with a key
    error_without_key: str | None  # rules 1-6 of section 3.1 with the total length known
    key_sets: tuple[tuple[str, ...], ...] = tuple(map(tuple, RECIPIENTS))


def _negatives(base: bytes, other_header: bytes, foreign_stanza: bytes) -> list[Negative]:
    out: list[Negative] = []

    def add(
        vid: str,
        description: str,
        ops: Sequence[Json],
        error: str,
        error_without_key: str | None,
        key_sets: Sequence[Sequence[str]] = RECIPIENTS,
    ) -> None:
        out.append(
            Negative(
                vid,
                description,
                tuple(ops),
                error,
                error_without_key,
                tuple(tuple(k) for k in key_sets),
            )
        )

    def truncate(length: int) -> Json:
        return {"op": "truncate", "length": length}

    def flip(offset: int, bit: int) -> Json:
        return {"op": "flip", "offset": offset, "bit": bit}

    def set_byte(offset: int, value: int) -> Json:
        return {"op": "set_byte", "offset": offset, "value": value}

    # -- truncation ------------------------------------------------------------------------
    # In the header: rule 1 (fewer than 10 bytes) or rule 4 (fewer than header_len): format.
    header_cuts = [
        (0, "empty input"),
        (3, "inside the magic"),
        (8, "after the magic, no version"),
        (9, "after the version, no stanza count"),
        (10, "after the stanza count, no stanza"),
        (20, "inside stanza 0's key id"),
        (40, "inside stanza 0's enc"),
        (80, "inside stanza 0's wrapped file key"),
        (106, "at the boundary between stanza 0 and stanza 1"),
        (150, "inside stanza 1"),
        (202, "after the stanzas, no payload salt"),
        (210, "inside the payload salt"),
        (218, "after the payload salt, no header MAC"),
        (230, "inside the header MAC"),
        (249, "one byte short of the header"),
    ]
    for length, where in header_cuts:
        add(f"truncate-{length}", f"truncated to {length} bytes: {where}", [truncate(length)],
            FORMAT, FORMAT)  # fmt: skip
    # In the payload: T = length - 250. Opening, any truncation is `decryption`; without a
    # key it is `format` exactly when T is not a valid payload length (section 3.4).
    payload_cuts: list[tuple[int, str, str | None]] = [
        (H, "header only (T = 0)", FORMAT),
        (C0 + 1, "one byte of chunk 0 (T = 1)", FORMAT),
        (C0 + 16, "16 bytes of chunk 0 (T = 16: n = 1, S = 0)", FORMAT),
        (C0 + 1040, "inside chunk 0 at T = 1040 (n = 1, S = 1024: a valid length)", None),
        (C0 + PIECE, "inside chunk 0's tag (T = 65536: S = 65520 is no Padmé value)", FORMAT),
        (C1 - 1, "one byte short of chunk 0's end (T = 65551)", FORMAT),
        (C1, "at the boundary of chunks 0 and 1 (T = 65552: n = 1, S = 65536, valid)", None),
        (C1 + 1, "one byte into chunk 1 (T = 65553: n = 2, S = 65521, last chunk empty)",
         FORMAT),
        (C1 + 16, "16 bytes into chunk 1 (T = 65568: n = 2, S = 65536, last chunk empty)",
         FORMAT),
        (C1 + 2048 + 16, "inside chunk 1 at T = 67616 (n = 2, S = 67584: valid)", None),
        (C1 + 30000, "inside chunk 1 (T = 95552: S = 95520 is no Padmé value)", FORMAT),
        (C2, "at the boundary of chunks 1 and 2 (T = 131104: n = 2, S = 131072, valid)", None),
        (C2 + 1, "one byte into chunk 2 (T = 131105)", FORMAT),
        (C2 + 2000, "inside chunk 2's body (T = 133104)", FORMAT),
        (END - 16, "chunk 2 without its tag (T = 135200)", FORMAT),
        (END - 8, "inside chunk 2's tag (T = 135208)", FORMAT),
        (END - 1, "one byte short (T = 135215)", FORMAT),
    ]  # fmt: skip
    for length, where, keyless in payload_cuts:
        add(f"truncate-{length}", f"truncated to {length} bytes: {where}", [truncate(length)],
            DECRYPTION, keyless)  # fmt: skip

    # -- chunks dropped, duplicated, reordered -----------------------------------------------
    # Dropping chunk 0 or 1 leaves T = 69664 (n = 2, S = 69632 = 17 * 4096, valid); dropping
    # chunk 2 leaves T = 131104 (valid). Duplicating chunk 0 or 1 gives T = 200768 (n = 4,
    # S = 200704 = 49 * 4096, valid); duplicating chunk 2 gives T = 139328 (S = 139280,
    # not a Padmé value). Swaps keep T. Opening, every one fails a nonce: `decryption`.
    for index, keyless in ((0, None), (1, None), (2, None)):
        add(f"drop-chunk-{index}", f"chunk {index} removed",
            [{"op": "drop_chunk", "index": index}], DECRYPTION, keyless)  # fmt: skip
    for index, keyless in ((0, None), (1, None), (2, FORMAT)):
        add(f"duplicate-chunk-{index}", f"chunk {index} repeated right after itself",
            [{"op": "duplicate_chunk", "index": index}], DECRYPTION, keyless)  # fmt: skip
    for a, b in ((0, 1), (1, 2), (0, 2)):
        add(f"swap-chunks-{a}-{b}", f"chunks {a} and {b} exchanged",
            [{"op": "swap_chunks", "a": a, "b": b}], DECRYPTION, None)  # fmt: skip
    add("copy-chunk-0-over-1", "chunk 1 replaced by a copy of chunk 0",
        [{"op": "copy", "from": C0, "to": C1, "length": CT_CHUNK}], DECRYPTION, None)  # fmt: skip

    # -- a flipped bit in every region -------------------------------------------------------
    add("flip-magic-0", "bit 0 of the first magic byte", [flip(0, 0)], FORMAT, FORMAT)
    add("flip-magic-7", "bit 7 of the last magic byte", [flip(7, 7)], FORMAT, FORMAT)
    # version 0x01 -> 0x00, 0x03, 0x81: rule 2.
    for bit in (0, 1, 7):
        add(f"flip-version-bit-{bit}", f"bit {bit} of the version byte", [flip(8, bit)],
            UNSUPPORTED, UNSUPPORTED)  # fmt: skip
    # N = 2 -> 0 (bit 1), 34 (bit 5), 66 (bit 6), 130 (bit 7): rule 3, `format`.
    # N = 3, 6, 10, 18 (bits 0, 2, 3, 4): rules 1-5 pass (the extra "stanzas" are read from
    # the salt, MAC and payload, with distinct key ids) but T = 135120, 134832, 134448,
    # 133680 is not a valid payload length: `format` without a key; opening, the header MAC
    # (and the length) fail: `decryption`.
    for bit, count in ((1, 0), (5, 34), (6, 66), (7, 130)):
        add(f"flip-count-bit-{bit}", f"bit {bit} of the stanza count (N = {count})",
            [flip(9, bit)], FORMAT, FORMAT)  # fmt: skip
    for bit, count in ((0, 3), (2, 6), (3, 10), (4, 18)):
        add(f"flip-count-bit-{bit}", f"bit {bit} of the stanza count (N = {count})",
            [flip(9, bit)], DECRYPTION, FORMAT)  # fmt: skip
    # Stanzas, salt, MAC: the header stays well formed; opening fails (the stanza does not
    # open, or another stanza opens and the header MAC does not verify).
    for s, at in enumerate(STANZA_AT):
        for offset, bit, where in (
            (at, 0, "key id, first byte"),
            (at + 15, 7, "key id, last byte"),
            (at + 16, 0, "enc, first byte"),
            (at + 47, 6, "enc, last byte"),
            (at + 47, 7, "enc, bit 255 (ignored by X25519, not by HPKE's kem_context)"),
            (at + 48, 0, "wrapped file key, first byte"),
            (at + 79, 3, "wrapped file key, last ciphertext byte"),
            (at + 95, 7, "wrapped file key, last tag byte"),
        ):
            add(f"flip-stanza-{s}-{offset}-{bit}", f"stanza {s}: {where}", [flip(offset, bit)],
                DECRYPTION, None)  # fmt: skip
    for offset, bit, where in (
        (SALT_AT, 0, "payload salt, first byte"),
        (SALT_AT + 15, 7, "payload salt, last byte"),
        (MAC_AT, 0, "header MAC, first byte"),
        (MAC_AT + 31, 7, "header MAC, last byte"),
    ):
        add(f"flip-{offset}-{bit}", where, [flip(offset, bit)], DECRYPTION, None)
    for index, start, size in ((0, C0, PIECE), (1, C1, PIECE), (2, C2, 4096)):
        for offset, bit, where in (
            (start, 0, "first body byte"),
            (start + size // 2, 4, "middle body byte"),
            (start + size - 1, 7, "last body byte"),
            (start + size, 0, "first tag byte"),
            (start + size + 15, 7, "last tag byte"),
        ):
            add(f"flip-chunk-{index}-{offset}-{bit}", f"chunk {index}: {where}",
                [flip(offset, bit)], DECRYPTION, None)  # fmt: skip

    # -- wrong key ---------------------------------------------------------------------------
    add("wrong-key", "unchanged envelope, opened with keys that are not recipients",
        [{"op": "none"}], DECRYPTION, None, NON_RECIPIENTS)  # fmt: skip

    # -- unknown version and the order of the header rules ---------------------------------
    add("version-2", "version 0x02", [set_byte(8, 2)], UNSUPPORTED, UNSUPPORTED)
    add("version-0", "version 0x00", [set_byte(8, 0)], UNSUPPORTED, UNSUPPORTED)
    add("version-255", "version 0xff", [set_byte(8, 255)], UNSUPPORTED, UNSUPPORTED)
    add("version-2-count-0", "version 0x02 and N = 0: rule 2 comes before rule 3",
        [set_byte(8, 2), set_byte(9, 0)], UNSUPPORTED, UNSUPPORTED)  # fmt: skip
    add("version-2-truncate-10", "version 0x02, 10 bytes: rule 2 comes before rule 4",
        [set_byte(8, 2), truncate(10)], UNSUPPORTED, UNSUPPORTED)  # fmt: skip
    add("version-2-truncate-9", "version 0x02, 9 bytes: rule 1 (10 bytes) comes first",
        [set_byte(8, 2), truncate(9)], FORMAT, FORMAT)  # fmt: skip
    add("bad-magic-version-2", "bad magic and version 0x02: rule 1 comes first",
        [flip(0, 1), set_byte(8, 2)], FORMAT, FORMAT)  # fmt: skip

    # -- trailing data -----------------------------------------------------------------------
    add("append-1", "one byte appended (T = 135217)", [{"op": "append", "hex": "00"}],
        DECRYPTION, FORMAT)  # fmt: skip
    add("append-16", "16 zero bytes appended (T = 135232: S = 135184)",
        [{"op": "append", "hex": "00" * 16}], DECRYPTION, FORMAT)  # fmt: skip
    add("append-chunk-0", "a copy of chunk 0 appended: T = 200768 is valid, and the "
        "real last chunk is then tried with the flag clear",
        [{"op": "append_copy", "from": C0, "length": CT_CHUNK}], DECRYPTION, None)  # fmt: skip
    add("append-last-chunk", "a copy of the last chunk appended (T = 139328)",
        [{"op": "append_copy", "from": C2, "length": END - C2}], DECRYPTION, FORMAT)  # fmt: skip

    # -- stanza count and stanzas ------------------------------------------------------------
    add("count-0", "N = 0", [set_byte(9, 0)], FORMAT, FORMAT)
    add("count-33", "N = 33", [set_byte(9, 33)], FORMAT, FORMAT)
    add("count-255", "N = 255", [set_byte(9, 255)], FORMAT, FORMAT)
    add("count-32", "N = 32: header_len = 3130 bytes are present, key ids distinct, but "
        "T = 132336 is not a valid payload length", [set_byte(9, 32)],
        DECRYPTION, FORMAT)  # fmt: skip
    add("count-1", "N = 1 without removing stanza 1 (T = 135312)", [set_byte(9, 1)],
        DECRYPTION, FORMAT)  # fmt: skip
    add("count-3-header-only", "N = 3 on the 250-byte header: fewer than header_len bytes",
        [truncate(H), set_byte(9, 3)], FORMAT, FORMAT)  # fmt: skip
    add("count-32-truncate-3000", "N = 32 (header_len = 3130) on 3000 bytes",
        [set_byte(9, 32), truncate(3000)], FORMAT, FORMAT)  # fmt: skip
    add("duplicate-stanza", "stanza 0 copied over stanza 1: duplicate key id",
        [{"op": "copy", "from": 10, "to": 106, "length": STANZA}], FORMAT, FORMAT)  # fmt: skip
    add("duplicate-key-id", "stanza 0's key id copied over stanza 1's",
        [{"op": "copy", "from": 10, "to": 106, "length": 16}], FORMAT, FORMAT)  # fmt: skip
    add("duplicate-stanza-added", "a copy of stanza 0 inserted as stanza 2, N = 3",
        [{"op": "insert", "offset": SALT_AT, "hex": base[10 : 10 + STANZA].hex()},
         set_byte(9, 3)], FORMAT, FORMAT)  # fmt: skip
    add("remove-stanza-1", "stanza 1 removed and N = 1: the header MAC binds the stanzas",
        [{"op": "delete", "offset": 106, "length": STANZA}, set_byte(9, 1)],
        DECRYPTION, None)  # fmt: skip
    add("remove-stanza-0", "stanza 0 removed and N = 1",
        [{"op": "delete", "offset": 10, "length": STANZA}, set_byte(9, 1)],
        DECRYPTION, None)  # fmt: skip
    add("swap-stanzas", "stanzas 0 and 1 exchanged",
        [{"op": "swap", "a": 10, "b": 106, "length": STANZA}], DECRYPTION, None)  # fmt: skip
    add("add-foreign-stanza", "r3's stanza from message-3-recipients added, N = 3",
        [{"op": "insert", "offset": SALT_AT, "hex": foreign_stanza.hex()}, set_byte(9, 3)],
        DECRYPTION, None, [*RECIPIENTS, ["r3"], ["r1", "r2", "r3"]])  # fmt: skip
    add("enc-zero", "stanza 0's enc set to the all-zero (low-order) X25519 point",
        [{"op": "write", "offset": 26, "hex": "00" * 32}], DECRYPTION, None)  # fmt: skip
    add("enc-one", "stanza 0's enc set to the low-order point u = 1",
        [{"op": "write", "offset": 26, "hex": "01" + "00" * 31}], DECRYPTION, None)  # fmt: skip
    add("salt-zero", "payload salt set to zeros",
        [{"op": "write", "offset": SALT_AT, "hex": "00" * 16}], DECRYPTION, None)  # fmt: skip
    add("mac-zero", "header MAC set to zeros",
        [{"op": "write", "offset": MAC_AT, "hex": "00" * 32}], DECRYPTION, None)  # fmt: skip
    add("other-header", "header replaced by file-10MiB's (same recipients, other file key)",
        [{"op": "write", "offset": 0, "hex": other_header.hex()}], DECRYPTION, None)  # fmt: skip
    return out


# =========================================================================================
# Tampered vectors: valid header MAC, broken padded plaintext (built with the file key).
# =========================================================================================

TAMPERED_RECIPIENTS = ("r1", "r2")
TAMPERED_HEX_LIMIT = 8192  # bigger tampered envelopes are given by recipe and SHA-256

TAMPERED_RECIPE = (
    "the envelope is `header_hex` (the base's header: r1 and r2, the base's file_key, "
    "payload_salt and ephemeral keys) followed by the chunks. P = content(content_length) "
    "|| zero bytes || record || u32be(trailer_length), padded_length bytes in all; `pad_byte` "
    "sets one byte of the zero bytes (offset counted from their start). Each chunk is "
    "AES-256-GCM(payload_key, nonce(index, last), P[start:end]), where payload_key is "
    "derived from file_key and `payload_salt` (the header's salt when null)"
)


def _tampered_inputs() -> tuple[bytes, bytes, list[bytes]]:
    return _inputs("negative-base", TAMPERED_RECIPIENTS)


def tampered_header() -> bytes:
    file_key, salt, ephemerals = _tampered_inputs()
    return build_header([public_key(n) for n in TAMPERED_RECIPIENTS], file_key, salt, ephemerals)


def padded_plaintext(plaintext: Json) -> bytes:
    """P for a tampered recipe's `plaintext` member."""
    body = content(plaintext["content_length"])
    record = bytes.fromhex(plaintext["record_hex"])
    padding = bytearray(plaintext["padded_length"] - len(body) - len(record) - 4)
    if plaintext["pad_byte"] is not None:
        padding[plaintext["pad_byte"]["offset"]] = plaintext["pad_byte"]["value"]
    return body + bytes(padding) + record + struct.pack(">I", plaintext["trailer_length"])


def seal_tampered(recipe: Json) -> bytes:
    """Build a tampered envelope from its recipe (see TAMPERED_RECIPE)."""
    file_key, base_salt, _ = _tampered_inputs()
    salt = base_salt if recipe["payload_salt"] is None else bytes.fromhex(recipe["payload_salt"])
    cipher = PayloadCipher(payload_key(file_key, salt))
    padded = padded_plaintext(recipe["plaintext"])
    out = [tampered_header()]
    for chunk in recipe["chunks"]:
        piece = padded[chunk["start"] : chunk["end"]]
        sealed = bytearray(len(piece) + 16)
        # seal_chunk refuses an empty piece after index 0; the *_into form does not check.
        cipher.seal_chunk_into(chunk["index"], chunk["last"], memoryview(piece), memoryview(sealed))
        out.append(bytes(sealed))
    return b"".join(out)


def _recipe(
    record: bytes,
    *,
    content_length: int = 100,
    padded_length: int = 1024,
    trailer_length: int | None = None,
    pad_byte: tuple[int, int] | None = None,
    chunks: Sequence[tuple[int, bool]] | None = None,
    slices: Sequence[tuple[int, int]] | None = None,
    payload_salt: bytes | None = None,
) -> Json:
    """A recipe. By default P is cut into pieces of 65536 bytes as a writer would, and
    sealed with their own indexes and flags; `chunks` gives other (index, last) pairs and
    `slices` other (start, end) pieces of P."""
    count = -(-padded_length // PIECE)
    if chunks is None:
        chunks = [(i, i == count - 1) for i in range(count)]
    if slices is None:
        slices = [(i * PIECE, min((i + 1) * PIECE, padded_length)) for i in range(count)]
    return {
        "plaintext": {
            "content_length": content_length,
            "record_hex": record.hex(),
            "trailer_length": len(record) if trailer_length is None else trailer_length,
            "padded_length": padded_length,
            "pad_byte": None if pad_byte is None else {"offset": pad_byte[0], "value": pad_byte[1]},
        },
        "chunks": [
            {"index": index, "last": last, "start": start, "end": end}
            for (index, last), (start, end) in zip(chunks, slices, strict=True)
        ],
        "payload_salt": None if payload_salt is None else payload_salt.hex(),
    }


@dataclass(frozen=True)
class Tampered:
    id: str
    description: str
    recipe: Json
    error: str
    error_without_key: str | None = None


def _tampered() -> list[Tampered]:
    cases: list[Tampered] = []

    def add(vid: str, description: str, recipe: Json, keyless: str | None = None) -> None:
        # Under the key every one of these is `decryption` (sections 3.4 and 3.5).
        cases.append(Tampered(vid, description, recipe, DECRYPTION, keyless))

    def rec(kind: int = 1, length: int = 100, name: bytes = b"", media: bytes = b"") -> bytes:
        return _record(kind, length, name, media)

    # filename and kind rules (section 3.5)
    for vid, name, why in (
        ("filename-slash", b"a/b.txt", "'/'"),
        ("filename-backslash", b"a\\b.txt", "'\\'"),
        ("filename-dotdot-slash", b"../x", "'/' (path traversal)"),
        ("filename-nul", b"a\x00b", "U+0000"),
        ("filename-c0", b"a\x1fb", "U+001F"),
        ("filename-del", b"a\x7fb", "U+007F"),
        ("filename-c1", "a\u0085b".encode(), "U+0085 (C1 control)"),
        ("filename-bad-utf8", b"a\xffb", "a byte that is never UTF-8"),
        ("filename-overlong-utf8", b"a\xc0\xafb", "an overlong UTF-8 '/'"),
        ("filename-surrogate-utf8", b"a\xed\xa0\x80b", "an encoded UTF-16 surrogate"),
        ("filename-truncated-utf8", b"a\xc3", "a truncated UTF-8 sequence"),
    ):
        add(vid, f"file record whose filename contains {why}", _recipe(rec(2, name=name)))
    add("message-with-filename", "message record with a filename", _recipe(rec(1, name=b"x.txt")))
    add("reply-with-filename", "reply record with a filename", _recipe(rec(3, name=b"x.txt")))
    add("media-type-del", "media type with 0x7F", _recipe(rec(2, media=b"text/\x7f")))
    add("media-type-control", "media type with 0x09", _recipe(rec(2, media=b"text/\tplain")))
    add("media-type-non-ascii", "media type with UTF-8 'é'",
        _recipe(rec(2, media="caf\u00e9/x".encode())))  # fmt: skip
    add("media-type-128", "media type of 128 bytes (t > 127)",
        _recipe(rec(2, media=b"m" * 128)))  # fmt: skip
    add("record-version-0", "record_version 0x00", _recipe(b"\x00" + rec()[1:]))
    add("record-version-2", "record_version 0x02", _recipe(b"\x02" + rec()[1:]))
    add("kind-0", "kind 0x00", _recipe(rec(0)))
    add("kind-4", "kind 0x04", _recipe(rec(4)))
    add("kind-255", "kind 0xff", _recipe(rec(255)))
    # record length m
    add("record-length-0", "m = 0", _recipe(rec(), trailer_length=0))
    add("record-length-11", "m = 11 (below 12)", _recipe(rec(), trailer_length=11))
    add("record-length-13", "m = 13 for a 12-byte record: f and t do not add up to m",
        _recipe(rec(), trailer_length=13))  # fmt: skip
    add("record-length-395", "m = 395 (above 394)", _recipe(rec(), trailer_length=395))
    add("record-length-max", "m = 2^32 - 1", _recipe(rec(), trailer_length=0xFFFFFFFF))
    add("record-extra-byte", "a byte after the media type, counted in m (12 + f + t < m)",
        _recipe(rec(2, media=b"a/b") + b"\x00"))  # fmt: skip
    add("record-filename-overruns", "f = 200 in a 13-byte record",
        _recipe(struct.pack(">BBQB", 1, 2, 100, 200) + b"\x00\x00"))  # fmt: skip
    # content length, padded size and padding
    add("padding-first-byte", "the first padding byte is 0x01", _recipe(rec(), pad_byte=(0, 1)))
    add("padding-last-byte", "the last padding byte (just before the record) is 0x80",
        _recipe(rec(), pad_byte=(1024 - 100 - 12 - 4 - 1, 0x80)))  # fmt: skip
    add("padding-in-chunk-0", "a non-zero padding byte in chunk 0 of a 2-chunk envelope",
        _recipe(rec(1, 60000), content_length=60000, padded_length=67584,
                pad_byte=(5000, 1)))  # fmt: skip
    add("padded-size-too-big", "S = 2048 (a Padmé value) where padme(max(U, 1024)) = 1024",
        _recipe(rec(), padded_length=2048))  # fmt: skip
    add("padded-size-too-small", "L = 1009 (U = 1025) in S = 1024: the record claims more "
        "content than fits", _recipe(rec(1, 1009), content_length=1008))  # fmt: skip
    add("length-over-max", "L = 2^40 - 397, above the maximum content length",
        _recipe(rec(1, (1 << 40) - 397), content_length=0))  # fmt: skip
    add("length-2-64-minus-1", "L = 2^64 - 1", _recipe(rec(1, (1 << 64) - 1), content_length=0))
    # chunk structure under the right key
    add("empty-final-chunk", "S = 65536 sealed as a full chunk 0 and an empty last chunk 1 "
        "(T = 65568: S is not greater than 65536 * (n - 1))",
        _recipe(rec(1, 65000), content_length=65000, padded_length=PIECE,
                chunks=[(0, False), (1, True)], slices=[(0, PIECE), (PIECE, PIECE)]),
        FORMAT)  # fmt: skip
    add("single-empty-chunk", "the payload is one empty chunk (T = 16)",
        _recipe(rec(), slices=[(0, 0)]), FORMAT)  # fmt: skip
    add("last-flag-clear", "a one-chunk envelope whose only chunk has the flag clear",
        _recipe(rec(), chunks=[(0, False)]))  # fmt: skip
    add("every-flag-set", "a 2-chunk envelope whose chunk 0 also has the last flag",
        _recipe(rec(1, 60000), content_length=60000, padded_length=67584,
                chunks=[(0, True), (1, True)]))  # fmt: skip
    add("wrong-chunk-index", "a 2-chunk envelope whose last chunk is sealed as chunk 2",
        _recipe(rec(1, 60000), content_length=60000, padded_length=67584,
                chunks=[(0, False), (2, True)]))  # fmt: skip
    add("other-payload-salt", "chunks sealed under the payload key of another salt",
        _recipe(rec(), payload_salt=bytes(16)))  # fmt: skip
    return cases


# =========================================================================================
# Assembly.
# =========================================================================================


def _check_class(
    errors: list[str],
    vid: str,
    data: bytes,
    key_sets: Sequence[Sequence[str]],
    error: str,
    error_without_key: str | None,
) -> None:
    spec_keyless = spec_check_without_key(data)
    impl_keyless = implementation_class_without_key(data)
    if not error_without_key == spec_keyless == impl_keyless:
        errors.append(
            f"{vid} without key: written {error_without_key}, spec reader {spec_keyless}, "
            f"implementation {impl_keyless}"
        )
    for names in key_sets:
        keys = [PRIVATE_KEYS[n] for n in names]
        spec = spec_class(data, keys)
        impl = implementation_class(data, keys)
        if not error == spec == impl:
            errors.append(
                f"{vid} with {list(names)}: written {error}, spec reader {spec}, "
                f"implementation {impl}"
            )


def build() -> Json:
    """Build the whole document; raise VectorMismatch listing every disagreement."""
    errors: list[str] = []
    positives = []
    sealed: dict[str, bytes] = {}
    for vector in POSITIVES:
        entry, data = _build_positive(vector, errors)
        positives.append(entry)
        sealed[vector.id] = data

    base = sealed["negative-base"]
    assert len(base) == END
    assert parse_header(base).length == H
    three = sealed["message-3-recipients"]
    foreign = three[10 + 2 * STANZA : 10 + 3 * STANZA]
    assert foreign[:16] == recipient_key_id("r3")
    other_header = sealed["file-10MiB"][:H]

    negatives = []
    for neg in _negatives(base, other_header, foreign):
        ops = list(neg.mutations)
        data = apply_mutations(base, ops, H)
        assert data != base or neg.error == DECRYPTION
        _check_class(errors, neg.id, data, neg.key_sets, neg.error, neg.error_without_key)
        negatives.append(
            {
                "id": neg.id,
                "description": neg.description,
                "mutations": ops,
                "key_sets": [list(k) for k in neg.key_sets],
                "error": neg.error,
                "error_without_key": neg.error_without_key,
                "length": len(data),
                "sha256": _sha256(data),
            }
        )

    tampered = []
    key_sets = [["r1"], ["r2"], ["r1", "r2"]]
    for case in _tampered():
        data = seal_tampered(case.recipe)
        _check_class(errors, case.id, data, key_sets, case.error, case.error_without_key)
        entry = {
            "id": case.id,
            "description": case.description,
            "key_sets": key_sets,
            "error": case.error,
            "error_without_key": case.error_without_key,
            **case.recipe,
            "envelope_length": len(data),
            "envelope_sha256": _sha256(data),
        }
        if len(data) <= TAMPERED_HEX_LIMIT:
            entry["envelope_hex"] = data.hex()
        tampered.append(entry)

    if errors:
        raise VectorMismatch(
            "the vectors, docs/format.md and crypto.envelope disagree:\n" + "\n".join(errors)
        )
    file_key, salt, _ = _tampered_inputs()
    return {
        "description": "Postern envelope v1 test vectors (docs/format.md section 3)",
        "generator": "tests/vectors/generate_envelope.py",
        "conventions": {
            "hex": "lowercase hex strings; lengths and offsets are plain byte counts",
            "content": CONTENT_RULE + " (`content` gives its length and SHA-256)",
            "keys": "X25519 private keys are the 32-byte scalar before clamping",
            "error_classes": {
                FORMAT: "docs/format.md section 1: not a valid instance, detected without a key",
                UNSUPPORTED: "the magic with an unknown version",
                DECRYPTION: "anything that fails under a key (one opaque error)",
            },
            "error": "the class reported by a reader holding each of `key_sets` that opens "
            "the envelope and reads all of its content",
            "error_without_key": "the class reported by a reader that checks rules 1 to 6 of "
            "section 3.1 only, knowing the total length; null: those checks pass",
            "positive": "sealing `content` to `recipients` (in this order, with "
            "`ephemeral_private_keys` in the same order) with `file_key` and `payload_salt` "
            "gives the envelope; `envelope_hex` is present when the envelope has at most "
            f"{HEX_LIMIT} bytes; each key in `open_with` alone opens it to the content and "
            "record given; each key in `fail_with` gets `decryption`",
            "mutations": MUTATION_OPS,
            "chunk_layout": CHUNK_LAYOUT,
        },
        "keys": {
            name: {
                "private": secret.hex(),
                "public": public_key(name).hex(),
                "key_id": recipient_key_id(name).hex(),
            }
            for name, secret in PRIVATE_KEYS.items()
        },
        "positive": positives,
        "negative": {
            "base": "negative-base",
            "base_length": len(base),
            "base_sha256": _sha256(base),
            "header_length": H,
            "description": "each vector applies `mutations` in order to the base envelope",
            "vectors": negatives,
        },
        "tampered": {
            "description": "envelopes sealed to r1 and r2 with the base's file_key and "
            "payload_salt (header MAC valid) whose payload breaks a rule of section 3.4/3.5; "
            f"`envelope_hex` is present when the envelope has at most {TAMPERED_HEX_LIMIT} "
            "bytes",
            "file_key": file_key.hex(),
            "payload_salt": salt.hex(),
            "header_hex": tampered_header().hex(),
            "recipe": TAMPERED_RECIPE,
            "vectors": tampered,
        },
    }


def render() -> str:
    return json.dumps(build(), indent=1) + "\n"


def main() -> None:
    OUTPUT.write_text(render(), encoding="utf-8")
    print(f"wrote {OUTPUT}")


if __name__ == "__main__":
    main()
