"""After `dropbox keyring install`, Chromium seals new submissions to exactly the new set.

A journalist is added (serial 2: two recipients), then the first one is revoked (serial 3:
one recipient). After each install a page loaded afresh encrypts in the browser; every stored
envelope's header names exactly the installed keyring's recipients, and nothing sent after
the revocation opens with the revoked key. (A page loaded *before* an install refuses to
encrypt: test_submit_chromium.py, test_a_keyring_replaced_while_the_page_is_open_stops_the_upload.)
"""

from __future__ import annotations

import pytest

import crypto
from crypto import KeyKind, PrivateKey
from dropbox import db
from tests.browser.live import ENCRYPTING, LiveServer
from tests.browser.test_submit_chromium import Browser, browser  # noqa: F401 (fixture)
from tests.support.database import server_url
from tests.support.team import Team

pytestmark = pytest.mark.timeout(120)


def stored_envelopes(server: LiveServer) -> list[bytes]:
    engine = db.make_engine(server_url(server.data_dir))
    try:
        with db.make_sessionmaker(engine)() as session:
            blobs = [item.blob_id for item in session.query(db.Item).order_by(db.Item.id)]
    finally:
        engine.dispose()
    return [(server.blobs_dir / blob).read_bytes() for blob in blobs]


def keyring(team: Team, serial: int, recipients: list[PrivateKey]) -> bytes:
    return team.keyring(serial, recipients=recipients)


def send(page: Browser, text: str) -> None:
    page.log_in()
    assert page.path() == ENCRYPTING
    page.fill(text, [("a.txt", "text/plain", text.encode() * 100)])
    page.send()
    page.page.wait_for_url("**/submit/done", timeout=60_000)


def opens(envelope: bytes, key: PrivateKey) -> bool:
    try:
        crypto.open_bytes(envelope, [key.secret])
    except crypto.DecryptionError:
        return False
    return True


def test_each_install_changes_whom_the_browser_seals_to(browser, server, team):  # noqa: F811
    alice = team.journalist
    bob = PrivateKey.generate(KeyKind.ENCRYPTION, "Bob")
    server.install(keyring(team, 2, [alice, bob]))
    send(browser, "after adding bob")
    first = stored_envelopes(server)
    assert len(first) == 2
    for envelope in first:
        assert crypto.sealed_to(crypto.parse_header(envelope), [alice.public.key, bob.public.key])
        assert opens(envelope, alice)
        assert opens(envelope, bob)

    server.install(keyring(team, 3, [bob]))
    send(browser, "after revoking alice")
    second = stored_envelopes(server)[len(first) :]
    assert len(second) == 2
    for envelope in second:
        assert crypto.sealed_to(crypto.parse_header(envelope), [bob.public.key])
        assert opens(envelope, bob)
        assert not opens(envelope, alice)
