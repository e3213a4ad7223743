"""Reading a ``multipart/form-data`` body as it streams in, without keeping it.

:class:`MultipartReader` reads the WSGI input in pieces of at most :data:`READ_SIZE` bytes,
counts them against the request's limit and hands out werkzeug's sans-IO decoder events one
by one. It never spools to disk (werkzeug's ``request.files`` would) and holds at most one read
piece plus the part headers being decoded. Nothing raised here is chained to werkzeug's own
exceptions, whose arguments may hold bytes of the body.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import BinaryIO, Final

from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.http import parse_options_header
from werkzeug.sansio.multipart import (
    Data,
    Epilogue,
    Event,
    Field,
    File,
    MultipartDecoder,
    NeedData,
    Preamble,
)

from dropbox.nojs.errors import NoJsError

#: Largest piece read from the input stream at once.
READ_SIZE: Final = 64 * 1024
#: Preamble or part headers the decoder may hold while it waits for their end (on top of
#: one read piece). Browsers send a few hundred bytes of headers per part.
MAX_HEADER_BYTES: Final = 16 * 1024
#: RFC 2046 section 5.1.1: a boundary is 1 to 70 characters from this set, not ending in space.
MAX_BOUNDARY: Final = 70
_BOUNDARY_CHARS: Final = frozenset(
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'()+_,-./:=? "
)
DEFAULT_FILE_MEDIA_TYPE: Final = "application/octet-stream"
_MAX_MEDIA_TYPE: Final = 127

#: What :meth:`MultipartReader.events` hands out: a part starts, its data, the body's end.
PartEvent = Field | File | Data | Epilogue


def parse_boundary(content_type: str) -> bytes:
    """The boundary of a ``multipart/form-data`` Content-Type value (else ``malformed``)."""
    mimetype, options = parse_options_header(content_type)
    if mimetype != "multipart/form-data":
        raise NoJsError("malformed", "The submission is not a multipart form.")
    boundary = options.get("boundary", "")
    if (
        not 1 <= len(boundary) <= MAX_BOUNDARY
        or boundary.endswith(" ")
        or not _BOUNDARY_CHARS.issuperset(boundary)
    ):
        raise NoJsError("malformed", "The submission has no valid multipart boundary.")
    return boundary.encode("ascii")


def clean_media_type(value: str | None) -> str:
    """A part's Content-Type as a record media type: printable ASCII, at most 127 chars."""
    text = "".join(c for c in value or "" if " " <= c <= "~")[:_MAX_MEDIA_TYPE].strip()
    return text or DEFAULT_FILE_MEDIA_TYPE


def sent_filename(event: File) -> str:
    """The filename as the browser sent it, backslashes included.

    Browsers escape a filename with percent signs (HTML's multipart/form-data encoding turns
    ``"``, CR and LF into %22, %0D and %0A) and send backslashes as they are, but werkzeug
    unquotes backslash escapes, so ``C:\\Users\\alice\\x.doc`` (a full path, as old browsers
    send) would become ``C:Usersalicex.doc``, user name included. Doubling the backslashes
    first keeps them, and :func:`crypto.clean_filename` then keeps only the last component.
    """
    raw = event.headers.get("Content-Disposition", "")
    if "\\" not in raw:
        return event.filename
    _, options = parse_options_header(raw.replace("\\", "\\\\"))
    return options.get("filename", event.filename)


class MultipartReader:
    """The decoder events of one request body, read from ``stream`` as they are needed.

    Reads until ``content_length`` bytes (when known) or the stream's end; more than
    ``max_request_bytes`` in all is ``too_large``, a body that is not valid multipart (or ends
    before its closing delimiter) is ``malformed``. :attr:`bytes_read` counts what was read.
    """

    def __init__(
        self,
        stream: BinaryIO,
        boundary: bytes,
        content_length: int | None,
        *,
        max_request_bytes: int,
    ) -> None:
        self._stream = stream
        self._content_length = content_length
        self._max_request_bytes = max_request_bytes
        self._decoder = MultipartDecoder(
            boundary, max_form_memory_size=READ_SIZE + MAX_HEADER_BYTES
        )
        self._feeder = _Feeder(self._decoder, boundary)
        self.bytes_read = 0

    def events(self) -> Iterator[PartEvent]:
        """The events up to and including :class:`Epilogue` (the preamble is skipped)."""
        while True:
            event = _next_event(self._decoder)
            if event is None:
                raise NoJsError("malformed")
            if isinstance(event, NeedData):
                if not self._feeder.feed(self._read()):
                    raise NoJsError("malformed")
            elif isinstance(event, Field | File | Data):
                yield event
            elif isinstance(event, Epilogue):
                yield event
                return
            elif not isinstance(event, Preamble):  # pragma: no cover - werkzeug has no other
                raise NoJsError("malformed")

    def _read(self) -> bytes:
        size = READ_SIZE
        if self._content_length is not None:
            size = min(size, self._content_length - self.bytes_read)
            if size <= 0:
                return b""
        piece = _read_input(self._stream, size)
        if piece is None:
            # The input itself failed: a malformed chunked encoding, a body cut short, the
            # client gone. The HTTP framing is lost with it.
            raise NoJsError("malformed", unreadable=True)
        self.bytes_read += len(piece)
        if self.bytes_read > self._max_request_bytes:
            raise NoJsError("too_large")
        return piece


class _Feeder:
    """Passes the pieces read to the decoder, holding back an end that werkzeug mis-splits.

    When its buffer ends with a whole delimiter followed by a character that does not yet
    decide what it is (``CRLF--boundary-``: the first dash of the closing ``--``; or transport
    padding), werkzeug 3.1's decoder keeps only ``LF--boundary-`` as a possible boundary and
    hands out the CR as part data, so the last part would gain a stray ``\\r`` byte whenever a
    read ends between the two dashes. Holding such an end back until more arrives keeps the
    decoder's buffer from ever ending there.
    """

    _MAX_HELD = 64

    def __init__(self, decoder: MultipartDecoder, boundary: bytes) -> None:
        self._decoder = decoder
        self._undecided = re.compile(
            rb"--" + re.escape(boundary) + rb"(-|[ \t\f\v]{1,%d})\Z" % self._MAX_HELD
        )
        self._window = len(boundary) + 2 + self._MAX_HELD
        self._recent = b""  # the end of what the decoder has been given
        self._held = b""

    def feed(self, piece: bytes) -> bool:
        """Give the decoder a piece (b"" at the end of the body); False if it refuses."""
        if not piece:
            return _receive(self._decoder, self._held) and _receive(self._decoder, None)
        data = self._held + piece
        match = self._undecided.search(self._recent + data[-self._window :])
        hold = min(len(match.group(1)), len(data)) if match else 0
        data, self._held = data[: len(data) - hold], data[len(data) - hold :]
        self._recent = (self._recent + data[-self._window :])[-self._window :]
        return _receive(self._decoder, data)


def _read_input(stream: BinaryIO, size: int) -> bytes | None:
    """A piece of the input, or None when reading it fails.

    Returning instead of raising keeps the server's exception (gunicorn's InvalidChunkSize,
    NoMoreData, ChunkMissingTerminator...; werkzeug's ClientDisconnected), whose arguments
    may hold bytes of the body, out of the chain of the error we raise.
    """
    try:
        return stream.read(size)
    except Exception:  # noqa: BLE001 - whatever the WSGI input raises, the body is unreadable
        return None


def _next_event(decoder: MultipartDecoder) -> Event | None:
    """The decoder's next event, or None when the body is not valid multipart.

    Returning instead of raising keeps werkzeug's exception (whose arguments may hold bytes of
    the body, e.g. a UnicodeDecodeError on a header) out of the chain of the error we raise.
    """
    try:
        return decoder.next_event()
    except (ValueError, RequestEntityTooLarge):
        return None


def _receive(decoder: MultipartDecoder, data: bytes | None) -> bool:
    try:
        decoder.receive_data(data)
    except RequestEntityTooLarge:
        return False
    return True


def drain(stream: BinaryIO, content_length: int | None, already_read: int, cap: int) -> None:
    """Read and discard the rest of the body, at most ``cap`` bytes, so the server can answer."""
    left = cap if content_length is None else min(cap, content_length - already_read)
    try:
        while left > 0:
            piece = stream.read(min(READ_SIZE, left))
            if not piece:
                return
            left -= len(piece)
    except Exception:  # noqa: BLE001 - any failure of the input ends the draining
        # The client went away, the stream is closed or its framing is broken: there is
        # nothing more to read, and the connection is closed after the answer.
        return
