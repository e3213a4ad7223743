"""The world the lifecycle soak lives in: a station, a transfer machine, a server, sources.

Everything goes through what people run: `dropbox serve` under real gunicorn, the source
interface over HTTP (the plain form, and the script path as postern.js drives it),
`dropbox-transfer pull` and `push`, `journalist import` and `export-outbound`. Only the
station's reply and key changes are called as the use cases the station UI calls.
"""

from __future__ import annotations

import base64
import hashlib
import random
import re
import signal
import sqlite3
import subprocess
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy import select

from crypto import Kind, seal_bytes, verify_keyring
from dropbox import db
from journalist_ui import content, keys, station
from journalist_ui.outbound import queue_reply
from journalist_ui.store.models import Item
from journalist_ui.store.models import Source as StationSource
from journalist_ui.unlock import Unlocked, unlock
from tests.soak.pending import PendingSubmission
from tests.support.cli import BIN, JOURNALIST, run_tool
from tests.support.server import DropboxServer, kept_files
from tests.support.source import Source
from tests.support.transfer import run

NOW = datetime(2026, 11, 25, 1, 0, tzinfo=UTC)
PASSPHRASE = "soak passphrase 1"  # noqa: S105 - test keys only
_META = re.compile(r'<meta name="(postern-root|postern-keyring-serial)" content="([^"]*)">')


def ask(_what: str) -> str:
    return PASSPHRASE


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class Sent:
    """One submission as its source sent it: the contents, and whether the server said yes."""

    source: Source
    contents: tuple[bytes, ...]
    acknowledged: bool


@dataclass
class Counts:
    cycles: int = 0
    submissions: int = 0
    acknowledged: int = 0
    kills: int = 0
    interrupted_pulls: int = 0
    retried: int = 0
    imported: int = 0
    replies: int = 0
    checks: Counter[str] = field(default_factory=Counter)

    def checked(self, name: str) -> None:
        self.checks[name] += 1


@dataclass
class World:
    rng: random.Random
    home: Path
    server: DropboxServer
    transfer_key: Path
    tmp: Path
    sent: list[Sent] = field(default_factory=list)
    sources: list[Source] = field(default_factory=list)
    counts: Counts = field(default_factory=Counts)
    pulls: int = 0

    # -- the sources ---------------------------------------------------------------------------

    def recipients(self, source: Source) -> list[bytes]:
        """The keyring the page announces, verified against the page's root, as postern.js does."""
        page = source.get("/submit")
        meta = dict(_META.findall(page))
        served = source.http.get(self.server.url + "/keyring.json", timeout=60).content
        keyring = verify_keyring(served, base64.b64decode(meta["postern-root"]))
        return list(keyring.manifest.recipient_keys)

    def a_source(self) -> Source:
        if self.sources and self.rng.random() < 0.6:
            return self.rng.choice(self.sources)
        source = Source(self.server)
        self.sources.append(source)
        return source

    def prepare(self, source: Source) -> tuple[tuple[bytes, ...], PendingSubmission | None]:
        """What a source sends next: its contents, and for the script path the sealed
        envelopes to upload (None: the plain form, sent by :meth:`send`)."""
        rng = self.rng
        message = f"message {rng.getrandbits(64):016x}"
        files = [rng.randbytes(rng.choice((2_000, 300_000, 3 * 1024 * 1024)))
                 for _ in range(rng.randint(0, 2))]  # fmt: skip
        if rng.random() < 0.5:
            # The plain form sends at most one file in this soak.
            return (message.encode(), *files[:1]), None
        recipients = self.recipients(source)
        envelopes = [("message", seal_bytes(message.encode(), recipients, Kind.MESSAGE))]
        envelopes += [("file", seal_bytes(f, recipients, Kind.FILE, "clip.mp4", "video/mp4"))
                      for f in files]  # fmt: skip
        return (message.encode(), *files), PendingSubmission(source, envelopes)

    @staticmethod
    def send(
        source: Source, contents: tuple[bytes, ...], pending: PendingSubmission | None
    ) -> None:
        if pending is not None:
            pending.send()
        elif len(contents) > 1:
            source.plain_form(contents[0].decode(), "evidence.bin", contents[1])
        else:
            source.plain_form(contents[0].decode(), "", b"")

    # -- the server ----------------------------------------------------------------------------

    def kill_server(self) -> None:
        self.server.kill()
        self.counts.kills += 1

    def restart_server(self) -> None:
        self.server.start()
        # Sessions live in the database: after the kill and the restart every source is still
        # logged in, in the same browser session, with no new login (whose per-minute budget
        # a restart does not reset either).
        for source in self.sources:
            page = source.get("/replies")
            assert 'name="codename"' not in page, "a source was logged out by a restart"

    # -- the transfer machine and the station ---------------------------------------------------

    def pull(self, *, interrupt: bool) -> list[Path]:
        self.pulls += 1
        medium = self.tmp / f"usb-{self.pulls}"
        medium.mkdir()
        argv: list[str | Path] = [BIN / "dropbox-transfer", "pull", "--server", self.server.api_url,
                "--key", self.transfer_key, "--to", medium]  # fmt: skip
        if interrupt:
            process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(self.rng.uniform(0.05, 0.6))
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
                self.counts.interrupted_pulls += 1
            process.wait(timeout=60)
        run(*argv)
        return sorted(medium.glob("*.bundle"))

    def journalist(self, *args: str | Path, unlock: bool = True) -> str:
        passphrase = PASSPHRASE if unlock else None
        who = ("--journalist", "alice") if unlock else ()
        done = run_tool(JOURNALIST, *args, "--home", self.home, *who, passphrase=passphrase)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def import_and_answer(self, bundles: list[Path]) -> None:
        for bundle in bundles:
            self.journalist("import", bundle)
        unlocked = unlock(self.home, "alice", PASSPHRASE)
        try:
            with unlocked.store.session() as session:
                sources = session.scalars(select(StationSource)).all()
            for source in self.rng.sample(list(sources), min(2, len(sources))):
                text = f"reply {self.rng.getrandbits(32)}"
                queue_reply(unlocked, source.id, text, today=date.today())
                self.counts.replies += 1
        finally:
            unlocked.lock()
        medium = self.tmp / f"out-{self.pulls}"
        medium.mkdir()
        self.journalist("export-outbound", "--to", medium)
        for outbound in medium.glob("outbound-*.bundle"):
            run(BIN / "dropbox-transfer", "push", outbound, "--server", self.server.api_url,
                "--key", self.transfer_key)  # fmt: skip

    def add_journalist(self) -> None:
        keys.add_journalist(self.home, "bob", ask, ask, now=NOW, memlimit=station.MIN_MEMLIMIT)
        layout = station.Layout(self.home)
        run(BIN / "dropbox", "keyring", "install", "--data-dir", self.server.data_dir,
            layout.outbox_keyring)  # fmt: skip

    # -- what the station holds -----------------------------------------------------------------

    def station_contents(self) -> list[str]:
        """The SHA-256 of every item's content in the station store, read back with alice's keys."""
        unlocked = unlock(self.home, "alice", PASSPHRASE)
        try:
            with unlocked.store.session() as session:
                # What sources sent; the journalists' own replies are items too ("out").
                items = session.scalars(select(Item).where(Item.direction == "in")).all()
            return [digest(read(unlocked, item)) for item in items]
        finally:
            unlocked.lock()


def read(unlocked: Unlocked, item: Item) -> bytes:
    if item.kind == "file":
        return b"".join(content.open_file(unlocked, item.id, log_view=False).chunks())
    return content.read_message(unlocked, item.id, log_view=False).encode("utf-8")


def new_station(tmp: Path) -> tuple[Path, Path]:
    """The station home (alice) with a transfer client; returns (home, transfer key)."""
    home = tmp / "station"
    station.init_station(home, "alice", ask, now=NOW, memlimit=station.MIN_MEMLIMIT)
    keys.add_transfer_client(home, "transfer laptop", tmp / "transfer", ask, None, now=NOW)
    return home, tmp / "transfer" / "transfer.key"


def server_files(data_dir: Path) -> dict[str, list[str]]:
    """What the server's data directory holds that the invariants speak of (discarded files,
    zeroed and waiting for the daily blur to unlink them, are not kept: left out)."""
    blobs = kept_files(data_dir / "blobs")
    uploads = data_dir / "uploads"
    return {
        "blobs": [name for name in blobs if not name.startswith(".")],
        "temporary": [name for name in blobs if name.startswith(".")],
        "uploads": kept_files(uploads) if uploads.exists() else [],
    }


def server_rows(data_dir: Path) -> tuple[set[str], str]:
    """The blob ids the database names, and SQLite's own integrity check."""
    with sqlite3.connect(data_dir / db.DATABASE_FILE) as connection:
        named = {row[0] for row in connection.execute("SELECT blob_id FROM items")}
        named |= {row[0] for row in connection.execute("SELECT blob_id FROM replies")}
        (integrity,) = connection.execute("PRAGMA integrity_check").fetchone()
    return named, integrity
