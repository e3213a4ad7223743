# ruff: noqa: RUF001, RUF002  (Cyrillic words are the subject here)
"""Search in the newsroom's languages: every query of search_corpus.tsv (ru, uk, be, en),
in another grammatical form than the message it must find, finds that message and no
other, run against the whole corpus; prefixes, ё/е and case, file names and notes."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import insert

from journalist_ui import triage
from journalist_ui.store import Store, index_items, open_store
from journalist_ui.store.models import Item, Source
from journalist_ui.store.terms import Analyzer

CORPUS = Path(__file__).with_name("search_corpus.tsv")
DAY = date(2026, 11, 20)


def corpus() -> list[tuple[str, str, str]]:
    rows = []
    for line in CORPUS.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            language, query, text = line.split("\t")
            rows.append((language, query, text))
    return rows


def _source(n: int) -> dict[str, object]:
    return {"id": n, "source_id": f"{n:032x}", "reply_public_key": bytes(32),
            "designation": f"source {n}", "status": "new", "starred": False,
            "assigned_to": None, "first_day": DAY, "last_day": DAY, "deleted": False}  # fmt: skip


def _item(n: int, kind: str, filename: str | None = None) -> dict[str, object]:
    return {"id": n, "source_pk": 1, "server_id": str(n), "direction": "in", "kind": kind,
            "day": DAY, "envelope_name": f"{n:032x}", "envelope_size": 1,
            "envelope_sha256": "0" * 64, "filename": filename, "key_ids": "",
            "decryptable": True}  # fmt: skip


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    opened = open_store(tmp_path_factory.mktemp("search") / "db.sqlite", os.urandom(32))
    texts = [text for _, _, text in corpus()]
    with opened.session() as session:
        session.execute(insert(Source), [_source(1)])
        session.execute(insert(Item), [_item(n, "message") for n in range(1, len(texts) + 1)])
        index_items(session, [(n, text, None) for n, text in enumerate(texts, start=1)])
    yield opened
    opened.close()


def found(store: Store, query: str) -> set[int]:
    with store.session() as session:
        return {hit.item_id for hit in triage.search(session, query, analyzer=ANALYZER)}


ANALYZER = Analyzer()


def test_the_corpus_has_forty_pairs_per_language() -> None:
    counts = Counter(language for language, _, _ in corpus())
    assert set(counts) == {"ru", "uk", "be", "en"}
    assert min(counts.values()) >= 40
    for _, query, text in corpus():
        assert query.casefold() not in text.casefold().split(), (query, text)


@pytest.mark.parametrize(
    ("number", "language", "query", "text"),
    [(n, *row) for n, row in enumerate(corpus(), start=1)],
    ids=[f"{row[0]}-{row[1]}" for row in corpus()],
)
def test_a_query_finds_its_message_and_no_other(
    store: Store, number: int, language: str, query: str, text: str
) -> None:
    assert found(store, query) == {number}, (language, query, text)


def test_prefix_case_and_yo(store: Store) -> None:
    rows = corpus()
    ids = {text: n for n, (_, _, text) in enumerate(rows, start=1)}
    assert found(store, "засекр*") == {ids["Министерство засекретило отчёт"]}
    assert found(store, "закуп*") == {
        ids["Закупка проведена с нарушениями"],
        ids["Больница закупала томографы"],
        ids["Закупівлі проводили таємно"],
    }
    assert found(store, "ЕЛКИ") == {ids["Ёлки вывезли на свалку ночью"]}
    assert found(store, "ёлки") == found(store, "елки")
    assert found(store, "доку*") == {ids["Нам передали документы о поставках"]}
    assert found(store, "DOCUM*") == {ids["The document was leaked yesterday"]}
    # A query's FTS5 syntax is plain text, not an operator.
    assert found(store, 'NEAR( "OR * :') == set()


def test_file_names_and_notes_are_searched_and_highlighted(tmp_path: Path) -> None:
    opened = open_store(tmp_path / "db.sqlite", os.urandom(32))
    try:
        with opened.session() as session:
            session.execute(insert(Source), [_source(1)])
            session.execute(insert(Item), [_item(1, "file", "Отчёт_закупки_2026.pdf")])
            index_items(session, [(1, None, "Отчёт_закупки_2026.pdf")])
            note = triage.add_note(session, 1, "alice", "Проверить <b>поставщиков</b>", DAY)
        with opened.session() as session:
            (hit,) = triage.search(session, "отчеты")
            assert (hit.item_id, hit.kind) == (1, "file")
            assert hit.snippet.count(triage.MATCH_START) == 1
            (hit,) = triage.search(session, "поставщик")
            assert (hit.note_id, hit.kind) == (note.id, "note")
            # The text is shown as it is (the template escapes it), with the match marked.
            assert f"<b>{triage.MATCH_START}поставщиков{triage.MATCH_END}</b>" in hit.snippet
            triage.delete_note(session, note.id, "alice")
        with opened.session() as session:
            assert triage.search(session, "поставщик") == []
    finally:
        opened.close()


def test_the_migration_indexes_what_an_older_store_holds(tmp_path: Path) -> None:
    from alembic import command
    from sqlalchemy import text

    from journalist_ui.store import _alembic_config

    key = os.urandom(32)
    path = tmp_path / "db.sqlite"
    opened = open_store(path, key)
    with opened.engine.begin() as connection:
        config = _alembic_config()
        config.attributes["connection"] = connection
        command.downgrade(config, "0001")
    with opened.session() as session:  # what revision 0001 stored
        session.execute(insert(Source), [_source(1)])
        session.execute(insert(Item), [_item(7, "message"), _item(8, "file", "Закупки.xlsx")])
        session.execute(
            text("INSERT INTO message_fts (item_id, body) VALUES (7, 'Ёлки вывезли ночью')")
        )
        session.execute(
            text("INSERT INTO notes (source_pk, author, day, text) VALUES (1, 'a', :d, :t)"),
            {"d": DAY, "t": "Свидетели боятся"},
        )
    opened.close()
    opened = open_store(path, key)  # migrates to the newest revision
    try:
        with opened.session() as session:
            assert [h.item_id for h in triage.search(session, "елкам")] == [7]
            assert [h.item_id for h in triage.search(session, "закупка")] == [8]
            assert [h.kind for h in triage.search(session, "свидетель")] == ["note"]
    finally:
        opened.close()
