"""The plain form (no-script path, docs/format.md section 8.5), sealed while it streams in.

A source whose browser runs no script (Tor Browser at "Safest") posts a ``multipart/form-data``
body with plaintext in it. :func:`seal_form` reads that body from the WSGI input stream itself,
in pieces of at most :data:`READ_SIZE` bytes, parses it with werkzeug's sans-IO multipart
decoder and feeds every file to a :class:`crypto.Sealer` as it arrives, writing the sealed
chunks to a :class:`~dropbox.storage.BlobWriter` at once. Plaintext is never written anywhere:
no temporary files (which is why werkzeug's ``request.files`` and ``request.form`` are not
used: they spool large files to disk) and no buffer of a whole file. At any moment the module
holds at most one read piece, the sealer's partial chunk and the message text.

Whatever goes wrong, nothing of the request stays in the store: an open writer is aborted and
blobs already committed are deleted again. A refused request is drained (read and discarded,
up to a cap) so that the HTTP server can answer with a page instead of resetting a connection
the browser is still sending on. Error messages never contain anything the source sent, and
no exception is chained to one that might (a ``UnicodeDecodeError`` carries its input).

This module knows nothing of Flask: a view passes ``request.stream`` (or
``environ["wsgi.input"]``), the headers' values and the session's CSRF check.
"""

from __future__ import annotations

import codecs
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import BinaryIO, Final, Literal

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

from crypto import Kind, Sealer, clean_filename
from dropbox.storage import BlobStore, BlobWriter, StorageError

__all__ = [
    "DEFAULT_FILE_MEDIA_TYPE",
    "MAX_HEADER_BYTES",
    "MESSAGE_MEDIA_TYPE",
    "READ_SIZE",
    "ErrorCode",
    "NoJsError",
    "NoJsLimits",
    "NoJsResult",
    "SealedItem",
    "clean_media_type",
    "parse_boundary",
    "seal_form",
]

_log = logging.getLogger(__name__)

#: Largest piece read from the input stream at once.
READ_SIZE: Final = 64 * 1024
#: Preamble or part headers the decoder may hold while it waits for their end (on top of
#: one read piece). Browsers send a few hundred bytes of headers per part.
MAX_HEADER_BYTES: Final = 16 * 1024
#: Longest CSRF token read; a longer value is refused without calling the check.
MAX_CSRF_TOKEN: Final = 1024
#: RFC 2046 section 5.1.1: a boundary is 1 to 70 characters from this set, not ending in space.
MAX_BOUNDARY: Final = 70
_BOUNDARY_CHARS: Final = frozenset(
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'()+_,-./:=? "
)
MESSAGE_MEDIA_TYPE: Final = "text/plain; charset=utf-8"
DEFAULT_FILE_MEDIA_TYPE: Final = "application/octet-stream"
_MAX_MEDIA_TYPE: Final = 127

CSRF_FIELD: Final = "csrf_token"
MESSAGE_FIELD: Final = "message"
FILES_FIELD: Final = "files"

ErrorCode = Literal["csrf", "too_large", "message_too_long", "too_many_files", "empty", "malformed"]

_DEFAULT_MESSAGES: Final[dict[ErrorCode, str]] = {
    "csrf": "The form has expired or did not come from this page. Reload the page and try again.",
    "too_large": "The submission is larger than this server accepts.",
    "message_too_long": "The message is longer than this server accepts.",
    "too_many_files": "The submission has more files than this server accepts.",
    "empty": "Write a message or choose at least one file.",
    "malformed": "The submission could not be read.",
}


class NoJsError(Exception):
    """A refused plain-form submission; nothing of it was kept.

    ``code`` says why (the view maps it to a status and a page); ``message`` is a fixed text
    that never contains anything the source sent.
    """

    def __init__(self, code: ErrorCode, message: str | None = None) -> None:
        self.code: ErrorCode = code
        self.message: str = _DEFAULT_MESSAGES[code] if message is None else message
        super().__init__(f"{code}: {self.message}")


@dataclass(frozen=True)
class NoJsLimits:
    """Bounds for one plain-form request.

    ``max_request_bytes`` counts every byte of the body; ``max_message_chars`` counts the
    characters of the message (a CR LF pair, which browsers send for each line break, counts
    as one, as the form's ``maxlength`` does); ``max_drain_bytes`` is how much of a refused
    request is read and discarded at most.
    """

    max_request_bytes: int
    max_message_chars: int
    max_files: int
    max_drain_bytes: int

    def __post_init__(self) -> None:
        for name in ("max_request_bytes", "max_message_chars", "max_files"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer")
        drain = self.max_drain_bytes
        if isinstance(drain, bool) or not isinstance(drain, int) or drain < 0:
            raise ValueError("max_drain_bytes must be a non-negative integer")


@dataclass(frozen=True)
class SealedItem:
    """One stored envelope. ``size`` is the ciphertext size; nothing about the plaintext."""

    blob_id: str
    kind: Literal["message", "file"]
    size: int


@dataclass(frozen=True)
class NoJsResult:
    """The stored envelopes of a submission: the message first (if any), then the files."""

    items: tuple[SealedItem, ...]


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


def _sent_filename(event: File) -> str:
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


class _OpenEnvelope:
    """An envelope being written: a sealer and the blob writer its ciphertext goes to."""

    def __init__(self, sealer: Sealer, writer: BlobWriter) -> None:
        self.sealer = sealer
        self.writer = writer

    def feed(self, data: bytes | bytearray) -> None:
        sealed = self.sealer.update(data)
        if sealed:
            self.writer.write(sealed)

    def close(self) -> tuple[str, int]:
        for chunk in self.sealer.finish():
            self.writer.write(chunk)
        size = self.writer.size
        return self.writer.commit(), size


_PartKind = Literal["csrf", "message", "file"]


class _FormSealer:
    """The state of one request: the part being read, open and committed envelopes."""

    def __init__(
        self,
        *,
        check_csrf: Callable[[str], bool],
        recipients: Sequence[bytes],
        store: BlobStore,
        limits: NoJsLimits,
    ) -> None:
        self._check_csrf = check_csrf
        self._recipients = recipients
        self._store = store
        self._limits = limits
        self.bytes_read = 0
        self._csrf_ok = False
        self._part: _PartKind | None = None
        self._token = bytearray()
        self._message_seen = False
        self._message = bytearray()
        self._message_chars = 0
        self._message_cr = False  # the message text so far ends with "\r"
        self._utf8 = codecs.getincrementaldecoder("utf-8")("strict")
        self._file_name = ""
        self._file_media_type = ""
        self._open: _OpenEnvelope | None = None
        self._message_item: SealedItem | None = None
        self._files: list[SealedItem] = []

    # -- reading -----------------------------------------------------------------------------

    def run(self, stream: BinaryIO, boundary: bytes, content_length: int | None) -> NoJsResult:
        decoder = MultipartDecoder(boundary, max_form_memory_size=READ_SIZE + MAX_HEADER_BYTES)
        feeder = _Feeder(decoder, boundary)
        while True:
            event = _next_event(decoder)
            if event is None:
                raise NoJsError("malformed")
            if isinstance(event, NeedData):
                if not feeder.feed(self._read(stream, content_length)):
                    raise NoJsError("malformed")
            elif isinstance(event, Epilogue):
                return self._result()
            elif isinstance(event, Field | File):
                self._start_part(event)
            elif isinstance(event, Data):
                self._part_data(event.data)
                if not event.more_data:
                    self._end_part()
            elif not isinstance(event, Preamble):  # pragma: no cover - werkzeug has no other
                raise NoJsError("malformed")

    def _read(self, stream: BinaryIO, content_length: int | None) -> bytes:
        size = READ_SIZE
        if content_length is not None:
            size = min(size, content_length - self.bytes_read)
            if size <= 0:
                return b""
        piece = stream.read(size)
        self.bytes_read += len(piece)
        if self.bytes_read > self._limits.max_request_bytes:
            raise NoJsError("too_large")
        return piece

    # -- parts -------------------------------------------------------------------------------

    def _start_part(self, event: Field | File) -> None:
        is_file = isinstance(event, File)
        if not self._csrf_ok:
            # docs/format.md 8.1: the token MUST be the first part, checked before any other.
            if event.name != CSRF_FIELD or is_file:
                raise NoJsError("csrf")
            self._part = "csrf"
        elif event.name == MESSAGE_FIELD and not is_file and not self._message_seen:
            self._message_seen = True
            self._part = "message"
        elif event.name == FILES_FIELD and isinstance(event, File):
            self._part = "file"
            filename = _sent_filename(event)
            self._file_name = clean_filename(filename)
            self._file_media_type = clean_media_type(event.headers.get("Content-Type"))
            if filename:
                self._open_file()
        else:
            raise NoJsError("malformed", "The submission has a field this form does not have.")

    def _part_data(self, data: bytes) -> None:
        if not data:
            return
        if self._part == "csrf":
            if len(self._token) + len(data) > MAX_CSRF_TOKEN:
                raise NoJsError("csrf")
            self._token += data
        elif self._part == "message":
            self._message_data(data)
        elif self._part == "file":
            envelope = self._open if self._open is not None else self._open_file()
            envelope.feed(data)

    def _end_part(self) -> None:
        part, self._part = self._part, None
        if part == "csrf":
            token = bytes(self._token).decode("ascii", "replace")
            self._token.clear()
            if not self._check_csrf(token):
                raise NoJsError("csrf")
            self._csrf_ok = True
        elif part == "message":
            self._message_data(b"", final=True)
            if self._message:
                envelope = self._begin(Kind.MESSAGE, "", MESSAGE_MEDIA_TYPE)
                envelope.feed(self._message)
                self._message.clear()
                self._message_item = self._commit(envelope, "message")
        elif part == "file" and self._open is not None:
            self._files.append(self._commit(self._open, "file"))

    def _message_data(self, data: bytes, *, final: bool = False) -> None:
        text = _decode(self._utf8, data, final=final)
        if text is None:
            raise NoJsError("malformed", "The message is not valid UTF-8 text.")
        # A line break arrives as CR LF; the browser's maxlength counted it as one character.
        pairs = text.count("\r\n") + (1 if self._message_cr and text.startswith("\n") else 0)
        self._message_chars += len(text) - pairs
        if text:
            self._message_cr = text.endswith("\r")
        if self._message_chars > self._limits.max_message_chars:
            raise NoJsError("message_too_long")
        self._message += data

    def _open_file(self) -> _OpenEnvelope:
        if len(self._files) >= self._limits.max_files:
            raise NoJsError("too_many_files")
        return self._begin(Kind.FILE, self._file_name, self._file_media_type)

    def _begin(self, kind: Kind, filename: str, media_type: str) -> _OpenEnvelope:
        """Start an envelope; from here until it is committed, discard() aborts its writer."""
        sealer = Sealer(self._recipients, kind, filename, media_type)
        self._open = _OpenEnvelope(sealer, self._store.writer())
        self._open.writer.write(sealer.header)
        return self._open

    def _commit(self, envelope: _OpenEnvelope, kind: Literal["message", "file"]) -> SealedItem:
        blob_id, size = envelope.close()
        self._open = None
        return SealedItem(blob_id, kind, size)

    def _result(self) -> NoJsResult:
        if not self._csrf_ok:
            raise NoJsError("csrf")
        head = () if self._message_item is None else (self._message_item,)
        items = (*head, *self._files)
        if not items:
            raise NoJsError("empty")
        return NoJsResult(items)

    # -- failure -----------------------------------------------------------------------------

    def discard(self) -> None:
        """Remove everything this request wrote: the open blob and the committed ones."""
        self._message.clear()
        self._token.clear()
        failed = 0
        if self._open is not None:
            try:
                self._open.writer.abort()
            except (StorageError, OSError):
                failed += 1
            self._open = None
        committed = [*([] if self._message_item is None else [self._message_item]), *self._files]
        for item in committed:
            try:
                self._store.delete(item.blob_id)
            except (StorageError, OSError):
                failed += 1
        self._message_item = None
        self._files.clear()
        if failed:
            _log.warning("could not remove %d blob(s) of a refused plain-form submission", failed)


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


def _decode(decoder: codecs.IncrementalDecoder, data: bytes, *, final: bool) -> str | None:
    try:
        return decoder.decode(data, final)
    except UnicodeDecodeError:
        return None


def _drain(stream: BinaryIO, content_length: int | None, already_read: int, cap: int) -> None:
    """Read and discard the rest of the body, at most ``cap`` bytes, so the server can answer."""
    left = cap if content_length is None else min(cap, content_length - already_read)
    try:
        while left > 0:
            piece = stream.read(min(READ_SIZE, left))
            if not piece:
                return
            left -= len(piece)
    except (OSError, ValueError):
        # The client went away or the stream is closed: nobody is left to read a page.
        return


def seal_form(
    stream: BinaryIO,
    content_type: str,
    content_length: int | None,
    *,
    check_csrf: Callable[[str], bool],
    recipients: Sequence[bytes],
    store: BlobStore,
    limits: NoJsLimits,
) -> NoJsResult:
    """Seal the message and files of a plain-form body as it streams in (docs/format.md 8.5).

    ``stream`` is the request body, read until ``content_length`` bytes (when known) or its
    end. The first part must be ``csrf_token``, accepted by ``check_csrf`` before anything
    else is read; then ``message`` (at most once) and any number of ``files`` parts. Each
    non-empty item becomes one envelope to ``recipients`` in ``store``.

    Raises :class:`NoJsError` when the request is refused; then nothing of it remains in the
    store and the rest of the body has been read and discarded (at most
    ``limits.max_drain_bytes`` bytes). Any other exception (the stream or the store failing)
    also leaves nothing in the store, but drains nothing.
    """
    form = _FormSealer(check_csrf=check_csrf, recipients=recipients, store=store, limits=limits)
    try:
        if content_length is not None and content_length < 0:
            raise NoJsError("malformed")
        if content_length is not None and content_length > limits.max_request_bytes:
            raise NoJsError("too_large")
        return form.run(stream, parse_boundary(content_type), content_length)
    except NoJsError:
        form.discard()
        _drain(stream, content_length, form.bytes_read, limits.max_drain_bytes)
        raise
    except BaseException:
        form.discard()
        raise
