"""Request signatures (docs/format.md section 9.1): the pure checks, the nonce cache, and the
app's hook, which answers every refusal with 401 and its code and changes nothing."""

from __future__ import annotations

import base64
import hashlib
from datetime import timedelta

import pytest

from crypto import KeyKind, PrivateKey, TransferClient
from dropbox.instance import install_keyring
from dropbox.sync import auth
from dropbox.sync.app import create_sync_app
from dropbox.sync.auth import AuthError, NonceCache, verify_request
from tests.dropbox.sitetools import START, FakeClock
from tests.dropbox.sync.synctools import (
    SyncSite,
    make_sync_site,
    signature_headers,
    snapshot,
)
from tests.support.database import settings_for
from tests.support.server import make_data_dir
from tests.support.team import Team

NOW = int(START.timestamp())


@pytest.fixture(scope="module")
def team() -> Team:
    return Team()


@pytest.fixture
def site(team, tmp_path) -> SyncSite:
    return make_sync_site(make_data_dir(tmp_path / "data", team), team)


def clients(team: Team) -> list[TransferClient]:
    return [TransferClient(team.transfer.public.key, team.onion_auth.public.key, "transfer 1")]


def verify(team: Team, headers: dict[str, str], *, body: bytes = b"", target="/v1/status"):
    return verify_request(
        method="GET",
        target=target,
        headers=headers,
        body_sha256=hashlib.sha256(body).digest(),
        clients=clients(team),
        now=START,
    )


def refusal(team: Team, headers: dict[str, str], **kwargs) -> str:
    with pytest.raises(AuthError) as error:
        verify(team, headers, **kwargs)
    return error.value.code


# -- the pure checks -----------------------------------------------------------------------------


def test_a_well_signed_request_verifies(team):
    headers = signature_headers(team.transfer, "GET", "/v1/status", timestamp=NOW)
    verified = verify(team, headers)
    assert verified.client.public_key == team.transfer.public.key
    assert verified.client_id == team.transfer.key_id
    assert verified.nonce == headers["X-Postern-Nonce"]


@pytest.mark.parametrize(
    "name", ["X-Postern-Client", "X-Postern-Timestamp", "X-Postern-Nonce", "X-Postern-Signature"]
)
def test_each_missing_header_is_refused(team, name):
    headers = signature_headers(team.transfer, "GET", "/v1/status", timestamp=NOW)
    del headers[name]
    assert refusal(team, headers) == "bad_signature_headers"


GOOD_SIGNATURE = base64.b64encode(bytes(64)).decode()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("X-Postern-Client", "AB" * 16),  # upper-case hex
        ("X-Postern-Client", "ab" * 15),
        ("X-Postern-Client", "ab" * 17),
        ("X-Postern-Client", "zz" * 16),
        ("X-Postern-Timestamp", ""),
        ("X-Postern-Timestamp", f"0{NOW}"),
        ("X-Postern-Timestamp", f"+{NOW}"),
        ("X-Postern-Timestamp", f"-{NOW}"),
        ("X-Postern-Timestamp", f"{NOW}.5"),
        ("X-Postern-Timestamp", f" {NOW}"),
        ("X-Postern-Timestamp", "1" * 21),
        ("X-Postern-Nonce", "ab" * 15),
        ("X-Postern-Nonce", "AB" * 16),
        ("X-Postern-Nonce", "g" * 32),
        ("X-Postern-Signature", GOOD_SIGNATURE[:-4]),
        ("X-Postern-Signature", GOOD_SIGNATURE.rstrip("=")),
        ("X-Postern-Signature", base64.urlsafe_b64encode(b"\xff" * 64).decode()),
        ("X-Postern-Signature", "A" * 85 + "B=="),  # non-zero trailing bits
    ],
)
def test_malformed_headers_are_refused(team, name, value):
    headers = signature_headers(team.transfer, "GET", "/v1/status", timestamp=NOW)
    headers[name] = value
    assert refusal(team, headers) == "bad_signature_headers"


def test_an_unknown_client_is_refused(team):
    stranger = PrivateKey.generate(KeyKind.TRANSFER, "stranger")
    headers = signature_headers(stranger, "GET", "/v1/status", timestamp=NOW)
    assert refusal(team, headers) == "unknown_client"


def test_a_forged_signature_is_refused(team):
    stranger = PrivateKey.generate(KeyKind.TRANSFER, "stranger")
    forged = signature_headers(stranger, "GET", "/v1/status", timestamp=NOW)
    forged["X-Postern-Client"] = team.transfer.key_id.hex()
    assert refusal(team, forged) == "bad_signature"


@pytest.mark.parametrize(
    ("field", "sent"),
    [("target", "/v1/items"), ("body", b"x"), ("method", "POST")],
)
def test_anything_changed_after_signing_is_refused(team, field, sent):
    headers = signature_headers(team.transfer, "GET", "/v1/status", timestamp=NOW)
    if field == "method":
        with pytest.raises(AuthError) as error:
            verify_request(
                method=sent,
                target="/v1/status",
                headers=headers,
                body_sha256=hashlib.sha256(b"").digest(),
                clients=clients(team),
                now=START,
            )
        assert error.value.code == "bad_signature"
    else:
        assert refusal(team, headers, **{field: sent}) == "bad_signature"


@pytest.mark.parametrize("skew", [-301, 301, -(10**6), 10**6])
def test_a_stale_timestamp_is_refused_in_both_directions(team, skew):
    headers = signature_headers(team.transfer, "GET", "/v1/status", timestamp=NOW + skew)
    assert refusal(team, headers) == "stale_request"


@pytest.mark.parametrize("skew", [-300, 300])
def test_a_timestamp_within_300_seconds_is_accepted(team, skew):
    headers = signature_headers(team.transfer, "GET", "/v1/status", timestamp=NOW + skew)
    verify(team, headers)


def test_a_forged_stale_request_is_a_bad_signature_first(team):
    headers = signature_headers(team.transfer, "GET", "/v1/status", timestamp=NOW + 1000)
    headers["X-Postern-Timestamp"] = str(NOW)
    assert refusal(team, headers) == "bad_signature"


def test_the_nonce_cache_catches_replays_per_client_for_600_seconds():
    clock = FakeClock()
    cache = NonceCache(clock)
    a, b = b"a" * 16, b"b" * 16
    nonce = "0" * 32
    assert cache.claim(a, nonce)
    assert not cache.claim(a, nonce)
    assert cache.claim(b, nonce)  # another client's nonces are its own
    clock.advance(seconds=599)
    assert not cache.claim(a, nonce)
    clock.advance(seconds=1)
    assert cache.claim(a, nonce)
    clock.advance(seconds=601)
    assert len(cache) == 0  # old entries are forgotten


def test_replay_is_the_last_check(team):
    cache = NonceCache(FakeClock())
    headers = signature_headers(team.transfer, "GET", "/v1/status", timestamp=NOW)
    auth.claim_nonce(cache, verify(team, headers))
    with pytest.raises(AuthError) as error:
        auth.claim_nonce(cache, verify(team, headers))
    assert error.value.code == "replayed_request"


# -- the app ---------------------------------------------------------------------------------------


def test_a_signed_request_is_answered(site):
    response = site.get("/v1/status")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def assert_refused(response, code: str) -> None:
    assert response.status_code == 401, response.get_data(as_text=True)
    assert response.is_json
    body = response.get_json()
    assert set(body) == {"error", "message"}
    assert body["error"] == code
    assert body["message"]
    assert response.headers["Cache-Control"] == "no-store"


def ack_bundle(site: SyncSite) -> tuple[bytes, list[int]]:
    """A bundle that would change something: it acknowledges (and so purges) an item."""
    source = site.add_source()
    item_ids = site.add_submission(source, [b"a message", b"a file"])
    bundle, _ = site.bundle(acknowledged=[str(item_ids[0])])
    return bundle, item_ids


def signed(site: SyncSite, method: str, target: str, body: bytes = b"", **kwargs):
    kwargs.setdefault("timestamp", site.now())
    return signature_headers(site.team.transfer, method, target, body, **kwargs)


def send(site: SyncSite, method: str, target: str, body: bytes, headers: dict[str, str]):
    return site.client.open(target, method=method, data=body, headers=headers)


REFUSALS = [
    "missing",
    "malformed",
    "unknown_client",
    "forged",
    "body_tampered",
    "target_tampered",
    "stale_past",
    "stale_future",
]


def refused_request(
    site: SyncSite, case: str, target: str, body: bytes
) -> tuple[dict[str, str], bytes, str]:
    """Headers and body of a POST to ``target`` refused for ``case``, and its code."""
    if case == "missing":
        headers = signed(site, "POST", target, body)
        del headers["X-Postern-Signature"]
        return headers, body, "bad_signature_headers"
    if case == "malformed":
        headers = signed(site, "POST", target, body)
        headers["X-Postern-Nonce"] = "not a nonce"
        return headers, body, "bad_signature_headers"
    stranger = PrivateKey.generate(KeyKind.TRANSFER, "stranger")
    if case == "unknown_client":
        headers = signature_headers(stranger, "POST", target, body, timestamp=site.now())
        return headers, body, "unknown_client"
    if case == "forged":
        headers = signature_headers(stranger, "POST", target, body, timestamp=site.now())
        headers["X-Postern-Client"] = site.team.transfer.key_id.hex()
        return headers, body, "bad_signature"
    if case == "body_tampered":
        headers = signed(site, "POST", target, body)
        return headers, body[:-2] + bytes([body[-2] ^ 1]) + body[-1:], "bad_signature"
    if case == "target_tampered":
        return signed(site, "POST", f"{target}?x=1", body), body, "bad_signature"
    skew = -301 if case == "stale_past" else 301
    assert case in ("stale_past", "stale_future")
    return signed(site, "POST", target, body, timestamp=site.now() + skew), body, "stale_request"


@pytest.mark.parametrize("case", REFUSALS)
def test_each_refusal_of_a_push_answers_401_and_changes_nothing(site, case):
    bundle, _ = ack_bundle(site)
    headers, body, code = refused_request(site, case, "/v1/outbound", bundle)
    before = snapshot(site.data_dir)
    assert_refused(send(site, "POST", "/v1/outbound", body, headers), code)
    assert snapshot(site.data_dir) == before
    # The same bundle, well signed, is applied.
    assert site.push(bundle).get_json()["applied"] is True
    assert snapshot(site.data_dir) != before


@pytest.mark.parametrize("case", REFUSALS)
def test_each_refusal_of_a_small_request_answers_401(site, case):
    site.add_submission(site.add_source(), [b"m"])
    headers, body, code = refused_request(site, case, "/v1/manifests", b'{"items": ["1"]}')
    assert_refused(send(site, "POST", "/v1/manifests", body, headers), code)
    assert site.post("/v1/manifests", b'{"items": ["1"]}').status_code == 200


def test_a_replayed_request_is_refused_and_changes_nothing(site):
    bundle, _ = ack_bundle(site)
    headers = signed(site, "POST", "/v1/outbound", bundle)
    first = send(site, "POST", "/v1/outbound", bundle, headers)
    assert first.status_code == 200
    after_first = snapshot(site.data_dir)
    assert_refused(send(site, "POST", "/v1/outbound", bundle, headers), "replayed_request")
    assert snapshot(site.data_dir) == after_first
    # A GET too: the nonce is spent whatever the endpoint.
    headers = signed(site, "GET", "/v1/status")
    assert send(site, "GET", "/v1/status", b"", headers).status_code == 200
    assert_refused(send(site, "GET", "/v1/status", b"", headers), "replayed_request")


def test_a_refused_request_does_not_spend_its_nonce(site):
    nonce = "ab" * 16
    headers = signed(site, "GET", "/v1/status", nonce=nonce)
    assert_refused(send(site, "GET", "/v1/items", b"", headers), "bad_signature")
    assert send(site, "GET", "/v1/status", b"", headers).status_code == 200


def test_a_client_removed_by_a_newer_keyring_is_refused_at_once(site, team):
    assert site.get("/v1/status").status_code == 200
    bundle, _ = ack_bundle(site)
    install_keyring(site.data_dir, team.keyring(2, clients=()))
    before = snapshot(site.data_dir)
    assert_refused(site.get("/v1/status"), "unknown_client")
    assert_refused(site.push(bundle), "unknown_client")
    assert snapshot(site.data_dir) == before


def test_a_malformed_bundle_from_an_unsigned_request_is_a_401_not_a_422(site):
    headers = signed(site, "POST", "/v1/outbound", b"PSTRNBOT")
    headers["X-Postern-Signature"] = base64.b64encode(bytes(64)).decode()
    assert_refused(send(site, "POST", "/v1/outbound", b"PSTRNBOT", headers), "bad_signature")


def test_unknown_urls_and_methods_are_refused_before_routing(site):
    assert_refused(site.client.get("/nothing-here"), "bad_signature_headers")
    assert_refused(site.client.delete("/v1/status"), "bad_signature_headers")
    assert site.get("/nothing-here").status_code == 404
    assert site.get("/nothing-here").get_json()["error"] == "not_found"
    response = site.request("DELETE", "/v1/status")
    assert response.status_code == 405
    assert response.get_json()["error"] == "method_not_allowed"


def test_the_target_is_signed_exactly_as_sent(site):
    # Percent-encoding is part of the signed target: an encoded and a plain form differ.
    response = site.get("/v1/items?limit=%31")
    assert response.status_code == 200
    headers = signed(site, "GET", "/v1/items?limit=1")
    assert_refused(send(site, "GET", "/v1/items?limit=%31", b"", headers), "bad_signature")


def test_a_too_large_small_body_is_refused(site):
    body = b" " * (1024 * 1024 + 1)
    response = site.post("/v1/manifests", body)
    assert response.status_code == 413
    assert response.get_json()["error"] == "too_large"


def test_the_clock_of_the_app_decides_staleness(team, tmp_path):
    clock = FakeClock()

    app = create_sync_app(settings_for(make_data_dir(tmp_path / "d", team)), clock=clock)
    client = app.test_client()
    headers = signature_headers(team.transfer, "GET", "/v1/status", timestamp=NOW)
    clock.advance(seconds=301)
    assert_refused(client.get("/v1/status", headers=headers), "stale_request")
    clock.now = START - timedelta(seconds=300)
    assert client.get("/v1/status", headers=headers).status_code == 200
