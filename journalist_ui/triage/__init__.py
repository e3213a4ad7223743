"""Triage use cases: the source list, a conversation, read state, stars, statuses,
assignment, notes, full-text search, duplicates and bulk actions.

Every function takes an open SQLAlchemy session of the station store (and the journalist
acting, where it matters) and neither decrypts nor renders anything: decrypted text comes
from :mod:`journalist_ui.content`, and the web views escape whatever they show.

The modules: :mod:`.sources` (the source list, a conversation, header counts),
:mod:`.actions` (what a journalist does to sources, one or many at a time),
:mod:`.statuses` (the configurable list of statuses) and :mod:`.search` (full-text search
and duplicates).
"""

from __future__ import annotations

from journalist_ui.triage.actions import (
    MAX_NOTE_CHARS,
    BulkAction,
    add_note,
    assign,
    bulk,
    delete_note,
    mark_read,
    mark_source_read,
    set_starred,
    set_status,
)
from journalist_ui.triage.search import (
    MATCH_END,
    MATCH_START,
    MAX_QUERY_CHARS,
    MAX_SEARCH_RESULTS,
    DuplicateGroup,
    SearchHit,
    duplicates,
    fts_query,
    search,
)
from journalist_ui.triage.sources import (
    UNREAD_COUNT_CAP,
    Conversation,
    ItemRow,
    NoteRow,
    Sort,
    SourceFilter,
    SourcePage,
    SourceRow,
    conversation,
    get_item,
    get_source,
    journalists_unread,
    list_sources,
    unacknowledged_imports,
)
from journalist_ui.triage.statuses import (
    MAX_STATUS_CHARS,
    add_status,
    move_status,
    remove_status,
    status_counts,
    statuses,
)

__all__ = [
    "MATCH_END",
    "MATCH_START",
    "MAX_NOTE_CHARS",
    "MAX_QUERY_CHARS",
    "MAX_SEARCH_RESULTS",
    "MAX_STATUS_CHARS",
    "UNREAD_COUNT_CAP",
    "BulkAction",
    "Conversation",
    "DuplicateGroup",
    "ItemRow",
    "NoteRow",
    "SearchHit",
    "Sort",
    "SourceFilter",
    "SourcePage",
    "SourceRow",
    "add_note",
    "add_status",
    "assign",
    "bulk",
    "conversation",
    "delete_note",
    "duplicates",
    "fts_query",
    "get_item",
    "get_source",
    "journalists_unread",
    "list_sources",
    "mark_read",
    "mark_source_read",
    "move_status",
    "remove_status",
    "search",
    "set_starred",
    "set_status",
    "status_counts",
    "statuses",
    "unacknowledged_imports",
]
