"""The transfer machine in tests: the real `dropbox-transfer` command, and reading bundles."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import crypto
from crypto.bundle import InboundItem, InboundManifest, open_bundle_file, read_inbound_bundle
from tests.support.cli import BIN
from tests.support.server import DropboxServer


def run(*argv: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(a) for a in argv], capture_output=True, text=True, timeout=180, check=False
    )
    if check:
        assert done.returncode == 0, done.stdout + done.stderr
    return done


class MemorySink:
    def __init__(self, into: dict[str, bytes], item: InboundItem) -> None:
        self.into, self.item, self.buffer = into, item, io.BytesIO()

    def write(self, data: bytes) -> int:
        return self.buffer.write(data)

    def commit(self) -> None:
        self.into[self.item.id] = self.buffer.getvalue()

    def abort(self) -> None:
        self.buffer = io.BytesIO()


def pull(server: DropboxServer, key: Path, to: Path, *, check: bool = True) -> list[Path]:
    to.mkdir(exist_ok=True)  # the removable medium, mounted
    run(BIN / "dropbox-transfer", "pull", "--server", server.api_url, "--key", key,
        "--to", to, check=check)  # fmt: skip
    return sorted(to.glob("*.bundle"))


def read_inbound(path: Path, server_key: bytes) -> tuple[InboundManifest, list[bytes]]:
    """A bundle's verified manifest and its envelopes, in the manifest's order."""
    envelopes: dict[str, bytes] = {}
    with open_bundle_file(path) as handle:
        manifest = read_inbound_bundle(handle, server_key, lambda item: MemorySink(envelopes, item))
    return manifest, [envelopes[item.id] for item in manifest.items]


def read_bundle(path: Path, server_key: bytes) -> tuple[list[InboundItem], dict[str, bytes]]:
    """A bundle's items, and their envelopes by item id."""
    manifest, envelopes = read_inbound(path, server_key)
    return list(manifest.items), {i.id: e for i, e in zip(manifest.items, envelopes, strict=True)}


def partial_bundle_size(medium: Path) -> int:
    """Bytes in the partial bundles of interrupted pulls on the medium (0 if none yet)."""
    total = 0
    for part in medium.glob(".postern-pull-*/bundle.part"):
        try:
            total += part.stat().st_size
        except FileNotFoundError:  # completed and moved into place meanwhile
            continue
    return total


def server_public_key(server: DropboxServer) -> bytes:
    return crypto.load_public_key((server.data_dir / "server.pub").read_bytes()).key
