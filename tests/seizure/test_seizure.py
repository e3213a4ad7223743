"""A seized server dates nothing: a day of use on the deployment's file system, imaged raw.

The data directory lives on a loop-mounted file system made with the deployment's own
options (deploy/datafs.conf: what deploy/install.sh formats and mounts). Real gunicorn
(``dropbox serve``) serves a scripted day: two codenames, a plain-form submission and a
script-path one, an interrupted upload, logins, a pull, a push with a reply and
acknowledgements (which purges the acknowledged items), the source reading the reply, a
push that deletes the other source, a malformed request. Then the server stops, the daily
blur runs (dropbox/filetimes.py, what the server runs every day), the file system is
unmounted and its image is read raw (tests/seizure/scan.py): every inode slot's times, every
byte of every block, used or free.

Findings: a marker (random strings put in messages, file contents and filenames), a
codename, an identifier of the deleted source (lookup id, source id, reply key) or of a
purged item (blob id) or of a finished upload (upload id) anywhere in the image; an inode
time that is neither 0, nor a day boundary, nor within the measured window of the last blur;
a journal. The server's own log must hold no line written while it served the day.
"""

from __future__ import annotations

import base64
import os
import secrets
import shlex
import socket
import sqlite3
import time
from datetime import date
from pathlib import Path

import pytest

from crypto import Kind, dump_private_key, seal_bytes
from crypto.bundle import Deletion, write_outbound_bundle
from dropbox.filetimes import blur
from tests.seizure.scan import TimeRule, scan_image, superblock_times
from tests.support.cli import BIN
from tests.support.loopfs import loop_mounted
from tests.support.server import DropboxServer, make_data_dir, running_server
from tests.support.source import Source
from tests.support.team import Team
from tests.support.transfer import pull, read_bundle, run, server_public_key

DATAFS_CONF = Path(__file__).resolve().parents[2] / "deploy" / "datafs.conf"
IMAGE_SIZE = 96 * 1024 * 1024


def datafs_options() -> tuple[list[str], str]:
    """The mkfs.ext4 options and the mount options deploy/install.sh uses."""
    values: dict[str, str] = {}
    for line in DATAFS_CONF.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = " ".join(shlex.split(value))
    return shlex.split(values["DATAFS_MKFS_OPTIONS"]), values["DATAFS_MOUNT_OPTIONS"]


def forms(name: str, raw: bytes) -> dict[str, bytes]:
    """The ways an identifier can be written down: raw, hex, base64 and base64url."""
    return {
        f"{name} (raw)": raw,
        f"{name} (hex)": raw.hex().encode(),
        f"{name} (base64)": base64.b64encode(raw).rstrip(b"="),
        f"{name} (base64url)": base64.urlsafe_b64encode(raw).rstrip(b"="),
    }


def malformed_request(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"NOT HTTP AT ALL\x01\r\n\r\n")
        sock.recv(1024)


def interrupted_upload(source: Source, envelope: bytes) -> str:
    """A tus upload of ``envelope`` that receives half of it and is never finished."""
    length = len(envelope)
    token = source.token(source.get("/submit"))
    headers = {"Tus-Resumable": "1.0.0", "X-Postern-CSRF": token}
    created = source.http.post(
        source.server.url + "/api/uploads",
        headers={**headers, "Upload-Length": str(length)}, timeout=60,
    )  # fmt: skip
    assert created.status_code == 201, created.text
    location = created.headers["Location"]
    patched = source.http.patch(
        source.server.url + location, data=envelope[: length // 2],
        headers={**headers, "Upload-Offset": "0",
                 "Content-Type": "application/offset+octet-stream"}, timeout=60,
    )  # fmt: skip
    assert patched.status_code == 204, patched.text
    return location.rsplit("/", 1)[1].split(".")[0]


def upload_ids(source: Source, envelopes: list[tuple[str, bytes]]) -> list[str]:
    """Like Source.script_path, keeping the upload ids (they must vanish once finished)."""
    token = source.token(source.get("/submit"))
    headers = {"Tus-Resumable": "1.0.0", "X-Postern-CSRF": token}
    ids, items = [], []
    for kind, envelope in envelopes:
        created = source.http.post(
            source.server.url + "/api/uploads",
            headers={**headers, "Upload-Length": str(len(envelope))}, timeout=60,
        )  # fmt: skip
        assert created.status_code == 201, created.text
        location = created.headers["Location"]
        patched = source.http.patch(
            source.server.url + location, data=envelope,
            headers={**headers, "Upload-Offset": "0",
                     "Content-Type": "application/offset+octet-stream"}, timeout=120,
        )  # fmt: skip
        assert patched.status_code == 204, patched.text
        ids.append(location.rsplit("/", 1)[1].split(".")[0])
        items.append({"upload": ids[-1], "kind": kind})
    done = source.http.post(
        source.server.url + "/api/submissions",
        json={"key": secrets.token_urlsafe(16), "items": items},
        headers={"X-Postern-CSRF": token}, timeout=60,
    )  # fmt: skip
    assert done.status_code == 201, done.text
    return ids


def push(server: DropboxServer, key: Path, bundle: Path, team: Team, **parts: object) -> None:
    with bundle.open("wb") as handle:
        write_outbound_bundle(
            handle, signing_key=team.signer, made=date.today(),
            replies=parts.get("replies", []), deletions=parts.get("deletions", []),  # type: ignore[arg-type]
            acknowledged=parts.get("acknowledged", []),  # type: ignore[arg-type]
        )  # fmt: skip
    run(BIN / "dropbox-transfer", "push", bundle, "--server", server.api_url, "--key", key)


@pytest.mark.timeout(300)
def test_a_seized_image_dates_nothing_and_keeps_nothing_purged(tmp_path: Path) -> None:
    team = Team()
    recipients = [team.journalist.public.key]
    key = tmp_path / "transfer.key"
    key.write_bytes(dump_private_key(team.transfer, None))
    key.chmod(0o600)
    marker = {f"marker {n}": f"MRK{n}{secrets.token_hex(8)}".encode() for n in range(6)}
    m = list(marker.values())
    needles: dict[str, bytes] = dict(marker)
    mkfs_options, mount_options = datafs_options()
    (tmp_path / "logs").mkdir()
    with loop_mounted(tmp_path, IMAGE_SIZE, mkfs_options=mkfs_options,
                      mount_options=mount_options, keep_image=True) as mnt:  # fmt: skip
        data = make_data_dir(mnt, team)
        database = data / "db.sqlite"
        with running_server(data, tmp_path / "logs") as server:
            started = len(server.output())
            kept = Source(server)  # plain form; gets a reply, stays
            gone = Source(server)  # script path; deleted at the end of the day
            needles.update({"codename kept": kept.codename.encode(),
                            "codename gone": gone.codename.encode()})  # fmt: skip
            kept.plain_form(
                f"the ledger {m[0].decode()}", f"{m[1].decode()}.xlsx",
                m[2] + os.urandom(200_000),
            )  # fmt: skip
            finished = upload_ids(gone, [
                ("message", seal_bytes(m[3], recipients, Kind.MESSAGE)),
                ("file", seal_bytes(m[4] + os.urandom(100_000), recipients, Kind.FILE,
                                    f"{m[5].decode()}.jpg", "image/jpeg")),
            ])  # fmt: skip
            for upload_id in finished:
                needles.update(forms(f"finished upload {upload_id}", bytes.fromhex(upload_id)))
            interrupted_upload(gone, seal_bytes(os.urandom(90_000), recipients, Kind.FILE))
            kept.replies_after_login()
            malformed_request(server.port)

            bundles = pull(server, key, tmp_path / "usb")
            items, envelopes = read_bundle(bundles[0], server_public_key(server))
            assert len(items) == 4
            for item in items:
                needles.update(forms(f"purged blob of item {item.id}", item.sha256))
            kept_item = next(item for item in items if len(envelopes[item.id]) > 200_000)
            gone_id = next(i.source_id for i in items if i.source_id != kept_item.source_id)
            with sqlite3.connect(database) as connection:
                lookup_id, reply_public = connection.execute(
                    "SELECT lookup_id, reply_public FROM sources WHERE source_id = ?", (gone_id,)
                ).fetchone()
            connection.close()
            needles.update(forms("deleted source's source id", gone_id))
            needles.update(forms("deleted source's lookup id", lookup_id))
            needles.update(forms("deleted source's reply key", reply_public))

            reply = seal_bytes(b"we read it", [kept_item.reply_public_key, *recipients], Kind.REPLY)
            push(server, key, tmp_path / "usb" / "one.bundle", team,
                 replies=[(kept_item.source_id, reply)],
                 acknowledged=[item.id for item in items])  # fmt: skip
            assert "we read it" in kept.replies_after_login()
            push(server, key, tmp_path / "usb" / "two.bundle", team,
                 deletions=[Deletion("source", source_id=gone_id)])  # fmt: skip
            assert pull(server, key, tmp_path / "usb2") == []
            during = server.output()[started:]
            # A running server's disk: the superblock's last write time must not date the day.
            os.sync()
            live = superblock_times(tmp_path / "disk.img")
        logged = [f"the server logged while it served: {line}" for line in during.splitlines()]
        # The day is over: the daily blur (the server runs it every day) sets every change
        # time at once. Its window, to the second, is the one allowed non-day time.
        blur_start = int(time.time())
        blur(data)
        blur_end = int(time.time()) + 1
    image = tmp_path / "disk.img"
    try:
        report = scan_image(image, needles, TimeRule(blur_start, blur_end))
        report.findings.extend(logged)
        if live["write"] > live["mount"]:
            report.findings.append(f"the live superblock was written at {live['write']}")
    finally:
        image.unlink()
    print(f"\nfile system: mkfs.ext4 {' '.join(mkfs_options)}; mount -o {mount_options}")
    print(report.summary())
    print(f"{len(needles)} needles; blur window {blur_start}..{blur_end}; superblock times: "
          f"while serving {live}, after the unmount {report.superblock_times}")  # fmt: skip
    for finding in report.findings:
        print("FINDING:", finding)
    assert report.findings == []
