"""Resumable uploads of envelopes: tus 1.0.0 at ``/api/uploads`` (docs/format.md section 8.3).

Core protocol plus the ``creation``, ``termination`` and ``expiration`` extensions, carrying
ciphertext only. :func:`create_tus_blueprint` wires the HTTP side to an :class:`UploadStore`
and to an :class:`UploadPolicy` supplied by the app (who is asking, how large, to whom the
envelopes must be sealed, what time it is, what to do when an upload is complete). The views
(:mod:`.blueprint`) only translate headers; the rules live in plain functions
(:mod:`.protocol`).

Choices where section 8.3 leaves room (keep docs/format.md in step when changing them):

- A completed upload stays in the :class:`UploadStore` (``HEAD`` still answers, with
  ``Upload-Offset`` equal to ``Upload-Length``), so a client whose last ``PATCH`` response was
  lost over Tor can see that it is done. :meth:`UploadPolicy.on_complete` only reports it; the
  app copies it into the blob store with :meth:`UploadStore.copy_into` when it becomes part
  of a submission (section 8.4) and deletes it once the submission is committed
  (:mod:`dropbox.completion`); an upload that never does expires like any other.
- An upload's URL is ``/api/uploads/<id>.<capability>``: the capability is a random secret made
  at creation, of which the store keeps only a hash. Creation needs the logged-in source
  (session and CSRF token); ``HEAD``, ``PATCH`` and ``DELETE`` need the capability and nothing
  else, so an upload outlives the web session and a restart of the server until it expires.
  The URL is the credential, so any tus client resumes with it unchanged.
- Expired, terminated, unknown and malformed uploads, and a wrong or missing capability, all
  answer 404 (never 410): the server keeps no record of uploads it has deleted.
- A full disk (ENOSPC, EDQUOT) answers 507 ``insufficient_storage`` with ``Retry-After``; the
  failed ``PATCH`` stored none of its bytes, so the client resumes from ``HEAD`` later.
- Expiry is 24 hours after creation (the store's TTL) and does not move; expired uploads are
  deleted when touched and by :meth:`UploadStore.expire`, which every creation also runs.
- The envelope header is checked as soon as it is complete, and again at the start of every
  later ``PATCH``, so an upload whose keyring was replaced meanwhile is refused
  (``stale_keyring``) at its next request instead of at completion.
- ``PATCH`` needs ``Content-Length`` (411 for a chunked body), so that a body going past the
  length is refused before any byte of it is stored. A malformed or missing ``Upload-Offset``
  is 400; a well-formed one that is not the current offset is 409, as is a ``PATCH`` that finds
  another request still appending to the upload (``upload_busy``).
- A ``PATCH`` whose body ends early (the client went away) keeps what arrived and answers 400
  ``incomplete_body`` with the new ``Upload-Offset``, for whoever is still listening.
- ``X-HTTP-Method-Override`` (tus core) and ``creation-with-upload`` are not supported: a
  ``POST`` body is not read.

Nothing of a request or an upload is logged here.
"""

from __future__ import annotations

from dropbox.tus.blueprint import UploadPolicy, create_tus_blueprint
from dropbox.tus.protocol import (
    FULL_RETRY_AFTER,
    OFFSET_OCTET_STREAM,
    TUS_EXTENSIONS,
    TUS_VERSION,
    URL_PREFIX,
    TusError,
    append_body,
    check_envelope_prefix,
    create_upload,
    find_upload,
    parse_decimal,
    valid_envelope_length,
)

__all__ = [
    "FULL_RETRY_AFTER",
    "OFFSET_OCTET_STREAM",
    "TUS_EXTENSIONS",
    "TUS_VERSION",
    "URL_PREFIX",
    "TusError",
    "UploadPolicy",
    "append_body",
    "check_envelope_prefix",
    "create_tus_blueprint",
    "create_upload",
    "find_upload",
    "parse_decimal",
    "valid_envelope_length",
]
