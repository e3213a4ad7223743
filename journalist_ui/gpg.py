"""The python-gnupg adapter: encrypt an export to a colleague's OpenPGP public key.

Every operation runs gpg in a throwaway GNUPGHOME (a new 0700 temporary directory holding
nothing but the colleague's public key), so the station's own GnuPG state, if any, is never
read or changed; the directory and any gpg daemons started for it are removed afterwards.
The key's fingerprint is shown to the journalist, who confirms it before anything is
encrypted; encryption checks that the key imported is still the one confirmed. Every gpg
failure becomes a :class:`StationError` with one line naming what went wrong.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

import gnupg

from journalist_ui.errors import StationError

#: Largest public key block accepted (a key with many signatures can be large).
MAX_KEY_BYTES = 256 * 1024


@dataclass(frozen=True)
class RecipientKey:
    """A colleague's OpenPGP public key, inspected: what the journalist confirms."""

    fingerprint: str
    user_ids: tuple[str, ...]
    armored: str


def _gpg_binary() -> str:
    path = shutil.which("gpg")
    if path is None:
        raise StationError("gpg is not installed on this station (Debian package gnupg)")
    return path


@contextlib.contextmanager
def _throwaway_gpg() -> Iterator[gnupg.GPG]:
    with tempfile.TemporaryDirectory(prefix="postern-gpg-") as home:
        try:
            yield gnupg.GPG(gpgbinary=_gpg_binary(), gnupghome=home)
        except (OSError, ValueError) as exc:
            raise StationError(f"gpg failed: {exc}") from None
        finally:
            gpgconf = shutil.which("gpgconf")
            if gpgconf is not None:
                subprocess.run(  # noqa: S603 - fixed command, our own temporary directory
                    [gpgconf, "--homedir", home, "--kill", "all"],
                    check=False,
                    capture_output=True,
                    timeout=30,
                )


def _import_one(gpg: gnupg.GPG, armored: str) -> dict:
    if not armored.strip():
        raise StationError("paste the colleague's OpenPGP public key")
    if len(armored.encode("utf-8", "replace")) > MAX_KEY_BYTES:
        raise StationError(f"an OpenPGP public key block is at most {MAX_KEY_BYTES} bytes here")
    if "PRIVATE KEY BLOCK" in armored:
        raise StationError("that is a private key: ask your colleague for their public key")
    result = gpg.import_keys(armored)
    fingerprints = {f for f in (result.fingerprints or []) if f}
    if not fingerprints:
        raise StationError("no OpenPGP public key found in what was given")
    if len(fingerprints) > 1:
        raise StationError(
            f"the key block holds {len(fingerprints)} keys: give exactly one colleague's key"
        )
    keys = gpg.list_keys()
    if len(keys) != 1:
        raise StationError("the key block holds more than one key: give exactly one")
    key = keys[0]
    if "E" not in (key.get("cap") or "") or key.get("trust") in ("r", "e"):
        raise StationError(
            f"the key {key.get('fingerprint')} cannot be used for encryption "
            "(revoked, expired, or without an encryption subkey)"
        )
    return key


def inspect_key(armored: str) -> RecipientKey:
    """The fingerprint and user ids of a colleague's key, to show before encrypting."""
    with _throwaway_gpg() as gpg:
        key = _import_one(gpg, armored)
        return RecipientKey(str(key["fingerprint"]), tuple(key.get("uids") or ()), armored)


class _ChunkReader(io.RawIOBase):
    """A read-only file over an iterator of chunks (fed to gpg's stdin by python-gnupg)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._pending:
            try:
                self._pending = next(self._chunks)
            except StopIteration:
                return 0
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


def encrypt_stream(key: RecipientKey, chunks: Iterable[bytes], out: BinaryIO) -> None:
    """Encrypt the chunks to ``key`` (binary OpenPGP message) and write them to ``out``.

    The plaintext goes to gpg through a pipe, never through a file.
    """
    with _throwaway_gpg() as gpg, tempfile.TemporaryDirectory(prefix="postern-gpg-out-") as tmp:
        imported = _import_one(gpg, key.armored)
        if imported["fingerprint"] != key.fingerprint:
            raise StationError("the key changed since its fingerprint was confirmed")
        target = f"{tmp}/message.gpg"
        reader = io.BufferedReader(_ChunkReader(chunks), buffer_size=1 << 16)
        result = gpg.encrypt_file(
            reader,
            recipients=[key.fingerprint],
            always_trust=True,
            armor=False,
            output=target,
        )
        if not result.ok:
            raise StationError(f"gpg could not encrypt to {key.fingerprint}: {result.status}")
        with open(target, "rb") as encrypted:
            shutil.copyfileobj(encrypted, out, 1 << 20)
