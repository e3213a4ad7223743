"""Replies, deletions and acknowledgements, and the signed outbound bundle that carries them.

docs/format.md section 11 is the bundle; the server applies it. The modules:
:mod:`.replies` (sealing and storing a reply), :mod:`.deletions` (deleting locally at once)
and :mod:`.bundle` (writing every pending reply, deletion and acknowledgement into one
signed bundle).
"""

from __future__ import annotations

from journalist_ui.outbound.bundle import OutboundResult, export_outbound
from journalist_ui.outbound.deletions import Scope, queue_deletion
from journalist_ui.outbound.replies import MAX_REPLY_TEXT, queue_reply

__all__ = [
    "MAX_REPLY_TEXT",
    "OutboundResult",
    "Scope",
    "export_outbound",
    "queue_deletion",
    "queue_reply",
]
