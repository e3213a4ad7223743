"""Inbound and outbound bundles v1 (docs/format.md sections 10 and 11).

A bundle is one file: a magic, a version, a signed canonical JSON manifest and the envelopes
it lists, concatenated. The inbound bundle carries what the server received to the station,
signed by the server; the outbound bundle carries replies, deletions and acknowledgements
back, signed by a journalist signing key.

``container`` holds the framing and the streaming reader both directions share, ``fields``
the manifest field checks they share; ``inbound`` and ``outbound`` each hold one direction's
manifest, writer and reader. The names below are what the rest of Postern imports.
"""

from crypto.bundle.container import (
    MAX_MANIFEST,
    MIN_MANIFEST,
    PIECE,
    PREFIX_LEN,
    SIGNATURE_LEN,
    VERSION,
    EnvelopeSink,
    open_bundle_file,
)
from crypto.bundle.fields import MAX_ENVELOPE, valid_envelope_size
from crypto.bundle.inbound import (
    INBOUND_LABEL,
    INBOUND_MAGIC,
    ITEM_KINDS,
    MAX_INBOUND_TOTAL,
    MAX_ITEMS,
    InboundItem,
    InboundManifest,
    parse_signed_inbound_manifest,
    read_inbound_bundle,
    sign_inbound_manifest,
    write_inbound_bundle,
)
from crypto.bundle.outbound import (
    DELETION_SCOPES,
    MAX_ACKNOWLEDGED,
    MAX_DELETIONS,
    MAX_REPLIES,
    MAX_REPLY,
    OUTBOUND_LABEL,
    OUTBOUND_MAGIC,
    Deletion,
    OutboundManifest,
    OutboundReply,
    read_outbound_bundle,
    write_outbound_bundle,
)

__all__ = [
    "DELETION_SCOPES",
    "INBOUND_LABEL",
    "INBOUND_MAGIC",
    "ITEM_KINDS",
    "MAX_ACKNOWLEDGED",
    "MAX_DELETIONS",
    "MAX_ENVELOPE",
    "MAX_INBOUND_TOTAL",
    "MAX_ITEMS",
    "MAX_MANIFEST",
    "MAX_REPLIES",
    "MAX_REPLY",
    "MIN_MANIFEST",
    "OUTBOUND_LABEL",
    "OUTBOUND_MAGIC",
    "PIECE",
    "PREFIX_LEN",
    "SIGNATURE_LEN",
    "VERSION",
    "Deletion",
    "EnvelopeSink",
    "InboundItem",
    "InboundManifest",
    "OutboundManifest",
    "OutboundReply",
    "open_bundle_file",
    "parse_signed_inbound_manifest",
    "read_inbound_bundle",
    "read_outbound_bundle",
    "sign_inbound_manifest",
    "valid_envelope_size",
    "write_inbound_bundle",
    "write_outbound_bundle",
]
