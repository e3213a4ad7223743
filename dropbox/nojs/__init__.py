"""The plain form (no-script path, docs/format.md section 8.5), sealed while it streams in.

A source whose browser runs no script (Tor Browser at "Safest") posts a ``multipart/form-data``
body with plaintext in it. :func:`seal_form` reads that body from the WSGI input stream itself
(:mod:`.multipart`: pieces of at most :data:`READ_SIZE` bytes, werkzeug's sans-IO multipart
decoder) and feeds every file to a :class:`crypto.Sealer` as it arrives, writing the sealed
chunks to a :class:`~dropbox.storage.BlobWriter` at once (:mod:`.sealer`). Plaintext is never
written anywhere: no temporary files (which is why werkzeug's ``request.files`` and
``request.form`` are not used: they spool large files to disk) and no buffer of a whole file.
At any moment the package holds at most one read piece, the sealer's partial chunk and the
message text.

Whatever goes wrong, nothing of the request stays in the store: an open writer is aborted and
blobs already committed are deleted again. A refused request is drained (read and discarded,
up to a cap) so that the HTTP server can answer with a page instead of resetting a connection
the browser is still sending on. Error messages never contain anything the source sent, and
no exception is chained to one that might (a ``UnicodeDecodeError`` carries its input).

This package knows nothing of Flask: a view passes ``request.stream`` (or
``environ["wsgi.input"]``), the headers' values and the session's CSRF check.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import BinaryIO

from dropbox.nojs.errors import ErrorCode, NoJsError
from dropbox.nojs.multipart import (
    DEFAULT_FILE_MEDIA_TYPE,
    MAX_HEADER_BYTES,
    READ_SIZE,
    MultipartReader,
    clean_media_type,
    drain,
    parse_boundary,
)
from dropbox.nojs.sealer import MESSAGE_MEDIA_TYPE, FormSealer, NoJsLimits, NoJsResult, SealedItem
from dropbox.storage import BlobStore, is_out_of_space

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


def seal_form(
    stream: BinaryIO,
    content_type: str,
    content_length: int | None,
    *,
    check_csrf: Callable[[str], bool],
    recipients: Sequence[bytes],
    store: BlobStore,
    limits: NoJsLimits,
    record: Callable[[NoJsResult], None],
) -> NoJsResult:
    """Seal the message and files of a plain-form body as it streams in (docs/format.md 8.5).

    ``stream`` is the request body, read until ``content_length`` bytes (when known) or its
    end. The first part must be ``csrf_token``, accepted by ``check_csrf`` before anything
    else is read; then ``message`` (at most once) and any number of ``files`` parts. Each
    non-empty item becomes one envelope to ``recipients`` in ``store``. ``record`` is called
    with them while their blobs are still held (no sweep takes them): it records the
    submission's rows, and if it raises, the blobs are removed again.

    The submission is whole or not at all: whenever this raises, nothing of the request
    remains in the store (or, if removing failed, only orphans that the next sweep reclaims).
    It raises :class:`NoJsError` when the request is refused, the body cannot be read
    (``unreadable``: a broken chunked encoding, a body cut short) or the disk is full
    (:class:`dropbox.storage.OutOfSpace`, or whatever ``record`` raised for it); then the
    rest of the body has been read and discarded (at most ``limits.max_drain_bytes`` bytes),
    so that the HTTP server can answer with a page. Any other exception drains nothing.
    """
    form = FormSealer(check_csrf=check_csrf, recipients=recipients, store=store, limits=limits)
    reader: MultipartReader | None = None
    try:
        if content_length is not None and content_length < 0:
            raise NoJsError("malformed")
        if content_length is not None and content_length > limits.max_request_bytes:
            raise NoJsError("too_large")
        reader = MultipartReader(
            stream,
            parse_boundary(content_type),
            content_length,
            max_request_bytes=limits.max_request_bytes,
        )
        result = form.run(reader.events())
        record(result)
    except BaseException as error:
        form.discard()
        if isinstance(error, NoJsError) or is_out_of_space(error):
            already_read = 0 if reader is None else reader.bytes_read
            drain(stream, content_length, already_read, limits.max_drain_bytes)
        raise
    form.release()
    return result
