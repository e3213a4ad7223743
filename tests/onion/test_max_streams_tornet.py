"""MaxStreams with MaxStreamsCloseCircuit, as tor enforces it: on a private Tor network
(tests/integration/tornet.py, the suite's shared one), one client circuit holds 20 streams
to the source onion, and the 21st closes the whole circuit, every stream on it with it."""

from __future__ import annotations

import contextlib
import secrets
import socket
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dropbox.onion import MAX_STREAMS, ControlAddress, Tor
from tests.integration.tornet import SERVICE, STRANGER, TorNetwork, client

pytestmark = [pytest.mark.tor, pytest.mark.slow]

PUBLISH_TIMEOUT = 120


@contextlib.contextmanager
def holding_server() -> Iterator[int]:
    """A TCP server on the loopback that accepts connections and holds them open."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                held.append(listener.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(timeout=5)
        for sock in held:
            sock.close()
        listener.close()


def socks_connect(socks_port: int, onion: str, isolation: bytes) -> socket.socket:
    """A SOCKS5 stream to ``onion``:80; the same ``isolation`` (username and password) keeps
    every stream on one circuit."""
    sock = socket.create_connection(("127.0.0.1", socks_port), timeout=60)
    sock.sendall(b"\x05\x01\x02")
    assert sock.recv(2) == b"\x05\x02"
    sock.sendall(b"\x01" + bytes([len(isolation)]) + isolation + bytes([len(isolation)])
                 + isolation)  # fmt: skip
    assert sock.recv(2) == b"\x01\x00"
    host = onion.encode("ascii")
    sock.sendall(b"\x05\x01\x00\x03" + bytes([len(host)]) + host + struct.pack(">H", 80))
    reply = sock.recv(10)
    if len(reply) < 2 or reply[1] != 0:
        sock.close()
        raise ConnectionError(f"SOCKS reply {reply!r}")
    return sock


def closed_within(sock: socket.socket, seconds: float) -> bool:
    sock.settimeout(seconds)
    try:
        return sock.recv(1) == b""
    except TimeoutError:
        return False
    except OSError:
        return True


def test_the_stream_after_the_limit_closes_the_circuit(tor_network: TorNetwork, tmp_path: Path):
    service, stranger = client(tor_network, SERVICE), client(tor_network, STRANGER)
    assert stranger.socks_port is not None
    with holding_server() as port, Tor.connect(ControlAddress(port=service.control_port)) as tor:
        onion = tor.publish("source", tmp_path / "onion" / "source.key", port,
                            wait=PUBLISH_TIMEOUT)  # fmt: skip
        isolation = secrets.token_hex(8).encode("ascii")
        # The first connection may need a few tries while the descriptor spreads.
        deadline = time.monotonic() + PUBLISH_TIMEOUT
        streams: list[socket.socket] = []
        while not streams:
            try:
                streams.append(socks_connect(stranger.socks_port, onion.address, isolation))
            except ConnectionError:
                assert time.monotonic() < deadline, "the onion never answered"
                time.sleep(2)
        try:
            while len(streams) < MAX_STREAMS:
                streams.append(socks_connect(stranger.socks_port, onion.address, isolation))
            # MAX_STREAMS streams on one circuit: all open.
            assert not any(closed_within(s, 0.2) for s in streams)
            # One more: the service closes the circuit, and every stream on it.
            with contextlib.suppress(ConnectionError, OSError):
                streams.append(socks_connect(stranger.socks_port, onion.address, isolation))
            assert all(closed_within(s, 30) for s in streams[:MAX_STREAMS])
        finally:
            for sock in streams:
                sock.close()
