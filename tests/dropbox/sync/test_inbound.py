"""What the transfer machine fetches: status, the item list, signed manifests, envelopes
(docs/format.md section 9.2)."""

from __future__ import annotations

import base64
import hashlib
import struct
from datetime import date

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from crypto.bundle import parse_signed_inbound_manifest
from dropbox.db import Item
from dropbox.instance import install_keyring, load_instance
from dropbox.sync.inbound import decode_cursor, encode_cursor
from tests.dropbox.sync.synctools import (
    TODAY,
    SyncSite,
    make_sync_site,
    signature_headers,
)
from tests.support.server import make_data_dir
from tests.support.team import Team

ITEM_MEMBERS = {"id", "source_id", "reply_public_key", "kind", "size", "sha256", "day"}


@pytest.fixture(scope="module")
def team() -> Team:
    return Team()


@pytest.fixture
def site(team, tmp_path) -> SyncSite:
    return make_sync_site(make_data_dir(tmp_path / "data", team), team)


def server_public(site: SyncSite) -> bytes:
    return load_instance(site.data_dir).server_key.public.key


def acknowledge(site: SyncSite, *item_ids: int) -> None:
    with site.services.db() as session:
        session.execute(sa.update(Item).where(Item.id.in_(item_ids)).values(acknowledged=True))
        session.commit()


# -- status ----------------------------------------------------------------------------------------


def test_status_names_the_keyring_the_server_key_and_what_waits(site, team):
    response = site.get("/v1/status")
    assert response.status_code == 200
    assert response.get_json() == {
        "keyring_serial": 1,
        "server_key": base64.b64encode(server_public(site)).decode(),
        "pending_items": 0,
        "pending_bytes": 0,
    }
    source = site.add_source()
    ids = site.add_submission(source, [b"one", b"two"])
    sizes = [site.blobs.size(blob) for blob in item_blobs(site, ids)]
    status = site.get("/v1/status").get_json()
    assert (status["pending_items"], status["pending_bytes"]) == (2, sum(sizes))
    acknowledge(site, ids[0])
    status = site.get("/v1/status").get_json()
    assert (status["pending_items"], status["pending_bytes"]) == (1, sizes[1])
    install_keyring(site.data_dir, team.keyring(2))
    assert site.get("/v1/status").get_json()["keyring_serial"] == 2


def item_blobs(site: SyncSite, ids: list[int]) -> list[str]:
    with site.services.db() as session:
        by_id = {row.id: row.blob_id for row in session.execute(sa.select(Item.id, Item.blob_id))}
    return [by_id[i] for i in ids]


# -- items -----------------------------------------------------------------------------------------


def test_an_item_is_described_with_the_least_metadata(site):
    source = site.add_source()
    [item_id] = site.add_submission(source, [b"hello"], day=date(2026, 11, 20))
    [item] = site.get("/v1/items").get_json()["items"]
    [blob_id] = item_blobs(site, [item_id])
    envelope = (site.data_dir / "blobs" / blob_id).read_bytes()
    assert set(item) == ITEM_MEMBERS
    assert item == {
        "id": str(item_id),
        "source_id": source.source_id.hex(),
        "reply_public_key": base64.b64encode(source.reply_public).decode(),
        "kind": "message",
        "size": len(envelope),
        "sha256": hashlib.sha256(envelope).hexdigest(),
        "day": "2026-11-20",
    }


def test_items_are_paginated_oldest_first_with_an_opaque_cursor(site):
    source = site.add_source()
    ids = site.add_submission(source, [b"a", b"b", b"c"]) + site.add_submission(source, [b"d"])
    ids += site.add_submission(site.add_source(), [b"e"])
    seen: list[str] = []
    pages = 0
    target = "/v1/items?limit=2"
    while True:
        page = site.get(target).get_json()
        assert set(page) == {"items", "next"}
        assert len(page["items"]) <= 2
        seen += [item["id"] for item in page["items"]]
        pages += 1
        if page["next"] is None:
            break
        target = f"/v1/items?after={page['next']}&limit=2"
    assert seen == [str(i) for i in ids]
    assert pages == 3
    # A page that ends exactly at the last item says there is no next page.
    page = site.get("/v1/items?limit=5").get_json()
    assert [item["id"] for item in page["items"]] == [str(i) for i in ids]
    assert page["next"] is None
    # Without limit, up to 1000 items come at once.
    assert len(site.get("/v1/items").get_json()["items"]) == 5


def test_acknowledged_items_are_not_listed(site):
    ids = site.add_submission(site.add_source(), [b"a", b"b", b"c"])
    acknowledge(site, ids[1])
    page = site.get("/v1/items").get_json()
    assert [item["id"] for item in page["items"]] == [str(ids[0]), str(ids[2])]


def test_an_empty_list(site):
    assert site.get("/v1/items").get_json() == {"items": [], "next": None}


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=1001",
        "limit=01",
        "limit=-1",
        "limit=x",
        "limit=",
        "after=",
        "after=1",
        "after=AAAAAAAAAAE",  # not as this server writes it? it is: check it decodes below
        "after=AAAAAAAAAAB",  # non-zero trailing bits
        "after=%2F%2F%2F%2F%2F%2F%2F%2F%2F%2F8",
        "after=__________8",  # above 2^63 - 1
    ],
)
def test_bad_pagination_parameters_are_refused(site, query):
    if query == "after=AAAAAAAAAAE":
        assert decode_cursor("AAAAAAAAAAE") == 1
        return
    response = site.get(f"/v1/items?{query}")
    assert response.status_code == 400, query
    assert response.get_json()["error"] == "bad_request"


def test_cursors_round_trip():
    for value in (0, 1, 255, 2**40, 2**63 - 1):
        assert decode_cursor(encode_cursor(value)) == value
    with pytest.raises(ValueError, match="not a cursor"):
        decode_cursor(encode_cursor(2**63))


# -- manifests -------------------------------------------------------------------------------------


def test_a_manifest_lists_exactly_the_items_asked_for_in_that_order(site):
    first = site.add_source()
    ids = site.add_submission(first, [b"a", b"b"]) + site.add_submission(site.add_source(), [b"c"])
    listed = {item["id"]: item for item in site.get("/v1/items").get_json()["items"]}
    asked = [str(ids[2]), str(ids[0])]
    response = site.post("/v1/manifests", f'{{"items": ["{asked[0]}", "{asked[1]}"]}}'.encode())
    assert response.status_code == 200
    assert response.mimetype == "application/octet-stream"
    block = response.get_data()
    manifest = parse_signed_inbound_manifest(block, server_public(site))
    assert [item.id for item in manifest.items] == asked
    assert [item.to_json() for item in manifest.items] == [listed[i] for i in asked]
    assert manifest.server_key == server_public(site)
    assert manifest.keyring_serial == 1
    assert manifest.made == TODAY


def test_the_manifest_signature_is_over_the_documented_label(site):
    [item_id] = site.add_submission(site.add_source(), [b"a"])
    block = site.post("/v1/manifests", f'{{"items":["{item_id}"]}}'.encode()).get_data()
    (length,) = struct.unpack(">I", block[:4])
    text, signature = block[4 : 4 + length], block[4 + length :]
    assert len(signature) == 64
    public = Ed25519PublicKey.from_public_bytes(server_public(site))
    public.verify(signature, b"postern/v1 inbound manifest\n" + text)
    assert text.startswith(b'{"items":[{"day":')


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"[]",
        b'{"items": []}',
        b'{"items": "1"}',
        b'{"items": [1]}',
        b'{"items": ["01"]}',
        b'{"items": ["0"]}',
        b'{"items": ["1", "1"]}',
        b'{"items": ["1"], "more": 1}',
        b'{"items": ["1"], "items": ["1"]}',
        b'{"items": ["' + b"1" * 21 + b'"]}',
        b'{"items": ["\xff"]}',
    ],
)
def test_a_bad_manifest_request_is_refused(site, body):
    site.add_submission(site.add_source(), [b"a"])
    response = site.post("/v1/manifests", body)
    assert response.status_code == 400, body
    assert response.get_json()["error"] == "bad_request"


def test_at_most_10000_items_per_manifest(site):
    ids = ", ".join(f'"{i}"' for i in range(1, 10_002))
    response = site.post("/v1/manifests", f'{{"items": [{ids}]}}'.encode())
    assert response.status_code == 400


def test_unknown_or_acknowledged_items_are_refused(site):
    ids = site.add_submission(site.add_source(), [b"a", b"b"])
    acknowledge(site, ids[1])
    for asked in ([ids[1]], [ids[0], 999], [2**63]):
        body = ('{"items": [' + ", ".join(f'"{i}"' for i in asked) + "]}").encode()
        response = site.post("/v1/manifests", body)
        assert response.status_code == 404, asked
        assert response.get_json()["error"] == "unknown_items"


def test_a_manifest_of_many_items(site):
    source = site.add_source()
    ids = site.add_submission(source, [b"x"] * 600)  # more than one chunk of ids
    body = ('{"items": [' + ", ".join(f'"{i}"' for i in reversed(ids)) + "]}").encode()
    manifest = parse_signed_inbound_manifest(
        site.post("/v1/manifests", body).get_data(), server_public(site)
    )
    assert [item.id for item in manifest.items] == [str(i) for i in reversed(ids)]


# -- envelopes -------------------------------------------------------------------------------------


@pytest.fixture
def stored(site) -> tuple[int, bytes]:
    [item_id] = site.add_submission(site.add_source(), [b"x" * 200_000])
    [blob_id] = item_blobs(site, [item_id])
    return item_id, (site.data_dir / "blobs" / blob_id).read_bytes()


def test_an_envelope_is_streamed_whole(site, stored):
    item_id, envelope = stored
    response = site.get(f"/v1/items/{item_id}/envelope")
    assert response.status_code == 200
    assert response.mimetype == "application/octet-stream"
    assert response.headers["Content-Length"] == str(len(envelope))
    assert response.headers["Accept-Ranges"] == "bytes"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.get_data() == envelope


@pytest.mark.parametrize("start", [0, 1, 65_536, -1])
def test_a_range_from_byte_n_answers_206_with_the_rest(site, stored, start):
    item_id, envelope = stored
    start = len(envelope) - 1 if start == -1 else start
    response = site.get(f"/v1/items/{item_id}/envelope", headers={"Range": f"bytes={start}-"})
    assert response.status_code == 206
    assert response.headers["Content-Range"] == f"bytes {start}-{len(envelope) - 1}/{len(envelope)}"
    assert response.headers["Content-Length"] == str(len(envelope) - start)
    assert response.get_data() == envelope[start:]


@pytest.mark.parametrize(
    "value",
    [
        "bytes=0-10",
        "bytes=-5",
        "bytes=5-10,20-",
        "items=0-",
        "bytes= 5-",
        "bytes=x-",
        "bytes=SIZE-",
    ],
)
def test_other_ranges_answer_416(site, stored, value):
    item_id, envelope = stored
    value = value.replace("SIZE", str(len(envelope)))
    response = site.get(f"/v1/items/{item_id}/envelope", headers={"Range": value})
    assert response.status_code == 416, value
    assert response.headers["Content-Range"] == f"bytes */{len(envelope)}"
    assert response.get_json()["error"] == "range_not_satisfiable"


@pytest.mark.parametrize("item_id", ["999", "abc", "0", "01", str(2**64)])
def test_an_unknown_item_has_no_envelope(site, stored, item_id):
    response = site.get(f"/v1/items/{item_id}/envelope")
    assert response.status_code == 404
    assert response.get_json()["error"] == "unknown_item"


def test_a_missing_blob_is_a_server_error_not_a_crash(site, stored):
    item_id, _ = stored
    [blob_id] = item_blobs(site, [item_id])
    (site.data_dir / "blobs" / blob_id).unlink()
    response = site.get(f"/v1/items/{item_id}/envelope")
    assert response.status_code == 500
    assert response.get_json()["error"] == "missing_envelope"


def test_an_envelope_not_read_is_closed_with_its_response(site, stored):
    item_id, envelope = stored
    target = f"/v1/items/{item_id}/envelope"
    headers = signature_headers(site.team.transfer, "GET", target, timestamp=site.now())
    response = site.client.get(target, headers=headers, buffered=False)
    assert response.status_code == 200
    first = next(iter(response.response))
    assert envelope.startswith(first)
    response.close()  # the blob's file is closed here, not left to the garbage collector
    head = site.request("HEAD", target)
    assert head.status_code == 200
    assert head.headers["Content-Length"] == str(len(envelope))
    assert head.get_data() == b""
