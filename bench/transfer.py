"""Pull throughput of the transfer client against a plain HTTP download of the same bytes.

Run from the repository root:

    .venv/bin/python bench/transfer.py [--size-mib 1024] [--items 16] [--repeat 2] [--media DIR]

It makes a server data directory holding ``--items`` envelopes of about ``--size-mib`` MiB
in all (sealed to a test keyring), starts the real sync API with ``dropbox serve``, and
times, best of ``--repeat``:

- **pull**: the transfer client's pull of everything into a fresh directory (signed
  requests, signed manifest, download, SHA-256 checks, the bundle written and synced), run
  in this process with the ``transfer`` package's own classes, so that the throughput is not
  mixed up with the fixed cost of starting Python (the ``dropbox-transfer`` command's wall
  time, start-up included, is printed once beside it);
- **pull --no-verify** (for information): the same without the SHA-256 check of each
  envelope on the transfer machine (the station checks every one at import), which shows
  what that check costs;
- **baseline**: a plain HTTP download of the same blob files with ``requests`` into a fresh
  directory on the same file system, from a static WSGI app under the same gunicorn options.

Both write to the same file system, a disk's as a removable medium is, not a tmpfs: by
default under /var/tmp (or the repository, where /var/tmp is a tmpfs), or under ``--media
DIR`` (to measure on the removable medium itself). The server's data directory is in a tmpfs
when one fits, so that reading the envelopes costs the server little. It prints the
throughputs and the ratio (target: pull >= 70% of the plain download). Every connection
stays on 127.0.0.1. No assertion on absolute times: the ratio is the result.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import requests

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from crypto import (  # noqa: E402 - after the path setup, for running as a script
    KeyEntry,
    KeyKind,
    Kind,
    Manifest,
    PrivateKey,
    Sealer,
    TransferClient,
    derive_source_secrets,
    dump_private_key,
    dump_public_key,
    generate_codename,
    sign_keyring,
)
from tests.support.ports import PortNotOpen, free_port, wait_for_port  # noqa: E402

BIN = Path(sys.executable).parent
MIB = 1024 * 1024
BLOCK = os.urandom(4 * MIB)


class RepeatingSource:
    """A readable stream of ``size`` bytes repeating one random block (no 1 GiB in memory)."""

    def __init__(self, size: int) -> None:
        self.left = size
        self.offset = 0

    def readinto(self, buffer: bytearray | memoryview) -> int:
        view = memoryview(buffer)
        want = min(len(view), self.left, len(BLOCK) - self.offset)
        view[:want] = BLOCK[self.offset : self.offset + want]
        self.offset = (self.offset + want) % len(BLOCK)
        self.left -= want
        return want

    def read(self, size: int = -1) -> bytes:
        buffer = bytearray(min(size if size >= 0 else self.left, self.left))
        return bytes(buffer[: self.readinto(buffer)])


def run(*argv: str | Path) -> None:
    done = subprocess.run(  # noqa: S603 - our own tools
        [str(a) for a in argv], capture_output=True, text=True, timeout=600, check=False
    )
    if done.returncode:
        raise SystemExit(f"{Path(str(argv[0])).name} failed: {done.stderr.strip()}")


def make_server(work: Path, total: int, items: int) -> tuple[Path, Path, list[str]]:
    """A data directory with ``items`` envelopes; return it, the transfer key and blob ids."""
    from dropbox.db import make_engine, make_sessionmaker, sqlite_url, upgrade
    from dropbox.instance import load_instance
    from dropbox.sources import create_source
    from dropbox.storage import LocalBlobStore
    from dropbox.submissions import add_submission

    root = PrivateKey.generate(KeyKind.ROOT, "bench root")
    journalist = PrivateKey.generate(KeyKind.ENCRYPTION, "bench journalist")
    transfer = PrivateKey.generate(KeyKind.TRANSFER, "bench transfer")
    onion = PrivateKey.generate(KeyKind.ONION_AUTH, "bench transfer")
    manifest = Manifest(
        serial=1,
        issued=datetime(2026, 11, 24, tzinfo=UTC),
        root=root.public.key,
        recipients=(KeyEntry(journalist.public.key, "bench journalist", "bench"),),
        transfer_clients=(TransferClient(transfer.public.key, onion.public.key, "bench"),),
    )
    (work / "root.pub").write_bytes(dump_public_key(root.public))
    (work / "keyring.json").write_bytes(sign_keyring(manifest, root))
    key = work / "transfer.key"
    key.write_bytes(dump_private_key(transfer, None))
    key.chmod(0o600)
    data = work / "data"
    run(BIN / "dropbox", "init", "--data-dir", data, "--root", work / "root.pub")
    run(BIN / "dropbox", "keyring", "install", "--data-dir", data, work / "keyring.json")

    instance = load_instance(data)
    store = LocalBlobStore(data / "blobs")
    engine = make_engine(sqlite_url(data))
    upgrade(engine)
    blob_ids = []
    made = []
    for index in range(items):
        sealer = Sealer([journalist.public.key], Kind.FILE, f"video-{index}.mp4", "video/mp4")
        with store.writer() as writer:
            sealer.seal_stream(RepeatingSource(total // items), writer)  # type: ignore[arg-type]
            blob_id = writer.commit()
        blob_ids.append(blob_id)
        made.append(("file", blob_id, store.size(blob_id)))
    secrets = derive_source_secrets(generate_codename(), instance.instance_salt)
    with make_sessionmaker(engine)() as db:
        source = create_source(db, secrets, date(2026, 11, 24))
        add_submission(db, source.id, made, date(2026, 11, 24))
    engine.dispose()
    return data, key, blob_ids


def start(argv: list[str], port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSTERN_")}
    with log.open("ab") as out:
        process = subprocess.Popen(  # noqa: S603 - our own tools
            argv, stdout=out, stderr=out, env=env, start_new_session=True, cwd=REPO_ROOT
        )
    try:
        wait_for_port(port, process, what="a server")
    except PortNotOpen as exc:
        stop(process)
        raise SystemExit(f"{exc}; see {log}") from None
    return process


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def timed_pull(api_port: int, key: Path, to: Path, *, verify: bool = True) -> float:
    """Seconds for a whole pull (status, listing, signed manifest, every envelope, the bundle
    written and synced), run in this process with the transfer client's own classes."""
    from crypto import load_private_key
    from transfer.client import SyncClient
    from transfer.pull import Puller

    to.mkdir(parents=True)  # the removable medium, mounted
    client = SyncClient(f"http://127.0.0.1:{api_port}", load_private_key(key.read_bytes(), None))
    try:
        began = time.perf_counter()
        result = Puller(client, to, stderr=sys.stderr, tty=False, verify=verify).run()
        seconds = time.perf_counter() - began
    finally:
        client.close()
    if len(result.bundles) != 1 or len(list(to.glob("*.bundle"))) != 1:
        raise SystemExit("the pull did not write exactly one bundle")
    return seconds


def timed_pull_command(api_port: int, key: Path, to: Path) -> float:
    """Seconds for ``dropbox-transfer pull`` as a person runs it (interpreter start included)."""
    to.mkdir(parents=True)
    began = time.perf_counter()
    run(BIN / "dropbox-transfer", "pull", "--server", f"http://127.0.0.1:{api_port}",
        "--key", key, "--to", to)  # fmt: skip
    seconds = time.perf_counter() - began
    if len(list(to.glob("*.bundle"))) != 1:
        raise SystemExit("the pull did not write exactly one bundle")
    return seconds


def timed_download(port: int, blob_ids: list[str], to: Path) -> float:
    to.mkdir(parents=True)
    began = time.perf_counter()
    with requests.Session() as http:
        for blob_id in blob_ids:
            with http.get(f"http://127.0.0.1:{port}/blob/{blob_id}", stream=True, timeout=60) as r:
                r.raise_for_status()
                with (to / blob_id).open("wb") as out:
                    for piece in r.iter_content(1024 * 1024):
                        out.write(piece)
                    out.flush()
                    os.fsync(out.fileno())
    return time.perf_counter() - began


def file_system(path: Path) -> str:
    """The type of the file system holding ``path`` (from /proc/mounts), e.g. tmpfs, ext4."""
    best, kind = "", "unknown"
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return kind
    where = str(path.resolve())
    for line in mounts:
        fields = line.split()
        if len(fields) < 3:
            continue
        point = fields[1].replace("\\040", " ")
        inside = where == point or where.startswith(point.rstrip("/") + "/")
        if inside and len(point) > len(best):
            best, kind = point, fields[2]
    return kind


def default_media() -> Path:
    """Where the bundles and downloads go without ``--media``: a directory on a disk's file
    system (a USB stick is not a tmpfs, and page-cache writes to tmpfs cost nothing)."""
    for candidate in (Path("/var/tmp"), REPO_ROOT):  # noqa: S108 - a private directory inside
        if os.access(candidate, os.W_OK) and file_system(candidate) not in ("tmpfs", "ramfs"):
            return candidate
    return REPO_ROOT


def fresh(path: Path) -> Iterator[Path]:
    count = 0
    while True:
        count += 1
        target = path / f"run-{count}"
        yield target
        shutil.rmtree(target, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--items", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--strict", action="store_true", help="exit 1 if the target is missed")
    parser.add_argument(
        "--media",
        type=Path,
        metavar="DIR",
        help="write the pulled bundles and the downloads under DIR (for example a mounted USB "
        "stick) instead of under /var/tmp",
    )
    args = parser.parse_args(argv)
    total = args.size_mib * MIB
    shm = Path("/dev/shm")  # noqa: S108 - a private TemporaryDirectory is made inside it
    base = shm if shm.is_dir() and shutil.disk_usage(shm).free > 4 * total else None
    with (
        tempfile.TemporaryDirectory(prefix="postern-bench-transfer-", dir=base) as tmp,
        tempfile.TemporaryDirectory(
            prefix="postern-bench-media-", dir=args.media or default_media()
        ) as media,
    ):
        work = Path(tmp)
        print("Postern transfer benchmark: dropbox-transfer pull vs a plain HTTP download")
        print(f"  work dir      {work} ({file_system(work)})")
        print(f"  written to    {media} ({file_system(Path(media))})")
        print(f"  content       {args.items} envelopes, {args.size_mib} MiB of content in all")
        data, key, blob_ids = make_server(work, total, args.items)
        size = sum((data / "blobs" / b).stat().st_size for b in blob_ids)
        print(f"  envelopes     {size / MIB:.1f} MiB on the server")
        port, api_port, static_port = free_port(), free_port(), free_port()
        server = start(
            [str(BIN / "dropbox"), "serve", "--data-dir", str(data), "--port", str(port),
             "--api-port", str(api_port)],
            api_port, work / "server.log",
        )  # fmt: skip
        static = start(
            [sys.executable, "-m", "bench.transfer_static", "--port", str(static_port),
             "--blobs", str(data / "blobs")],
            static_port, work / "static.log",
        )  # fmt: skip
        try:
            pulls, unverified, downloads, commands = [], [], [], []
            dirs = fresh(Path(media))
            for round_ in range(args.repeat):
                order = ["pull", "download", "pull --no-verify"]
                for name in order if round_ % 2 == 0 else reversed(order):
                    if name == "pull":
                        pulls.append(timed_pull(api_port, key, next(dirs)))
                    elif name == "download":
                        downloads.append(timed_download(static_port, blob_ids, next(dirs)))
                    else:
                        unverified.append(timed_pull(api_port, key, next(dirs), verify=False))
                    print(f"  round {round_ + 1} {name:16} done", flush=True)
            commands.append(timed_pull_command(api_port, key, next(dirs)))
        finally:
            stop(server)
            stop(static)
        pull_rate = size / MIB / min(pulls)
        download_rate = size / MIB / min(downloads)
        ratio = pull_rate / download_rate
        print()
        unverified_rate = size / MIB / min(unverified)
        command = commands[0]
        rows = [
            ("plain HTTP download of the same blobs", min(downloads), download_rate, ""),
            ("transfer client pull (signed, verified)", min(pulls), pull_rate, ""),
            ("the same, as the dropbox-transfer command", command, size / MIB / command,
             "   (Python start-up and key loading included)"),
            ("pull --no-verify (the station verifies)", min(unverified), unverified_rate, ""),
        ]  # fmt: skip
        print(f"  {'measurement':44} {'best s':>8} {'MiB/s':>8}")
        for label, seconds, rate, note in rows:
            print(f"  {label:44} {seconds:8.3f} {rate:8.1f}{note}")
        print()
        print(f"ratio: pull throughput / plain download throughput = {ratio:.1%}")
        print(
            "ratio (information): pull --no-verify / plain download = "
            f"{unverified_rate / download_rate:.1%}"
        )
        verdict = "PASS" if ratio >= 0.70 else "FAIL"
        print(f"{verdict} pull >= 70% of a plain HTTP download of the same bytes: {ratio:.1%}")
        return 1 if args.strict and verdict == "FAIL" else 0


if __name__ == "__main__":
    sys.exit(main())
