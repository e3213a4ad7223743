"""Sealing the parts of a plain form, one envelope per item, as their bytes arrive.

:class:`FormSealer` takes the decoder events of one request (:mod:`dropbox.nojs.multipart`):
it checks the CSRF token, which must be the first part, before anything else is read, then
feeds the message and every file to a :class:`crypto.Sealer` and writes the sealed chunks to a
:class:`~dropbox.storage.BlobWriter` at once. At any moment it holds at most the sealer's
partial chunk and the message text. :meth:`FormSealer.discard` removes everything a refused
request wrote.
"""

from __future__ import annotations

import codecs
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from werkzeug.sansio.multipart import Data, Epilogue, Field, File

from crypto import Kind, Sealer, clean_filename
from dropbox.nojs.errors import NoJsError
from dropbox.nojs.multipart import PartEvent, clean_media_type, sent_filename
from dropbox.storage import BlobStore, BlobWriter, StorageError

_log = logging.getLogger(__name__)

#: Longest CSRF token read; a longer value is refused without calling the check.
MAX_CSRF_TOKEN: Final = 1024
MESSAGE_MEDIA_TYPE: Final = "text/plain; charset=utf-8"

CSRF_FIELD: Final = "csrf_token"
MESSAGE_FIELD: Final = "message"
FILES_FIELD: Final = "files"


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
        """Commit the envelope; its blob stays held until the submission is recorded."""
        for chunk in self.sealer.finish():
            self.writer.write(chunk)
        size = self.writer.size
        return self.writer.commit(), size


_PartKind = Literal["csrf", "message", "file"]


class FormSealer:
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
        #: The writers of committed envelopes: they hold the blobs until :meth:`release`.
        self._held: list[BlobWriter] = []

    def run(self, events: Iterable[PartEvent]) -> NoJsResult:
        """Seal the parts of a body, given its decoder events; the result at its end."""
        for event in events:
            if isinstance(event, Epilogue):
                return self._result()
            if isinstance(event, Field | File):
                self._start_part(event)
            elif isinstance(event, Data):
                self._part_data(event.data)
                if not event.more_data:
                    self._end_part()
        raise NoJsError("malformed")  # pragma: no cover - the reader ends with the epilogue

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
            filename = sent_filename(event)
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
        self._held.append(envelope.writer)
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

    def release(self) -> None:
        """Stop holding the committed blobs: their rows are recorded (or they are deleted)."""
        held, self._held = self._held, []
        for writer in held:
            writer.release()

    def discard(self) -> None:
        """Remove everything this request wrote: the open blob and the committed ones.

        What cannot be removed now (an I/O error) is released all the same: an orphan, which
        the next sweep (dropbox/sweep.py) reclaims.
        """
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
        self.release()
        if failed:
            _log.warning("could not remove %d blob(s) of a refused plain-form submission", failed)


def _decode(decoder: codecs.IncrementalDecoder, data: bytes, *, final: bool) -> str | None:
    try:
        return decoder.decode(data, final)
    except UnicodeDecodeError:
        return None
