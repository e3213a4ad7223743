"""Ranking a search's candidates: BM25 computed among the candidates themselves.

FTS5's own ``rank`` (bm25) weighs each query term by how many rows of the whole index hold
it, and counts them for every query: for a word in every one of a million messages it read
that word's whole list (about 90 ms of CPU at 1,000,000 messages, growing with the store).
A search ranks only the newest SEARCH_CANDIDATES matches (journalist_ui.triage.search), so
their own search terms (the ``terms`` column of ``item_terms`` or ``note_terms``) give the
same measures at a cost that does not grow with the store: term frequency, length, and each
query word's document frequency among the candidates. Higher is better.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from journalist_ui.store.terms import Analyzer, fold, words

#: The usual BM25 parameters (FTS5's too).
K1 = 1.2
B = 0.75


@dataclass(frozen=True)
class QueryWord:
    """One word of a query: any of its terms, or (``word*``) any term with its prefix."""

    terms: frozenset[str]
    prefix: str | None = None

    def frequency(self, counts: Counter[str]) -> int:
        if self.prefix is not None:
            prefix = self.prefix
            return sum(n for term, n in counts.items() if term.startswith(prefix))
        return sum(counts.get(term, 0) for term in self.terms)


def query_words(analyzer: Analyzer, query: str) -> list[QueryWord]:
    """The words of a query as store.terms.match_expression reads them."""
    found: list[QueryWord] = []
    for raw in query.split():
        parts = [raw[start:end] for start, end in words(raw)]
        for number, word in enumerate(parts):
            if raw.endswith("*") and number == len(parts) - 1:
                found.append(QueryWord(frozenset(), fold(word)))
            else:
                found.append(QueryWord(analyzer.word_terms(word)))
    return found


def bm25(query: Sequence[QueryWord], documents: Sequence[str]) -> list[float]:
    """The score of each document (its search terms, space-separated) for the query."""
    if not documents:
        return []
    counted = [Counter(document.split()) for document in documents]
    lengths = [sum(counts.values()) for counts in counted]
    average = (sum(lengths) / len(lengths)) or 1.0
    frequencies = [[word.frequency(counts) for word in query] for counts in counted]
    total = len(documents)
    weights = []
    for column in range(len(query)):
        having = sum(1 for row in frequencies if row[column])
        weights.append(math.log((total - having + 0.5) / (having + 0.5) + 1.0))
    scores = []
    for length, row in zip(lengths, frequencies, strict=True):
        norm = K1 * (1.0 - B + B * length / average)
        scores.append(
            sum(w * f * (K1 + 1.0) / (f + norm) for w, f in zip(weights, row, strict=True) if f)
        )
    return scores


__all__ = ["QueryWord", "bm25", "query_words"]
