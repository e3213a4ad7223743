"""What an envelope holds, learnt by opening it once: the SHA-256 and size of its content,
a file's name and media type, a message's text for the search index. Nothing decrypted is
stored; an envelope none of the keys open still gives the key ids its header names.

:func:`read_contents` opens an envelope in memory or in a file; :class:`ContentsStream`
learns the same from an envelope fed in order as the bundle is read (a large one: it is
stored as it streams, never read back).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, cast

from crypto import (
    DecryptionError,
    FormatError,
    Kind,
    Metadata,
    RecipientKeys,
    StreamOpener,
    open_envelope,
    read_header,
)
from crypto.bundle import InboundItem
from journalist_ui.filenames import safe_filename
from journalist_ui.store.search_index import item_terms
from journalist_ui.store.terms import Analyzer

#: Longest message text indexed for search (the whole message is always decrypted on demand).
MAX_INDEXED_TEXT = 4 * 1024 * 1024


@dataclass(frozen=True)
class Contents:
    """What an envelope tells those who open it (all None when none of the keys could)."""

    key_ids: str  # the recipients' key ids its header names, hex, sorted, comma-separated
    decryptable: bool
    kind: str
    filename: str | None = None
    media_type: str | None = None
    plaintext_size: int | None = None
    plaintext_sha256: str | None = None
    body: str | None = None  # a message's text, for search


@dataclass
class Opened:
    """What decrypting one new envelope of an import taught us."""

    item: InboundItem
    temp: Path
    key_ids: str
    decryptable: bool
    kind: str
    filename: str | None = None
    media_type: str | None = None
    plaintext_size: int | None = None
    plaintext_sha256: str | None = None
    body: str | None = None
    #: The search terms of its text and file name (store.search_index), worked out as it is
    #: decrypted, often while the calling thread would wait for the spool: not in the
    #: import's transaction. None when there is nothing to index.
    terms: str | None = None
    #: Given once every new envelope is decrypted, from the import's file names.
    final_name: str = ""


class _Digest:
    """Where decrypted content goes during an import: hashed and counted, never stored;
    the text of a message (up to MAX_INDEXED_TEXT bytes) is kept for the search index."""

    def __init__(self, keep_text: bool) -> None:
        self.sha256 = hashlib.sha256()
        self.size = 0
        self.text = bytearray() if keep_text else None

    def write(self, data: bytes | memoryview, /) -> int:
        self.sha256.update(data)
        self.size += len(data)
        if self.text is not None and len(self.text) < MAX_INDEXED_TEXT:
            self.text += data[: MAX_INDEXED_TEXT - len(self.text)]
        return len(data)


def open_received(
    item: InboundItem, temp: Path, src: BinaryIO, keys: RecipientKeys, analyzer: Analyzer
) -> Opened:
    """Open the envelope in src (its bytes as in the bundle; its file is ``temp``) and work
    out the search terms of what it holds."""
    return opened_from(item, temp, read_contents(src, keys, item.kind), analyzer)


def opened_from(item: InboundItem, temp: Path, c: Contents, analyzer: Analyzer) -> Opened:
    """What the import keeps of ``c``, with the search terms of what it holds."""
    indexed = c.body is not None or bool(c.filename)
    return Opened(
        item, temp, c.key_ids, c.decryptable, c.kind, c.filename, c.media_type,
        c.plaintext_size, c.plaintext_sha256, c.body,
        item_terms(analyzer, c.body, c.filename) if indexed else None,
    )  # fmt: skip


def read_contents(src: BinaryIO, keys: RecipientKeys | list[bytes], kind: str) -> Contents:
    """Open the envelope in ``src`` with ``keys`` and hash (and, for a message, keep the
    text of) its content. An envelope none of the keys opens gives ``decryptable`` False,
    the key ids its header names (if it has a header) and ``kind`` as given."""
    try:
        opened = open_envelope(src, keys)
        metadata = opened.metadata
        digest = _Digest(keep_text=metadata.kind is Kind.MESSAGE)
        opened.write_to(cast(BinaryIO, digest))
    except (DecryptionError, FormatError):
        src.seek(0)
        try:
            header = read_header(src)
        except FormatError:
            return Contents("", False, kind)
        return Contents(_joined(header.key_ids), False, kind)
    return _decrypted(_joined(opened.header.key_ids), metadata, digest, kind)


class ContentsStream:
    """:func:`read_contents` of an envelope of ``size`` bytes fed in order with
    :meth:`write` (any failure to open it is kept for :meth:`finish`, as the bundle goes on
    streaming): the same :class:`Contents`, from one pass over its bytes."""

    def __init__(self, size: int, keys: RecipientKeys, kind: str) -> None:
        self._kind = kind
        # Whether it is a message shows only in its trailer, at the end: the start of every
        # content is kept, up to MAX_INDEXED_TEXT, and dropped unless it was a message.
        self._digest = _Digest(keep_text=True)
        self._opener = StreamOpener(size, keys, self._digest)
        self._failed = False

    def write(self, data: bytes | memoryview, /) -> None:
        if self._failed:
            return
        try:
            self._opener.write(data)
        except (DecryptionError, FormatError):
            self._failed = True
            self._digest = _Digest(keep_text=False)

    def finish(self) -> Contents:
        metadata = None
        if not self._failed:
            try:
                metadata = self._opener.finish()
            except (DecryptionError, FormatError):
                metadata = None
        header = self._opener.header
        if metadata is None or header is None:
            return Contents("" if header is None else _joined(header.key_ids), False, self._kind)
        if metadata.kind is not Kind.MESSAGE:
            self._digest.text = None
        return _decrypted(_joined(header.key_ids), metadata, self._digest, self._kind)


def _joined(key_ids: frozenset[bytes]) -> str:
    return ",".join(sorted(k.hex() for k in key_ids))


def _decrypted(key_ids: str, metadata: Metadata, digest: _Digest, kind: str) -> Contents:
    kind = {Kind.MESSAGE: "message", Kind.FILE: "file"}.get(metadata.kind, kind)
    return Contents(
        key_ids,
        True,
        kind,
        filename=(safe_filename(metadata.filename) or None) if kind == "file" else None,
        media_type=metadata.media_type or None,
        plaintext_size=digest.size,
        plaintext_sha256=digest.sha256.hexdigest(),
        body=None if digest.text is None else bytes(digest.text).decode("utf-8", "replace"),
    )
