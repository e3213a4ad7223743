"""journalist_ui.importer.direct_write: large envelope files written past the page cache.

Whatever the alignment of the pieces, the file holds exactly the bytes given, in order; a
file system or a write that refuses O_DIRECT gets ordinary writes with the same result.
"""

from __future__ import annotations

import errno
import os
import random
from pathlib import Path

import pytest

from journalist_ui.importer.direct_write import ALIGN, DirectFile, Staging

FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL
SEED = 20261207


def seeded(offset: int) -> random.Random:
    return random.Random(SEED + offset)  # noqa: S311 - test data, replayable, not a secret


def pieces(rng: random.Random, total: int) -> list[bytes]:
    """``total`` random bytes cut at random places (some empty, some over a block)."""
    out = []
    while total > 0:
        size = min(total, rng.choice([0, 1, ALIGN - 1, ALIGN, ALIGN + 1, rng.randrange(3 * ALIGN)]))
        out.append(rng.randbytes(size))
        total -= size
    return out


def write_in_calls(path: Path, parts: list[bytes], staging: Staging, calls: int) -> DirectFile:
    file = DirectFile(path, FLAGS, 0o600, staging)
    step = max(1, len(parts) // calls)
    for at in range(0, len(parts), step):
        file.write(parts[at : at + step])
    file.close()
    return file


def test_any_cut_of_the_bytes_is_written_exactly_and_directly(tmp_path):
    rng = seeded(0)
    # A small staging buffer, so that it fills and empties many times within one call.
    staging = Staging(4 * ALIGN)
    for n in range(12):
        total = rng.choice([0, 1, ALIGN, 5 * ALIGN + 7, rng.randrange(40 * ALIGN)])
        parts = pieces(rng, total)
        path = tmp_path / f"file-{n}"
        file = write_in_calls(path, parts, staging, calls=rng.randrange(1, 6))
        assert path.read_bytes() == b"".join(parts)
        assert (path.stat().st_mode & 0o777) == 0o600
        # The test's file system takes O_DIRECT (the station's ext4 does): the direct path
        # ran, and the last partial block went through the cache at close.
        assert file.direct == (total % ALIGN == 0), (total, file.direct)
    staging.close()


def test_a_file_system_without_o_direct_gets_ordinary_writes(tmp_path, monkeypatch):
    real_open = os.open

    def no_direct(path, flags, mode=0o777):
        if flags & os.O_DIRECT:
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_open(path, flags, mode)

    monkeypatch.setattr(os, "open", no_direct)
    parts = pieces(seeded(1), 9 * ALIGN + 3)
    file = write_in_calls(tmp_path / "plain", parts, Staging(2 * ALIGN), calls=3)
    assert file.direct is False
    assert (tmp_path / "plain").read_bytes() == b"".join(parts)


@pytest.mark.parametrize("failure", ["einval", "short"])
def test_a_refused_or_short_direct_write_goes_on_through_the_cache(tmp_path, monkeypatch, failure):
    real_write = os.write
    calls = []

    def flaky(fd, data):
        calls.append(len(data))
        if len(calls) == 2:  # the second direct write, after a whole one went through
            if failure == "einval":
                raise OSError(errno.EINVAL, "Invalid argument")
            return real_write(fd, bytes(data[: ALIGN // 2 + 1]))
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", flaky)
    parts = pieces(seeded(2), 17 * ALIGN + 5)
    file = write_in_calls(tmp_path / "flaky", parts, Staging(2 * ALIGN), calls=4)
    assert len(calls) > 2
    assert file.direct is False
    assert (tmp_path / "flaky").read_bytes() == b"".join(parts)


def test_other_open_errors_are_not_hidden(tmp_path):
    (tmp_path / "taken").write_bytes(b"x")
    with pytest.raises(FileExistsError):
        DirectFile(tmp_path / "taken", FLAGS, 0o600, Staging())
    assert (tmp_path / "taken").read_bytes() == b"x"


@pytest.mark.parametrize("size", [0, ALIGN + 1, -ALIGN])
def test_the_staging_buffer_is_whole_blocks(size):
    with pytest.raises(ValueError, match="multiple"):
        Staging(size)
