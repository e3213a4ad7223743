"""Tests for transfer/client.py: the command-line values it takes and its HTTP session."""

from __future__ import annotations

import hashlib

import pytest

from crypto.keys import KeyKind, PrivateKey
from transfer.client import SyncClient, server_base, socks_proxies
from transfer.errors import UsageError

CLIENT_KEY = PrivateKey(
    KeyKind.TRANSFER, hashlib.sha256(b"postern test_client\ntransfer").digest(), "transfer"
)


@pytest.mark.parametrize(
    ("spec", "proxy"),
    [
        ("127.0.0.1:9050", "socks5h://127.0.0.1:9050"),
        ("localhost:9150", "socks5h://localhost:9150"),
        ("[::1]:9050", "socks5h://[::1]:9050"),
    ],
)
def test_socks_option_builds_socks5h_proxies(spec: str, proxy: str) -> None:
    assert socks_proxies(spec) == {"http": proxy, "https": proxy}


@pytest.mark.parametrize(
    "spec", ["9050", "127.0.0.1", "127.0.0.1:", ":9050", "host:0", "host:65536", "a b:1", "[x]:1"]
)
def test_socks_option_refuses_nonsense(spec: str) -> None:
    with pytest.raises(UsageError):
        socks_proxies(spec)


def test_server_url_checks() -> None:
    assert server_base("http://127.0.0.1:8081/", socks=False) == "http://127.0.0.1:8081"
    assert server_base("http://abc.onion", socks=True) == "http://abc.onion"
    for bad in ("ftp://x", "127.0.0.1:80", "http://x/?a=1", "http://u:p@x", "http:///path"):
        with pytest.raises(UsageError):
            server_base(bad, socks=False)
    with pytest.raises(UsageError, match="--socks"):
        server_base("http://abc.onion", socks=False)


def test_session_takes_nothing_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:1")
    client = SyncClient("http://127.0.0.1:2", CLIENT_KEY)
    assert client.session.trust_env is False
    assert client.proxies == {}
    proxied = SyncClient("http://x.onion", CLIENT_KEY, proxies=socks_proxies("127.0.0.1:9050"))
    assert proxied.session.proxies == {
        "http": "socks5h://127.0.0.1:9050",
        "https": "socks5h://127.0.0.1:9050",
    }
