"""A private Tor network on 127.0.0.1, for tests: three directory authorities, relays, and
client tors added on demand.

Everything runs from one temporary directory with ports picked free on the loopback: the
authorities' keys are made with ``tor-gencert``, every node runs with ``TestingTorNetwork 1``
and knows only these authorities (``DirAuthority`` lines), so nothing ever leaves loopback.
The authorities vote every few seconds and give every relay the Guard, Exit and HSDir flags
(``TestingDirAuthVote*``), so onion services work with a handful of relays.

:meth:`TorNetwork.start` waits (bounded) until every client has bootstrapped;
:meth:`TorNetwork.stop` kills every process, always. Used by tests/integration/test_tor_network.py
through the session-scoped fixture ``tor_network`` (tests/conftest.py, :func:`shared_network`).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.ports import free_port

#: Nodes of the network: the authorities are relays too.
AUTHORITIES = 3
RELAYS = 4
#: Voting schedule (seconds): short, so that a consensus exists within a minute.
VOTING_INTERVAL = 10
_FINGERPRINT = re.compile(r"^\S+ ([0-9A-F]{40})$")
_V3IDENT = re.compile(r"^fingerprint ([0-9A-F]{40})$", re.MULTILINE)


class TorNetworkError(Exception):
    """The private network did not come up."""


@dataclass
class Node:
    name: str
    data_dir: Path
    torrc: list[str]
    control_port: int
    or_port: int | None = None
    dir_port: int | None = None
    socks_port: int | None = None
    process: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> Path:
        return self.data_dir / "notice.log"

    def write_torrc(self) -> Path:
        path = self.data_dir / "torrc"
        path.write_text("\n".join(self.torrc) + "\n")
        return path

    def control(self, *commands: str, timeout: float = 30.0) -> list[str]:
        """Send control commands (cookie authentication first); the reply lines of each.

        A plain socket, not stem: a test harness should not depend on what it helps to test.
        """
        cookie = (self.data_dir / "control_auth_cookie").read_bytes().hex()
        replies: list[str] = []
        with socket.create_connection(("127.0.0.1", self.control_port), timeout=timeout) as conn:
            reader = conn.makefile("rb")
            try:
                for command in (f"AUTHENTICATE {cookie}", *commands):
                    conn.sendall(command.encode("ascii") + b"\r\n")
                    lines = []
                    while True:
                        line = reader.readline().decode("utf-8", "replace").rstrip("\r\n")
                        if not line:
                            raise TorNetworkError(f"tor {self.name} closed the control connection")
                        lines.append(line)
                        if len(line) >= 4 and line[3] == " ":
                            break
                    if command.startswith("AUTHENTICATE"):
                        if not lines[-1].startswith("250"):
                            raise TorNetworkError(f"tor {self.name} refused the cookie: {lines}")
                        continue
                    replies.append("\n".join(lines))
                conn.sendall(b"QUIT\r\n")
            finally:
                reader.close()
        return replies

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


@dataclass
class TorNetwork:
    base: Path
    tor: str
    gencert: str
    authorities: list[Node] = field(default_factory=list)
    relays: list[Node] = field(default_factory=list)
    clients: list[Node] = field(default_factory=list)
    _dir_authority_lines: list[str] = field(default_factory=list)

    @property
    def nodes(self) -> list[Node]:
        return [*self.authorities, *self.relays, *self.clients]

    # -- configuration -------------------------------------------------------------------------

    def _common(self, name: str, data_dir: Path, control_port: int) -> list[str]:
        return [
            "TestingTorNetwork 1",
            f"DataDirectory {data_dir}",
            f"Nickname {name}",
            f"ControlPort 127.0.0.1:{control_port}",
            "CookieAuthentication 1",
            "SocksPort 0",
            f"Log notice file {data_dir / 'notice.log'}",
            "SafeLogging 0",
            "LogTimeGranularity 1",
            "ClientUseIPv6 0",
            "ClientUseIPv4 1",
            "PathsNeededToBuildCircuits 0.67",
            "TestingDirAuthVoteExit *",
            "TestingDirAuthVoteGuard *",
            "TestingDirAuthVoteHSDir *",
            "TestingMinExitFlagThreshold 0",
            "V3AuthNIntervalsValid 2",
            "AssumeReachable 1",
            "DisableDebuggerAttachment 0",
            "ConnDirectionStatistics 0",
            "DirReqStatistics 0",
            "HiddenServiceStatistics 0",
            "ExtraInfoStatistics 0",
            "Address 127.0.0.1",
        ]

    def _relay_lines(self, or_port: int, dir_port: int) -> list[str]:
        return [
            f"ORPort 127.0.0.1:{or_port}",
            f"DirPort 127.0.0.1:{dir_port}",
            "ExitRelay 1",
            "ExitPolicy accept 127.0.0.0/8:*",
            "ExitPolicy reject *:*",
            "ContactInfo postern-test@invalid",
        ]

    def _new_node(self, name: str) -> Node:
        data_dir = self.base / name
        data_dir.mkdir(mode=0o700, parents=True)
        control = free_port()
        return Node(name, data_dir, self._common(name, data_dir, control), control)

    def _make_authority(self, index: int) -> Node:
        node = self._new_node(f"auth{index}")
        node.or_port, node.dir_port = free_port(), free_port()
        keys = node.data_dir / "keys"
        keys.mkdir(mode=0o700)
        subprocess.run(
            [self.gencert, "--create-identity-key", "--passphrase-fd", "0", "-m", "12",
             "-a", f"127.0.0.1:{node.dir_port}",
             "-i", str(keys / "authority_identity_key"),
             "-s", str(keys / "authority_signing_key"),
             "-c", str(keys / "authority_certificate")],
            input=b"\n", capture_output=True, check=True, timeout=60, cwd=keys,
        )  # fmt: skip
        match = _V3IDENT.search((keys / "authority_certificate").read_text())
        if match is None:
            raise TorNetworkError("tor-gencert wrote a certificate without a fingerprint")
        v3ident = match.group(1)
        node.torrc += self._relay_lines(node.or_port, node.dir_port)
        node.torrc += [
            "AuthoritativeDirectory 1",
            "V3AuthoritativeDirectory 1",
            f"V3AuthVotingInterval {VOTING_INTERVAL}",
            "V3AuthVoteDelay 2",
            "V3AuthDistDelay 2",
            f"TestingV3AuthInitialVotingInterval {VOTING_INTERVAL}",
            "TestingV3AuthInitialVoteDelay 2",
            "TestingV3AuthInitialDistDelay 2",
            "TestingV3AuthVotingStartOffset 0",
        ]
        # The relay identity fingerprint: tor makes the keys and prints it (without the
        # testing options, which it would refuse before any DirAuthority line exists).
        empty = node.data_dir / "empty-torrc"
        empty.write_text("")
        listed = subprocess.run(
            [self.tor, "--defaults-torrc", str(empty), "-f", str(empty), "--list-fingerprint",
             "--DataDirectory", str(node.data_dir), "--ORPort", f"127.0.0.1:{node.or_port}",
             "--Nickname", node.name, "--Log", "err stderr"],
            capture_output=True, text=True, check=False, timeout=60,
        )  # fmt: skip
        if listed.returncode != 0:
            raise TorNetworkError(f"tor --list-fingerprint failed: {listed.stderr.strip()}")
        fingerprint = (node.data_dir / "fingerprint").read_text().strip()
        found = _FINGERPRINT.match(fingerprint)
        if found is None:
            raise TorNetworkError(f"unexpected fingerprint file: {fingerprint!r} {listed.stdout}")
        self._dir_authority_lines.append(
            f"DirAuthority {node.name} orport={node.or_port} no-v2 v3ident={v3ident} "
            f"127.0.0.1:{node.dir_port} {found.group(1)}"
        )
        return node

    def _make_relay(self, index: int) -> Node:
        node = self._new_node(f"relay{index}")
        node.or_port, node.dir_port = free_port(), free_port()
        node.torrc += self._relay_lines(node.or_port, node.dir_port)
        return node

    def add_client(self, name: str, extra: list[str] | None = None, *, socks: bool = True) -> Node:
        """A client tor (started by :meth:`start`, or at once if the network runs)."""
        node = self._new_node(name)
        if socks:
            node.socks_port = free_port()
            node.torrc = [line for line in node.torrc if line != "SocksPort 0"]
            node.torrc.append(f"SocksPort 127.0.0.1:{node.socks_port}")
        node.torrc += extra or []
        self.clients.append(node)
        return node

    def client_options(self) -> list[str]:
        """The torrc lines a tor started elsewhere needs to be a client of this network."""
        return [
            "TestingTorNetwork 1",
            "PathsNeededToBuildCircuits 0.67",
            "ClientUseIPv6 0",
            *self._dir_authority_lines,
        ]

    # -- processes ---------------------------------------------------------------------------

    def _launch(self, node: Node) -> None:
        node.torrc = [
            *node.torrc,
            *(line for line in self._dir_authority_lines if line not in node.torrc),
        ]
        torrc = node.write_torrc()
        node.process = subprocess.Popen(
            [self.tor, "-f", str(torrc), "--quiet"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip

    def start(self, timeout: float = 150.0) -> None:
        """Make the keys, start every node and wait until every client has bootstrapped."""
        try:
            self.authorities = [self._make_authority(i) for i in range(AUTHORITIES)]
            self.relays = [self._make_relay(i) for i in range(RELAYS)]
            for node in self.nodes:
                self._launch(node)
            deadline = time.monotonic() + timeout
            for node in self.clients:
                self.wait_bootstrapped(node, deadline)
        except BaseException:
            self.stop()
            raise

    def launch_client(self, node: Node, timeout: float = 120.0) -> None:
        self._launch(node)
        self.wait_bootstrapped(node, time.monotonic() + timeout)

    def wait_bootstrapped(self, node: Node, deadline: float) -> None:
        while True:
            if node.process is not None and node.process.poll() is not None:
                raise TorNetworkError(f"tor {node.name} exited:\n{node.tail()}")
            with contextlib.suppress(OSError, TorNetworkError):
                (phase,) = node.control("GETINFO status/bootstrap-phase")
                if "PROGRESS=100" in phase:
                    return
            if time.monotonic() > deadline:
                raise TorNetworkError(
                    f"tor {node.name} did not bootstrap in time:\n{node.tail()}\n"
                    f"-- auth0:\n{self.authorities[0].tail() if self.authorities else ''}"
                )
            time.sleep(1)

    def stop(self) -> None:
        for node in self.nodes:
            process = node.process
            if process is None or process.poll() is not None:
                continue
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
        for node in self.nodes:
            if node.process is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    node.process.wait(timeout=10)


#: Names of the client tors of the suite's shared network (:func:`shared_network`).
SERVICE, TRANSFER, STRANGER = "service", "transfer", "stranger"


@contextlib.contextmanager
def shared_network(base: Path, tor: str, gencert: str, timeout: float) -> Iterator[TorNetwork]:
    """The network the tor tests share, one per pytest worker: ``service`` (a server's tor,
    no SOCKS port), ``transfer`` (a client with a ClientOnionAuthDir, ``base``/transfer-auth)
    and ``stranger`` (any other Tor user). Starting one takes 20 to 45 s, nearly all of it
    waiting for the authorities' votes, so the files that use it share one (and one worker:
    tests/conftest.py's scheduler keeps them together)."""
    network = TorNetwork(base, tor, gencert)
    network.add_client(SERVICE, socks=False)
    auth_dir = base / "transfer-auth"
    auth_dir.mkdir(mode=0o700, parents=True)
    network.add_client(TRANSFER, [f"ClientOnionAuthDir {auth_dir}"])
    network.add_client(STRANGER)
    try:
        network.start(timeout=timeout)
        yield network
    finally:
        network.stop()


def client(network: TorNetwork, name: str) -> Node:
    """The network's client tor called ``name``."""
    (node,) = [n for n in network.clients if n.name == name]
    return node
