"""Encrypted backup and restore of a whole station home (docs/format.md section 12).

A backup is ONE envelope (format section 3, kind ``file``, filename
``postern-station-backup.tar``) whose content is a POSIX tar (pax) archive of the station
home, written in a fixed order with fixed owners and times so that the same home gives the
same archive. It is sealed to every encryption key on the station: the active journalists'
current keys, their retired keys and revoked journalists' keys still kept, so that any one
of them, with its passphrase, restores everything.

Restore treats the archive as hostile: only regular files and directories, relative names
without ``..``, no duplicates, no entry under a file; everything is written into a fresh
directory next to the target with 0700/0600 modes and renamed into place only when the
whole envelope verified and the result holds a station record.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

import crypto
from common.files import fsync_dir
from crypto import CryptoError, DecryptionError, FormatError, KeyKind, Kind, Sealer
from journalist_ui import fs
from journalist_ui.errors import StationError
from journalist_ui.keys import peek_key_file
from journalist_ui.station import (
    Layout,
    PassphraseSource,
    load_private_key_file,
    load_station,
)

BACKUP_FILENAME = "postern-station-backup.tar"
BACKUP_MEDIA_TYPE = "application/x-tar"
MAX_RECIPIENTS = 32
MAX_MEMBERS = 1_000_000


@dataclass(frozen=True)
class BackupResult:
    path: Path
    files: int
    recipients: tuple[str, ...]  # fingerprints
    size: int


def backup_recipients(home: Path) -> list[bytes]:
    """Every X25519 encryption public key whose private key file is in the home."""
    layout = Layout(home)
    load_station(home)
    found: dict[bytes, None] = {}
    for path in sorted(layout.keys.rglob("*.key")):
        public = peek_key_file(path)
        if public.kind is KeyKind.ENCRYPTION:
            found[public.key] = None
    if not found:
        raise StationError(f"no encryption key in {layout.keys}: nothing to seal the backup to")
    if len(found) > MAX_RECIPIENTS:
        raise StationError(
            f"the station has {len(found)} encryption keys, more than the {MAX_RECIPIENTS} an "
            "envelope can have: rewrap and destroy retired keys first"
        )
    return list(found)


class _SealingWriter(io.RawIOBase):
    """A write-only stream that seals what it is given into dst."""

    def __init__(self, sealer: Sealer, dst: BinaryIO) -> None:
        self._sealer, self._dst = sealer, dst
        dst.write(sealer.header)

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        self._dst.write(self._sealer.update(data))
        return len(data)

    def finish(self) -> None:
        for chunk in self._sealer.finish():
            self._dst.write(chunk)


def _members(home: Path) -> list[Path]:
    out: list[Path] = []
    for directory, dirs, files in os.walk(home):
        dirs.sort()
        base = Path(directory)
        for name in dirs:
            out.append(base / name)
        for name in sorted(files):
            out.append(base / name)
    return sorted(out, key=lambda p: p.relative_to(home).parts)


def backup_station(home: Path, to: Path) -> BackupResult:
    """Write the whole station home as one envelope to ``to`` (a new file outside home)."""
    home = home.resolve()
    load_station(home)
    target = to.absolute()
    if target.resolve().is_relative_to(home):
        raise StationError(f"the backup {to} must be outside the station home {home}")
    if to.exists() or to.is_symlink():
        raise StationError(f"{to} exists: a backup never replaces a file")
    recipients = backup_recipients(home)
    members = _members(home)
    for path in members:
        if path.is_symlink() or not (path.is_file() or path.is_dir()):
            raise StationError(f"{path} is not a regular file or directory: refusing to back it up")
    fd, temp_name = tempfile.mkstemp(prefix=f".{to.name}.", suffix=".part", dir=target.parent)
    temp = Path(temp_name)
    try:
        with os.fdopen(fd, "wb") as dst:
            os.fchmod(dst.fileno(), fs.FILE_MODE)
            writer = _SealingWriter(
                Sealer(recipients, Kind.FILE, BACKUP_FILENAME, BACKUP_MEDIA_TYPE), dst
            )
            with tarfile.open(fileobj=writer, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                for path in members:
                    info = tarfile.TarInfo(path.relative_to(home).as_posix())
                    info.uid = info.gid = 0
                    info.uname = info.gname = ""
                    info.mtime = 0
                    if path.is_dir():
                        info.type, info.mode = tarfile.DIRTYPE, 0o700
                        tar.addfile(info)
                    else:
                        info.mode, info.size = 0o600, path.stat().st_size
                        with path.open("rb") as src:
                            tar.addfile(info, src)
            writer.finish()
            dst.flush()
            os.fsync(dst.fileno())
        fs.link_without_replacing(temp, target.parent, [to.name])
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise
    fingerprints = tuple(crypto.fingerprint(crypto.Algorithm.X25519, key) for key in recipients)
    files = sum(1 for p in members if p.is_file())
    return BackupResult(target, files, fingerprints, target.stat().st_size)


class _ContentReader(io.RawIOBase):
    """A readable stream over the verified content of an opened envelope."""

    def __init__(self, opened: crypto.OpenedEnvelope) -> None:
        self._parts = opened.iter_content()
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def readinto(self, out: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._buffer:
            part = next(self._parts, None)
            if part is None:
                return 0
            self._buffer = part
        size = min(len(out), len(self._buffer))
        out[:size] = self._buffer[:size]
        self._buffer = self._buffer[size:]
        return size


def _safe_name(name: str) -> PurePosixPath:
    path = PurePosixPath(name)
    if (
        not name
        or name.startswith("/")
        or "\\" in name
        or "\x00" in name
        or any(part in ("", ".", "..") for part in name.rstrip("/").split("/"))
        or path.is_absolute()
    ):
        raise StationError(f"the backup holds an unsafe path {name!r}: refusing to restore it")
    return path


@dataclass(frozen=True)
class RestoreResult:
    home: Path
    files: int
    journalists: tuple[str, ...]


def restore_station(
    backup: Path, new_home: Path, key_file: Path, ask: PassphraseSource
) -> RestoreResult:
    """Restore a backup into new_home (absent or empty) with one encryption key file."""
    if new_home.is_symlink() or (new_home.exists() and not new_home.is_dir()):
        raise StationError(f"{new_home} exists and is not a directory")
    if new_home.is_dir() and any(new_home.iterdir()):
        raise StationError(f"{new_home} is not empty: restore into a new directory")
    try:
        src = backup.open("rb")
    except FileNotFoundError:
        raise StationError(f"no such backup file: {backup}") from None
    with src:
        try:
            crypto.read_header(src)
        except FormatError:
            raise StationError(f"{backup} is not a Postern backup (not an envelope)") from None
        key = load_private_key_file(
            key_file, ask(f"the key in {key_file.name}"), KeyKind.ENCRYPTION, f"{key_file}"
        )
        undecryptable = StationError(
            f"cannot open {backup}: it is not sealed to the key in {key_file}, or it is damaged"
        )
        try:
            opened = crypto.open_envelope(src, [key.secret])
        except (DecryptionError, FormatError):
            raise undecryptable from None
        if opened.metadata.filename != BACKUP_FILENAME:
            raise StationError(f"{backup} is an envelope but not a station backup")
        new_home.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{new_home.name}.restore-", dir=new_home.parent))
        try:
            files = _extract(_ContentReader(opened), staging)
            journalists = load_station(staging).journalists
            if new_home.exists():
                new_home.rmdir()
            os.rename(staging, new_home)
            os.chmod(new_home, fs.DIR_MODE)
            fsync_dir(new_home.parent)
        except (DecryptionError, CryptoError):
            shutil.rmtree(staging, ignore_errors=True)
            raise undecryptable from None
        except tarfile.TarError as exc:
            shutil.rmtree(staging, ignore_errors=True)
            raise StationError(f"{backup} holds a damaged archive: {exc}") from None
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return RestoreResult(new_home, files, journalists)


def _extract(stream: io.RawIOBase, into: Path) -> int:
    seen: set[PurePosixPath] = set()
    files = 0
    with tarfile.open(fileobj=stream, mode="r|") as tar:
        for count, member in enumerate(tar, start=1):
            if count > MAX_MEMBERS:
                raise StationError("the backup holds too many entries")
            name = _safe_name(member.name)
            if name in seen:
                raise StationError(f"the backup holds {member.name!r} twice: refusing it")
            seen.add(name)
            target = into.joinpath(*name.parts)
            # Every parent must be a directory made by this restore, never a file or a link.
            parent = into
            for part in name.parts[:-1]:
                parent = parent / part
                if parent.is_symlink() or (parent.exists() and not parent.is_dir()):
                    raise StationError(f"the backup puts {member.name!r} under a file")
                if not parent.exists():
                    fs.make_private_dir(parent)
            if member.isdir():
                if target.exists():
                    if target.is_symlink() or not target.is_dir():
                        raise StationError(f"the backup holds {member.name!r} twice: refusing it")
                    continue
                fs.make_private_dir(target)
            elif member.isreg():
                handle = tar.extractfile(member)
                if handle is None:
                    raise StationError(f"cannot read {member.name!r} from the backup")
                fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, fs.FILE_MODE)
                with os.fdopen(fd, "wb") as out:
                    os.fchmod(out.fileno(), fs.FILE_MODE)
                    shutil.copyfileobj(handle, out, 1 << 20)
                    out.flush()
                    os.fsync(out.fileno())
                files += 1
            else:
                raise StationError(
                    f"the backup holds {member.name!r}, which is not a regular file or a "
                    "directory (links and devices are refused)"
                )
    return files


__all__ = [
    "BACKUP_FILENAME",
    "BackupResult",
    "RestoreResult",
    "backup_recipients",
    "backup_station",
    "restore_station",
]
