"""The tus endpoint (docs/format.md section 8.3), in process, over a real upload store."""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import io
import itertools
import os
import re
import stat
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from crypto import KeyKind, Kind, PrivateKey, open_bytes, seal_bytes
from crypto.envelope import header_length
from dropbox.db import UploadRow
from dropbox.filetimes import DISCARDED_PREFIX
from dropbox.storage import LocalBlobStore
from dropbox.tus import TusError, append_body, check_envelope_prefix, valid_envelope_length
from dropbox.uploads import (
    UploadNotFound,
    UploadStore,
)
from tests.dropbox.tus_testapp import (
    CSRF_HEADER,
    SESSION_COOKIE,
    BrokenStream,
    FakePolicy,
    Session,
    build_app,
    complete_into,
    make_upload_store,
)
from tests.support.database import server_url

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
MAX_SIZE = 8 * 1024 * 1024
OCTETS = "application/offset+octet-stream"
ID_PATH = re.compile(r"\A/api/uploads/([0-9a-f]{32})\.([A-Za-z0-9_-]{43})\Z")


@dataclass(frozen=True)
class Who:
    cookie: str
    csrf: str
    owner: str


ALICE = Who("alice-cookie", "alice-csrf", "source-1")
BOB = Who("bob-cookie", "bob-csrf", "source-2")


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def team(count: int, label: str = "j") -> list[PrivateKey]:
    return [PrivateKey.generate(KeyKind.ENCRYPTION, f"{label}{i}") for i in range(count)]


def envelope(keys: list[PrivateKey], size: int = 5000) -> tuple[bytes, bytes]:
    content = os.urandom(size)
    recipients = [key.public.key for key in keys]
    return content, seal_bytes(content, recipients, Kind.FILE, "evidence.bin", "video/mp4")


@dataclass
class Env:
    store: UploadStore
    policy: FakePolicy
    client: FlaskClient
    clock: Clock
    keys: list[PrivateKey]
    root: Path

    def request(
        self,
        method: str,
        path: str,
        who: Who | None = ALICE,
        *,
        tus: str | None = "1.0.0",
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> TestResponse:
        sent = dict(headers or {})
        if tus is not None:
            sent["Tus-Resumable"] = tus
        if who is not None:
            sent["Cookie"] = f"{SESSION_COOKIE}={who.cookie}"
            sent[CSRF_HEADER] = who.csrf
        response = self.client.open(path, method=method, headers=sent, **kwargs)
        # Every response, whatever it says, carries the protocol version.
        assert response.headers["Tus-Resumable"] == "1.0.0"
        return response

    def create(self, length: int, who: Who = ALICE) -> str:
        response = self.request("POST", "/api/uploads", who, headers={"Upload-Length": str(length)})
        assert response.status_code == 201, response.get_data()
        location = response.headers["Location"]
        assert ID_PATH.match(location)
        return location

    def patch(
        self,
        path: str,
        offset: int,
        data: bytes,
        who: Who | None = ALICE,
        headers: dict[str, str] | None = None,
    ) -> TestResponse:
        sent = {"Content-Type": OCTETS, "Upload-Offset": str(offset), **(headers or {})}
        return self.request("PATCH", path, who, headers=sent, data=data)

    def head(self, path: str, who: Who | None = ALICE) -> TestResponse:
        return self.request("HEAD", path, who)

    def files(self) -> list[str]:
        """The part files of the store (discarded ones wait for the daily blur: left out)."""
        names = os.listdir(self.store.root)
        return sorted(name for name in names if not name.startswith(DISCARDED_PREFIX))

    def part(self, path: str) -> Path:
        upload = self.store.get(upload_id(path))
        assert upload is not None
        return self.store.root / upload.part

    def complete(self, path: str) -> bytes:
        upload_id = path.rsplit("/", 1)[1].split(".")[0]
        blobs = LocalBlobStore(self.root / "blobs")
        blob_id = complete_into(self.store, upload_id, blobs)
        with blobs.open(blob_id) as handle:
            return handle.read()


@pytest.fixture
def env(tmp_path: Path) -> Env:
    keys = team(2)
    clock = Clock()
    # The upload rows on the tests' backend: the PostgreSQL pass runs the protocol there too.
    store = make_upload_store(tmp_path, server_url(tmp_path))
    policy = FakePolicy(
        sessions={who.cookie: Session(csrf=who.csrf, owner=who.owner) for who in (ALICE, BOB)},
        recipients=[key.public.key for key in keys],
        max_size=MAX_SIZE,
        clock=clock,
    )
    client = build_app(store, policy).test_client(use_cookies=False)
    return Env(store, policy, client, clock, keys, tmp_path)


def error_of(response: TestResponse) -> str:
    body = response.get_json()
    assert isinstance(body, dict)
    assert set(body) == {"error", "message"}
    assert isinstance(body["message"], str)
    assert body["message"]
    return str(body["error"])


def upload_id(path: str) -> str:
    match = ID_PATH.match(path)
    assert match
    return match[1]


# -- discovery, creation, status ------------------------------------------------------------


def test_options_announces_the_profile_without_a_session(env: Env) -> None:
    response = env.request("OPTIONS", "/api/uploads", who=None, tus=None)
    assert response.status_code == 204
    assert response.headers["Tus-Version"] == "1.0.0"
    assert response.headers["Tus-Extension"] == "creation,termination,expiration"
    assert response.headers["Tus-Max-Size"] == str(MAX_SIZE)


def test_creation_answers_location_and_expiry(env: Env) -> None:
    _, data = envelope(env.keys)
    response = env.request(
        "POST",
        "/api/uploads",
        headers={"Upload-Length": str(len(data)), "Upload-Metadata": "filename c2VjcmV0"},
    )
    assert response.status_code == 201
    assert ID_PATH.match(response.headers["Location"])
    assert response.headers["Upload-Expires"] == "Thu, 26 Nov 2026 00:00:00 GMT"
    head = env.head(response.headers["Location"])
    assert head.status_code == 200
    assert head.headers["Upload-Offset"] == "0"
    assert head.headers["Upload-Length"] == str(len(data))
    assert head.headers["Upload-Expires"] == "Thu, 26 Nov 2026 00:00:00 GMT"
    assert head.headers["Cache-Control"] == "no-store"
    assert head.get_data() == b""


CHOSEN = "A" * 20 + "b" * 20 + "-_9"  # 43 base64url characters, as a page chooses them


def test_a_chosen_capability_makes_creating_again_give_the_same_upload(env: Env) -> None:
    _, data = envelope(env.keys)
    asked = {"Upload-Length": str(len(data)), "Upload-Capability": CHOSEN}
    first = env.request("POST", "/api/uploads", headers=asked)
    # The answer was lost: the page asks again with the same capability.
    again = env.request("POST", "/api/uploads", headers=asked)
    assert (first.status_code, again.status_code) == (201, 201)
    assert first.headers["Location"] == again.headers["Location"]
    assert first.headers["Location"].endswith("." + CHOSEN)
    assert len(env.files()) == 1
    assert env.patch(again.headers["Location"], 0, data, who=None).status_code == 204
    # Another source choosing the same capability gets an upload of its own.
    bobs = env.request("POST", "/api/uploads", BOB, headers=asked)
    assert bobs.status_code == 201
    assert bobs.headers["Location"] != first.headers["Location"]
    # The same capability for another length is not the same upload: refused.
    other = {**asked, "Upload-Length": str(len(envelope(env.keys, 9000)[1]))}
    taken = env.request("POST", "/api/uploads", headers=other)
    assert (taken.status_code, error_of(taken)) == (409, "capability_taken")


@pytest.mark.parametrize("capability", ["short", "A" * 44, "A" * 42 + "+", "A" * 42 + "="])
def test_a_malformed_chosen_capability_is_400(env: Env, capability: str) -> None:
    _, data = envelope(env.keys)
    response = env.request(
        "POST",
        "/api/uploads",
        headers={"Upload-Length": str(len(data)), "Upload-Capability": capability},
    )
    assert (response.status_code, error_of(response)) == (400, "bad_capability")
    assert env.files() == []


def test_store_layout_modes_and_row(env: Env) -> None:
    _, data = envelope(env.keys)
    path = env.create(len(data))
    ident = upload_id(path)
    # One file, the part data, under a random name that is not the upload's id.
    [name] = env.files()
    assert env.part(path).name == name != ident
    assert stat.S_IMODE(env.store.root.stat().st_mode) == 0o700
    assert stat.S_IMODE(env.part(path).stat().st_mode) == 0o600
    # The state is a row, by the day. Upload-Metadata is not kept, nor anything else about
    # the request. The capability is kept only as its hash.
    secret = ID_PATH.match(path)[2]  # type: ignore[index]
    with env.store._db() as session:
        [row] = session.query(UploadRow).all()
    assert (row.upload_id, row.owner, row.key_hash, row.length, row.part) == (
        ident, ALICE.owner, hashlib.sha256(secret.encode()).hexdigest(), len(data), name,
    )  # fmt: skip
    assert (row.created_day.isoformat(), row.expires_day.isoformat()) == (
        "2026-11-24", "2026-11-26",
    )  # fmt: skip


# -- whole uploads --------------------------------------------------------------------------


def test_full_upload_in_one_patch(env: Env) -> None:
    content, data = envelope(env.keys)
    path = env.create(len(data))
    response = env.patch(path, 0, data)
    assert response.status_code == 204, response.get_data()
    assert response.headers["Upload-Offset"] == str(len(data))
    assert response.headers["Upload-Expires"] == "Thu, 26 Nov 2026 00:00:00 GMT"
    assert env.policy.completed == [(upload_id(path), ALICE.owner)]
    # The completed upload still answers HEAD until the app takes it.
    head = env.head(path)
    assert head.headers["Upload-Offset"] == head.headers["Upload-Length"] == str(len(data))
    blob = env.complete(path)
    assert blob == data
    metadata, opened = open_bytes(blob, [env.keys[1].secret])
    assert opened == content
    assert metadata.filename == "evidence.bin"
    assert env.files() == []
    assert env.head(path).status_code == 404


def test_full_upload_in_many_patches(env: Env) -> None:
    content, data = envelope(env.keys, size=300_000)  # five payload chunks
    end = header_length(2)
    cuts = [0, 3, 10, 11, end - 1, end, end + 1, end + 65552, end + 200_000, len(data)]
    path = env.create(len(data))
    for start, stop in itertools.pairwise(cuts):
        response = env.patch(path, start, data[start:stop])
        assert response.status_code == 204, response.get_data()
        assert response.headers["Upload-Offset"] == str(stop)
        assert env.head(path).headers["Upload-Offset"] == str(stop)
        # An empty PATCH changes nothing.
        assert env.patch(path, stop, b"").headers["Upload-Offset"] == str(stop)
    assert env.policy.completed == [(upload_id(path), ALICE.owner)]
    assert open_bytes(env.complete(path), [env.keys[0].secret])[1] == content


@pytest.mark.parametrize("cut", [5, 60, header_length(2) + 70_000])
@pytest.mark.parametrize("raises", [True, False], ids=["reset", "eof"])
def test_resume_after_a_broken_patch(env: Env, cut: int, raises: bool) -> None:
    content, data = envelope(env.keys, size=150_000)
    path = env.create(len(data))
    before = env.store.get(upload_id(path))
    assert before is not None
    body = BrokenStream(data, cut, len(data), raises=raises)
    response = env.request(
        "PATCH",
        path,
        headers={"Content-Type": OCTETS, "Upload-Offset": "0"},
        input_stream=body,
    )
    assert response.status_code == 400
    assert error_of(response) == "incomplete_body"
    assert response.headers["Upload-Offset"] == str(cut)
    # The bytes that arrived are kept, the state is untouched, HEAD tells the client.
    assert env.part(path).read_bytes() == data[:cut]
    assert env.store.get(upload_id(path)) == dataclasses.replace(before, offset=cut)
    assert env.head(path).headers["Upload-Offset"] == str(cut)
    assert env.policy.completed == []
    response = env.patch(path, cut, data[cut:])
    assert response.status_code == 204
    assert open_bytes(env.complete(path), [env.keys[0].secret])[1] == content


def test_append_body_reports_a_short_body(env: Env) -> None:
    _, data = envelope(env.keys)
    path = env.create(len(data))
    upload = env.store.get(upload_id(path))
    assert upload is not None
    with pytest.raises(TusError) as caught:
        append_body(
            env.store,
            upload,
            io.BytesIO(data[:700]),
            offset=0,
            body_length=len(data),
            recipients=env.policy.recipients,
        )
    assert (caught.value.status, caught.value.code) == (400, "incomplete_body")
    assert caught.value.headers == {"Upload-Offset": "700"}
    assert env.head(path).headers["Upload-Offset"] == "700"


# -- refusals -------------------------------------------------------------------------------


@pytest.mark.parametrize("version", [None, "", "0.2.2", "1.0", "1.0.0 "])
@pytest.mark.parametrize("method", ["POST", "HEAD", "PATCH", "DELETE"])
def test_tus_resumable_is_required(env: Env, method: str, version: str | None) -> None:
    _, data = envelope(env.keys)
    path = env.create(len(data))
    target = "/api/uploads" if method == "POST" else path
    headers = {"Upload-Length": str(len(data)), "Content-Type": OCTETS, "Upload-Offset": "0"}
    response = env.request(method, target, tus=version, headers=headers, data=data[:100])
    assert response.status_code == 412
    assert response.headers["Tus-Version"] == "1.0.0"
    if method != "HEAD":
        assert error_of(response) == "tus_version"
    assert env.head(path).headers["Upload-Offset"] == "0"
    assert len(env.files()) == 1


@pytest.mark.parametrize(
    "who",
    [None, Who(ALICE.cookie, "wrong", ALICE.owner), Who("nobody", ALICE.csrf, ALICE.owner)],
    ids=["no-session", "bad-csrf", "bad-cookie"],
)
def test_creation_needs_a_session_and_its_csrf_token(env: Env, who: Who | None) -> None:
    _, data = envelope(env.keys)
    post = env.request("POST", "/api/uploads", who, headers={"Upload-Length": str(len(data))})
    assert post.status_code == 403
    assert error_of(post) == "forbidden"
    assert env.files() == []


@pytest.mark.parametrize(
    "who",
    [None, Who(ALICE.cookie, "wrong", ALICE.owner), Who("nobody", ALICE.csrf, ALICE.owner)],
    ids=["no-session", "bad-csrf", "bad-cookie"],
)
def test_the_capability_alone_authorizes_head_patch_delete(env: Env, who: Who | None) -> None:
    # The session may have ended (or the server restarted): the upload's URL still works.
    _, data = envelope(env.keys)
    path = env.create(len(data))
    assert env.patch(path, 0, data[:100], who).status_code == 204
    assert env.head(path, who=who).headers["Upload-Offset"] == "100"
    assert env.patch(path, 100, data[100:], who).status_code == 204
    assert env.policy.completed == [(upload_id(path), ALICE.owner)]
    assert env.request("DELETE", path, who).status_code == 204
    assert env.files() == []


def test_without_its_capability_an_upload_is_404(env: Env) -> None:
    _, data = envelope(env.keys)
    path = env.create(len(data))
    other = env.create(len(data), BOB)
    assert env.patch(path, 0, data[:100]).status_code == 204
    ident, secret = ID_PATH.match(path).groups()  # type: ignore[union-attr]
    other_secret = ID_PATH.match(other)[2]  # type: ignore[index]
    flipped = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    for wrong in (
        f"/api/uploads/{ident}",
        f"/api/uploads/{ident}.{other_secret}",
        f"/api/uploads/{ident}.{flipped}",
        f"/api/uploads/{ident}.{secret}x",
    ):
        for who in (ALICE, None):
            assert env.head(wrong, who).status_code == 404
            response = env.patch(wrong, 100, data[100:200], who)
            assert response.status_code == 404
            assert error_of(response) == "not_found"
            assert env.request("DELETE", wrong, who).status_code == 404
    assert env.head(path).headers["Upload-Offset"] == "100"
    assert len(env.files()) == 2


@pytest.mark.parametrize(
    "target",
    [
        "/api/uploads/" + "0" * 32,
        "/api/uploads/../x",
        "/api/uploads/..%2Fx",
        "/api/uploads/%2e%2e/%2e%2e/etc/passwd",
        "/api/uploads/x/y",
        "/api/uploads/" + "A" * 32,
        "/api/uploads/" + "a" * 31,
        "/api/uploads/" + "a" * 33,
    ],
)
def test_unknown_and_malformed_ids_are_404(env: Env, target: str) -> None:
    for method in ("HEAD", "PATCH", "DELETE"):
        response = env.request(
            method, target, headers={"Content-Type": OCTETS, "Upload-Offset": "0"}, data=b"x"
        )
        assert response.status_code == 404
        if method != "HEAD":
            assert error_of(response) == "not_found"


def test_malformed_ids_never_reach_the_filesystem(env: Env) -> None:
    # A well-formed upload outside the store's directory, reachable only by a path trick.
    _, data = envelope(env.keys)
    path = env.create(len(data))
    ident = upload_id(path)
    os.link(env.part(path), env.root / "evil.part")
    for bad in ("../evil", "..%2Fevil", ident.upper(), ident + "\n", f"{ident}/."):
        assert env.store.get(bad) is None
        with pytest.raises(UploadNotFound):
            env.store.append(bad, io.BytesIO(b"x"), 1)
        with pytest.raises(UploadNotFound):
            env.store.read_prefix(bad, 10)
        assert env.store.delete(bad) is False
    assert (env.root / "evil.part").exists()


def test_wrong_content_type_is_415(env: Env) -> None:
    _, data = envelope(env.keys)
    path = env.create(len(data))
    for content_type in ("application/octet-stream", "text/plain", ""):
        response = env.patch(path, 0, data, headers={"Content-Type": content_type})
        assert response.status_code == 415
        assert error_of(response) == "unsupported_media_type"
    assert env.head(path).headers["Upload-Offset"] == "0"


def test_offset_must_be_the_current_one(env: Env) -> None:
    _, data = envelope(env.keys)
    path = env.create(len(data))
    assert env.patch(path, 0, data[:50]).status_code == 204
    for offset in (0, 49, 51, len(data)):
        response = env.patch(path, offset, data[offset : offset + 10])
        assert response.status_code == 409
        assert error_of(response) == "offset_mismatch"
    for bad in ("", "-1", "+50", "5e1", " 50", "0x32"):
        response = env.patch(path, 0, data[50:60], headers={"Upload-Offset": bad})
        assert response.status_code == 400
        assert error_of(response) == "invalid_offset"
    assert env.head(path).headers["Upload-Offset"] == "50"


def test_a_second_concurrent_patch_is_409_busy(env: Env) -> None:
    _, data = envelope(env.keys)
    path = env.create(len(data))
    with open(env.part(path), "rb") as other:
        fcntl.flock(other.fileno(), fcntl.LOCK_EX)  # as a PATCH still receiving would
        response = env.patch(path, 0, data)
    assert response.status_code == 409
    assert error_of(response) == "upload_busy"
    assert env.patch(path, 0, data).status_code == 204


def test_no_keyring_no_uploads(env: Env) -> None:
    _, data = envelope(env.keys)
    env.policy.recipients = []
    response = env.request("POST", "/api/uploads", headers={"Upload-Length": str(len(data))})
    assert response.status_code == 503
    assert error_of(response) == "no_keyring"


def test_patch_without_content_length_is_411(env: Env) -> None:
    _, data = envelope(env.keys)
    path = env.create(len(data))
    response = env.patch(path, 0, data[:20], headers={"Transfer-Encoding": "chunked"})
    assert response.status_code == 411
    assert error_of(response) == "length_required"


def test_bytes_past_the_length_are_refused_and_not_stored(env: Env) -> None:
    _, data = envelope(env.keys)
    path = env.create(len(data))
    assert env.patch(path, 0, data[:100]).status_code == 204
    response = env.patch(path, 100, data[100:] + b"extra")
    assert response.status_code == 400
    assert error_of(response) == "beyond_length"
    assert env.part(path).read_bytes() == data[:100]
    assert env.patch(path, 100, data[100:]).status_code == 204


def test_too_large_is_413(env: Env) -> None:
    env.policy.max_size = 5000
    _, data = envelope(env.keys, size=6000)
    response = env.request("POST", "/api/uploads", headers={"Upload-Length": str(len(data))})
    assert response.status_code == 413
    assert error_of(response) == "too_large"
    assert env.files() == []


def test_upload_length_must_be_an_envelope_length(env: Env) -> None:
    _, one = envelope(env.keys[:1])  # a valid length for one recipient, not for two
    _, two = envelope(env.keys)
    good = len(two)
    assert valid_envelope_length(good, 2)
    for bad in [str(good + 1), str(good - 1), str(len(one)), "0", "58", "", "-5", "1e4", "x"]:
        response = env.request("POST", "/api/uploads", headers={"Upload-Length": bad})
        assert response.status_code == 400, bad
        assert error_of(response) == "invalid_length"
    missing = env.request("POST", "/api/uploads")
    assert missing.status_code == 400
    assert error_of(missing) == "invalid_length"
    deferred = env.request(
        "POST", "/api/uploads", headers={"Upload-Defer-Length": "1", "Upload-Length": str(good)}
    )
    assert deferred.status_code == 400
    assert error_of(deferred) == "deferred_length"
    assert env.files() == []


def _duplicate_stanza(data: bytes) -> bytes:
    return data[:106] + data[10:26] + data[122:]  # stanza 1 gets stanza 0's key id


@pytest.mark.parametrize(
    "spoil",
    [
        lambda d: b"NOTPSTRN" + d[8:],
        lambda d: d[:8] + b"\x02" + d[9:],
        lambda d: d[:9] + b"\x00" + d[10:],
        lambda d: d[:9] + b"\x21" + d[10:],
        _duplicate_stanza,
    ],
    ids=["magic", "version", "no-stanza", "33-stanzas", "duplicate-key-id"],
)
@pytest.mark.parametrize("whole", [True, False], ids=["one-patch", "header-only"])
def test_a_header_that_does_not_parse_is_422_and_deleted(env: Env, spoil, whole: bool) -> None:
    _, data = envelope(env.keys)
    bad = spoil(data)
    path = env.create(len(bad))
    response = env.patch(path, 0, bad if whole else bad[: header_length(2)])
    assert response.status_code == 422
    assert error_of(response) == "bad_envelope"
    assert env.files() == []
    assert env.head(path).status_code == 404
    assert env.policy.completed == []


def test_a_header_for_another_length_is_422(env: Env) -> None:
    # Sealed to one of the two recipients: its header is shorter, so the announced length
    # (valid for two) is not a valid length for it (section 3.1, rule 6).
    _, two = envelope(env.keys)
    _, one = envelope(env.keys[:1])
    path = env.create(len(two))
    response = env.patch(path, 0, one[: header_length(1)])
    assert response.status_code == 422
    assert env.files() == []


def test_stale_keyring_is_409_and_deleted(env: Env) -> None:
    _, data = envelope(team(2, "old"))
    path = env.create(len(data))
    response = env.patch(path, 0, data)
    assert response.status_code == 409
    assert response.get_json()["error"] == "stale_keyring"
    assert error_of(response) == "stale_keyring"
    assert env.files() == []
    assert env.head(path).status_code == 404


def test_a_keyring_replaced_during_the_upload_is_noticed_at_the_next_patch(env: Env) -> None:
    _, data = envelope(env.keys)
    path = env.create(len(data))
    assert env.patch(path, 0, data[:500]).status_code == 204
    env.policy.recipients = [key.public.key for key in team(2, "new")]
    response = env.patch(path, 500, b"")
    assert response.status_code == 409
    assert error_of(response) == "stale_keyring"
    assert env.files() == []


def test_delete_terminates_and_removes_the_files(env: Env) -> None:
    _, data = envelope(env.keys)
    path = env.create(len(data))
    assert env.patch(path, 0, data[:300]).status_code == 204
    response = env.request("DELETE", path)
    assert response.status_code == 204
    assert env.files() == []
    assert env.head(path).status_code == 404
    assert env.request("DELETE", path).status_code == 404


def test_expired_uploads_are_404_and_expire_removes_them(env: Env) -> None:
    _, data = envelope(env.keys)
    early = env.create(len(data))  # Nov 24: expired from 00:00 on Nov 26
    env.clock.now = T0 + timedelta(hours=15)  # Nov 25, 00:00
    late = env.create(len(data))  # expired from 00:00 on Nov 27
    assert env.patch(late, 0, data[:100]).status_code == 204
    # Days only: the TTL (24 hours) runs out, the upload lives until the day ends.
    env.clock.now = T0 + timedelta(hours=38, minutes=59)  # Nov 25, 23:59
    assert env.head(early).status_code == 200
    env.clock.now = T0 + timedelta(hours=39)  # Nov 26, 00:00
    # Touching an expired upload deletes it.
    assert env.head(early).status_code == 404
    assert env.files() == [env.part(late).name]
    assert env.head(late).status_code == 200
    assert env.store.expire(T0 + timedelta(hours=62, minutes=59)) == 0
    assert env.store.expire(T0 + timedelta(hours=63)) == 1
    assert env.files() == []
    env.clock.now = T0 + timedelta(hours=63)
    assert env.patch(late, 100, data[100:]).status_code == 404


def test_creation_sweeps_expired_uploads(env: Env) -> None:
    _, data = envelope(env.keys)
    old = env.create(len(data))
    env.clock.now = T0 + timedelta(days=2)
    new = env.create(len(data))
    assert env.files() == [env.part(new).name]
    assert env.head(old).status_code == 404


def test_creations_sweep_once_a_day(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """A sweep lists every part and row; uploads expire by the day, so only the first
    creation of a day sweeps."""
    _, data = envelope(env.keys)
    sweeps: list[datetime] = []
    real = env.store.expire

    def counted(now: datetime) -> int:
        sweeps.append(now)
        return real(now)

    monkeypatch.setattr(env.store, "expire", counted)
    for _ in range(3):
        env.create(len(data))
    assert len(sweeps) == 1
    env.clock.now = T0 + timedelta(days=1)
    env.create(len(data))
    env.create(len(data))
    assert len(sweeps) == 2


def test_other_methods_are_405(env: Env) -> None:
    _, data = envelope(env.keys)
    path = env.create(len(data))
    for method, target in [("GET", path), ("PUT", path), ("POST", path), ("GET", "/api/uploads")]:
        response = env.request(method, target)
        assert response.status_code == 405
        assert error_of(response) == "method_not_allowed"
        assert "Allow" in response.headers


def test_check_envelope_prefix_needs_the_whole_header() -> None:
    keys = team(3)
    recipients = [key.public.key for key in keys]
    _, data = envelope(keys)
    end = header_length(3)
    assert check_envelope_prefix(data[:9], len(data), recipients) == 10
    assert check_envelope_prefix(data[:10], len(data), recipients) == end
    assert check_envelope_prefix(data[: end - 1], len(data), recipients) == end
    assert check_envelope_prefix(data[:end], len(data), recipients) == end
    with pytest.raises(TusError, match="keys have changed"):
        check_envelope_prefix(data[:end], len(data), recipients[:2])
