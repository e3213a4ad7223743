"""A full disk, for real: ``dropbox serve`` with its data directory on a small ext4 file system.

The source gets a 507 page that says the server is out of space and nothing was kept, with
``Retry-After``, and that is true: no blob without a row, no temporary file. Pages, new
codenames and logins keep being answered, and once space is freed, submitting works again.
"""

from __future__ import annotations

import base64
import os
import re
from pathlib import Path

import pytest
import requests

from crypto import Kind, seal_bytes, verify_keyring
from dropbox.instance import load_instance
from tests.support.database import query
from tests.support.loopfs import fill, loop_mounted
from tests.support.server import make_data_dir, running_server
from tests.support.source import Source
from tests.support.team import Team

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

MiB = 1024 * 1024
OUT_OF_SPACE = "The server is out of storage space"
_META = re.compile(r'<meta name="(postern-root|postern-keyring-serial)" content="([^"]*)">')


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
    ((submissions,),) = query(data_dir, "SELECT count(*) FROM submissions")
    named = {
        row[0]
        for row in query(data_dir, "SELECT blob_id FROM items UNION SELECT blob_id FROM replies")
    }
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


def recipients(source: Source) -> list[bytes]:
    """The keyring the page announces, verified as postern.js verifies it."""
    page = source.get("/submit")
    meta = dict(_META.findall(page))
    served = source.http.get(source.server.url + "/keyring.json", timeout=60).content
    keyring = verify_keyring(served, base64.b64decode(meta["postern-root"]))
    return list(keyring.manifest.recipient_keys)


def assert_script_path_is_refused(source: Source) -> None:
    envelope = seal_bytes(os.urandom(MiB), recipients(source), Kind.FILE, "clip.mp4", "video/mp4")
    token = source.token(source.get("/submit"))
    tus = {"Tus-Resumable": "1.0.0", "X-Postern-CSRF": token}
    created = source.http.post(
        source.server.url + "/api/uploads",
        headers={**tus, "Upload-Length": str(len(envelope))},
        timeout=60,
    )
    answer = created
    if created.status_code == 201:  # room for the record, not for the bytes
        answer = source.http.patch(
            source.server.url + created.headers["Location"],
            data=envelope,
            headers={
                **tus,
                "Upload-Offset": "0",
                "Content-Type": "application/offset+octet-stream",
            },
            timeout=120,
        )
        source.http.delete(source.server.url + created.headers["Location"], headers=tus)
    assert answer.status_code == 507, answer.text[:300]
    assert int(answer.headers["Retry-After"]) > 0
    assert answer.json()["error"] == "insufficient_storage"


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

            # The script path, on the same full disk: tus creation or its PATCH answers 507
            # with the JSON error and a Retry-After, and keeps nothing.
            assert_script_path_is_refused(source)
            assert os.listdir(load_instance(data_dir).uploads_dir) == []
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
            # And the script path, from creation to completion.
            after = seal_bytes(b"after", recipients(source), Kind.MESSAGE)
            source.script_path([("message", after)])
            assert_nothing_left_behind(data_dir, 2)
        assert "Traceback" not in server.output()
