"""`dropbox serve` with several worker processes: no state lives in one process's memory.

Every request comes on a new connection, so any worker may answer any request: a session
made by one worker must work in another, the login budget is one for all of them, a signed
sync request is accepted once whichever worker sees it, and a server killed with SIGKILL and
started again keeps everyone logged in.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

from crypto import Kind, seal_bytes
from dropbox import db
from dropbox.instance import load_instance
from dropbox.sources import find_source, store_reply
from dropbox.storage import LocalBlobStore
from dropbox.web.sessions import SESSION_COOKIE
from tests.dropbox.sync.synctools import signature_headers
from tests.support.server import DropboxServer, make_data_dir
from tests.support.source import Source
from tests.support.team import Team

FLOWS = 8


@pytest.fixture(scope="module")
def team() -> Team:
    return Team()


def start(data_dir: Path, log_dir: Path, workers: int, **settings: object) -> DropboxServer:
    server = DropboxServer(
        data_dir, log_dir, args=("--workers", str(workers)), settings=settings
    ).start()
    try:
        # Every worker of both apps has made its app (it holds the database open), so that
        # each takes its share of new connections from the start.
        deadline = time.monotonic() + 120
        while not all_serving(server, data_dir / db.DATABASE_FILE, workers):
            assert time.monotonic() < deadline, server.worker_pids()
            time.sleep(0.1)
    except BaseException:
        server.kill()
        raise
    return server


def all_serving(server: DropboxServer, database: Path, workers: int) -> bool:
    pids = server.worker_pids()
    if [len(w) for w in pids] != [workers, workers]:
        return False
    for pid in (p for arbiter in pids for p in arbiter):
        try:
            held = {str(fd.readlink()) for fd in Path(f"/proc/{pid}/fd").iterdir()}
        except OSError:
            return False
        if str(database) not in held:
            return False
    return True


def run_all(count: int, work: Callable[[int], None]) -> list[BaseException | None]:
    """``work(0)`` to ``work(count - 1)`` in threads at once; what each raised, or None."""
    outcomes: list[BaseException | None] = [None] * count

    def run(index: int) -> None:
        try:
            work(index)
        except BaseException as error:  # noqa: BLE001 - reported by the test
            outcomes[index] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    return outcomes


def store_reply_for(data_dir: Path, codename: str, text: str, lock: threading.Lock) -> None:
    """A journalist's reply for the source, stored as the sync API would store it."""
    instance = load_instance(data_dir)
    with lock:  # one Argon2id derivation at a time in this process
        secrets = instance.derive_source_secrets(codename)
    engine = db.make_engine(db.sqlite_url(data_dir))
    try:
        with db.make_sessionmaker(engine)() as session:
            source = find_source(session, secrets.lookup_id)
            assert source is not None
            assert instance.keyring is not None
            recipients = [source.reply_public, *instance.keyring.manifest.recipient_keys]
            envelope = seal_bytes(text.encode(), recipients, Kind.REPLY)
            today = datetime.now(UTC).date()
            store_reply(session, LocalBlobStore(instance.blobs_dir), source, envelope, today)
    finally:
        engine.dispose()


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("workers", [2, 4])
def test_every_source_flow_works_whichever_worker_answers(team, tmp_path, workers):
    data_dir = make_data_dir(tmp_path / "data", team)
    server = start(data_dir, tmp_path, workers)
    keyring = load_instance(data_dir).keyring
    assert keyring is not None
    recipients = list(keyring.manifest.recipient_keys)
    derivations = threading.Lock()
    # Two Argon2id derivations (a codename, a login) on the server at once, no more: on a
    # loaded test machine more would wait past the server's slot wait and get "busy" (the
    # slots are a memory bound, tests/dropbox/test_throttle.py); everything else runs at once.
    deriving = threading.Semaphore(2)
    try:

        def flow(index: int) -> None:
            with deriving:
                source = Source(server, fresh_connections=True)  # codename, acknowledged
            message = seal_bytes(f"script {index}".encode(), recipients, Kind.MESSAGE)
            source.script_path([("message", message)])
            source.plain_form(f"plain {index}", "note.txt", b"evidence %d" % index)
            store_reply_for(data_dir, source.codename, f"reply for flow {index}", derivations)
            with deriving:
                page = source.replies_after_login()  # logs in again, in a new session
            assert f"reply for flow {index}" in page

        outcomes = run_all(FLOWS, flow)
        assert outcomes == [None] * FLOWS, server.output()[-2000:]
        assert [len(w) for w in server.worker_pids()] == [workers, workers]
    finally:
        server.stop()
    engine = db.make_engine(db.sqlite_url(data_dir))
    try:
        with engine.connect() as connection:
            submissions = connection.exec_driver_sql("SELECT count(*) FROM submissions")
            assert submissions.scalar() == 2 * FLOWS
    finally:
        engine.dispose()


def wait_for_a_fresh_minute() -> None:
    """The budget counts per minute of the clock: start early enough in one that the attempts
    all fall in it (they take two or three seconds; 15 s leaves room for a loaded machine)."""
    if time.time() % 60 > 45:
        time.sleep(60 - time.time() % 60 + 0.5)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_the_login_budget_is_one_for_all_workers(team, tmp_path):
    data_dir = make_data_dir(tmp_path / "data", team)
    server = start(data_dir, tmp_path, 4, login_derivations_per_minute=3)
    try:
        wait_for_a_fresh_minute()

        def attempt(_: int) -> int:
            http = requests.Session()
            http.headers["Connection"] = "close"
            page = http.get(server.url + "/login", timeout=60).text
            token = Source.token(page)
            form = {"csrf_token": token, "codename": " ".join(["abacus"] * 7)}
            return http.post(server.url + "/login", data=form, timeout=60).status_code

        codes: list[int] = []
        outcomes = run_all(12, lambda i: codes.append(attempt(i)))
        assert outcomes == [None] * 12
        # Three derivations in the minute, whichever of the four workers ran them.
        assert sorted(codes) == [403] * 3 + [429] * 9
    finally:
        server.stop()


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_replayed_signed_request_is_accepted_once_across_workers(team, tmp_path):
    data_dir = make_data_dir(tmp_path / "data", team)
    server = start(data_dir, tmp_path, 4)
    try:
        headers = signature_headers(team.transfer, "GET", "/v1/status", timestamp=int(time.time()))
        headers["Connection"] = "close"
        codes: list[int] = []
        errors: list[str] = []

        def send(_: int) -> None:
            response = requests.get(server.api_url + "/v1/status", headers=headers, timeout=60)
            codes.append(response.status_code)
            if response.status_code != 200:
                errors.append(response.json()["error"])

        assert run_all(16, send) == [None] * 16
        assert sorted(codes) == [200] + [401] * 15
        assert set(errors) == {"replayed_request"}
    finally:
        server.stop()


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_killed_and_restarted_server_keeps_everyone_logged_in(team, tmp_path):
    data_dir = make_data_dir(tmp_path / "data", team)
    server = start(data_dir, tmp_path, 2)
    try:
        source = Source(server, fresh_connections=True)
        cookie = source.http.cookies.get(SESSION_COOKIE)
        assert 'id="submit-form"' in source.get("/submit")
        server.kill()  # SIGKILL to every process: nothing is saved on the way out
        server.start()
        assert source.http.cookies.get(SESSION_COOKIE) == cookie
        page = source.get("/submit")  # still logged in, and still acknowledged
        assert 'id="submit-form"' in page
        source.plain_form("after the restart", "late.txt", b"late")
        assert 'action="/logout"' in source.get("/replies")
    finally:
        server.stop()
