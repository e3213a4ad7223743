"""A full disk, for real: ``dropbox serve`` with its data directory on a small ext4 file system.

The source gets a 507 page that says the server is out of space and nothing was kept, with
``Retry-After``, and that is true: no blob without a row, no temporary file. Pages, new
codenames and logins keep being answered, and once space is freed, submitting works again.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path

import pytest
import requests

from dropbox.instance import load_instance
from tests.support.loopfs import fill, loop_mounted
from tests.support.server import make_data_dir, running_server
from tests.support.source import Source
from tests.support.team import Team

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

MiB = 1024 * 1024
OUT_OF_SPACE = "The server is out of storage space"


def post_form(source: Source, message: str, content: bytes) -> requests.Response:
    token = source.token(source.get("/submit"))
    return source.http.post(
        source.server.url + "/submit",
        files=[
            ("csrf_token", (None, token)),
            ("message", (None, message)),
            ("files", ("evidence.bin", content, "application/octet-stream")),
        ],
        allow_redirects=False,
        timeout=120,
    )


def stored(data_dir: Path) -> tuple[int, set[str], set[str], list[str]]:
    """Submissions, blob ids the rows name, blob files, and temporary files."""
    with contextlib.closing(sqlite3.connect(data_dir / "db.sqlite")) as db:
        submissions = db.execute("SELECT count(*) FROM submissions").fetchone()[0]
        query = "SELECT blob_id FROM items UNION SELECT blob_id FROM replies"
        named = {row[0] for row in db.execute(query)}
    names = os.listdir(load_instance(data_dir).blobs_dir)
    blobs = {name for name in names if not name.startswith(".")}
    return submissions, named, blobs, [name for name in names if name.startswith(".")]


def assert_nothing_left_behind(data_dir: Path, submissions: int) -> None:
    count, named, blobs, temporaries = stored(data_dir)
    assert count == submissions
    assert blobs == named, "a blob without a row, or a row without a blob"
    assert temporaries == []


def assert_out_of_space_page(response: requests.Response, what: str) -> None:
    assert response.status_code == 507, response.text[:500]
    assert int(response.headers["Retry-After"]) > 0
    assert OUT_OF_SPACE in response.text
    assert what in response.text
    assert response.headers.get("Connection") == "close"


def test_a_full_disk_is_answered_plainly_and_service_goes_on(tmp_path):
    with loop_mounted(tmp_path) as disk:
        data_dir = make_data_dir(disk / "data", Team())
        with running_server(data_dir, tmp_path) as server:
            source = Source(server)

            # More than the disk holds: it fills up while the file streams in.
            response = post_form(source, "the big one", os.urandom(12 * MiB))
            assert_out_of_space_page(response, "Nothing of this submission was kept.")
            assert_nothing_left_behind(data_dir, 0)

            # The disk entirely full: even a small submission cannot be kept.
            fill(disk / "filler")
            response = post_form(source, "a small one", b"tiny")
            assert_out_of_space_page(response, "Nothing of this submission was kept.")
            assert_nothing_left_behind(data_dir, 0)

            # Reading goes on: the landing page, the login, the replies.
            assert "Postern" in source.get("/")
            assert "replies" in source.replies_after_login().lower()
            # A new codename needs a row: refused plainly, never shown without one.
            browser = requests.Session()
            page = browser.get(server.url + "/generate", timeout=60).text
            made = browser.post(
                server.url + "/generate", data={"csrf_token": Source.token(page)}, timeout=60
            )
            assert_out_of_space_page(made, "no codename could be made")
            assert 'id="codename"' not in made.text

            # Space freed: everything works again.
            (disk / "filler").unlink()
            response = post_form(source, "after the operator freed space", os.urandom(MiB))
            assert response.status_code == 303, response.text[:300]
            assert_nothing_left_behind(data_dir, 1)
            assert len(stored(data_dir)[2]) == 2
            Source(server)  # a new codename, with room for its row
        assert "Traceback" not in server.output()
