"""``journalist decrypt``: decrypting one envelope file into a new file.

The journalist's current and retired encryption keys are tried; nothing is left behind
unless the whole envelope verified.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from crypto import (
    DecryptionError,
    FormatError,
    Kind,
    UnsupportedVersion,
    open_envelope,
    read_header,
)
from journalist_ui import filenames, fs
from journalist_ui.errors import StationError
from journalist_ui.station.key_files import PassphraseSource, load_encryption_keys
from journalist_ui.station.layout import Layout
from journalist_ui.station.record import choose_journalist, load_station


@dataclass(frozen=True)
class DecryptResult:
    envelope: Path
    journalist: str
    kind: Kind
    #: The filename as the envelope gives it (hostile: show it with filenames.printable).
    sent_filename: str
    media_type: str
    size: int
    sha256: str
    path: Path


def decrypt_envelope(
    home: Path,
    envelope: Path,
    out_dir: Path,
    passphrase: PassphraseSource,
    *,
    journalist: str | None = None,
) -> DecryptResult:
    """Decrypt one envelope file into a new file in out_dir.

    Nothing is left in out_dir unless the whole envelope verified: the content goes to a
    temporary file that gets its name only at the end. The name comes from the envelope's
    metadata (made safe by :mod:`journalist_ui.filenames`) and never replaces a file.
    """
    layout = Layout(home)
    name = choose_journalist(load_station(home), journalist)
    try:
        src = envelope.open("rb")
    except FileNotFoundError:
        raise StationError(f"no such envelope file: {envelope}") from None
    with src:
        try:
            read_header(src)
        except UnsupportedVersion:
            raise StationError(
                f"{envelope} is a Postern envelope of a version this station cannot read "
                "(it reads version 1)"
            ) from None
        except FormatError:
            raise StationError(f"{envelope} is not a Postern envelope") from None
        keys = load_encryption_keys(layout, name, passphrase(f"journalist {name}'s keys"))
        undecryptable = StationError(
            f"cannot decrypt {envelope}: it is not sealed to journalist {name}'s key, "
            "or it is corrupted"
        )
        try:
            opened = open_envelope(src, [key.secret for key in keys])
        except (DecryptionError, FormatError):
            raise undecryptable from None
        with _output_dir(out_dir):
            fd, temp_name = tempfile.mkstemp(prefix=".postern-", suffix=".part", dir=out_dir)
            temp = Path(temp_name)
            try:
                digest = hashlib.sha256()
                with os.fdopen(fd, "wb") as out:
                    try:
                        for part in opened.iter_content():
                            digest.update(part)
                            out.write(part)
                    except DecryptionError:
                        raise undecryptable from None
                    out.flush()
                    os.fsync(out.fileno())
                metadata = opened.metadata
                sha256 = digest.hexdigest()
                preferred = filenames.output_name(metadata.kind, metadata.filename, sha256)
                path = fs.link_without_replacing(temp, out_dir, filenames.candidates(preferred))
            except BaseException:
                with contextlib.suppress(OSError):
                    temp.unlink()
                raise
    return DecryptResult(
        envelope=envelope,
        journalist=name,
        kind=metadata.kind,
        sent_filename=metadata.filename,
        media_type=metadata.media_type,
        size=metadata.length,
        sha256=sha256,
        path=path,
    )


@contextlib.contextmanager
def _output_dir(out_dir: Path) -> Iterator[None]:
    """Make out_dir (0700) if it is missing; remove it again if it stays empty on failure."""
    created = not out_dir.exists()
    if created:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        fs.make_private_dir(out_dir)
    try:
        yield
    except BaseException:
        if created:
            with contextlib.suppress(OSError):
                out_dir.rmdir()
        raise
