"""A journalist added after material arrived: the station says what they cannot open and why,
offers only what works (never a 500), and a journalist who can open it rewraps it from the UI,
as a background job with item progress, after which the newcomer reads everything."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from werkzeug.test import TestResponse

from journalist_ui import keys
from journalist_ui.web.rewrap import RewrapSummary
from tests.journalist_ui.webkit import Clock, WebClient, add_item, add_source, make_app
from tests.support.cli import MEMLIMIT, PASSPHRASE

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
BOB = "bob's very own passphrase"
PDF = b"%PDF-1.7\n" + bytes(range(256)) * 8


def body(response: TestResponse) -> str:
    return response.get_data(as_text=True)


def finished(web: WebClient, url: str) -> str:
    """The job's page once the job is finished (the page stops refreshing)."""
    for _ in range(1200):
        page = body(web.get(url))
        if 'http-equiv="refresh"' not in page:
            return page
        time.sleep(0.05)
    raise AssertionError("the job did not finish within a minute")


@pytest.fixture
def newcomer(home: Path) -> tuple[WebClient, WebClient, dict[str, int]]:
    """alice's station with a message and a file sealed to her alone, then bob added."""
    app = make_app(home, Clock(NOW))
    alice = WebClient(app)
    assert alice.unlock().status_code == 302
    unlocked = alice.unlocked()
    with unlocked.store.session() as session:
        source = add_source(session, "amber otter")
        ids = {
            "source": source.id,
            "message": add_item(unlocked, session, source, "message", b"the minutes").id,
            "file": add_item(
                unlocked,
                session,
                source,
                "file",
                PDF,
                filename="ledger.pdf",
                media_type="application/pdf",
            ).id,
        }
    answers = {"journalist bob's keys": BOB}
    keys.add_journalist(
        home, "bob", lambda w: answers.get(w, PASSPHRASE), lambda w: answers.get(w, PASSPHRASE),
        now=NOW, memlimit=MEMLIMIT,
    )  # fmt: skip
    bob = WebClient(app)
    assert bob.unlock("bob", BOB).status_code == 302
    return alice, bob, ids


def test_items_not_sealed_to_the_journalist_say_so_and_offer_only_what_works(newcomer, tmp_path):
    _alice, bob, ids = newcomer
    file_id = ids["file"]
    conversation = body(bob.get(f"/sources/{ids['source']}"))
    assert conversation.count("is not sealed to your keys") == 2  # the message and the file
    assert f"/files/{file_id}/download" not in conversation
    assert 'href="/rewrap"' in conversation

    page = bob.get(f"/files/{file_id}")
    assert page.status_code == 200
    assert 'id="not-sealed"' in body(page)
    assert 'id="rewrap-link"' in body(page)
    for offered in ('id="download"', f"/files/{file_id}/export", "/export-openpgp"):
        assert offered not in body(page)

    # Whatever the browser still asks for, the answer is the file page with the reason.
    asked: list[Callable[[], TestResponse]] = [
        lambda: bob.get(f"/files/{file_id}/download"),
        lambda: bob.get(f"/files/{file_id}/show"),
        lambda: bob.get(f"/files/{file_id}/metadata"),
        lambda: bob.post(f"/files/{file_id}/export", {"folder": str(tmp_path)}),
    ]
    for ask in asked:
        response = ask()
        assert response.status_code in (303, 404), response.status_code  # show: not inline
        if response.status_code == 404:
            continue
        assert response.headers["Location"].endswith(f"/files/{file_id}")
        shown = body(bob.get(f"/files/{file_id}"))
        assert "not sealed to your keys" in shown
        assert "Rewrap page" in shown  # the notice names the way out


def test_a_journalist_who_can_open_them_rewraps_from_the_ui(newcomer):
    alice, bob, ids = newcomer
    page = body(alice.get("/rewrap"))
    assert 'id="start-rewrap"' in page
    started = alice.post("/rewrap")
    assert started.status_code == 303
    url = started.headers["Location"]
    assert re.search(r"/rewrap/[0-9a-f]{32}$", url)
    done = finished(alice, url)
    assert 'id="rewrap-done"' in done
    assert "2 envelopes resealed" in done
    assert 'id="rewrap-failed"' not in done
    # The job belongs to alice: bob cannot look at it.
    assert bob.get(url).status_code == 404

    # bob now reads the message and downloads the file, byte for byte.
    conversation = body(bob.get(f"/sources/{ids['source']}"))
    assert "not sealed to your keys" not in conversation
    assert "the minutes" in conversation
    download = bob.get(f"/files/{ids['file']}/download")
    assert download.status_code == 200
    assert download.get_data() == PDF

    # A second run has nothing left to do.
    again = finished(alice, alice.post("/rewrap").headers["Location"])
    assert "0 envelopes resealed" in again


def test_rewrap_progress_counts_items(newcomer):
    alice, _bob, _ids = newcomer
    job = alice.state().jobs.start(
        "alice", "rewrap", lambda progress: progress(64, 130), lambda _e: None,
        kind="rewrap", unit="items",
    )  # fmt: skip
    # A job that is still running shows "done of total items" (the work above returns at once,
    # so its state is set back to running to see the page as it looks meanwhile).
    for _ in range(100):
        if job.finished:
            break
        time.sleep(0.01)
    job.finished, job.done, job.total = False, 64, 130
    page = body(alice.get(f"/rewrap/{job.id}"))
    assert "Resealing: 64 of 130 items." in page
    assert 'http-equiv="refresh"' in page


def test_one_import_or_rewrap_at_a_time(newcomer, tmp_path):
    alice, _bob, _ids = newcomer
    release = threading.Event()
    summary = RewrapSummary(0, 0, [])
    job = alice.state().jobs.start(
        "alice",
        "rewrap",
        lambda _progress: release.wait(60) and summary,
        lambda _e: None,
        kind="rewrap",
    )
    try:
        bundle = tmp_path / "in.bundle"
        bundle.write_bytes(b"not read")
        refused = alice.post("/imports", {"path": str(bundle)}, follow_redirects=True)
        assert "A rewrap is running: wait until it has finished." in body(refused)
        again = alice.post("/rewrap", follow_redirects=True)
        assert "An import or a rewrap is running" in body(again)
        assert "A rewrap is running:" in body(alice.get("/rewrap"))
    finally:
        release.set()
    assert 'id="rewrap-done"' in finished(alice, f"/rewrap/{job.id}")
