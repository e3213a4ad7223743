"""``POST /v1/outbound``: replies, deletions and acknowledgements (docs/format.md section 11).

A bundle that verifies is applied in one transaction, once; anything refused changes nothing
on the server (every row, every blob file), which each refusal test checks with a snapshot.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest
import sqlalchemy as sa

from crypto import KeyKind, Kind, PrivateKey, seal_bytes
from crypto.bundle import Deletion
from crypto.keys import x25519_public
from dropbox.db import Reply, Source
from dropbox.filetimes import DISCARDED_PREFIX
from dropbox.instance import install_keyring
from dropbox.sources import delete_reply, find_source, list_replies, open_replies
from dropbox.sync import outbound
from tests.dropbox.sitetools import generate, login, make_site
from tests.dropbox.sync.synctools import (
    SyncSite,
    make_sync_site,
    snapshot,
    table_rows,
)
from tests.support.cli import DROPBOX, run_tool
from tests.support.server import make_data_dir
from tests.support.team import Team


@pytest.fixture(scope="module")
def team() -> Team:
    return Team()


@pytest.fixture
def site(team, tmp_path) -> SyncSite:
    return make_sync_site(make_data_dir(tmp_path / "data", team), team)


def applied(response, *, replies=0, deletions=0, acknowledged=0, purged=0, again=False) -> None:
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json() == {
        "applied": not again,
        "replies": replies,
        "deletions": deletions,
        "acknowledged": acknowledged,
        "purged": purged,
    }


def refused(response, code: str) -> str:
    assert response.status_code == 422, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"error", "message"}
    assert body["error"] == code
    return str(body["message"])


def blob_files(site: SyncSite) -> set[str]:
    names = (path.name for path in (site.data_dir / "blobs").iterdir())
    return {name for name in names if not name.startswith(DISCARDED_PREFIX)}


def source_blobs(site: SyncSite, source) -> tuple[list[str], list[str]]:
    """The blob ids of the source's items and replies."""
    with site.services.db() as session:
        row = find_source(session, source.lookup_id)
        assert row is not None
        items = list(
            session.scalars(
                sa.text(
                    "SELECT items.blob_id FROM items JOIN submissions ON "
                    "items.submission_id = submissions.id WHERE submissions.source_row_id = :s"
                ).bindparams(s=row.id)
            )
        )
        replies = [reply.blob_id for reply in list_replies(session, row)]
    return items, replies


# -- replies ---------------------------------------------------------------------------------------


def test_replies_are_stored_for_their_sources(site):
    alice, bob = site.add_source(), site.add_source()
    bundle, _ = site.bundle(
        replies=[
            (alice.source_id, site.reply_envelope(alice, "Thank you, Alice.")),
            (bob.source_id, site.reply_envelope(bob, "Hello Bob")),
            (alice.source_id, site.reply_envelope(alice, "One more thing.")),
        ]
    )
    applied(site.push(bundle), replies=3)
    with site.services.db() as session:
        for source, texts in (
            (alice, ["Thank you, Alice.", "One more thing."]),
            (bob, ["Hello Bob"]),
        ):
            row = find_source(session, source.lookup_id)
            assert row is not None
            opened = open_replies(site.blobs, list_replies(session, row), source.reply_private)
            assert [reply.text for reply in opened] == texts
    assert {row[3] for row in table_rows(site.data_dir, "replies")} == {site.clock.now.date()}


@pytest.mark.timeout(120)
def test_a_reply_is_shown_to_the_source_at_the_next_login(site, team):
    source_site = make_site(site.data_dir)
    browser = source_site.new_browser()
    codename = generate(browser)
    with site.services.db() as session:
        [source] = session.scalars(sa.select(Source)).all()
        source_id, reply_public = source.source_id, source.reply_public
    envelope = seal_bytes(
        b"We read your documents. Can you tell us more?",
        [reply_public, team.journalist.public.key],
        Kind.REPLY,
    )
    bundle, _ = site.bundle(replies=[(source_id, envelope)])
    applied(site.push(bundle), replies=1)
    later = source_site.new_browser()
    response = login(later, codename)
    assert response.status_code == 303
    page = later.get("/replies").get_data(as_text=True)
    assert "We read your documents. Can you tell us more?" in page


def test_a_reply_not_sealed_to_the_sources_reply_key_refuses_the_whole_bundle(site, team):
    alice, bob = site.add_source(), site.add_source()
    ids = site.add_submission(alice, [b"a"])
    good = site.reply_envelope(alice, "fine")
    # Sealed to the team only, or to another source's reply key: either way, not to Alice.
    for envelope in (
        seal_bytes(b"team only", [team.journalist.public.key], Kind.REPLY),
        site.reply_envelope(bob, "meant for Bob"),
    ):
        bundle, _ = site.bundle(
            replies=[(alice.source_id, good), (alice.source_id, envelope)],
            deletions=[Deletion("item", id=str(ids[0]))],
            acknowledged=[str(ids[0])],
        )
        before = snapshot(site.data_dir)
        message = refused(site.push(bundle), "reply_not_sealed_to_source")
        assert "reply 1" in message
        assert alice.source_id.hex() in message
        assert snapshot(site.data_dir) == before


def test_a_reply_to_an_unknown_source_refuses_the_whole_bundle(site):
    alice = site.add_source()
    stranger_id = os.urandom(16)
    stranger_key = x25519_public(os.urandom(32))
    bundle, _ = site.bundle(
        replies=[
            (alice.source_id, site.reply_envelope(alice, "fine")),
            (stranger_id, seal_bytes(b"who?", [stranger_key], Kind.REPLY)),
        ]
    )
    before = snapshot(site.data_dir)
    assert stranger_id.hex() in refused(site.push(bundle), "unknown_source")
    assert snapshot(site.data_dir) == before


def test_a_reply_that_is_not_an_envelope_refuses_the_whole_bundle(site):
    alice = site.add_source()
    good = site.reply_envelope(alice, "x")
    # A valid envelope length (crypto.bundle checks lengths), but no recipient stanza.
    not_an_envelope = b"PSTRNENV\x01\x00" + bytes(len(good) - 10)
    bundle, _ = site.bundle(replies=[(alice.source_id, good), (alice.source_id, not_an_envelope)])
    before = snapshot(site.data_dir)
    assert "reply 1 is not a valid envelope" in refused(site.push(bundle), "format")
    assert snapshot(site.data_dir) == before


# -- deletions -------------------------------------------------------------------------------------


def test_deleting_an_item_removes_its_row_and_blob(site):
    alice = site.add_source()
    ids = site.add_submission(alice, [b"a", b"b"])
    [lone] = site.add_submission(alice, [b"c"])
    items, _ = source_blobs(site, alice)
    bundle, _ = site.bundle(
        deletions=[Deletion("item", id=str(ids[0])), Deletion("item", id=str(lone))]
    )
    applied(site.push(bundle), deletions=2)
    remaining, _ = source_blobs(site, alice)
    assert len(remaining) == 1
    assert {row[0] for row in table_rows(site.data_dir, "items")} == {ids[1]}
    # The submission left empty went with its last item; the other one stays.
    assert len(table_rows(site.data_dir, "submissions")) == 1
    assert blob_files(site) == set(remaining)
    assert set(items) - set(remaining) == set(items) - blob_files(site)


def test_deleting_a_sources_data_keeps_the_account(site):
    alice, bob = site.add_source(), site.add_source()
    site.add_submission(alice, [b"a", b"b"])
    site.add_submission(alice, [b"c"])
    site.add_submission(bob, [b"bob's"])
    bundle, _ = site.bundle(replies=[(alice.source_id, site.reply_envelope(alice, "hi"))])
    applied(site.push(bundle), replies=1)
    bob_items, _ = source_blobs(site, bob)

    bundle, _ = site.bundle(deletions=[Deletion("source_data", source_id=alice.source_id)])
    applied(site.push(bundle), deletions=1)
    assert source_blobs(site, alice) == ([], [])
    assert blob_files(site) == set(bob_items)
    sources = {row[2] for row in table_rows(site.data_dir, "sources")}
    assert sources == {alice.source_id, bob.source_id}
    assert table_rows(site.data_dir, "replies") == []
    assert len(table_rows(site.data_dir, "submissions")) == 1


def test_deleting_a_source_removes_everything_of_it(site):
    alice, bob = site.add_source(), site.add_source()
    site.add_submission(alice, [b"a", b"b"])
    site.add_submission(bob, [b"bob's"])
    bundle, _ = site.bundle(
        replies=[
            (alice.source_id, site.reply_envelope(alice, "hi")),
            (bob.source_id, site.reply_envelope(bob, "hi Bob")),
        ]
    )
    applied(site.push(bundle), replies=2)
    bob_items, bob_replies = source_blobs(site, bob)

    bundle, _ = site.bundle(deletions=[Deletion("source", source_id=alice.source_id)])
    applied(site.push(bundle), deletions=1)
    assert {row[2] for row in table_rows(site.data_dir, "sources")} == {bob.source_id}
    assert blob_files(site) == set(bob_items) | set(bob_replies)
    with site.services.db() as session:
        assert find_source(session, alice.lookup_id) is None


def test_a_bundle_can_reply_to_a_source_and_delete_it(site):
    alice = site.add_source()
    site.add_submission(alice, [b"a"])
    bundle, _ = site.bundle(
        replies=[(alice.source_id, site.reply_envelope(alice, "goodbye"))],
        deletions=[Deletion("source", source_id=alice.source_id)],
    )
    applied(site.push(bundle), replies=1, deletions=1)
    assert table_rows(site.data_dir, "sources") == []
    assert blob_files(site) == set()


def test_deleting_what_does_not_exist_is_a_no_op(site):
    alice = site.add_source()
    site.add_submission(alice, [b"a"])
    before = snapshot(site.data_dir)
    bundle, _ = site.bundle(
        deletions=[
            Deletion("item", id="999"),
            Deletion("item", id="9" * 20),
            Deletion("source_data", source_id=os.urandom(16)),
            Deletion("source", source_id=os.urandom(16)),
        ],
        acknowledged=["12345", "9" * 20],
    )
    applied(site.push(bundle), deletions=4, acknowledged=2)
    after = snapshot(site.data_dir)
    assert len(after["tables"]["applied_bundles"]) == 1
    after["tables"]["applied_bundles"] = before["tables"]["applied_bundles"]
    assert after == before


# -- acknowledgements ------------------------------------------------------------------------------


def test_acknowledged_items_are_purged_at_once_by_default(site):
    alice = site.add_source()
    ids = site.add_submission(alice, [b"a", b"b"])
    [other] = site.add_submission(alice, [b"c"])
    bundle, _ = site.bundle(acknowledged=[str(ids[0]), str(other)])
    applied(site.push(bundle), acknowledged=2, purged=2)
    applied(site.push(bundle), acknowledged=2, again=True)
    assert [row[0] for row in table_rows(site.data_dir, "items")] == [ids[1]]
    assert len(table_rows(site.data_dir, "submissions")) == 1
    remaining, _ = source_blobs(site, alice)
    assert blob_files(site) == set(remaining)
    assert [item["id"] for item in site.get("/v1/items").get_json()["items"]] == [str(ids[1])]


def test_without_purge_after_ack_items_wait_for_dropbox_purge(team, tmp_path):
    site = make_sync_site(make_data_dir(tmp_path / "data", team), team, purge_after_ack=False)
    alice = site.add_source()
    ids = site.add_submission(alice, [b"a", b"b"])
    [other] = site.add_submission(alice, [b"c"])
    files = blob_files(site)
    bundle, _ = site.bundle(acknowledged=[str(ids[0]), str(other)])
    applied(site.push(bundle), acknowledged=2)
    # Marked, no longer listed, still stored.
    assert blob_files(site) == files
    assert [item["id"] for item in site.get("/v1/items").get_json()["items"]] == [str(ids[1])]
    status = site.get("/v1/status").get_json()
    assert status["pending_items"] == 1
    acknowledged = {row[0] for row in table_rows(site.data_dir, "items") if row[6]}
    assert acknowledged == {ids[0], other}
    sizes = sum(row[5] for row in table_rows(site.data_dir, "items") if row[6])

    done = run_tool(DROPBOX, "purge", "--data-dir", site.data_dir)
    assert done.returncode == 0, done.stderr
    assert done.stdout == (
        f"Purged 2 acknowledged items ({sizes} bytes of ciphertext) and 1 submission left empty.\n"
    )
    assert [row[0] for row in table_rows(site.data_dir, "items")] == [ids[1]]
    remaining, _ = source_blobs(site, alice)
    assert blob_files(site) == set(remaining)
    done = run_tool(DROPBOX, "purge", "--data-dir", site.data_dir)
    assert (
        done.stdout
        == "Purged 0 acknowledged items (0 bytes of ciphertext) and 0 submissions left empty.\n"
    )


def test_purge_needs_an_initialized_data_directory(tmp_path):
    done = run_tool(DROPBOX, "purge", "--data-dir", tmp_path / "nothing")
    assert done.returncode == 1
    assert "dropbox init" in done.stderr
    assert "Traceback" not in done.stderr


# -- the same bundle twice -------------------------------------------------------------------------


def test_pushing_the_same_bundle_twice_changes_nothing_the_second_time(site):
    alice, bob = site.add_source(), site.add_source()
    ids = site.add_submission(alice, [b"a", b"b", b"c"])
    site.add_submission(bob, [b"d"])
    bundle, _ = site.bundle(
        replies=[(alice.source_id, site.reply_envelope(alice, "thanks"))],
        deletions=[Deletion("item", id=str(ids[1])), Deletion("source", source_id=bob.source_id)],
        acknowledged=[str(ids[0])],
    )
    applied(site.push(bundle), replies=1, deletions=2, acknowledged=1, purged=1)
    after_first = snapshot(site.data_dir)
    applied(site.push(bundle), replies=1, deletions=2, acknowledged=1, again=True)
    assert snapshot(site.data_dir) == after_first


def test_a_bundle_applied_before_stays_applied_after_its_reply_was_deleted(site):
    alice = site.add_source()
    bundle, _ = site.bundle(replies=[(alice.source_id, site.reply_envelope(alice, "read me"))])
    applied(site.push(bundle), replies=1)
    with site.services.db() as session:
        row = find_source(session, alice.lookup_id)
        assert row is not None
        [reply] = list_replies(session, row)
        assert delete_reply(session, site.blobs, row, reply.id)
    before = snapshot(site.data_dir)
    applied(site.push(bundle), replies=1, again=True)
    assert snapshot(site.data_dir) == before  # the deleted reply does not come back


def test_a_bundle_applied_before_stays_applied_after_its_source_was_deleted(site):
    alice = site.add_source()
    bundle, _ = site.bundle(replies=[(alice.source_id, site.reply_envelope(alice, "hello"))])
    applied(site.push(bundle), replies=1)
    gone, _ = site.bundle(deletions=[Deletion("source", source_id=alice.source_id)])
    applied(site.push(gone), deletions=1)
    before = snapshot(site.data_dir)
    applied(site.push(bundle), replies=1, again=True)
    assert snapshot(site.data_dir) == before


# -- bundles that do not verify --------------------------------------------------------------------


@pytest.fixture
def content(site):
    """A source with items and a reply: something every refused bundle could have changed."""
    alice = site.add_source()
    ids = site.add_submission(alice, [b"a", b"b"])
    bundle, _ = site.bundle(replies=[(alice.source_id, site.reply_envelope(alice, "first"))])
    applied(site.push(bundle), replies=1)
    return alice, ids


def full_bundle(site: SyncSite, alice, ids, **kwargs) -> bytes:
    bundle, _ = site.bundle(
        replies=[(alice.source_id, site.reply_envelope(alice, "second"))],
        deletions=[Deletion("item", id=str(ids[0]))],
        acknowledged=[str(ids[1])],
        **kwargs,
    )
    return bundle


def test_a_bundle_signed_by_a_key_not_in_the_keyring_is_refused(site, content):
    stranger = PrivateKey.generate(KeyKind.SIGNING, "not ours")
    bundle = full_bundle(site, *content, signer=stranger)
    before = snapshot(site.data_dir)
    message = refused(site.push(bundle), "signature")
    assert "signing key" in message
    assert snapshot(site.data_dir) == before


def test_a_bundle_signed_by_a_revoked_signing_key_is_refused(site, team, content):
    bundle = full_bundle(site, *content)
    newcomer = PrivateKey.generate(KeyKind.SIGNING, "Bob signing")
    install_keyring(site.data_dir, team.keyring(2, signing=[newcomer]))
    before = snapshot(site.data_dir)
    refused(site.push(bundle), "signature")
    assert snapshot(site.data_dir) == before
    # The key that replaced it signs bundles that are applied.
    response = site.push(full_bundle(site, *content, signer=newcomer))
    applied(response, replies=1, deletions=1, acknowledged=1, purged=1)


def flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]


MALFORMED: dict[str, Callable[[bytes], bytes]] = {
    "empty": lambda b: b"",
    "bad magic": lambda b: b"PSTRNBIN" + b[8:],
    "unknown version": lambda b: b[:8] + b"\x02" + b[9:],
    "truncated in the manifest": lambda b: b[:40],
    "manifest altered": lambda b: flip(b, 30),
    "signature altered": lambda b: flip(b, 13 + int.from_bytes(b[9:13], "big") + 5),
    "reply truncated": lambda b: b[:-1],
    "reply altered": lambda b: flip(b, len(b) - 100),
    "trailing data": lambda b: b + b"\x00",
}
EXPECTED_CODE = {
    "unknown version": "unsupported_version",
    "manifest altered": "signature",
    "signature altered": "signature",
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_malformed_bundle_is_refused_and_changes_nothing(site, content, case):
    bundle = MALFORMED[case](full_bundle(site, *content))
    before = snapshot(site.data_dir)
    message = refused(site.push(bundle), EXPECTED_CODE.get(case, "format"))
    assert message
    assert snapshot(site.data_dir) == before


def test_a_failure_while_applying_leaves_nothing_behind(site, content, monkeypatch):
    def broken(*_args, **_kwargs):
        raise RuntimeError("the disk is on fire")

    monkeypatch.setattr(outbound, "acknowledge_items", broken)
    before = snapshot(site.data_dir)
    response = site.push(full_bundle(site, *content))
    assert response.status_code == 500
    assert response.get_json() == {
        "error": "server_error",
        "message": "the server failed to handle the request",
    }
    assert snapshot(site.data_dir) == before
    monkeypatch.undo()
    applied(
        site.push(full_bundle(site, *content)), replies=1, deletions=1, acknowledged=1, purged=1
    )


def test_a_reply_blob_already_stored_is_kept_when_a_bundle_fails(site, content):
    """Blobs are content-addressed: a refused bundle deletes only the blobs it added."""
    alice, _ = content
    envelope = site.reply_envelope(alice, "same bytes")
    bundle, _ = site.bundle(replies=[(alice.source_id, envelope)])
    applied(site.push(bundle), replies=1)
    before = snapshot(site.data_dir)
    again, _ = site.bundle(
        replies=[(alice.source_id, envelope), (os.urandom(16), site.reply_envelope(alice, "x"))]
    )
    refused(site.push(again), "unknown_source")
    assert snapshot(site.data_dir) == before


def test_rows_point_at_the_right_blobs(site):
    alice = site.add_source()
    envelope = site.reply_envelope(alice, "check")
    bundle, _ = site.bundle(replies=[(alice.source_id, envelope)])
    applied(site.push(bundle), replies=1)
    with site.services.db() as session:
        [reply] = session.scalars(sa.select(Reply)).all()
    assert (site.data_dir / "blobs" / reply.blob_id).read_bytes() == envelope
