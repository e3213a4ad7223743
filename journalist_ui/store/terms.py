# ruff: noqa: RUF001, RUF002, RUF003  (Cyrillic letters and apostrophes are the subject here)
"""Search terms: what the search index holds for a text, and what a query looks for.

A word becomes a small set of terms: its folded form (NFKC, case folded, ``ё`` -> ``е``,
apostrophes dropped) and its stems, from the Snowball stemmers for Russian and English
(PyStemmer) and the Ukrainian lemma from pymorphy3's Ukrainian dictionary (Snowball has no
Ukrainian and no Belarusian stemmer). A text is indexed as the terms of all its words, and
a query word matches a text when one of its terms is among the text's: "документы" and
"документ" share the Russian stem "документ", "будівлі" and "будівля" the Ukrainian lemma
"будівля". A query word ending in ``*`` is a prefix of the folded form ("закуп*").

Belarusian has no stemmer or dictionary on PyPI: Belarusian words get the Russian stem and
the Ukrainian lemma, which covers the endings the languages share (-ы, -а, -у, -ам, -ах,
-амі partly) but not Belarusian-only ones (genitive plural -аў, -эй): docs/architecture.md
says so, and the prefix search is the way around it.

The index's FTS5 tokenizer (``unicode61 remove_diacritics 2``) then folds what is left:
diacritics of Latin letters, and й/ї/ў to и/і/у, on the indexed terms and the query alike.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Callable

import pymorphy3
import Stemmer

#: A word: letters and digits, with apostrophes inside (Ukrainian, Belarusian: "сям'я").
_WORD = re.compile(r"[^\W_]+(?:['’ʼ`‘][^\W_]+)*")
_APOSTROPHES = str.maketrans({"’": "'", "ʼ": "'", "`": "'", "‘": "'"})
#: Belarusian spelling as Russian spelling, for the Russian stemmer (the nearest language
#: with a Snowball stemmer): і -> и, э -> е, ў -> в.
_AS_RUSSIAN = str.maketrans({"і": "и", "э": "е", "ў": "в"})
_CYRILLIC = re.compile(r"[\u0400-\u04ff]")
#: Words longer than this are indexed as they are (no stem): a long token is a hash or an
#: identifier, and the analyzers' time grows with it.
MAX_STEMMED_CHARS = 40


def _base(word: str) -> str:
    """Case folded, ``ё`` as ``е``, one apostrophe (NFKC first: ligatures, widths)."""
    return unicodedata.normalize("NFKC", word).casefold().replace("ё", "е").translate(_APOSTROPHES)


def fold(word: str) -> str:
    """Case folded, ``ё`` as ``е``, apostrophes removed (a term is one FTS5 token)."""
    return _base(word).replace("'", "")


def words(text: str) -> list[tuple[int, int]]:
    """The (start, end) offsets of the words of ``text``."""
    return [match.span() for match in _WORD.finditer(text)]


class Analyzer:
    """Turns words into search terms, caching each word's terms.

    Building one loads the Ukrainian dictionary (tens of ms): an import builds one, the web
    interface one for its lifetime. Safe to share between threads (PyStemmer's stemmers are
    not: a lock guards them).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._russian = Stemmer.Stemmer("russian")
        self._english = Stemmer.Stemmer("english")
        self._ukrainian = pymorphy3.MorphAnalyzer(lang="uk")
        self._cache: dict[str, frozenset[str]] = {}
        #: Each word's terms as the index holds them (sorted, space-separated): an import
        #: indexes the same words again and again.
        self._indexed: dict[str, str] = {}

    def word_terms(self, word: str) -> frozenset[str]:
        """The folded form and the stems of one word."""
        cached = self._cache.get(word)
        if cached is not None:
            return cached
        with self._lock:
            result = self._analyze(word)
        if len(self._cache) < 200_000:
            self._cache[word] = result
        return result

    def _analyze(self, word: str) -> frozenset[str]:
        base = _base(word)
        folded = base.replace("'", "")
        terms = {folded}
        if len(folded) <= MAX_STEMMED_CHARS:
            if _CYRILLIC.search(folded):
                terms.add(self._russian.stemWord(folded))
                if "і" in folded or "э" in folded or "ў" in folded:
                    terms.add(self._russian.stemWord(folded.translate(_AS_RUSSIAN)))
                # Only words the Ukrainian dictionary knows: its guesses for others (Russian
                # "судьями" as a form of "суд") would find unrelated texts.
                if self._ukrainian.word_is_known(base):
                    terms.add(fold(self._ukrainian.parse(base)[0].normal_form))
            else:
                terms.add(self._english.stemWord(folded))
        return frozenset(term for term in terms if term)

    def text_terms(self, text: str) -> str:
        """What the index holds for ``text``: the terms of its words, space-separated."""
        indexed = self._indexed
        out: list[str] = []
        for word in _WORD.findall(text):
            terms = indexed.get(word)
            if terms is None:
                terms = " ".join(sorted(self.word_terms(word)))
                if len(indexed) < 200_000:
                    indexed[word] = terms
            out.append(terms)
        return " ".join(term for term in out if term)


def _quoted(term: str) -> str:
    return '"' + term.replace('"', '""') + '"'


def match_expression(analyzer: Analyzer, query: str) -> str | None:
    """The FTS5 MATCH expression for a query: every word (AND), each as any of its terms
    (OR), or as a prefix when it ends in ``*``; None when the query has no word.

    Every term is quoted, so FTS5 operators and syntax characters typed in the query are
    plain text.
    """
    groups: list[str] = []
    for raw in query.split():
        prefix = raw.endswith("*")
        found = [raw[s:e] for s, e in words(raw)]
        if not found:
            continue
        if prefix:
            # "закуп*" (and "об'єкт*"): the folded prefix of the last word, the rest exact.
            *whole, last = found
            parts = [_any(analyzer.word_terms(w)) for w in whole]
            parts.append(_quoted(fold(last)) + "*")
            groups.append(" AND ".join(parts))
        else:
            groups.extend(_any(analyzer.word_terms(w)) for w in found)
    return " AND ".join(groups) if groups else None


def _any(terms: frozenset[str]) -> str:
    return "(" + " OR ".join(_quoted(t) for t in sorted(terms)) + ")"


def matcher(analyzer: Analyzer, query: str) -> Callable[[str], bool]:
    """:func:`matches` for one query, its words analyzed once: a search highlights the words
    of hundreds of snippets (each text word is looked at once, then remembered)."""
    wanted: set[str] = set()
    prefixes: list[str] = []
    for raw in query.split():
        found = [raw[s:e] for s, e in words(raw)]
        if not found:
            continue
        if raw.endswith("*"):
            prefixes.append(fold(found[-1]))
        for word in found:
            wanted |= analyzer.word_terms(word)
    seen: dict[str, bool] = {}

    def match(word: str) -> bool:
        hit = seen.get(word)
        if hit is None:
            folded = fold(word)
            hit = any(folded.startswith(prefix) for prefix in prefixes) or not (
                wanted.isdisjoint(analyzer.word_terms(word))
            )
            if len(seen) < 100_000:
                seen[word] = hit
        return hit

    return match


def matches(analyzer: Analyzer, query: str, word: str) -> bool:
    """Whether one word of a text is one a query looks for (to highlight it)."""
    terms = analyzer.word_terms(word)
    folded = fold(word)
    for raw in query.split():
        found = [raw[s:e] for s, e in words(raw)]
        if not found:
            continue
        if raw.endswith("*") and folded.startswith(fold(found[-1])):
            return True
        if any(terms & analyzer.word_terms(w) for w in found):
            return True
    return False


__all__ = [
    "MAX_STEMMED_CHARS",
    "Analyzer",
    "fold",
    "match_expression",
    "matcher",
    "matches",
    "words",
]
