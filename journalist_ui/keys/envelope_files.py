"""Re-sealing envelope files in place to new recipients (format section 3.7).

Used for files outside the station database: the store key (``HOME/store/key.envelope``)
and, on a station without a store, the envelopes in ``HOME/store/envelopes/``.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import crypto
from common.files import fsync_dir, sha256_file
from crypto import CryptoError, DecryptionError, FormatError
from journalist_ui import fs


@dataclass(frozen=True)
class RewrapResult:
    """One envelope file after a rewrap: what the store records about it."""

    path: Path
    sha256: str
    key_ids: tuple[str, ...]
    changed: bool
    #: The store item whose envelope this is (None for files outside the database).
    item_id: int | None = None


def rewrap_envelope_files(
    paths: Iterable[Path], private_keys: Sequence[bytes], recipients: Sequence[bytes]
) -> tuple[list[RewrapResult], list[tuple[Path, str]]]:
    """Re-seal each envelope file's file key to recipients (format section 3.7), atomically.

    Each file is verified whole with private_keys, written to a temporary file in the same
    directory, synced and renamed over the original. Files already sealed to exactly
    recipients are left as they are. Returns the results and the files that could not be
    rewrapped (with the reason); those are unchanged.
    """
    done: list[RewrapResult] = []
    failed: list[tuple[Path, str]] = []
    for path in paths:
        try:
            with path.open("rb") as src:
                header = crypto.read_header(src)
                if crypto.sealed_to(header, recipients):
                    ids = tuple(sorted(k.hex() for k in header.key_ids))
                    done.append(RewrapResult(path, sha256_file(path), ids, False))
                    continue
                fd, temp_name = tempfile.mkstemp(prefix=".rewrap-", dir=path.parent)
                temp = Path(temp_name)
                try:
                    with os.fdopen(fd, "wb") as dst:
                        os.fchmod(dst.fileno(), fs.FILE_MODE)
                        new_header = crypto.rewrap(src, dst, private_keys, recipients)
                        dst.flush()
                        os.fsync(dst.fileno())
                    os.replace(temp, path)
                except BaseException:
                    with contextlib.suppress(OSError):
                        temp.unlink()
                    raise
            fsync_dir(path.parent)
            ids = tuple(sorted(k.hex() for k in new_header.key_ids))
            done.append(RewrapResult(path, sha256_file(path), ids, True))
        except DecryptionError:
            failed.append((path, "none of the keys given opens it, or it is damaged"))
        except (FormatError, CryptoError) as exc:
            failed.append((path, f"not a valid envelope: {exc}"))
        except OSError as exc:
            failed.append((path, f"cannot rewrite it: {exc.strerror or exc}"))
    return done, failed
