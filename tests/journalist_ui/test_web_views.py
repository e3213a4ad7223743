"""The station UI's triage, file, search, reply, deletion, outbound, import and ledger pages,
through Flask's test client against a real store, real envelopes, real gpg and mat2."""

from __future__ import annotations

import hashlib
import html
import re
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select
from werkzeug.test import TestResponse

from crypto import Kind, open_bytes
from crypto.bundle import OutboundManifest, OutboundReply, read_outbound_bundle
from journalist_ui import ledger
from journalist_ui.store.models import Item, LedgerRecord, Note, Outgoing, Source
from tests.conftest import require_tool
from tests.journalist_ui.storekit import (
    Entry,
    FakeSource,
    file,
    message,
    pin,
    server_key,
    write_bundle,
)
from tests.journalist_ui.webkit import Clock, WebClient, add_item, add_source, make_app

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
PDF = b"%PDF-1.7\n" + bytes(range(256)) * 40


@pytest.fixture
def web(home):
    client = WebClient(make_app(home, Clock(NOW)))
    assert client.unlock().status_code == 302
    return client


@pytest.fixture
def seeded(web):
    """Two sources with a message, a PDF, an HTML file, a text file and a duplicate."""
    unlocked = web.unlocked()
    with unlocked.store.session() as session:
        otter = add_source(session, "amber otter")
        heron = add_source(session, "brisk heron", starred=True)
        ids = {
            "message": add_item(unlocked, session, otter, "message", b"the mayor took bribes").id,
            "pdf": add_item(
                unlocked,
                session,
                otter,
                "file",
                PDF,
                filename="ledger.pdf",
                media_type="application/pdf",
            ).id,
            "html": add_item(
                unlocked,
                session,
                otter,
                "file",
                b"<script>alert(1)</script>",
                filename="page.html",
                media_type="text/html",
            ).id,
            "text": add_item(
                unlocked,
                session,
                otter,
                "file",
                b"plain notes\n",
                filename="notes.txt",
                media_type="text/plain",
            ).id,
            "dup": add_item(unlocked, session, heron, "message", b"the mayor took bribes").id,
        }
        ids["otter"], ids["heron"] = otter.id, heron.id
    return ids


class MemorySink:
    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, data: bytes, /) -> int:
        self.data += data
        return len(data)

    def commit(self) -> None:
        pass

    def abort(self) -> None:
        self.data.clear()


def read_bundle(
    web: WebClient, bundle: Path
) -> tuple[OutboundManifest, list[tuple[OutboundReply, bytes]]]:
    """Verify an outbound bundle with the journalist's signing key; its replies."""
    signer = web.unlocked().signing_key.public
    sinks: list[tuple[OutboundReply, MemorySink]] = []

    def open_sink(reply: OutboundReply) -> MemorySink:
        sinks.append((reply, MemorySink()))
        return sinks[-1][1]

    with bundle.open("rb") as src:
        manifest = read_outbound_bundle(src, {signer.key_id: signer.key}, open_sink)
    return manifest, [(reply, bytes(sink.data)) for reply, sink in sinks]


def counts(page: str, designation: str) -> list[str]:
    """Messages, files, replies, unread of one source's row in the source list."""
    for row in re.findall(r"<tr[^>]*>.*?</tr>", page, re.S):
        if f">{designation}</a>" in row:
            return re.findall(r'<td class="num">(?:<strong>)?(\d+)', row)
    raise AssertionError(f"no row for {designation}")


def body(response: TestResponse) -> str:
    return response.get_data(as_text=True)


def wait_for_import(web: WebClient, url: str) -> str:
    """The import's progress page once the import is finished (the page stops refreshing)."""
    for _ in range(1200):
        page = body(web.get(url))
        if 'http-equiv="refresh"' not in page:
            return page
        time.sleep(0.05)
    raise AssertionError("the import did not finish within a minute")


def events(web, event: str) -> list[LedgerRecord]:
    with web.unlocked().store.session() as session:
        return list(session.scalars(select(LedgerRecord).where(LedgerRecord.event == event)))


def test_empty_station_explains_what_to_do(web):
    page = body(web.get("/"))
    assert "No sources yet" in page
    assert "import it" in page
    assert "No two items have the same content" in body(web.get("/duplicates"))
    assert "Nothing is waiting to go out" in body(web.get("/outbound"))


def test_source_list_shows_counts_days_and_stars(web, seeded):
    page = body(web.get("/"))
    assert counts(page, "amber otter") == ["1", "3", "0", "4"]
    assert counts(page, "brisk heron") == ["1", "0", "0", "1"]
    assert "2026-11-20" in page
    assert "4 days ago" in page
    starred = body(web.get("/?starred=1"))
    assert "brisk heron" in starred
    assert "amber otter" not in starred
    assert "No source matches these filters" in body(web.get("/?q=zebra"))
    assert web.get("/?sort=bogus").status_code == 400


def test_conversation_decrypts_marks_read_and_records_views(web, seeded):
    page = body(web.get(f"/sources/{seeded['otter']}"))
    assert "the mayor took bribes" in page
    assert "ledger.pdf" in page
    assert hashlib.sha256(PDF).hexdigest() in page
    assert "duplicate \u00d71" in page
    views = events(web, "view")
    assert [v.item_ref for v in views] == [str(seeded["message"])]
    assert counts(body(web.get("/")), "amber otter")[-1] == "3"
    with web.unlocked().store.session() as session:
        assert ledger.verify(session, web.unlocked().layout.ledger_head).ok


def test_item_read_toggle(web, seeded):
    web.get(f"/sources/{seeded['otter']}")
    web.post(f"/items/{seeded['message']}/read", {"read": "0"})
    assert counts(body(web.get("/")), "amber otter")[-1] == "4"
    web.post(f"/items/{seeded['pdf']}/read", {"read": "1"})
    assert counts(body(web.get("/")), "amber otter")[-1] == "3"


def test_star_status_assign_and_notes_persist(web, seeded, home):
    pk = seeded["otter"]
    web.get(f"/sources/{pk}")
    web.post(f"/sources/{pk}/star", {"starred": "1"})
    web.post(f"/sources/{pk}/status", {"status": "verified"})
    web.post(f"/sources/{pk}/assign", {"assignee": "alice"})
    web.post(f"/sources/{pk}/notes", {"text": "<b>call</b> back"})
    assert "unknown status" in body(
        web.post(f"/sources/{pk}/status", {"status": "x"}, follow_redirects=True)
    )
    page = body(web.get(f"/sources/{pk}"))
    assert "&lt;b&gt;call&lt;/b&gt; back" in page
    assert "<b>call</b>" not in page
    # A new app on the same home (a restart) sees the same state.
    again = WebClient(make_app(home, Clock(NOW)))
    again.unlock()
    with again.unlocked().store.session() as session:
        source = session.get(Source, pk)
        assert source is not None
        assert (source.starred, source.status, source.assigned_to) == (True, "verified", "alice")
        assert session.scalar(select(func.count()).select_from(Note)) == 1


def test_bulk_actions(web, seeded):
    web.get("/")
    pks = [str(seeded["otter"]), str(seeded["heron"])]
    response = web.post("/bulk", {"action": "status", "status": "closed", "source": pks})
    assert response.status_code == 303
    web.post("/bulk", {"action": "unstar", "source": pks})
    web.post("/bulk", {"action": "read", "source": pks})
    with web.unlocked().store.session() as session:
        sources = session.scalars(select(Source)).all()
        assert {(s.status, s.starred) for s in sources} == {("closed", False)}
    assert counts(body(web.get("/")), "amber otter")[-1] == "0"
    refused = web.post("/bulk", {"action": "star"}, follow_redirects=True)
    assert "no source selected" in body(refused)
    assert web.post("/bulk", {"action": "explode", "source": pks}).status_code == 400
    redirect = web.post("/bulk", {"action": "star", "source": pks, "back": "//evil.example/"})
    assert redirect.headers["Location"] == "/"


def test_download_is_an_attachment_and_byte_identical(web, seeded):
    response = web.client.get(f"/files/{seeded['pdf']}/download", base_url="http://127.0.0.1:8090")
    data = response.get_data()
    response.close()
    assert data == PDF
    assert response.mimetype == "application/octet-stream"
    assert response.headers["Content-Disposition"].startswith('attachment; filename="ledger.pdf"')
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert counts(body(web.get("/")), "amber otter")[-1] == "3"  # the file is read now
    exports = events(web, "export")
    assert [(e.item_ref, e.sha256) for e in exports] == [
        (str(seeded["pdf"]), hashlib.sha256(PDF).hexdigest())
    ]


def test_html_is_never_shown_inline_and_text_is_sandboxed(web, seeded):
    assert web.get(f"/files/{seeded['html']}/show").status_code == 404
    assert web.get(f"/files/{seeded['pdf']}/show").status_code == 404
    page = body(web.get(f"/files/{seeded['html']}"))
    assert "Show in a sandbox" not in page
    response = web.client.get(f"/files/{seeded['text']}/show", base_url="http://127.0.0.1:8090")
    assert response.get_data() == b"plain notes\n"
    response.close()
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert response.headers["Content-Security-Policy"].endswith("sandbox")
    html_download = web.client.get(
        f"/files/{seeded['html']}/download", base_url="http://127.0.0.1:8090"
    )
    html_download.get_data()
    html_download.close()
    assert html_download.mimetype == "application/octet-stream"


def test_export_to_folder_and_never_overwrite(web, seeded, tmp_path):
    out = tmp_path / "usb"
    out.mkdir()
    web.get(f"/files/{seeded['pdf']}")
    page = body(
        web.post(f"/files/{seeded['pdf']}/export", {"folder": str(out)}, follow_redirects=True)
    )
    assert f"Exported to {out / 'ledger.pdf'}" in page
    web.post(f"/files/{seeded['pdf']}/export", {"folder": str(out)})
    assert sorted(p.name for p in out.iterdir()) == ["ledger (1).pdf", "ledger.pdf"]
    assert (out / "ledger.pdf").read_bytes() == PDF
    page = body(
        web.post(f"/files/{seeded['pdf']}/export", {"folder": "relative"}, follow_redirects=True)
    )
    assert "must be an absolute path" in page
    assert len(events(web, "export")) == 2


def test_export_with_metadata_stripped_and_report(web, seeded, tmp_path):
    require_tool("mat2")
    from tests.journalist_ui.test_mat import png_with_metadata

    png = png_with_metadata()
    unlocked = web.unlocked()
    with unlocked.store.session() as session:
        source = session.get(Source, seeded["otter"])
        assert source is not None
        item = add_item(
            unlocked, session, source, "file", png, filename="photo.png", media_type="image/png"
        )
        item_id = item.id
    report = body(web.get(f"/files/{item_id}/metadata"))
    assert "Jane Insider" in report
    out = tmp_path / "clean"
    out.mkdir()
    web.get(f"/files/{item_id}")
    web.post(f"/files/{item_id}/export", {"folder": str(out), "strip": "1"})
    (exported,) = out.iterdir()
    assert exported.name == "photo.png"
    assert b"Jane Insider" not in exported.read_bytes()
    assert exported.read_bytes().startswith(b"\x89PNG")


@pytest.mark.slow
def test_export_to_openpgp_after_confirming_the_fingerprint(web, seeded, tmp_path):
    from tests.journalist_ui.test_gpg import _gpg

    gnupg_home = tmp_path / "colleague"
    gnupg_home.mkdir(mode=0o700)
    _gpg(
        gnupg_home,
        "--passphrase",
        "",
        "--quick-gen-key",
        "Col <c@example.org>",
        "default",
        "default",
        "never",
    )
    armored = _gpg(gnupg_home, "--armor", "--export").stdout.decode()
    out = tmp_path / "out"
    out.mkdir()
    web.get(f"/files/{seeded['pdf']}")
    confirm = body(
        web.post(f"/files/{seeded['pdf']}/export-openpgp", {"key": armored, "folder": str(out)})
    )
    fingerprint = re.search(r'<code id="fingerprint">([0-9A-F]{40})</code>', confirm)
    assert fingerprint is not None
    assert list(out.iterdir()) == []
    web.post(
        f"/files/{seeded['pdf']}/export-openpgp",
        {"key": html.unescape(armored), "folder": str(out), "fingerprint": fingerprint.group(1)},
    )
    (encrypted,) = out.iterdir()
    assert encrypted.name == "ledger.pdf.gpg"
    assert _gpg(gnupg_home, "--decrypt", str(encrypted)).stdout == PDF
    subprocess.run(
        [require_tool("gpgconf"), "--homedir", str(gnupg_home), "--kill", "all"],
        check=False,
        timeout=30,
    )
    (export,) = events(web, "export")
    assert fingerprint.group(1) in export.detail


def test_search_and_duplicates(web, seeded):
    page = body(web.get("/search?q=MAYOR"))
    assert page.count("<mark>mayor</mark>") == 2
    assert "amber otter" in page
    assert "brisk heron" in page
    assert "No message or reply contains" in body(web.get("/search?q=nothing+here"))
    assert "at most 200" in body(web.get("/search?q=" + "a" * 201))
    assert "NEAR" in body(web.get('/search?q=NEAR("x'))
    dups = body(web.get("/duplicates"))
    assert "2 items · from 2 sources" in dups


def test_search_hits_link_to_their_item_or_note_and_stay_escaped(web, seeded):
    pk = seeded["otter"]
    web.post(f"/sources/{pk}/notes", {"text": "ask about the mayor's <script>alert(2)</script>"})
    with web.unlocked().store.session() as session:
        (note_id,) = session.scalars(select(Note.id).where(Note.source_pk == pk))
    page = body(web.get("/search?q=mayor"))
    links = set(re.findall(r'href="(/sources/\d+#[a-z]+-\d+)"', page))
    assert links == {
        f"/sources/{pk}#item-{seeded['message']}",
        f"/sources/{seeded['heron']}#item-{seeded['dup']}",
        f"/sources/{pk}#note-{note_id}",
    }
    # Each anchor is on the page it links to.
    for link in links:
        path, anchor = link.split("#")
        assert f'id="{anchor}"' in body(web.get(path))
    # A match inside markup is marked, and the markup stays text.
    page = body(web.get("/search?q=script"))
    assert "&lt;<mark>script</mark>&gt;alert(2)&lt;/<mark>script</mark>&gt;" in page
    assert "<script" not in page.lower()


def test_the_unread_count_is_capped_for_display(web, seeded, monkeypatch):
    from journalist_ui import triage

    page = body(web.get("/"))
    assert ">5 unread</span>" in page
    monkeypatch.setattr(triage, "UNREAD_COUNT_CAP", 4)
    page = body(web.get("/"))
    assert ">4+ unread</span>" in page
    assert "5 unread" not in page


def test_reply_delete_and_outbound_bundle(web, seeded, home, tmp_path):
    pk = seeded["otter"]
    web.get(f"/sources/{pk}")
    page = body(web.post(f"/sources/{pk}/reply", {"text": "Thank you <3"}, follow_redirects=True))
    assert "Reply sealed and queued" in page
    assert "Thank you &lt;3" in page
    # Delete one item: a confirmation page first, the designation typed to confirm.
    confirm = web.get(f"/sources/{pk}/delete?scope=item&item={seeded['html']}")
    assert "page.html" in body(confirm)
    wrong = web.post(
        f"/sources/{pk}/delete",
        {"scope": "item", "item": str(seeded["html"]), "confirm": "nope"},
        follow_redirects=True,
    )
    assert "to confirm the deletion" in body(wrong)
    web.post(
        f"/sources/{pk}/delete",
        {"scope": "item", "item": str(seeded["html"]), "confirm": "amber otter"},
    )
    with web.unlocked().store.session() as session:
        assert session.get(Item, seeded["html"]) is None
        pending = session.scalars(select(Outgoing).where(Outgoing.bundle_id.is_(None))).all()
        assert sorted(o.kind for o in pending) == ["deletion", "reply"]
    listing = body(web.get("/outbound"))
    assert "deletion" in listing
    assert "reply" in listing
    out = tmp_path / "outbound"
    out.mkdir()
    page = body(web.post("/outbound", {"folder": str(out)}, follow_redirects=True))
    assert "Outbound bundle written" in page
    (bundle,) = out.iterdir()
    manifest, replies = read_bundle(web, bundle)
    assert len(manifest.deletions) == 1
    assert len(manifest.acknowledged) == 0
    ((reply, envelope),) = replies
    with web.unlocked().store.session() as session:
        source = session.get(Source, pk)
        assert source is not None
        assert reply.source_id.hex() == source.source_id
    metadata, plaintext = open_bytes(envelope, web.unlocked().secrets)
    assert (metadata.kind, plaintext) == (Kind.REPLY, b"Thank you <3")
    page = body(web.post("/outbound", {"folder": str(out)}, follow_redirects=True))
    assert "Nothing to send" in page


def test_delete_source(web, seeded):
    pk = seeded["heron"]
    web.get(f"/sources/{pk}/delete?scope=source")
    response = web.post(f"/sources/{pk}/delete", {"scope": "source", "confirm": "brisk heron"})
    assert response.headers["Location"] == "/"
    assert "brisk heron" not in body(web.get("/"))
    assert web.get(f"/sources/{pk}").status_code == 404
    assert web.get(f"/sources/{pk}/delete?scope=bogus").status_code == 400


def test_import_page_runs_the_import_and_shows_the_result(web, home, tmp_path):
    key = server_key()
    pin(home, key)
    alpha = FakeSource()
    bundle = write_bundle(
        tmp_path / "in.bundle",
        key,
        [
            Entry("1", alpha, "message", message(home, "hello from the inside")),
            Entry("2", alpha, "file", file(home, PDF, "minutes.pdf")),
        ],
    )
    web.get("/imports")
    assert "absolute path on this station" in body(
        web.post("/imports", {"path": "in.bundle"}, follow_redirects=True)
    )
    response = web.post("/imports", {"path": str(bundle)})
    assert response.status_code == 303
    page = wait_for_import(web, response.headers["Location"])
    assert "Import finished: 2 new items, 0 already here, 1 new source." in page
    assert 'http-equiv="refresh"' not in page
    assert "hello from the <mark>inside</mark>" in body(web.get("/search?q=inside"))
    imports = body(web.get("/imports"))
    assert "pending" in imports
    again = web.post("/imports", {"path": str(bundle)})
    page = wait_for_import(web, again.headers["Location"])
    assert "0 new items, 2 already here" in page


def test_ledger_page_verifies(web, seeded):
    web.get(f"/sources/{seeded['otter']}")
    page = body(web.get("/ledger"))
    assert "The ledger verifies" in page


def test_statuses_page(web, seeded):
    web.get("/statuses")
    page = body(
        web.post("/statuses", {"action": "add", "name": "<b>legal</b>"}, follow_redirects=True)
    )
    assert "&lt;b&gt;legal&lt;/b&gt;" in page
    web.post(f"/sources/{seeded['otter']}/status", {"status": "<b>legal</b>"})
    refused = web.post(
        "/statuses", {"action": "remove", "name": "<b>legal</b>"}, follow_redirects=True
    )
    assert "give them another status first" in body(refused)
    assert "<b>legal</b>" not in body(refused)
    assert web.post("/statuses", {"action": "fly", "name": "new"}).status_code == 400


def test_import_progress_names_bytes_as_bytes_and_items_as_items(web):
    """The importer reports bytes (each byte read and verified, then decrypted: twice the
    bundle's size in all); the page never calls them items. Items come with the result."""
    jobs = web.state().jobs
    job = jobs.start("alice", "in.bundle", lambda progress: None, lambda _e: None)
    wait_for_import(web, f"/imports/{job.id}")
    bundle = 3 * 1024 * 1024
    job.finished, job.total = False, 2 * bundle
    job.done = 1024 * 1024
    page = body(web.get(f"/imports/{job.id}"))
    assert "Reading and verifying the bundle: 1.0 MiB of 3.0 MiB." in page
    assert "items." not in page.split('id="import-status"')[1].split("</p>")[0]
    job.done = bundle + 2 * 1024 * 1024
    page = body(web.get(f"/imports/{job.id}"))
    assert "Decrypting the new items: 2.0 MiB of 3.0 MiB." in page
    assert 'value="83"' in page  # the bar: both passes together
