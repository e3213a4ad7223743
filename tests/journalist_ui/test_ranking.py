"""Search ranking: BM25 among the candidates (journalist_ui.triage.ranking)."""

from __future__ import annotations

from journalist_ui.store.terms import Analyzer
from journalist_ui.triage.ranking import bm25, query_words

ANALYZER = Analyzer()


def terms(text: str) -> str:
    return ANALYZER.text_terms(text)


def test_more_of_the_word_in_a_shorter_text_ranks_higher():
    query = query_words(ANALYZER, "invoices")
    documents = [
        terms("an invoice among many other words of a long letter about the harbour"),
        terms("invoices invoices"),
        terms("invoices harbour"),
    ]
    scores = bm25(query, documents)
    assert scores[1] > scores[2] > scores[0] > 0


def test_a_rarer_query_word_weighs_more():
    query = query_words(ANALYZER, "minister tender")
    documents = [
        terms("minister minister"),
        terms("minister tender"),
        terms("minister report"),
        terms("minister memo"),
    ]
    scores = bm25(query, documents)
    assert scores.index(max(scores)) == 1


def test_prefixes_count_and_nothing_is_not_ranked():
    query = query_words(ANALYZER, "закуп*")
    assert query[0].prefix == "закуп"
    scores = bm25(query, [terms("Закупки и закупщики"), terms("закупка")])
    assert min(scores) > 0
    assert bm25(query, []) == []
