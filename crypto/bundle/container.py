"""The bundle container (docs/format.md sections 10.1 and 11.1), common to both directions.

A bundle is one file: a magic, a version, ``u32be(M)``, a signed manifest of M bytes, its
signature, then the envelopes the manifest lists, concatenated. Readers stream: a manifest is
at most 16 MiB and is read whole, but envelopes (up to 1 TiB each) are copied in bounded
pieces into sinks the caller opens, and reach the caller's store only once the whole bundle
has verified (:class:`EnvelopeSink`).
"""

from __future__ import annotations

import errno
import hashlib
import hmac
import os
import stat
import struct
from collections.abc import Callable, Iterable, Sequence
from typing import BinaryIO, Protocol, TypeVar

from crypto._streams import read_exact, read_up_to
from crypto.errors import FormatError, UnsupportedVersion

VERSION = 1
SIGNATURE_LEN = 64
MIN_MANIFEST = 2
MAX_MANIFEST = 16 * 1024 * 1024
#: Bytes before the manifest: magic, version, u32be(M).
PREFIX_LEN = 8 + 1 + 4

#: Envelope bytes are copied in pieces of at most this size.
PIECE = 1024 * 1024


def signed_block(text: bytes, signature: bytes) -> bytes:
    if not MIN_MANIFEST <= len(text) <= MAX_MANIFEST:
        raise FormatError(f"a manifest is {MIN_MANIFEST} to {MAX_MANIFEST} bytes")
    return struct.pack(">I", len(text)) + text + signature


def split_block(block: bytes, what: str) -> tuple[bytes, bytes]:
    if len(block) < 4:
        raise FormatError(f"{what}: truncated before the manifest length")
    (length,) = struct.unpack(">I", block[:4])
    if not MIN_MANIFEST <= length <= MAX_MANIFEST:
        raise FormatError(
            f"{what}: manifest length {length} outside {MIN_MANIFEST}..{MAX_MANIFEST}"
        )
    if len(block) < 4 + length:
        raise FormatError(f"{what}: truncated inside the manifest")
    if len(block) < 4 + length + SIGNATURE_LEN:
        raise FormatError(f"{what}: truncated inside the signature")
    if len(block) > 4 + length + SIGNATURE_LEN:
        raise FormatError(f"{what}: data after the signature")
    return block[4 : 4 + length], block[4 + length :]


class EnvelopeSink(Protocol):
    """Where a reader puts one envelope of a bundle.

    The reader calls ``write`` with the envelope's bytes in order (exactly ``size`` bytes in
    all, since the sink is opened for an entry whose size it can see), then, once the *whole
    bundle* has verified (every envelope and the end of the file), ``commit`` on every sink in
    manifest order. If anything fails, the reader calls ``abort`` on every sink it opened
    and has not committed, and nothing must remain of them. A sink may close its file once
    it has received ``size`` bytes: the reader writes nothing more to it.
    """

    def write(self, data: bytes, /) -> object: ...

    def commit(self) -> None: ...

    def abort(self) -> None: ...


def read_signed_part(src: BinaryIO, magic: bytes, what: str) -> tuple[bytes, bytes]:
    """Read and check magic, version and M; return (manifest text, signature)."""
    if read_up_to(src, len(magic)) != magic:
        raise FormatError(f"not a Postern {what} (bad magic)")
    version = read_exact(src, 1, f"{what}: no version")
    if version[0] != VERSION:
        raise UnsupportedVersion(f"unsupported {what} version {version[0]}")
    (length,) = struct.unpack(">I", read_exact(src, 4, f"{what}: no manifest length"))
    if not MIN_MANIFEST <= length <= MAX_MANIFEST:
        raise FormatError(
            f"{what}: manifest length {length} outside {MIN_MANIFEST}..{MAX_MANIFEST}"
        )
    text = read_exact(src, length, f"{what}: inside the manifest")
    signature = read_exact(src, SIGNATURE_LEN, f"{what}: inside the signature")
    return text, signature


_Entry = TypeVar("_Entry")


def stream_envelopes(
    src: BinaryIO,
    entries: Sequence[tuple[_Entry, int, bytes]],
    open_sink: Callable[[_Entry], EnvelopeSink],
    what: str,
) -> None:
    """Copy each entry's envelope into its sink; commit all only if everything verifies."""
    opened: list[EnvelopeSink] = []
    try:
        for index, (entry, size, digest) in enumerate(entries):
            sink = open_sink(entry)
            opened.append(sink)
            hasher = hashlib.sha256()
            remaining = size
            while remaining:
                data = src.read(min(remaining, PIECE))
                if not data:
                    raise FormatError(f"truncated {what}: envelope {index} ends early")
                hasher.update(data)
                sink.write(data)
                remaining -= len(data)
            if not hmac.compare_digest(hasher.digest(), digest):
                raise FormatError(f"{what}: envelope {index} does not match its SHA-256")
        if src.read(1):
            raise FormatError(f"{what}: trailing data after the last envelope")
    except BaseException as exc:
        _abort_all(opened, exc)
        raise
    committed = 0
    try:
        for sink in opened:
            sink.commit()
            committed += 1
    except BaseException as exc:
        _abort_all(opened[committed:], exc)
        raise


def _abort_all(sinks: Iterable[EnvelopeSink], error: BaseException) -> None:
    """Abort every sink, even if an abort fails; failures become notes on ``error``.

    The error that stopped the reader is the one raised (its class tells what was wrong
    with the bundle); a sink that could not clean up is mentioned beside it.
    """
    for sink in sinks:
        try:
            sink.abort()
        except Exception as failure:  # noqa: BLE001 - kept as a note, the others still run
            error.add_note(f"aborting an envelope sink also failed: {failure!r}")


def write_all(dst: BinaryIO, data: bytes) -> int:
    view = memoryview(data)
    while view:
        count = dst.write(view)
        if count is None:  # a non-blocking stream is a caller's bug
            raise OSError("the destination stream would block")
        view = view[count:]
    return len(data)


def open_bundle_file(path: str | os.PathLike[str]) -> BinaryIO:
    """Open a bundle file for reading: a regular file, never through a symbolic link.

    Raises FormatError for a symbolic link (``O_NOFOLLOW``) or anything but a regular file
    (a FIFO is opened without blocking and refused); other failures (a missing file, no
    permission) are the usual OSError.
    """
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # O_NOFOLLOW met a symbolic link
            raise FormatError(
                f"{os.fspath(path)}: is a symbolic link; a bundle is read only from a regular file"
            ) from None
        raise
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise FormatError(f"{os.fspath(path)}: not a regular file")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
