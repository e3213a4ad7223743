"""Opening an envelope whose bytes arrive in order, once, without seeking (a bundle being read).

:func:`crypto.envelope.opening.open_envelope` seeks: it checks the last chunk (the trailer,
with the content's length) before the first. A reader that gets the envelope as a stream and
should not read it twice (the station's import, which stores the envelope as it reads the
bundle) uses :class:`StreamOpener` instead: it is given the envelope's total length up front,
then its bytes in order, in pieces of any size. It parses the header and unwraps the file key
as soon as the header is in, opens each chunk as it completes, and hands the content to
``dst`` as it goes. Padding is all zero bytes and the content's length is known only from
the trailer: a run of zero bytes is held back (counted, not stored) until a non-zero byte
shows it was content, or the trailer shows where the content ended.

The checks are those of ``open_envelope`` (section 3.4), in stream order: the header's
structure, the key and header MAC, the payload length, every chunk's tag, the trailer, the
padded size and the padding's zero bytes. Until :meth:`StreamOpener.finish` returned, what
``dst`` received is unverified and must be discarded if anything raises (rule 3).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from crypto.envelope.format import (
    CHUNK,
    CT_CHUNK,
    PREFIX_LEN,
    TAG,
    Metadata,
    parse_trailer,
    split_payload_length,
)
from crypto.envelope.header import (
    Header,
    RecipientKeys,
    parse_header,
    parse_prefix,
    unwrap_file_key,
)
from crypto.envelope.stream import PayloadCipher, payload_key
from crypto.errors import DecryptionError, FormatError

_ZEROS = bytes(CHUNK)


class ContentSink(Protocol):
    def write(self, data: bytes | memoryview, /) -> object: ...


class StreamOpener:
    """One envelope of ``total`` bytes, fed in order with :meth:`write`; :meth:`finish` once
    all of it was fed returns its metadata. Any failure raises DecryptionError, or
    FormatError for a header that is not one (as ``open_envelope``); after a failure the
    opener must not be used again. :attr:`header` is set once the header parsed, whether or
    not the keys open it (it names the recipients' key ids)."""

    def __init__(
        self, total: int, private_keys: Iterable[bytes] | RecipientKeys, dst: ContentSink
    ) -> None:
        self.header: Header | None = None
        self._total = total
        self._keys = private_keys
        self._dst = dst
        self._fed = 0
        self._pending = bytearray()  # a header or chunk not complete yet
        self._cipher: PayloadCipher | None = None
        self._chunks = 0
        self._padded = 0
        self._index = 0  # the next chunk to open
        self._out = memoryview(bytearray(CHUNK))
        self._written = 0  # content bytes handed to dst
        self._zeros = 0  # zero bytes after those, held back
        self._last: bytes | None = None  # the last chunk, opened

    def write(self, data: bytes | memoryview, /) -> None:
        view = memoryview(data)
        self._fed += len(view)
        if self._fed > self._total:
            raise DecryptionError()
        if self._cipher is None:
            view = self._take_header(view)
            if self._cipher is None:
                return
        pending = self._pending
        while view:
            want = self._chunk_size() - len(pending)
            if not pending and len(view) >= want:
                self._open_chunk(view[:want])  # straight from the caller's buffer
            elif len(view) >= want:
                pending += view[:want]
                self._open_chunk(memoryview(pending))
                pending.clear()
            else:
                pending += view
                return
            view = view[want:]

    def _take_header(self, view: memoryview) -> memoryview:
        """Gather the header; once whole, parse it and unwrap the file key."""
        pending = self._pending
        needed = PREFIX_LEN
        if len(pending) >= PREFIX_LEN:
            needed = parse_prefix(bytes(pending[:PREFIX_LEN]))
        while True:
            take = needed - len(pending)
            pending += view[:take]
            view = view[take:]
            if len(pending) < needed:
                if self._fed == self._total:
                    raise FormatError("truncated envelope header")
                return view
            if needed > PREFIX_LEN:
                break
            # Magic, version and recipient count: the header's length.
            needed = parse_prefix(bytes(pending))
        header = parse_header(bytes(pending))
        pending.clear()
        self.header = header
        file_key = unwrap_file_key(header, self._keys)
        split = split_payload_length(self._total - header.length)
        if split is None:
            raise DecryptionError()
        self._chunks, self._padded = split
        self._cipher = PayloadCipher(payload_key(file_key, header.payload_salt))
        return view

    def _chunk_size(self) -> int:
        if self._index == self._chunks - 1:
            return self._padded + TAG * self._chunks - self._index * CT_CHUNK
        return CT_CHUNK

    def _open_chunk(self, chunk: memoryview) -> None:
        cipher, index = self._cipher, self._index
        if cipher is None:  # only ever called once the header gave the key
            raise DecryptionError()
        self._index += 1
        if index == self._chunks - 1:
            self._last = cipher.open_chunk(index, True, chunk)
            return
        out = self._out
        cipher.open_chunk_into(index, False, chunk, out)
        if out[-1]:
            self._emit(out)
            return
        # Ends in zero bytes: content or padding, which only the trailer tells.
        kept = len(bytes(out).rstrip(b"\0"))
        if kept:
            self._emit(out[:kept])
        self._zeros += CHUNK - kept

    def _emit(self, content: memoryview) -> None:
        """Content: the zero bytes held back before it were content too."""
        self._flush_zeros(self._zeros)
        self._dst.write(content)
        self._written += len(content)

    def _flush_zeros(self, count: int) -> None:
        self._zeros -= count
        self._written += count
        while count:
            piece = min(count, CHUNK)
            self._dst.write(_ZEROS[:piece])
            count -= piece

    def finish(self) -> Metadata:
        """Check the trailer and the padding once every byte was fed; hand ``dst`` the
        content's last bytes and return the metadata."""
        if self._fed != self._total:
            raise DecryptionError()
        if self._cipher is None:
            raise FormatError("truncated envelope header")
        tail = self._last
        if tail is None:
            raise DecryptionError()
        metadata, trailer_len = parse_trailer(tail, self._padded)
        start = (self._chunks - 1) * CHUNK  # where the last chunk's plaintext begins
        length = metadata.length
        if length < self._written:
            raise DecryptionError()  # a non-zero byte after the content
        self._flush_zeros(min(self._zeros, length - self._written))
        if length > start:
            self._dst.write(memoryview(tail)[: length - start])
            self._written = length
        if self._written != length:
            raise DecryptionError()
        # The rest of the last chunk, up to the trailer, is padding: zero bytes.
        padding = memoryview(tail)[max(0, length - start) : len(tail) - trailer_len]
        if not _ZEROS.startswith(padding):
            raise DecryptionError()
        return metadata
